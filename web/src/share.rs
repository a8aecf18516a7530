//! Import, export and sharing of a scene, all pure: RabbitMQ's
//! `definitions.json` (what the management UI exports) to a scenario and back,
//! the playground's scenario JSON, and a shareable URL fragment (the scenario
//! as compact JSON, deflated by [`crate::deflate`], base64url: `#s=...`). Bad
//! input is an `Err` with a sentence for the student, never a panic.
//!
//! A Build page link also carries where the user put the nodes (`"layout"`
//! beside the scenario's fields): a teacher who arranged the picture shares
//! that picture. It is the link's alone; the scenario format has no such field.

use serde_json::{Map, Value};
use sim_core::protocol::ExchangeKind;
use sim_core::scenario::{
    AckMode, BindingDef, Consumer, ExchangeDef, Producer, PropsDef, QueueDef, RunLimits, Scenario,
    Text, Topology, FORMAT_VERSION, PREDECLARED_EXCHANGES,
};

use crate::lesson::parse_scenario;
use crate::scene::Scene;

/// The fragment prefix of a shared scene.
pub const FRAGMENT_PREFIX: &str = "s=";
/// An inflated scenario larger than this is refused (a hostile link).
const MAX_INFLATED: usize = 512 * 1024;

fn text(s: &str) -> Text {
    Text {
        en: s.to_string(),
        ru: s.to_string(),
        uk: s.to_string(),
    }
}

fn empty_scenario(id: &str, title: Text) -> Scenario {
    Scenario {
        format: FORMAT_VERSION,
        id: id.to_string(),
        title,
        summary: None,
        tags: Vec::new(),
        seed: 1,
        topology: Topology::default(),
        producers: Vec::new(),
        consumers: Vec::new(),
        timeline: Vec::new(),
        steps: Vec::new(),
        checks: Vec::new(),
        run: RunLimits::default(),
    }
}

/// A playground scene (fixed slice) as a scenario: its topology, a producer
/// that publishes once, and its consumers.
pub fn scene_to_scenario(sc: &Scene) -> Scenario {
    let mut s = empty_scenario(
        &format!("scene-{}", sc.id),
        Text {
            en: sc.title.to_string(),
            ru: sc.title.to_string(),
            uk: sc.title.to_string(),
        },
    );
    s.topology.exchanges.push(ExchangeDef {
        name: sc.exchange.to_string(),
        kind: sc.kind,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: Default::default(),
    });
    for q in sc.queues {
        s.topology.queues.push(QueueDef {
            name: q.name.to_string(),
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: Default::default(),
        });
        s.topology.bindings.push(BindingDef {
            source: sc.exchange.to_string(),
            queue: Some(q.name.to_string()),
            exchange: None,
            routing_key: q.binding_key.to_string(),
            arguments: Default::default(),
        });
        s.consumers.push(Consumer {
            name: q.consumer_tag.to_string(),
            queue: q.name.to_string(),
            prefetch: 1,
            ack: AckMode::Manual,
            processing_ms: 1000,
            failure: None,
            reply: None,
            forward: Vec::new(),
            start_ms: 0,
            crash_at_ms: None,
            restart_at_ms: None,
            exclusive: false,
        });
    }
    s.producers.push(Producer {
        name: sc.producer.replace(' ', "-"),
        exchange: sc.exchange.to_string(),
        routing_key: sc.routing_key.to_string(),
        body: Value::String("message {n}".into()),
        properties: PropsDef::default(),
        confirms: false,
        mandatory: false,
        count: 1,
        start_ms: 0,
        interval_ms: 0,
        messages: Vec::new(),
    });
    s
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{path}: expected an object"))
}

fn str_field(o: &Map<String, Value>, key: &str, path: &str) -> Result<String, String> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => Err(format!("{path}.{key}: expected a string")),
    }
}

fn bool_field(o: &Map<String, Value>, key: &str) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn args_field(o: &Map<String, Value>, key: &str, path: &str) -> Result<Map<String, Value>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(format!("{path}.{key}: expected an object")),
    }
}

fn list<'a>(root: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{key}: expected an array")),
    }
}

