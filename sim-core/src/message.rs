//! Messages inside the broker.
//!
//! A published message is stored once (`Arc<Msg>`) and shared by every queue it
//! was routed to; a queue holds a small [`QEntry`] (pointer, position, expiry,
//! redelivered flag), so a fanout to many queues copies no body and a queued
//! message costs a few dozen bytes beyond its content.

use std::sync::Arc;

use crate::protocol::{Message, MessageId, Properties, SharedProperties};

/// One message's immutable content. Dead-lettering makes a new `Msg` (new
/// headers, exchange and routing keys) with the same [`MessageId`].
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub id: MessageId,
    /// The exchange it was published (or dead-lettered) to.
    pub exchange: Arc<str>,
    /// The routing key of the publish; what deliveries report.
    pub routing_key: Arc<str>,
    /// CC and BCC keys (sender-selected distribution), routed like the key.
    pub extra_keys: Vec<String>,
    pub body: Arc<str>,
    /// Shared with the publish request and every delivery.
    pub properties: SharedProperties,
    /// Per-message TTL parsed from `expiration`.
    pub ttl: Option<u64>,
}

impl Msg {
    /// Every key the message is routed with (the publish key first).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.routing_key).chain(self.extra_keys.iter().map(String::as_str))
    }

    pub fn props(&self) -> &Properties {
        &self.properties
    }

    pub fn persistent(&self) -> bool {
        self.props().delivery_mode == Some(2)
    }

    pub fn body_len(&self) -> u64 {
        self.body.len() as u64
    }

    pub fn to_message(&self) -> Message {
        Message {
            body: self.body.clone(),
            properties: self.properties.clone(),
        }
    }
}

/// A message's place in one queue: 24 bytes.
#[derive(Debug, Clone)]
pub struct QEntry {
    pub msg: Arc<Msg>,
    /// Position in the queue (requeued messages go back where they were); the
    /// top bit is the redelivered flag.
    seq: u64,
    /// Virtual time at which it expires; `u64::MAX` for never.
    expires_at: u64,
}

const REDELIVERED: u64 = 1 << 63;

impl QEntry {
    pub fn new(msg: Arc<Msg>, expires_at: Option<u64>) -> QEntry {
        QEntry {
            msg,
            seq: 0,
            expires_at: expires_at.unwrap_or(u64::MAX),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq & !REDELIVERED
    }

    pub fn set_seq(&mut self, seq: u64) {
        self.seq = (self.seq & REDELIVERED) | (seq & !REDELIVERED);
    }

    pub fn redelivered(&self) -> bool {
        self.seq & REDELIVERED != 0
    }

    pub fn set_redelivered(&mut self) {
        self.seq |= REDELIVERED;
    }

    pub fn expires_at(&self) -> Option<u64> {
        (self.expires_at != u64::MAX).then_some(self.expires_at)
    }
}

/// Parses the `expiration` property (milliseconds as a decimal string).
pub fn parse_expiration(props: &Properties) -> Result<Option<u64>, String> {
    match &props.expiration {
        None => Ok(None),
        Some(s) => {
            let t = s.strip_prefix('+').unwrap_or(s);
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid expiration '{s}'"));
            }
            t.parse::<u64>()
                .ok()
                .filter(|v| *v < (1u64 << 32))
                .map(Some)
                .ok_or_else(|| format!("invalid expiration '{s}'"))
        }
    }
}

/// Reads sender-selected distribution keys (`CC`, `BCC`) from the headers and
/// strips `BCC`, as RabbitMQ does at publish time.
pub fn take_cc_bcc(props: &mut SharedProperties) -> Vec<String> {
    let Some(h) = props.headers.as_ref() else {
        return Vec::new();
    };
    if !h.contains_key("CC") && !h.contains_key("BCC") {
        return Vec::new();
    }
    let Some(h) = props.headers.as_mut() else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for name in ["CC", "BCC"] {
        if let Some(serde_json::Value::Array(a)) = h.get(name) {
            // Keys longer than a short string are not routed (RabbitMQ would
            // route them; here they could make topic matching recurse too deep).
            keys.extend(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .filter(|k| k.len() <= 255)
                    .map(str::to_string),
            );
        }
    }
    h.remove("BCC");
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_entry_is_three_words() {
        assert_eq!(std::mem::size_of::<QEntry>(), 24);
    }

    #[test]
    fn flags_and_position_do_not_interfere() {
        let msg = Arc::new(Msg {
            id: 1,
            exchange: Arc::from(""),
            routing_key: Arc::from(""),
            extra_keys: Vec::new(),
            body: Arc::from(""),
            properties: SharedProperties::default(),
            ttl: None,
        });
        let mut e = QEntry::new(msg, None);
        e.set_seq(41);
        assert!(!e.redelivered());
        e.set_redelivered();
        assert_eq!((e.seq(), e.redelivered(), e.expires_at()), (41, true, None));
        e.set_seq(7);
        assert_eq!((e.seq(), e.redelivered()), (7, true));
    }
}
