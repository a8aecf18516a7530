//! Malformed and impossible commands (issue 5): each one is answered with the
//! AMQP error RabbitMQ gives (or, if it cannot even be decoded, a precise
//! `Err`), never a panic, and leaves the broker's state as it was: the same
//! exchanges, queues, bindings and messages, and a broker that still works
//! once the closed channel or connection is reopened.
//!
//! The same table runs through the bridge against the real RabbitMQ in
//! `bridge/tests/bad_input.rs`, which checks that both give the same error.

use serde_json::{json, Value};
use sim_core::protocol::*;
use sim_core::Broker;

/// (name, setup requests, the bad request, expected reply code, scope)
fn cases() -> Vec<(&'static str, Vec<Value>, Value, u16, ErrorScope)> {
    use ErrorScope::{Channel as Ch, Connection as Conn};
    let long = "n".repeat(256);
    let q = |args: Value| json!({"op": "queue_declare", "queue": "bad", "arguments": args});
    let headers_x = json!({"op": "exchange_declare", "exchange": "hx", "type": "headers"});
    let queue = json!({"op": "queue_declare", "queue": "q"});
    vec![
        (
            "unknown queue (passive declare)",
            vec![],
            json!({"op": "queue_declare", "queue": "nope", "passive": true}),
            404,
            Ch,
        ),
        (
            "unknown queue (get)",
            vec![],
            json!({"op": "get", "queue": "nope"}),
            404,
            Ch,
        ),
        (
            "unknown queue (consume)",
            vec![],
            json!({"op": "consume", "queue": "nope", "consumer_tag": "c"}),
            404,
            Ch,
        ),
        (
            "unknown queue (purge)",
            vec![],
            json!({"op": "queue_purge", "queue": "nope"}),
            404,
            Ch,
        ),
        (
            "unknown queue (bind)",
            vec![headers_x.clone()],
            json!({"op": "queue_bind", "queue": "nope", "exchange": "hx"}),
            404,
            Ch,
        ),
        (
            "unknown exchange (bind)",
            vec![queue.clone()],
            json!({"op": "queue_bind", "queue": "q", "exchange": "nope"}),
            404,
            Ch,
        ),
        (
            "unknown exchange (publish)",
            vec![],
            json!({"op": "publish", "exchange": "nope", "routing_key": "k", "body": "b"}),
            404,
            Ch,
        ),
        (
            "unknown exchange (exchange_bind)",
            vec![headers_x.clone()],
            json!({"op": "exchange_bind", "destination": "hx", "source": "nope"}),
            404,
            Ch,
        ),
        (
            "x-message-ttl: \"abc\"",
            vec![],
            q(json!({"x-message-ttl": "abc"})),
            406,
            Ch,
        ),
        (
            "x-message-ttl: -1",
            vec![],
            q(json!({"x-message-ttl": -1})),
            406,
            Ch,
        ),
        (
            "x-max-priority: 300",
            vec![],
            q(json!({"x-max-priority": 300})),
            406,
            Ch,
        ),
        (
            "x-max-priority: -1",
            vec![],
            q(json!({"x-max-priority": -1})),
            406,
            Ch,
        ),
        (
            "x-max-length: \"bad\"",
            vec![],
            q(json!({"x-max-length": "bad"})),
            406,
            Ch,
        ),
        (
            "x-max-length: -1",
            vec![],
            q(json!({"x-max-length": -1})),
            406,
            Ch,
        ),
        ("x-expires: 0", vec![], q(json!({"x-expires": 0})), 406, Ch),
        (
            "x-expires: \"soon\"",
            vec![],
            q(json!({"x-expires": "soon"})),
            406,
            Ch,
        ),
        (
            "x-overflow: \"bogus\"",
            vec![],
            q(json!({"x-overflow": "bogus"})),
            406,
            Ch,
        ),
        (
            "x-dead-letter-exchange: 5",
            vec![],
            q(json!({"x-dead-letter-exchange": 5})),
            406,
            Ch,
        ),
        (
            "x-dead-letter-routing-key without x-dead-letter-exchange",
            vec![],
            q(json!({"x-dead-letter-routing-key": "k"})),
            406,
            Ch,
        ),
        (
            "queue name of 256 bytes",
            vec![],
            json!({"op": "queue_declare", "queue": long}),
            502,
            Conn,
        ),
        (
            "exchange name of 256 bytes",
            vec![],
            json!({"op": "exchange_declare", "exchange": long, "type": "direct"}),
            502,
            Conn,
        ),
        (
            "routing key of 256 bytes",
            vec![queue.clone()],
            json!({"op": "publish", "routing_key": long, "body": "b"}),
            502,
            Conn,
        ),
        (
            "headers binding with x-match \"some\"",
            vec![headers_x.clone(), queue.clone()],
            json!({"op": "queue_bind", "queue": "q", "exchange": "hx", "arguments": {"x-match": "some"}}),
            406,
            Ch,
        ),
        (
            "headers binding with x-match 5",
            vec![headers_x.clone(), queue.clone()],
            json!({"op": "queue_bind", "queue": "q", "exchange": "hx", "arguments": {"x-match": 5}}),
            406,
            Ch,
        ),
        (
            "exchange redeclared with another type",
            vec![headers_x.clone()],
            json!({"op": "exchange_declare", "exchange": "hx", "type": "fanout"}),
            406,
            Ch,
        ),
        (
            "queue redeclared with other arguments",
            vec![queue.clone()],
            json!({"op": "queue_declare", "queue": "q", "arguments": {"x-max-length": 1}}),
            406,
            Ch,
        ),
        (
            "ack of an unknown delivery tag",
            vec![],
            json!({"op": "ack", "delivery_tag": 99}),
            406,
            Ch,
        ),
        (
            "declare amq.* exchange",
            vec![],
            json!({"op": "exchange_declare", "exchange": "amq.mine", "type": "direct"}),
            403,
            Ch,
        ),
        (
            "declare amq.* queue",
            vec![],
            json!({"op": "queue_declare", "queue": "amq.mine"}),
            403,
            Ch,
        ),
        (
            "delete the default exchange",
            vec![],
            json!({"op": "exchange_delete", "exchange": ""}),
            403,
            Ch,
        ),
        (
            "publish with expiration \"abc\"",
            vec![queue.clone()],
            json!({"op": "publish", "routing_key": "q", "body": "b", "properties": {"expiration": "abc"}}),
            406,
            Ch,
        ),
        (
            "publish with expiration \"-5\"",
            vec![queue.clone()],
            json!({"op": "publish", "routing_key": "q", "body": "b", "properties": {"expiration": "-5"}}),
            406,
            Ch,
        ),
        (
            "consumer tag reused on a channel",
            vec![
                queue.clone(),
                json!({"op": "consume", "queue": "q", "consumer_tag": "c"}),
            ],
            json!({"op": "consume", "queue": "q", "consumer_tag": "c"}),
            530,
            Conn,
        ),
        (
            "request on a channel never opened",
            vec![],
            json!({"op": "queue_declare", "queue": "q", "channel": 7}),
            504,
            Conn,
        ),
    ]
}

