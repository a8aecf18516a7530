//! Seeded random broker programs in the conformance case format.
//!
//! Small name pools (three queues, three exchanges, a handful of keys) make
//! the steps collide on purpose: bindings find messages, redeclares disagree,
//! dead-letter chains close into cycles, consumers compete. The first part of
//! a program leans to declares and bindings, the rest to traffic; the last
//! steps observe what is left (deliveries of every consumer, passive declares
//! of the queues). Every proposed step goes through the [`Tracker`], which
//! inserts the waits the timing rules need and refuses steps that would race
//! with a real broker, so a program's real outcome is reproducible.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sim_core::SplitMix64;

use super::tracker::{push_legal, Step, Tracker, BOGUS_TAG};

const QUEUES: &[&str] = &["q1", "q2", "q3"];
const EXCHANGES: &[&str] = &["x1", "x2", "x3"];
const BUILTIN: &[&str] = &[
    "",
    "amq.direct",
    "amq.fanout",
    "amq.topic",
    "amq.headers",
    "amq.match",
];
const KEYS: &[&str] = &["a", "b", "a.b", "a.b.c", "b.a", ""];
const PATTERNS: &[&str] = &["a.*", "*.b", "#", "a.#", "#.c", "*"];

/// What the generator may produce beyond the default mix.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `broker_restart` steps (they stop the shared broker; run alone).
    pub restarts: bool,
}

struct Gen {
    rng: SplitMix64,
    t: Tracker,
    steps: Vec<Step>,
    max: usize,
    bodies: u64,
    consumers: u64,
    /// Arguments of the last declare per name: a redeclare usually repeats them.
    queue_args: BTreeMap<String, Step>,
    exchange_args: BTreeMap<String, Step>,
    opts: Options,
}

/// The program for `seed`: at most `max_steps` steps (waits included).
pub fn program(seed: u64, max_steps: usize, opts: Options) -> anyhow::Result<Vec<Step>> {
    let mut g = Gen {
        rng: SplitMix64::new(seed),
        t: Tracker::new()?,
        steps: Vec::new(),
        max: max_steps.max(8),
        bodies: 0,
        consumers: 0,
        queue_args: BTreeMap::new(),
        exchange_args: BTreeMap::new(),
        opts,
    };
    // Room for the closing observations.
    let body_budget = g.max.saturating_sub(6);
    let mut attempts = 0;
    while g.steps.len() + 1 < body_budget && attempts < g.max * 20 {
        attempts += 1;
        let setup = g.steps.len() * 3 < body_budget;
        let step = g.propose(setup);
        g.push(step)?;
    }
    g.observe_end()?;
    Ok(g.steps)
}

