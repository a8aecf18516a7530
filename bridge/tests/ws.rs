//! End-to-end tests of the bridge server: a real WebSocket client against the
//! server bound to 127.0.0.1:0 and the real RabbitMQ on 127.0.0.1:5672.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bridge::server::Server;
use bridge::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
    }
}

fn config() -> Config {
    let mut c = Config::with_defaults();
    c.bind = "127.0.0.1:0".into();
    c.static_dir = std::env::temp_dir().join("amqp-playground-bridge-test-static");
    let _ = std::fs::create_dir_all(&c.static_dir);
    let _ = std::fs::write(c.static_dir.join("index.html"), "<h1>playground</h1>");
    c
}

async fn start(config: Config) -> Running {
    let server = Server::bind(config).await.expect("binds");
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .run(async {
                let _ = rx.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

async fn connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("upgrade");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// Next frame matching `pred` (others are skipped), within 10 s.
async fn next_matching(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last: Vec<String> = Vec::new();
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no matching frame within 10 s; last seen: {last:?}"))
            .expect("socket open")
            .expect("no socket error");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).expect("server frames are JSON");
            assert!(v.get("at_ms").is_some(), "frames carry at_ms: {v}");
            if pred(&v) {
                return v;
            }
            last.push(v.to_string());
        }
    }
}

async fn reply(ws: &mut Ws, id: u64) -> Value {
    next_matching(ws, |v| v["event"] == "reply" && v["id"] == id).await
}

async fn protocol_error(ws: &mut Ws) -> Value {
    next_matching(ws, |v| v["event"] == "protocol_error").await
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}",
        bridge::relay::names::random_u64() % 1_000_000_007
    )
}

#[tokio::test]
async fn malformed_unknown_and_oversize_frames_get_protocol_errors() {
    let mut cfg = config();
    cfg.max_frame_bytes = 1024;
    let server = start(cfg).await;
    let mut ws = connect(server.addr).await;

    ws.send(Message::Text("{not json".into()))
        .await
        .expect("send");
    let e = protocol_error(&mut ws).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("malformed JSON"),
        "{e}"
    );

    send(&mut ws, json!({"id": 5, "op": "frobnicate"})).await;
    let e = protocol_error(&mut ws).await;
    assert_eq!(e["id"], 5);
    assert!(
        e["message"].as_str().unwrap_or("").contains("frobnicate"),
        "{e}"
    );

    let big = json!({"id": 6, "op": "publish", "routing_key": "x", "body": "y".repeat(2000)});
    send(&mut ws, big).await;
    let e = protocol_error(&mut ws).await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("exceeds"),
        "{e}"
    );

    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .expect("send");
    protocol_error(&mut ws).await;

    // Still usable.
    let q = unique("usable");
    send(&mut ws, json!({"id": 7, "op": "queue_declare", "queue": q})).await;
    let r = reply(&mut ws, 7).await;
    assert_eq!(r["ok"]["kind"], "queue_declare_ok", "{r}");
    assert_eq!(r["ok"]["queue"], q.as_str(), "the prefix never shows: {r}");
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn declare_publish_consume_ack_round_trip() {
    let server = start(config()).await;
    let mut ws = connect(server.addr).await;
    let q = unique("orders");
    send(&mut ws, json!({"id": 1, "op": "queue_declare", "queue": q})).await;
    assert_eq!(reply(&mut ws, 1).await["ok"]["queue"], q.as_str());
    send(
        &mut ws,
        json!({"id": 2, "op": "consume", "queue": q, "consumer_tag": "c1"}),
    )
    .await;
    assert_eq!(reply(&mut ws, 2).await["ok"]["kind"], "consume_ok");
    send(
        &mut ws,
        json!({"id": 3, "op": "publish", "routing_key": q, "body": "hello",
                         "properties": {"headers": {"h": "v"}, "message_id": "m-1"}}),
    )
    .await;
    // The delivery may overtake the publish's reply.
    let first = next_matching(&mut ws, |v| {
        v["event"] == "deliver" || (v["event"] == "reply" && v["id"] == 3)
    })
    .await;
    let (published, d) = if first["event"] == "deliver" {
        (reply(&mut ws, 3).await, first)
    } else {
        let d = next_matching(&mut ws, |v| v["event"] == "deliver").await;
        (first, d)
    };
    assert_eq!(published["ok"]["kind"], "published", "{published}");
    assert_eq!(d["message"]["body"], "hello");
    assert_eq!(d["routing_key"], q.as_str(), "{d}");
    assert_eq!(
        d["message"]["properties"]["headers"],
        json!({"h": "v"}),
        "{d}"
    );
    assert_eq!(d["message_id"], published["ok"]["message_id"], "{d}");
    let tag = d["delivery_tag"].as_u64().expect("tag");
    send(&mut ws, json!({"id": 4, "op": "ack", "delivery_tag": tag})).await;
    assert_eq!(reply(&mut ws, 4).await["ok"]["kind"], "ok");
    // A bad tag is a channel error, reported with a closed event first.
    send(&mut ws, json!({"id": 5, "op": "ack", "delivery_tag": 99})).await;
    let closed = next_matching(&mut ws, |v| v["event"] == "closed").await;
    assert_eq!(closed["error"]["code"], 406, "{closed}");
    let r = reply(&mut ws, 5).await;
    assert_eq!(r["error"]["name"], "PRECONDITION_FAILED", "{r}");
    drop(ws);
    server.stop().await;
}

