//! Every lesson in `scenarios/` parses, validates and passes its checks in
//! simulation; the engine is deterministic; checks can fail.

use std::path::PathBuf;

use sim_core::scenario::{parse, run_simulated, Scenario, ScenarioRun};
use sim_core::Broker;

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn load(path: &PathBuf) -> Scenario {
    let text = std::fs::read_to_string(path).expect("readable");
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_lesson_passes_in_simulation() {
    let files = scenario_files();
    assert!(files.len() >= 20, "only {} lessons", files.len());
    let mut failures = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for f in &files {
        let sc = load(f);
        assert!(ids.insert(sc.id.clone()), "duplicate id {}", sc.id);
        assert!(!sc.checks.is_empty(), "{}: a lesson needs checks", sc.id);
        let report = run_simulated(&sc);
        if let Some(why) = report.first_failure() {
            failures.push(format!(
                "{}: {why}\n{}",
                sc.id,
                serde_json::to_string_pretty(&report).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn same_scenario_same_report() {
    for f in scenario_files() {
        let sc = load(&f);
        let a = run_simulated(&sc);
        let b = run_simulated(&sc);
        assert_eq!(a, b, "{}", sc.id);
    }
}

fn lesson(id: &str) -> Scenario {
    scenario_files()
        .iter()
        .map(load)
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no lesson {id}"))
}

#[test]
fn timing_experiment_numbers() {
    for (id, ms) in [
        ("timing-1-consumer", 10_000),
        ("timing-2-consumers", 6_000),
        ("timing-5-consumers", 2_000),
    ] {
        let r = run_simulated(&lesson(id));
        assert_eq!(r.total_time_ms, Some(ms), "{id}");
    }
}

#[test]
fn checks_can_fail() {
    // Three consumers instead of one: the 10 s expectation must fail.
    let mut sc = lesson("timing-1-consumer");
    let mut extra = sc.consumers[0].clone();
    extra.name = "worker-2".into();
    sc.consumers.push(extra);
    let r = run_simulated(&sc);
    assert!(!r.passed());
    let why = r.first_failure().expect("a failure");
    assert!(
        why.starts_with("total_time_ms: expected 10000 ±10%, got 6000"),
        "{why}"
    );
}

#[test]
fn a_failing_probability_is_seeded() {
    let json = r#"{
      "format": 1, "id": "flaky", "title": {"en": "f", "ru": "f", "uk": "f"}, "seed": 7,
      "topology": {"queues": [{"name": "q"}]},
      "producers": [{"name": "p", "routing_key": "q", "count": 200}],
      "consumers": [{"name": "c", "queue": "q", "prefetch": 1, "processing_ms": 1,
                     "failure": {"probability": 0.25, "action": "ack"}}],
      "checks": [{"check": "failed", "consumer": "c", "at_least": 30, "at_most": 70},
                 {"check": "received", "consumer": "c", "expect": 200}]
    }"#;
    let sc = parse(json).expect("valid");
    let a = run_simulated(&sc);
    assert!(a.passed(), "{:?}", a.first_failure());
    assert_eq!(a, run_simulated(&sc));
    let mut other = sc.clone();
    other.seed = 8;
    assert_ne!(a.consumers[0].failed, 0);
    let b = run_simulated(&other);
    assert!(b.passed(), "{:?}", b.first_failure());
}

#[test]
fn the_engine_speaks_only_protocol() {
    // Drive by hand, like the page does: requests out, frames in.
    let sc = lesson("hello-world");
    let mut broker = Broker::new(sc.seed);
    let mut run = ScenarioRun::new(sc);
    let mut requests = 0;
    let mut notes = 0;
    for _ in 0..10_000 {
        while let Some(req) = run.poll_request() {
            requests += 1;
            // Every request survives the JSON wire.
            let wire = serde_json::to_string(&req).expect("serializes");
            broker.handle_request(serde_json::from_str(&wire).expect("parses"));
            while let Some(f) = broker.poll_event() {
                run.handle_frame(&f);
            }
        }
        while run.poll_note().is_some() {
            notes += 1;
        }
        if run.is_done() {
            break;
        }
        let next = [run.poll_timeout(), broker.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("something to wait for");
        broker.handle_timeout(next.max(broker.now_ms()));
        while let Some(f) = broker.poll_event() {
            run.handle_frame(&f);
        }
        run.handle_timeout(next);
    }
    assert!(run.is_done());
    assert!(requests >= 5, "{requests}");
    assert!(notes > 0);
    let r = run.report();
    assert!(r.passed(), "{:?}", r.first_failure());
    assert_eq!(run.active_step(), Some(1));
}

#[test]
fn max_ms_ends_a_run_that_never_settles() {
    // A consumer that requeues forever: the run must stop at max_ms.
    let json = r#"{
      "format": 1, "id": "loop", "title": {"en": "l", "ru": "l", "uk": "l"},
      "topology": {"queues": [{"name": "q"}]},
      "producers": [{"name": "p", "routing_key": "q", "count": 1}],
      "consumers": [{"name": "c", "queue": "q", "prefetch": 1, "processing_ms": 10,
                     "failure": {"probability": 1.0, "action": "nack_requeue"}}],
      "checks": [{"check": "processed", "expect": 1}],
      "run": {"max_ms": 5000}
    }"#;
    let r = run_simulated(&parse(json).expect("valid"));
    assert!(r.timed_out);
    assert!(!r.passed());
    assert!(r.first_failure().expect("fails").contains("max_ms"));
}

#[test]
fn an_admin_error_does_not_stop_what_follows() {
    // Redeclaring 'q' with other arguments is a channel error (406); the admin
    // channel is reopened once and the later publish still happens.
    let json = r#"{
      "format": 1, "id": "admin-error", "title": {"en": "a", "ru": "a", "uk": "a"},
      "topology": {"queues": [{"name": "q"}]},
      "consumers": [{"name": "c", "queue": "q", "ack": "auto"}],
      "timeline": [
        {"at_ms": 10, "action": "declare_queue", "queue": {"name": "q", "durable": true}},
        {"at_ms": 20, "action": "publish", "routing_key": "q", "body": "after the error"},
        {"at_ms": 30, "action": "delete_queue", "queue": "q"}
      ],
      "checks": [{"check": "errors", "expect": 1},
                 {"check": "received", "consumer": "c", "expect": 1}]
    }"#;
    let r = run_simulated(&parse(json).expect("valid"));
    assert!(r.passed(), "{:?} {:?}", r.first_failure(), r.errors);
    assert!(r.errors[0].contains("406"), "{:?}", r.errors);
    // The queue is gone at the end: its depth is unknown, not a panic.
    assert_eq!(r.queues[0].ready, None);
}

#[test]
fn an_unvalidated_scenario_cannot_panic_the_engine() {
    // Bypass validation: a consumer of a missing queue, a producer to a missing
    // exchange, a check on a missing queue.
    let mut sc = lesson("hello-world");
    sc.consumers[0].queue = "nope".into();
    sc.producers[0].exchange = "missing".into();
    sc.checks[2].queue = Some("ghost".into());
    let r = run_simulated(&sc);
    assert!(r.completed);
    assert!(!r.passed());
    assert!(r.errors.iter().any(|e| e.contains("404")), "{:?}", r.errors);
}

#[test]
fn a_zero_time_loop_is_stopped() {
    // A consumer that forwards every message to its own queue in no time.
    let json = r#"{
      "format": 1, "id": "spin", "title": {"en": "s", "ru": "s", "uk": "s"},
      "topology": {"queues": [{"name": "q"}]},
      "producers": [{"name": "p", "routing_key": "q", "count": 1}],
      "consumers": [{"name": "c", "queue": "q", "ack": "auto",
                     "forward": [{"exchange": "", "routing_key": "q"}]}],
      "checks": [{"check": "processed", "at_least": 1}]
    }"#;
    let r = run_simulated(&parse(json).expect("valid"));
    assert!(r.timed_out);
    assert!(r.first_failure().expect("fails").contains("request limit"));
}

#[test]
fn builtin_list_matches_the_folder() {
    let names: Vec<String> = scenario_files()
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let builtin: Vec<String> = sim_core::scenario::BUILTIN
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        builtin, names,
        "update sim-core/src/scenario/builtin.rs to list every file in scenarios/"
    );
    assert_eq!(sim_core::scenario::builtin().len(), names.len());
}

#[test]
fn pacing_keeps_the_request_rate_and_the_outcome() {
    for id in ["marketplace-orders", "timing-2-consumers", "shop-saga"] {
        let sc = lesson(id);
        let mut broker = Broker::new(sc.seed);
        let mut run = ScenarioRun::new(sc.clone());
        run.set_max_requests_per_sec(Some(20));
        let mut sent: Vec<u64> = Vec::new();
        // Drive by hand to see when each request goes out.
        run.handle_timeout(0);
        for _ in 0..1_000_000 {
            while let Some(req) = run.poll_request() {
                sent.push(broker.now_ms());
                broker.handle_request(req);
                while let Some(f) = broker.poll_event() {
                    run.handle_frame(&f);
                }
            }
            if run.is_done() {
                break;
            }
            let next = [run.poll_timeout(), broker.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("something to wait for")
                .max(broker.now_ms());
            broker.handle_timeout(next);
            while let Some(f) = broker.poll_event() {
                run.handle_frame(&f);
            }
            run.handle_timeout(next);
        }
        let r = run.report();
        assert!(r.passed(), "{id}: {:?}", r.first_failure());
        // No more than 20 (burst) + 20 per second in any window of one second.
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|u| **u < t + 1000).count();
            assert!(
                in_window <= 40,
                "{id}: {in_window} requests in 1 s from {t} ms"
            );
        }
        // Same outcome as unpaced, apart from time.
        let plain = run_simulated(&sc);
        for (a, b) in plain.consumers.iter().zip(&r.consumers) {
            assert_eq!(a.processed, b.processed, "{id}: {}", a.name);
        }
    }
}

#[test]
fn timeline_actions_do_what_they_say() {
    let json = r#"{
      "format": 1, "id": "timeline", "title": {"en": "t", "ru": "t", "uk": "t"},
      "topology": {"queues": [{"name": "a"}, {"name": "b"}]},
      "producers": [{"name": "p", "routing_key": "a", "count": 10, "interval_ms": 100}],
      "consumers": [
        {"name": "ca", "queue": "a", "prefetch": 1, "processing_ms": 10},
        {"name": "cb", "queue": "b", "ack": "auto"}
      ],
      "timeline": [
        {"at_ms": 250, "action": "kill_consumer", "consumer": "ca"},
        {"at_ms": 550, "action": "restart_consumer", "consumer": "ca"},
        {"at_ms": 750, "action": "cancel_consumer", "consumer": "ca"},
        {"at_ms": 1200, "action": "purge_queue", "queue": "a"},
        {"at_ms": 1300, "action": "declare_exchange", "exchange": {"name": "x", "type": "fanout"}},
        {"at_ms": 1310, "action": "bind", "binding": {"source": "x", "queue": "b"}},
        {"at_ms": 1320, "action": "publish", "exchange": "x", "body": "via x {n}"},
        {"at_ms": 1330, "action": "publish", "producer": "p", "exchange": "x", "body": "from p"},
        {"at_ms": 1400, "action": "delete_exchange", "exchange": "x"},
        {"at_ms": 1500, "action": "declare_queue", "queue": {"name": "c"}},
        {"at_ms": 1510, "action": "publish", "routing_key": "c", "body": "stays"}
      ],
      "checks": [
        {"check": "errors", "expect": 0},
        {"check": "received", "consumer": "ca", "expect": 8},
        {"check": "queue_depth", "queue": "a", "expect": 0},
        {"check": "queue_depth", "queue": "c", "expect": 1},
        {"check": "order", "consumer": "cb", "expect": ["via x 1", "from p"]},
        {"check": "published", "expect": 13},
        {"check": "published", "producer": "p", "expect": 11}
      ]
    }"#;
    let r = run_simulated(&parse(json).expect("valid"));
    assert!(
        r.passed(),
        "{:?}\n{}",
        r.first_failure(),
        serde_json::to_string_pretty(&r).unwrap_or_default()
    );
    assert_eq!(r.consumers[0].crashes, 1);
}
