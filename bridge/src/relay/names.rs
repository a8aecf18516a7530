//! Per-session namespacing of broker object names and the argument allowlists.
//!
//! Every exchange and queue name a client gives is mapped to `<prefix><name>`
//! before it reaches RabbitMQ, and every string coming back that starts with the
//! prefix has it stripped, so a client never sees (or can reach outside) its
//! namespace. See `docs/protocol.md` ("Namespacing") for the rules.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sim_core::protocol::FieldTable;

/// The exchanges every vhost has; each session gets private copies of them.
pub const AMQ_EXCHANGES: [(&str, &str); 5] = [
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
];

/// Queue arguments a client may set.
pub const QUEUE_ARGS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-priority",
    "x-single-active-consumer",
    "x-queue-mode",
    "x-queue-type",
    "x-delivery-limit",
];

/// Exchange arguments a client may set.
pub const EXCHANGE_ARGS: &[&str] = &["alternate-exchange"];

/// Consumer arguments a client may set.
pub const CONSUME_ARGS: &[&str] = &["x-priority"];

/// 64 random bits from the standard library's per-process random hash keys.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// A name like RabbitMQ's server-generated ones: `amq.gen-` + 22 url-safe chars.
pub fn generated_queue_name() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::from("amq.gen-");
    let mut bits = random_u64();
    let mut left = 10;
    for _ in 0..22 {
        if left == 0 {
            bits = random_u64();
            left = 10;
        }
        out.push(char::from(ALPHABET[(bits & 63) as usize]));
        bits >>= 6;
        left -= 1;
    }
    out
}

/// The namespace of one session.
#[derive(Debug, Clone)]
pub struct Namespace {
    prefix: Arc<str>,
}

impl Namespace {
    /// A fresh `pg.<8 hex>.` namespace.
    pub fn random() -> Self {
        let n = random_u64() as u32;
        Namespace::with_prefix(&format!("pg.{n:08x}."))
    }

    pub fn with_prefix(prefix: &str) -> Self {
        Namespace {
            prefix: Arc::from(prefix),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A queue name as the client gave it → the broker's name. `""` stays `""`
    /// (AMQP: "the queue last declared on this channel").
    pub fn queue(&self, name: &str) -> String {
        if name.is_empty() {
            String::new()
        } else {
            format!("{}{name}", self.prefix)
        }
    }

    /// An exchange name → the broker's name. The default exchange `""` stays.
    /// `amq.*` names map to the session's private copies.
    pub fn exchange(&self, name: &str) -> String {
        if name.is_empty() {
            String::new()
        } else {
            format!("{}{name}", self.prefix)
        }
    }

    /// The session's stand-in for the default exchange: a (transient) direct
    /// exchange named exactly the prefix, to which every queue the session
    /// declares is bound with its (client) name. Publishing and
    /// dead-lettering through `""` go there, so routing keys stay the client's
    /// own (a dead-lettered message keeps the key the client published with),
    /// and its name maps back to `""`.
    pub fn default_exchange(&self) -> String {
        self.prefix.to_string()
    }

    /// The exchange a publish (or a dead-letter exchange argument) names:
    /// like [`Namespace::exchange`], but `""` is the session's default
    /// exchange.
    pub fn publish_exchange(&self, name: &str) -> String {
        if name.is_empty() {
            self.default_exchange()
        } else {
            self.exchange(name)
        }
    }

    /// Strips the prefix from a broker-side name.
    pub fn back<'a>(&self, name: &'a str) -> &'a str {
        name.strip_prefix(&*self.prefix).unwrap_or(name)
    }

    /// Strips the prefix from every string inside a JSON value.
    pub fn back_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Some(rest) = s.strip_prefix(&*self.prefix) {
                    *s = rest.to_string();
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.back_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.back_json(v)),
            _ => {}
        }
    }

    /// Checks queue arguments against the allowlist (unless `lenient`) and
    /// maps the names inside.
    pub fn queue_arguments(&self, args: &FieldTable, lenient: bool) -> Result<FieldTable, String> {
        if !lenient {
            check_allowed(args, QUEUE_ARGS, "queue")?;
        }
        let mut out = args.clone();
        match args.get("x-dead-letter-exchange") {
            None => {}
            Some(serde_json::Value::String(x)) => {
                out.insert(
                    "x-dead-letter-exchange".into(),
                    serde_json::Value::String(self.publish_exchange(x)),
                );
            }
            // Not a name: RabbitMQ refuses it (406, unacceptable type).
            Some(_) => {}
        }
        Ok(out)
    }

    /// Checks exchange arguments and maps `alternate-exchange`.
    pub fn exchange_arguments(
        &self,
        args: &FieldTable,
        lenient: bool,
    ) -> Result<FieldTable, String> {
        if !lenient {
            check_allowed(args, EXCHANGE_ARGS, "exchange")?;
        }
        let mut out = args.clone();
        if let Some(ae) = args.get("alternate-exchange") {
            let serde_json::Value::String(ae) = ae else {
                return Err("alternate-exchange must be a string".into());
            };
            out.insert(
                "alternate-exchange".into(),
                serde_json::Value::String(self.exchange(ae)),
            );
        }
        Ok(out)
    }

    /// Binding arguments: `x-match` and header-match criteria (keys not
    /// starting with `x-`); other `x-` keys only with `lenient`.
    pub fn binding_arguments(
        &self,
        args: &FieldTable,
        lenient: bool,
    ) -> Result<FieldTable, String> {
        if !lenient {
            for key in args.keys() {
                if key.starts_with("x-") && key != "x-match" {
                    return Err(format!(
                        "binding argument {key:?} is not allowed in the playground \
                         (allowed: x-match and header names not starting with \"x-\")"
                    ));
                }
            }
        }
        Ok(args.clone())
    }

    /// Consumer arguments.
    pub fn consume_arguments(
        &self,
        args: &FieldTable,
        lenient: bool,
    ) -> Result<FieldTable, String> {
        if !lenient {
            check_allowed(args, CONSUME_ARGS, "consumer")?;
        }
        Ok(args.clone())
    }
}

