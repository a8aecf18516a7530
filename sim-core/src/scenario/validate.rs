//! Semantic validation: what serde cannot see (unknown names, duplicates,
//! impossible numbers). Every problem is reported with its JSON path.

use crate::small_map::SmallSet;

use super::format::*;
use super::template;
use super::Issue;

/// Exchanges every broker has.
pub const PREDECLARED_EXCHANGES: [&str; 6] = [
    "",
    "amq.direct",
    "amq.fanout",
    "amq.topic",
    "amq.headers",
    "amq.match",
];

/// Upper bounds that keep a run small enough for a page.
pub const MAX_MESSAGES: u64 = 10_000;
pub const MAX_TIME_MS: u64 = 3_600_000;
/// Producers + consumers: one connection each, plus the admin connection, and
/// the bridge's relay allows 8 connections per session.
pub const MAX_CLIENTS: usize = 7;

struct V<'a> {
    sc: &'a Scenario,
    issues: Vec<Issue>,
    exchanges: SmallSet<&'a str>,
    queues: SmallSet<&'a str>,
    producers: SmallSet<&'a str>,
    consumers: SmallSet<&'a str>,
}

impl<'a> V<'a> {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn text(&mut self, path: &str, t: &Text) {
        for (lang, s) in [("en", &t.en), ("ru", &t.ru), ("uk", &t.uk)] {
            if s.trim().is_empty() {
                self.issue(format!("{path}.{lang}"), "text must not be empty");
            }
        }
    }

    fn exchange_ref(&mut self, path: &str, name: &str) {
        if !self.exchanges.contains(name) {
            self.issue(
                path,
                format!("unknown exchange '{name}' (not declared in topology or timeline)"),
            );
        }
    }

    fn queue_ref(&mut self, path: &str, name: &str) {
        if !self.queues.contains(name) {
            self.issue(
                path,
                format!("unknown queue '{name}' (not declared in topology or timeline)"),
            );
        }
    }

    fn consumer_ref(&mut self, path: &str, name: &str) {
        if !self.consumers.contains(name) {
            self.issue(path, format!("unknown consumer '{name}'"));
        }
    }

    fn producer_ref(&mut self, path: &str, name: &str) {
        if !self.producers.contains(name) {
            self.issue(path, format!("unknown producer '{name}'"));
        }
    }

    fn template(&mut self, path: &str, s: &str) {
        for name in template::unknown_placeholders(s) {
            self.issue(path, format!("unknown placeholder '{{{name}}}'"));
        }
    }

    fn body(&mut self, path: &str, body: &BodyDef) {
        let mut strings = Vec::new();
        template::body_strings(body, &mut strings);
        for s in strings {
            self.template(path, &s);
        }
    }

    fn props(&mut self, path: &str, p: &PropsDef) {
        if let Some(mode) = p.delivery_mode {
            if mode != 1 && mode != 2 {
                self.issue(
                    format!("{path}.delivery_mode"),
                    format!("must be 1 (transient) or 2 (persistent), not {mode}"),
                );
            }
        }
        for (field, v) in [
            ("reply_to", &p.reply_to),
            ("correlation_id", &p.correlation_id),
            ("message_id", &p.message_id),
        ] {
            if let Some(s) = v {
                self.template(&format!("{path}.{field}"), s);
            }
        }
    }

    fn binding(&mut self, path: &str, b: &BindingDef) {
        self.exchange_ref(&format!("{path}.source"), &b.source);
        match (&b.queue, &b.exchange) {
            (Some(q), None) => self.queue_ref(&format!("{path}.queue"), q),
            (None, Some(x)) => {
                if x.is_empty() {
                    self.issue(
                        format!("{path}.exchange"),
                        "cannot bind to the default exchange",
                    );
                } else {
                    self.exchange_ref(&format!("{path}.exchange"), x)
                }
            }
            _ => self.issue(
                path,
                "a binding needs exactly one of 'queue' and 'exchange'",
            ),
        }
        if b.source.is_empty() {
            self.issue(
                format!("{path}.source"),
                "the default exchange cannot be bound",
            );
        }
    }

