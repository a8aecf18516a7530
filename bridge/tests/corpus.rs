//! Replays the shared conformance corpus through the relay against the real
//! RabbitMQ (a self-contained mini runner; `cargo xtask conformance --real` is
//! the project's runner). Needs a broker on 127.0.0.1:5672.
//!
//! `CORPUS=/path/to/cases` overrides the folder; `CASE=substring` filters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bridge::relay::{RelayConfig, Session};
use serde_json::{json, Value};
use sim_core::protocol::{Event, Message, Outcome, ReplyResult, Request, ServerFrame};
use tokio::sync::mpsc::UnboundedReceiver;

const PROP_KEYS: [&str; 11] = [
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "type",
    "user_id",
    "app_id",
];

struct Runner {
    session: Option<Session>,
    frames: UnboundedReceiver<ServerFrame>,
    buffers: HashMap<String, Vec<Value>>,
    qmap: HashMap<String, String>,
    qmap_rev: HashMap<String, String>,
    next_id: u64,
}

fn msg_json(message: &Message, exchange: &str, routing_key: &str, redelivered: bool) -> Value {
    let props = serde_json::to_value(&message.properties).unwrap_or(Value::Null);
    let mut p = serde_json::Map::new();
    for k in PROP_KEYS {
        if let Some(v) = props.get(k) {
            p.insert(k.to_string(), v.clone());
        }
    }
    json!({
        "body": message.body,
        "exchange": exchange,
        "routing_key": routing_key,
        "redelivered": redelivered,
        "properties": p,
        "headers": message.properties.headers.clone().unwrap_or_default(),
    })
}

impl Runner {
    fn start() -> Self {
        let cfg = RelayConfig {
            allow_broker_restart: true,
            ..RelayConfig::default()
        };
        let (session, frames) = Session::start(cfg);
        Runner {
            session: Some(session),
            frames,
            buffers: HashMap::new(),
            qmap: HashMap::new(),
            qmap_rev: HashMap::new(),
            next_id: 1,
        }
    }

