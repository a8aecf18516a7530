//! The benchmark workloads, shared by the native runner
//! (`sim-core/benches/workloads.rs`) and the in-browser hook (`web/src/bench.rs`
//! includes this file with `#[path]`), so both measure the very same thing.
//!
//! Everything goes through the public `Broker` API: `Request`s in,
//! `poll_event` out, full semantics (confirms, prefetch, manual acks).

#![allow(dead_code)]

use sim_core::protocol::{
    Event, ExchangeKind, FieldTable, Method, Outcome, Request, SharedProperties,
};
use sim_core::Broker;

/// Prefetch of the direct workload's consumer (as in the RabbitMQ baseline).
pub const PREFETCH: u16 = 100;
/// Body of every benchmark message: 16 bytes.
pub const BODY: &str = "0123456789abcdef";

pub fn send(b: &mut Broker, m: Method) {
    b.handle_request(Request::new(0, m));
    while b.poll_event().is_some() {}
}

pub fn declare_exchange(b: &mut Broker, name: &str, kind: ExchangeKind) {
    send(
        b,
        Method::ExchangeDeclare {
            exchange: name.into(),
            kind: kind.into(),
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        },
    );
}

pub fn declare_queue(b: &mut Broker, name: &str, arguments: FieldTable) {
    send(
        b,
        Method::QueueDeclare {
            queue: name.into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments,
        },
    );
}

pub fn bind(b: &mut Broker, queue: &str, exchange: &str, key: String) {
    send(
        b,
        Method::QueueBind {
            queue: queue.into(),
            exchange: exchange.into(),
            routing_key: key,
            arguments: FieldTable::new(),
        },
    );
}

pub fn publish(exchange: &str, key: &str) -> Method {
    Method::Publish {
        exchange: exchange.into(),
        routing_key: key.into(),
        body: BODY.into(),
        mandatory: false,
        properties: SharedProperties::default(),
    }
}

/// The direct workload's broker: tracing off, exchange `x` (direct) bound to
/// queue `q` with key `k`, publisher confirms on, prefetch 100, one consumer
/// with manual acks. Everything on connection 1, channel 1.
pub fn direct_setup(seed: u64) -> Broker {
    let mut b = Broker::new(seed);
    b.set_tracing(false);
    send(&mut b, Method::ConnectionOpen);
    declare_exchange(&mut b, "x", ExchangeKind::Direct);
    declare_queue(&mut b, "q", FieldTable::new());
    bind(&mut b, "q", "x", "k".into());
    send(&mut b, Method::ConfirmSelect);
    send(
        &mut b,
        Method::BasicQos {
            prefetch_count: PREFETCH,
            global: false,
        },
    );
    send(
        &mut b,
        Method::Consume {
            queue: "q".into(),
            consumer_tag: "c".into(),
            no_ack: false,
            exclusive: false,
            arguments: FieldTable::new(),
        },
    );
    b
}

/// Publishes `n` messages to `x`/`k`; every delivery is acked, every publish
/// must be confirmed. Returns `(delivered, confirmed)` (both `n` when the
/// broker behaves).
pub fn direct_run(b: &mut Broker, n: u64) -> (u64, u64) {
    let (mut delivered, mut confirmed) = (0u64, 0u64);
    let mut id = 1u64;
    for _ in 0..n {
        b.handle_request(Request::new(id, publish("x", "k")));
        id += 1;
        let mut tag = None;
        while let Some(f) = b.poll_event() {
            match f.event {
                Event::Deliver { delivery_tag, .. } => {
                    delivered += 1;
                    tag = Some(delivery_tag);
                }
                Event::Confirm { ack: true, .. } => confirmed += 1,
                _ => {}
            }
        }
        if let Some(delivery_tag) = tag {
            b.handle_request(Request::new(
                id,
                Method::Ack {
                    delivery_tag,
                    multiple: false,
                },
            ));
            id += 1;
            while b.poll_event().is_some() {}
        }
    }
    (delivered, confirmed)
}

/// splitmix64: the workloads' own deterministic randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Size of the topic workload's vocabulary.
pub const VOCABULARY: u64 = 1000;

fn word(rng: &mut Rng) -> String {
    format!("w{}", rng.below(VOCABULARY))
}

/// `n` random 3-word binding patterns: each position is `*` with 10 %
/// probability, `#` with 5 %, else one of 1,000 words.
pub fn topic_patterns(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            (0..3)
                .map(|_| match rng.below(100) {
                    0..=9 => "*".to_string(),
                    10..=14 => "#".to_string(),
                    _ => word(&mut rng),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

/// `n` random 3-word routing keys over the same vocabulary.
pub fn topic_keys(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| format!("{}.{}.{}", word(&mut rng), word(&mut rng), word(&mut rng)))
        .collect()
}

/// A broker with topic exchange `t` and one binding per pattern, all to one
/// queue that keeps nothing (`x-max-length` 0): publishing measures routing,
/// not fan-out or storage.
pub fn topic_setup(seed: u64, patterns: &[String]) -> Broker {
    let mut b = Broker::new(seed);
    b.set_tracing(false);
    send(&mut b, Method::ConnectionOpen);
    declare_exchange(&mut b, "t", ExchangeKind::Topic);
    let mut args = FieldTable::new();
    args.insert("x-max-length".into(), 0.into());
    declare_queue(&mut b, "q", args);
    for p in patterns {
        bind(&mut b, "q", "t", p.clone());
    }
    b
}

/// Publishes one message per key to `t`. Returns how many publishes were
/// answered `published` (all of them when the broker behaves).
pub fn topic_run(b: &mut Broker, keys: &[String]) -> u64 {
    let mut ok = 0;
    for (i, k) in keys.iter().enumerate() {
        b.handle_request(Request::new(i as u64 + 1, publish("t", k)));
        while let Some(f) = b.poll_event() {
            if let Event::Reply {
                result: sim_core::protocol::ReplyResult::Ok(Outcome::Published { .. }),
                ..
            } = f.event
            {
                ok += 1;
            }
        }
    }
    ok
}

/// RabbitMQ's topic matching, the plain way: pattern words against key words
/// (`*` one word, `#` zero or more), no index. The linear-scan baseline.
pub fn scan_matches(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| scan_matches(rest, &key[skip..])),
        Some((&"*", rest)) => !key.is_empty() && scan_matches(rest, &key[1..]),
        Some((w, rest)) => key.first() == Some(w) && scan_matches(rest, &key[1..]),
    }
}

/// Splits a key RabbitMQ's way (`""` has no words).
pub fn split_words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}
