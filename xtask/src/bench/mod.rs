//! `cargo xtask bench [--quick]`: every benchmark, one table, each figure side
//! by side with its baseline measured in the same run (`--ui-only`: the
//! page's frame probe alone; `--wasm-only`: the wasm workload beside the
//! native one; `--bridge-only`: the bridge's relay beside direct lapin).
//!
//! Builds in release (the sim-core and bridge bench binaries, the bridge, the
//! page), then runs, each in a fresh process:
//!
//! * `sim-core/benches/workloads.rs`: the direct publish → deliver → ack
//!   workload, topic routing at 100 / 10,000 / 100,000 bindings against a
//!   linear scan, and resident memory per queued message;
//! * `bridge/benches/relay.rs`: the same direct workload against RabbitMQ with
//!   lapin (the baseline), and through the release bridge's `/ws`;
//! * the page in headless Chromium (`ui.rs`): the simulation workload as wasm,
//!   the first render, and frame times with many messages in flight.
//!
//! Prints the table and writes `<target dir>/bench/report.json` (metric name →
//! `{value, unit, baseline, ratio, target, met}`), `report.md` and `machine.txt`.
//! A missed target is reported as missed; the run fails only if something
//! cannot run (RabbitMQ down, a build failing, Chromium missing).

pub mod report;
mod ui;

use anyhow::{anyhow, bail, Context};
use report::{Metric, Target};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Bridge throughput passes (each beside a direct lapin pass).
const BRIDGE_PASSES: usize = 2;
/// The same, in `--bridge-only` (which has the time for more).
const BRIDGE_ONLY_PASSES: usize = 3;

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub sim_messages: u64,
    pub sim_runs: u64,
    pub rabbit_messages: u64,
    pub latency_samples: u64,
    pub topic_keys: u64,
    pub memory_messages: u64,
    pub ui_loads: usize,
    pub ui_in_flight: &'static [u32],
    pub wasm_messages: u32,
    /// Only the frame probe (`--ui-only`): no first-render or wasm workload.
    pub ui_frames_only: bool,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                sim_messages: 200_000,
                sim_runs: 3,
                rabbit_messages: 20_000,
                latency_samples: 200,
                topic_keys: 5_000,
                memory_messages: 1_000_000,
                ui_loads: 3,
                ui_in_flight: &[100, 500, 1000, 2000, 5000],
                wasm_messages: 200_000,
                ui_frames_only: false,
            }
        } else {
            Plan {
                sim_messages: 1_000_000,
                sim_runs: 3,
                rabbit_messages: 100_000,
                latency_samples: 1000,
                topic_keys: 20_000,
                memory_messages: 1_000_000,
                ui_loads: 5,
                ui_in_flight: &[100, 200, 500, 1000, 2000, 5000, 10000],
                wasm_messages: 1_000_000,
                ui_frames_only: false,
            }
        }
    }
}