    fn target(&mut self, path: &str, t: &Target) {
        self.exchange_ref(&format!("{path}.exchange"), &t.exchange);
        self.template(&format!("{path}.routing_key"), &t.routing_key);
        self.body(&format!("{path}.body"), &t.body);
        self.props(&format!("{path}.properties"), &t.properties);
    }

    fn time(&mut self, path: &str, ms: u64) {
        if ms > MAX_TIME_MS {
            self.issue(
                path,
                format!("{ms} ms is more than the limit of {MAX_TIME_MS} ms"),
            );
        }
    }
}

fn unique<'a>(
    v: &mut V<'a>,
    what: &str,
    items: impl Iterator<Item = (String, &'a str)>,
) -> SmallSet<&'a str> {
    let mut seen = SmallSet::new();
    for (path, name) in items {
        if !seen.insert(name) {
            v.issue(path, format!("duplicate {what} name '{name}'"));
        }
    }
    seen
}

/// Checks a parsed scenario; an empty list means it is valid.
pub fn validate(sc: &Scenario) -> Vec<Issue> {
    let mut v = V {
        sc,
        issues: Vec::new(),
        exchanges: SmallSet::new(),
        queues: SmallSet::new(),
        producers: SmallSet::new(),
        consumers: SmallSet::new(),
    };

    if sc.id.is_empty()
        || !sc
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        v.issue("id", format!("'{}' is not a slug ([a-z0-9-]+)", sc.id));
    }
    v.text("title", &sc.title);
    if let Some(s) = &sc.summary {
        v.text("summary", s);
    }

    // Names.
    let ex = unique(
        &mut v,
        "exchange",
        sc.topology
            .exchanges
            .iter()
            .enumerate()
            .map(|(i, x)| (format!("topology.exchanges[{i}].name"), x.name.as_str())),
    );
    for (i, x) in sc.topology.exchanges.iter().enumerate() {
        if x.name.is_empty() || x.name.starts_with("amq.") {
            v.issue(
                format!("topology.exchanges[{i}].name"),
                format!(
                    "'{}' is reserved (the default exchange and amq.* exist already)",
                    x.name
                ),
            );
        }
    }
    let qs = unique(
        &mut v,
        "queue",
        sc.topology
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (format!("topology.queues[{i}].name"), q.name.as_str())),
    );
    for (i, q) in sc.topology.queues.iter().enumerate() {
        if q.name.is_empty() {
            v.issue(format!("topology.queues[{i}].name"), "queue names must not be empty (server-named queues are not supported in scenarios)");
        }
    }
    v.producers = unique(
        &mut v,
        "producer",
        sc.producers
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("producers[{i}].name"), p.name.as_str())),
    );
    v.consumers = unique(
        &mut v,
        "consumer",
        sc.consumers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("consumers[{i}].name"), c.name.as_str())),
    );
    v.exchanges = ex;
    v.exchanges.extend(PREDECLARED_EXCHANGES);
    v.queues = qs;
    for a in &sc.timeline {
        match a {
            TimedAction::DeclareExchange { exchange, .. } => {
                v.exchanges.insert(exchange.name.as_str());
            }
            TimedAction::DeclareQueue { queue, .. } => {
                v.queues.insert(queue.name.as_str());
            }
            _ => {}
        }
    }

    // Topology.
    for (i, b) in sc.topology.bindings.iter().enumerate() {
        v.binding(&format!("topology.bindings[{i}]"), b);
    }
    for (i, x) in sc.topology.exchanges.iter().enumerate() {
        if let Some(serde_json::Value::String(ae)) = x.arguments.get("alternate-exchange") {
            v.exchange_ref(
                &format!("topology.exchanges[{i}].arguments.alternate-exchange"),
                ae,
            );
        }
    }
    for (i, q) in sc.topology.queues.iter().enumerate() {
        if let Some(serde_json::Value::String(dlx)) = q.arguments.get("x-dead-letter-exchange") {
            v.exchange_ref(
                &format!("topology.queues[{i}].arguments.x-dead-letter-exchange"),
                dlx,
            );
        }
    }

    // Producers.
    let mut total_messages: u64 = 0;
    for (i, p) in sc.producers.iter().enumerate() {
        let path = format!("producers[{i}]");
        v.exchange_ref(&format!("{path}.exchange"), &p.exchange);
        v.template(&format!("{path}.routing_key"), &p.routing_key);
        v.body(&format!("{path}.body"), &p.body);
        v.props(&format!("{path}.properties"), &p.properties);
        v.time(&format!("{path}.start_ms"), p.start_ms);
        if p.count == 0 && p.messages.is_empty() {
            v.issue(&path, "a producer needs 'count' > 0 or a 'messages' script");
        }
        let end = p.start_ms.saturating_add(
            p.interval_ms
                .saturating_mul(u64::from(p.count.saturating_sub(1))),
        );
        v.time(&format!("{path}.interval_ms"), end);
        total_messages += u64::from(p.count) + p.messages.len() as u64;
        for (j, m) in p.messages.iter().enumerate() {
            let mp = format!("{path}.messages[{j}]");
            v.time(&format!("{mp}.at_ms"), m.at_ms);
            if let Some(x) = &m.exchange {
                v.exchange_ref(&format!("{mp}.exchange"), x);
            }
            if let Some(k) = &m.routing_key {
                v.template(&format!("{mp}.routing_key"), k);
            }
            if let Some(b) = &m.body {
                v.body(&format!("{mp}.body"), b);
            }
            if let Some(pp) = &m.properties {
                v.props(&format!("{mp}.properties"), pp);
            }
        }
    }
    if total_messages > MAX_MESSAGES {
        v.issue(
            "producers",
            format!("{total_messages} messages in all; the limit is {MAX_MESSAGES}"),
        );
    }

    // Consumers.
    for (i, c) in sc.consumers.iter().enumerate() {
        let path = format!("consumers[{i}]");
        v.queue_ref(&format!("{path}.queue"), &c.queue);
        v.time(&format!("{path}.processing_ms"), c.processing_ms);
        v.time(&format!("{path}.start_ms"), c.start_ms);
        if c.ack == AckMode::Auto
            && c.failure
                .as_ref()
                .is_some_and(|f| f.action != FailAction::Ack)
        {
            v.issue(
                format!("{path}.failure.action"),
                "an auto-ack consumer cannot reject or nack; use \"ack\" or manual acks",
            );
        }
        if let Some(f) = &c.failure {
            let fp = format!("{path}.failure");
            if !(0.0..=1.0).contains(&f.probability) || f.probability.is_nan() {
                v.issue(
                    format!("{fp}.probability"),
                    format!("{} is not a probability (0 to 1)", f.probability),
                );
            }
            match (&f.give_up_after, &f.give_up_to) {
                (Some(0), _) => v.issue(format!("{fp}.give_up_after"), "must be at least 1"),
                (Some(_), Some(t)) => v.target(&format!("{fp}.give_up_to"), t),
                (None, None) => {}
                (Some(_), None) => v.issue(
                    format!("{fp}.give_up_to"),
                    "'give_up_after' needs 'give_up_to'",
                ),
                (None, Some(_)) => v.issue(
                    format!("{fp}.give_up_after"),
                    "'give_up_to' needs 'give_up_after'",
                ),
            }
        }
        if let Some(r) = &c.reply {
            v.body(&format!("{path}.reply.body"), &r.body);
        }
        for (j, t) in c.forward.iter().enumerate() {
            v.target(&format!("{path}.forward[{j}]"), t);
        }
        if let Some(t) = c.crash_at_ms {
            v.time(&format!("{path}.crash_at_ms"), t);
        }
        match (c.crash_at_ms, c.restart_at_ms) {
            (Some(crash), Some(restart)) if restart <= crash => v.issue(
                format!("{path}.restart_at_ms"),
                format!("restart at {restart} ms is not after the crash at {crash} ms"),
            ),
            (None, Some(_)) => v.issue(
                format!("{path}.restart_at_ms"),
                "'restart_at_ms' needs 'crash_at_ms'",
            ),
            _ => {}
        }
    }

    // Timeline.
    for (i, a) in sc.timeline.iter().enumerate() {
        let path = format!("timeline[{i}]");
        v.time(&format!("{path}.at_ms"), a.at_ms());
        match a {
            TimedAction::Publish {
                producer,
                exchange,
                routing_key,
                body,
                properties,
                ..
            } => {
                if let Some(p) = producer {
                    v.producer_ref(&format!("{path}.producer"), p);
                }
                v.exchange_ref(&format!("{path}.exchange"), exchange);
                v.template(&format!("{path}.routing_key"), routing_key);
                v.body(&format!("{path}.body"), body);
                v.props(&format!("{path}.properties"), properties);
            }
            TimedAction::KillConsumer { consumer, .. }
            | TimedAction::RestartConsumer { consumer, .. }
            | TimedAction::CancelConsumer { consumer, .. } => {
                v.consumer_ref(&format!("{path}.consumer"), consumer)
            }
            TimedAction::RestartBroker { .. } | TimedAction::DeclareQueue { .. } => {}
            TimedAction::DeclareExchange { exchange, .. } => {
                if exchange.name.is_empty() || exchange.name.starts_with("amq.") {
                    v.issue(
                        format!("{path}.exchange.name"),
                        format!("'{}' is reserved", exchange.name),
                    );
                }
            }
            TimedAction::DeleteExchange { exchange, .. } => {
                v.exchange_ref(&format!("{path}.exchange"), exchange)
            }
            TimedAction::DeleteQueue { queue, .. } | TimedAction::PurgeQueue { queue, .. } => {
                v.queue_ref(&format!("{path}.queue"), queue)
            }
            TimedAction::Bind { binding, .. } | TimedAction::Unbind { binding, .. } => {
                v.binding(&format!("{path}.binding"), binding)
            }
        }
    }

    // Steps.
    for (i, s) in sc.steps.iter().enumerate() {
        let path = format!("steps[{i}]");
        v.time(&format!("{path}.at_ms"), s.at_ms);
        v.text(&format!("{path}.text"), &s.text);
        for (j, h) in s.highlight.iter().enumerate() {
            let hp = format!("{path}.highlight[{j}]");
            match h.split_once(':') {
                Some(("exchange", n)) => v.exchange_ref(&hp, n),
                Some(("queue", n)) => v.queue_ref(&hp, n),
                Some(("consumer", n)) => v.consumer_ref(&hp, n),
                Some(("producer", n)) => v.producer_ref(&hp, n),
                Some(("binding", n)) if n.contains("->") => {}
                _ => v.issue(
                    hp,
                    format!("'{h}' is not one of exchange:NAME, queue:NAME, consumer:NAME, producer:NAME, binding:SOURCE->DEST"),
                ),
            }
        }
        if let Some(q) = &s.question {
            let qp = format!("{path}.question");
            v.text(&format!("{qp}.prompt"), &q.prompt);
            if q.choices.len() < 2 {
                v.issue(
                    format!("{qp}.choices"),
                    "a question needs at least two choices",
                );
            }
            for (j, c) in q.choices.iter().enumerate() {
                v.text(&format!("{qp}.choices[{j}]"), c);
            }
            if q.answer >= q.choices.len() {
                v.issue(
                    format!("{qp}.answer"),
                    format!(
                        "answer {} is out of range (there are {} choices)",
                        q.answer,
                        q.choices.len()
                    ),
                );
            }
            if let Some(e) = &q.explain {
                v.text(&format!("{qp}.explain"), e);
            }
        }
    }
    let mut last = 0;
    for (i, s) in sc.steps.iter().enumerate() {
        if s.at_ms < last {
            v.issue(format!("steps[{i}].at_ms"), "steps must be in time order");
        }
        last = s.at_ms;
    }

    // Checks.
    for (i, c) in sc.checks.iter().enumerate() {
        check(&mut v, &format!("checks[{i}]"), c);
    }

    // Run limits.
    let r = &sc.run;
    v.time("run.max_ms", r.max_ms);
    if r.quiet_ms == Some(0) {
        v.issue("run.quiet_ms", "must be at least 1");
    }
    if r.max_ms <= r.min_ms {
        v.issue(
            "run.max_ms",
            format!("must be more than run.min_ms ({})", r.min_ms),
        );
    }
    let clients = sc.producers.len() + sc.consumers.len();
    if clients > MAX_CLIENTS {
        v.issue(
            "consumers",
            format!("{clients} producers and consumers; at most {MAX_CLIENTS} (each has its own connection, and the bridge allows 8 per session, one being the admin connection)"),
        );
    }
    let _ = v.sc;
    v.issues
}

