//! The broker model through its public API: requests in, events out.
//!
//! The conformance corpus (`cargo xtask conformance`) is the oracle for
//! RabbitMQ behaviour; these tests pin the API contract (one reply per request,
//! last), the sans-IO clock, tracing, the view, and semantics the corpus
//! exercises only indirectly.

use serde_json::json;
use sim_core::protocol::*;
use sim_core::Broker;

struct H {
    b: Broker,
    id: u64,
}

impl H {
    fn new() -> H {
        let mut h = H {
            b: Broker::new(7),
            id: 0,
        };
        h.ok(1, 1, Method::ConnectionOpen);
        h
    }

    /// Sends a request; returns the events it caused and its result.
    fn send(&mut self, conn: u32, ch: u16, m: Method) -> (Vec<Event>, ReplyResult) {
        self.id += 1;
        let id = self.id;
        self.b.handle_request(Request::new(id, m).on(conn, ch));
        let mut evs: Vec<Event> = std::iter::from_fn(|| self.b.poll_event())
            .map(|f| f.event)
            .collect();
        let last = evs.pop().expect("a reply");
        match last {
            Event::Reply { id: rid, result } => {
                assert_eq!(rid, id, "the reply answers the request");
                assert!(
                    !evs.iter().any(|e| matches!(e, Event::Reply { .. })),
                    "exactly one reply"
                );
                (evs, result)
            }
            other => panic!("last event must be the reply, got {other:?}"),
        }
    }

    fn ok(&mut self, conn: u32, ch: u16, m: Method) -> (Vec<Event>, Outcome) {
        match self.send(conn, ch, m) {
            (evs, ReplyResult::Ok(o)) => (evs, o),
            (_, ReplyResult::Error(e)) => panic!("unexpected error {e:?}"),
        }
    }

    fn err(&mut self, conn: u32, ch: u16, m: Method) -> (Vec<Event>, AmqpError) {
        match self.send(conn, ch, m) {
            (evs, ReplyResult::Error(e)) => (evs, e),
            (_, ReplyResult::Ok(o)) => panic!("expected an error, got {o:?}"),
        }
    }

    fn declare(&mut self, q: &str, args: serde_json::Value) -> String {
        match self.ok(1, 1, qd(q, args)).1 {
            Outcome::QueueDeclareOk { queue, .. } => queue,
            o => panic!("{o:?}"),
        }
    }

    fn publish(&mut self, x: &str, key: &str, body: &str) -> Vec<Event> {
        self.ok(1, 1, publish(x, key, body, Properties::default()))
            .0
    }

    fn count(&mut self, q: &str) -> u32 {
        match self.ok(
            1,
            1,
            Method::QueueDeclare {
                queue: q.into(),
                passive: true,
                durable: false,
                exclusive: false,
                auto_delete: false,
                arguments: FieldTable::new(),
            },
        ) {
            (_, Outcome::QueueDeclareOk { message_count, .. }) => message_count,
            o => panic!("{o:?}"),
        }
    }

    fn get(&mut self, q: &str) -> Outcome {
        self.ok(
            1,
            1,
            Method::Get {
                queue: q.into(),
                no_ack: true,
            },
        )
        .1
    }
}

fn table(v: serde_json::Value) -> FieldTable {
    match v {
        serde_json::Value::Object(m) => m,
        _ => FieldTable::new(),
    }
}

fn qd(q: &str, args: serde_json::Value) -> Method {
    Method::QueueDeclare {
        queue: q.into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: table(args),
    }
}

fn publish(x: &str, key: &str, body: &str, properties: Properties) -> Method {
    Method::Publish {
        exchange: x.into(),
        routing_key: key.into(),
        body: body.into(),
        mandatory: false,
        properties: properties.into(),
    }
}

fn consume(q: &str, tag: &str, no_ack: bool) -> Method {
    Method::Consume {
        queue: q.into(),
        consumer_tag: tag.into(),
        no_ack,
        exclusive: false,
        arguments: FieldTable::new(),
    }
}

