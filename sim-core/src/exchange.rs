//! Exchanges and their bindings.
//!
//! An exchange owns the bindings whose source it is, in two shapes: the list
//! (insertion order, what the UI shows and what deletion walks) and a routing
//! index chosen by the exchange type (a hash map for direct, a trie for topic),
//! so publishing never scans every binding. Explaining a routing decision is
//! the rare path and may scan.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::headers;
use crate::protocol::{ExchangeKind, FieldTable, ShortString};
use crate::rng::Fnv;
use crate::topic::{self, TopicTrie};

type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Where a binding leads. The numbers are broker-internal ids that are never
/// reused, so a stale id can only miss, never hit the wrong object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    Queue(u32),
    Exchange(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub dest: Dest,
    pub key: Arc<str>,
    pub arguments: FieldTable,
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub name: Arc<str>,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    pub alternate: Option<Arc<str>>,
    pub bindings: Vec<Binding>,
    direct: Map<Arc<str>, Vec<Dest>>,
    topic: TopicTrie,
    /// How many bindings each (destination, key) pair has, so that checking a
    /// new binding for a duplicate does not scan them all.
    pairs: Map<(Dest, Arc<str>), u32>,
}

impl Exchange {
    pub fn new(
        name: Arc<str>,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Exchange {
        let alternate = arguments
            .get("alternate-exchange")
            .and_then(|v| v.as_str())
            .map(Arc::from);
        Exchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            alternate,
            bindings: Vec::new(),
            direct: Map::default(),
            topic: TopicTrie::default(),
            pairs: Map::default(),
        }
    }

    /// Adds a binding; false if an identical one exists (binding is idempotent).
    pub fn bind(&mut self, dest: Dest, key: &str, arguments: FieldTable) -> bool {
        let key: Arc<str> = Arc::from(key);
        let pair = (dest, key.clone());
        if self.pairs.contains_key(&pair)
            && self
                .bindings
                .iter()
                .any(|b| b.dest == dest && b.key == key && b.arguments == arguments)
        {
            return false;
        }
        *self.pairs.entry(pair).or_insert(0) += 1;
        match self.kind {
            ExchangeKind::Direct => self.direct.entry(key.clone()).or_default().push(dest),
            ExchangeKind::Topic => self.topic.insert(&key, dest),
            ExchangeKind::Fanout | ExchangeKind::Headers => {}
        }
        self.bindings.push(Binding {
            dest,
            key,
            arguments,
        });
        true
    }

    /// Whether exactly this binding exists.
    pub fn has_binding(&self, dest: Dest, key: &str, arguments: &FieldTable) -> bool {
        self.position(dest, key, arguments).is_some()
    }

    fn position(&self, dest: Dest, key: &str, arguments: &FieldTable) -> Option<usize> {
        self.bindings
            .iter()
            .position(|b| b.dest == dest && &*b.key == key && &b.arguments == arguments)
    }

    /// Removes one binding; false if there was no such binding.
    pub fn unbind(&mut self, dest: Dest, key: &str, arguments: &FieldTable) -> bool {
        let Some(i) = self.position(dest, key, arguments) else {
            return false;
        };
        let b = self.bindings.remove(i);
        self.unindex(&b);
        true
    }

    /// Removes every binding to `dest`; returns how many there were.
    pub fn unbind_dest(&mut self, dest: Dest) -> usize {
        let (gone, keep): (Vec<Binding>, Vec<Binding>) = std::mem::take(&mut self.bindings)
            .into_iter()
            .partition(|b| b.dest == dest);
        self.bindings = keep;
        for b in &gone {
            self.unindex(b);
        }
        gone.len()
    }

    fn unindex(&mut self, b: &Binding) {
        let pair = (b.dest, b.key.clone());
        if let Some(n) = self.pairs.get_mut(&pair) {
            *n -= 1;
            if *n == 0 {
                self.pairs.remove(&pair);
            }
        }
        match self.kind {
            ExchangeKind::Direct => {
                if let Some(v) = self.direct.get_mut(&*b.key) {
                    if let Some(j) = v.iter().position(|d| *d == b.dest) {
                        v.remove(j);
                    }
                    if v.is_empty() {
                        self.direct.remove(&*b.key);
                    }
                }
            }
            ExchangeKind::Topic => {
                self.topic.remove(&b.key, b.dest);
            }
            ExchangeKind::Fanout | ExchangeKind::Headers => {}
        }
    }

