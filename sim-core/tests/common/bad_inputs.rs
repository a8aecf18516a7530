//! The table of malformed and impossible requests shared by
//! `sim-core/tests/bad_input.rs` and `bridge/tests/bad_input.rs` (included
//! with `#[path]`): each with its setup and the error RabbitMQ answers.

use serde_json::{json, Value};
use sim_core::protocol::ErrorScope;

/// (name, setup requests, the bad request, expected reply code, scope)
pub type Case = (&'static str, Vec<Value>, Value, u16, ErrorScope);

pub fn cases() -> Vec<Case> {
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
            "unknown exchange type",
            vec![],
            json!({"op": "exchange_declare", "exchange": "ux", "type": "x-bogus"}),
            503,
            Conn,
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
