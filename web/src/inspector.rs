//! What the inspector shows, pure: every message's route history and the
//! messages each queue holds, built from the protocol stream.
//!
//! The simulation explains itself with `trace` events (which binding matched,
//! why a message was dropped or dead-lettered); RabbitMQ does not, so in real
//! mode the route of a publish is inferred from the user's own topology
//! ([`infer_route`]) and every such step is flagged `inferred`. Deliveries
//! carry the message as the consumer sees it, headers (and `x-death`) included.

use serde_json::Value;
use sim_core::protocol::{DestinationKind, ExchangeKind, FieldTable, Message, MessageId, Trace};
use sim_core::scenario::Scenario;

use crate::i18n::Lang;
use crate::vecmap::VecMap;

/// At most this many messages are remembered (the oldest are forgotten).
pub const MAX_MESSAGES: usize = 300;

/// One step of a message's journey.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Published {
        producer: String,
        exchange: String,
        routing_key: String,
    },
    Routed {
        exchange: String,
        destination: String,
        to_exchange: bool,
        binding_key: String,
        why: String,
    },
    Alternate {
        exchange: String,
        alternate: String,
    },
    Enqueued {
        queue: String,
    },
    Delivered {
        consumer: String,
        delivery_tag: u64,
        redelivered: bool,
    },
    Acked {
        consumer: String,
    },
    Rejected {
        consumer: String,
        requeue: bool,
    },
    Requeued {
        queue: String,
    },
    DeadLettered {
        queue: String,
        reason: String,
        exchange: String,
        routing_key: String,
    },
    Dropped {
        queue: Option<String>,
        why: String,
    },
    Returned {
        code: u16,
        text: String,
    },
    Refused {
        text: String,
    },
}