fn obj(v: Value) -> Step {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.next_f64() < p
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }

    fn push(&mut self, step: Step) -> anyhow::Result<bool> {
        if self.steps.len() + 2 > self.max {
            return Ok(false);
        }
        push_legal(&mut self.t, &mut self.steps, step)
    }

    /// A queue name: mostly one that exists now (errors stay the exception).
    fn queue(&mut self) -> String {
        if self.t.server_named > 0 && self.chance(0.2) {
            return format!("$q{}", 1 + self.below(self.t.server_named));
        }
        let live: Vec<String> = self.t.view().queues.into_iter().map(|q| q.name).collect();
        self.mostly_live(live, QUEUES)
    }

    /// One of `pool` that exists now (`live` lists what exists), mostly;
    /// sometimes any of `pool`, existing or not.
    fn mostly_live(&mut self, live: Vec<String>, pool: &[&str]) -> String {
        let live: Vec<String> = live
            .into_iter()
            .filter(|n| pool.contains(&n.as_str()))
            .collect();
        if !live.is_empty() && self.chance(0.92) {
            live[self.below(live.len())].clone()
        } else {
            self.pick(pool).to_string()
        }
    }

    /// A queue for an op that accepts `""` as "the channel's last declared
    /// queue" (bind, consume, get, purge, delete): sometimes exactly that.
    fn queue_or_last(&mut self) -> String {
        if self.chance(0.04) {
            String::new()
        } else {
            self.queue()
        }
    }

    /// An exchange name: built-in with probability `builtin`, else mostly one
    /// the program declared and that still exists.
    fn exchange(&mut self, builtin: f64) -> String {
        if self.chance(builtin) {
            return self.pick(BUILTIN).to_string();
        }
        let live: Vec<String> = self
            .t
            .view()
            .exchanges
            .into_iter()
            .map(|x| x.name)
            .collect();
        self.mostly_live(live, EXCHANGES)
    }

    /// Where the step runs: mostly connection 1 / channel 1.
    fn address(&mut self, step: &mut Step) {
        let (c, ch) = match self.below(10) {
            0 | 1 => (1, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        if c != 1 {
            step.insert("connection".into(), json!(c));
        }
        if ch != 1 {
            step.insert("channel".into(), json!(ch));
        }
    }

    fn propose(&mut self, setup: bool) -> Step {
        let mut step = if self.steps.len() < 3 {
            if self.chance(0.5) {
                self.queue_declare()
            } else {
                self.exchange_declare()
            }
        } else if setup {
            match self.below(10) {
                0..=3 => self.queue_declare(),
                4..=5 => self.exchange_declare(),
                6..=8 => self.queue_bind(),
                _ => self.exchange_bind(),
            }
        } else {
            self.traffic()
        };
        let o = step
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let o = o.as_str();
        let addressed = !matches!(
            o,
            "wait" | "deliveries" | "broker_restart" | "ack" | "nack" | "reject"
        ) && !step.contains_key("connection");
        if addressed {
            self.address(&mut step);
        }
        // Open what the step needs first.
        let c = step.get("connection").and_then(Value::as_u64).unwrap_or(1);
        let ch = step.get("channel").and_then(Value::as_u64).unwrap_or(1);
        if !matches!(
            o,
            "wait" | "deliveries" | "broker_restart" | "connection_open" | "channel_open"
        ) {
            if !self.t.is_open(c, None) {
                return obj(json!({"op": "connection_open", "connection": c}));
            }
            if !self.t.is_open(c, Some(ch)) && o != "connection_close" {
                return obj(json!({"op": "channel_open", "connection": c, "channel": ch}));
            }
        }
        step
    }

    fn traffic(&mut self) -> Step {
        let roll = self.below(100);
        match roll {
            0..=21 => self.publish(),
            22..=27 => self.get(),
            28..=33 => self.consume(),
            34..=42 => self.deliveries(),
            43..=50 => self.settle("ack"),
            51..=54 => self.settle("nack"),
            55..=58 => self.settle("reject"),
            59..=62 => self.queue_declare(),
            63..=65 => self.queue_bind(),
            66..=67 => self.exchange_declare(),
            68 => self.exchange_bind(),
            69..=70 => obj(json!({"op": "recover", "requeue": !self.chance(0.1)})),
            71..=72 => self.cancel(),
            73..=74 => obj(json!({
                "op": "basic_qos",
                "prefetch_count": self.below(4),
                "global": self.chance(0.3),
            })),
            75..=76 => obj(json!({"op": "confirm_select"})),
            77 => obj(json!({"op": "queue_purge", "queue": self.queue_or_last()})),
            78..=79 => obj(json!({
                "op": "queue_delete",
                "queue": self.queue_or_last(),
                "if_unused": self.chance(0.2),
                "if_empty": self.chance(0.2),
            })),
            80 => obj(json!({
                "op": "exchange_delete",
                "exchange": self.exchange(0.1),
                "if_unused": self.chance(0.3),
            })),
            81..=82 => self.unbind(),
            83 => obj(json!({"op": "channel_close", "channel": 1 + self.below(2)})),
            84 => obj(json!({"op": "connection_close", "connection": 2})),
            85 => obj(json!({"op": "connection_close_reopen", "connection": 1 + self.below(2)})),
            86..=89 => obj(json!({"op": "wait", "ms": 50 * (1 + self.below(10))})),
            90..=93 if self.opts.restarts => obj(json!({"op": "broker_restart"})),
            _ => self.publish(),
        }
    }

    fn ttl(&mut self) -> Value {
        match self.below(10) {
            0 => json!(0),
            1..=4 => json!([20, 50, 100][self.below(3)]),
            5..=8 => json!(60000 + 1000 * self.below(5) as i64),
            _ if self.chance(0.3) => json!(-1),
            _ => json!(60000),
        }
    }

    fn queue_declare(&mut self) -> Step {
        let name = if self.chance(0.1) {
            String::new()
        } else {
            self.queue()
        };
        if !name.is_empty() && self.chance(0.8) {
            if let Some(prev) = self.queue_args.get(&name) {
                return prev.clone();
            }
        }
        let mut args = Map::new();
        let mut arg = |g: &mut Gen, p: f64, k: &str, v: &dyn Fn(&mut Gen) -> Value| {
            if g.chance(p) {
                let val = v(g);
                args.insert(k.to_string(), val);
            }
        };
        arg(self, 0.2, "x-message-ttl", &|g| g.ttl());
        arg(self, 0.25, "x-dead-letter-exchange", &|g| {
            json!(g.exchange(0.3))
        });
        arg(self, 0.15, "x-dead-letter-routing-key", &|g| {
            json!(g.pick(&[KEYS, QUEUES].concat()))
        });
        arg(self, 0.15, "x-max-length", &|g| json!(g.below(4)));
        arg(self, 0.05, "x-max-length-bytes", &|g| json!(2 * g.below(6)));
        arg(self, 0.1, "x-overflow", &|g| {
            json!(g.pick(&[
                "drop-head",
                "drop-head",
                "reject-publish",
                "reject-publish",
                "reject-publish-dlx",
                "reject-publish-dlx",
                "bogus",
            ]))
        });
        arg(self, 0.1, "x-max-priority", &|g| {
            json!([1, 3, 5, 10, 1, 3, 5, 10, 256][g.below(9)])
        });
        arg(self, 0.05, "x-single-active-consumer", &|g| {
            json!(g.chance(0.8))
        });
        arg(self, 0.03, "x-expires", &|g| {
            json!(if g.chance(0.8) { 60000 } else { 0 })
        });
        arg(self, 0.04, "x-queue-type", &|g| {
            json!(g.pick(&["classic", "classic", "quorum", "stream", "bogus"]))
        });
        // A quorum queue must be durable: mostly make it so, so that its rules
        // (delivery limit, returns) get exercised, not only its 406.
        let quorum = args.get("x-queue-type") == Some(&json!("quorum"));
        if self.chance(if quorum { 0.4 } else { 0.02 }) {
            args.insert("x-delivery-limit".into(), json!(self.below(3)));
        }
        let durable = self.chance(if quorum { 0.8 } else { 0.3 });
        let step = obj(json!({
            "op": "queue_declare",
            "queue": name,
            "durable": durable,
            "exclusive": self.chance(0.1),
            "auto_delete": self.chance(0.1),
            "passive": self.chance(0.05),
            "arguments": Value::Object(args),
        }));
        if !name.is_empty() {
            self.queue_args.insert(name, step.clone());
        }
        step
    }

    fn exchange_declare(&mut self) -> Step {
        let name = self.exchange(0.08);
        if self.chance(0.8) {
            if let Some(prev) = self.exchange_args.get(&name) {
                return prev.clone();
            }
        }
        // Now and then a type the broker does not know (503 on purpose).
        let kind = if self.chance(0.03) {
            "x-bogus"
        } else {
            ["direct", "fanout", "topic", "headers"][self.below(4)]
        };
        let mut args = Map::new();
        if self.chance(0.15) {
            args.insert("alternate-exchange".into(), json!(self.exchange(0.1)));
        }
        let step = obj(json!({
            "op": "exchange_declare",
            "exchange": name,
            "type": kind,
            "durable": self.chance(0.3),
            "auto_delete": self.chance(0.08),
            "internal": self.chance(0.05),
            "passive": self.chance(0.05),
            "arguments": Value::Object(args),
        }));
        self.exchange_args.insert(name, step.clone());
        step
    }

    fn binding_key(&mut self) -> String {
        if self.chance(0.4) {
            self.pick(PATTERNS).to_string()
        } else {
            self.pick(&[KEYS, QUEUES].concat()).to_string()
        }
    }

    fn headers_args(&mut self) -> Value {
        if self.chance(0.5) {
            return json!({});
        }
        let mut m = Map::new();
        if self.chance(0.7) {
            let how = [
                "all", "any", "all", "any", "all", "any", "all", "any", "bogus",
            ][self.below(9)];
            m.insert("x-match".into(), json!(how));
        }
        if self.chance(0.8) {
            m.insert("h".into(), json!(["a", "b"][self.below(2)]));
        }
        if self.chance(0.5) {
            m.insert("n".into(), json!(1 + self.below(2)));
        }
        Value::Object(m)
    }

    fn queue_bind(&mut self) -> Step {
        obj(json!({
            "op": "queue_bind",
            "queue": self.queue_or_last(),
            "exchange": self.exchange(0.2),
            "routing_key": self.binding_key(),
            "arguments": self.headers_args(),
        }))
    }

    fn exchange_bind(&mut self) -> Step {
        obj(json!({
            "op": "exchange_bind",
            "destination": self.exchange(0.1),
            "source": self.exchange(0.2),
            "routing_key": self.binding_key(),
            "arguments": self.headers_args(),
        }))
    }

    fn unbind(&mut self) -> Step {
        let view = self.t.view();
        let live: Vec<_> = view
            .bindings
            .iter()
            .filter(|b| !b.source.is_empty())
            .collect();
        if !live.is_empty() && self.chance(0.8) {
            let b = live[self.below(live.len())];
            let (op, dest) = match b.destination_kind {
                sim_core::protocol::DestinationKind::Queue => ("queue_unbind", "queue"),
                sim_core::protocol::DestinationKind::Exchange => ("exchange_unbind", "destination"),
            };
            let src = if op == "queue_unbind" {
                "exchange"
            } else {
                "source"
            };
            let args = serde_json::to_value(&b.arguments).unwrap_or(json!({}));
            // Server-named queues are referred to by their alias.
            let dest_name = self.alias_of(&b.destination);
            // A key that is a server-named queue's name (the `""` shortcut
            // binds with it) differs between sim and broker: use its alias.
            let key = self.alias_of(&b.routing_key);
            return obj(json!({
                "op": op, dest: dest_name, src: b.source, "routing_key": key,
                "arguments": args,
            }));
        }
        obj(json!({
            "op": "queue_unbind",
            "queue": self.queue(),
            "exchange": self.exchange(0.1),
            "routing_key": self.binding_key(),
        }))
    }

    fn alias_of(&self, name: &str) -> String {
        (1..=self.t.server_named)
            .map(|i| format!("$q{i}"))
            .find(|a| self.t.queue_name(a) == name)
            .unwrap_or_else(|| name.to_string())
    }

    fn publish(&mut self) -> Step {
        self.bodies += 1;
        let exchange = self.exchange(0.35);
        let routing_key = if exchange.is_empty() || self.chance(0.2) {
            self.queue()
        } else {
            self.pick(KEYS).to_string()
        };
        let mut props = Map::new();
        if self.chance(0.5) {
            if self.chance(0.3) {
                props.insert("delivery_mode".into(), json!(1 + self.below(2)));
            }
            if self.chance(0.3) {
                props.insert("priority".into(), json!(self.below(12)));
            }
            if self.chance(0.25) {
                let e = [
                    "0", "20", "50", "100", "60000", "60000", "0", "50", "60000", "bogus",
                ][self.below(10)];
                props.insert("expiration".into(), json!(e));
            }
            if self.chance(0.3) {
                props.insert("headers".into(), self.headers_args());
            }
            for k in [
                "message_id",
                "correlation_id",
                "reply_to",
                "content_type",
                "type",
                "app_id",
            ] {
                if self.chance(0.08) {
                    props.insert(k.into(), json!(format!("{k}-{}", self.bodies)));
                }
            }
        }
        let mut step = obj(json!({
            "op": "publish",
            "exchange": exchange,
            "routing_key": routing_key,
            "body": format!("m{}", self.bodies),
            "mandatory": self.chance(0.3),
        }));
        if !props.is_empty() {
            step.insert("properties".into(), Value::Object(props));
        }
        step
    }

    fn get(&mut self) -> Step {
        obj(json!({"op": "get", "queue": self.queue_or_last(), "no_ack": self.chance(0.4)}))
    }

    fn consume(&mut self) -> Step {
        self.consumers += 1;
        let mut step = obj(json!({
            "op": "consume",
            "queue": self.queue_or_last(),
            "consumer_tag": format!("c{}", self.consumers),
            "no_ack": self.chance(0.3),
            "exclusive": self.chance(0.1),
        }));
        let mut args = Map::new();
        if self.chance(0.05) {
            args.insert("x-priority".into(), json!(self.below(3)));
        }
        if self.chance(0.05) {
            // Where a stream consumer starts ("last" is left out: it means the
            // last chunk, and how RabbitMQ chunks a burst is not reproducible;
            // so are short ages).
            let offsets = [
                json!("first"),
                json!("next"),
                json!(0),
                json!(1),
                json!(3),
                json!(-1),
                json!(100),
                json!("1h"),
                json!("1D"),
                json!("0s"),
                json!("5x"),
                json!("bogus"),
            ];
            args.insert(
                "x-stream-offset".into(),
                offsets[self.below(offsets.len())].clone(),
            );
        }
        if !args.is_empty() {
            step.insert("arguments".into(), Value::Object(args));
        }
        step
    }

    fn some_consumer(&mut self, active_only: bool) -> Option<String> {
        let tags: Vec<String> = self
            .t
            .consumers
            .iter()
            .filter(|(_, i)| i.active || !active_only)
            .map(|(t, _)| t.clone())
            .collect();
        if tags.is_empty() {
            None
        } else {
            Some(tags[self.below(tags.len())].clone())
        }
    }

    fn deliveries(&mut self) -> Step {
        match self.some_consumer(false) {
            Some(tag) => obj(json!({"op": "deliveries", "consumer_tag": tag})),
            None => self.consume(),
        }
    }

    fn cancel(&mut self) -> Step {
        let tag = self
            .some_consumer(true)
            .filter(|_| self.chance(0.9))
            .unwrap_or_else(|| "c-unknown".to_string());
        let mut step = obj(json!({"op": "cancel", "consumer_tag": tag}));
        if let Some(info) = self.t.consumers.get(&tag) {
            if info.connection != 1 {
                step.insert("connection".into(), json!(info.connection));
            }
            if info.channel != 1 {
                step.insert("channel".into(), json!(info.channel));
            }
        }
        step
    }

    /// ack / nack / reject of a delivery the client has seen (mostly), of a
    /// bogus tag, of a settled one, or of everything (`0` + multiple).
    fn settle(&mut self, op: &str) -> Step {
        let (c, ch) = match self.below(10) {
            0 | 1 => (1, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let ackable = self.t.ackable(c, ch);
        let seen = self.t.seen(c, ch);
        let (tag, multiple) = match self.below(20) {
            0 => (BOGUS_TAG + self.below(5) as u64, false),
            1 => (0, true),
            2 if !seen.is_empty() => (seen[self.below(seen.len())], false),
            _ if !ackable.is_empty() => (ackable[self.below(ackable.len())], self.chance(0.2)),
            // Nothing to settle: reject has no "all" form, so look instead.
            _ if op == "reject" => return self.deliveries(),
            _ => (0, true),
        };
        let mut step = obj(json!({"op": op, "delivery_tag": tag}));
        if op != "reject" {
            step.insert("multiple".into(), json!(multiple));
        }
        if op != "ack" {
            step.insert("requeue".into(), json!(self.chance(0.5)));
        }
        if c != 1 {
            step.insert("connection".into(), json!(c));
        }
        if ch != 1 {
            step.insert("channel".into(), json!(ch));
        }
        step
    }

    /// The closing observations: every consumer's deliveries, then what the
    /// queues hold (passive declares from a fresh channel).
    fn observe_end(&mut self) -> anyhow::Result<()> {
        let tags: Vec<String> = self.t.consumers.keys().cloned().collect();
        for tag in tags.iter().take(2) {
            self.push(obj(json!({"op": "deliveries", "consumer_tag": tag})))?;
        }
        // What the queues hold: those that exist (a missing one is a 404 that
        // says nothing new).
        let live: Vec<String> = self
            .t
            .view()
            .queues
            .iter()
            .filter(|q| QUEUES.contains(&q.name.as_str()))
            .map(|q| q.name.clone())
            .collect();
        for q in live.iter().take(2) {
            let mut s = obj(json!({"op": "queue_declare", "queue": q, "passive": true}));
            if !self.t.is_open(1, Some(1)) {
                if !self.t.is_open(1, None) {
                    self.push(obj(json!({"op": "connection_open"})))?;
                } else {
                    self.push(obj(json!({"op": "channel_open"})))?;
                }
            }
            s.insert("channel".into(), json!(1));
            self.push(s)?;
        }
        Ok(())
    }
}
