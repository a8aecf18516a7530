//! A small map kept as a vector of pairs, in insertion order.
//!
//! The Build page keeps many little maps (a few dozen entries: consumers,
//! channels, queues, messages). A `BTreeMap` of each key and value type
//! costs the wasm bundle several kilobytes of tree code per type; a vector
//! searched linearly costs a few hundred bytes and is as fast at these sizes.

use std::borrow::Borrow;

#[derive(Clone, Debug, PartialEq)]
pub struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap(Vec::new())
    }
}

impl<K: PartialEq, V> VecMap<K, V> {
    pub fn new() -> Self {
        VecMap(Vec::new())
    }

    fn position<Q>(&self, k: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0.iter().position(|(key, _)| key.borrow() == k)
    }

    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.position(k).map(|i| &self.0[i].1)
    }

    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.position(k).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.position(k).is_some()
    }

    /// Sets `k` to `v`; returns the value it had.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.position(&k) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, v)),
            None => {
                self.0.push((k, v));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.position(k).map(|i| self.0.remove(i).1)
    }

    /// The value of `k`, made by `f` if there is none.
    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(&k) {
            Some(i) => i,
            None => {
                self.0.push((k, f()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    /// The oldest entry, taken out.
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }

    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| f(k, v));
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

#[cfg(test)]
impl<K: PartialEq + Borrow<Q>, V, Q: PartialEq + ?Sized> std::ops::Index<&Q> for VecMap<K, V> {
    type Output = V;

    /// Panics when `k` is missing, like `BTreeMap`'s index.
    fn index(&self, k: &Q) -> &V {
        match self.get(k) {
            Some(v) => v,
            None => panic!("no such key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_in_insertion_order() {
        let mut m: VecMap<String, u32> = VecMap::new();
        assert_eq!(m.insert("b".into(), 1), None);
        assert_eq!(m.insert("a".into(), 2), None);
        assert_eq!(m.insert("b".into(), 3), Some(1));
        assert_eq!(m.get("b"), Some(&3));
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), ["b", "a"]);
        *m.get_or_insert_with("c".into(), || 0) += 5;
        *m.get_or_insert_with("c".into(), || 0) += 5;
        assert_eq!(m["c"], 10);
        assert_eq!(m.remove("a"), Some(2));
        assert!(!m.contains_key("a"));
        m.retain(|_, v| *v > 3);
        assert_eq!(m.len(), 1);
        assert_eq!(m.pop_first(), Some(("c".to_string(), 10)));
        assert!(m.is_empty() && m.pop_first().is_none());
    }
}