/// `template` with `{0}`, `{1}`, … replaced by `args` (one formatting
/// routine for every sentence in every language keeps the bundle small).
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        match (tail.as_bytes().first(), tail.as_bytes().get(1)) {
            (Some(d @ b'0'..=b'9'), Some(b'}')) => {
                out.push_str(args.get(usize::from(d - b'0')).copied().unwrap_or(""));
                rest = &tail[2..];
            }
            _ => {
                out.push('{');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The reasons the simulation gives for a route or a drop, `[en, ru, uk]`:
/// the English is sim-core's own wording, which [`rule_text`] recognises.
const RULES: &[[&str; 3]] = &[
    [
        "no queue matched key '{0}' at exchange '{1}'; returned to the publisher (mandatory)",
        "ни одна очередь не подошла под ключ '{0}' на exchange '{1}'; возвращено отправителю (mandatory)",
        "жодна черга не підійшла під ключ '{0}' на exchange '{1}'; повернуто відправнику (mandatory)",
    ],
    [
        "no queue matched key '{0}' at exchange '{1}'",
        "ни одна очередь не подошла под ключ '{0}' на exchange '{1}'",
        "жодна черга не підійшла під ключ '{0}' на exchange '{1}'",
    ],
    [
        "queue '{0}' was purged",
        "очередь '{0}' очищена (purge)",
        "черга '{0}' очищена (purge)",
    ],
    [
        "queue '{0}' was deleted",
        "очередь '{0}' удалена",
        "черга '{0}' видалена",
    ],
    [
        "queue '{0}' is full and its overflow is {1}",
        "очередь '{0}' заполнена, её overflow: {1}",
        "черга '{0}' заповнена, її overflow: {1}",
    ],
    [
        "its TTL ran out and the queue has no dead-letter exchange",
        "истёк его TTL, а у очереди нет dead-letter exchange",
        "сплив його TTL, а черга не має dead-letter exchange",
    ],
    [
        "the queue was full (drop-head) and has no dead-letter exchange",
        "очередь была заполнена (drop-head), и у неё нет dead-letter exchange",
        "черга була заповнена (drop-head) і не має dead-letter exchange",
    ],
    [
        "rejected without requeue and the queue has no dead-letter exchange",
        "отклонено без requeue, а у очереди нет dead-letter exchange",
        "відхилено без requeue, а черга не має dead-letter exchange",
    ],
    [
        "returned more often than the queue's x-delivery-limit, and the queue has no dead-letter exchange",
        "возвращалось чаще, чем позволяет x-delivery-limit очереди, а у очереди нет dead-letter exchange",
        "поверталося частіше, ніж дозволяє x-delivery-limit черги, а черга не має dead-letter exchange",
    ],
    [
        "dead-letter exchange '{0}' does not exist",
        "dead-letter exchange '{0}' не существует",
        "dead-letter exchange '{0}' не існує",
    ],
    [
        "dead-letter exchange '{0}' routed key '{1}' to no queue (or only into a cycle)",
        "dead-letter exchange '{0}' не направил ключ '{1}' ни в одну очередь (или только по кругу)",
        "dead-letter exchange '{0}' не спрямував ключ '{1}' у жодну чергу (або лише по колу)",
    ],
    [
        "requeued after its queue was deleted",
        "возвращено в очередь, которой уже нет",
        "повернуто в чергу, якої вже немає",
    ],
    [
        "transient message lost in the broker restart",
        "нестойкое (transient) сообщение потеряно при перезапуске брокера",
        "нестійке (transient) повідомлення втрачено під час перезапуску брокера",
    ],
    [
        "direct: routing key '{0}' equals the binding key",
        "direct: ключ маршрутизации '{0}' равен ключу привязки",
        "direct: ключ маршрутизації '{0}' дорівнює ключу прив'язки",
    ],
    [
        "topic: routing key '{0}' matches pattern '{1}'",
        "topic: ключ маршрутизации '{0}' подходит под шаблон '{1}'",
        "topic: ключ маршрутизації '{0}' відповідає шаблону '{1}'",
    ],
    [
        "fanout: every binding gets a copy",
        "fanout: каждая привязка получает копию",
        "fanout: кожна прив'язка отримує копію",
    ],
    [
        "x-match={0}: every header of the binding matches",
        "x-match={0}: совпали все заголовки привязки",
        "x-match={0}: збіглися всі заголовки прив'язки",
    ],
    [
        "x-match={0}: header '{1}' matches",
        "x-match={0}: совпал заголовок '{1}'",
        "x-match={0}: збігся заголовок '{1}'",
    ],
    [
        "default exchange: routing key equals the queue name",
        "default exchange: ключ маршрутизации равен имени очереди",
        "default exchange: ключ маршрутизації дорівнює імені черги",
    ],
];

/// The simulation's reason for a route or a drop (English, from sim-core)
/// in `lang`; one it does not know stays as it is.
pub fn rule_text(rule: &str, lang: Lang) -> String {
    for t in RULES {
        if let Some(args) = unfill(t[0], rule) {
            return fill(pick(lang, *t), &args);
        }
    }
    rule.to_string()
}

/// The arguments that [`fill`] put into `template` to make `text`, if it did.
fn unfill<'a>(template: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let mut args = Vec::new();
    let (mut t, mut rest) = (template, text);
    loop {
        let Some(i) = t.find('{') else {
            return (rest == t).then_some(args);
        };
        rest = rest.strip_prefix(&t[..i])?;
        t = t.get(i + 3..)?;
        // An argument runs to where the template's next words begin.
        let next = &t[..t.find('{').unwrap_or(t.len())];
        let end = if next.is_empty() {
            rest.len()
        } else {
            rest.find(next)?
        };
        args.push(&rest[..end]);
        rest = &rest[end..];
    }
}

/// The template of `lang` among `[en, ru, uk]`.
pub fn pick(lang: Lang, t: [&'static str; 3]) -> &'static str {
    match lang {
        Lang::En => t[0],
        Lang::Ru => t[1],
        Lang::Uk => t[2],
    }
}

impl Step {
    /// The step as a sentence, e.g. "matched binding `order.*` on exchange `orders` → `orders.new`".
    pub fn text(&self, lang: Lang) -> String {
        let x = |name: &str| {
            if name.is_empty() {
                "(default)".to_string()
            } else {
                name.to_string()
            }
        };
        let (t, args): ([&'static str; 3], Vec<String>) = match self {
            Step::Published {
                producer,
                exchange,
                routing_key,
            } => (
                [
                    "published by {0} to exchange `{1}` with key `{2}`",
                    "опубликовано {0} в exchange `{1}` с ключом `{2}`",
                    "опубліковано {0} в exchange `{1}` з ключем `{2}`",
                ],
                vec![producer.clone(), x(exchange), routing_key.clone()],
            ),
            Step::Routed {
                exchange,
                destination,
                to_exchange,
                binding_key,
                why,
            } => {
                let d = if *to_exchange {
                    format!("exchange `{destination}`")
                } else {
                    format!("`{destination}`")
                };
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rule_text(why, lang))
                };
                if binding_key.is_empty() {
                    (
                        ["exchange `{1}` → {2}{3}"; 3],
                        vec![String::new(), x(exchange), d, why],
                    )
                } else {
                    (
                        [
                            "matched binding `{0}` on exchange `{1}` → {2}{3}",
                            "совпала привязка `{0}` на exchange `{1}` → {2}{3}",
                            "збіглася прив'язка `{0}` на exchange `{1}` → {2}{3}",
                        ],
                        vec![binding_key.clone(), x(exchange), d, why],
                    )
                }
            }
            Step::Alternate {
                exchange,
                alternate,
            } => (
                [
                    "no binding matched on `{0}`: to alternate exchange `{1}`",
                    "на `{0}` ничего не совпало: в alternate exchange `{1}`",
                    "на `{0}` нічого не збіглося: до alternate exchange `{1}`",
                ],
                vec![exchange.clone(), alternate.clone()],
            ),
            Step::Enqueued { queue } => (
                [
                    "ready in queue `{0}`",
                    "готово в очереди `{0}`",
                    "готове в черзі `{0}`",
                ],
                vec![queue.clone()],
            ),
            Step::Delivered {
                consumer,
                delivery_tag,
                redelivered,
            } => (
                [
                    "delivered to {0}, tag {1}{2}",
                    "доставлено {0}, tag {1}{2}",
                    "доставлено {0}, tag {1}{2}",
                ],
                vec![
                    consumer.clone(),
                    delivery_tag.to_string(),
                    if *redelivered { " (redelivered)" } else { "" }.into(),
                ],
            ),
            Step::Acked { consumer } => (
                [
                    "acked by {0}: gone from the queue",
                    "{0} подтвердил (ack): удалено из очереди",
                    "{0} підтвердив (ack): видалено з черги",
                ],
                vec![consumer.clone()],
            ),
            Step::Rejected {
                consumer,
                requeue: true,
            } => (
                [
                    "{0} nacked it with requeue",
                    "{0} вернул его в очередь (nack, requeue)",
                    "{0} повернув його в чергу (nack, requeue)",
                ],
                vec![consumer.clone()],
            ),
            Step::Rejected { consumer, .. } => (
                [
                    "{0} rejected it (no requeue)",
                    "{0} отклонил его (reject без requeue)",
                    "{0} відхилив його (reject без requeue)",
                ],
                vec![consumer.clone()],
            ),
            Step::Requeued { queue } => (
                [
                    "back in queue `{0}`, flagged redelivered",
                    "снова в очереди `{0}`, помечено redelivered",
                    "знову в черзі `{0}`, позначено redelivered",
                ],
                vec![queue.clone()],
            ),
            Step::DeadLettered {
                queue,
                reason,
                exchange,
                routing_key,
            } => (
                [
                    "dead-lettered from `{0}` ({1}) to exchange `{2}` with key `{3}`",
                    "dead-letter из `{0}` ({1}) в exchange `{2}` с ключом `{3}`",
                    "dead-letter з `{0}` ({1}) до exchange `{2}` з ключем `{3}`",
                ],
                vec![
                    queue.clone(),
                    reason.clone(),
                    x(exchange),
                    routing_key.clone(),
                ],
            ),
            Step::Dropped { queue, why } => (
                ["dropped{0}: {1}", "удалено{0}: {1}", "видалено{0}: {1}"],
                vec![
                    queue
                        .as_ref()
                        .map(|q| format!(" `{q}`"))
                        .unwrap_or_default(),
                    rule_text(why, lang),
                ],
            ),
            Step::Returned { code, text } => (
                [
                    "returned to the producer: {0} {1}",
                    "возвращено отправителю: {0} {1}",
                    "повернуто відправнику: {0} {1}",
                ],
                vec![code.to_string(), text.clone()],
            ),
            Step::Refused { text } => (
                [
                    "the broker refused the publish: {0}",
                    "брокер отказал в публикации: {0}",
                    "брокер відмовив у публікації: {0}",
                ],
                vec![text.clone()],
            ),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fill(pick(lang, t), &args)
    }
}

impl Step {
    /// The step a trace reports, and of which message (`None`: an ack,
    /// whose consumer the trace does not name).
    pub fn of_trace(t: &Trace) -> Option<(MessageId, Step)> {
        let step = match t {
            Trace::Routed {
                exchange,
                destination_kind,
                destination,
                binding_key,
                why,
                ..
            } => Step::Routed {
                exchange: exchange.clone(),
                destination: destination.clone(),
                to_exchange: *destination_kind == DestinationKind::Exchange,
                binding_key: binding_key.clone(),
                why: why.clone(),
            },
            Trace::ToAlternateExchange {
                exchange,
                alternate,
                ..
            } => Step::Alternate {
                exchange: exchange.clone(),
                alternate: alternate.clone(),
            },
            Trace::Enqueued { queue, .. } => Step::Enqueued {
                queue: queue.clone(),
            },
            Trace::Requeued { queue, .. } => Step::Requeued {
                queue: queue.clone(),
            },
            Trace::Acked { .. } => return None,
            Trace::DeadLettered {
                queue,
                reason,
                dead_letter_exchange,
                routing_key,
                ..
            } => Step::DeadLettered {
                queue: queue.clone(),
                reason: reason.as_str().to_string(),
                exchange: dead_letter_exchange.clone(),
                routing_key: routing_key.clone(),
            },
            Trace::Dropped { queue, why, .. } => Step::Dropped {
                queue: queue.clone(),
                why: why.clone(),
            },
        };
        Some((t.message_id(), step))
    }
}

/// One step with its time and whether the broker said it or the page inferred it.
#[derive(Clone, Debug, PartialEq)]
pub struct Hop {
    /// Animation time, ms.
    pub at: f64,
    pub step: Step,
    pub inferred: bool,
}

/// Where a message is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Moving,
    Ready,
    Unacked,
    Acked,
    Dropped,
    Returned,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Moving => "moving",
            Fate::Ready => "ready",
            Fate::Unacked => "unacked",
            Fate::Acked => "acked",
            Fate::Dropped => "dropped",
            Fate::Returned => "returned",
        }
    }
}

