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

#[path = "common/bad_inputs.rs"]
mod bad_inputs;
use bad_inputs::cases;

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