pub fn main(quick: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = crate::project_root();
    let plan = Plan::new(quick);
    rabbitmq_needed()?;
    let out_dir = browser_bench_dir(&root)?;
    let load_before = load_average();
    println!("bench: machine: {}", machine().replace('\n', "; "));

    // Build everything first (release), so no compile overlaps a measurement.
    let bins = build_bench_binaries(&root)?;
    println!("bench: cargo build -p bridge --release");
    run_cargo(&root, &["build", "-q", "-p", "bridge", "--release"])?;
    let bridge_bin = crate::web::target_dir(&root)?.join("release/bridge");
    let bundle = crate::web::build(&root)?;

    let mut metrics = Vec::new();

    // The simulation, native.
    println!(
        "bench: sim direct workload, {} messages × {} runs",
        plan.sim_messages, plan.sim_runs
    );
    let direct = run_json(
        &bins.workloads,
        &[
            "direct",
            &plan.sim_messages.to_string(),
            &plan.sim_runs.to_string(),
        ],
    )?;
    let sim_native = get(&direct, "median_msgs_per_s")?;

    // The baseline: RabbitMQ with lapin.
    println!(
        "bench: RabbitMQ with lapin, {} messages, {} latency samples",
        plan.rabbit_messages, plan.latency_samples
    );
    let lapin = run_json(
        &bins.relay,
        &[
            "lapin",
            &plan.rabbit_messages.to_string(),
            &plan.latency_samples.to_string(),
        ],
    )?;
    let rabbit = get(&lapin, "msgs_per_s")?;
    let lapin_p50 = get(&lapin, "latency_p50_ms")?;

    metrics.push(
        Metric::new(
            "sim_native_msgs_per_s",
            sim_native,
            "msgs/s",
            Target::All(vec![Target::AtLeast(5e6), Target::RatioAtLeast(250.0)]),
            "≥ 5M msgs/s and ≥ 250× RabbitMQ",
        )
        .baseline("rabbitmq_msgs_per_s", rabbit)
        .note(format!(
            "median of {} runs of {} messages: confirms on, prefetch 100, manual acks, tracing off, 16-byte bodies",
            plan.sim_runs, plan.sim_messages
        )),
    );
    metrics.push(
        Metric::new(
            "rabbitmq_msgs_per_s",
            rabbit,
            "msgs/s",
            Target::None,
            "baseline",
        )
        .note(format!(
            "RabbitMQ {} via lapin, {} messages: confirms on (100 outstanding), manual acks, 1 producer, 1 consumer, prefetch 100",
            rabbit_version(),
            plan.rabbit_messages
        )),
    );

    // Topic routing.
    for bindings in [100u64, 10_000, 100_000] {
        println!("bench: topic routing, {bindings} bindings");
        let t = run_json(
            &bins.workloads,
            &["topic", &bindings.to_string(), &plan.topic_keys.to_string()],
        )?;
        let route = get(&t, "route_ns")?;
        let scan = get(&t, "scan_ns")?;
        let name = format!("topic_route_ns_{bindings}");
        let m = match bindings {
            10_000 => Metric::new(
                &name,
                route,
                "ns/msg",
                Target::All(vec![Target::AtMost(1000.0), Target::RatioAtMost(0.05)]),
                "≤ 1 µs and ≥ 20× faster than the scan",
            ),
            100_000 => {
                let at_10k = metrics
                    .iter()
                    .find(|m: &&Metric| m.name == "topic_route_ns_10000")
                    .and_then(|m| m.value)
                    .unwrap_or(f64::NAN);
                Metric::new(
                    &name,
                    route,
                    "ns/msg",
                    Target::AtMost(10.0 * at_10k),
                    &format!(
                        "sub-linear: < 10 × t(10k) = {} ns",
                        report::human(10.0 * at_10k)
                    ),
                )
            }
            _ => Metric::new(&name, route, "ns/msg", Target::AtMost(1000.0), "≤ 1 µs"),
        };
        let m = m.baseline("linear scan", scan);
        metrics.push(if bindings == 100 {
            m.note(
                "whole publish requests (reply included) to a topic exchange; random 3-word patterns \
                 (`*` 10 %, `#` 5 %) over 1,000 words, all bound to one queue with x-max-length 0; \
                 best of 3 passes; the scan matches every pattern against the key",
            )
        } else {
            m
        });
    }

    // Memory per queued message.
    println!(
        "bench: memory, {} queued 16-byte messages",
        plan.memory_messages
    );
    let mem = run_json(
        &bins.workloads,
        &["memory", &plan.memory_messages.to_string()],
    )?;
    metrics.push(
        Metric::new(
            "queued_bytes_per_msg",
            get(&mem, "overhead_per_msg")?,
            "bytes",
            Target::AtMost(100.0),
            "≤ 100 bytes",
        )
        .note(format!(
            "RSS growth per message ({} B) minus the 16-byte body, {} messages, fresh process",
            report::human(get(&mem, "rss_per_msg")?),
            plan.memory_messages
        )),
    );

    // The bridge, and the page (the bridge serves it).
    let mut bridge = Bridge::start(&root, &bridge_bin, &out_dir)?;
    let passes = bridge_passes(&bins.relay, &bridge.addr, &plan, BRIDGE_PASSES, 0)?;
    metrics.extend(passes.metrics(&plan, lapin_p50));

    println!("bench: the page in headless Chromium");
    let page = format!("http://{}/", bridge.addr);
    let ui = ui::run(&page, &out_dir, &plan);
    bridge.stop();
    let ui = ui?;
    metrics.push(match ui.wasm_msgs_per_s {
        Ok(runs) => sim_wasm_metric(median(&runs), sim_native).note(format!(
            "the same workload in the page's wasm (wasm-release profile: opt-level z) in headless Chromium: median of {} runs of {} messages on one page load ({} msgs/s)",
            runs.len(),
            plan.wasm_messages,
            list(&runs)
        )),
        Err(why) => Metric::not_measured(
            "sim_wasm_msgs_per_s",
            "msgs/s",
            "≥ 0.5 × native",
            &why,
        ),
    });
    metrics.extend(ui.metrics);
    metrics.push(
        wasm_gz_metric(&bundle).note(format!(
            "gzip -9 of what the page loads at start: web_bg.wasm {} + web.js {} + style.css {} + index.html {} + lessons/index.json {} (wasm raw {}; a lesson's own file, fetched when it is opened, is at most {} more)",
            bundle.wasm_gz,
            bundle.js_gz,
            bundle.css_gz,
            bundle.html_gz,
            bundle.index_gz,
            bundle.wasm,
            bundle.largest_lesson_gz
        )),
    );

    let load_after = load_average();
    let table = report::table(&metrics);
    let machine = format!(
        "{}\nload average before: {load_before}; after: {load_after}\nmode: {}; took {:.0} s",
        machine(),
        if quick { "--quick" } else { "full" },
        started.elapsed().as_secs_f64()
    );
    println!("\n{table}\n{machine}");
    let json = serde_json::to_string_pretty(&report::to_json(&metrics))?;
    std::fs::write(out_dir.join("report.json"), json + "\n")?;
    std::fs::write(out_dir.join("report.md"), &table)?;
    std::fs::write(out_dir.join("machine.txt"), machine + "\n")?;
    let missed = metrics
        .iter()
        .filter(|m| m.not_measured.is_none() && !matches!(m.target, Target::None) && !m.met())
        .count();
    println!(
        "bench: {} metrics, {missed} targets missed; wrote {}",
        metrics.len(),
        out_dir.join("report.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask bench --ui-only [--quick]`: the page's frame probe alone (the
/// `ui_frame_p95_ms` and `ui_max_in_flight_60fps` rows), for working on the
/// page without the minutes of the other benchmarks. The page is served by
/// the release bridge as in the full run; it stays in simulation mode, so
/// RabbitMQ is not needed.
pub fn ui_only(quick: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = crate::project_root();
    let plan = Plan {
        ui_frames_only: true,
        ..Plan::new(quick)
    };
    let out_dir = browser_bench_dir(&root)?;
    println!("bench: cargo build -p bridge --release");
    run_cargo(&root, &["build", "-q", "-p", "bridge", "--release"])?;
    let bridge_bin = crate::web::target_dir(&root)?.join("release/bridge");
    crate::web::build(&root)?;
    let load_before = load_average();
    let mut bridge = Bridge::start(&root, &bridge_bin, &out_dir)?;
    println!("bench: the page's frame probe in headless Chromium");
    let page = format!("http://{}/", bridge.addr);
    let ui = ui::run(&page, &out_dir, &plan);
    bridge.stop();
    let metrics = ui?.metrics;
    let mode = format!("--ui-only{}", if quick { " --quick" } else { "" });
    print_and_save(
        &metrics,
        &mode,
        &load_before,
        started,
        &out_dir.join("ui-only.json"),
    )
}

/// Fails with the command that starts RabbitMQ when it does not answer.
fn rabbitmq_needed() -> anyhow::Result<()> {
    if !crate::e2e::rabbitmq_answers() {
        bail!(
            "RabbitMQ is not answering on 127.0.0.1:5672 (the baselines need it): start it with \
             `rabbitmq-server -detached && rabbitmqctl await_startup`"
        );
    }
    Ok(())
}

/// The bench's output directory (made).
fn bench_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let out_dir = crate::web::target_dir(root)?.join("bench");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    Ok(out_dir)
}

/// The bench's output directory (made), once Chromium and its driver are
/// known to be there: the runs that measure the page.
fn browser_bench_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let out_dir = bench_dir(root)?;
    for (bin, package) in [
        (crate::e2e::CHROMIUM, "chromium"),
        (crate::e2e::CHROMEDRIVER, "chromium-driver"),
    ] {
        if !Path::new(bin).exists() {
            bail!("{bin} is missing (the UI benchmarks need it): run `apt-get install {package}`");
        }
    }
    Ok(out_dir)
}

/// The end of a partial run (`--ui-only`, `--wasm-only`, `--bridge-only`): prints the table,
/// the machine and the load, and writes the metrics as JSON to `json`.
fn print_and_save(
    metrics: &[Metric],
    mode: &str,
    load_before: &str,
    started: Instant,
    json: &Path,
) -> anyhow::Result<ExitCode> {
    let table = report::table(metrics);
    println!(
        "\n{table}\n{}\nload average before: {load_before}; after: {}\nmode: {mode}; took {:.0} s",
        machine(),
        load_average(),
        started.elapsed().as_secs_f64()
    );
    let text = serde_json::to_string_pretty(&report::to_json(metrics))?;
    std::fs::write(json, text + "\n")?;
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask bench --wasm-only [--quick]`: the `sim_wasm_msgs_per_s` row
/// alone, for tuning the wasm build. Builds the sim-core workloads binary,
/// the bridge and the page, then alternates five rounds of one native
/// direct run (a fresh process) and one `bench_sim` in the page (freshly
/// loaded), so both see the same load; prints each round, the medians, their
/// ratio and the bundle's gzipped size. Needs Chromium, not RabbitMQ; writes
/// `<target dir>/bench/wasm-only.json`.
pub fn wasm_only(quick: bool) -> anyhow::Result<ExitCode> {
    const ROUNDS: usize = 5;
    let started = Instant::now();
    let root = crate::project_root();
    let plan = Plan::new(quick);
    let out_dir = browser_bench_dir(&root)?;
    let workloads = build_workloads(&root)?;
    println!("bench: cargo build -p bridge --release");
    run_cargo(&root, &["build", "-q", "-p", "bridge", "--release"])?;
    let bridge_bin = crate::web::target_dir(&root)?.join("release/bridge");
    let bundle = crate::web::build(&root)?;
    let load_before = load_average();
    let mut bridge = Bridge::start(&root, &bridge_bin, &out_dir)?;
    let page = format!("http://{}/", bridge.addr);
    let messages = plan.wasm_messages.to_string();
    println!(
        "bench: {ROUNDS} rounds of {messages} messages, native (fresh process) then wasm (fresh page)"
    );
    let mut native = || {
        get(
            &run_json(&workloads, &["direct", &messages, "1"])?,
            "median_msgs_per_s",
        )
    };
    let rounds = ui::wasm_rounds(&page, &out_dir, &plan, ROUNDS, &mut native);
    bridge.stop();
    let (natives, wasms) = rounds?;
    let metrics = vec![
        Metric::new(
            "sim_native_msgs_per_s",
            median(&natives),
            "msgs/s",
            Target::None,
            "baseline",
        )
        .note(format!(
            "median of {ROUNDS} runs ({}), {messages} messages each",
            list(&natives)
        )),
        sim_wasm_metric(median(&wasms), median(&natives)).note(format!(
            "median of {ROUNDS} runs ({}), each right after a native one, {messages} messages each",
            list(&wasms)
        )),
        wasm_gz_metric(&bundle).note(format!(
            "web_bg.wasm {} gz, {} raw",
            bundle.wasm_gz, bundle.wasm
        )),
    ];
    let mode = format!("--wasm-only{}", if quick { " --quick" } else { "" });
    print_and_save(
        &metrics,
        &mode,
        &load_before,
        started,
        &out_dir.join("wasm-only.json"),
    )
}

/// What the alternating lapin / bridge passes measured.
struct BridgePasses {
    direct_rates: Vec<f64>,
    bridge_rates: Vec<f64>,
    /// Publish → deliver through the bridge (the first pass's samples).
    bridge_p50: f64,
    /// Direct lapin's, when the first lapin pass took samples.
    lapin_p50: Option<f64>,
}

/// `passes` rounds of direct lapin then the bridge's `/ws` at `addr`, same
/// messages, body, window and prefetch: the shared machine's load drifts
/// over minutes, so the bridge is compared with direct runs made right beside
/// it. The first round also takes the latency samples (the bridge's always,
/// lapin's `lapin_samples`), after its timed part.
fn bridge_passes(
    relay: &Path,
    addr: &str,
    plan: &Plan,
    passes: usize,
    lapin_samples: u64,
) -> anyhow::Result<BridgePasses> {
    let messages = plan.rabbit_messages.to_string();
    let mut out = BridgePasses {
        direct_rates: Vec::new(),
        bridge_rates: Vec::new(),
        bridge_p50: f64::NAN,
        lapin_p50: None,
    };
    for pass in 1..=passes {
        let first = pass == 1;
        println!(
            "bench: lapin beside the bridge (pass {pass} of {passes}; load {})",
            load_average()
        );
        let samples = if first { lapin_samples } else { 0 };
        let beside = run_json(relay, &["lapin", &messages, &samples.to_string()])?;
        out.direct_rates.push(get(&beside, "msgs_per_s")?);
        if first && samples > 0 {
            out.lapin_p50 = Some(get(&beside, "latency_p50_ms")?);
        }
        println!(
            "bench: through the bridge's /ws (pass {pass} of {passes}; load {})",
            load_average()
        );
        let samples = if first { plan.latency_samples } else { 0 };
        let through = run_json(relay, &["bridge", addr, &messages, &samples.to_string()])?;
        out.bridge_rates.push(get(&through, "msgs_per_s")?);
        if first {
            out.bridge_p50 = get(&through, "latency_p50_ms")?;
        }
    }
    Ok(out)
}

impl BridgePasses {
    /// The `bridge_msgs_per_s` and `bridge_added_latency_p50_ms` rows.
    fn metrics(&self, plan: &Plan, lapin_p50: f64) -> Vec<Metric> {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let passes = self.bridge_rates.len();
        vec![
            Metric::new(
                "bridge_msgs_per_s",
                mean(&self.bridge_rates),
                "msgs/s",
                Target::RatioAtLeast(0.8),
                "≥ 0.8 × direct lapin",
            )
            .baseline("lapin_beside_bridge_msgs_per_s", mean(&self.direct_rates))
            .note(format!(
                "the baseline's workload ({} messages, confirms on with 100 outstanding, consumer on a second channel with prefetch 100 and manual acks) as JSON over the bridge's /ws; mean of {passes} passes alternating with direct lapin (bridge {}, lapin {} msgs/s)",
                plan.rabbit_messages,
                list(&self.bridge_rates),
                list(&self.direct_rates),
            )),
            Metric::new(
                "bridge_added_latency_p50_ms",
                self.bridge_p50 - lapin_p50,
                "ms",
                Target::AtMost(1.0),
                "≤ 1 ms",
            )
            .note(format!(
                "publish → deliver, one message at a time, {} samples: p50 {} ms through the bridge, {} ms direct lapin",
                plan.latency_samples,
                report::human(self.bridge_p50),
                report::human(lapin_p50)
            )),
        ]
    }
}

/// `cargo xtask bench --bridge-only [--quick]`: the `bridge_msgs_per_s` and
/// `bridge_added_latency_p50_ms` rows alone, for working on the relay.
/// Builds the relay bench binary and the release bridge, then alternates
/// [`BRIDGE_ONLY_PASSES`] passes of direct lapin and the bridge's `/ws` (the
/// full run's workload and sizes; the load average is printed before each).
/// Needs RabbitMQ, not Chromium; writes `<target dir>/bench/bridge-only.json`.
pub fn bridge_only(quick: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = crate::project_root();
    let plan = Plan::new(quick);
    rabbitmq_needed()?;
    let out_dir = bench_dir(&root)?;
    println!("bench: cargo bench --no-run (bridge relay)");
    let relay = cargo_bench_no_run(&root, &["-p", "bridge", "--bench", "relay"])?
        .into_iter()
        .find(|(target, _)| target == "relay")
        .map(|(_, exe)| exe)
        .context("cargo built no `relay` bench binary")?;
    println!("bench: cargo build -p bridge --release");
    run_cargo(&root, &["build", "-q", "-p", "bridge", "--release"])?;
    let bridge_bin = crate::web::target_dir(&root)?.join("release/bridge");
    let load_before = load_average();
    let mut bridge = Bridge::start(&root, &bridge_bin, &out_dir)?;
    let passes = bridge_passes(
        &relay,
        &bridge.addr,
        &plan,
        BRIDGE_ONLY_PASSES,
        plan.latency_samples,
    );
    bridge.stop();
    let passes = passes?;
    let metrics = passes.metrics(&plan, passes.lapin_p50.unwrap_or(f64::NAN));
    let mode = format!("--bridge-only{}", if quick { " --quick" } else { "" });
    print_and_save(
        &metrics,
        &mode,
        &load_before,
        started,
        &out_dir.join("bridge-only.json"),
    )
}

/// The middle value (the upper one of an even count); NaN when empty.
/// `sim_wasm_msgs_per_s` against the native figure of the same run (the
/// full run and `--wasm-only` report it alike; each adds its own note).
fn sim_wasm_metric(wasm: f64, native: f64) -> Metric {
    Metric::new(
        "sim_wasm_msgs_per_s",
        wasm,
        "msgs/s",
        Target::RatioAtLeast(0.5),
        "≥ 0.5 × native",
    )
    .baseline("sim_native_msgs_per_s", native)
}

/// `wasm_gz_bytes`: what the page loads at start, gzipped.
fn wasm_gz_metric(bundle: &crate::web::BundleSize) -> Metric {
    Metric::new(
        "wasm_gz_bytes",
        bundle.total_gz() as f64,
        "bytes",
        Target::AtMost(250_000.0),
        "≤ 250 KB",
    )
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Rates as the table prints them, comma-separated.
fn list(v: &[f64]) -> String {
    v.iter()
        .map(|r| report::human(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

fn get(v: &Value, key: &str) -> anyhow::Result<f64> {
    v.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| anyhow!("benchmark output has no number {key:?}: {v}"))
}

struct BenchBinaries {
    workloads: PathBuf,
    relay: PathBuf,
}

fn run_cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(crate::web::cargo())
        .args(args)
        .current_dir(root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

/// `cargo bench --no-run` for the two workload binaries; their paths.
fn build_bench_binaries(root: &Path) -> anyhow::Result<BenchBinaries> {
    println!("bench: cargo bench --no-run (sim-core workloads, bridge relay)");
    let built = cargo_bench_no_run(
        root,
        &[
            "-p",
            "sim-core",
            "-p",
            "bridge",
            "--bench",
            "workloads",
            "--bench",
            "relay",
        ],
    )?;
    let find = |name: &str| {
        built
            .iter()
            .find(|(target, _)| target == name)
            .map(|(_, exe)| exe.clone())
            .with_context(|| format!("cargo built no `{name}` bench binary"))
    };
    Ok(BenchBinaries {
        workloads: find("workloads")?,
        relay: find("relay")?,
    })
}

/// `cargo bench --no-run` for sim-core's workloads binary alone; its path.
fn build_workloads(root: &Path) -> anyhow::Result<PathBuf> {
    println!("bench: cargo bench --no-run (sim-core workloads)");
    cargo_bench_no_run(root, &["-p", "sim-core", "--bench", "workloads"])?
        .into_iter()
        .find(|(target, _)| target == "workloads")
        .map(|(_, exe)| exe)
        .context("cargo built no `workloads` bench binary")
}

/// `cargo bench --no-run <args>`: (target name, executable) of what it built.
fn cargo_bench_no_run(root: &Path, args: &[&str]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let out = Command::new(crate::web::cargo())
        .args(["bench", "--no-run"])
        .args(args)
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("building the benchmarks failed (see above)");
    }
    let mut built = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(exe) = v.get("executable").and_then(Value::as_str) else {
            continue;
        };
        if let Some(name) = v["target"]["name"].as_str() {
            built.push((name.to_string(), PathBuf::from(exe)));
        }
    }
    Ok(built)
}

/// Runs a workload binary; its last stdout line is a JSON object.
fn run_json(bin: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(bin)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({})",
            bin.display(),
            args.join(" "),
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).with_context(|| {
        format!(
            "`{} {}` printed no JSON: {stdout}",
            bin.display(),
            args.join(" ")
        )
    })?;
    println!("bench:   {v}");
    Ok(v)
}

/// The release bridge on a free port, rate limit lifted, killed on drop.
struct Bridge {
    addr: String,
    children: crate::e2e::Children,
}

impl Bridge {
    fn start(root: &Path, bin: &Path, out_dir: &Path) -> anyhow::Result<Bridge> {
        let port = crate::e2e::free_port()?;
        let log_path = out_dir.join("bridge.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(bin)
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--static-dir")
            .arg(root.join("static"))
            .args(["--max-requests-per-sec", "1000000"])
            .env("RUST_LOG", "warn")
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut children = crate::e2e::Children(vec![("bridge", child)]);
        {
            let (what, child) = children.0.last_mut().expect("just pushed");
            crate::e2e::wait_for_port(port, what, child, Duration::from_secs(30))
                .with_context(|| format!("bridge log:\n{}", crate::e2e::tail(&log_path, 20)))?;
        }
        Ok(Bridge {
            addr: format!("127.0.0.1:{port}"),
            children,
        })
    }

    fn stop(&mut self) {
        for (_, child) in &mut self.children.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// nproc, memory, CPU model.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = sh("free", &["-h"])
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!(
                "{} RAM ({} available)",
                f.get(1).unwrap_or(&"?"),
                f.last().unwrap_or(&"?")
            )
        })
        .unwrap_or_default();
    format!("nproc {}; {mem}; CPU {cpu}", sh("nproc", &[]))
}

fn rabbit_version() -> String {
    let v = sh("rabbitmqctl", &["version"]);
    if v.is_empty() {
        "3.10".into()
    } else {
        v
    }
}
