//! Real-RabbitMQ workloads for `cargo xtask bench`, each printing one JSON
//! object on stdout:
//!
//! ```sh
//! # direct lapin: confirms on, manual acks, 1 producer, 1 consumer, prefetch 100
//! cargo bench -p bridge --bench relay -- lapin 100000 500
//! # the same workload through a running bridge's /ws (start it with a high
//! # --max-requests-per-sec, or the rate limit is what gets measured)
//! cargo bench -p bridge --bench relay -- bridge 127.0.0.1:8080 100000 500
//! ```
//!
//! Arguments: messages for the throughput run, then samples for the
//! publish → deliver latency (one message in flight at a time).
//! `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`) is the broker.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Body of every message: 16 bytes (as in the simulation workloads).
const BODY: &[u8] = b"0123456789abcdef";
/// Publishes awaiting their confirm at once, and the consumer's prefetch.
const WINDOW: usize = 100;
const PREFETCH: u16 = 100;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let num = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|s| s.parse().expect("a number"))
            .unwrap_or(default)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match args.first().map(String::as_str) {
        Some("lapin") => rt.block_on(lapin_workload(num(1, 100_000), num(2, 500))),
        Some("bridge") => {
            let addr = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:8080".into());
            rt.block_on(bridge_workload(&addr, num(2, 100_000), num(3, 500)))
        }
        None => {
            eprintln!("relay bench: give `lapin N SAMPLES` or `bridge ADDR N SAMPLES`");
            return;
        }
        Some(other) => Err(format!("unknown workload {other:?}").into()),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("relay bench: {e}");
            std::process::exit(1);
        }
    }
}

fn p50(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}.{}.{nanos}", std::process::id())
}

async fn lapin_workload(n: u64, samples: u64) -> Res<Value> {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(&url, ConnectionProperties::default()),
    )
    .await
    .map_err(|_| "RabbitMQ did not answer within 10 s")??;
    let publisher = conn.create_channel().await?;
    let consumer_ch = conn.create_channel().await?;
    let queue = unique("bench");
    publisher
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    consumer_ch
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_ch
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // Throughput: the producer keeps WINDOW confirms outstanding; the consumer
    // acks every delivery. Timed until the last delivery is acked.
    let start = Instant::now();
    let consuming = tokio::spawn(async move {
        let mut got = 0u64;
        while got < n {
            let d = consumer.next().await.ok_or("the consumer stream ended")??;
            d.ack(BasicAckOptions::default()).await?;
            got += 1;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(consumer)
    });
    let mut window = VecDeque::with_capacity(WINDOW);
    for _ in 0..n {
        let confirm = publisher
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                BODY,
                BasicProperties::default(),
            )
            .await?;
        window.push_back(confirm);
        if window.len() > WINDOW {
            let oldest = window.pop_front().expect("non-empty");
            if !oldest.await?.is_ack() {
                return Err("a publish was nacked".into());
            }
        }
    }
    for confirm in window {
        if !confirm.await?.is_ack() {
            return Err("a publish was nacked".into());
        }
    }
    let mut consumer = consuming.await??;
    let secs = start.elapsed().as_secs_f64();

    // Latency: one message at a time, publish → delivery.
    let mut lat = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let confirm = publisher
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                BODY,
                BasicProperties::default(),
            )
            .await?;
        let d = consumer.next().await.ok_or("the consumer stream ended")??;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        d.ack(BasicAckOptions::default()).await?;
        confirm.await?;
    }
    let _ = conn.close(200, "bench done".into()).await;
    Ok(json!({
        "workload": "lapin",
        "messages": n,
        "msgs_per_s": n as f64 / secs,
        "latency_samples": samples,
        "latency_p50_ms": p50(lat),
    }))
}

/// A WebSocket client of the bridge: requests out, frames in.
struct Ws {
    tx: futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        WsMessage,
    >,
    rx: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
}

impl Ws {
    async fn send(&mut self, req: Value) -> Res<()> {
        self.tx
            .send(WsMessage::Text(req.to_string().into()))
            .await?;
        Ok(())
    }

