//! Dead-lettering: how a message that dies in a queue is rewritten.
//!
//! RabbitMQ records each death in the `x-death` header (one entry per
//! queue+reason, most recent first, `count` incremented in place), adds the
//! `x-first-death-*` headers on the first death, moves a per-message
//! `expiration` into `original-expiration`, and republishes to the queue's
//! dead-letter exchange with the dead-letter routing key if one is set. Cycles
//! that no client broke with a reject are cut (the message is dropped).

use std::rc::Rc;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::message::{Address, Msg};
use crate::protocol::{DeathReason, FieldTable, SharedProperties, ShortString};

/// The message as the dead-letter exchange receives it.
pub fn rewrite(
    msg: &Msg,
    reason: DeathReason,
    queue: &str,
    dlx: &Arc<str>,
    dlrk: Option<&str>,
) -> Msg {
    let mut props = msg.props().clone();
    let mut headers = props.headers.take().unwrap_or_default();

    // The first routing key is the publish key; the rest come from CC (BCC was
    // stripped at publish).
    let mut rks: Vec<Value> = vec![Value::String(msg.routing_key().to_string())];
    if let Some(Value::Array(cc)) = headers.get("CC") {
        rks.extend(cc.iter().filter(|v| v.is_string()).cloned());
    }
    let mut info = FieldTable::new();
    info.insert("count".into(), json!(1));
    info.insert("reason".into(), json!(reason.as_str()));
    info.insert("queue".into(), json!(queue));
    info.insert("exchange".into(), json!(&**msg.exchange()));
    info.insert("routing-keys".into(), Value::Array(rks));
    if let Some(exp) = props.expiration.take() {
        info.insert("original-expiration".into(), Value::String(exp));
    }

    match headers.get_mut("x-death") {
        Some(Value::Array(deaths)) => {
            let same = deaths.iter().position(|d| {
                d.get("queue").and_then(Value::as_str) == Some(queue)
                    && d.get("reason").and_then(Value::as_str) == Some(reason.as_str())
            });
            let entry = match same {
                Some(i) => {
                    let mut old = deaths.remove(i);
                    if let Some(obj) = old.as_object_mut() {
                        let n = obj.get("count").and_then(Value::as_i64).unwrap_or(0);
                        obj.insert("count".into(), json!(n.saturating_add(1)));
                    }
                    old
                }
                None => Value::Object(info),
            };
            deaths.insert(0, entry);
        }
        _ => {
            headers.insert("x-first-death-reason".into(), json!(reason.as_str()));
            headers.insert("x-first-death-queue".into(), json!(queue));
            headers.insert("x-first-death-exchange".into(), json!(&**msg.exchange()));
            headers.insert("x-death".into(), Value::Array(vec![Value::Object(info)]));
        }
    }

    let (routing_key, extra_keys) = match dlrk {
        Some(k) => {
            headers.remove("CC");
            (ShortString::from(k), Vec::new())
        }
        None => (msg.routing_key().clone(), msg.address.extra_keys.clone()),
    };
    props.headers = Some(headers);
    Msg {
        id: msg.id,
        address: Rc::new(Address {
            exchange: dlx.into(),
            routing_key,
            extra_keys,
        }),
        body: msg.body.clone(),
        properties: SharedProperties::new(props),
    }
}

/// Whether delivering the rewritten message to `queue` would close a cycle no
/// client rejection broke (`rabbit_dead_letter:is_cycle`).
pub fn is_cycle(msg: &Msg, reason: DeathReason, queue: &str) -> bool {
    if reason == DeathReason::Rejected {
        return false;
    }
    let Some(Value::Array(deaths)) = msg.props().headers.as_ref().and_then(|h| h.get("x-death"))
    else {
        return false;
    };
    let Some(pos) = deaths
        .iter()
        .position(|d| d.get("queue").and_then(Value::as_str) == Some(queue))
    else {
        return false;
    };
    deaths[..=pos]
        .iter()
        .all(|d| match d.get("reason").and_then(Value::as_str) {
            Some(r) => r != "rejected",
            None => false,
        })
}
