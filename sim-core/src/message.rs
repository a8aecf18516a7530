//! Messages inside the broker.
//!
//! A queue holds its messages by value: a [`QEntry`] is the message ([`Msg`]:
//! id, address, body, properties — three shared pointers and an id) plus its
//! place in the queue, 56 bytes in the queue's ring buffer and no heap block
//! of its own. The body and the properties are the very `Arc`s the publish
//! request brought, and the exchange name and routing key live in an
//! [`Address`] that consecutive messages with the same exchange and key share
//! (see [`AddressCache`]). So a fanout to many queues copies no body, a
//! delivery allocates nothing, and a queued message costs the entry plus its
//! body's block: about 90 bytes beyond the body.
//!
//! The address is shared through an `Rc`, not an `Arc`: it never leaves the
//! broker (deliveries copy its short strings), so its count needs no atomic
//! update. That was two locked instructions per message (one when a publish
//! takes the cached address, one when the ack drops the message), each of
//! which also waits for the store buffer to drain; the direct benchmark ran
//! about 6 % faster without them. The price is that a [`crate::Broker`] is
//! not `Send`: it lives in one thread (the page's, a test's, the xtask's),
//! and nothing moves one between threads.

use std::rc::Rc;
use std::sync::Arc;

use crate::protocol::{Message, MessageId, Properties, SharedProperties, ShortString};

/// Where a message was published (or dead-lettered) to.
#[derive(Debug, PartialEq)]
pub struct Address {
    /// The exchange it was published (or dead-lettered) to.
    pub exchange: ShortString,
    /// The routing key of the publish; what deliveries report. Both are
    /// [`ShortString`]s so a delivery copies them instead of touching
    /// reference counts.
    pub routing_key: ShortString,
    /// CC and BCC keys (sender-selected distribution), routed like the key.
    pub extra_keys: Vec<String>,
}

/// One message's immutable content, cheap to clone (reference counts).
/// Dead-lettering makes a new `Msg` (new headers, exchange and routing keys)
/// with the same [`MessageId`].
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub id: MessageId,
    pub address: Rc<Address>,
    pub body: Arc<str>,
    /// Shared with the publish request and every delivery.
    pub properties: SharedProperties,
}

impl Msg {
    pub fn exchange(&self) -> &ShortString {
        &self.address.exchange
    }

    pub fn routing_key(&self) -> &ShortString {
        &self.address.routing_key
    }

    /// Every key the message is routed with (the publish key first).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.address.routing_key)
            .chain(self.address.extra_keys.iter().map(String::as_str))
    }

    pub fn props(&self) -> &Properties {
        &self.properties
    }

    pub fn persistent(&self) -> bool {
        self.props().delivery_mode == Some(2)
    }

    pub fn body_len(&self) -> u64 {
        self.body.len() as u64
    }

    /// Per-message TTL from the `expiration` property (validated at publish;
    /// dead-lettering moves it to `original-expiration`).
    #[inline]
    pub fn ttl(&self) -> Option<u64> {
        match self.properties.expiration {
            None => None,
            Some(_) => parse_expiration(&self.properties).ok().flatten(),
        }
    }

    pub fn to_message(&self) -> Message {
        Message {
            body: self.body.clone(),
            properties: self.properties.clone(),
        }
    }
}

/// Recently used addresses, so that a stream of messages published to the
/// same exchange with the same key shares one [`Address`] (and one copy of
/// the key) instead of allocating one per message. Direct-mapped by a hash of
/// exchange and key: a lookup is one hash and one comparison, and a miss
/// simply makes a new address.
///
/// A slot also remembers where its address last routed to (the queues, in
/// delivery order), stamped with the broker's routing generation: the broker
/// bumps the generation whenever any exchange or binding changes, so a
/// remembered route is only ever reused while the bindings it came from are
/// exactly as they were.
#[derive(Debug, Clone, Default)]
pub struct AddressCache {
    slots: Vec<Option<Slot>>,
}

#[derive(Debug, Clone)]
struct Slot {
    xid: u32,
    address: Rc<Address>,
    /// The routing generation `route` was computed at; 0 for none.
    generation: u64,
    route: Vec<u32>,
}

const ADDRESS_SLOTS: usize = 64;