/// Everything known about one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: MessageId,
    /// The producer's own count (`#3`), 0 if it was not published here.
    pub n: u64,
    pub producer: String,
    pub exchange: String,
    pub routing_key: String,
    /// As published, then as last delivered (with `x-death` after dead-lettering).
    pub message: Message,
    pub hops: Vec<Hop>,
    pub redelivered: bool,
    pub fate: Fate,
}

impl Record {
    /// `#3` (or the message id when it was not published here).
    pub fn label(&self) -> String {
        if self.n > 0 {
            format!("#{}", self.n)
        } else {
            format!("m{}", self.id)
        }
    }

    /// The `x-death` trail: `(queue, reason, count, exchange)` per entry.
    pub fn x_death(&self) -> Vec<(String, String, String, String)> {
        let Some(Value::Array(list)) = self
            .message
            .properties
            .headers
            .as_ref()
            .and_then(|h| h.get("x-death"))
        else {
            return Vec::new();
        };
        let s = |o: &serde_json::Map<String, Value>, k: &str| match o.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        list.iter()
            .filter_map(Value::as_object)
            .map(|o| {
                (
                    s(o, "queue"),
                    s(o, "reason"),
                    s(o, "count"),
                    s(o, "exchange"),
                )
            })
            .collect()
    }
}

