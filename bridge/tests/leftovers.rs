//! A bridge killed with SIGKILL cleans up nothing; the next bridge on the
//! same state directory deletes what it left on RabbitMQ, and never what a
//! live bridge owns. Real bridge processes, the real RabbitMQ on
//! 127.0.0.1:5672.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A bridge process, killed (SIGKILL) on drop.
struct Bridge {
    child: Child,
    addr: String,
}

impl Bridge {
    fn start(state_dir: &Path) -> Bridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bridge"))
            .args(["--bind", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .env("AMQP_URL", AMQP_URL)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the bridge binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the bridge prints its address");
        let addr = line
            .trim()
            .strip_prefix("amqp-playground: serving http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Bridge { child, addr }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(addr: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("WebSocket upgrade");
    ws
}

async fn call(ws: &mut Ws, req: Value) -> Value {
    let id = req["id"].clone();
    ws.send(Message::Text(req.to_string().into()))
        .await
        .expect("send");
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("no socket error");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
            if v["event"] == "reply" && v["id"] == id {
                assert!(v.get("ok").is_some(), "{req} failed: {v}");
                return v;
            }
        }
    }
}

/// The broker-side names in the journals of `dir` (`q <name>` lines).
fn journaled(dir: &Path, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    for broker in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(broker.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            for line in text.lines() {
                if let Some(name) = line.strip_prefix(&format!("{kind} ")) {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

fn journals(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|b| std::fs::read_dir(b.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "journal"))
        .count()
}

/// Whether a queue exists (passive declare).
async fn queue_exists(conn: &Connection, name: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel");
    let opts = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let found = ch
        .queue_declare(name.into(), opts, FieldTable::default())
        .await
        .is_ok();
    let _ = ch.close(200, "OK".into()).await;
    found
}

async fn exchange_exists(conn: &Connection, name: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel");
    let opts = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let found = ch
        .exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            opts,
            FieldTable::default(),
        )
        .await
        .is_ok();
    let _ = ch.close(200, "OK".into()).await;
    found
}

fn state_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "amqp-playground-leftovers-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).expect("state dir");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bridges_namespace_is_deleted_by_the_next_bridge_only() {
    let dir = state_dir();
    let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (start it: rabbitmq-server -detached)");

    // Bridge A: a session declares a durable queue and an exchange, then A
    // is killed before it can clean up.
    let a = Bridge::start(&dir);
    let mut ws = session(&a.addr).await;
    call(
        &mut ws,
        json!({"id": 1, "op": "queue_declare", "queue": "left", "durable": true}),
    )
    .await;
    call(&mut ws, json!({"id": 2, "op": "exchange_declare", "exchange": "left.x", "type": "fanout", "durable": true})).await;
    let queue = journaled(&dir, "q")
        .into_iter()
        .find(|q| q.ends_with(".left"))
        .expect("the queue is in A's journal");
    let prefix = queue.trim_end_matches("left").to_string();
    let exchange = format!("{prefix}left.x");
    assert!(
        journaled(&dir, "x").contains(&exchange),
        "the exchange is journaled"
    );
    drop(a); // SIGKILL
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        queue_exists(&amqp, &queue).await,
        "a killed bridge leaves its queue"
    );
    assert!(exchange_exists(&amqp, &exchange).await);

    // Bridge B, same state dir: its startup sweep deletes A's namespace. B
    // also has a live session of its own.
    let b = Bridge::start(&dir);
    let mut ws_b = session(&b.addr).await;
    call(
        &mut ws_b,
        json!({"id": 1, "op": "queue_declare", "queue": "mine", "durable": true}),
    )
    .await;
    // The sweep removes A's journal when it has deleted everything in it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while journals(&dir) > 1 {
        assert!(Instant::now() < deadline, "B did not sweep A's journal");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !queue_exists(&amqp, &queue).await,
        "A's queue {queue} is deleted"
    );
    assert!(
        !exchange_exists(&amqp, &exchange).await,
        "A's exchange is deleted"
    );
    let mine = journaled(&dir, "q")
        .into_iter()
        .find(|q| q.ends_with(".mine"))
        .expect("B's queue is in B's journal");
    assert_eq!(journals(&dir), 1, "B's journal is there");

    // Bridge C starts while B lives: B's namespace must survive C's sweep.
    let c = Bridge::start(&dir);
    let mut ws_c = session(&c.addr).await;
    call(
        &mut ws_c,
        json!({"id": 1, "op": "queue_declare", "queue": "probe"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        queue_exists(&amqp, &mine).await,
        "a live bridge's queue was deleted"
    );
    assert_eq!(journals(&dir), 2, "B's and C's journals");

    // B ends its session cleanly: its queue goes at once.
    drop(ws_b);
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue_exists(&amqp, &mine).await {
        assert!(Instant::now() < deadline, "B's session did not clean up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(ws_c);
    drop(b);
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Whatever C left (its session's `probe`) a later bridge deletes; do it
    // now so the shared broker keeps nothing of this test.
    let swept = bridge::relay::journal::sweep(
        &bridge::relay::journal::broker_dir(&dir, AMQP_URL),
        AMQP_URL,
        Duration::from_secs(5),
    )
    .await
    .expect("sweep");
    assert_eq!(
        swept.journals, 2,
        "B and C were killed: both journals swept"
    );
    assert_eq!(journals(&dir), 0);
    let _ = amqp.close(200, "OK".into()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
