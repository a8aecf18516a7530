//! Reading the bridge's frames: JSON text to [`ServerFrame`], by hand from a
//! `serde_json::Value`.
//!
//! Why not `serde_json::from_str::<ServerFrame>`: the protocol types use
//! `#[serde(flatten)]` and internally tagged enums, whose derived
//! deserializers buffer through serde's `Content` and are instantiated once
//! per deserializer: in the page's bundle that was the largest single piece
//! of code. The page parses JSON to a `Value` anyway (definitions, health), so
//! walking that `Value` costs little. The reading follows the derived one
//! (same field names, same defaults, unknown fields ignored); a test checks
//! it against serde on every kind of frame the simulation makes.

use std::sync::Arc;

use serde_json::{Map, Value};
use sim_core::protocol::{
    AmqpError, DeathReason, DestinationKind, DropReason, ErrorScope, Event, LinkState, Message,
    Outcome, Properties, ReplyResult, ServerFrame, ShortString, Trace,
};

type Obj = Map<String, Value>;

fn field<'a>(o: &'a Obj, key: &str) -> Result<&'a Value, String> {
    o.get(key).ok_or_else(|| format!("missing field `{key}`"))
}

fn text(o: &Obj, key: &str) -> Result<String, String> {
    field(o, key)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` is not a string"))
}

fn shared(o: &Obj, key: &str) -> Result<Arc<str>, String> {
    field(o, key)?
        .as_str()
        .map(Arc::from)
        .ok_or_else(|| format!("`{key}` is not a string"))
}

fn short(o: &Obj, key: &str) -> Result<ShortString, String> {
    field(o, key)?
        .as_str()
        .map(ShortString::from)
        .ok_or_else(|| format!("`{key}` is not a string"))
}

fn opt_text(o: &Obj, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| format!("`{key}` is not a string")),
    }
}

fn num<T: TryFrom<u64>>(o: &Obj, key: &str) -> Result<T, String> {
    field(o, key)?
        .as_u64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("`{key}` is not a number in range"))
}

fn opt_num<T: TryFrom<u64>>(o: &Obj, key: &str) -> Result<Option<T>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => num(o, key).map(Some),
    }
}

fn flag(o: &Obj, key: &str) -> Result<bool, String> {
    field(o, key)?
        .as_bool()
        .ok_or_else(|| format!("`{key}` is not true or false"))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Obj, String> {
    v.as_object()
        .ok_or_else(|| format!("`{what}` is not an object"))
}

/// A unit-variant enum by its snake_case name.
fn word<T: Copy>(o: &Obj, key: &str, words: &[(&str, T)]) -> Result<T, String> {
    let w = text(o, key)?;
    words
        .iter()
        .find(|(name, _)| *name == w)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("unknown {key} `{w}`"))
}

fn properties(o: &Obj) -> Result<Properties, String> {
    let headers = match o.get("headers") {
        None | Some(Value::Null) => None,
        Some(v) => Some(object(v, "headers")?.clone()),
    };
    Ok(Properties {
        content_type: opt_text(o, "content_type")?,
        content_encoding: opt_text(o, "content_encoding")?,
        headers,
        delivery_mode: opt_num(o, "delivery_mode")?,
        priority: opt_num(o, "priority")?,
        correlation_id: opt_text(o, "correlation_id")?,
        reply_to: opt_text(o, "reply_to")?,
        expiration: opt_text(o, "expiration")?,
        message_id: opt_text(o, "message_id")?,
        timestamp: opt_num(o, "timestamp")?,
        kind: opt_text(o, "type")?,
        user_id: opt_text(o, "user_id")?,
        app_id: opt_text(o, "app_id")?,
    })
}

fn message(o: &Obj) -> Result<Message, String> {
    let m = object(field(o, "message")?, "message")?;
    Ok(Message {
        body: shared(m, "body")?,
        properties: match m.get("properties") {
            None => Default::default(),
            Some(v) => properties(object(v, "properties")?)?.into(),
        },
    })
}

fn amqp_error(v: &Value) -> Result<AmqpError, String> {
    let o = object(v, "error")?;
    Ok(AmqpError {
        scope: word(
            o,
            "scope",
            &[
                ("channel", ErrorScope::Channel),
                ("connection", ErrorScope::Connection),
            ],
        )?,
        code: num(o, "code")?,
        name: text(o, "name")?,
        text: opt_text(o, "text")?.unwrap_or_default(),
    })
}

fn outcome(v: &Value) -> Result<Outcome, String> {
    let o = object(v, "ok")?;
    Ok(match text(o, "kind")?.as_str() {
        "ok" => Outcome::Ok,
        "queue_declare_ok" => Outcome::QueueDeclareOk {
            queue: text(o, "queue")?,
            message_count: num(o, "message_count")?,
            consumer_count: num(o, "consumer_count")?,
        },
        "message_count" => Outcome::MessageCount {
            message_count: num(o, "message_count")?,
        },
        "published" => Outcome::Published {
            seq: opt_num(o, "seq")?,
            message_id: num(o, "message_id")?,
        },
        "get_ok" => Outcome::GetOk {
            delivery_tag: num(o, "delivery_tag")?,
            redelivered: flag(o, "redelivered")?,
            exchange: short(o, "exchange")?,
            routing_key: short(o, "routing_key")?,
            message_count: num(o, "message_count")?,
            message: message(o)?,
            message_id: num(o, "message_id")?,
        },
        "get_empty" => Outcome::GetEmpty,
        "consume_ok" => Outcome::ConsumeOk {
            consumer_tag: text(o, "consumer_tag")?,
        },
        other => return Err(format!("unknown reply kind `{other}`")),
    })
}

const DROP_REASONS: [(&str, DropReason); 10] = [
    ("unroutable", DropReason::Unroutable),
    ("expired", DropReason::Expired),
    ("max_length", DropReason::MaxLength),
    ("rejected_by_queue", DropReason::RejectedByQueue),
    ("rejected", DropReason::Rejected),
    ("queue_purged", DropReason::QueuePurged),
    ("queue_deleted", DropReason::QueueDeleted),
    ("broker_restart", DropReason::BrokerRestart),
    ("dead_letter_unroutable", DropReason::DeadLetterUnroutable),
    ("delivery_limit", DropReason::DeliveryLimit),
];

fn trace(o: &Obj) -> Result<Trace, String> {
    Ok(match text(o, "trace")?.as_str() {
        "routed" => Trace::Routed {
            message_id: num(o, "message_id")?,
            exchange: text(o, "exchange")?,
            destination_kind: word(
                o,
                "destination_kind",
                &[
                    ("queue", DestinationKind::Queue),
                    ("exchange", DestinationKind::Exchange),
                ],
            )?,
            destination: text(o, "destination")?,
            binding_key: text(o, "binding_key")?,
            why: text(o, "why")?,
        },
        "to_alternate_exchange" => Trace::ToAlternateExchange {
            message_id: num(o, "message_id")?,
            exchange: text(o, "exchange")?,
            alternate: text(o, "alternate")?,
        },
        "enqueued" => Trace::Enqueued {
            message_id: num(o, "message_id")?,
            queue: text(o, "queue")?,
        },
        "requeued" => Trace::Requeued {
            message_id: num(o, "message_id")?,
            queue: text(o, "queue")?,
        },
        "acked" => Trace::Acked {
            message_id: num(o, "message_id")?,
            queue: text(o, "queue")?,
        },
        "dead_lettered" => Trace::DeadLettered {
            message_id: num(o, "message_id")?,
            queue: text(o, "queue")?,
            reason: word(
                o,
                "reason",
                &[
                    ("rejected", DeathReason::Rejected),
                    ("expired", DeathReason::Expired),
                    ("maxlen", DeathReason::Maxlen),
                    ("delivery_limit", DeathReason::DeliveryLimit),
                ],
            )?,
            dead_letter_exchange: text(o, "dead_letter_exchange")?,
            routing_key: text(o, "routing_key")?,
        },
        "dropped" => Trace::Dropped {
            message_id: num(o, "message_id")?,
            queue: opt_text(o, "queue")?,
            reason: word(o, "reason", &DROP_REASONS)?,
            why: text(o, "why")?,
        },
        other => return Err(format!("unknown trace `{other}`")),
    })
}

fn event(o: &Obj) -> Result<Event, String> {
    Ok(match text(o, "event")?.as_str() {
        "reply" => Event::Reply {
            id: num(o, "id")?,
            result: match (o.get("ok"), o.get("error")) {
                (Some(ok), _) => ReplyResult::Ok(outcome(ok)?),
                (None, Some(err)) => ReplyResult::Error(amqp_error(err)?),
                (None, None) => return Err("a reply has neither `ok` nor `error`".into()),
            },
        },
        "deliver" => Event::Deliver {
            connection: num(o, "connection")?,
            channel: num(o, "channel")?,
            consumer_tag: short(o, "consumer_tag")?,
            delivery_tag: num(o, "delivery_tag")?,
            redelivered: flag(o, "redelivered")?,
            exchange: short(o, "exchange")?,
            routing_key: short(o, "routing_key")?,
            message: message(o)?,
            message_id: num(o, "message_id")?,
        },
        "return" => Event::Return {
            connection: num(o, "connection")?,
            channel: num(o, "channel")?,
            reply_code: num(o, "reply_code")?,
            reply_text: text(o, "reply_text")?,
            exchange: short(o, "exchange")?,
            routing_key: short(o, "routing_key")?,
            message: message(o)?,
        },
        "confirm" => Event::Confirm {
            connection: num(o, "connection")?,
            channel: num(o, "channel")?,
            seq: num(o, "seq")?,
            multiple: flag(o, "multiple")?,
            ack: flag(o, "ack")?,
        },
        "consumer_cancelled" => Event::ConsumerCancelled {
            connection: num(o, "connection")?,
            channel: num(o, "channel")?,
            consumer_tag: text(o, "consumer_tag")?,
        },
        "closed" => Event::Closed {
            connection: num(o, "connection")?,
            channel: opt_num(o, "channel")?,
            error: amqp_error(field(o, "error")?)?,
        },
        "trace" => Event::Trace(trace(o)?),
        "status" => Event::Status {
            broker: word(
                o,
                "broker",
                &[
                    ("up", LinkState::Up),
                    ("down", LinkState::Down),
                    ("reconnecting", LinkState::Reconnecting),
                ],
            )?,
            detail: opt_text(o, "detail")?.unwrap_or_default(),
        },
        "protocol_error" => Event::ProtocolError {
            id: opt_num(o, "id")?,
            message: text(o, "message")?,
        },
        other => return Err(format!("unknown event `{other}`")),
    })
}

/// One frame of the bridge's `/ws`, or what is wrong with it.
pub fn parse_frame(json: &str) -> Result<ServerFrame, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let o = object(&v, "frame")?;
    Ok(ServerFrame {
        at_ms: num(o, "at_ms")?,
        event: event(o)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::builtin_lessons;
    use sim_core::protocol::{Method, Request};
    use sim_core::scenario::ScenarioRun;
    use sim_core::Broker;

    /// Every frame of every lesson, traced, as the simulation makes them.
    fn lesson_frames() -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        for sc in builtin_lessons() {
            let mut broker = Broker::new(sc.seed);
            broker.set_tracing(true);
            let mut run = ScenarioRun::new(sc.clone());
            run.handle_timeout(0);
            for _ in 0..200_000 {
                while let Some(req) = run.poll_request() {
                    broker.handle_request(req);
                    while let Some(f) = broker.poll_event() {
                        run.handle_frame(&f);
                        frames.push(f);
                    }
                }
                if run.is_done() {
                    break;
                }
                let Some(next) = [run.poll_timeout(), broker.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                else {
                    break;
                };
                let next = next.max(broker.now_ms());
                broker.handle_timeout(next);
                while let Some(f) = broker.poll_event() {
                    run.handle_frame(&f);
                    frames.push(f);
                }
                run.handle_timeout(next);
            }
        }
        frames
    }

    #[test]
    fn reads_every_frame_as_serde_writes_it() {
        let mut frames = lesson_frames();
        // What lessons do not make: a get, an error reply, the bridge's frames.
        let mut b = Broker::new(1);
        for (id, m) in [
            (1, Method::ConnectionOpen),
            (
                2,
                Method::QueueDeclare {
                    queue: "q".into(),
                    passive: false,
                    durable: false,
                    exclusive: false,
                    auto_delete: false,
                    arguments: Default::default(),
                },
            ),
            (
                20,
                Method::Publish {
                    exchange: "".into(),
                    routing_key: "q".into(),
                    body: "hi".into(),
                    mandatory: false,
                    properties: Properties {
                        headers: Some(
                            serde_json::json!({"x": 1, "y": [true]})
                                .as_object()
                                .cloned()
                                .unwrap_or_default(),
                        ),
                        priority: Some(3),
                        kind: Some("t".into()),
                        ..Properties::default()
                    }
                    .into(),
                },
            ),
            (
                3,
                Method::Get {
                    queue: "q".into(),
                    no_ack: false,
                },
            ),
            (
                21,
                Method::Consume {
                    queue: "q".into(),
                    consumer_tag: "c".into(),
                    no_ack: false,
                    exclusive: false,
                    arguments: Default::default(),
                },
            ),
            (
                22,
                Method::QueueDelete {
                    queue: "q".into(),
                    if_unused: false,
                    if_empty: false,
                },
            ),
            (
                4,
                Method::QueueDeclare {
                    queue: "nope".into(),
                    passive: true,
                    durable: false,
                    exclusive: false,
                    auto_delete: false,
                    arguments: Default::default(),
                },
            ),
        ] {
            b.handle_request(Request::new(id, m));
            frames.extend(std::iter::from_fn(|| b.poll_event()));
        }
        frames.push(ServerFrame {
            at_ms: 5,
            event: Event::Status {
                broker: LinkState::Reconnecting,
                detail: "connection refused".into(),
            },
        });
        frames.push(ServerFrame {
            at_ms: 6,
            event: Event::ProtocolError {
                id: Some(9),
                message: "unknown op".into(),
            },
        });
        let mut kinds = std::collections::BTreeSet::new();
        for f in &frames {
            let json = serde_json::to_string(f).expect("serializes");
            let v: Value = serde_json::from_str(&json).expect("json");
            kinds.insert(format!(
                "{}/{}",
                v["event"].as_str().unwrap_or_default(),
                v.get("trace")
                    .or(v.get("ok").and_then(|o| o.get("kind")))
                    .and_then(|k| k.as_str())
                    .unwrap_or_default()
            ));
            assert_eq!(parse_frame(&json).as_ref(), Ok(f), "{json}");
        }
        for k in [
            "deliver/",
            "return/",
            "confirm/",
            "closed/",
            "reply/",
            "reply/published",
            "reply/get_ok",
            "consumer_cancelled/",
            "reply/queue_declare_ok",
            "trace/routed",
            "trace/dead_lettered",
            "trace/dropped",
            "trace/to_alternate_exchange",
            "status/",
            "protocol_error/",
        ] {
            assert!(kinds.contains(k), "no {k} frame in the test set: {kinds:?}");
        }
    }

    /// A reason the broker adds must be added here (the match stops compiling)
    /// and then to the reader's tables (the asserts fail).
    #[test]
    fn reads_every_drop_and_death_reason() {
        use DropReason as D;
        let drops = [
            D::Unroutable,
            D::Expired,
            D::MaxLength,
            D::RejectedByQueue,
            D::Rejected,
            D::QueuePurged,
            D::QueueDeleted,
            D::BrokerRestart,
            D::DeadLetterUnroutable,
            D::DeliveryLimit,
        ];
        for d in drops {
            match d {
                D::Unroutable
                | D::Expired
                | D::MaxLength
                | D::RejectedByQueue
                | D::Rejected
                | D::QueuePurged
                | D::QueueDeleted
                | D::BrokerRestart
                | D::DeadLetterUnroutable
                | D::DeliveryLimit => {}
            }
            let name = serde_json::to_value(d).expect("serializes");
            assert!(
                DROP_REASONS.iter().any(|(n, r)| *r == d && name == *n),
                "{name} is not read"
            );
        }
        for r in [
            DeathReason::Rejected,
            DeathReason::Expired,
            DeathReason::Maxlen,
            DeathReason::DeliveryLimit,
        ] {
            match r {
                DeathReason::Rejected
                | DeathReason::Expired
                | DeathReason::Maxlen
                | DeathReason::DeliveryLimit => {}
            }
            let frame = ServerFrame {
                at_ms: 1,
                event: Event::Trace(Trace::DeadLettered {
                    message_id: 1,
                    queue: "q".into(),
                    reason: r,
                    dead_letter_exchange: "dlx".into(),
                    routing_key: "k".into(),
                }),
            };
            let json = serde_json::to_string(&frame).expect("serializes");
            assert_eq!(parse_frame(&json).as_ref(), Ok(&frame), "{json}");
        }
    }

    #[test]
    fn defaults_and_bad_frames() {
        let f = parse_frame(
            r#"{"at_ms": 3, "event": "closed", "connection": 1, "extra": 1,
                "error": {"scope": "connection", "code": 320, "name": "CONNECTION_FORCED"}}"#,
        )
        .expect("optional fields may be missing");
        assert_eq!(
            f.event,
            Event::Closed {
                connection: 1,
                channel: None,
                error: AmqpError {
                    scope: ErrorScope::Connection,
                    code: 320,
                    name: "CONNECTION_FORCED".into(),
                    text: String::new(),
                },
            }
        );
        for (bad, why) in [
            ("nope", "expected"),
            ("[]", "not an object"),
            (r#"{"at_ms": 1}"#, "`event`"),
            (r#"{"at_ms": 1, "event": "warp"}"#, "unknown event"),
            (
                r#"{"at_ms": -1, "event": "status", "broker": "up"}"#,
                "`at_ms`",
            ),
            (
                r#"{"at_ms": 1, "event": "confirm", "connection": 1, "channel": 70000, "seq": 1, "multiple": false, "ack": true}"#,
                "`channel`",
            ),
            (r#"{"at_ms": 1, "event": "reply", "id": 1}"#, "neither"),
        ] {
            let err = parse_frame(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
