//! Maps and sets kept as vectors sorted by key.
//!
//! Every request looks up its connection and channel, and a delivery or an
//! ack several times; with a handful of entries a sorted vector answers in a
//! few comparisons on one cache line, where a `BTreeMap` walks nodes. It
//! iterates in key order like a `BTreeMap`, so replacing one changes no
//! output.
//!
//! The scenario engine and the page use them too, for the same reason and
//! one more: in the page's wasm every `BTreeMap<K, V>` type brings its own
//! copy of the tree code (insert with splits, remove with merges and
//! steals: several kilobytes each), where these are a binary search and a
//! `Vec` insert or remove. Inserting into the middle moves the tail, so they
//! suit maps of up to a few thousand entries, or keys that mostly arrive in
//! order (sequence numbers, request ids).

use std::borrow::Borrow;
use std::cmp::Ordering;

/// Sorts `v` stably by `cmp`.
///
/// Every `sort_by` with its own element type or comparator instantiates the
/// standard stable sort (about 3 KB of wasm each). This sorts positions
/// with one shared instantiation and then moves the elements into place: for
/// lists sorted once, not in a hot loop (schedules, captions, routes).
pub fn sort_by<T>(v: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> Ordering) {
    let order = order(v.len(), &|a, b| cmp(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// `0..n` sorted stably by `cmp` of two positions.
#[inline(never)]
fn order(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp(a, b));
    idx
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    #[inline]
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    #[inline]
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        match self.find(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    #[inline]
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`, made by `make` if there is none (`entry().or_insert_with()`).
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys in ascending order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in key order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Entries in key order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }
}

/// A set kept as a sorted vector (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SmallSet<K> {
    keys: Vec<K>,
}

impl<K> Default for SmallSet<K> {
    fn default() -> Self {
        SmallSet { keys: Vec::new() }
    }
}

impl<K: Ord> SmallSet<K> {
    pub fn new() -> Self {
        Self::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.keys.binary_search_by(|k| k.borrow().cmp(key))
    }

    pub fn contains<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Adds `key`; false if it was there.
    pub fn insert(&mut self, key: K) -> bool {
        match self.find(&key) {
            Ok(_) => false,
            Err(i) => {
                self.keys.insert(i, key);
                true
            }
        }
    }

    /// Takes `key` out; false if it was not there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        match self.find(key) {
            Ok(i) => {
                self.keys.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub fn clear(&mut self) {
        self.keys.clear();
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys in ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, K> {
        self.keys.iter()
    }

    /// The keys, ascending.
    pub fn as_slice(&self) -> &[K] {
        &self.keys
    }

    /// The keys up to and including `last`, ascending.
    pub fn up_to(&self, last: &K) -> &[K] {
        let n = self.keys.partition_point(|k| k <= last);
        &self.keys[..n]
    }
}

impl<K: Ord> Extend<K> for SmallSet<K> {
    fn extend<I: IntoIterator<Item = K>>(&mut self, iter: I) {
        for k in iter {
            self.insert(k);
        }
    }
}

impl<K: Ord> FromIterator<K> for SmallSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> Self {
        let mut set = SmallSet::new();
        set.extend(iter);
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_a_btree_map() {
        let mut small = SmallMap::new();
        let mut tree = BTreeMap::new();
        // A fixed pseudo-random sequence of inserts and removes.
        let mut x = 7u32;
        for step in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = (x >> 16) % 37;
            if step % 3 == 0 {
                assert_eq!(small.remove(&key), tree.remove(&key));
            } else {
                assert_eq!(small.insert(key, step), tree.insert(key, step));
            }
            assert_eq!(small.get(&key), tree.get(&key));
            assert_eq!(
                small.contains_key(&(key + 1)),
                tree.contains_key(&(key + 1))
            );
            assert_eq!(small.keys().count(), tree.len());
        }
        let a: Vec<(u32, u32)> = small.iter().map(|(k, v)| (*k, *v)).collect();
        let b: Vec<(u32, u32)> = tree.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(a, b);
        if let Some(v) = small.get_mut(&a[0].0) {
            *v = 99;
        }
        assert_eq!(small.get(&a[0].0), Some(&99));
        small.clear();
        assert_eq!(small.iter().count(), 0);
    }

    #[test]
    fn sort_by_is_stable() {
        let mut v: Vec<(u32, String)> = (0..50u32)
            .map(|i| ((i * 7919) % 5, format!("{i}")))
            .collect();
        let mut want = v.clone();
        want.sort_by_key(|p| p.0);
        sort_by(&mut v, &|a, b| a.0.cmp(&b.0));
        assert_eq!(v, want);
        let mut empty: Vec<u8> = Vec::new();
        sort_by(&mut empty, &|a, b| a.cmp(b));
        assert!(empty.is_empty());
    }

    #[test]
    fn set_behaves_like_a_btree_set() {
        let mut small = SmallSet::new();
        let mut tree = std::collections::BTreeSet::new();
        let mut x = 11u32;
        for step in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = format!("k{}", (x >> 16) % 41);
            if step % 3 == 0 {
                assert_eq!(small.remove(key.as_str()), tree.remove(key.as_str()));
            } else {
                assert_eq!(small.insert(key.clone()), tree.insert(key.clone()));
            }
            assert_eq!(small.contains(key.as_str()), tree.contains(key.as_str()));
            assert_eq!(small.len(), tree.len());
        }
        assert!(small.iter().eq(tree.iter()));
        let last = tree.iter().nth(5).cloned().unwrap_or_default();
        assert!(small.up_to(&last).iter().eq(tree.range(..=last.clone())));
        let collected: SmallSet<u8> = [3, 1, 3, 2].into_iter().collect();
        assert_eq!(collected.as_slice(), &[1, 2, 3]);
    }
}
