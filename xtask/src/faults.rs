//! `cargo xtask faults`: the bridge under load and through a RabbitMQ restart.
//!
//! These checks disturb the shared broker (a burst of connections; a
//! `rabbitmqctl stop_app` / `start_app`), so they are not part of `cargo test`
//! but the last stage of `cargo xtask test`. Each runs a real bridge server in
//! this process (bound to 127.0.0.1:0) and talks to it over WebSockets, as the
//! page does.
//!
//! - `load`: N clients publish M confirmed messages each, pipelined; every
//!   message is confirmed (ack) and then consumed exactly once.
//! - `broker restart`: a session with durable and transient topology, two
//!   connections, three channels, two consumers (one with manual acks and
//!   prefetch 1 on a durable queue, holding an unacked persistent delivery)
//!   and confirmed persistent messages sees RabbitMQ stop and start; it must
//!   get `status` frames, keep
//!   getting replies while the broker is down, be back `up` within 5 s of
//!   RabbitMQ accepting connections with its transient topology re-declared,
//!   every connection and channel reopened, both consumers delivering again
//!   with their tags and prefetch (delivery tags going on from where they
//!   were), confirm mode still on, and every confirmed persistent message
//!   kept.
//!
//! The broker is always started again (a guard runs `rabbitmqctl start_app`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bridge::server::Server;
use bridge::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest a session may take to be `up` again once RabbitMQ accepts
/// connections after a restart (issue 6).
const RECONNECT_BOUND: Duration = Duration::from_secs(5);

pub fn main(clients: usize, messages: usize, only: Option<String>) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let mut passed = 0;
    let mut failed = 0;
    let checks: [(&str, Check); 2] = [
        ("load", Check::Load { clients, messages }),
        ("broker restart", Check::Restart),
    ];
    for (name, check) in checks {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let started = Instant::now();
        let result = rt.block_on(async {
            match check {
                Check::Load { clients, messages } => load(clients, messages).await,
                Check::Restart => broker_restart().await,
            }
        });
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(summary) => {
                passed += 1;
                println!("faults: {name}: ok in {secs:.1} s ({summary})");
            }
            Err(e) => {
                failed += 1;
                println!("faults: {name}: FAILED after {secs:.1} s: {e:#}");
            }
        }
    }
    println!("faults: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

enum Check {
    Load { clients: usize, messages: usize },
    Restart,
}

// ------------------------------------------------------------------ harness

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(max_requests_per_sec: u32) -> anyhow::Result<Running> {
        let mut c = Config::with_defaults();
        c.bind = "127.0.0.1:0".into();
        c.static_dir = std::env::temp_dir().join("amqp-playground-faults-static");
        std::fs::create_dir_all(&c.static_dir).context("static dir")?;
        c.max_requests_per_sec = max_requests_per_sec;
        let server = Server::bind(c).await.context("bridge binds")?;
        let addr = server.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Running {
            addr,
            stop: Some(tx),
            task,
        })
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), &mut self.task).await;
    }
}

struct Client {
    ws: Ws,
    next_id: u64,
}

impl Client {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .context("WebSocket upgrade")?;
        let mut c = Client { ws, next_id: 0 };
        let st = c
            .next_matching(Duration::from_secs(15), |v| v["event"] == "status")
            .await?;
        ensure!(st["broker"] == "up", "first status is not up: {st}");
        Ok(c)
    }

    async fn send(&mut self, mut request: Value) -> anyhow::Result<u64> {
        self.next_id += 1;
        request["id"] = json!(self.next_id);
        self.ws
            .send(Message::Text(request.to_string().into()))
            .await
            .context("send")?;
        Ok(self.next_id)
    }

    async fn next_frame(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<Value> {
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("no frame in time")?
                .context("socket closed")?
                .context("socket error")?;
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).context("server frames are JSON");
            }
        }
    }

    async fn next_matching(
        &mut self,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.next_frame(deadline).await?;
            if pred(&v) {
                return Ok(v);
            }
        }
    }

    /// Sends a request and returns its reply (other frames are skipped).
    async fn call(&mut self, request: Value) -> anyhow::Result<Value> {
        let id = self.send(request.clone()).await?;
        self.next_matching(Duration::from_secs(15), |v| {
            v["event"] == "reply" && v["id"] == id
        })
        .await
        .with_context(|| format!("reply to {request}"))
    }

    /// Like `call`, but the reply must be `ok`.
    async fn ok(&mut self, request: Value) -> anyhow::Result<Value> {
        let r = self.call(request.clone()).await?;
        ensure!(r.get("ok").is_some(), "{request} failed: {r}");
        Ok(r)
    }
}