/// The messages a queue holds, oldest first.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Contents {
    pub ready: Vec<MessageId>,
    /// `(message, consumer)`.
    pub unacked: Vec<(MessageId, String)>,
}

/// Every message's story and every queue's contents.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Journal {
    pub records: VecMap<MessageId, Record>,
    pub queues: VecMap<String, Contents>,
    /// The broker sent traces: routing is reported, not inferred.
    pub traced: bool,
}

impl Journal {
    fn record(&mut self, id: MessageId) -> &mut Record {
        if !self.records.contains_key(&id) && self.records.len() >= MAX_MESSAGES {
            // Forget the oldest finished message (or the oldest at all).
            let old = self
                .records
                .values()
                .find(|r| matches!(r.fate, Fate::Acked | Fate::Dropped | Fate::Returned))
                .or_else(|| self.records.values().next())
                .map(|r| r.id);
            if let Some(old) = old {
                self.records.remove(&old);
            }
        }
        self.records.get_or_insert_with(id, || Record {
            id,
            n: 0,
            producer: String::new(),
            exchange: String::new(),
            routing_key: String::new(),
            message: Message::default(),
            hops: Vec::new(),
            redelivered: false,
            fate: Fate::Moving,
        })
    }

    fn hop(&mut self, id: MessageId, at: f64, step: Step, inferred: bool) {
        let r = self.record(id);
        r.hops.push(Hop { at, step, inferred });
        if r.hops.len() > 64 {
            r.hops.remove(1);
        }
    }

    fn contents(&mut self, queue: &str) -> &mut Contents {
        self.queues
            .get_or_insert_with(queue.to_string(), Contents::default)
    }

    fn leave(&mut self, id: MessageId, queue: &str) {
        if let Some(c) = self.queues.get_mut(queue) {
            c.ready.retain(|m| *m != id);
            c.unacked.retain(|(m, _)| *m != id);
        }
    }

    /// A publish of ours got message id `id` (the hop goes first: the broker
    /// may have reported routing before the reply named the message).
    #[allow(clippy::too_many_arguments)]
    pub fn published(
        &mut self,
        id: MessageId,
        n: u64,
        producer: &str,
        exchange: &str,
        routing_key: &str,
        message: Message,
        at: f64,
    ) {
        let r = self.record(id);
        r.n = n;
        r.producer = producer.to_string();
        r.exchange = exchange.to_string();
        r.routing_key = routing_key.to_string();
        if r.message == Message::default() {
            r.message = message;
        }
        r.hops.insert(
            0,
            Hop {
                at,
                step: Step::Published {
                    producer: producer.to_string(),
                    exchange: exchange.to_string(),
                    routing_key: routing_key.to_string(),
                },
                inferred: false,
            },
        );
    }