impl AddressCache {
    /// The address for exchange `xid` (named `exchange`) and `key` without
    /// extra keys, and the slot it is cached in (for [`Self::route`]).
    pub fn get(
        &mut self,
        xid: u32,
        exchange: &Arc<str>,
        key: &ShortString,
    ) -> (Rc<Address>, usize) {
        if self.slots.is_empty() {
            self.slots = vec![None; ADDRESS_SLOTS];
        }
        let mut h: u32 = 0x811c_9dc5 ^ xid;
        for &b in key.as_bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let i = h as usize % ADDRESS_SLOTS;
        let slot = &mut self.slots[i];
        if let Some(s) = slot {
            // Compared as `ShortString`s: inline keys as fixed-size arrays,
            // no call to `memcmp`.
            if s.xid == xid && s.address.routing_key == *key {
                return (s.address.clone(), i);
            }
        }
        let a = Rc::new(Address {
            exchange: exchange.into(),
            routing_key: key.clone(),
            extra_keys: Vec::new(),
        });
        // A new address forgets the old one's route (keeping its buffer).
        let route = slot.take().map(|s| s.route).unwrap_or_default();
        *slot = Some(Slot {
            xid,
            address: a.clone(),
            generation: 0,
            route,
        });
        (a, i)
    }

    /// The queues slot `i`'s address routed to at routing generation
    /// `generation`, if that is what it remembers.
    pub fn route(&self, i: usize, generation: u64) -> Option<&[u32]> {
        match self.slots.get(i) {
            Some(Some(s)) if s.generation == generation && generation != 0 => Some(&s.route),
            _ => None,
        }
    }

    /// Remembers that slot `i`'s address routed to `queues` at `generation`.
    pub fn remember_route(&mut self, i: usize, generation: u64, queues: &[u32]) {
        if let Some(Some(s)) = self.slots.get_mut(i) {
            s.generation = generation;
            s.route.clear();
            s.route.extend_from_slice(queues);
        }
    }
}

/// A message's place in one queue: the message, its position and expiry.
#[derive(Debug, Clone)]
pub struct QEntry {
    pub msg: Msg,
    /// Position in the queue (requeued messages go back where they were) in
    /// the low 48 bits; above them a quorum queue's delivery count (15 bits)
    /// and, on top, the redelivered flag. Packed so an entry stays small.
    seq: u64,
    /// Virtual time at which it expires; `u64::MAX` for never.
    expires_at: u64,
}

const REDELIVERED: u64 = 1 << 63;
const COUNT_SHIFT: u32 = 48;
const COUNT_MAX: u64 = (1 << 15) - 1;
const SEQ_MASK: u64 = (1 << COUNT_SHIFT) - 1;

/// Adds RabbitMQ's `x-delivery-count` header (quorum queues) to a delivery's
/// properties; the message in the queue keeps its own. A consumer sees it
/// from the first return on; `basic.get` always (`Some(0)` first).
pub fn with_delivery_count(p: SharedProperties, count: Option<u32>) -> SharedProperties {
    match count {
        Some(count) => with_header(p, "x-delivery-count", serde_json::Value::from(count)),
        None => p,
    }
}

/// Adds a header the broker sets on a delivery (`x-delivery-count`,
/// `x-stream-offset`).
pub fn with_header(mut p: SharedProperties, name: &str, v: serde_json::Value) -> SharedProperties {
    p.headers
        .get_or_insert_with(Default::default)
        .insert(name.into(), v);
    p
}

impl QEntry {
    pub fn new(msg: Msg, expires_at: Option<u64>) -> QEntry {
        QEntry {
            msg,
            seq: 0,
            expires_at: expires_at.unwrap_or(u64::MAX),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq & SEQ_MASK
    }

    pub fn set_seq(&mut self, seq: u64) {
        self.seq = (self.seq & !SEQ_MASK) | (seq & SEQ_MASK);
    }

    /// How often a quorum queue got this message back (RabbitMQ's
    /// `x-delivery-count`); 0 in a classic queue.
    pub fn delivery_count(&self) -> u32 {
        ((self.seq >> COUNT_SHIFT) & COUNT_MAX) as u32
    }

    pub fn count_return(&mut self) {
        let n = (u64::from(self.delivery_count()) + 1).min(COUNT_MAX);
        self.seq = (self.seq & !(COUNT_MAX << COUNT_SHIFT)) | (n << COUNT_SHIFT);
    }

    pub fn redelivered(&self) -> bool {
        self.seq & REDELIVERED != 0
    }

    pub fn set_redelivered(&mut self) {
        self.seq |= REDELIVERED;
    }

    pub fn expires_at(&self) -> Option<u64> {
        (self.expires_at != u64::MAX).then_some(self.expires_at)
    }
}

/// Parses the `expiration` property (milliseconds as a decimal string).
pub fn parse_expiration(props: &Properties) -> Result<Option<u64>, String> {
    match &props.expiration {
        None => Ok(None),
        Some(s) => {
            let t = s.strip_prefix('+').unwrap_or(s);
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid expiration '{s}'"));
            }
            t.parse::<u64>()
                .ok()
                .filter(|v| *v < (1u64 << 32))
                .map(Some)
                .ok_or_else(|| format!("invalid expiration '{s}'"))
        }
    }
}