/// RabbitMQ's `definitions.json` as a scenario: exchanges, queues and bindings
/// with their arguments (users, vhosts, permissions, policies are ignored; the
/// predeclared `amq.*` exchanges are not declared again).
pub fn definitions_to_scenario(json: &str) -> Result<Scenario, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not a JSON file: {e}"))?;
    let root = obj(&v, "definitions.json")?;
    if !["exchanges", "queues", "bindings"]
        .iter()
        .any(|k| root.contains_key(*k))
    {
        return Err(
            "this is neither a scenario (no \"format\") nor a RabbitMQ definitions.json (no \"exchanges\", \"queues\" or \"bindings\")"
                .into(),
        );
    }
    let mut s = empty_scenario("imported-definitions", text("Imported definitions.json"));
    for (i, x) in list(root, "exchanges")?.iter().enumerate() {
        let path = format!("exchanges[{i}]");
        let o = obj(x, &path)?;
        let name = str_field(o, "name", &path)?;
        if name.is_empty() || PREDECLARED_EXCHANGES.contains(&name.as_str()) {
            continue;
        }
        let kind = match str_field(o, "type", &path)?.as_str() {
            "" | "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            other => return Err(format!("{path}.type: exchange type '{other}' is not supported (direct, fanout, topic, headers)")),
        };
        s.topology.exchanges.push(ExchangeDef {
            name,
            kind,
            durable: bool_field(o, "durable"),
            auto_delete: bool_field(o, "auto_delete"),
            internal: bool_field(o, "internal"),
            arguments: args_field(o, "arguments", &path)?,
        });
    }
    for (i, q) in list(root, "queues")?.iter().enumerate() {
        let path = format!("queues[{i}]");
        let o = obj(q, &path)?;
        s.topology.queues.push(QueueDef {
            name: str_field(o, "name", &path)?,
            durable: bool_field(o, "durable"),
            exclusive: false,
            auto_delete: bool_field(o, "auto_delete"),
            arguments: args_field(o, "arguments", &path)?,
        });
    }
    for (i, b) in list(root, "bindings")?.iter().enumerate() {
        let path = format!("bindings[{i}]");
        let o = obj(b, &path)?;
        let source = str_field(o, "source", &path)?;
        if source.is_empty() {
            // The default exchange's implicit bindings are not real bindings.
            continue;
        }
        let dest = str_field(o, "destination", &path)?;
        let (queue, exchange) = match str_field(o, "destination_type", &path)?.as_str() {
            "queue" | "" => (Some(dest), None),
            "exchange" => (None, Some(dest)),
            other => {
                return Err(format!(
                    "{path}.destination_type: '{other}' (expected queue or exchange)"
                ))
            }
        };
        s.topology.bindings.push(BindingDef {
            source,
            queue,
            exchange,
            routing_key: str_field(o, "routing_key", &path)?,
            arguments: args_field(o, "arguments", &path)?,
        });
    }
    if s.topology.exchanges.is_empty() && s.topology.queues.is_empty() {
        return Err("the definitions declare no exchange and no queue".into());
    }
    let issues = sim_core::scenario::validate(&s);
    if !issues.is_empty() {
        return Err(issues
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("; "));
    }
    Ok(s)
}

/// A file the user imports: a playground scenario (it has `"format"`) or a
/// RabbitMQ `definitions.json`.
pub fn import(json: &str) -> Result<Scenario, String> {
    let is_scenario = serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.contains_key("format")))
        .unwrap_or(false);
    if is_scenario {
        parse_scenario(json).map_err(|e| format!("this scenario cannot be used: {e}"))
    } else {
        definitions_to_scenario(json)
    }
}