    fn norm(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(a) = self.qmap.get(s.as_str()) {
                    *s = a.clone();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.norm(x)),
            Value::Object(m) => m.values_mut().for_each(|x| self.norm(x)),
            _ => {}
        }
    }

    fn resolve(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(a) = self.qmap_rev.get(s.as_str()) {
                    *s = a.clone();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.resolve(x)),
            Value::Object(m) => m.values_mut().for_each(|x| self.resolve(x)),
            _ => {}
        }
    }

    /// Buffers deliveries; returns other frames.
    fn absorb(&mut self, frame: ServerFrame) -> Option<Event> {
        match frame.event {
            Event::Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
                message,
                ..
            } => {
                let mut d = msg_json(&message, &exchange, &routing_key, redelivered);
                d["delivery_tag"] = json!(delivery_tag);
                self.buffers.entry(consumer_tag).or_default().push(d);
                None
            }
            Event::ConsumerCancelled { consumer_tag, .. } => {
                self.buffers
                    .entry(consumer_tag)
                    .or_default()
                    .push(json!({"cancelled_by_broker": true}));
                None
            }
            other => Some(other),
        }
    }

    async fn pump(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(f)) = tokio::time::timeout_at(deadline, self.frames.recv()).await {
            self.absorb(f);
        }
    }

    async fn request(&mut self, step: &Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut step = step.clone();
        step["id"] = json!(id);
        let req: Request = serde_json::from_value(step.clone()).expect("step parses as request");
        let session = self.session.as_ref().expect("session");
        session.send(req);
        let mut returned = None;
        let mut confirm = None;
        loop {
            let f = tokio::time::timeout(Duration::from_secs(60), self.frames.recv())
                .await
                .expect("reply in time")
                .expect("session alive");
            match self.absorb(f) {
                Some(Event::Return {
                    reply_code,
                    reply_text,
                    exchange,
                    routing_key,
                    message,
                    ..
                }) => {
                    returned = Some(json!({"reply_code": reply_code, "reply_text": reply_text,
                        "exchange": exchange, "routing_key": routing_key, "body": message.body}));
                }
                Some(Event::Confirm { ack, .. }) => {
                    confirm = Some(if ack { "ack" } else { "nack" });
                }
                Some(Event::Reply { id: rid, result }) if rid == id => {
                    let mut out = match result {
                        ReplyResult::Error(e) => {
                            json!({"error": {"scope": e.scope, "code": e.code, "name": e.name}})
                        }
                        ReplyResult::Ok(o) => match o {
                            Outcome::Ok | Outcome::ConsumeOk { .. } => Value::Null,
                            Outcome::QueueDeclareOk {
                                queue,
                                message_count,
                                consumer_count,
                            } => {
                                if step.get("queue").and_then(Value::as_str) == Some("")
                                    && !self.qmap.contains_key(&queue)
                                {
                                    let alias = format!("$q{}", self.qmap.len() + 1);
                                    self.qmap.insert(queue.clone(), alias.clone());
                                    self.qmap_rev.insert(alias, queue.clone());
                                }
                                json!({"queue": queue, "message_count": message_count, "consumer_count": consumer_count})
                            }
                            Outcome::MessageCount { message_count } => {
                                json!({"message_count": message_count})
                            }
                            Outcome::Published { .. } => {
                                let mut m = serde_json::Map::new();
                                if let Some(r) = returned.take() {
                                    m.insert("returned".into(), r);
                                }
                                if let Some(c) = confirm.take() {
                                    m.insert("confirm".into(), json!(c));
                                }
                                if m.is_empty() {
                                    Value::Null
                                } else {
                                    Value::Object(m)
                                }
                            }
                            Outcome::GetOk {
                                delivery_tag,
                                redelivered,
                                exchange,
                                routing_key,
                                message_count,
                                message,
                                ..
                            } => {
                                let mut m =
                                    msg_json(&message, &exchange, &routing_key, redelivered);
                                m["delivery_tag"] = json!(delivery_tag);
                                m["message_count"] = json!(message_count);
                                m
                            }
                            Outcome::GetEmpty => json!({"empty": true}),
                        },
                    };
                    self.norm(&mut out);
                    return out;
                }
                _ => {}
            }
        }
    }

    async fn step(&mut self, step: &Value) -> Value {
        let mut step = step.clone();
        if let Value::Object(m) = &mut step {
            m.remove("expect");
        }
        self.resolve(&mut step);
        match step["op"].as_str().unwrap_or("") {
            "wait" => {
                self.pump(step["ms"].as_u64().unwrap_or(0)).await;
                Value::Null
            }
            "deliveries" => {
                self.pump(200).await;
                let tag = step["consumer_tag"].as_str().unwrap_or("").to_string();
                let mut v = Value::Array(self.buffers.remove(&tag).unwrap_or_default());
                self.norm(&mut v);
                v
            }
            "connection_close_reopen" => {
                let mut s = step.clone();
                s["op"] = json!("connection_close");
                self.request(&s).await;
                s["op"] = json!("connection_open");
                self.request(&s).await
            }
            _ => self.request(&step).await,
        }
    }
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/conformance/cases"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_against_real_rabbitmq() {
    let dir = corpus_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no corpus at {}: skipped", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let filter = std::env::var("CASE").unwrap_or_default();
    let skip_restart = std::env::var_os("NO_RESTART").is_some();
    let mut failures = Vec::new();
    let mut passed = 0;
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(&filter) {
            continue;
        }
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("json");
        let steps = case["steps"].as_array().cloned().unwrap_or_default();
        if skip_restart && steps.iter().any(|s| s["op"] == "broker_restart") {
            continue;
        }
        let mut runner = Runner::start();
        let mut bad = None;
        for (i, s) in steps.iter().enumerate() {
            let got = runner.step(s).await;
            let expect = s.get("expect").cloned().unwrap_or(Value::Null);
            if got != expect && bad.is_none() {
                bad = Some(format!(
                    "{name} step {i} {}\n   expected {expect}\n   got      {got}",
                    s["op"]
                ));
            }
        }
        if let Some(session) = runner.session.take() {
            session.shutdown().await;
        }
        match bad {
            None => {
                passed += 1;
                eprintln!("PASS {name}");
            }
            Some(b) => {
                eprintln!("FAIL {b}");
                failures.push(b);
            }
        }
    }
    eprintln!("{passed}/{} cases passed", passed + failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