    /// What the broker reported.
    pub fn trace(&mut self, t: &Trace, at: f64) {
        self.traced = true;
        match t {
            Trace::Enqueued { message_id, queue } => {
                return self.enqueued(*message_id, queue, at, false);
            }
            Trace::Requeued { message_id, queue } => {
                self.leave(*message_id, queue);
                self.contents(queue).ready.insert(0, *message_id);
                let r = self.record(*message_id);
                r.redelivered = true;
                r.fate = Fate::Ready;
            }
            Trace::Acked { message_id, queue } => {
                self.leave(*message_id, queue);
                self.record(*message_id).fate = Fate::Acked;
            }
            Trace::DeadLettered {
                message_id, queue, ..
            } => {
                self.leave(*message_id, queue);
                self.record(*message_id).fate = Fate::Moving;
            }
            Trace::Dropped {
                message_id, queue, ..
            } => {
                if let Some(q) = queue {
                    self.leave(*message_id, q);
                }
                // A copy dropped by one queue does not end the copies in others.
                let elsewhere = self.queues.values().any(|c| {
                    c.ready.contains(message_id) || c.unacked.iter().any(|(m, _)| m == message_id)
                });
                if !elsewhere {
                    self.record(*message_id).fate = Fate::Dropped;
                }
            }
            Trace::Routed { .. } | Trace::ToAlternateExchange { .. } => {}
        }
        if let Some((id, step)) = Step::of_trace(t) {
            self.hop(id, at, step, false);
        }
    }

    fn enqueued(&mut self, id: MessageId, queue: &str, at: f64, inferred: bool) {
        let c = self.contents(queue);
        if !c.ready.contains(&id) {
            c.ready.push(id);
        }
        self.record(id).fate = Fate::Ready;
        self.hop(
            id,
            at,
            Step::Enqueued {
                queue: queue.to_string(),
            },
            inferred,
        );
    }

    /// Real mode: the route of a publish, inferred from `sc` (ready in every
    /// queue it reaches).
    pub fn infer(&mut self, sc: &Scenario, id: MessageId, at: f64) -> Vec<(String, String)> {
        let (exchange, key, headers) = match self.records.get(&id) {
            Some(r) => (
                r.exchange.clone(),
                r.routing_key.clone(),
                r.message.properties.headers.clone(),
            ),
            None => return Vec::new(),
        };
        let route = infer_route(sc, &exchange, &key, headers.as_ref());
        let mut queues = Vec::new();
        for hop in &route {
            if let Step::Routed {
                destination,
                to_exchange: false,
                ..
            } = hop
            {
                queues.push(destination.clone());
            }
            self.hop(id, at, hop.clone(), true);
        }
        if queues.is_empty() {
            self.record(id).fate = Fate::Dropped;
        }
        let mut edges = Vec::new();
        for hop in route {
            match hop {
                Step::Routed {
                    exchange,
                    destination,
                    to_exchange,
                    ..
                } => edges.push((
                    format!("exchange:{exchange}"),
                    format!(
                        "{}:{destination}",
                        if to_exchange { "exchange" } else { "queue" }
                    ),
                )),
                Step::Alternate {
                    exchange,
                    alternate,
                } => edges.push((
                    format!("exchange:{exchange}"),
                    format!("exchange:{alternate}"),
                )),
                _ => {}
            }
        }
        for q in queues {
            self.enqueued(id, &q, at, true);
        }
        edges
    }

    /// A delivery to `consumer` reading `queue`.
    #[allow(clippy::too_many_arguments)]
    pub fn delivered(
        &mut self,
        id: MessageId,
        queue: &str,
        consumer: &str,
        delivery_tag: u64,
        redelivered: bool,
        message: Message,
        at: f64,
    ) {
        let traced = self.traced;
        let c = self.contents(queue);
        match c.ready.iter().position(|m| *m == id) {
            Some(i) => {
                c.ready.remove(i);
            }
            // Real mode: ids may not line up; the oldest inferred ready one went.
            None if !traced && !c.ready.is_empty() => {
                c.ready.remove(0);
            }
            None => {}
        }
        let c = self.contents(queue);
        c.unacked.push((id, consumer.to_string()));
        let r = self.record(id);
        r.message = message;
        r.redelivered |= redelivered;
        r.fate = Fate::Unacked;
        self.hop(
            id,
            at,
            Step::Delivered {
                consumer: consumer.to_string(),
                delivery_tag,
                redelivered,
            },
            false,
        );
    }

    /// Our consumer settled a message: ack, or reject/nack (`requeue`).
    pub fn settled(
        &mut self,
        id: MessageId,
        queue: &str,
        consumer: &str,
        ack: bool,
        requeue: bool,
        at: f64,
    ) {
        self.leave(id, queue);
        let step = if ack {
            Step::Acked {
                consumer: consumer.to_string(),
            }
        } else {
            Step::Rejected {
                consumer: consumer.to_string(),
                requeue,
            }
        };
        self.hop(id, at, step, false);
        let traced = self.traced;
        let r = self.record(id);
        if ack {
            r.fate = Fate::Acked;
        } else if requeue && !traced {
            // Real mode: the broker puts it back at the head of the queue.
            r.fate = Fate::Ready;
            r.redelivered = true;
            self.contents(queue).ready.insert(0, id);
        } else if !traced {
            r.fate = Fate::Dropped;
        }
    }