    /// The next frame; errors on a protocol error or an error reply.
    async fn next(&mut self) -> Res<Value> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.rx.next())
                .await
                .map_err(|_| "no frame from the bridge for 30 s")?
                .ok_or("the bridge closed the WebSocket")??;
            let WsMessage::Text(text) = msg else { continue };
            let frame: Value = serde_json::from_str(text.as_str())?;
            match frame["event"].as_str() {
                Some("protocol_error") | Some("closed") => {
                    return Err(format!("bridge: {frame}").into())
                }
                Some("reply") if frame.get("error").is_some() => {
                    return Err(format!("bridge: error reply {frame}").into())
                }
                Some("status") if frame["broker"] == "down" => {
                    return Err(format!("bridge: broker down {frame}").into())
                }
                _ => return Ok(frame),
            }
        }
    }

    /// Sends `req` and waits for its reply (other frames are dropped).
    async fn call(&mut self, req: Value) -> Res<Value> {
        let id = req["id"].clone();
        self.send(req).await?;
        loop {
            let f = self.next().await?;
            if f["event"] == "reply" && f["id"] == id {
                return Ok(f);
            }
        }
    }
}

const PUBLISH_IDS: u64 = 1_000;
const ACK_IDS: u64 = 1 << 40;

async fn bridge_workload(addr: &str, n: u64, samples: u64) -> Res<Value> {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        // Nagle off, as browsers do.
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true),
    )
    .await
    .map_err(|_| "the bridge did not answer within 10 s")??;
    let (tx, rx) = ws.split();
    let mut ws = Ws { tx, rx };
    // As the lapin baseline: one connection, the producer on channel 1 (in
    // confirm mode), the consumer on channel 2.
    ws.call(json!({"id": 1, "op": "queue_declare", "queue": "bench", "exclusive": true}))
        .await?;
    ws.call(json!({"id": 2, "op": "confirm_select"})).await?;
    ws.call(json!({"id": 3, "op": "channel_open", "channel": 2}))
        .await?;
    ws.call(json!({"id": 4, "op": "basic_qos", "channel": 2, "prefetch_count": PREFETCH}))
        .await?;
    ws.call(json!({"id": 5, "op": "consume", "channel": 2, "queue": "bench", "consumer_tag": "c"}))
        .await?;
    let ack =
        |tag: u64| json!({"id": ACK_IDS + tag, "op": "ack", "channel": 2, "delivery_tag": tag});
    let publish = |id: u64| {
        json!({"id": id, "op": "publish", "exchange": "", "routing_key": "bench",
               "body": std::str::from_utf8(BODY).expect("ascii")})
    };

    // Throughput: WINDOW publishes awaiting their reply (which, in confirm
    // mode, comes after the confirm); every delivery acked.
    let start = Instant::now();
    let (mut sent, mut published, mut delivered, mut acked) = (0u64, 0u64, 0u64, 0u64);
    while sent < n.min(WINDOW as u64) {
        ws.send(publish(PUBLISH_IDS + sent)).await?;
        sent += 1;
    }
    while published < n || acked < n {
        let f = ws.next().await?;
        match f["event"].as_str() {
            Some("reply") => {
                let id = f["id"].as_u64().unwrap_or(0);
                if id >= ACK_IDS {
                    acked += 1;
                } else if id >= PUBLISH_IDS {
                    published += 1;
                    if sent < n {
                        ws.send(publish(PUBLISH_IDS + sent)).await?;
                        sent += 1;
                    }
                }
            }
            Some("deliver") => {
                delivered += 1;
                let tag = f["delivery_tag"].as_u64().ok_or("deliver without a tag")?;
                ws.send(ack(tag)).await?;
            }
            _ => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if delivered != n {
        return Err(format!("{delivered} of {n} delivered").into());
    }

    // Latency: one message at a time, publish sent → deliver frame received.
    let mut lat = Vec::new();
    for pub_id in (PUBLISH_IDS + n)..(PUBLISH_IDS + n + samples) {
        let t = Instant::now();
        ws.send(publish(pub_id)).await?;
        let (mut got_reply, mut got_ack) = (false, false);
        let mut ack_id = None;
        while !(got_reply && got_ack) {
            let f = ws.next().await?;
            match f["event"].as_str() {
                Some("deliver") => {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    let tag = f["delivery_tag"].as_u64().ok_or("deliver without a tag")?;
                    ack_id = Some(ACK_IDS + tag);
                    ws.send(ack(tag)).await?;
                }
                Some("reply") => {
                    let rid = f["id"].as_u64();
                    if rid == Some(pub_id) {
                        got_reply = true;
                    } else if rid.is_some() && rid == ack_id {
                        got_ack = true;
                    }
                }
                _ => {}
            }
        }
    }
    let _ = ws.tx.send(WsMessage::Close(None)).await;
    Ok(json!({
        "workload": "bridge",
        "messages": n,
        "msgs_per_s": n as f64 / secs,
        "latency_samples": samples,
        "latency_p50_ms": p50(lat),
    }))
}
