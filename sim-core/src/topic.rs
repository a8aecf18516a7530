//! Topic routing with a trie over binding-key words.
//!
//! A linear scan over every binding of a topic exchange costs O(bindings) per
//! publish; the trie costs O(words) for literal matches plus the branching that
//! `*` and `#` force, which keeps routing near-constant at 10,000 bindings. The
//! matching rules are RabbitMQ's (`rabbit_exchange_type_topic`): words are split
//! on `.`, the empty key has zero words, empty words are words, `*` is exactly
//! one word and `#` is zero or more.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::exchange::Dest;
use crate::rng::Fnv;

/// Splits a routing or binding key into words the way RabbitMQ does: `""` has
/// no words, `"a."` has two (`"a"` and `""`).
pub fn words(key: &str) -> impl Iterator<Item = &str> {
    let empty = key.is_empty();
    key.split('.').filter(move |_| !empty)
}

/// The most words a routing key may have to be matched (see
/// [`TopicTrie::matches`]).
pub const MAX_WORDS: usize = 256;

#[derive(Debug, Default, Clone)]
struct Node {
    children: HashMap<Box<str>, u32, BuildHasherDefault<Fnv>>,
    star: Option<u32>,
    hash: Option<u32>,
    /// Destinations whose binding key ends here (one entry per binding).
    leaves: Vec<Dest>,
}

/// The binding trie of one topic exchange.
#[derive(Debug, Clone)]
pub struct TopicTrie {
    nodes: Vec<Node>,
}

impl Default for TopicTrie {
    fn default() -> Self {
        TopicTrie {
            nodes: vec![Node::default()],
        }
    }
}

impl TopicTrie {
    pub fn insert(&mut self, key: &str, dest: Dest) {
        let mut at = 0usize;
        for w in words(key) {
            let next = match w {
                "*" => self.nodes[at].star,
                "#" => self.nodes[at].hash,
                _ => self.nodes[at].children.get(w).copied(),
            };
            at = match next {
                Some(n) => n as usize,
                None => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(Node::default());
                    let node = &mut self.nodes[at];
                    match w {
                        "*" => node.star = Some(id),
                        "#" => node.hash = Some(id),
                        _ => {
                            node.children.insert(w.into(), id);
                        }
                    }
                    id as usize
                }
            };
        }
        self.nodes[at].leaves.push(dest);
    }

    /// Removes one binding of `dest` with `key`; false if there was none.
    pub fn remove(&mut self, key: &str, dest: Dest) -> bool {
        let mut at = 0usize;
        for w in words(key) {
            let next = match w {
                "*" => self.nodes[at].star,
                "#" => self.nodes[at].hash,
                _ => self.nodes[at].children.get(w).copied(),
            };
            match next {
                Some(n) => at = n as usize,
                None => return false,
            }
        }
        let leaves = &mut self.nodes[at].leaves;
        match leaves.iter().position(|d| *d == dest) {
            Some(i) => {
                leaves.remove(i);
                true
            }
            None => false,
        }
    }

    /// Appends every destination whose binding key matches `key` (possibly
    /// several times; the caller deduplicates).
    ///
    /// Keys of more than [`MAX_WORDS`] words match nothing: AMQP keys are at
    /// most 255 bytes (128 words), and the walk recurses once per word.
    pub fn matches(&self, key: &str, out: &mut Vec<Dest>) {
        let mut buf: [&str; 16] = [""; 16];
        let n = words(key).count();
        if n > MAX_WORDS {
            return;
        }
        let mut walk = Walk {
            out,
            hash_visits: 0,
            memo: None,
        };
        if n <= buf.len() {
            for (slot, w) in buf.iter_mut().zip(words(key)) {
                *slot = w;
            }
            self.walk(0, &buf[..n], &mut walk);
        } else {
            let v: Vec<&str> = words(key).collect();
            self.walk(0, &v, &mut walk);
        }
    }

    fn walk(&self, at: usize, ws: &[&str], st: &mut Walk<'_>) {
        let node = &self.nodes[at];
        match ws.split_first() {
            None => {
                st.out.extend_from_slice(&node.leaves);
                if let Some(h) = node.hash {
                    if st.first_visit(h, 0) {
                        self.walk(h as usize, ws, st);
                    }
                }
            }
            Some((w, rest)) => {
                if let Some(&c) = node.children.get(*w) {
                    self.walk(c as usize, rest, st);
                }
                if let Some(c) = node.star {
                    self.walk(c as usize, rest, st);
                }
                if let Some(h) = node.hash {
                    for i in 0..=ws.len() {
                        if st.first_visit(h, ws.len() - i) {
                            self.walk(h as usize, &ws[i..], st);
                        }
                    }
                }
            }
        }
    }
}