fn check_allowed(args: &FieldTable, allowed: &[&str], what: &str) -> Result<(), String> {
    for key in args.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(format!(
                "{what} argument {key:?} is not allowed in the playground (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(v: serde_json::Value) -> FieldTable {
        match v {
            serde_json::Value::Object(m) => m,
            _ => FieldTable::new(),
        }
    }

    #[test]
    fn names_round_trip() {
        let ns = Namespace::with_prefix("pg.0000abcd.");
        assert_eq!(ns.queue("q1"), "pg.0000abcd.q1");
        assert_eq!(ns.queue(""), "");
        assert_eq!(ns.exchange(""), "");
        assert_eq!(ns.exchange("amq.direct"), "pg.0000abcd.amq.direct");
        assert_eq!(ns.publish_exchange(""), "pg.0000abcd.");
        assert_eq!(ns.back(&ns.publish_exchange("")), "");
        assert_eq!(ns.publish_exchange("x"), "pg.0000abcd.x");
        assert_eq!(ns.back("pg.0000abcd.q1"), "q1");
        assert_eq!(ns.back("other"), "other");
        let mut v =
            json!({"x-death": [{"queue": "pg.0000abcd.q", "routing-keys": ["pg.0000abcd.q"]}]});
        ns.back_json(&mut v);
        assert_eq!(
            v,
            json!({"x-death": [{"queue": "q", "routing-keys": ["q"]}]})
        );
    }

    #[test]
    fn random_prefixes_differ() {
        let a = Namespace::random();
        let b = Namespace::random();
        assert_ne!(a.prefix(), b.prefix());
        assert_eq!(a.prefix().len(), "pg.12345678.".len());
        let g = generated_queue_name();
        assert_eq!(g.len(), "amq.gen-".len() + 22);
    }

    #[test]
    fn dead_letter_arguments_are_mapped() {
        let ns = Namespace::with_prefix("P.");
        let out = ns
            .queue_arguments(&table(json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q2", "x-message-ttl": 5})), false)
            .expect("allowed");
        assert_eq!(out["x-dead-letter-exchange"], json!("P."));
        assert_eq!(out["x-dead-letter-routing-key"], json!("q2"));
        let out = ns
            .queue_arguments(
                &table(json!({"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "k"})),
                false,
            )
            .expect("allowed");
        assert_eq!(out["x-dead-letter-exchange"], json!("P.dlx"));
        assert_eq!(out["x-dead-letter-routing-key"], json!("k"));
    }

    #[test]
    fn unknown_arguments_are_refused() {
        let ns = Namespace::with_prefix("P.");
        let err = ns
            .queue_arguments(
                &table(json!({"x-queue-master-locator": "min-masters"})),
                false,
            )
            .expect_err("refused");
        assert!(err.contains("x-queue-master-locator"), "{err}");
        assert!(ns
            .exchange_arguments(&table(json!({"x-foo": 1})), false)
            .is_err());
        assert!(ns
            .exchange_arguments(&table(json!({"x-foo": 1})), true)
            .is_ok());
        assert!(ns
            .binding_arguments(&table(json!({"x-match": "any", "h": "v"})), false)
            .is_ok());
        assert!(ns
            .binding_arguments(&table(json!({"x-match": "any-with-x", "x-h": 1})), false)
            .is_err());
        assert!(ns
            .binding_arguments(&table(json!({"x-match": "any-with-x", "x-h": 1})), true)
            .is_ok());
        let out = ns
            .exchange_arguments(&table(json!({"alternate-exchange": "ae"})), false)
            .expect("allowed");
        assert_eq!(out["alternate-exchange"], json!("P.ae"));
    }
}