    pub fn returned(&mut self, id: MessageId, code: u16, text: &str, at: f64) {
        self.record(id).fate = Fate::Returned;
        self.hop(
            id,
            at,
            Step::Returned {
                code,
                text: text.to_string(),
            },
            false,
        );
    }

    /// A queue was deleted (or declared anew): its messages are gone.
    /// Real mode: `queue` was purged (RabbitMQ says only how many went, so
    /// what the page had ready there is dropped, inferred).
    pub fn purged(&mut self, queue: &str, at: f64) {
        let ready = match self.queues.get_mut(queue) {
            Some(c) => std::mem::take(&mut c.ready),
            None => return,
        };
        for id in ready {
            self.record(id).fate = Fate::Dropped;
            self.hop(
                id,
                at,
                Step::Dropped {
                    queue: Some(queue.to_string()),
                    why: format!("queue '{queue}' was purged"),
                },
                true,
            );
        }
    }

    pub fn queue_gone(&mut self, queue: &str) {
        if let Some(c) = self.queues.remove(queue) {
            for id in c
                .ready
                .iter()
                .copied()
                .chain(c.unacked.iter().map(|(m, _)| *m))
            {
                if let Some(r) = self.records.get_mut(&id) {
                    r.fate = Fate::Dropped;
                }
            }
        }
    }
}

fn field_eq(pattern: &Value, header: &Value) -> bool {
    match (pattern, header) {
        (Value::String(a), Value::String(b)) => a == b,
        (a, b) => a == b || a.to_string().trim_matches('"') == b.to_string().trim_matches('"'),
    }
}

/// Headers matching as RabbitMQ does for `x-match` `all` and `any` (other
/// `x-` keys ignored; a null pattern only asks for presence).
pub fn headers_match(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let any = matches!(
        args.get("x-match").and_then(Value::as_str),
        Some("any") | Some("any-with-x")
    );
    let mut hits = args
        .iter()
        .filter(|(k, _)| !k.starts_with("x-"))
        .map(|(k, p)| match headers.and_then(|h| h.get(k)) {
            None => false,
            Some(v) => p.is_null() || field_eq(p, v),
        });
    if any {
        hits.any(|h| h)
    } else {
        hits.all(|h| h)
    }
}

