//! What the inspector shows, pure: every message's route history and the
//! messages each queue holds, built from the protocol stream.
//!
//! The simulation explains itself with `trace` events (which binding matched,
//! why a message was dropped or dead-lettered); RabbitMQ does not, so in real
//! mode the route of a publish is inferred from the user's own topology
//! ([`infer_route`]) and every such step is flagged `inferred`. Deliveries
//! carry the message as the consumer sees it, headers (and `x-death`) included.

use std::collections::VecDeque;

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
        let l = |en: String, ru: String, uk: String| match lang {
            Lang::En => en,
            Lang::Ru => ru,
            Lang::Uk => uk,
        };
        match self {
            Step::Published {
                producer,
                exchange,
                routing_key,
            } => {
                let (e, k) = (x(exchange), routing_key);
                l(
                    format!("published by {producer} to exchange `{e}` with key `{k}`"),
                    format!("опубликовано {producer} в exchange `{e}` с ключом `{k}`"),
                    format!("опубліковано {producer} в exchange `{e}` з ключем `{k}`"),
                )
            }
            Step::Routed {
                exchange,
                destination,
                to_exchange,
                binding_key,
                why,
            } => {
                let e = x(exchange);
                let d = if *to_exchange {
                    format!("exchange `{destination}`")
                } else {
                    format!("`{destination}`")
                };
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                if binding_key.is_empty() {
                    l(
                        format!("exchange `{e}` → {d}{why}"),
                        format!("exchange `{e}` → {d}{why}"),
                        format!("exchange `{e}` → {d}{why}"),
                    )
                } else {
                    l(
                        format!("matched binding `{binding_key}` on exchange `{e}` → {d}{why}"),
                        format!("совпала привязка `{binding_key}` на exchange `{e}` → {d}{why}"),
                        format!("збіглася прив'язка `{binding_key}` на exchange `{e}` → {d}{why}"),
                    )
                }
            }
            Step::Alternate {
                exchange,
                alternate,
            } => l(
                format!("no binding matched on `{exchange}`: to alternate exchange `{alternate}`"),
                format!("на `{exchange}` ничего не совпало: в alternate exchange `{alternate}`"),
                format!("на `{exchange}` нічого не збіглося: до alternate exchange `{alternate}`"),
            ),
            Step::Enqueued { queue } => l(
                format!("ready in queue `{queue}`"),
                format!("готово в очереди `{queue}`"),
                format!("готове в черзі `{queue}`"),
            ),
            Step::Delivered {
                consumer,
                delivery_tag,
                redelivered,
            } => {
                let r = if *redelivered { " (redelivered)" } else { "" };
                l(
                    format!("delivered to {consumer}, tag {delivery_tag}{r}"),
                    format!("доставлено {consumer}, tag {delivery_tag}{r}"),
                    format!("доставлено {consumer}, tag {delivery_tag}{r}"),
                )
            }
            Step::Acked { consumer } => l(
                format!("acked by {consumer}: gone from the queue"),
                format!("{consumer} подтвердил (ack): удалено из очереди"),
                format!("{consumer} підтвердив (ack): видалено з черги"),
            ),
            Step::Rejected { consumer, requeue } => {
                if *requeue {
                    l(
                        format!("{consumer} nacked it with requeue"),
                        format!("{consumer} вернул его в очередь (nack, requeue)"),
                        format!("{consumer} повернув його в чергу (nack, requeue)"),
                    )
                } else {
                    l(
                        format!("{consumer} rejected it (no requeue)"),
                        format!("{consumer} отклонил его (reject без requeue)"),
                        format!("{consumer} відхилив його (reject без requeue)"),
                    )
                }
            }
            Step::Requeued { queue } => l(
                format!("back in queue `{queue}`, flagged redelivered"),
                format!("снова в очереди `{queue}`, помечено redelivered"),
                format!("знову в черзі `{queue}`, позначено redelivered"),
            ),
            Step::DeadLettered {
                queue,
                reason,
                exchange,
                routing_key,
            } => l(
                format!("dead-lettered from `{queue}` ({reason}) to exchange `{}` with key `{routing_key}`", x(exchange)),
                format!("dead-letter из `{queue}` ({reason}) в exchange `{}` с ключом `{routing_key}`", x(exchange)),
                format!("dead-letter з `{queue}` ({reason}) до exchange `{}` з ключем `{routing_key}`", x(exchange)),
            ),
            Step::Dropped { queue, why } => {
                let q = queue
                    .as_ref()
                    .map(|q| format!(" `{q}`"))
                    .unwrap_or_default();
                l(
                    format!("dropped{q}: {why}"),
                    format!("удалено{q}: {why}"),
                    format!("видалено{q}: {why}"),
                )
            }
            Step::Returned { code, text } => l(
                format!("returned to the producer: {code} {text}"),
                format!("возвращено отправителю: {code} {text}"),
                format!("повернуто відправнику: {code} {text}"),
            ),
            Step::Refused { text } => l(
                format!("the broker refused the publish: {text}"),
                format!("брокер отказал в публикации: {text}"),
                format!("брокер відмовив у публікації: {text}"),
            ),
        }
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
    pub ready: VecDeque<MessageId>,
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
            Trace::Routed {
                message_id,
                exchange,
                destination_kind,
                destination,
                binding_key,
                why,
            } => self.hop(
                *message_id,
                at,
                Step::Routed {
                    exchange: exchange.clone(),
                    destination: destination.clone(),
                    to_exchange: *destination_kind == DestinationKind::Exchange,
                    binding_key: binding_key.clone(),
                    why: why.clone(),
                },
                false,
            ),
            Trace::ToAlternateExchange {
                message_id,
                exchange,
                alternate,
            } => self.hop(
                *message_id,
                at,
                Step::Alternate {
                    exchange: exchange.clone(),
                    alternate: alternate.clone(),
                },
                false,
            ),
            Trace::Enqueued { message_id, queue } => self.enqueued(*message_id, queue, at, false),
            Trace::Requeued { message_id, queue } => {
                self.leave(*message_id, queue);
                self.contents(queue).ready.push_front(*message_id);
                let r = self.record(*message_id);
                r.redelivered = true;
                r.fate = Fate::Ready;
                self.hop(
                    *message_id,
                    at,
                    Step::Requeued {
                        queue: queue.clone(),
                    },
                    false,
                );
            }
            Trace::Acked { message_id, queue } => {
                self.leave(*message_id, queue);
                self.record(*message_id).fate = Fate::Acked;
            }
            Trace::DeadLettered {
                message_id,
                queue,
                reason,
                dead_letter_exchange,
                routing_key,
            } => {
                self.leave(*message_id, queue);
                self.record(*message_id).fate = Fate::Moving;
                self.hop(
                    *message_id,
                    at,
                    Step::DeadLettered {
                        queue: queue.clone(),
                        reason: reason.as_str().to_string(),
                        exchange: dead_letter_exchange.clone(),
                        routing_key: routing_key.clone(),
                    },
                    false,
                );
            }
            Trace::Dropped {
                message_id,
                queue,
                why,
                ..
            } => {
                if let Some(q) = queue {
                    self.leave(*message_id, q);
                }
                // A copy dropped by one queue does not end the copies in others.
                let elsewhere = self.queues.values().any(|c| {
                    c.ready.contains(message_id) || c.unacked.iter().any(|(m, _)| m == message_id)
                });
                let r = self.record(*message_id);
                if !elsewhere {
                    r.fate = Fate::Dropped;
                }
                self.hop(
                    *message_id,
                    at,
                    Step::Dropped {
                        queue: queue.clone(),
                        why: why.clone(),
                    },
                    false,
                );
            }
        }
    }

    fn enqueued(&mut self, id: MessageId, queue: &str, at: f64, inferred: bool) {
        let c = self.contents(queue);
        if !c.ready.contains(&id) {
            c.ready.push_back(id);
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
        queues.sort();
        queues.dedup();
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
            None if !traced => {
                // Real mode: ids may not line up; the oldest inferred ready one went.
                c.ready.pop_front();
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
            self.contents(queue).ready.push_front(id);
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
