//! Headers-exchange matching, as RabbitMQ 3.10 does it.
//!
//! The binding arguments are the pattern. `x-match` picks `all` (default),
//! `any`, `all-with-x` or `any-with-x`; pattern keys starting with `x-` are
//! ignored unless a `-with-x` mode is chosen; a pattern value of `null` (AMQP
//! void) only requires the header to be present. With `all` an empty pattern
//! matches everything; with `any` it matches nothing.

use serde_json::Value;

use crate::protocol::FieldTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XMatch {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

/// Validates `x-match` as `rabbit_exchange_type_headers:validate_binding` does.
pub fn validate(args: &FieldTable) -> Result<(), String> {
    match args.get("x-match") {
        None => Ok(()),
        Some(Value::String(s)) => match s.as_str() {
            "all" | "any" | "all-with-x" | "any-with-x" => Ok(()),
            other => Err(format!(
                "Invalid x-match field value <<\"{other}\">>; expected all, any, all-with-x, or any-with-x"
            )),
        },
        Some(other) => Err(format!("Invalid x-match field type (value {other}); expected longstr")),
    }
}

fn mode(args: &FieldTable) -> XMatch {
    match args.get("x-match").and_then(Value::as_str) {
        Some("any") => XMatch::Any,
        Some("all-with-x") => XMatch::AllWithX,
        Some("any-with-x") => XMatch::AnyWithX,
        _ => XMatch::All,
    }
}

/// Whether a message with `headers` matches a binding with arguments `args`;
/// `Some(why)` when it does.
pub fn matches(args: &FieldTable, headers: Option<&FieldTable>) -> Option<String> {
    let m = mode(args);
    let with_x = matches!(m, XMatch::AllWithX | XMatch::AnyWithX);
    let all = matches!(m, XMatch::All | XMatch::AllWithX);
    let mut any_hit: Option<&str> = None;
    for (k, pv) in args {
        if k == "x-match" || (!with_x && k.starts_with("x-")) {
            continue;
        }
        let hit = match headers.and_then(|h| h.get(k)) {
            None => false,
            Some(dv) => pv.is_null() || values_equal(pv, dv),
        };
        if all && !hit {
            return None;
        }
        if hit && any_hit.is_none() {
            any_hit = Some(k);
        }
        if !all && hit {
            break;
        }
    }
    if all {
        Some(format!(
            "x-match={}: every header of the binding matches",
            m_name(m)
        ))
    } else {
        any_hit.map(|k| format!("x-match={}: header '{k}' matches", m_name(m)))
    }
}

fn m_name(m: XMatch) -> &'static str {
    match m {
        XMatch::All => "all",
        XMatch::Any => "any",
        XMatch::AllWithX => "all-with-x",
        XMatch::AnyWithX => "any-with-x",
    }
}

/// Erlang `==` on decoded field values: numbers by value, the rest structurally.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(v: Value) -> FieldTable {
        match v {
            Value::Object(m) => m,
            _ => FieldTable::new(),
        }
    }

    #[test]
    fn all_any_and_with_x() {
        let h = t(json!({"format": "pdf", "type": "report", "x-tag": 1}));
        assert!(matches(
            &t(json!({"x-match": "all", "format": "pdf", "type": "report"})),
            Some(&h)
        )
        .is_some());
        assert!(matches(
            &t(json!({"x-match": "all", "format": "pdf", "type": "log"})),
            Some(&h)
        )
        .is_none());
        assert!(matches(
            &t(json!({"x-match": "any", "format": "zip", "type": "report"})),
            Some(&h)
        )
        .is_some());
        assert!(matches(&t(json!({"x-match": "any"})), Some(&h)).is_none());
        assert!(matches(&t(json!({})), None).is_some());
        assert!(matches(&t(json!({"x-match": "all", "x-tag": 2})), Some(&h)).is_some());
        assert!(matches(&t(json!({"x-match": "all-with-x", "x-tag": 2})), Some(&h)).is_none());
        assert!(matches(&t(json!({"x-match": "any-with-x", "x-tag": 1})), Some(&h)).is_some());
        assert!(matches(&t(json!({"format": null})), Some(&h)).is_some());
        assert!(matches(&t(json!({"a": "1"})), Some(&t(json!({"a": 1})))).is_none());
    }
}