/// Frames until the replies to `ids` are all in (10 s), in arrival order.
async fn frames_until_replies(ws: &mut Ws, ids: &[u64]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut left: Vec<u64> = ids.to_vec();
    while !left.is_empty() {
        let v = next_matching(ws, |_| true).await;
        if v["event"] == "reply" {
            if let Some(id) = v["id"].as_u64() {
                left.retain(|x| *x != id);
            }
        }
        out.push(v);
    }
    out
}

#[tokio::test]
async fn pipelined_publishes_and_acks_keep_order_and_attribution() {
    let server = start(config()).await;
    let mut ws = connect(server.addr).await;
    let q = unique("pipe");
    send(&mut ws, json!({"id": 1, "op": "queue_declare", "queue": q})).await;
    reply(&mut ws, 1).await;
    send(&mut ws, json!({"id": 2, "op": "confirm_select"})).await;
    reply(&mut ws, 2).await;
    // Sent back to back, without waiting: five publishes the broker cannot
    // refuse, one to a missing exchange, one after it.
    let mut ids = Vec::new();
    for i in 0..5u64 {
        send(
            &mut ws,
            json!({"id": 10 + i, "op": "publish", "routing_key": q, "body": format!("m{i}")}),
        )
        .await;
        ids.push(10 + i);
    }
    send(
        &mut ws,
        json!({"id": 20, "op": "publish", "exchange": "no-such-exchange", "body": "x"}),
    )
    .await;
    send(
        &mut ws,
        json!({"id": 21, "op": "publish", "routing_key": q, "body": "late"}),
    )
    .await;
    ids.extend([20, 21]);
    let frames = frames_until_replies(&mut ws, &ids).await;
    let replies: Vec<&Value> = frames.iter().filter(|v| v["event"] == "reply").collect();
    let order: Vec<u64> = replies.iter().filter_map(|v| v["id"].as_u64()).collect();
    assert_eq!(order, ids, "replies in request order");
    // Each of the five: its confirm (its own seq), then its reply.
    for (i, r) in replies[..5].iter().enumerate() {
        assert_eq!(r["ok"]["seq"], i as u64 + 1, "{r}");
        let at = frames.iter().position(|f| f == *r).expect("in frames");
        let confirm = frames[..at]
            .iter()
            .rev()
            .find(|f| f["event"] == "confirm")
            .expect("a confirm before the reply");
        assert_eq!(confirm["seq"], i as u64 + 1, "{confirm}");
        assert_eq!(confirm["ack"], true, "{confirm}");
    }
    // The missing exchange is that publish's channel error (closed first).
    assert_eq!(replies[5]["error"]["code"], 404, "{}", replies[5]);
    let closed = frames
        .iter()
        .find(|f| f["event"] == "closed")
        .expect("a closed frame");
    assert_eq!(closed["channel"], 1, "{closed}");
    assert_eq!(closed["error"]["code"], 404, "{closed}");
    // The one after it met a closed channel (as on RabbitMQ: a connection error).
    assert_eq!(replies[6]["error"]["code"], 504, "{}", replies[6]);
    send(&mut ws, json!({"id": 30, "op": "connection_open"})).await;
    reply(&mut ws, 30).await;

    // Acks: deliveries acked back to back, then an unknown tag, which is that
    // ack's own 406.
    send(
        &mut ws,
        json!({"id": 31, "op": "consume", "queue": q, "consumer_tag": "c"}),
    )
    .await;
    let mut tags = Vec::new();
    while tags.len() < 5 {
        let d = next_matching(&mut ws, |v| v["event"] == "deliver").await;
        tags.push(d["delivery_tag"].as_u64().expect("tag"));
    }
    let mut ids = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        send(
            &mut ws,
            json!({"id": 40 + i as u64, "op": "ack", "delivery_tag": tag}),
        )
        .await;
        ids.push(40 + i as u64);
    }
    send(&mut ws, json!({"id": 50, "op": "ack", "delivery_tag": 999})).await;
    ids.push(50);
    let frames = frames_until_replies(&mut ws, &ids).await;
    let replies: Vec<&Value> = frames.iter().filter(|v| v["event"] == "reply").collect();
    let order: Vec<u64> = replies.iter().filter_map(|v| v["id"].as_u64()).collect();
    assert_eq!(order, ids, "replies in request order");
    assert!(
        replies[..5].iter().all(|r| r["ok"]["kind"] == "ok"),
        "{replies:?}"
    );
    assert_eq!(replies[5]["error"]["code"], 406, "{}", replies[5]);
    drop(ws);
    server.stop().await;
}

