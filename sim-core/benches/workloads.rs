//! The workloads `cargo xtask bench` measures natively, one per process, each
//! printing one JSON object on stdout:
//!
//! ```sh
//! cargo bench -p sim-core --bench workloads -- direct 1000000
//! cargo bench -p sim-core --bench workloads -- topic 10000
//! cargo bench -p sim-core --bench workloads -- memory 1000000
//! ```
//!
//! (`harness = false`: plain `main`, release-optimised like every bench.)

#[path = "common/workload.rs"]
mod w;

use std::hint::black_box;
use std::time::Instant;

fn main() {
    // cargo bench passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|s| s.parse().expect("a number"))
            .unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("direct") => direct(n(1, 1_000_000), n(2, 3)),
        Some("topic") => topic(n(1, 10_000) as usize, n(2, 20_000) as usize),
        Some("memory") => memory(n(1, 1_000_000)),
        None => {
            // `cargo bench` with no arguments: a quick run of each.
            direct(200_000, 1);
            topic(10_000, 5_000);
        }
        Some(other) => {
            eprintln!("workloads: unknown workload {other:?} (direct N [runs] | topic BINDINGS [KEYS] | memory N)");
            std::process::exit(2);
        }
    }
}

/// publish → route → deliver → ack through a direct exchange; `runs` runs
/// of `n` messages on fresh brokers. Prints every run's rate and the median.
fn direct(n: u64, runs: u64) {
    let mut rates = Vec::new();
    for run in 0..runs.max(1) {
        let mut b = w::direct_setup(run + 1);
        let start = Instant::now();
        let (delivered, confirmed) = w::direct_run(&mut b, n);
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(
            (delivered, confirmed),
            (n, n),
            "every message delivered and confirmed"
        );
        black_box(&b);
        rates.push(n as f64 / secs);
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"workload\":\"direct\",\"messages\":{n},\"runs\":{:?},\"median_msgs_per_s\":{}}}",
        rates,
        sorted[sorted.len() / 2]
    );
}

/// Topic routing at `bindings` bindings: ns per publish through the broker,
/// and ns per key of a linear scan over the same patterns.
fn topic(bindings: usize, keys: usize) {
    let patterns = w::topic_patterns(7, bindings);
    let keys_v = w::topic_keys(11, keys);
    let mut b = w::topic_setup(1, &patterns);
    // Warm up, then measure the best of three passes.
    w::topic_run(&mut b, &keys_v[..keys_v.len().min(1000)]);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        let ok = w::topic_run(&mut b, &keys_v);
        let ns = start.elapsed().as_nanos() as f64 / keys as f64;
        assert_eq!(ok, keys as u64, "every publish answered published");
        best = best.min(ns);
    }

    // The scan: every pattern against every key (fewer keys when there are
    // many bindings, so it ends in about a second).
    let split: Vec<Vec<&str>> = patterns.iter().map(|p| w::split_words(p)).collect();
    let scan_keys = (20_000_000 / bindings.max(1)).clamp(200, keys);
    let key_words: Vec<Vec<&str>> = keys_v[..scan_keys]
        .iter()
        .map(|k| w::split_words(k))
        .collect();
    let mut scan_best = f64::INFINITY;
    let mut matches = 0u64;
    for _ in 0..3 {
        matches = 0;
        let start = Instant::now();
        for k in &key_words {
            for p in &split {
                if w::scan_matches(black_box(p), black_box(k)) {
                    matches += 1;
                }
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / scan_keys as f64;
        scan_best = scan_best.min(ns);
    }
    println!(
        "{{\"workload\":\"topic\",\"bindings\":{bindings},\"keys\":{keys},\"route_ns\":{best},\"scan_keys\":{scan_keys},\"scan_matches\":{matches},\"scan_ns\":{scan_best}}}"
    );
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm resident field");
    pages * page_size()
}

fn page_size() -> u64 {
    std::process::Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Resident memory per queued message: `n` 16-byte messages published to a
/// queue without consumers, RSS before and after (this process is fresh).
fn memory(n: u64) {
    use sim_core::protocol::{FieldTable, Method, Request, SharedProperties};
    let mut b = sim_core::Broker::new(1);
    b.set_tracing(false);
    for m in [
        Method::ConnectionOpen,
        Method::QueueDeclare {
            queue: "q".into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        },
    ] {
        b.handle_request(Request::new(0, m));
        while b.poll_event().is_some() {}
    }
    let before = rss_bytes();
    for i in 0..n {
        b.handle_request(Request::new(
            i + 1,
            Method::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                body: w::BODY.into(),
                mandatory: false,
                properties: SharedProperties::default(),
            },
        ));
        while b.poll_event().is_some() {}
    }
    let after = rss_bytes();
    // The depth, from a passive declare (the view would copy every message).
    b.handle_request(Request::new(
        0,
        Method::QueueDeclare {
            queue: "q".into(),
            passive: true,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        },
    ));
    let mut depth = None;
    while let Some(f) = b.poll_event() {
        if let sim_core::protocol::Event::Reply {
            result:
                sim_core::protocol::ReplyResult::Ok(sim_core::protocol::Outcome::QueueDeclareOk {
                    message_count,
                    ..
                }),
            ..
        } = f.event
        {
            depth = Some(u64::from(message_count));
        }
    }
    assert_eq!(depth, Some(n), "every message queued");
    black_box(&b);
    let per_msg = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{{\"workload\":\"memory\",\"messages\":{n},\"rss_before\":{before},\"rss_after\":{after},\"body_bytes\":{},\"rss_per_msg\":{per_msg},\"overhead_per_msg\":{}}}",
        w::BODY.len(),
        per_msg - w::BODY.len() as f64
    );
}