/// The route RabbitMQ would take for a publish to `exchange` with `key`, by
/// the bindings of `sc`: `Routed` (and `Alternate`) steps, each queue once.
pub fn infer_route(
    sc: &Scenario,
    exchange: &str,
    key: &str,
    headers: Option<&FieldTable>,
) -> Vec<Step> {
    let mut out = Vec::new();
    if exchange.is_empty() {
        if sc.topology.queues.iter().any(|q| q.name == key) {
            out.push(Step::Routed {
                exchange: String::new(),
                destination: key.to_string(),
                to_exchange: false,
                binding_key: key.to_string(),
                why: String::new(),
            });
        }
        return out;
    }
    let mut work = vec![exchange.to_string()];
    let mut seen = vec![exchange.to_string()];
    let mut queues: Vec<String> = Vec::new();
    while let Some(x) = work.pop() {
        let Some(def) = sc.topology.exchanges.iter().find(|d| d.name == x) else {
            continue;
        };
        let mut hit = false;
        for b in sc.topology.bindings.iter().filter(|b| b.source == x) {
            let ok = match def.kind {
                ExchangeKind::Fanout => true,
                ExchangeKind::Direct => b.routing_key == key,
                ExchangeKind::Topic => crate::lesson::topic_match(&b.routing_key, key),
                ExchangeKind::Headers => headers_match(&b.arguments, headers),
            };
            if !ok {
                continue;
            }
            hit = true;
            let label = match def.kind {
                ExchangeKind::Headers => crate::editor::headers_text(&b.arguments),
                _ => b.routing_key.clone(),
            };
            match (&b.queue, &b.exchange) {
                (Some(q), _) if !queues.contains(q) => {
                    queues.push(q.clone());
                    out.push(Step::Routed {
                        exchange: x.clone(),
                        destination: q.clone(),
                        to_exchange: false,
                        binding_key: label,
                        why: String::new(),
                    });
                }
                (None, Some(d)) => {
                    out.push(Step::Routed {
                        exchange: x.clone(),
                        destination: d.clone(),
                        to_exchange: true,
                        binding_key: label,
                        why: String::new(),
                    });
                    if !seen.contains(d) {
                        seen.push(d.clone());
                        work.push(d.clone());
                    }
                }
                _ => {}
            }
        }
        if !hit {
            if let Some(Value::String(ae)) = def.arguments.get("alternate-exchange") {
                out.push(Step::Alternate {
                    exchange: x.clone(),
                    alternate: ae.clone(),
                });
                if !seen.contains(ae) {
                    seen.push(ae.clone());
                    work.push(ae.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(v: serde_json::Value) -> FieldTable {
        v.as_object().cloned().unwrap_or_default()
    }

    /// The reasons a fresh simulation gives (routes and drops) for `requests`,
    /// its clock run to `until_ms` after them.
    fn reasons(requests: Vec<serde_json::Value>, until_ms: u64) -> Vec<String> {
        use sim_core::protocol::{Event, Request};
        let mut broker = sim_core::Broker::new(1);
        broker.set_tracing(true);
        for (id, mut r) in requests.into_iter().enumerate() {
            r["id"] = json!(id);
            let req: Request = serde_json::from_value(r).expect("request");
            broker.handle_request(req);
        }
        broker.handle_timeout(until_ms);
        let mut out = Vec::new();
        while let Some(frame) = broker.poll_event() {
            match frame.event {
                Event::Trace(Trace::Routed { why, .. } | Trace::Dropped { why, .. }) => {
                    out.push(why)
                }
                Event::Reply { result, id } => {
                    assert!(format!("{result:?}").starts_with("Ok"), "#{id}: {result:?}")
                }
                _ => {}
            }
        }
        out
    }

    /// Every reason the simulation gives, for a route through every kind of
    /// exchange and for a message dropped in every way these requests make,
    /// is worded in Russian and Ukrainian (were sim-core to change its
    /// wording, this fails).
    #[test]
    fn every_reason_the_simulation_gives_is_translated() {
        let q = |name: &str, args: serde_json::Value| json!({"op": "queue_declare", "queue": name, "arguments": args});
        let publish =
            |x: &str, key: &str| json!({"op": "publish", "exchange": x, "routing_key": key});
        let routes = reasons(
            vec![
                json!({"op": "connection_open"}),
                q("q", json!({})),
                json!({"op": "exchange_declare", "exchange": "d", "type": "direct"}),
                json!({"op": "exchange_declare", "exchange": "t", "type": "topic"}),
                json!({"op": "exchange_declare", "exchange": "f", "type": "fanout"}),
                json!({"op": "exchange_declare", "exchange": "h", "type": "headers"}),
                json!({"op": "queue_bind", "queue": "q", "exchange": "d", "routing_key": "k"}),
                json!({"op": "queue_bind", "queue": "q", "exchange": "t", "routing_key": "k.*"}),
                json!({"op": "queue_bind", "queue": "q", "exchange": "f"}),
                json!({"op": "queue_bind", "queue": "q", "exchange": "h", "arguments": {"a": "1"}}),
                json!({"op": "queue_bind", "queue": "q", "exchange": "h",
                       "arguments": {"x-match": "any", "a": "1", "b": "2"}}),
                publish("", "q"),
                publish("d", "k"),
                publish("t", "k.x"),
                publish("f", ""),
                json!({"op": "publish", "exchange": "h", "properties": {"headers": {"a": "1"}}}),
            ],
            0,
        );
        let drops = reasons(
            vec![
                json!({"op": "connection_open"}),
                json!({"op": "exchange_declare", "exchange": "d", "type": "direct"}),
                publish("d", "nowhere"),
                json!({"op": "publish", "exchange": "d", "routing_key": "nowhere", "mandatory": true}),
                q("p", json!({})),
                publish("", "p"),
                json!({"op": "queue_purge", "queue": "p"}),
                q("gone", json!({})),
                publish("", "gone"),
                json!({"op": "queue_delete", "queue": "gone"}),
                q(
                    "full",
                    json!({"x-max-length": 0, "x-overflow": "reject-publish"}),
                ),
                publish("", "full"),
                q("head", json!({"x-max-length": 1})),
                publish("", "head"),
                publish("", "head"),
                q("ttl", json!({"x-message-ttl": 5})),
                publish("", "ttl"),
                q(
                    "dlx",
                    json!({"x-max-length": 1, "x-dead-letter-exchange": "nope"}),
                ),
                publish("", "dlx"),
                publish("", "dlx"),
                q(
                    "dlk",
                    json!({"x-max-length": 1, "x-dead-letter-exchange": "d"}),
                ),
                publish("", "dlk"),
                publish("", "dlk"),
                q("rj", json!({})),
                json!({"op": "consume", "queue": "rj", "consumer_tag": "c"}),
                publish("", "rj"),
                json!({"op": "reject", "delivery_tag": 1, "requeue": false}),
            ],
            100,
        );
        let restart = reasons(
            vec![
                json!({"op": "connection_open"}),
                json!({"op": "queue_declare", "queue": "kept", "durable": true}),
                publish("", "kept"),
                json!({"op": "broker_restart"}),
            ],
            0,
        );
        let seen: Vec<&String> = routes.iter().chain(&drops).chain(&restart).collect();
        for t in RULES {
            // Two ways to lose a message need a quorum queue or a consumer
            // racing a delete; their wording is checked by hand below.
            let rare = t[0].contains("x-delivery-limit") || t[0].starts_with("requeued after");
            assert!(
                rare || seen.iter().any(|r| unfill(t[0], r).is_some()),
                "no request gave {:?}: {seen:?}",
                t[0]
            );
        }
        for reason in seen {
            for lang in [Lang::Ru, Lang::Uk] {
                let worded = rule_text(reason, lang);
                assert_ne!(&worded, reason, "{reason:?} is not translated");
                assert!(!worded.contains('{'), "{worded}");
            }
            assert_eq!(&rule_text(reason, Lang::En), reason);
        }
        assert_eq!(
            rule_text("topic: routing key 'a.b' matches pattern 'a.*'", Lang::Ru),
            "topic: ключ маршрутизации 'a.b' подходит под шаблон 'a.*'"
        );
        assert_eq!(
            rule_text("requeued after its queue was deleted", Lang::Uk),
            "повернуто в чергу, якої вже немає"
        );
        assert_eq!(rule_text("something new", Lang::Uk), "something new");
    }

    #[test]
    fn fill_replaces_numbered_places_only() {
        assert_eq!(fill("a {0} b {1}{0}", &["x", "y"]), "a x b yx");
        assert_eq!(fill("{n} {9} {", &["x"]), "{n}  {");
        assert_eq!(pick(Lang::Uk, ["e", "r", "u"]), "u");
    }

    #[test]
    fn headers_match_all_and_any() {
        let h = table(json!({"format": "pdf", "lang": "uk"}));
        assert!(headers_match(&table(json!({"format": "pdf"})), Some(&h)));
        assert!(!headers_match(
            &table(json!({"format": "pdf", "lang": "en"})),
            Some(&h)
        ));
        assert!(headers_match(
            &table(json!({"x-match": "any", "format": "pdf", "lang": "en"})),
            Some(&h)
        ));
        assert!(headers_match(&table(json!({"lang": null})), Some(&h)));
        assert!(!headers_match(&table(json!({"format": "pdf"})), None));
    }

    #[test]
    fn real_mode_route_follows_exchange_bindings_and_the_alternate() {
        let mut sc = crate::editor::empty();
        let x = |name: &str, kind, ae: Option<&str>| sim_core::scenario::ExchangeDef {
            name: name.into(),
            kind,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: ae
                .map(|a| table(json!({ "alternate-exchange": a })))
                .unwrap_or_default(),
        };
        let q = |name: &str| sim_core::scenario::QueueDef {
            name: name.into(),
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        };
        let b = |source: &str, queue: Option<&str>, exchange: Option<&str>, key: &str| {
            sim_core::scenario::BindingDef {
                source: source.into(),
                queue: queue.map(Into::into),
                exchange: exchange.map(Into::into),
                routing_key: key.into(),
                arguments: FieldTable::new(),
            }
        };
        sc.topology.exchanges = vec![
            x("shop", ExchangeKind::Topic, Some("lost")),
            x("audit", ExchangeKind::Fanout, None),
            x("lost", ExchangeKind::Fanout, None),
        ];
        sc.topology.queues = vec![q("orders"), q("log"), q("unrouted")];
        sc.topology.bindings = vec![
            b("shop", Some("orders"), None, "order.*"),
            b("shop", None, Some("audit"), "#.paid"),
            b("audit", Some("log"), None, ""),
            b("lost", Some("unrouted"), None, ""),
        ];
        let dests = |key: &str| -> Vec<String> {
            infer_route(&sc, "shop", key, None)
                .into_iter()
                .map(|s| s.text(Lang::En))
                .collect()
        };
        assert_eq!(
            dests("order.paid"),
            [
                "matched binding `order.*` on exchange `shop` → `orders`",
                "matched binding `#.paid` on exchange `shop` → exchange `audit`",
                "exchange `audit` → `log`",
            ]
        );
        assert_eq!(
            dests("refund"),
            [
                "no binding matched on `shop`: to alternate exchange `lost`",
                "exchange `lost` → `unrouted`"
            ]
        );
        // The default exchange: a queue by its name.
        assert_eq!(infer_route(&sc, "", "log", None).len(), 1);
        assert!(infer_route(&sc, "", "nope", None).is_empty());
        let mut j = Journal::default();
        j.published(9, 1, "p", "shop", "order.new", Message::default(), 0.0);
        let edges = j.infer(&sc, 9, 1.0);
        assert_eq!(
            edges,
            [("exchange:shop".to_string(), "queue:orders".to_string())]
        );
        assert_eq!(
            j.queues.get("orders").map(|c| c.ready.clone()),
            Some(vec![9])
        );
        assert!(j
            .records
            .get(&9)
            .is_some_and(|r| r.hops.iter().skip(1).all(|h| h.inferred)));
    }
}
