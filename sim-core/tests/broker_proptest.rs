//! Random command sequences against the broker: it never panics, answers every
//! request exactly once (last), never reuses a delivery tag on a channel, never
//! exceeds a consumer's prefetch, and is deterministic. proptest prints the
//! failing sequence (and persists its seed) when a property breaks.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;
use sim_core::protocol::*;
use sim_core::Broker;

#[derive(Debug, Clone)]
enum Cmd {
    Req(Box<Request>),
    Wait(u64),
}

fn name(prefix: &'static str, n: usize) -> impl Strategy<Value = String> {
    (0..n).prop_map(move |i| format!("{prefix}{i}"))
}

fn table() -> impl Strategy<Value = FieldTable> {
    prop_oneof![
        3 => Just(json!({})),
        1 => Just(json!({"x-message-ttl": 20, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q0"})),
        1 => Just(json!({"x-max-length": 2})),
        1 => Just(json!({"x-max-length": 1, "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "x0"})),
        1 => Just(json!({"x-max-priority": 3})),
        1 => Just(json!({"x-single-active-consumer": true})),
        1 => Just(json!({"x-expires": 50})),
        1 => Just(json!({"x-max-length": "bad"})),
    ]
    .prop_map(|v| match v {
        serde_json::Value::Object(m) => m,
        _ => FieldTable::new(),
    })
}

fn kind() -> impl Strategy<Value = ExchangeKind> {
    prop_oneof![
        Just(ExchangeKind::Direct),
        Just(ExchangeKind::Fanout),
        Just(ExchangeKind::Topic),
        Just(ExchangeKind::Headers),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_string()),
        Just("a.b".to_string()),
        Just("#".to_string()),
        Just("*.b".to_string()),
        name("q", 3),
    ]
}

fn props() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(1u8..=2),
        proptest::option::of(0u8..=5),
        proptest::option::of(prop_oneof![
            Just("10".to_string()),
            Just("0".to_string()),
            Just("x".to_string())
        ]),
    )
        .prop_map(|(delivery_mode, priority, expiration)| Properties {
            delivery_mode,
            priority,
            expiration,
            ..Properties::default()
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        1 => Just(Method::ConnectionOpen),
        1 => Just(Method::ConnectionClose),
        2 => Just(Method::ChannelOpen),
        1 => Just(Method::ChannelClose),
        2 => (name("x", 2), kind(), any::<bool>(), any::<bool>()).prop_map(|(exchange, kind, durable, auto_delete)| Method::ExchangeDeclare {
            exchange, kind, passive: false, durable, auto_delete, internal: false, arguments: FieldTable::new() }),
        1 => (name("x", 2), any::<bool>()).prop_map(|(exchange, if_unused)| Method::ExchangeDelete { exchange, if_unused }),
        1 => (name("x", 2), name("x", 2), key()).prop_map(|(destination, source, routing_key)| Method::ExchangeBind {
            destination, source, routing_key, arguments: FieldTable::new() }),
        3 => (prop_oneof![name("q", 3), Just(String::new())], any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), table())
            .prop_map(|(queue, passive, durable, exclusive, auto_delete, arguments)| Method::QueueDeclare {
                queue, passive, durable, exclusive, auto_delete, arguments }),
        3 => (name("q", 3), name("x", 2), key()).prop_map(|(queue, exchange, routing_key)| Method::QueueBind {
            queue, exchange, routing_key, arguments: FieldTable::new() }),
        1 => (name("q", 3), name("x", 2), key()).prop_map(|(queue, exchange, routing_key)| Method::QueueUnbind {
            queue, exchange, routing_key, arguments: FieldTable::new() }),
        1 => name("q", 3).prop_map(|queue| Method::QueuePurge { queue }),
        1 => (name("q", 3), any::<bool>(), any::<bool>()).prop_map(|(queue, if_unused, if_empty)| Method::QueueDelete { queue, if_unused, if_empty }),
        1 => Just(Method::ConfirmSelect),
        2 => (0u16..3, any::<bool>()).prop_map(|(prefetch_count, global)| Method::BasicQos { prefetch_count, global }),
        8 => (prop_oneof![Just(String::new()), name("x", 2)], key(), any::<bool>(), props())
            .prop_map(|(exchange, routing_key, mandatory, properties)| Method::Publish {
                exchange, routing_key, body: "body".into(), mandatory, properties }),
        3 => (name("q", 3), any::<bool>()).prop_map(|(queue, no_ack)| Method::Get { queue, no_ack }),
        3 => (name("q", 3), name("c", 3), any::<bool>(), any::<bool>()).prop_map(|(queue, consumer_tag, no_ack, exclusive)| Method::Consume {
            queue, consumer_tag, no_ack, exclusive, arguments: FieldTable::new() }),
        1 => name("c", 3).prop_map(|consumer_tag| Method::Cancel { consumer_tag }),
        4 => (0u64..6, any::<bool>()).prop_map(|(delivery_tag, multiple)| Method::Ack { delivery_tag, multiple }),
        2 => (0u64..6, any::<bool>(), any::<bool>()).prop_map(|(delivery_tag, multiple, requeue)| Method::Nack { delivery_tag, multiple, requeue }),
        2 => (0u64..6, any::<bool>()).prop_map(|(delivery_tag, requeue)| Method::Reject { delivery_tag, requeue }),
        1 => any::<bool>().prop_map(|requeue| Method::Recover { requeue }),
        1 => Just(Method::BrokerRestart),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        12 => (1u32..=2, 1u16..=2, method()).prop_map(|(c, h, m)| Cmd::Req(Box::new(Request::new(0, m).on(c, h)))),
        1 => (0u64..100).prop_map(Cmd::Wait),
    ]
}

/// Runs the commands on a fresh broker, checking the per-request invariants;
/// returns every frame for the determinism check.
fn run(seed: u64, cmds: &[Cmd]) -> Result<Vec<ServerFrame>, TestCaseError> {
    let mut b = Broker::new(seed);
    b.set_tracing(seed.is_multiple_of(2));
    b.handle_request(Request::new(0, Method::ConnectionOpen));
    let mut all: Vec<ServerFrame> = std::iter::from_fn(|| b.poll_event()).collect();
    // Highest delivery tag seen per (connection, channel) since it was opened.
    let mut last_tag: BTreeMap<(u32, u16), u64> = BTreeMap::new();
    for (i, c) in cmds.iter().enumerate() {
        match c {
            Cmd::Wait(ms) => {
                let t = b.now_ms() + ms;
                b.handle_timeout(t);
                prop_assert_eq!(b.now_ms(), t);
            }
            Cmd::Req(r) => {
                let mut r = (**r).clone();
                r.id = i as u64 + 1;
                let reopens = matches!(
                    r.method,
                    Method::ChannelOpen | Method::ConnectionOpen | Method::BrokerRestart
                );
                let (conn, ch) = (r.connection, r.channel);
                let method = r.method.clone();
                b.handle_request(r);
                let frames: Vec<ServerFrame> = std::iter::from_fn(|| b.poll_event()).collect();
                let replies: Vec<usize> = frames
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| matches!(f.event, Event::Reply { .. }))
                    .map(|(j, _)| j)
                    .collect();
                prop_assert_eq!(replies.len(), 1, "one reply to {:?}", method);
                prop_assert_eq!(replies[0], frames.len() - 1, "reply last for {:?}", method);
                let ok = matches!(
                    frames[replies[0]].event,
                    Event::Reply {
                        result: ReplyResult::Ok(_),
                        ..
                    }
                );
                if reopens && ok {
                    match method {
                        Method::ChannelOpen => {
                            last_tag.remove(&(conn, ch));
                        }
                        _ => last_tag.clear(),
                    }
                }
                for f in &frames {
                    let tag = match &f.event {
                        Event::Deliver {
                            connection,
                            channel,
                            delivery_tag,
                            ..
                        } => Some(((*connection, *channel), *delivery_tag)),
                        Event::Reply {
                            result: ReplyResult::Ok(Outcome::GetOk { delivery_tag, .. }),
                            ..
                        } => Some(((conn, ch), *delivery_tag)),
                        _ => None,
                    };
                    if let Some((k, t)) = tag {
                        let prev = last_tag.insert(k, t).unwrap_or(0);
                        prop_assert!(t > prev, "delivery tag {} after {} on {:?}", t, prev, k);
                    }
                }
                all.extend(frames);
            }
        }
        let v = b.view();
        for c in &v.consumers {
            if c.prefetch > 0 && !c.no_ack {
                prop_assert!(
                    c.unacked <= c.prefetch as u32,
                    "consumer {} over prefetch",
                    c.consumer_tag
                );
            }
        }
        for q in &v.queues {
            prop_assert_eq!(q.ready as usize, q.messages.len());
            if let Some(max) = q.arguments.get("x-max-length").and_then(|v| v.as_u64()) {
                prop_assert!(q.ready as u64 <= max, "queue {} over x-max-length", q.name);
            }
        }
    }
    Ok(all)
}

proptest! {
    // PROPTEST_CASES overrides the default of 256 cases.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_sessions_keep_the_invariants(seed in any::<u64>(), cmds in proptest::collection::vec(cmd(), 1..80)) {
        let a = run(seed, &cmds)?;
        let b = run(seed, &cmds)?;
        prop_assert!(a == b, "same seed and commands must give the same events");
    }
}