fn rabbitmqctl_list(what: &str) -> Vec<String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", what, "name"])
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[tokio::test]
async fn sessions_are_isolated_and_cleaned_up() {
    let server = start(config()).await;
    let mut a = connect(server.addr).await;
    let mut b = connect(server.addr).await;
    let q = unique("shared");
    let x = unique("xchg");
    for ws in [&mut a, &mut b] {
        send(ws, json!({"id": 1, "op": "queue_declare", "queue": q})).await;
        assert_eq!(reply(ws, 1).await["ok"]["queue"], q.as_str());
    }
    send(
        &mut a,
        json!({"id": 2, "op": "exchange_declare", "exchange": x, "type": "fanout"}),
    )
    .await;
    assert_eq!(reply(&mut a, 2).await["ok"]["kind"], "ok");
    send(
        &mut a,
        json!({"id": 3, "op": "queue_bind", "queue": q, "exchange": "amq.fanout"}),
    )
    .await;
    assert_eq!(reply(&mut a, 3).await["ok"]["kind"], "ok");
    send(
        &mut a,
        json!({"id": 4, "op": "publish", "exchange": "amq.fanout", "body": "from-a"}),
    )
    .await;
    reply(&mut a, 4).await;
    send(
        &mut b,
        json!({"id": 5, "op": "get", "queue": q, "no_ack": true}),
    )
    .await;
    assert_eq!(
        reply(&mut b, 5).await["ok"]["kind"],
        "get_empty",
        "B must not see A's message"
    );
    send(
        &mut a,
        json!({"id": 6, "op": "get", "queue": q, "no_ack": true}),
    )
    .await;
    let got = reply(&mut a, 6).await;
    assert_eq!(got["ok"]["message"]["body"], "from-a", "{got}");
    assert_eq!(got["ok"]["exchange"], "amq.fanout", "{got}");

    // Publishing to a global amq.* exchange never reaches another session:
    // declaring amq.* is refused as RabbitMQ does.
    send(
        &mut a,
        json!({"id": 7, "op": "exchange_declare", "exchange": "amq.mine"}),
    )
    .await;
    assert_eq!(reply(&mut a, 7).await["error"]["code"], 403);

    let suffix_q = format!(".{q}");
    let suffix_x = format!(".{x}");
    let queues = rabbitmqctl_list("list_queues");
    assert_eq!(
        queues
            .iter()
            .filter(|n| n.starts_with("pg.") && n.ends_with(&suffix_q))
            .count(),
        2,
        "{queues:?}"
    );
    assert!(!queues.contains(&q), "names are namespaced");
    a.close(None).await.expect("close");
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let queues = rabbitmqctl_list("list_queues");
        let exchanges = rabbitmqctl_list("list_exchanges");
        let qs = queues.iter().filter(|n| n.ends_with(&suffix_q)).count();
        let xs = exchanges.iter().filter(|n| n.ends_with(&suffix_x)).count();
        if qs == 1 && xs == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A's objects are not deleted: {queues:?} {exchanges:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(b);
    server.stop().await;
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn healthz_reports_up_and_down_quickly() {
    let server = start(config()).await;
    let h = get_json(server.addr, "/healthz").await;
    assert_eq!(h["bridge"], "ok");
    assert_eq!(h["broker"], "up", "{h}");
    assert!(
        h["version"].as_str().is_some_and(|v| v.starts_with('3')),
        "{h}"
    );
    server.stop().await;

    let mut cfg = config();
    cfg.amqp_url = "amqp://guest:secret@127.0.0.1:1/%2f".into();
    let server = start(cfg).await;
    let t = Instant::now();
    let h = get_json(server.addr, "/healthz").await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "healthz took {:?}",
        t.elapsed()
    );
    assert_eq!(h["broker"], "down", "{h}");
    assert_eq!(h["version"], Value::Null);
    assert!(!h.to_string().contains("secret"), "credentials leak: {h}");
    // The page itself never depends on the broker.
    let mut ws = connect(server.addr).await;
    let st = next_matching(&mut ws, |v| v["event"] == "status").await;
    assert_eq!(st["broker"], "down", "{st}");
    assert!(!st.to_string().contains("secret"), "{st}");
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn cross_origin_upgrade_is_refused_unless_allowed() {
    let server = start(config()).await;
    let url = format!("ws://{}/ws", server.addr);
    let mut req = url.clone().into_client_request().expect("request");
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().expect("header"));
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = url.clone().into_client_request().expect("request");
    let same = format!("http://{}", server.addr);
    req.headers_mut()
        .insert("Origin", same.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("same origin is fine");
    server.stop().await;

    let mut cfg = config();
    cfg.allow_origins = vec!["http://evil.example".into()];
    let server = start(cfg).await;
    let mut req = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("allowed origin");
    server.stop().await;
}

#[tokio::test]
async fn static_files_and_spa_fallback() {
    let server = start(config()).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(
        format!(
            "GET /some/route HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
    assert!(buf.contains("<h1>playground</h1>"), "{buf}");
    server.stop().await;
}

#[tokio::test]
async fn port_taken_is_a_clear_error() {
    let server = start(config()).await;
    let mut cfg = config();
    cfg.bind = server.addr.to_string();
    let err = Server::bind(cfg).await.err().expect("port taken");
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn broker_restart_is_refused_without_the_flag() {
    let server = start(config()).await;
    let mut ws = connect(server.addr).await;
    send(&mut ws, json!({"id": 1, "op": "broker_restart"})).await;
    let r = reply(&mut ws, 1).await;
    assert_eq!(r["error"]["code"], 403, "{r}");
    assert!(
        r["error"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-broker-restart"),
        "{r}"
    );
    send(&mut ws, json!({"id": 2, "op": "queue_declare", "queue": "", "arguments": {"x-queue-master-locator": "x"}})).await;
    let r = reply(&mut ws, 2).await;
    assert!(
        r["error"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("x-queue-master-locator"),
        "{r}"
    );
    send(
        &mut ws,
        json!({"id": 3, "op": "queue_declare", "queue": ""}),
    )
    .await;
    let r = reply(&mut ws, 3).await;
    assert!(
        r["ok"]["queue"]
            .as_str()
            .unwrap_or("")
            .starts_with("amq.gen-"),
        "{r}"
    );
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn floods_are_rate_limited() {
    let mut cfg = config();
    cfg.max_requests_per_sec = 5;
    let server = start(cfg).await;
    let mut ws = connect(server.addr).await;
    for i in 0..30u64 {
        send(
            &mut ws,
            json!({"id": i + 1, "op": "basic_qos", "prefetch_count": 1}),
        )
        .await;
    }
    let e = protocol_error(&mut ws).await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("rate limit"),
        "{e}"
    );
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn unreachable_broker_is_retried_with_backoff() {
    let mut cfg = config();
    cfg.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let server = start(cfg).await;
    let mut ws = connect(server.addr).await;
    let first = next_matching(&mut ws, |v| v["event"] == "status").await;
    assert_eq!(first["broker"], "down");
    let detail = first["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("broker unreachable: "), "{first}");
    let second = next_matching(&mut ws, |v| v["event"] == "status").await;
    assert_eq!(second["broker"], "down");
    assert!(
        second["detail"]
            .as_str()
            .unwrap_or("")
            .contains("retrying in 2 s"),
        "{second}"
    );
    // Requests meanwhile get an error reply, not silence.
    send(
        &mut ws,
        json!({"id": 1, "op": "queue_declare", "queue": "q"}),
    )
    .await;
    let r = reply(&mut ws, 1).await;
    assert_eq!(r["error"]["code"], 504, "{r}");
    drop(ws);
    server.stop().await;
}

// The broker-restart test (reconnect, re-declared topology, confirmed
// persistent messages kept) restarts the shared RabbitMQ, so it lives in
// `cargo xtask faults` (xtask/src/faults.rs), the last stage of `cargo xtask test`.

#[tokio::test]
async fn shutdown_cleans_up_open_sessions() {
    let server = start(config()).await;
    let mut ws = connect(server.addr).await;
    let q = unique("at-shutdown");
    send(
        &mut ws,
        json!({"id": 1, "op": "queue_declare", "queue": q, "durable": true}),
    )
    .await;
    reply(&mut ws, 1).await;
    let suffix = format!(".{q}");
    assert!(rabbitmqctl_list("list_queues")
        .iter()
        .any(|n| n.ends_with(&suffix)));
    // The client stays connected; the server stops and must clean up first.
    server.stop().await;
    let queues = rabbitmqctl_list("list_queues");
    assert!(!queues.iter().any(|n| n.ends_with(&suffix)), "{queues:?}");
    drop(ws);
}

#[tokio::test]
async fn dropping_a_session_cleans_up() {
    use bridge::relay::{RelayConfig, Session};
    use sim_core::protocol::{Method, Request};
    let (session, mut frames) = Session::start(RelayConfig::default());
    let q = unique("dropped");
    session.send(Request::new(
        1,
        Method::QueueDeclare {
            queue: q.clone(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: Default::default(),
        },
    ));
    loop {
        let f = tokio::time::timeout(Duration::from_secs(10), frames.recv())
            .await
            .expect("reply in time")
            .expect("session alive");
        if matches!(f.event, sim_core::protocol::Event::Reply { .. }) {
            break;
        }
    }
    drop(session);
    // The engine notices, cleans up, and closes the frame stream.
    tokio::time::timeout(Duration::from_secs(15), async {
        while frames.recv().await.is_some() {}
    })
    .await
    .expect("frame stream ends");
    let suffix = format!(".{q}");
    let queues = rabbitmqctl_list("list_queues");
    assert!(!queues.iter().any(|n| n.ends_with(&suffix)), "{queues:?}");
}