/// The scenario's topology as a RabbitMQ `definitions.json` (vhost `/`),
/// importable in the management UI.
pub fn scenario_to_definitions(sc: &Scenario) -> String {
    let vhost = Value::String("/".into());
    let exchanges: Vec<Value> = sc
        .topology
        .exchanges
        .iter()
        .map(|x| {
            let mut o = Map::new();
            o.insert("name".into(), x.name.clone().into());
            o.insert("vhost".into(), vhost.clone());
            o.insert("type".into(), x.kind.as_str().into());
            o.insert("durable".into(), x.durable.into());
            o.insert("auto_delete".into(), x.auto_delete.into());
            o.insert("internal".into(), x.internal.into());
            o.insert("arguments".into(), Value::Object(x.arguments.clone()));
            Value::Object(o)
        })
        .collect();
    let queues: Vec<Value> = sc
        .topology
        .queues
        .iter()
        .map(|q| {
            let mut o = Map::new();
            o.insert("name".into(), q.name.clone().into());
            o.insert("vhost".into(), vhost.clone());
            o.insert("durable".into(), q.durable.into());
            o.insert("auto_delete".into(), q.auto_delete.into());
            o.insert("arguments".into(), Value::Object(q.arguments.clone()));
            Value::Object(o)
        })
        .collect();
    let bindings: Vec<Value> = sc
        .topology
        .bindings
        .iter()
        .map(|b| {
            let (dest, kind) = match (&b.queue, &b.exchange) {
                (Some(q), _) => (q.clone(), "queue"),
                (None, Some(x)) => (x.clone(), "exchange"),
                (None, None) => (String::new(), "queue"),
            };
            let mut o = Map::new();
            o.insert("source".into(), b.source.clone().into());
            o.insert("vhost".into(), vhost.clone());
            o.insert("destination".into(), dest.into());
            o.insert("destination_type".into(), kind.into());
            o.insert("routing_key".into(), b.routing_key.clone().into());
            o.insert("arguments".into(), Value::Object(b.arguments.clone()));
            Value::Object(o)
        })
        .collect();
    let mut root = Map::new();
    root.insert("rabbit_version".into(), "3.10.8".into());
    root.insert("exchanges".into(), Value::Array(exchanges));
    root.insert("queues".into(), Value::Array(queues));
    root.insert("bindings".into(), Value::Array(bindings));
    serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default()
}

