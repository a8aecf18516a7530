//! Malformed and impossible commands through the bridge's `/ws` to the real
//! RabbitMQ (issues 5 and 6): the same table as sim-core's
//! `tests/bad_input.rs`. Each gets the error RabbitMQ gives — the same code
//! and scope as the simulation's — in a reply (never a hang or a dropped
//! socket), the session's queue keeps its message, and the session works again
//! after reopening what the error closed.

use std::net::SocketAddr;
use std::time::Duration;

use bridge::server::Server;
use bridge::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sim_core::protocol::ErrorScope;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[path = "../../sim-core/tests/common/bad_inputs.rs"]
mod bad_inputs;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Client {
    ws: Ws,
    id: u64,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("upgrade");
        let mut c = Client { ws, id: 0 };
        let st = c.next(|v| v["event"] == "status").await;
        assert_eq!(st["broker"], "up", "{st}");
        c
    }

    async fn next(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame within 10 s (no hang)")
                .expect("socket open")
                .expect("no socket error");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                if pred(&v) {
                    return v;
                }
            }
        }
    }

    async fn call(&mut self, mut req: Value) -> Value {
        self.id += 1;
        let id = self.id;
        req["id"] = json!(id);
        self.ws
            .send(Message::Text(req.to_string().into()))
            .await
            .expect("send");
        self.next(|v| v["event"] == "reply" && v["id"] == id).await
    }
}

#[tokio::test]
async fn bad_commands_get_the_rabbitmq_error_through_the_bridge() {
    let mut cfg = Config::with_defaults();
    cfg.bind = "127.0.0.1:0".into();
    cfg.max_requests_per_sec = 10_000;
    cfg.static_dir = std::env::temp_dir().join("amqp-playground-bridge-test-static");
    let server = Server::bind(cfg).await.expect("binds");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });

    let mut failures = Vec::new();
    for (name, setup, bad, code, scope) in bad_inputs::cases() {
        let mut c = Client::connect(addr).await;
        for s in &setup {
            let r = c.call(s.clone()).await;
            assert!(r.get("ok").is_some(), "{name}: setup {s}: {r}");
        }
        let has_q = setup.iter().any(|s| s["queue"] == "q");
        c.call(json!({"op": "publish", "routing_key": "q", "body": "kept"}))
            .await;
        let r = c.call(bad.clone()).await;
        let want_scope = match scope {
            ErrorScope::Channel => "channel",
            ErrorScope::Connection => "connection",
        };
        if r["error"]["code"] != code || r["error"]["scope"] != want_scope {
            failures.push(format!("{name}: expected {code} ({want_scope}), got {r}"));
        } else {
            assert!(
                r["error"]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{name}: {r}"
            );
            assert!(
                !r.to_string().contains("pg."),
                "{name}: the namespace leaks: {r}"
            );
        }
        let reopen = match r["error"]["scope"].as_str() {
            Some("connection") => json!({"op": "connection_open"}),
            _ => json!({"op": "channel_open"}),
        };
        let r = c.call(reopen).await;
        assert!(r.get("ok").is_some(), "{name}: reopen: {r}");
        if has_q {
            // The kept message is still there (requeued if it was delivered).
            let mut count = Value::Null;
            for _ in 0..20 {
                let r = c
                    .call(json!({"op": "queue_declare", "queue": "q", "passive": true}))
                    .await;
                count = r["ok"]["message_count"].clone();
                if count == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(count, 1, "{name}: the queue lost its message");
        }
        let r = c
            .call(json!({"op": "queue_declare", "queue": "after"}))
            .await;
        assert!(r.get("ok").is_some(), "{name}: after: {r}");
        let _ = c.ws.close(None).await;
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
