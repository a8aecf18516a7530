//! `cargo xtask test`: everything CI checks, in one command.
//!
//! The order is cheap-to-expensive so a mistake shows up early, but every stage
//! runs even when an earlier one failed (except where it cannot: nothing runs
//! without its prerequisites), so one CI run reports everything that is wrong.
//! A missing prerequisite is a loud failure with the command that fixes it —
//! never a silent skip.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Counts gathered from the stages' own closing lines.
#[derive(Default, Debug, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Reads a runner's closing line: cargo test's `test result: ok. 5 passed; 0 failed; ...`
    /// or the plain `N passed, M failed` our own runners print (optionally after a word and a colon).
    fn absorb(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result: ") {
            // "ok. 5 passed; 0 failed; 0 ignored; ..."
            let rest = rest.split_once(". ").map(|(_, r)| r).unwrap_or(rest);
            let mut parts = rest.split("; ");
            if let (Some(p), Some(f)) = (parts.next(), parts.next()) {
                if let (Some(p), Some(f)) = (count(p, "passed"), count(f, "failed")) {
                    self.passed += p;
                    self.failed += f;
                }
            }
            return;
        }
        let body = match line.split_once(": ") {
            Some((word, rest)) if !word.contains(' ') => rest,
            _ => line,
        };
        if let Some((p, f)) = body.split_once(", ") {
            if let (Some(p), Some(f)) = (count(p, "passed"), count(f, "failed")) {
                self.passed += p;
                self.failed += f;
            }
        }
    }
}

fn count(text: &str, word: &str) -> Option<u64> {
    let (n, w) = text.trim().split_once(' ')?;
    if w.trim() == word {
        n.parse().ok()
    } else {
        None
    }
}

struct Stage {
    name: &'static str,
    program: &'static str,
    args: Vec<String>,
}

fn stage(name: &'static str, program: &'static str, args: &[&str]) -> Stage {
    Stage {
        name,
        program,
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

pub fn main() -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    preflight(&root)?;

    let cargo = "cargo";
    let stages = vec![
        stage("format", cargo, &["fmt", "--all", "--", "--check"]),
        stage(
            "clippy (native crates)",
            cargo,
            &["clippy", "--all-targets", "--", "-D", "warnings"],
        ),
        stage(
            "clippy (web, wasm32)",
            cargo,
            &[
                "clippy",
                "-p",
                "web",
                "--target",
                "wasm32-unknown-unknown",
                "--",
                "-D",
                "warnings",
            ],
        ),
        stage("unit, property and real-broker tests", cargo, &["test"]),
        stage("conformance (simulation)", cargo, &["xtask", "conformance"]),
        stage(
            "conformance (real RabbitMQ)",
            cargo,
            &["xtask", "conformance", "--real"],
        ),
        stage("lessons (simulation)", cargo, &["xtask", "lessons"]),
        stage(
            "lessons (real RabbitMQ)",
            cargo,
            &["xtask", "lessons", "--real"],
        ),
        stage("browser end-to-end", cargo, &["xtask", "e2e"]),
        // Random programs, sim vs RabbitMQ: a fixed seed, so a failure here is
        // reproducible with the command it prints. Its two restart programs
        // stop the broker, so it runs after everything but the faults.
        stage(
            "differential (random programs, sim vs RabbitMQ)",
            cargo,
            &[
                "xtask",
                "difftest",
                "--seed",
                "11",
                "--programs",
                "400",
                "--restarts",
                "2",
                "--shrink-budget",
                "60",
                "--no-write",
            ],
        ),
        // Last: it restarts RabbitMQ. The load check at 100 clients x 200
        // confirmed messages (`cargo xtask faults` runs the full 100 x 1,000).
        stage(
            "faults (load, broker restart)",
            cargo,
            &["xtask", "faults", "--messages", "200"],
        ),
    ];

    let mut tally = Tally::default();
    let mut failed_stages = Vec::new();
    for st in &stages {
        let started = Instant::now();
        println!("\n==> {}: {} {}", st.name, st.program, st.args.join(" "));
        let ok =
            run_stage(&root, st, &mut tally).with_context(|| format!("stage `{}`", st.name))?;
        let secs = started.elapsed().as_secs_f64();
        if ok {
            println!("==> {}: ok ({secs:.0} s)", st.name);
        } else {
            println!("==> {}: FAILED ({secs:.0} s)", st.name);
            failed_stages.push(st.name);
        }
    }

    println!();
    if failed_stages.is_empty() {
        println!("all {} stages passed", stages.len());
    } else {
        println!("failed stages: {}", failed_stages.join(", "));
        // A stage can fail before its runner prints a count (a build error):
        // count each failed stage at least once so the total cannot read as green.
        tally.failed = tally.failed.max(failed_stages.len() as u64);
    }
    println!("xtask: {} passed, {} failed", tally.passed, tally.failed);
    Ok(if failed_stages.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one stage, echoing its stdout while reading the runners' closing lines.
fn run_stage(root: &Path, st: &Stage, tally: &mut Tally) -> anyhow::Result<bool> {
    let mut child = Command::new(st.program)
        .args(&st.args)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{}`", st.program))?;
    let mut stage_tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading stage output")?;
            println!("{line}");
            stage_tally.absorb(&line);
        }
    }
    let status = child.wait().context("waiting for stage")?;
    tally.passed += stage_tally.passed;
    tally.failed += stage_tally.failed;
    Ok(status.success())
}

/// Everything the stages need, checked up front with the fix for each.
fn preflight(root: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    if !wasm_target_installed() {
        missing.push(
            "the wasm32-unknown-unknown target: run `rustup target add wasm32-unknown-unknown`"
                .to_string(),
        );
    }
    for (bin, package) in [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ] {
        if !Path::new(bin).exists() {
            missing.push(format!(
                "{bin}: run `apt-get install {package}` (or `bash .ci/run`, which installs it)"
            ));
        }
    }
    if !rabbitmq_answers() {
        missing.push(
            "RabbitMQ on 127.0.0.1:5672: start it with `rabbitmq-server -detached && rabbitmqctl await_startup` (or `bash .ci/run`)"
                .to_string(),
        );
    }
    let cases = root.join("../shared/conformance/cases");
    if !cases.is_dir() {
        missing.push(format!(
            "the conformance corpus at {}: the project expects shared/ beside its checkout",
            cases.display()
        ));
    }
    if missing.is_empty() {
        return Ok(());
    }
    for m in &missing {
        eprintln!("xtask test: missing prerequisite: {m}");
    }
    bail!(
        "{} prerequisite(s) missing; nothing was run (tests are never skipped silently)",
        missing.len()
    )
}

fn wasm_target_installed() -> bool {
    Command::new("rustc")
        .args([
            "--print",
            "target-libdir",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map(|dir| Path::new(&dir).is_dir())
        .unwrap_or(false)
}

fn rabbitmq_answers() -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], 5672));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_test_summary() {
        let mut t = Tally::default();
        t.absorb("test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        t.absorb("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out");
        assert_eq!(
            t,
            Tally {
                passed: 8,
                failed: 2
            }
        );
    }

    #[test]
    fn reads_plain_summary_with_optional_word() {
        let mut t = Tally::default();
        t.absorb("41 passed, 0 failed");
        t.absorb("e2e: 2 passed, 1 failed");
        t.absorb("this line passed, but it is prose");
        assert_eq!(
            t,
            Tally {
                passed: 43,
                failed: 1
            }
        );
    }
}
