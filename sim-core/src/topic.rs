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

#[derive(Debug, Clone)]
struct Node {
    /// The fewest and the most key words any binding below this node still
    /// needs (`u16::MAX`: unbounded, a `#` follows). A walk that has fewer or
    /// more words left stops here. Removing a binding leaves the bounds as
    /// they were: wider than needed, never wrong.
    min_rest: u16,
    max_rest: u16,
    star: Option<u32>,
    hash: Option<u32>,
    /// Destinations whose binding key ends here (one entry per binding).
    leaves: Vec<Dest>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            min_rest: u16::MAX,
            max_rest: 0,
            star: None,
            hash: None,
            leaves: Vec::new(),
        }
    }
}

/// Hashes the (node, word) numbers of a trie edge: one multiplication, high
/// bits folded into the low ones the table indexes by.
#[derive(Default, Clone, Copy)]
pub struct EdgeHash(u64);

impl std::hash::Hasher for EdgeHash {
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

fn edge(node: usize, word: u32) -> u64 {
    ((node as u64) << 32) | u64::from(word)
}

/// The binding trie of one topic exchange.
///
/// Literal words are interned: each distinct word of a binding key gets a
/// number, and the literal edges of all nodes live in one hash table keyed by
/// (node, word number). A routing key's words are looked up once per publish
/// (a word no binding uses can only match `*` and `#`); the walk then costs
/// one integer-keyed probe per literal edge, with no string hashing and no
/// search through a node's children.
#[derive(Debug, Clone)]
pub struct TopicTrie {
    nodes: Vec<Node>,
    words: HashMap<Box<str>, u32, BuildHasherDefault<Fnv>>,
    edges: HashMap<u64, u32, BuildHasherDefault<EdgeHash>>,
}

impl Default for TopicTrie {
    fn default() -> Self {
        TopicTrie {
            nodes: vec![Node::default()],
            words: HashMap::default(),
            edges: HashMap::default(),
        }
    }
}

/// A step of a binding key.
#[derive(Clone, Copy)]
enum Step {
    Word(u32),
    Star,
    Hash,
}

impl TopicTrie {
    fn step(&mut self, w: &str) -> Step {
        match w {
            "*" => Step::Star,
            "#" => Step::Hash,
            _ => {
                let next = self.words.len() as u32;
                Step::Word(*self.words.entry(w.into()).or_insert(next))
            }
        }
    }

    fn next(&self, at: usize, step: Step) -> Option<u32> {
        let node = &self.nodes[at];
        match step {
            Step::Star => node.star,
            Step::Hash => node.hash,
            Step::Word(id) => self.edges.get(&edge(at, id)).copied(),
        }
    }

    pub fn insert(&mut self, key: &str, dest: Dest) {
        let steps: Vec<&str> = words(key).collect();
        // What the binding still needs after each of its steps.
        let mut min_rest = steps.iter().filter(|w| **w != "#").count();
        let mut unbounded = steps.contains(&"#");
        let mut at = 0usize;
        self.widen(at, min_rest, unbounded, steps.len());
        for (i, w) in steps.iter().enumerate() {
            if *w == "#" {
                unbounded = steps[i + 1..].contains(&"#");
            } else {
                min_rest -= 1;
            }
            let step = self.step(w);
            at = match self.next(at, step) {
                Some(n) => n as usize,
                None => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(Node::default());
                    let node = &mut self.nodes[at];
                    match step {
                        Step::Star => node.star = Some(id),
                        Step::Hash => node.hash = Some(id),
                        Step::Word(word) => {
                            self.edges.insert(edge(at, word), id);
                        }
                    }
                    id as usize
                }
            };
            self.widen(at, min_rest, unbounded, steps.len() - i - 1);
        }
        self.nodes[at].leaves.push(dest);
    }

    fn widen(&mut self, at: usize, min_rest: usize, unbounded: bool, rest: usize) {
        let node = &mut self.nodes[at];
        let clamp = |n: usize| n.min(usize::from(u16::MAX - 1)) as u16;
        node.min_rest = node.min_rest.min(clamp(min_rest));
        node.max_rest = node
            .max_rest
            .max(if unbounded { u16::MAX } else { clamp(rest) });
    }

