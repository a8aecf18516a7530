//! `cargo xtask <command>`: the project's automation, in Rust rather than shell,
//! so it runs the same on every machine with nothing but cargo.
//!
//! - `serve`        build the page (release wasm) and run the bridge on 127.0.0.1:8080
//! - `test`         everything CI checks; fails loudly on a missing prerequisite
//! - `conformance`  replay shared/conformance cases against the sim or `--real` broker
//! - `lessons`      play the scenarios/ lessons and check them, in sim or `--real` mode
//! - `build-web`    build the wasm front end into static/pkg
//! - `bench`        benchmarks, one table
//! - `difftest`     random programs on the sim and on RabbitMQ; differences shrunk into regression cases
//! - `faults`       the bridge under load and through a RabbitMQ restart (restarts the broker)

mod bench;
mod conformance;
mod difftest;
mod e2e;
mod faults;
mod lessons;
mod serve;
mod test;
mod web;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "amqp-playground automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check CI runs: format, clippy, unit/property/real-broker tests,
    /// conformance in both modes, browser end-to-end tests.
    Test,
    /// Play the lesson scenarios (default: scenarios/) and evaluate their checks.
    Lessons {
        /// Run against the real RabbitMQ at AMQP_URL through the bridge's relay.
        #[arg(long)]
        real: bool,
        /// Print each run's full report (JSON) on stderr.
        #[arg(long)]
        verbose: bool,
        /// Scenario files or folders.
        paths: Vec<PathBuf>,
    },
    /// Replay conformance cases (default: ../shared/conformance/cases and conformance/cases).
    Conformance {
        /// Run against the real RabbitMQ at AMQP_URL through the bridge's relay.
        #[arg(long)]
        real: bool,
        /// Case files or folders.
        paths: Vec<PathBuf>,
    },
    /// Differential testing: seeded random programs run on the simulation and on
    /// the real RabbitMQ at AMQP_URL; each difference is shrunk, checked three
    /// times on the real broker and written to conformance/regressions/.
    Difftest {
        /// Seed of the run (each program's seed derives from it).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of programs.
        #[arg(long, default_value_t = 200)]
        programs: usize,
        /// Most steps per program (waits included).
        #[arg(long, default_value_t = 40)]
        max_steps: usize,
        /// Programs run on the real broker at once.
        #[arg(long, default_value_t = 16)]
        jobs: usize,
        /// Extra programs with broker restarts (run alone, after the others).
        #[arg(long, default_value_t = 0)]
        restarts: usize,
        /// Real-broker runs the shrinker may spend per difference.
        #[arg(long, default_value_t = 150)]
        shrink_budget: usize,
        /// Do not write regression cases.
        #[arg(long)]
        no_write: bool,
        /// Print the generated programs and their op coverage; run nothing.
        #[arg(long)]
        show: bool,
        /// Run only program N of the seed (reproduces `s<seed>-p<N>`).
        #[arg(long)]
        only: Option<usize>,
    },
    /// Build the wasm front end into static/pkg (prints the bundle size).
    BuildWeb,
    /// Every benchmark in release, one table, each figure beside its baseline;
    /// writes <target dir>/bench/report.json. Needs RabbitMQ and Chromium.
    Bench {
        /// A smaller run (under 5 minutes).
        #[arg(long)]
        quick: bool,
        /// Only the page's frame probe (idle page, then the in-flight sizes,
        /// each probe 3 times): builds the bridge and the page, needs
        /// Chromium but not RabbitMQ; writes <target dir>/bench/ui-only.json.
        #[arg(long)]
        ui_only: bool,
        /// Only the simulation workload in the page's wasm beside the same
        /// workload native: 5 alternating rounds (native in a fresh process,
        /// wasm in a freshly loaded page), their medians, the ratio and the
        /// bundle's gzipped size. Builds the workloads binary, the bridge and
        /// the page; needs Chromium but not RabbitMQ; writes
        /// <target dir>/bench/wasm-only.json. With --quick: 200,000 messages.
        #[arg(long, conflicts_with = "ui_only")]
        wasm_only: bool,
        /// Only the bridge's relay beside direct lapin: 3 alternating passes
        /// of the full run's workload (the load average printed before each),
        /// their means, the ratio and the added latency. Builds the relay
        /// bench binary and the release bridge; needs RabbitMQ but not
        /// Chromium; writes <target dir>/bench/bridge-only.json.
        #[arg(long, conflicts_with_all = ["ui_only", "wasm_only"])]
        bridge_only: bool,
    },
    /// Build the page and run the bridge serving it (default http://127.0.0.1:8080).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Browser end-to-end tests: the real page in headless Chromium, sim and real mode.
    E2e {
        /// Reuse the last static/pkg and bridge build (for quick iterations; CI builds).
        #[arg(long)]
        no_build: bool,
        /// Run only the tests whose name contains this (repeatable; for
        /// development: the run says how many it left out).
        #[arg(long)]
        only: Vec<String>,
    },
    /// The bridge under load and through a RabbitMQ restart (`rabbitmqctl
    /// stop_app/start_app`: disturbs everyone using the broker).
    Faults {
        /// Concurrent WebSocket clients in the load check.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Confirmed messages each client publishes.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Run only the checks whose name contains this (`load`, `restart`).
        #[arg(long)]
        only: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Conformance { real, paths } => conformance::main(real, paths),
        Command::Test => test::main(),
        Command::Lessons {
            real,
            verbose,
            paths,
        } => lessons::main(real, verbose, paths),
        Command::Difftest {
            seed,
            programs,
            max_steps,
            jobs,
            restarts,
            shrink_budget,
            no_write,
            show,
            only,
        } => difftest::main(difftest::Opts {
            seed,
            programs,
            max_steps,
            jobs,
            restarts,
            shrink_budget,
            out: (!no_write).then(|| project_root().join("conformance/regressions")),
            show,
            only,
        }),
        Command::BuildWeb => web::main(),
        Command::Bench { quick, ui_only, .. } if ui_only => bench::ui_only(quick),
        Command::Bench {
            quick, wasm_only, ..
        } if wasm_only => bench::wasm_only(quick),
        Command::Bench {
            quick, bridge_only, ..
        } if bridge_only => bench::bridge_only(quick),
        Command::Bench { quick, .. } => bench::main(quick),
        Command::Serve { bind } => serve::main(&bind),
        Command::E2e { no_build, only } => e2e::main(no_build, &only),
        Command::Faults {
            clients,
            messages,
            only,
        } => faults::main(clients, messages, only),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn project_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}
