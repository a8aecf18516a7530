//! Hot-path benchmarks of the broker model: publish → route → deliver → ack
//! through a direct exchange, and topic routing with 10,000 bindings.
//!
//! `cargo bench -p sim-core` (criterion; throughput in messages per second).

#[path = "common/workload.rs"]
mod w;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sim_core::protocol::*;
use sim_core::Broker;
use w::{bind, declare_exchange, declare_queue, publish, send};

fn direct_publish_deliver_ack(c: &mut Criterion) {
    let mut b = Broker::new(1);
    send(&mut b, Method::ConnectionOpen);
    declare_exchange(&mut b, "x", ExchangeKind::Direct);
    declare_queue(&mut b, "q", FieldTable::new());
    bind(&mut b, "q", "x", "k".into());
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
    const BATCH: u64 = 1000;
    let mut g = c.benchmark_group("direct");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("publish_deliver_ack", |bench| {
        bench.iter(|| {
            for _ in 0..BATCH {
                b.handle_request(Request::new(1, publish("x", "k")));
                let mut tag = 0;
                while let Some(f) = b.poll_event() {
                    if let Event::Deliver { delivery_tag, .. } = f.event {
                        tag = delivery_tag;
                    }
                }
                b.handle_request(Request::new(
                    2,
                    Method::Ack {
                        delivery_tag: tag,
                        multiple: false,
                    },
                ));
                while b.poll_event().is_some() {}
            }
        })
    });
    g.finish();
}

fn topic_routing_10k_bindings(c: &mut Criterion) {
    let mut b = Broker::new(1);
    send(&mut b, Method::ConnectionOpen);
    declare_exchange(&mut b, "t", ExchangeKind::Topic);
    // A queue that keeps nothing: the benchmark measures routing, not storage.
    let mut args = FieldTable::new();
    args.insert("x-max-length".into(), 0.into());
    declare_queue(&mut b, "q", args);
    for i in 0..10_000u32 {
        let last = match i % 3 {
            0 => "*",
            1 => "#",
            _ => "created",
        };
        bind(
            &mut b,
            "q",
            "t",
            format!("region{}.service{}.{last}", i % 100, i / 100),
        );
    }
    let keys: Vec<String> = (0..1000u32)
        .map(|i| format!("region{}.service{}.created", i % 100, (i / 7) % 100))
        .collect();
    let mut g = c.benchmark_group("topic");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("publish_10k_bindings", |bench| {
        bench.iter(|| {
            for k in &keys {
                b.handle_request(Request::new(1, publish("t", k)));
                while b.poll_event().is_some() {}
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    direct_publish_deliver_ack,
    topic_routing_10k_bindings
);
criterion_main!(benches);
