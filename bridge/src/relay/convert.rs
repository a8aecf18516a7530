//! JSON ⇄ AMQP conversions: field tables, properties, messages.

use lapin::types::{AMQPValue, FieldArray, FieldTable as AmqpTable, LongString, ShortString};
use lapin::BasicProperties;
use sim_core::protocol::{FieldTable, Message, MessageId, Properties};

use super::names::Namespace;

/// The header the relay adds to every published message to follow it through
/// the broker (removed again before anything reaches the client).
pub const ID_HEADER: &str = "x-pg-id";

/// A value a client sent that cannot go over AMQP.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A short string (≤ 255 bytes), or a precise error.
pub fn short(what: &str, s: &str) -> Result<ShortString, Invalid> {
    ShortString::try_new(s).map_err(|_| {
        Invalid(format!(
            "{what} is {} bytes long; AMQP short strings hold at most 255",
            s.len()
        ))
    })
}

/// JSON → AMQP field value, following the corpus typing rules.
pub fn to_amqp(value: &serde_json::Value) -> Result<AMQPValue, Invalid> {
    Ok(match value {
        serde_json::Value::Null => AMQPValue::Void,
        serde_json::Value::Bool(b) => AMQPValue::Boolean(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(small) => AMQPValue::LongInt(small),
                    Err(_) => AMQPValue::LongLongInt(i),
                }
            } else if let Some(f) = n.as_f64() {
                AMQPValue::Double(f)
            } else {
                return Err(Invalid(format!("number {n} does not fit a field value")));
            }
        }
        serde_json::Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        serde_json::Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(to_amqp).collect::<Result<Vec<_>, _>>()?,
        )),
        serde_json::Value::Object(map) => AMQPValue::FieldTable(to_table(map)?),
    })
}

/// JSON object → AMQP field table.
pub fn to_table(map: &FieldTable) -> Result<AmqpTable, Invalid> {
    let mut table = AmqpTable::default();
    for (k, v) in map {
        table.insert(short("a field-table key", k)?, to_amqp(v)?);
    }
    Ok(table)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bytes_json(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::Value::String(s.to_string()),
        Err(_) => serde_json::json!({ "bytes": hex(bytes) }),
    }
}

/// AMQP field value → JSON; `None` for timestamps (dropped, as in the corpus).
pub fn from_amqp(value: &AMQPValue) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match value {
        AMQPValue::Boolean(b) => J::Bool(*b),
        AMQPValue::ShortShortInt(i) => J::from(*i),
        AMQPValue::ShortShortUInt(i) => J::from(*i),
        AMQPValue::ShortInt(i) => J::from(*i),
        AMQPValue::ShortUInt(i) => J::from(*i),
        AMQPValue::LongInt(i) => J::from(*i),
        AMQPValue::LongUInt(i) => J::from(*i),
        AMQPValue::LongLongInt(i) => J::from(*i),
        AMQPValue::Float(f) => J::from(f64::from(*f)),
        AMQPValue::Double(f) => J::from(*f),
        AMQPValue::DecimalValue(d) => J::String(format!("{}e-{}", d.value, d.scale)),
        AMQPValue::ShortString(s) => J::String(s.as_str().to_string()),
        AMQPValue::LongString(s) => bytes_json(s.as_bytes()),
        AMQPValue::FieldArray(a) => J::Array(a.as_slice().iter().filter_map(from_amqp).collect()),
        AMQPValue::Timestamp(_) => return None,
        AMQPValue::FieldTable(t) => J::Object(from_table(t)),
        AMQPValue::ByteArray(b) => bytes_json(b.as_slice()),
        AMQPValue::Void => J::Null,
    })
}

/// AMQP field table → JSON object (timestamp-valued keys dropped).
pub fn from_table(table: &AmqpTable) -> FieldTable {
    let mut out = FieldTable::new();
    for (k, v) in table {
        if let Some(v) = from_amqp(v) {
            out.insert(k.as_str().to_string(), v);
        }
    }
    out
}