fn check(v: &mut V<'_>, path: &str, c: &Check) {
    use CheckKind as K;
    let kind = c.check;
    let (needs_consumer, allows_consumer, needs_producer, allows_producer, needs_queue) = match kind
    {
        K::Received | K::Processed | K::DistinctProcessed | K::Failed | K::Redelivered => {
            (false, true, false, false, false)
        }
        K::Published | K::Returned | K::ConfirmedAck | K::ConfirmedNack => {
            (false, false, false, true, false)
        }
        K::QueueDepth => (false, false, false, false, true),
        K::RepliesMatched => (true, true, true, true, false),
        K::Order => (true, true, false, false, false),
        K::TotalTimeMs | K::Errors => (false, false, false, false, false),
    };
    let name = kind.as_str();
    match &c.consumer {
        Some(n) if allows_consumer => v.consumer_ref(&format!("{path}.consumer"), n),
        Some(_) => v.issue(
            format!("{path}.consumer"),
            format!("'{name}' takes no consumer"),
        ),
        None if needs_consumer => v.issue(path, format!("'{name}' needs a 'consumer'")),
        None => {}
    }
    match &c.producer {
        Some(n) if allows_producer => v.producer_ref(&format!("{path}.producer"), n),
        Some(_) => v.issue(
            format!("{path}.producer"),
            format!("'{name}' takes no producer"),
        ),
        None if needs_producer => v.issue(path, format!("'{name}' needs a 'producer'")),
        None => {}
    }
    match &c.queue {
        Some(n) if needs_queue => v.queue_ref(&format!("{path}.queue"), n),
        Some(_) => v.issue(format!("{path}.queue"), format!("'{name}' takes no queue")),
        None if needs_queue => v.issue(path, format!("'{name}' needs a 'queue'")),
        None => {}
    }
    if c.field.is_some() && kind != K::Order {
        v.issue(format!("{path}.field"), format!("'{name}' takes no field"));
    }
    if kind == K::Order {
        if !matches!(c.expect, Some(serde_json::Value::Array(_))) {
            v.issue(format!("{path}.expect"), "'order' expects an array");
        }
        if c.tolerance_pct.is_some() || c.at_least.is_some() || c.at_most.is_some() {
            v.issue(path, "'order' takes only 'expect'");
        }
        return;
    }
    match &c.expect {
        None if c.at_least.is_none() && c.at_most.is_none() => v.issue(
            path,
            format!("'{name}' needs 'expect', 'at_least' or 'at_most'"),
        ),
        None | Some(serde_json::Value::Number(_)) => {}
        Some(_) => v.issue(format!("{path}.expect"), "expected a number"),
    }
    if let Some(t) = c.tolerance_pct {
        if !(0.0..=100.0).contains(&t) {
            v.issue(
                format!("{path}.tolerance_pct"),
                format!("{t} is not a percentage (0 to 100)"),
            );
        }
        if c.expect.is_none() {
            v.issue(
                format!("{path}.tolerance_pct"),
                "'tolerance_pct' needs 'expect'",
            );
        }
    }
    if let (Some(lo), Some(hi)) = (c.at_least, c.at_most) {
        if lo > hi {
            v.issue(
                format!("{path}.at_most"),
                format!("at_most {hi} is below at_least {lo}"),
            );
        }
    }
}