    /// Removes one binding of `dest` with `key`; false if there was none.
    pub fn remove(&mut self, key: &str, dest: Dest) -> bool {
        let mut at = 0usize;
        for w in words(key) {
            let step = match w {
                "*" => Step::Star,
                "#" => Step::Hash,
                _ => match self.words.get(w) {
                    Some(id) => Step::Word(*id),
                    None => return false,
                },
            };
            match self.next(at, step) {
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
        let mut walk = Walk {
            out,
            hash_visits: 0,
            memo: None,
        };
        // Each key word as its interned number; `None` for a word no binding
        // names (it can still match `*` or `#`).
        let id = |w: &str| self.words.get(w).copied();
        let mut buf: [Option<u32>; 16] = [None; 16];
        let mut n = 0;
        for w in words(key) {
            if n == buf.len() {
                // A long key: collect it whole instead.
                let v: Vec<Option<u32>> = words(key).map(id).collect();
                if v.len() <= MAX_WORDS && self.fits(0, v.len()) {
                    self.walk(0, &v, &mut walk);
                }
                return;
            }
            buf[n] = id(w);
            n += 1;
        }
        if self.fits(0, n) {
            self.walk(0, &buf[..n], &mut walk);
        }
    }

    /// Whether a binding below node `at` can match with `left` words left.
    #[inline]
    fn fits(&self, at: u32, left: usize) -> bool {
        let node = &self.nodes[at as usize];
        let left = left.min(usize::from(u16::MAX - 1)) as u16;
        node.min_rest <= left && left <= node.max_rest
    }

    fn walk(&self, at: usize, ws: &[Option<u32>], st: &mut Walk<'_>) {
        let node = &self.nodes[at];
        match ws.split_first() {
            None => {
                st.out.extend_from_slice(&node.leaves);
                if let Some(h) = node.hash {
                    if self.fits(h, 0) && st.first_visit(h, 0) {
                        self.walk(h as usize, ws, st);
                    }
                }
            }
            Some((w, rest)) => {
                if let Some(&c) = w.and_then(|w| self.edges.get(&edge(at, w))) {
                    if self.fits(c, rest.len()) {
                        self.walk(c as usize, rest, st);
                    }
                }
                if let Some(c) = node.star {
                    if self.fits(c, rest.len()) {
                        self.walk(c as usize, rest, st);
                    }
                }
                if let Some(h) = node.hash {
                    for i in 0..=ws.len() {
                        let left = ws.len() - i;
                        if self.fits(h, left) && st.first_visit(h, left) {
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
/// hundred `#` visits (far more than any ordinary key needs) the walk starts
/// remembering them, so adversarial keys cost polynomial time while ordinary
/// ones allocate nothing.
struct Walk<'a> {
    out: &'a mut Vec<Dest>,
    hash_visits: u32,
    memo: Option<std::collections::HashSet<(u32, usize), BuildHasherDefault<Fnv>>>,
}

impl Walk<'_> {
    #[inline]
    fn first_visit(&mut self, node: u32, remaining: usize) -> bool {
        self.hash_visits += 1;
        if self.memo.is_none() && self.hash_visits > 512 {
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
    fn trie_agrees_with_the_reference_on_random_bindings_and_removals() {
        let mut seed = 0x5eed_u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let pattern_words = ["a", "b", "c", "*", "#", ""];
        let key_words = ["a", "b", "c", "d", ""];
        let mut join = |words: &[&str], max: u64| {
            let n = next(max + 1) as usize;
            (0..n)
                .map(|_| words[next(words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(".")
        };
        let patterns: Vec<String> = (0..300).map(|_| join(&pattern_words, 4)).collect();
        let keys: Vec<String> = (0..200).map(|_| join(&key_words, 5)).collect();
        let mut t = TopicTrie::default();
        for (i, p) in patterns.iter().enumerate() {
            t.insert(p, Dest::Queue(i as u32));
        }
        // Remove every third binding again.
        let live: Vec<bool> = (0..patterns.len()).map(|i| i % 3 != 0).collect();
        for (i, p) in patterns.iter().enumerate() {
            if !live[i] {
                assert!(t.remove(p, Dest::Queue(i as u32)), "{p:?}");
            }
        }
        for k in &keys {
            let want: Vec<u32> = patterns
                .iter()
                .enumerate()
                .filter(|(i, p)| live[*i] && key_matches(p, k))
                .map(|(i, _)| i as u32)
                .collect();
            let mut out = Vec::new();
            t.matches(k, &mut out);
            let mut got: Vec<u32> = out
                .into_iter()
                .map(|d| match d {
                    Dest::Queue(q) | Dest::Exchange(q) => q,
                })
                .collect();
            got.sort();
            got.dedup();
            assert_eq!(got, want, "key {k:?}");
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