// --------------------------------------------------------------------- load

/// `clients` sessions, each publishing `messages` confirmed messages to its own
/// queue, then consuming them: every publish confirmed (ack), every message
/// delivered exactly once.
async fn load(clients: usize, messages: usize) -> anyhow::Result<String> {
    let server = Running::start(1_000_000).await?;
    let addr = server.addr;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        tasks.push(tokio::spawn(one_loaded_client(addr, i, messages)));
    }
    let mut errors = Vec::new();
    let mut confirmed = 0usize;
    let mut delivered = 0usize;
    let mut publish_secs: f64 = 0.0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok((c, d, secs))) => {
                confirmed += c;
                delivered += d;
                publish_secs = publish_secs.max(secs);
            }
            Ok(Err(e)) => errors.push(format!("client {i}: {e:#}")),
            Err(e) => errors.push(format!("client {i}: task failed: {e}")),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.stop().await;
    if !errors.is_empty() {
        bail!(
            "{} of {clients} clients failed; first: {}",
            errors.len(),
            errors[0]
        );
    }
    let total = clients * messages;
    ensure!(
        confirmed == total && delivered == total,
        "confirmed {confirmed}, delivered {delivered}, expected {total}"
    );
    Ok(format!(
        "{clients} clients x {messages} messages: {total} confirmed, {total} delivered once, \
         none lost or duplicated; publishing took {publish_secs:.1} s, everything {elapsed:.1} s \
         ({:.0} confirmed msg/s)",
        total as f64 / publish_secs.max(0.001)
    ))
}