/// The scenario as the playground's JSON file.
pub fn scenario_to_json(sc: &Scenario) -> String {
    serde_json::to_string_pretty(&crate::scenario_json::to_value(sc)).unwrap_or_default()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64url_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64
            .iter()
            .position(|&b| b == c)
            .ok_or_else(|| format!("the link contains '{}', which is not base64url", c as char))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Text as it travels in a link: deflated, base64url. `Err` if the browser
/// cannot deflate.
pub(crate) async fn pack(json: &str) -> Result<String, String> {
    let packed = crate::deflate::deflate(json.as_bytes()).await?;
    Ok(b64url_encode(&packed))
}

/// The text of a link made by [`pack`] (inflated size capped).
pub(crate) async fn unpack(body: &str) -> Result<String, String> {
    let packed = b64url_decode(body).map_err(|e| format!("the shared link is broken: {e}"))?;
    let json = crate::deflate::inflate(&packed, MAX_INFLATED)
        .await
        .ok_or("the shared link is broken: its data does not unpack (was it cut off?)")?;
    String::from_utf8(json)
        .map_err(|_| "the shared link is broken: its data is not text".to_string())
}

/// Where the user put the Build page's nodes: node id (`queue:orders`) → x, y.
pub type Positions = crate::vecmap::VecMap<String, (f64, f64)>;

/// The key of the positions in a link's JSON.
const LAYOUT_KEY: &str = "layout";
/// Farthest a shared position may be from the origin (a picture is far smaller).
const MAX_COORD: f64 = 100_000.0;

/// The URL fragment (without `#`) that reproduces `sc`, its nodes at
/// `positions` (those the user moved; the rest are laid out as usual).
pub async fn encode_fragment(sc: &Scenario, positions: &Positions) -> Result<String, String> {
    let json = with_layout(sc, positions).to_string();
    Ok(format!("{FRAGMENT_PREFIX}{}", pack(&json).await?))
}

fn with_layout(sc: &Scenario, positions: &Positions) -> Value {
    let mut v = crate::scenario_json::to_value(sc);
    if let (Value::Object(m), false) = (&mut v, positions.is_empty()) {
        let layout: Map<String, Value> = positions
            .iter()
            .map(|(id, &(x, y))| (id.clone(), serde_json::json!([tenth(x), tenth(y)])))
            .collect();
        m.insert(LAYOUT_KEY.into(), Value::Object(layout));
    }
    v
}

/// `v` to a tenth, as the picture draws positions (`translate(637.7,320.0)`).
fn tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A link's JSON without its positions, and the positions.
fn split_layout(mut v: Value) -> Result<(Value, Positions), String> {
    let mut positions = Positions::new();
    let layout = match &mut v {
        Value::Object(m) => m.remove(LAYOUT_KEY),
        _ => None,
    };
    let Some(layout) = layout else {
        return Ok((v, positions));
    };
    let Value::Object(layout) = layout else {
        return Err(format!("{LAYOUT_KEY}: not an object of node positions"));
    };
    for (id, at) in layout {
        let xy = at.as_array().and_then(|a| match a.as_slice() {
            [x, y] => Some((x.as_f64()?, y.as_f64()?)),
            _ => None,
        });
        match xy {
            Some((x, y)) if x.abs() <= MAX_COORD && y.abs() <= MAX_COORD => {
                positions.insert(id, (x, y));
            }
            _ => return Err(format!("{LAYOUT_KEY}.{id}: not a position [x, y]")),
        }
    }
    Ok((v, positions))
}

/// Is this fragment (with or without `#`) a shared scene?
pub fn is_shared(fragment: &str) -> bool {
    fragment
        .trim_start_matches('#')
        .starts_with(FRAGMENT_PREFIX)
}

/// The scenario a shared fragment (with or without `#`) carries, and where
/// its nodes were put (empty for a link without positions).
pub async fn decode_fragment(fragment: &str) -> Result<(Scenario, Positions), String> {
    let body = fragment
        .trim_start_matches('#')
        .strip_prefix(FRAGMENT_PREFIX)
        .ok_or("the link has no shared scene (#s=...)")?;
    let json = unpack(body).await?;
    let unusable = |e: String| format!("the shared scene cannot be used: {e}");
    let v = serde_json::from_str::<Value>(&json).map_err(|e| unusable(e.to_string()))?;
    let (v, positions) = split_layout(v).map_err(unusable)?;
    let sc = crate::lesson::scenario_of_value(&v).map_err(unusable)?;
    Ok((sc, positions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::now;
    use crate::lesson::builtin_lessons;

    const DEFS: &str = r##"{
      "rabbit_version": "3.10.8",
      "users": [{"name": "guest", "password_hash": "x", "tags": ["administrator"]}],
      "vhosts": [{"name": "/"}],
      "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
      "exchanges": [
        {"name": "shop", "vhost": "/", "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
        {"name": "audit", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
        {"name": "amq.direct", "vhost": "/", "type": "direct", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}
      ],
      "queues": [
        {"name": "orders", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {"x-max-length": 10, "x-dead-letter-exchange": "audit"}},
        {"name": "log", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}
      ],
      "bindings": [
        {"source": "shop", "vhost": "/", "destination": "orders", "destination_type": "queue", "routing_key": "order.*", "arguments": {}},
        {"source": "shop", "vhost": "/", "destination": "audit", "destination_type": "exchange", "routing_key": "#", "arguments": {}},
        {"source": "audit", "vhost": "/", "destination": "log", "destination_type": "queue", "routing_key": "", "arguments": {}}
      ]
    }"##;

    #[test]
    fn definitions_import_and_export_round_trip() {
        let sc = import(DEFS).unwrap();
        assert_eq!(
            sc.topology.exchanges.len(),
            2,
            "amq.* is not declared again"
        );
        assert_eq!(sc.topology.queues.len(), 2);
        assert_eq!(sc.topology.bindings.len(), 3);
        assert_eq!(sc.topology.bindings[1].exchange.as_deref(), Some("audit"));
        assert_eq!(
            sc.topology.queues[0].arguments.get("x-max-length"),
            Some(&Value::from(10))
        );
        let out = scenario_to_definitions(&sc);
        let again = definitions_to_scenario(&out).unwrap();
        assert_eq!(again.topology, sc.topology);
        // And it plays (declares) in the player.
        let l = crate::lesson::Layout::of(&sc);
        assert!(l
            .index(crate::lesson::NodeKind::Exchange, "audit")
            .is_some());
    }

    #[test]
    fn bad_imports_say_why() {
        for (input, says) in [
            ("", "not a JSON file"),
            ("[1,2]", "expected an object"),
            ("{\"users\": []}", "neither a scenario"),
            ("{\"exchanges\": [{\"name\": \"x\", \"type\": \"x-delayed-message\"}]}", "not supported"),
            ("{\"queues\": 5}", "queues: expected an array"),
            ("{\"bindings\": [{\"source\": \"nope\", \"destination\": \"q\", \"destination_type\": \"queue\"}], \"queues\": [{\"name\": \"q\"}]}", "nope"),
            ("{\"format\": 1, \"id\": \"x\"}", "cannot be used"),
        ] {
            let e = import(input).unwrap_err();
            assert!(e.contains(says), "{input}: {e}");
        }
    }

    #[test]
    fn share_fragment_round_trips_every_lesson_and_refuses_broken_links() {
        let none = Positions::new();
        for sc in builtin_lessons() {
            let f = now(encode_fragment(&sc, &none)).unwrap();
            assert!(is_shared(&f));
            assert!(f.len() < 8000, "{}: {} chars", sc.id, f.len());
            assert_eq!(
                now(decode_fragment(&format!("#{f}"))).unwrap(),
                (sc, none.clone())
            );
        }
        let f = now(encode_fragment(&builtin_lessons()[0], &none)).unwrap();
        for bad in ["#s=", "#s=!!!", "#s=AAAA", &f[..f.len() / 2], "#x=abc"] {
            assert!(now(decode_fragment(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            b64url_decode(&b64url_encode(b"hello, world")).unwrap(),
            b"hello, world"
        );
        for n in 0..5 {
            let v: Vec<u8> = (0..n).collect();
            assert_eq!(b64url_decode(&b64url_encode(&v)).unwrap(), v);
        }
    }

    #[test]
    fn a_build_link_carries_where_the_nodes_were_put() {
        let sc = builtin_lessons().remove(0);
        let mut at = Positions::new();
        at.insert("queue:hello".to_string(), (412.44, -30.66));
        at.insert("exchange:".to_string(), (90.0, 75.0));
        let f = now(encode_fragment(&sc, &at)).unwrap();
        let (back, moved) = now(decode_fragment(&f)).unwrap();
        assert_eq!(back, sc);
        assert_eq!(moved.get("queue:hello"), Some(&(412.4, -30.7)));
        assert_eq!(moved.get("exchange:"), Some(&(90.0, 75.0)));
        assert_eq!(moved.len(), 2);
        // The scenario format itself still refuses the field.
        assert!(parse_scenario(&with_layout(&sc, &at).to_string()).is_err());
        for (layout, says) in [
            (serde_json::json!([1, 2]), "layout: not an object"),
            (
                serde_json::json!({"queue:q": [1]}),
                "layout.queue:q: not a position",
            ),
            (
                serde_json::json!({"queue:q": ["a", 2]}),
                "layout.queue:q: not a position",
            ),
            (
                serde_json::json!({"queue:q": [1e9, 2]}),
                "layout.queue:q: not a position",
            ),
        ] {
            let mut v = crate::scenario_json::to_value(&sc);
            v[LAYOUT_KEY] = layout;
            let f = format!("{FRAGMENT_PREFIX}{}", now(pack(&v.to_string())).unwrap());
            let e = now(decode_fragment(&f)).unwrap_err();
            assert!(e.contains(says) && e.contains("cannot be used"), "{e}");
        }
    }

    #[test]
    fn playground_scenes_export_as_valid_scenarios() {
        for s in crate::scene::SCENES {
            let sc = scene_to_scenario(s);
            assert!(
                sim_core::scenario::validate(&sc).is_empty(),
                "{:?}",
                sim_core::scenario::validate(&sc)
            );
            let json = scenario_to_json(&sc);
            assert_eq!(parse_scenario(&json).unwrap(), sc);
        }
    }
}
