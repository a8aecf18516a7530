//! A map for the few connections of a broker and the few channels of a
//! connection: a vector sorted by key.
//!
//! Every request looks up its connection and channel, and a delivery or an
//! ack several times; with a handful of entries a sorted vector answers in a
//! few comparisons on one cache line, where a `BTreeMap` walks nodes. It
//! iterates in key order like a `BTreeMap`, so replacing one changes no
//! output.

#[derive(Debug, Clone)]
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

impl<K: Ord + Copy, V> SmallMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self.find(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    pub fn contains_key(&self, key: &K) -> bool {
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

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Keys in ascending order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
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
}
