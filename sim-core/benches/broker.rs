//! Hot-path benchmarks of the broker model: publish → route → deliver → ack
//! through a direct exchange, and topic routing with 10,000 bindings.
//!
//! `cargo bench -p sim-core` (criterion; throughput in messages per second).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sim_core::protocol::*;
use sim_core::Broker;

fn send(b: &mut Broker, m: Method) {
    b.handle_request(Request::new(0, m));
    while b.poll_event().is_some() {}
}

fn declare_exchange(b: &mut Broker, name: &str, kind: ExchangeKind) {
    send(
        b,
        Method::ExchangeDeclare {
            exchange: name.into(),
            kind,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        },
    );
}

fn declare_queue(b: &mut Broker, name: &str, arguments: FieldTable) {
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

fn bind(b: &mut Broker, queue: &str, exchange: &str, key: String) {
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

fn publish(exchange: &str, key: &str) -> Method {
    Method::Publish {
        exchange: exchange.into(),
        routing_key: key.into(),
        body: "hello world".into(),
        mandatory: false,
        properties: Properties::default(),
    }
}

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