/// What a bad request must not change.
fn state(b: &Broker) -> Value {
    let v = b.view();
    json!({"exchanges": v.exchanges, "bindings": v.bindings, "queues": v.queues})
}

fn send(b: &mut Broker, id: u64, mut req: Value) -> ReplyResult {
    req["id"] = json!(id);
    let req: Request = serde_json::from_value(req).expect("the case decodes");
    b.handle_request(req);
    let frames: Vec<ServerFrame> = std::iter::from_fn(|| b.poll_event()).collect();
    let replies = frames
        .iter()
        .filter(|f| matches!(f.event, Event::Reply { .. }))
        .count();
    assert_eq!(replies, 1, "exactly one reply: {frames:?}");
    match frames.into_iter().last().map(|f| f.event) {
        Some(Event::Reply { id: rid, result }) => {
            assert_eq!(rid, id);
            result
        }
        other => panic!("the reply comes last, got {other:?}"),
    }
}

#[test]
fn bad_commands_get_the_rabbitmq_error_and_change_nothing() {
    let mut failures = Vec::new();
    for (name, setup, bad, code, scope) in cases() {
        // The broker after the setup, and a message in queue `q` (if any)
        // that must survive the error.
        let prepared = |ids: &mut u64| {
            let mut b = Broker::new(1);
            let mut next = || {
                *ids += 1;
                *ids
            };
            let r = send(&mut b, next(), json!({"op": "connection_open"}));
            assert!(matches!(r, ReplyResult::Ok(_)));
            for s in &setup {
                let r = send(&mut b, next(), s.clone());
                assert!(matches!(r, ReplyResult::Ok(_)), "{name}: setup {s}: {r:?}");
            }
            let _ = send(
                &mut b,
                next(),
                json!({"op": "publish", "routing_key": "q", "body": "kept"}),
            );
            b
        };
        let mut id = 0;
        let mut b = prepared(&mut id);
        // A channel error changes nothing; a connection error does what
        // closing the connection does (its consumers go, unacked requeue).
        let expected = match scope {
            ErrorScope::Channel => state(&b),
            ErrorScope::Connection => {
                let mut other_id = 0;
                let mut r = prepared(&mut other_id);
                let closed = send(&mut r, 1000, json!({"op": "connection_close"}));
                assert!(matches!(closed, ReplyResult::Ok(_)), "{closed:?}");
                state(&r)
            }
        };
        id += 1;
        match send(&mut b, id, bad.clone()) {
            ReplyResult::Error(e) if e.code == code && e.scope == scope => {
                assert!(!e.name.is_empty() && !e.text.is_empty(), "{name}: {e:?}");
            }
            other => {
                failures.push(format!(
                    "{name}: expected {code} ({scope:?}), got {other:?}"
                ));
                continue;
            }
        }
        assert_eq!(
            expected,
            state(&b),
            "{name}: the failed request changed the broker"
        );
        // Still works once reopened.
        let reopen = match scope {
            ErrorScope::Channel => json!({"op": "channel_open"}),
            ErrorScope::Connection => json!({"op": "connection_open"}),
        };
        id += 1;
        let r = send(&mut b, id, reopen);
        assert!(matches!(r, ReplyResult::Ok(_)), "{name}: reopen: {r:?}");
        id += 1;
        let r = send(&mut b, id, json!({"op": "queue_declare", "queue": "after"}));
        assert!(matches!(r, ReplyResult::Ok(_)), "{name}: after: {r:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Input that is not even a request is a precise decoding error, never a
/// panic and never a request that does something else.
#[test]
fn undecodable_requests_are_precise_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown op",
            r#"{"id": 1, "op": "frobnicate"}"#,
            "frobnicate",
        ),
        (
            "unknown exchange type",
            r#"{"id": 1, "op": "exchange_declare", "exchange": "x", "type": "x-bogus"}"#,
            "x-bogus",
        ),
        (
            "priority over 255",
            r#"{"id": 1, "op": "publish", "body": "b", "properties": {"priority": 300}}"#,
            "300",
        ),
        (
            "negative delivery tag",
            r#"{"id": 1, "op": "ack", "delivery_tag": -1}"#,
            "-1",
        ),
        (
            "lone surrogate (invalid UTF-16/UTF-8) in a name",
            r#"{"id": 1, "op": "queue_declare", "queue": "\ud800"}"#,
            "hex escape",
        ),
        (
            "queue name of the wrong type",
            r#"{"id": 1, "op": "queue_declare", "queue": 5}"#,
            "invalid type",
        ),
        (
            "arguments not a table",
            r#"{"id": 1, "op": "queue_declare", "queue": "q", "arguments": [1]}"#,
            "invalid type",
        ),
        (
            "channel 70000",
            r#"{"id": 1, "op": "channel_open", "channel": 70000}"#,
            "70000",
        ),
        ("truncated", r#"{"id": 1, "op": "queue_decl"#, "EOF"),
    ];
    for (name, text, needle) in cases {
        match serde_json::from_str::<Request>(text) {
            Ok(r) => panic!("{name}: decoded as {r:?}"),
            Err(e) => assert!(
                e.to_string().contains(needle),
                "{name}: the error should mention {needle:?}: {e}"
            ),
        }
    }
    // Invalid UTF-8 bytes never reach a name: decoding bytes fails first.
    let bytes = b"{\"id\": 1, \"op\": \"queue_declare\", \"queue\": \"\xff\xfe\"}";
    let e = serde_json::from_slice::<Request>(bytes).expect_err("invalid UTF-8");
    assert!(e.to_string().contains("unicode"), "{e}");
}
