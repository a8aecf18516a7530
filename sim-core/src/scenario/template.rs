//! Body, routing-key and property templates.
//!
//! Placeholders: `{n}` (1-based number of the message at this producer, or of
//! the message being handled at this consumer), `{name}` (the producer's or
//! consumer's name), `{pick:a|b|c}` (the `n`-th choice, cyclically), and for
//! consumers `{body}`, `{routing_key}`, `{correlation_id}` and `{field:NAME}`
//! (field `NAME` of the incoming JSON body). Any other brace text is kept as is,
//! so JSON bodies need no escaping.

use serde_json::Value;

/// What placeholders expand to.
#[derive(Debug, Clone, Default)]
pub struct Ctx<'a> {
    pub n: u64,
    pub name: &'a str,
    pub body: &'a str,
    pub routing_key: &'a str,
    pub correlation_id: &'a str,
}

const KNOWN: [&str; 5] = ["n", "name", "body", "routing_key", "correlation_id"];

/// Whether `inner` (the text between braces) is a placeholder this module knows.
fn placeholder_known(inner: &str) -> bool {
    KNOWN.contains(&inner) || inner.starts_with("pick:") || inner.starts_with("field:")
}

fn expand(inner: &str, ctx: &Ctx<'_>) -> Option<String> {
    Some(match inner {
        "n" => ctx.n.to_string(),
        "name" => ctx.name.to_string(),
        "body" => ctx.body.to_string(),
        "routing_key" => ctx.routing_key.to_string(),
        "correlation_id" => ctx.correlation_id.to_string(),
        _ => {
            if let Some(list) = inner.strip_prefix("pick:") {
                let choices: Vec<&str> = list.split('|').collect();
                let idx = (ctx.n.max(1) - 1) as usize % choices.len().max(1);
                choices.get(idx).copied().unwrap_or("").to_string()
            } else if let Some(field) = inner.strip_prefix("field:") {
                match serde_json::from_str::<Value>(ctx.body) {
                    Ok(Value::Object(map)) => match map.get(field) {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    },
                    _ => String::new(),
                }
            } else {
                return None;
            }
        }
    })
}

/// Finds the placeholder starting at byte `i` of `s` (which is `{`): its inner
/// text and the byte index after the closing brace.
fn placeholder_at(s: &str, i: usize) -> Option<(&str, usize)> {
    let rest = s.get(i + 1..)?;
    let end = rest.find('}')?;
    let inner = &rest[..end];
    if inner.contains('{') || !placeholder_known(inner) {
        return None;
    }
    Some((inner, i + 1 + end + 1))
}

/// Expands every placeholder of `template`.
pub fn render(template: &str, ctx: &Ctx<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut i = 0;
    while i < template.len() {
        let rest = &template[i..];
        let Some(off) = rest.find('{') else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..off]);
        let at = i + off;
        match placeholder_at(template, at)
            .and_then(|(inner, next)| Some((expand(inner, ctx)?, next)))
        {
            Some((text, next)) => {
                out.push_str(&text);
                i = next;
            }
            None => {
                out.push('{');
                i = at + 1;
            }
        }
    }
    out
}

/// Placeholder-looking names (`{word}`) that are not known, for validation.
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        if let Some(end) = after.find('}') {
            let inner = &after[..end];
            let wordy = !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if wordy && !placeholder_known(inner) {
                found.push(inner.to_string());
            }
        }
        rest = after;
    }
    found
}

/// Renders a body template: a string is a template; any other JSON value has
/// its string leaves rendered (a leaf that is exactly one placeholder and
/// renders to a number or boolean becomes that number or boolean) and is then
/// written as compact JSON.
pub fn render_body(body: &Value, ctx: &Ctx<'_>) -> String {
    match body {
        Value::String(s) => render(s, ctx),
        other => render_value(other, ctx).to_string(),
    }
}

fn render_value(v: &Value, ctx: &Ctx<'_>) -> Value {
    match v {
        Value::String(s) => {
            let text = render(s, ctx);
            let single =
                s.starts_with('{') && placeholder_at(s, 0).is_some_and(|(_, next)| next == s.len());
            if single {
                if let Ok(parsed @ (Value::Number(_) | Value::Bool(_))) =
                    serde_json::from_str::<Value>(&text)
                {
                    return parsed;
                }
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.iter().map(|x| render_value(x, ctx)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| (k.clone(), render_value(x, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// All template strings inside a body value (for validation).
pub fn body_strings(body: &Value, out: &mut Vec<String>) {
    match body {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|x| body_strings(x, out)),
        Value::Object(map) => map.values().for_each(|x| body_strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(n: u64) -> Ctx<'static> {
        Ctx {
            n,
            name: "shop",
            body: r#"{"order_id": 7, "customer": "Anna"}"#,
            routing_key: "order.created",
            correlation_id: "c-1",
        }
    }

    #[test]
    fn renders_placeholders_and_keeps_json_braces() {
        assert_eq!(
            render(r#"{"order_id": {n}, "from": "{name}"}"#, &ctx(3)),
            r#"{"order_id": 3, "from": "shop"}"#
        );
        assert_eq!(render("{pick:a|b|c}", &ctx(4)), "a");
        assert_eq!(
            render("{field:customer} #{field:order_id}", &ctx(1)),
            "Anna #7"
        );
        assert_eq!(render("{unknown} {", &ctx(1)), "{unknown} {");
    }

    #[test]
    fn json_body_leaves_become_numbers() {
        let body = serde_json::json!({"order_id": "{n}", "amount": "{pick:100|250}", "ok": "{pick:true|false}", "c": "{name}-{n}"});
        assert_eq!(
            render_body(&body, &ctx(2)),
            r#"{"amount":250,"c":"shop-2","ok":false,"order_id":2}"#
        );
    }

    #[test]
    fn finds_unknown_placeholders() {
        assert_eq!(unknown_placeholders("{n} {nn} {\"a\": 1}"), vec!["nn"]);
    }
}
