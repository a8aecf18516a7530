//! A session whose AMQP connections RabbitMQ forces closed (as when it stops)
//! is put back as it was: connections, channels, an exclusive queue, qos,
//! confirm mode, consumers with their tags, delivery tags going on. The real
//! RabbitMQ on 127.0.0.1:5672; only this session's own connections are
//! closed (`rabbitmqctl close_connection`), the broker keeps running.
//! (`cargo xtask faults` does the same through a real RabbitMQ restart.)

use std::collections::VecDeque;
use std::process::Command;
use std::time::Duration;

use bridge::relay::{RelayConfig, Session};
use serde_json::{json, Value};
use sim_core::protocol::{Request, ServerFrame};
use tokio::sync::mpsc::UnboundedReceiver;

struct Client {
    session: Session,
    frames: UnboundedReceiver<ServerFrame>,
    /// Frames read but not consumed yet.
    seen: VecDeque<Value>,
}

impl Client {
    async fn next(&mut self) -> Value {
        let f = tokio::time::timeout(Duration::from_secs(20), self.frames.recv())
            .await
            .expect("a frame within 20 s")
            .expect("the session is running");
        serde_json::to_value(&f).expect("frames serialize")
    }

    /// The first frame (seen earlier or new) matching `pred`.
    async fn take(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i).expect("present");
        }
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
            self.seen.push_back(v);
        }
    }

    async fn call(&mut self, req: Value) -> Value {
        let id = req["id"].clone();
        let r: Request = serde_json::from_value(req.clone()).expect("a request");
        self.session.send(r);
        let reply = self.take(|v| v["event"] == "reply" && v["id"] == id).await;
        assert!(reply.get("ok").is_some(), "{req} failed: {reply}");
        reply
    }

    async fn deliver(&mut self) -> Value {
        self.take(|v| v["event"] == "deliver").await
    }
}

fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(out.status.success(), "rabbitmqctl {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_closed_connections_are_restored_as_they_were() {
    let prefix = format!(
        "pg.rt{:06x}.",
        bridge::relay::names::random_u64() & 0xff_ffff
    );
    let (session, frames) = Session::start(RelayConfig {
        prefix: Some(prefix.clone()),
        ..RelayConfig::default()
    });
    let mut c = Client {
        session,
        frames,
        seen: VecDeque::new(),
    };
    let up = c.take(|v| v["event"] == "status").await;
    assert_eq!(up["broker"], "up", "{up}");

    c.call(json!({"id": 1, "op": "queue_declare", "queue": "work"}))
        .await;
    c.call(json!({"id": 2, "op": "queue_declare", "queue": "mine", "exclusive": true}))
        .await;
    c.call(json!({"id": 3, "op": "confirm_select"})).await;
    c.call(json!({"id": 4, "op": "consume", "queue": "mine", "consumer_tag": "x", "no_ack": true}))
        .await;
    c.call(json!({"id": 5, "op": "connection_open", "connection": 2}))
        .await;
    let st = c.take(|v| v["event"] == "status").await;
    assert_eq!(st["broker"], "up", "connection_open says up: {st}");
    c.call(json!({"id": 6, "op": "channel_open", "connection": 2, "channel": 2}))
        .await;
    c.call(json!({"id": 7, "op": "basic_qos", "connection": 2, "channel": 2, "prefetch_count": 1}))
        .await;
    c.call(json!({"id": 8, "op": "consume", "connection": 2, "channel": 2, "queue": "work", "consumer_tag": "w"})).await;
    for i in 0..2 {
        let r = c
            .call(json!({"id": 10 + i, "op": "publish", "routing_key": "work", "body": format!("w{i}")}))
            .await;
        assert_eq!(r["ok"]["seq"], i + 1, "{r}");
    }
    let d = c.deliver().await;
    assert_eq!(
        (d["consumer_tag"].clone(), d["delivery_tag"].clone()),
        (json!("w"), json!(1)),
        "{d}"
    );

    // RabbitMQ forces this session's connections closed.
    let listing = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    let mine: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(&prefix))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        mine.len(),
        2,
        "two connections named after {prefix}: {listing}"
    );
    // Both at once, as when the broker stops (each rabbitmqctl takes a while).
    let closing: Vec<_> = mine
        .iter()
        .map(|pid| {
            Command::new("rabbitmqctl")
                .args(["close_connection", pid, "restore test"])
                .spawn()
                .expect("rabbitmqctl runs")
        })
        .collect();
    for mut child in closing {
        assert!(child.wait().expect("rabbitmqctl ends").success());
    }
    let lost = c.take(|v| v["event"] == "status").await;
    assert_eq!(lost["broker"], "reconnecting", "{lost}");
    let up = c.take(|v| v["event"] == "status").await;
    assert_eq!(up["broker"], "up", "{up}");
    let detail = up["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("re-declared 0 exchanges, 1 queues, 2 bindings")
            && detail.contains("reopened 2 connections, 3 channels, 2 consumers")
            && !detail.contains("failed"),
        "{up}"
    );
    assert!(
        !c.seen.iter().any(|v| v["event"] == "closed"),
        "nothing for the client to reopen: {:?}",
        c.seen
    );

    // The worker's unacked delivery comes again, tagged after the last tag
    // the client saw, one at a time (prefetch 1 is back).
    let d = c.deliver().await;
    assert_eq!(d["consumer_tag"], "w", "{d}");
    assert_eq!(d["delivery_tag"], 2, "{d}");
    assert_eq!(d["redelivered"], true, "{d}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(f) = c.frames.try_recv() {
        c.seen
            .push_back(serde_json::to_value(&f).expect("frames serialize"));
    }
    assert!(
        !c.seen.iter().any(|v| v["event"] == "deliver"),
        "prefetch 1 not restored: {:?}",
        c.seen
    );
    // A tag from before the outage: nothing to settle, no channel error.
    c.call(json!({"id": 20, "op": "ack", "connection": 2, "channel": 2, "delivery_tag": 1}))
        .await;
    c.call(json!({"id": 21, "op": "ack", "connection": 2, "channel": 2, "delivery_tag": 2}))
        .await;
    let d = c.deliver().await;
    assert_eq!(
        (d["consumer_tag"].clone(), d["delivery_tag"].clone()),
        (json!("w"), json!(3)),
        "{d}"
    );
    c.call(json!({"id": 22, "op": "ack", "connection": 2, "channel": 2, "delivery_tag": 3}))
        .await;

    // The exclusive queue is back on connection 1 with its consumer; channel
    // 1 is still in confirm mode and its sequence numbers go on.
    let r = c
        .call(json!({"id": 23, "op": "publish", "routing_key": "mine", "body": "again"}))
        .await;
    assert_eq!(r["ok"]["seq"], 3, "{r}");
    let d = c.deliver().await;
    assert_eq!(
        (d["consumer_tag"].clone(), d["message"]["body"].clone()),
        (json!("x"), json!("again")),
        "{d}"
    );
    c.session.shutdown().await;
}