async fn one_loaded_client(
    addr: SocketAddr,
    client: usize,
    messages: usize,
) -> anyhow::Result<(usize, usize, f64)> {
    let mut c = Client::connect(addr).await?;
    c.ok(json!({"op": "queue_declare", "queue": "load"}))
        .await?;
    c.ok(json!({"op": "confirm_select"})).await?;
    let started = Instant::now();
    let mut ids = BTreeSet::new();
    for m in 0..messages {
        let id = c
            .send(json!({"op": "publish", "routing_key": "load", "body": format!("{client}-{m}")}))
            .await?;
        ids.insert(id);
    }
    // Each publish gets a confirm (seq 1..=messages, ack) before its reply.
    let mut seqs = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !ids.is_empty() {
        let v = c.next_frame(deadline).await?;
        match v["event"].as_str() {
            Some("confirm") => {
                ensure!(v["ack"] == true, "nack: {v}");
                ensure!(v["multiple"] == false, "{v}");
                let seq = v["seq"].as_u64().context("seq")?;
                ensure!(seqs.insert(seq), "seq {seq} confirmed twice");
            }
            Some("reply") => {
                let id = v["id"].as_u64().context("id")?;
                ensure!(v["ok"]["kind"] == "published", "{v}");
                ensure!(ids.remove(&id), "reply {id} twice or unknown");
            }
            _ => bail!("unexpected frame while publishing: {v}"),
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let expected_seqs: BTreeSet<u64> = (1..=messages as u64).collect();
    ensure!(
        seqs == expected_seqs,
        "confirms are not exactly 1..={messages}"
    );
    // Consume everything: each body exactly once, nothing else.
    let r = c
        .ok(json!({"op": "queue_declare", "queue": "load", "passive": true}))
        .await?;
    ensure!(
        r["ok"]["message_count"] == messages,
        "queue holds {} messages, expected {messages}",
        r["ok"]["message_count"]
    );
    let id = c
        .send(json!({"op": "consume", "queue": "load", "consumer_tag": "drain", "no_ack": true}))
        .await?;
    let mut bodies = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut got_reply = false;
    while bodies.len() < messages || !got_reply {
        let v = c.next_frame(deadline).await?;
        match v["event"].as_str() {
            Some("deliver") => {
                let body = v["message"]["body"].as_str().context("body")?.to_string();
                ensure!(bodies.insert(body.clone()), "{body} delivered twice");
            }
            Some("reply") if v["id"] == id => {
                ensure!(v["ok"]["kind"] == "consume_ok", "{v}");
                got_reply = true;
            }
            _ => bail!("unexpected frame while consuming: {v}"),
        }
    }
    let expected: BTreeSet<String> = (0..messages).map(|m| format!("{client}-{m}")).collect();
    ensure!(bodies == expected, "delivered bodies differ from published");
    c.ok(json!({"op": "cancel", "consumer_tag": "drain"}))
        .await?;
    let r = c
        .ok(json!({"op": "queue_declare", "queue": "load", "passive": true}))
        .await?;
    ensure!(r["ok"]["message_count"] == 0, "left over: {r}");
    let _ = c.ws.close(None).await;
    Ok((seqs.len(), bodies.len(), publish_secs))
}

// ----------------------------------------------------------- broker restart

/// Starts the RabbitMQ application again whatever happens to the check.
struct StartAppGuard;

impl Drop for StartAppGuard {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
        let _ = Command::new("rabbitmqctl")
            .args(["await_startup", "--timeout", "60"])
            .output();
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .with_context(|| format!("cannot run rabbitmqctl {}", args.join(" ")))?;
    ensure!(
        out.status.success(),
        "rabbitmqctl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

const PERSISTENT: usize = 200;

async fn broker_restart() -> anyhow::Result<String> {
    let server = Running::start(1_000_000).await?;
    let result = restart_session(server.addr).await;
    server.stop().await;
    result
}

async fn restart_session(addr: SocketAddr) -> anyhow::Result<String> {
    let mut c = Client::connect(addr).await?;
    // Durable topology (survives the restart by itself) and transient topology
    // (exists afterwards only if the bridge re-declares it).
    c.ok(json!({"op": "exchange_declare", "exchange": "x.durable", "type": "fanout", "durable": true}))
        .await?;
    c.ok(json!({"op": "queue_declare", "queue": "q.durable", "durable": true}))
        .await?;
    c.ok(json!({"op": "queue_bind", "queue": "q.durable", "exchange": "x.durable"}))
        .await?;
    c.ok(json!({"op": "exchange_declare", "exchange": "x.transient", "type": "topic"}))
        .await?;
    c.ok(json!({"op": "queue_declare", "queue": "q.transient"}))
        .await?;
    c.ok(json!({"op": "queue_bind", "queue": "q.transient", "exchange": "x.transient", "routing_key": "a.#"}))
        .await?;
    // A consumer the bridge must restore (the client does not consume again).
    c.ok(json!({"op": "consume", "queue": "q.transient", "consumer_tag": "watch", "no_ack": true}))
        .await?;
    // A second connection, a second channel on it, prefetch 1 and manual
    // acks: delivery 1 of two messages is unacked when the broker goes away.
    c.ok(json!({"op": "connection_open", "connection": 2}))
        .await?;
    c.ok(json!({"op": "channel_open", "connection": 2, "channel": 2}))
        .await?;
    c.ok(json!({"op": "basic_qos", "connection": 2, "channel": 2, "prefetch_count": 1}))
        .await?;
    // Durable, with persistent messages: a transient queue and its messages
    // do not outlive a broker restart.
    c.ok(json!({"op": "queue_declare", "connection": 2, "channel": 2, "queue": "q.work", "durable": true}))
        .await?;
    c.ok(json!({"op": "consume", "connection": 2, "channel": 2, "queue": "q.work", "consumer_tag": "worker"}))
        .await?;
    let mut ids = BTreeSet::new();
    for m in 0..2 {
        ids.insert(
            c.send(json!({"op": "publish", "connection": 2, "routing_key": "q.work", "body": format!("w-{m}"),
                          "properties": {"delivery_mode": 2}}))
                .await?,
        );
    }
    let mut first = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ids.is_empty() || first.is_none() {
        let v = c.next_frame(deadline).await?;
        match v["event"].as_str() {
            Some("reply") => {
                ensure!(v.get("ok").is_some(), "{v}");
                ids.remove(&v["id"].as_u64().unwrap_or(0));
            }
            Some("deliver") => {
                ensure!(first.is_none(), "prefetch 1 not applied: {v}");
                first = Some(v);
            }
            _ => bail!("unexpected frame: {v}"),
        }
    }
    let d = first.context("no delivery to the worker")?;
    ensure!(
        d["consumer_tag"] == "worker" && d["delivery_tag"] == 1,
        "{d}"
    );
    c.ok(json!({"op": "confirm_select"})).await?;
    for m in 0..PERSISTENT {
        c.send(
            json!({"op": "publish", "exchange": "x.durable", "body": format!("p-{m}"),
                      "properties": {"delivery_mode": 2}}),
        )
        .await?;
    }
    let mut acks = 0;
    let mut replies = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while replies < PERSISTENT {
        let v = c.next_frame(deadline).await?;
        match v["event"].as_str() {
            Some("confirm") => {
                ensure!(v["ack"] == true, "nack before the restart: {v}");
                acks += 1;
            }
            Some("reply") => {
                ensure!(v["ok"]["kind"] == "published", "{v}");
                replies += 1;
            }
            _ => bail!("unexpected frame: {v}"),
        }
    }
    ensure!(
        acks == PERSISTENT,
        "{acks} confirms for {PERSISTENT} publishes"
    );

    let guard = StartAppGuard;
    let stopped_at = Instant::now();
    rabbitmqctl(&["stop_app"])?;
    // The session says the broker is gone ...
    let lost = c
        .next_matching(Duration::from_secs(10), |v| v["event"] == "status")
        .await
        .context("no status frame after stop_app")?;
    ensure!(
        lost["broker"] == "reconnecting" || lost["broker"] == "down",
        "{lost}"
    );
    let lost_after = stopped_at.elapsed();
    // ... and still answers requests meanwhile, promptly, with an error.
    let asked = Instant::now();
    let r = c
        .call(json!({"op": "queue_declare", "queue": "q.durable", "passive": true}))
        .await?;
    ensure!(
        r.get("error").is_some(),
        "a reply while down must be an error: {r}"
    );
    let answered_in = asked.elapsed();
    ensure!(
        answered_in < Duration::from_secs(10),
        "a request while the broker is down took {answered_in:?}"
    );

    rabbitmqctl(&["start_app"])?;
    let accepting = Instant::now();
    drop(guard);
    // Restored consumers may deliver before the `up` frame: keep those.
    let mut early = Vec::new();
    let up = loop {
        let v = c
            .next_matching(Duration::from_secs(30), |v| {
                v["event"] == "status" || v["event"] == "deliver"
            })
            .await
            .context("no status up after start_app")?;
        if v["event"] == "deliver" {
            early.push(v);
        } else if v["broker"] == "up" {
            break v;
        }
    };
    let reconnect = accepting.elapsed();
    ensure!(
        reconnect <= RECONNECT_BOUND,
        "back up {reconnect:?} after start_app returned (bound {RECONNECT_BOUND:?}): {up}"
    );
    // Two explicit bindings, and each queue's binding to the session's
    // stand-in for the default exchange; connections 1 and 2, channel 1 of
    // each and channel 2 of connection 2; `watch` and `worker`.
    let detail = up["detail"].as_str().unwrap_or("");
    ensure!(
        detail.contains("re-declared 2 exchanges, 3 queues, 5 bindings")
            && detail.contains("reopened 2 connections, 3 channels, 2 consumers")
            && !detail.contains("failed"),
        "session not fully restored: {up}"
    );
    // The worker gets the requeued message again, with the next tag (the
    // broker numbers from 1 again; the client's numbering goes on), and only
    // one at a time (its prefetch is back).
    ensure!(early.len() <= 1, "prefetch 1 not restored: {early:?}");
    let d = match early.pop() {
        Some(d) => d,
        None => c
            .next_matching(Duration::from_secs(10), |v| v["event"] == "deliver")
            .await
            .context("no delivery to the restored worker")?,
    };
    ensure!(
        d["consumer_tag"] == "worker" && d["delivery_tag"] == 2 && d["redelivered"] == true,
        "{d}"
    );
    // The ack of a delivery from before the outage is harmless (RabbitMQ
    // requeued it already).
    c.ok(json!({"op": "ack", "connection": 2, "channel": 2, "delivery_tag": 1}))
        .await?;
    let id = c
        .send(json!({"op": "ack", "connection": 2, "channel": 2, "delivery_tag": 2}))
        .await?;
    let (mut acked, mut next) = (false, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !acked || next.is_none() {
        let v = c.next_frame(deadline).await?;
        if v["event"] == "reply" && v["id"] == id {
            ensure!(v.get("ok").is_some(), "ack after the restore: {v}");
            acked = true;
        } else if v["event"] == "deliver" {
            ensure!(next.is_none(), "prefetch 1 not restored: {v}");
            next = Some(v);
        } else if v["event"] != "reply" {
            bail!("unexpected frame: {v}");
        }
    }
    let next = next.context("second delivery")?;
    ensure!(
        next["consumer_tag"] == "worker" && next["delivery_tag"] == 3,
        "{next}"
    );
    c.ok(json!({"op": "ack", "connection": 2, "channel": 2, "delivery_tag": 3}))
        .await?;

    // The transient topology is back (only the bridge could have done that),
    // and so is `watch`, which takes what reaches q.transient. The delivery
    // may come before the publish's reply.
    let id = c
        .send(json!({"op": "publish", "exchange": "x.transient", "routing_key": "a.b", "body": "after",
                   "mandatory": true}))
        .await?;
    let (mut published, mut watched) = (false, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !published || watched.is_none() {
        let v = c
            .next_frame(deadline)
            .await
            .context("no delivery to the re-made consumer")?;
        if v["event"] == "reply" && v["id"] == id {
            ensure!(v["ok"]["kind"] == "published", "transient route lost: {v}");
            published = true;
        } else if v["event"] == "deliver" {
            watched = Some(v);
        } else if v["event"] != "confirm" {
            // The channel is still in confirm mode: the publish is confirmed.
            bail!("unexpected frame: {v}");
        }
    }
    let d = watched.context("no delivery to the re-made consumer")?;
    ensure!(
        d["message"]["body"] == "after" && d["consumer_tag"] == "watch",
        "{d}"
    );
    // Every confirmed persistent message on the durable queue survived.
    let r = c
        .ok(json!({"op": "queue_declare", "queue": "q.durable", "passive": true}))
        .await?;
    ensure!(
        r["ok"]["message_count"] == PERSISTENT,
        "the durable queue holds {} of {PERSISTENT} confirmed persistent messages",
        r["ok"]["message_count"]
    );
    let mut bodies = BTreeSet::new();
    for _ in 0..PERSISTENT {
        let got = c
            .ok(json!({"op": "get", "queue": "q.durable", "no_ack": true}))
            .await?;
        let body = got["ok"]["message"]["body"]
            .as_str()
            .with_context(|| format!("{got}"))?
            .to_string();
        ensure!(bodies.insert(body.clone()), "{body} twice");
    }
    let expected: BTreeSet<String> = (0..PERSISTENT).map(|m| format!("p-{m}")).collect();
    ensure!(bodies == expected, "the surviving bodies differ");
    // Durable topology still routes; the channel is still in confirm mode and
    // its sequence numbers go on (201 was the publish to x.transient).
    let r = c
        .ok(json!({"op": "publish", "exchange": "x.durable", "body": "post", "properties": {"delivery_mode": 2}}))
        .await?;
    ensure!(r["ok"]["seq"] == PERSISTENT + 2, "{r}");
    let got = c
        .ok(json!({"op": "get", "queue": "q.durable", "no_ack": true}))
        .await?;
    ensure!(got["ok"]["message"]["body"] == "post", "{got}");
    let _ = c.ws.close(None).await;
    Ok(format!(
        "status `{}` {:.1} s after stop_app; a request while down answered in {} ms; \
         up {:.2} s after start_app returned, 2 connections, 3 channels and 2 consumers restored; \
         {PERSISTENT}/{PERSISTENT} confirmed persistent messages kept",
        lost["broker"].as_str().unwrap_or("?"),
        lost_after.as_secs_f64(),
        answered_in.as_millis(),
        reconnect.as_secs_f64(),
    ))
}