/// State of one match. Patterns like `#.a.#.a.#` can reach the same `#` node
/// with the same remaining words along exponentially many paths; after a few
/// dozen `#` visits the walk starts remembering them, so adversarial keys cost
/// polynomial time while ordinary ones allocate nothing.
struct Walk<'a> {
    out: &'a mut Vec<Dest>,
    hash_visits: u32,
    memo: Option<std::collections::HashSet<(u32, usize), BuildHasherDefault<Fnv>>>,
}

impl Walk<'_> {
    fn first_visit(&mut self, node: u32, remaining: usize) -> bool {
        self.hash_visits += 1;
        if self.memo.is_none() && self.hash_visits > 64 {
            self.memo = Some(Default::default());
        }
        match &mut self.memo {
            Some(m) => m.insert((node, remaining)),
            None => true,
        }
    }
}

/// Whether a single binding key matches a routing key (used to explain
/// routing): dynamic programming over (pattern words, key words).
pub fn key_matches(binding: &str, key: &str) -> bool {
    let b: Vec<&str> = words(binding).collect();
    let k: Vec<&str> = words(key).collect();
    // m[j] = the first i pattern words match the first j key words.
    let mut m = vec![false; k.len() + 1];
    m[0] = true;
    for p in &b {
        let mut next = vec![false; k.len() + 1];
        for j in 0..=k.len() {
            next[j] = match *p {
                "#" => m[j] || (j > 0 && next[j - 1]),
                "*" => j > 0 && m[j - 1],
                w => j > 0 && m[j - 1] && k[j - 1] == w,
            };
        }
        m = next;
    }
    m[k.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(bindings: &[&str], key: &str) -> Vec<u32> {
        let mut t = TopicTrie::default();
        for (i, b) in bindings.iter().enumerate() {
            t.insert(b, Dest::Queue(i as u32));
        }
        let mut out = Vec::new();
        t.matches(key, &mut out);
        let mut ids: Vec<u32> = out
            .into_iter()
            .map(|d| match d {
                Dest::Queue(q) => q,
                Dest::Exchange(x) => x,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    #[test]
    fn star_and_hash() {
        let b = ["stock.*", "stock.#", "#", "*", "", "a.*.b", "a.#.b"];
        assert_eq!(route(&b, "stock"), vec![1, 2, 3]);
        assert_eq!(route(&b, "stock.usd"), vec![0, 1, 2]);
        assert_eq!(route(&b, "stock.usd.nyse"), vec![1, 2]);
        assert_eq!(route(&b, ""), vec![2, 4]);
        assert_eq!(route(&b, "a..b"), vec![2, 5, 6]);
        assert_eq!(route(&b, "a.b"), vec![2, 6]);
        assert_eq!(route(&b, "a."), vec![2]);
    }

    #[test]
    fn trie_agrees_with_the_reference_matcher() {
        let bindings = [
            "#", "*", "a.#", "#.b", "a.*.#", "*.*", "#.#", "a..b", "a.#.#.b", "",
        ];
        let keys = ["", "a", "a.b", "a..b", "b", ".", "a.b.c.b", "x.y"];
        for k in keys {
            let want: Vec<u32> = bindings
                .iter()
                .enumerate()
                .filter(|(_, b)| key_matches(b, k))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(route(&bindings, k), want, "key {k:?}");
        }
    }

    #[test]
    fn adversarial_patterns_stay_fast() {
        let mut t = TopicTrie::default();
        let pattern = ["#", "a"].repeat(12).join(".");
        t.insert(&pattern, Dest::Queue(1));
        let key = ["a"; 120].join(".");
        let mut out = Vec::new();
        t.matches(&key, &mut out);
        assert!(out.contains(&Dest::Queue(1)));
        assert!(key_matches(&pattern, &key));
        out.clear();
        t.matches(&["b"; 120].join("."), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn remove_one_binding() {
        let mut t = TopicTrie::default();
        t.insert("a.*", Dest::Queue(1));
        t.insert("a.*", Dest::Queue(1));
        assert!(t.remove("a.*", Dest::Queue(1)));
        let mut out = Vec::new();
        t.matches("a.b", &mut out);
        assert_eq!(out, vec![Dest::Queue(1)]);
        assert!(t.remove("a.*", Dest::Queue(1)));
        assert!(!t.remove("a.*", Dest::Queue(1)));
    }
}