/// Client properties → AMQP properties, with the tracking header added.
pub fn to_properties(p: &Properties, message_id: MessageId) -> Result<BasicProperties, Invalid> {
    let mut b = BasicProperties::default();
    if let Some(v) = &p.content_type {
        b = b.with_content_type(short("content_type", v)?);
    }
    if let Some(v) = &p.content_encoding {
        b = b.with_content_encoding(short("content_encoding", v)?);
    }
    let mut headers = match &p.headers {
        Some(h) => to_table(h)?,
        None => AmqpTable::default(),
    };
    headers.insert(
        short("header", ID_HEADER)?,
        AMQPValue::LongLongInt(i64::try_from(message_id).unwrap_or(i64::MAX)),
    );
    b = b.with_headers(headers);
    if let Some(v) = p.delivery_mode {
        b = b.with_delivery_mode(v);
    }
    if let Some(v) = p.priority {
        b = b.with_priority(v);
    }
    if let Some(v) = &p.correlation_id {
        b = b.with_correlation_id(short("correlation_id", v)?);
    }
    if let Some(v) = &p.reply_to {
        b = b.with_reply_to(short("reply_to", v)?);
    }
    if let Some(v) = &p.expiration {
        b = b.with_expiration(short("expiration", v)?);
    }
    if let Some(v) = &p.message_id {
        b = b.with_message_id(short("message_id", v)?);
    }
    if let Some(v) = p.timestamp {
        b = b.with_timestamp(v);
    }
    if let Some(v) = &p.kind {
        b = b.with_type(short("type", v)?);
    }
    if let Some(v) = &p.user_id {
        b = b.with_user_id(short("user_id", v)?);
    }
    if let Some(v) = &p.app_id {
        b = b.with_app_id(short("app_id", v)?);
    }
    Ok(b)
}

fn opt(s: &Option<ShortString>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_string())
}

/// AMQP properties and body → client message, plus the tracking id (0 when
/// the message was not published through this relay). Namespaced names in the
/// headers (x-death, x-first-death-*) are mapped back.
pub fn to_message(ns: &Namespace, props: &BasicProperties, body: &[u8]) -> (Message, MessageId) {
    let mut message_id = 0;
    let headers = props.headers().as_ref().map(|t| {
        let mut h = from_table(t);
        if let Some(v) = h.remove(ID_HEADER) {
            message_id = v.as_u64().unwrap_or(0);
        }
        let mut v = serde_json::Value::Object(h);
        ns.back_json(&mut v);
        match v {
            serde_json::Value::Object(h) => h,
            _ => FieldTable::new(),
        }
    });
    let headers = headers.filter(|h| !h.is_empty());
    let properties = Properties {
        content_type: opt(props.content_type()),
        content_encoding: opt(props.content_encoding()),
        headers,
        delivery_mode: *props.delivery_mode(),
        priority: *props.priority(),
        correlation_id: opt(props.correlation_id()),
        reply_to: opt(props.reply_to()),
        expiration: opt(props.expiration()),
        message_id: opt(props.message_id()),
        timestamp: *props.timestamp(),
        kind: opt(props.kind()),
        user_id: opt(props.user_id()),
        app_id: opt(props.app_id()),
    };
    let body = String::from_utf8_lossy(body).into();
    (
        Message {
            body,
            properties: properties.into(),
        },
        message_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_values_round_trip() {
        let v = json!({"s": "x", "i": 5, "big": 5_000_000_000i64, "b": true, "n": null,
                       "a": [1, "two"], "t": {"k": "v"}});
        let serde_json::Value::Object(map) = v.clone() else {
            panic!("object")
        };
        let table = to_table(&map).expect("converts");
        assert!(matches!(
            table.inner().get("i"),
            Some(AMQPValue::LongInt(5))
        ));
        assert!(matches!(
            table.inner().get("big"),
            Some(AMQPValue::LongLongInt(_))
        ));
        assert_eq!(serde_json::Value::Object(from_table(&table)), v);
    }

    #[test]
    fn timestamps_are_dropped_and_bytes_hexed() {
        let mut t = AmqpTable::default();
        t.insert("time".into(), AMQPValue::Timestamp(5));
        t.insert(
            "raw".into(),
            AMQPValue::LongString(LongString::from(vec![0xffu8, 0x00])),
        );
        assert_eq!(
            serde_json::Value::Object(from_table(&t)),
            json!({"raw": {"bytes": "ff00"}})
        );
    }

    #[test]
    fn long_names_are_errors_not_panics() {
        assert!(short("queue", &"q".repeat(300)).is_err());
        assert!(short("queue", "q").is_ok());
    }

    #[test]
    fn tracking_header_is_hidden() {
        let ns = Namespace::with_prefix("P.");
        let props = to_properties(&Properties::default(), 42).expect("converts");
        let (msg, id) = to_message(&ns, &props, b"hi");
        assert_eq!(id, 42);
        assert_eq!(msg.properties.headers, None);
        assert_eq!(&*msg.body, "hi");
    }
}
