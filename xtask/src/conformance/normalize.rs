//! Outcomes in the corpus's normalized JSON, exactly as `record.py` builds them.
//!
//! Server-named queues become `$q1`, `$q2`, ... in every string of an outcome;
//! headers are sorted tables without `time` keys; properties are the set ones
//! among a fixed list; errors keep scope, code and the reply-text name.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sim_core::protocol::{
    AmqpError, ErrorScope, Event, Message, Outcome, ReplyResult, ServerFrame,
};

const PROP_KEYS: &[&str] = &[
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

/// Server-generated queue names and their `$qN` aliases.
#[derive(Clone, Default)]
pub struct Aliases {
    by_name: BTreeMap<String, String>,
    by_alias: BTreeMap<String, String>,
}

impl Aliases {
    pub fn add(&mut self, name: &str) {
        if !self.by_name.contains_key(name) {
            let alias = format!("$q{}", self.by_name.len() + 1);
            self.by_name.insert(name.to_string(), alias.clone());
            self.by_alias.insert(alias, name.to_string());
        }
    }

    /// Step arguments: `"$qN"` anywhere means the generated name.
    pub fn resolve(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if s.starts_with('$') => {
                Value::String(self.by_alias.get(s).cloned().unwrap_or_else(|| s.clone()))
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.resolve(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.resolve(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub fn name(&self, s: &str) -> Value {
        Value::String(
            self.by_name
                .get(s)
                .cloned()
                .unwrap_or_else(|| s.to_string()),
        )
    }

    /// A value received from the broker (`Runner.norm` in record.py).
    pub fn norm(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => self.name(s),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.norm(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| k.as_str() != "time")
                    .map(|(k, x)| (k.clone(), self.norm(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A message object: body, exchange, routing key, redelivered, properties, headers.
    pub fn message(
        &self,
        exchange: &str,
        routing_key: &str,
        redelivered: bool,
        m: &Message,
    ) -> Map<String, Value> {
        let mut props = Map::new();
        if let Ok(Value::Object(all)) = serde_json::to_value(&m.properties) {
            for k in PROP_KEYS {
                if let Some(v) = all.get(*k) {
                    if !v.is_null() {
                        props.insert((*k).to_string(), self.norm(v));
                    }
                }
            }
        }
        let headers = m
            .properties
            .headers
            .as_ref()
            .map(|h| self.norm(&Value::Object(h.clone())))
            .unwrap_or_else(|| json!({}));
        let mut out = Map::new();
        out.insert("body".into(), self.name(&m.body));
        out.insert("exchange".into(), self.name(exchange));
        out.insert("routing_key".into(), self.name(routing_key));
        out.insert("redelivered".into(), Value::Bool(redelivered));
        out.insert("properties".into(), Value::Object(props));
        out.insert("headers".into(), headers);
        out
    }
}

pub fn error(e: &AmqpError) -> Value {
    let scope = match e.scope {
        ErrorScope::Channel => "channel",
        ErrorScope::Connection => "connection",
    };
    let name = e.name.split(" - ").next().unwrap_or("").trim();
    json!({"error": {"scope": scope, "code": e.code, "name": name}})
}

/// The outcome of a request step from the frames its request returned.
pub fn outcome(
    al: &mut Aliases,
    op: &str,
    requested_queue: &str,
    id: u64,
    frames: &[ServerFrame],
) -> Value {
    let Some(pos) = frames
        .iter()
        .rposition(|f| matches!(f.event, Event::Reply { id: rid, .. } if rid == id))
    else {
        return json!({"runner_error": "no reply"});
    };
    let Event::Reply { result, .. } = &frames[pos].event else {
        return Value::Null;
    };
    let ok = match result {
        ReplyResult::Error(e) => return error(e),
        ReplyResult::Ok(ok) => ok,
    };
    match ok {
        Outcome::Ok | Outcome::ConsumeOk { .. } => Value::Null,
        Outcome::QueueDeclareOk {
            queue,
            message_count,
            consumer_count,
        } => {
            if op == "queue_declare" && requested_queue.is_empty() {
                al.add(queue);
            }
            json!({"queue": al.name(queue), "message_count": message_count, "consumer_count": consumer_count})
        }
        Outcome::MessageCount { message_count } => json!({ "message_count": message_count }),
        Outcome::GetEmpty => json!({"empty": true}),
        Outcome::GetOk {
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
            message,
            ..
        } => {
            let mut m = al.message(exchange, routing_key, *redelivered, message);
            m.insert("delivery_tag".into(), json!(delivery_tag));
            m.insert("message_count".into(), json!(message_count));
            Value::Object(m)
        }
        Outcome::Published { seq, .. } => {
            let mut out = Map::new();
            for f in &frames[..pos] {
                match &f.event {
                    Event::Return {
                        reply_code,
                        reply_text,
                        exchange,
                        routing_key,
                        message,
                        ..
                    } if !out.contains_key("returned") => {
                        out.insert(
                            "returned".into(),
                            json!({"reply_code": reply_code, "reply_text": reply_text,
                                   "exchange": al.name(exchange), "routing_key": al.name(routing_key),
                                   "body": al.name(&message.body)}),
                        );
                    }
                    Event::Confirm {
                        seq: s,
                        ack,
                        multiple,
                        ..
                    } if seq.is_none_or(|q| *s == q || (*multiple && *s >= q)) => {
                        out.insert("confirm".into(), json!(if *ack { "ack" } else { "nack" }));
                    }
                    _ => {}
                }
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Object(out)
            }
        }
    }
}