fn delivered(evs: &[Event]) -> Vec<(String, u64, String)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Deliver {
                consumer_tag,
                delivery_tag,
                message,
                ..
            } => Some((
                consumer_tag.to_string(),
                *delivery_tag,
                message.body.to_string(),
            )),
            _ => None,
        })
        .collect()
}

fn body(o: &Outcome) -> &str {
    match o {
        Outcome::GetOk { message, .. } => &message.body,
        _ => "<empty>",
    }
}

#[test]
fn fresh_broker_has_the_predeclared_exchanges_and_no_connections() {
    let b = Broker::new(1);
    let v = b.view();
    let names: Vec<&str> = v.exchanges.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "",
            "amq.direct",
            "amq.fanout",
            "amq.topic",
            "amq.headers",
            "amq.match"
        ]
    );
    assert!(v.connections.is_empty());
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn requests_before_connection_open_get_an_error_reply() {
    let mut b = Broker::new(1);
    b.handle_request(Request::new(5, qd("q", json!({}))));
    let f = b.poll_event().expect("reply");
    assert!(matches!(
        f.event,
        Event::Reply { id: 5, result: ReplyResult::Error(ref e) } if e.code == 504
    ));
    assert!(b.poll_event().is_none());
}

#[test]
fn publish_consume_ack_and_view() {
    let mut h = H::new();
    h.declare("work", json!({}));
    h.ok(
        1,
        1,
        Method::BasicQos {
            prefetch_count: 1,
            global: false,
        },
    );
    let (evs, o) = h.ok(1, 1, consume("work", "c1", false));
    assert!(evs.is_empty());
    assert_eq!(
        o,
        Outcome::ConsumeOk {
            consumer_tag: "c1".into()
        }
    );
    let evs = h.publish("", "work", "m1");
    assert_eq!(delivered(&evs), [("c1".to_string(), 1, "m1".to_string())]);
    assert!(
        delivered(&h.publish("", "work", "m2")).is_empty(),
        "prefetch 1"
    );

    let v = h.b.view();
    let q = &v.queues[0];
    assert_eq!((q.ready, q.unacked), (1, 1));
    assert_eq!(q.messages[0].body, "m2");
    assert_eq!(v.consumers[0].prefetch, 1);
    assert_eq!(v.consumers[0].unacked, 1);
    assert_eq!(v.connections[0].channels[0].unacked, [1]);

    let (evs, _) = h.ok(
        1,
        1,
        Method::Ack {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(delivered(&evs), [("c1".to_string(), 2, "m2".to_string())]);
    let v = h.b.view();
    assert_eq!((v.queues[0].ready, v.queues[0].unacked), (0, 1));
}

#[test]
fn delivery_tags_are_per_channel_and_restart_on_reopen() {
    let mut h = H::new();
    h.declare("q", json!({}));
    for b in ["a", "b", "c"] {
        h.publish("", "q", b);
    }
    h.ok(1, 2, Method::ChannelOpen);
    let tag = |o: Outcome| match o {
        Outcome::GetOk { delivery_tag, .. } => delivery_tag,
        o => panic!("{o:?}"),
    };
    let g = |h: &mut H, ch| {
        h.ok(
            1,
            ch,
            Method::Get {
                queue: "q".into(),
                no_ack: true,
            },
        )
        .1
    };
    assert_eq!(tag(g(&mut h, 1)), 1);
    assert_eq!(tag(g(&mut h, 2)), 1);
    assert_eq!(tag(g(&mut h, 1)), 2);
    h.ok(1, 2, Method::ChannelClose);
    h.ok(1, 2, Method::ChannelOpen);
    h.publish("", "q", "d");
    assert_eq!(tag(g(&mut h, 2)), 1);
}

#[test]
fn channel_error_closes_only_the_channel_and_requeues() {
    let mut h = H::new();
    h.declare("q", json!({}));
    h.publish("", "q", "m1");
    h.ok(
        1,
        1,
        Method::Get {
            queue: "q".into(),
            no_ack: false,
        },
    );
    let (evs, e) = h.err(
        1,
        1,
        Method::Ack {
            delivery_tag: 9,
            multiple: false,
        },
    );
    assert_eq!(
        (e.scope, e.code, e.name.as_str()),
        (ErrorScope::Channel, 406, "PRECONDITION_FAILED")
    );
    assert!(evs.iter().any(|e| matches!(
        e,
        Event::Closed {
            channel: Some(1),
            ..
        }
    )));
    // The channel is closed: using it is a connection error.
    let (_, e) = h.err(1, 1, qd("q", json!({})));
    assert_eq!((e.scope, e.code), (ErrorScope::Connection, 504));
    h.ok(1, 1, Method::ConnectionOpen);
    match h.get("q") {
        Outcome::GetOk {
            redelivered,
            message_count,
            ..
        } => {
            assert!(redelivered);
            assert_eq!(message_count, 0);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn second_channel_open_is_a_connection_error() {
    let mut h = H::new();
    let (_, e) = h.err(1, 1, Method::ChannelOpen);
    assert_eq!(
        (e.scope, e.code, e.name.as_str()),
        (ErrorScope::Connection, 504, "CHANNEL_ERROR")
    );
    assert!(h.b.view().connections.is_empty());
}

#[test]
fn ttl_fires_on_the_virtual_clock_in_order_and_dead_letters() {
    let mut h = H::new();
    h.declare("dead", json!({}));
    h.declare(
        "short",
        json!({"x-message-ttl": 100, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}),
    );
    h.publish("", "short", "a");
    h.b.handle_timeout(30);
    h.publish("", "short", "b");
    assert_eq!(h.b.poll_timeout(), Some(100));
    h.b.handle_timeout(99);
    assert_eq!(h.count("short"), 2);
    h.b.handle_timeout(1000);
    assert_eq!(h.b.now_ms(), 1000);
    assert_eq!(h.count("short"), 0);
    assert_eq!(h.b.poll_timeout(), None);
    match h.get("dead") {
        Outcome::GetOk {
            message,
            routing_key,
            exchange,
            ..
        } => {
            assert_eq!(&*message.body, "a");
            assert_eq!((&*routing_key, &*exchange), ("dead", ""));
            let hd = message.properties.headers.clone().expect("headers");
            assert_eq!(
                hd["x-death"],
                json!([{"count": 1, "exchange": "", "queue": "short", "reason": "expired", "routing-keys": ["short"]}])
            );
            assert_eq!(hd["x-first-death-reason"], json!("expired"));
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(body(&h.get("dead")), "b");
    // The clock never runs backwards.
    h.b.handle_timeout(5);
    assert_eq!(h.b.now_ms(), 1000);
}

#[test]
fn expired_events_carry_their_expiry_time() {
    let mut h = H::new();
    h.declare("q", json!({"x-message-ttl": 50}));
    h.b.set_tracing(true);
    h.publish("", "q", "m");
    h.b.handle_timeout(500);
    let drops: Vec<u64> = std::iter::from_fn(|| h.b.poll_event())
        .filter(|f| {
            matches!(
                f.event,
                Event::Trace(Trace::Dropped {
                    reason: DropReason::Expired,
                    ..
                })
            )
        })
        .map(|f| f.at_ms)
        .collect();
    assert_eq!(drops, [50]);
}

#[test]
fn x_expires_deletes_an_unused_queue() {
    let mut h = H::new();
    h.declare("tmp", json!({"x-expires": 200}));
    assert_eq!(h.b.poll_timeout(), Some(200));
    h.b.handle_timeout(150);
    h.count("tmp"); // a declare renews the lease
    h.b.handle_timeout(300);
    assert!(h.b.view().queues.iter().any(|q| q.name == "tmp"));
    h.b.handle_timeout(400);
    assert!(h.b.view().queues.is_empty());
}

#[test]
fn tracing_explains_routing_and_drops_only_when_on() {
    let mut h = H::new();
    h.ok(
        1,
        1,
        Method::ExchangeDeclare {
            exchange: "t".into(),
            kind: ExchangeKind::Topic.into(),
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        },
    );
    h.declare("q", json!({}));
    h.ok(
        1,
        1,
        Method::QueueBind {
            queue: "q".into(),
            exchange: "t".into(),
            routing_key: "a.*".into(),
            arguments: FieldTable::new(),
        },
    );
    let evs = h.publish("t", "a.b", "m");
    assert!(!evs.iter().any(|e| matches!(e, Event::Trace(_))));
    h.b.set_tracing(true);
    let evs = h.publish("t", "a.b", "m");
    assert!(evs.iter().any(|e| matches!(e,
        Event::Trace(Trace::Routed { binding_key, destination, .. }) if binding_key == "a.*" && destination == "q")));
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::Trace(Trace::Enqueued { .. }))));
    let evs = h.publish("t", "x", "m");
    assert!(evs.iter().any(|e| matches!(
        e,
        Event::Trace(Trace::Dropped {
            reason: DropReason::Unroutable,
            ..
        })
    )));
}

#[test]
fn server_named_queues_are_amq_gen_and_seeded() {
    let names = |seed| {
        let mut b = Broker::new(seed);
        b.handle_request(Request::new(1, Method::ConnectionOpen));
        b.handle_request(Request::new(2, qd("", json!({}))));
        std::iter::from_fn(|| b.poll_event())
            .find_map(|f| match f.event {
                Event::Reply {
                    result: ReplyResult::Ok(Outcome::QueueDeclareOk { queue, .. }),
                    ..
                } => Some(queue),
                _ => None,
            })
            .expect("declared")
    };
    let a = names(3);
    assert!(
        a.starts_with("amq.gen-") && a.len() == "amq.gen-".len() + 22,
        "{a}"
    );
    assert_eq!(a, names(3));
    assert_ne!(a, names(4));
}

#[test]
fn restart_keeps_durable_things_and_persistent_messages() {
    let mut h = H::new();
    let decl = |name: &str, durable| Method::ExchangeDeclare {
        exchange: name.into(),
        kind: ExchangeKind::Fanout.into(),
        passive: false,
        durable,
        auto_delete: false,
        internal: false,
        arguments: FieldTable::new(),
    };
    h.ok(1, 1, decl("dx", true));
    h.ok(1, 1, decl("tx", false));
    h.ok(
        1,
        1,
        Method::QueueDeclare {
            queue: "dq".into(),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        },
    );
    h.declare("tq", json!({}));
    for x in ["dx", "tx"] {
        for q in ["dq", "tq"] {
            h.ok(
                1,
                1,
                Method::QueueBind {
                    queue: q.into(),
                    exchange: x.into(),
                    routing_key: String::new(),
                    arguments: FieldTable::new(),
                },
            );
        }
    }
    let persistent = Properties {
        delivery_mode: Some(2),
        ..Properties::default()
    };
    h.ok(1, 1, publish("dx", "", "p", persistent));
    h.publish("dx", "", "t");
    h.ok(1, 2, Method::ChannelOpen);
    h.ok(1, 1, Method::BrokerRestart);
    let v = h.b.view();
    assert_eq!(v.queues.len(), 1);
    assert_eq!(v.queues[0].messages.len(), 1);
    assert_eq!(v.queues[0].messages[0].body, "p");
    assert!(v.exchanges.iter().any(|x| x.name == "dx"));
    assert!(!v.exchanges.iter().any(|x| x.name == "tx"));
    assert_eq!(v.bindings.len(), 1);
    assert_eq!(v.connections.len(), 1);
    assert_eq!(v.connections[0].channels.len(), 1);
}

#[test]
fn mandatory_return_comes_before_the_confirm_and_reply() {
    let mut h = H::new();
    h.ok(1, 1, Method::ConfirmSelect);
    let (evs, o) = h.ok(
        1,
        1,
        Method::Publish {
            exchange: "".into(),
            routing_key: "nowhere".into(),
            body: "b".into(),
            mandatory: true,
            properties: Properties::default().into(),
        },
    );
    assert!(matches!(
        evs[0],
        Event::Return {
            reply_code: 312,
            ..
        }
    ));
    assert!(matches!(
        evs[1],
        Event::Confirm {
            seq: 1,
            ack: true,
            ..
        }
    ));
    assert!(matches!(o, Outcome::Published { seq: Some(1), .. }));
}

#[test]
fn queue_delete_cancels_consumers_and_unacked_ack_still_works() {
    let mut h = H::new();
    h.declare("q", json!({}));
    h.ok(1, 1, consume("q", "c", false));
    h.publish("", "q", "m");
    h.ok(1, 2, Method::ChannelOpen);
    let (evs, o) = h.ok(
        1,
        2,
        Method::QueueDelete {
            queue: "q".into(),
            if_unused: false,
            if_empty: false,
        },
    );
    assert_eq!(o, Outcome::MessageCount { message_count: 0 });
    assert!(evs.iter().any(
        |e| matches!(e, Event::ConsumerCancelled { consumer_tag, .. } if consumer_tag == "c")
    ));
    h.ok(
        1,
        1,
        Method::Ack {
            delivery_tag: 1,
            multiple: false,
        },
    );
}

#[test]
fn max_length_bytes_counts_bodies() {
    let mut h = H::new();
    h.declare(
        "q",
        json!({"x-max-length-bytes": 5, "x-overflow": "reject-publish"}),
    );
    h.ok(1, 1, Method::ConfirmSelect);
    let conf = |evs: &[Event]| {
        evs.iter()
            .find_map(|e| match e {
                Event::Confirm { ack, .. } => Some(*ack),
                _ => None,
            })
            .expect("confirm")
    };
    assert!(conf(&h.publish("", "q", "abc")));
    assert!(conf(&h.publish("", "q", "de")));
    assert!(!conf(&h.publish("", "q", "f")));
    assert!(conf(&h.publish("", "q", "")));
}

#[test]
fn malformed_requests_are_errors_not_panics() {
    let mut h = H::new();
    let (_, e) = h.err(
        1,
        1,
        publish(
            "",
            "q",
            "x",
            Properties {
                expiration: Some("soon".into()),
                ..Properties::default()
            },
        ),
    );
    assert_eq!(e.code, 406);
    h.ok(1, 1, Method::ChannelOpen);
    let (_, e) = h.err(1, 1, qd("q", json!({"x-max-priority": "high"})));
    assert_eq!(e.code, 406);
    h.ok(1, 1, Method::ChannelOpen);
    let (_, e) = h.err(
        1,
        1,
        Method::Get {
            queue: String::new(),
            no_ack: false,
        },
    );
    assert_eq!(e.code, 404);
    let (_, e) = h.err(1, 0, Method::ChannelOpen);
    assert_eq!(e.code, 504);
}

#[test]
fn consumer_priorities_serve_higher_first() {
    let mut h = H::new();
    h.declare("q", json!({}));
    h.ok(1, 1, consume("q", "low", true));
    h.ok(
        1,
        1,
        Method::Consume {
            queue: "q".into(),
            consumer_tag: "high".into(),
            no_ack: true,
            exclusive: false,
            arguments: table(json!({"x-priority": 5})),
        },
    );
    let evs = h.publish("", "q", "m");
    assert_eq!(delivered(&evs)[0].0, "high");
}

/// RabbitMQ 3.10: a single active consumer keeps the queue while it lives,
/// whatever the priority of newcomers; when it goes, the waiting consumer
/// with the highest `x-priority` takes over (the oldest among equals).
#[test]
fn single_active_consumer_hands_over_to_the_highest_priority() {
    let mut h = H::new();
    h.declare("q", json!({"x-single-active-consumer": true}));
    let with_priority = |tag: &str, p: i64| Method::Consume {
        queue: "q".into(),
        consumer_tag: tag.into(),
        no_ack: true,
        exclusive: false,
        arguments: table(json!({ "x-priority": p })),
    };
    h.ok(1, 1, consume("q", "first", true));
    h.ok(1, 1, with_priority("low", 1));
    h.ok(1, 1, with_priority("high-a", 5));
    h.ok(1, 1, with_priority("high-b", 5));
    let who = |h: &mut H, body: &str| delivered(&h.publish("", "q", body))[0].0.clone();
    assert_eq!(who(&mut h, "m1"), "first", "a newcomer never takes over");
    for (leaving, next) in [("first", "high-a"), ("high-a", "high-b"), ("high-b", "low")] {
        h.ok(
            1,
            1,
            Method::Cancel {
                consumer_tag: leaving.into(),
            },
        );
        assert_eq!(who(&mut h, "m"), next, "after {leaving} left");
    }
}

#[test]
fn view_serializes() {
    let mut h = H::new();
    h.declare("q", json!({"x-max-length": 3}));
    h.publish("", "q", "m");
    let v = h.b.view();
    let s = serde_json::to_string(&v).expect("serializes");
    let back: sim_core::BrokerView = serde_json::from_str(&s).expect("parses");
    assert_eq!(back, v);
}

#[test]
fn hostile_inputs_get_errors_or_are_survived() {
    let mut h = H::new();
    // A routing key longer than an AMQP short string.
    let long = "a.".repeat(200);
    let (_, e) = h.err(1, 1, publish("", &long, "x", Properties::default()));
    assert_eq!((e.scope, e.code), (ErrorScope::Connection, 502));
    h.ok(1, 1, Method::ConnectionOpen);
    // A client-made x-death header with a huge count, dead-lettered again.
    h.declare("dead", json!({}));
    h.declare(
        "q",
        json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}),
    );
    let mut headers = FieldTable::new();
    headers.insert(
        "x-death".into(),
        json!([{"queue": "q", "reason": "rejected", "count": i64::MAX}, 7, "junk"]),
    );
    let props = Properties {
        headers: Some(headers),
        ..Properties::default()
    };
    h.ok(1, 1, publish("", "q", "m", props));
    h.ok(
        1,
        1,
        Method::Get {
            queue: "q".into(),
            no_ack: false,
        },
    );
    h.ok(
        1,
        1,
        Method::Reject {
            delivery_tag: 1,
            requeue: false,
        },
    );
    assert_eq!(h.count("dead"), 1);
}

#[test]
fn clones_are_independent_snapshots() {
    let mut h = H::new();
    h.declare("q", json!({}));
    h.publish("", "q", "m1");
    let snapshot = h.b.clone();
    h.get("q");
    assert_eq!(h.b.view().queues[0].ready, 0);
    assert_eq!(snapshot.view().queues[0].ready, 1);
}

/// One publish reaching two queues whose consumers share a channel: the sim
/// numbers the deliveries in reverse name order, the order RabbitMQ hands the
/// message to the queue processes. On the real broker the two queue
/// processes race to the channel, so this order is usual, not guaranteed
/// (18 of 20 runs of the former regression 005); it is pinned here, in the
/// sim only, rather than as a conformance case that would fail one run in ten.
#[test]
fn one_publish_to_two_consumed_queues_delivers_in_reverse_name_order() {
    let mut h = H::new();
    h.ok(
        1,
        1,
        Method::ExchangeDeclare {
            exchange: "x".into(),
            kind: ExchangeKind::Fanout.into(),
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        },
    );
    for q in ["q1", "q2"] {
        h.declare(q, json!({}));
        h.ok(
            1,
            1,
            Method::QueueBind {
                queue: q.into(),
                exchange: "x".into(),
                routing_key: String::new(),
                arguments: FieldTable::new(),
            },
        );
    }
    h.ok(1, 1, consume("q1", "c1", true));
    h.ok(1, 1, consume("q2", "c2", true));
    let evs = h.publish("x", "", "m");
    assert_eq!(
        delivered(&evs),
        vec![
            ("c2".to_string(), 1, "m".to_string()),
            ("c1".to_string(), 2, "m".to_string())
        ]
    );
}