/// Reads sender-selected distribution keys (`CC`, `BCC`) from the headers and
/// strips `BCC`, as RabbitMQ does at publish time. `None` when there are no
/// such keys (the common case, checked inline: a message without headers
/// costs a comparison).
#[inline]
pub fn take_cc_bcc(props: &mut SharedProperties) -> Option<Vec<String>> {
    if props.headers.is_some() {
        cc_bcc_of_headers(props)
    } else {
        None
    }
}

fn cc_bcc_of_headers(props: &mut SharedProperties) -> Option<Vec<String>> {
    let h = props.headers.as_ref()?;
    if !h.contains_key("CC") && !h.contains_key("BCC") {
        return None;
    }
    let h = props.headers.as_mut()?;
    let mut keys = Vec::new();
    for name in ["CC", "BCC"] {
        if let Some(serde_json::Value::Array(a)) = h.get(name) {
            // Keys longer than a short string are not routed (RabbitMQ would
            // route them; here they could make topic matching recurse too deep).
            keys.extend(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .filter(|k| k.len() <= 255)
                    .map(str::to_string),
            );
        }
    }
    h.remove("BCC");
    (!keys.is_empty()).then_some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_entry_is_seven_words() {
        assert_eq!(std::mem::size_of::<QEntry>(), 56);
    }

    #[test]
    fn the_cache_shares_an_address_per_exchange_and_key() {
        let mut c = AddressCache::default();
        let x: Arc<str> = Arc::from("x");
        let (a, _) = c.get(1, &x, &"k".into());
        assert!(Rc::ptr_eq(&a, &c.get(1, &x, &"k".into()).0));
        assert!(!Rc::ptr_eq(&a, &c.get(2, &x, &"k".into()).0));
        let (b, _) = c.get(1, &x, &"other".into());
        assert_eq!((&*b.exchange, &*b.routing_key), ("x", "other"));
    }

    #[test]
    fn a_route_is_remembered_for_its_generation_only() {
        let mut c = AddressCache::default();
        let x: Arc<str> = Arc::from("x");
        let (_, i) = c.get(1, &x, &"k".into());
        assert_eq!(c.route(i, 1), None);
        c.remember_route(i, 1, &[3, 2]);
        assert_eq!(c.route(i, 1), Some(&[3, 2][..]));
        assert_eq!(c.route(i, 2), None);
        // Another address taking the slot forgets the route.
        let other = (0..)
            .map(|n| format!("k{n}"))
            .find(|k| AddressCache::default().get(1, &x, &k.into()).1 == i)
            .unwrap_or_default();
        assert_eq!(c.get(1, &x, &other.as_str().into()).1, i);
        assert_eq!(c.route(i, 1), None);
    }

    #[test]
    fn flags_and_position_do_not_interfere() {
        let msg = Msg {
            id: 1,
            address: AddressCache::default().get(0, &Arc::from(""), &"".into()).0,
            body: Arc::from(""),
            properties: SharedProperties::default(),
        };
        let mut e = QEntry::new(msg, None);
        e.set_seq(41);
        assert!(!e.redelivered());
        e.set_redelivered();
        assert_eq!((e.seq(), e.redelivered(), e.expires_at()), (41, true, None));
        e.set_seq(7);
        assert_eq!((e.seq(), e.redelivered()), (7, true));
        e.count_return();
        e.count_return();
        e.set_seq(9);
        assert_eq!((e.seq(), e.redelivered(), e.delivery_count()), (9, true, 2));
    }
}