    /// Appends the destinations this exchange's own bindings select (may contain
    /// duplicates).
    pub fn route<'a>(
        &self,
        keys: impl Iterator<Item = &'a str>,
        headers: Option<&FieldTable>,
        out: &mut Vec<Dest>,
    ) {
        match self.kind {
            ExchangeKind::Direct => {
                for k in keys {
                    if let Some(v) = self.direct.get(k) {
                        out.extend_from_slice(v);
                    }
                }
            }
            ExchangeKind::Topic => {
                for k in keys {
                    self.topic.matches(k, out);
                }
            }
            ExchangeKind::Fanout => out.extend(self.bindings.iter().map(|b| b.dest)),
            ExchangeKind::Headers => out.extend(
                self.bindings
                    .iter()
                    .filter(|b| headers::matches(&b.arguments, headers).is_some())
                    .map(|b| b.dest),
            ),
        }
    }

    /// The bindings that match, with the reason (slow path, for traces).
    pub fn explain(
        &self,
        keys: &[&str],
        headers: Option<&FieldTable>,
    ) -> Vec<(Dest, String, String)> {
        let mut out = Vec::new();
        for b in &self.bindings {
            let why = match self.kind {
                ExchangeKind::Direct => keys
                    .iter()
                    .find(|k| **k == &*b.key)
                    .map(|k| format!("direct: routing key '{k}' equals the binding key")),
                ExchangeKind::Topic => keys
                    .iter()
                    .find(|k| topic::key_matches(&b.key, k))
                    .map(|k| format!("topic: routing key '{k}' matches pattern '{}'", b.key)),
                ExchangeKind::Fanout => Some("fanout: every binding gets a copy".to_string()),
                ExchangeKind::Headers => headers::matches(&b.arguments, headers),
            };
            if let Some(why) = why {
                let key = if self.kind == ExchangeKind::Headers {
                    serde_json::Value::Object(b.arguments.clone()).to_string()
                } else {
                    b.key.to_string()
                };
                out.push((b.dest, key, why));
            }
        }
        out
    }
}

/// The exchange the last publish named, by name and id, so that a stream of
/// publishes to one exchange finds it with one comparison of the name's bytes
/// instead of hashing the name for the name map (and reading an inline name
/// as a `str` first).
///
/// It holds for one routing generation only: the broker starts a new one
/// whenever an exchange is declared or deleted, so a remembered id always
/// belongs to the remembered name.
#[derive(Debug, Clone, Default)]
pub struct LastExchange {
    name: ShortString,
    id: u32,
    /// The routing generation the pair is valid for; 0 for none.
    generation: u64,
}

impl LastExchange {
    /// The id of exchange `name`, if it is the one remembered at `generation`.
    #[inline]
    pub fn get(&self, name: &ShortString, generation: u64) -> Option<u32> {
        (self.generation == generation && generation != 0 && self.name == *name).then_some(self.id)
    }

    /// Remembers that exchange `name` has id `id` at `generation`.
    pub fn remember(&mut self, name: &ShortString, id: u32, generation: u64) {
        if self.name != *name {
            self.name = name.clone();
        }
        self.id = id;
        self.generation = generation;
    }
}

#[cfg(test)]
mod last_exchange_tests {
    use super::*;

    #[test]
    fn answers_only_for_its_name_and_generation() {
        let mut last = LastExchange::default();
        let x = ShortString::new("x");
        assert_eq!(last.get(&x, 0), None, "nothing remembered");
        assert_eq!(
            last.get(&ShortString::new(""), 0),
            None,
            "nothing remembered"
        );
        last.remember(&x, 7, 3);
        assert_eq!(last.get(&x, 3), Some(7));
        assert_eq!(last.get(&x, 4), None, "an exchange changed since");
        assert_eq!(last.get(&ShortString::new("y"), 3), None, "another name");
        let long = ShortString::new(&"x".repeat(100));
        last.remember(&long, 8, 4);
        assert_eq!(last.get(&long, 4), Some(8));
        assert_eq!(last.get(&x, 4), None);
    }
}
