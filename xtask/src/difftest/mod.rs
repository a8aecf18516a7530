//! `cargo xtask difftest`: random broker programs, run on the simulation and
//! on the real RabbitMQ; every difference is a sim bug until proven otherwise.
//!
//! The hand-written conformance cases cover what someone thought of. Here the
//! machine writes the cases: [`gen`] makes seeded programs in the conformance
//! format (its [`tracker`] keeps them within the format's timing rules, so the
//! real outcome is reproducible), each runs on `sim_core` and, through the
//! bridge's relay code, on the broker at `AMQP_URL` (many programs at once:
//! each relay session is its own namespace). A differing program is shrunk
//! ([`shrink`]), re-run three times on the real broker to rule out
//! nondeterminism, printed, and written to `conformance/regressions/` with the
//! real broker's outcomes as `expect`, where `cargo xtask conformance` keeps
//! checking it in both modes.
//!
//! Programs that restart the broker run after the others, one at a time.

mod gen;
mod shrink;
mod tracker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use crate::conformance::sim::SimDriver;
use crate::conformance::{real, Driver, Stepper};
use shrink::Oracle;
use tracker::Step;

/// Each step's normalized outcome.
pub type Outcomes = Vec<Value>;

#[derive(Clone, Debug)]
pub struct Opts {
    pub seed: u64,
    pub programs: usize,
    pub max_steps: usize,
    /// Programs run against the real broker at once.
    pub jobs: usize,
    /// Also generate `broker_restart` steps (those programs run alone, last).
    pub restarts: usize,
    /// Real-broker runs the shrinker may spend per difference.
    pub shrink_budget: usize,
    /// Where shrunk differences are written (None: do not write).
    pub out: Option<PathBuf>,
    /// Print the programs instead of running them (no broker needed).
    pub show: bool,
    /// Run only this program of the seed (by index), to reproduce one.
    pub only: Option<usize>,
}

/// The seed of program `i` of a run with `seed`.
fn program_seed(seed: u64, i: usize) -> u64 {
    let mut r = sim_core::SplitMix64::new(seed ^ ((i as u64) << 32 | i as u64));
    r.next_u64()
}

pub fn main(opts: Opts) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let plain = gen::Options { restarts: false };
    let with_restart = gen::Options { restarts: true };
    // Program list: (label, steps). Restart programs get their own seeds.
    let mut programs: Vec<(String, Vec<Step>)> = Vec::with_capacity(opts.programs);
    let indices: Vec<usize> = match opts.only {
        Some(i) => vec![i],
        None => (0..opts.programs).collect(),
    };
    for i in indices {
        let s = program_seed(opts.seed, i);
        programs.push((
            format!("s{}-p{i}", opts.seed),
            gen::program(s, opts.max_steps, plain)?,
        ));
    }
    let mut restart_programs = Vec::new();
    for i in 0..opts.restarts {
        let s = program_seed(opts.seed ^ 0x7e57a27, i);
        let p = gen::program(s, opts.max_steps, with_restart)?;
        restart_programs.push((format!("s{}-r{i}", opts.seed), p));
    }
    if opts.show {
        for (label, p) in programs.iter().chain(&restart_programs) {
            println!("{label}: {}", serde_json::to_string_pretty(&p)?);
        }
        println!(
            "{}",
            coverage_line(programs.iter().chain(&restart_programs))
        );
        return Ok(ExitCode::SUCCESS);
    }
    let gen_secs = started.elapsed().as_secs_f64();
    println!(
        "difftest: seed {}, {} programs (+{} with broker restarts) of up to {} steps, generated in {gen_secs:.1} s",
        opts.seed,
        programs.len(),
        restart_programs.len(),
        opts.max_steps
    );
    println!(
        "{}",
        coverage_line(programs.iter().chain(&restart_programs))
    );

    let sims: Vec<Outcomes> = programs
        .iter()
        .chain(&restart_programs)
        .map(|(_, p)| run_sim(p))
        .collect::<anyhow::Result<_>>()?;

    println!(
        "{}",
        error_line(programs.iter().chain(&restart_programs), &sims)
    );

    let results = run_real_parallel(&programs, opts.jobs)?;
    let mut all_results = results;
    for (label, p) in &restart_programs {
        let mut d = real::driver()?;
        all_results.push(run_program(d.as_mut(), p).with_context(|| label.clone()));
    }
    let everything: Vec<&(String, Vec<Step>)> = programs.iter().chain(&restart_programs).collect();

    // A program that differed (or failed to run) is run twice more: the
    // broker is shared, and a one-off (someone restarted it, the machine
    // stalled) must not pass for a sim bug, nor a sim bug for a one-off.
    let suspects: Vec<usize> = (0..everything.len())
        .filter(|&i| match &all_results[i] {
            Ok(real) => first_difference(&sims[i], real).is_some(),
            Err(_) => true,
        })
        .collect();
    let mut reruns: BTreeMap<usize, Vec<anyhow::Result<Outcomes>>> = BTreeMap::new();
    if !suspects.is_empty() {
        println!(
            "difftest: {} program(s) differed or failed; running each twice more",
            suspects.len()
        );
        let (parallel, serial): (Vec<usize>, Vec<usize>) =
            suspects.iter().partition(|&&i| i < programs.len());
        for _ in 0..2 {
            let subset: Vec<(String, Vec<Step>)> =
                parallel.iter().map(|&i| everything[i].clone()).collect();
            let got = run_real_parallel(&subset, opts.jobs)?;
            for (&i, r) in parallel.iter().zip(got) {
                reruns.entry(i).or_default().push(r);
            }
            for &i in &serial {
                let mut d = real::driver()?;
                let r = run_program(d.as_mut(), &everything[i].1);
                reruns.entry(i).or_default().push(r);
            }
        }
    }
    let real_secs = started.elapsed().as_secs_f64() - gen_secs;

    // Differences, grouped by signature.
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut errors = 0;
    let mut transient = 0;
    for &i in &suspects {
        let label = &everything[i].0;
        let runs: Vec<&anyhow::Result<Outcomes>> = std::iter::once(&all_results[i])
            .chain(reruns.get(&i).into_iter().flatten())
            .collect();
        let ok: Vec<&Outcomes> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
        let first = match &all_results[i] {
            Ok(real) => first_difference(&sims[i], real)
                .map(|at| signature(&everything[i].1, at, &sims[i], real))
                .unwrap_or_default(),
            Err(e) => format!("runner error: {e:#}"),
        };
        if ok.len() == runs.len() && ok.windows(2).all(|w| w[0] == w[1]) {
            // The broker answered the same three times: a real difference.
            groups.entry(first).or_default().push(i);
        } else if runs[1..].iter().all(|r| {
            r.as_ref()
                .is_ok_and(|real| first_difference(&sims[i], real).is_none())
        }) {
            transient += 1;
            println!("TRANSIENT {label}: once {first}; agreed with the simulation on both re-runs");
        } else {
            errors += 1;
            println!("NONDETERMINISTIC {label}: {first}; the broker's three runs disagree");
            for r in &runs {
                if let Err(e) = r {
                    println!("   error: {e:#}");
                }
            }
            if let Some(at) = ok.windows(2).find_map(|w| first_difference(w[0], w[1])) {
                let op = everything[i]
                    .1
                    .get(at)
                    .map(|s| Value::Object(s.clone()).to_string())
                    .unwrap_or_default();
                println!("   the runs part at step {at}: {op}");
                println!(
                    "   sim: {}",
                    sims[i].get(at).map(Value::to_string).unwrap_or_default()
                );
                for (n, real) in ok.iter().enumerate() {
                    let got = real.get(at).map(Value::to_string).unwrap_or_default();
                    println!("   real run {}: {got}", n + 1);
                }
            }
        }
    }
    let differing: usize = groups.values().map(Vec::len).sum();
    println!(
        "difftest: {} programs ran on both sides in {real_secs:.0} s ({} jobs): {} agree ({transient} after a transient difference), {differing} differ in {} ways, {errors} nondeterministic or failing",
        everything.len(),
        opts.jobs,
        everything.len() - differing - errors,
        groups.len()
    );

    for (sig, members) in &groups {
        let labels: Vec<&str> = members.iter().map(|&i| everything[i].0.as_str()).collect();
        println!("DIFFERS {sig}: {}", labels.join(" "));
    }
    let mut written = Vec::new();
    for (sig, members) in &groups {
        // Shrink the shortest member of each group.
        let Some(&first) = members.iter().min_by_key(|&&i| everything[i].1.len()) else {
            continue;
        };
        let (label, program) = everything[first];
        println!(
            "\nDIFF {sig}\n   {} program(s), e.g. {label}",
            members.len()
        );
        let mut oracle = RealOracle {
            driver: real::driver()?,
        };
        let shrunk = shrink::shrink(&mut oracle, program.clone(), sig, opts.shrink_budget)?;
        let program = shrunk.program;
        let sim = run_sim(&program)?;
        let mut reals = Vec::new();
        for _ in 0..3 {
            reals.push(oracle.real(&program)?);
        }
        let stable = reals.windows(2).all(|w| w[0] == w[1]);
        let real = &reals[0];
        let at = first_difference(&sim, real);
        println!(
            "   shrunk to {} steps with {} real runs; real broker {} over 3 runs",
            program.len(),
            shrunk.real_runs,
            if stable {
                "identical"
            } else {
                "NOT identical (nondeterministic: not written)"
            }
        );
        print_program(&program, &sim, real, at);
        if let (true, Some(dir)) = (stable && at.is_some(), &opts.out) {
            let path = write_case(dir, label, sig, opts.seed, &program, real)?;
            println!("   written to {}", path.display());
            written.push(path);
        }
    }
    println!(
        "\nseed {}, {} programs, {} regression case(s) written, total {:.0} s",
        opts.seed,
        everything.len(),
        written.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "difftest: {} passed, {} failed",
        everything.len() - differing - errors,
        differing + errors,
    );
    if differing + errors > 0 {
        println!(
            "   reproduce: cargo xtask difftest --seed {} --programs {} --max-steps {} --restarts {}",
            opts.seed, opts.programs, opts.max_steps, opts.restarts
        );
    }
    Ok(if differing + errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Which ops the programs use, and how often: the generator must cover every
/// op of the case format.
fn coverage_line<'a>(programs: impl Iterator<Item = &'a (String, Vec<Step>)>) -> String {
    let mut count: BTreeMap<String, usize> = OPS.iter().map(|o| (o.to_string(), 0)).collect();
    let mut steps = 0usize;
    for (_, p) in programs {
        for s in p {
            steps += 1;
            let op = s.get("op").and_then(Value::as_str).unwrap_or("?");
            *count.entry(op.to_string()).or_default() += 1;
        }
    }
    let missing: Vec<&str> = count
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(o, _)| o.as_str())
        .collect();
    let list: Vec<String> = count.iter().map(|(o, n)| format!("{o} {n}")).collect();
    format!(
        "coverage: {steps} steps: {}{}",
        list.join(", "),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (never used: {})", missing.join(", "))
        }
    )
}

/// Which ops ended in an error (on the simulation), per op: errors on purpose
/// are part of the mix, but a channel closed by one costs a `channel_open`.
fn error_line<'a>(
    programs: impl Iterator<Item = &'a (String, Vec<Step>)>,
    sims: &[Outcomes],
) -> String {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0usize;
    for ((_, p), outcomes) in programs.zip(sims) {
        for (s, o) in p.iter().zip(outcomes) {
            if let Some(e) = o.get("error") {
                total += 1;
                let op = s.get("op").and_then(Value::as_str).unwrap_or("?");
                let code = e.get("code").map(Value::to_string).unwrap_or_default();
                *count.entry(format!("{op} {code}")).or_default() += 1;
            }
        }
    }
    let mut list: Vec<(String, usize)> = count.into_iter().collect();
    list.sort_by_key(|x| std::cmp::Reverse(x.1));
    let top: Vec<String> = list.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    format!("errors on purpose: {total} ({})", top.join(", "))
}

/// Every op of the conformance case format.
pub const OPS: &[&str] = &[
    "connection_open",
    "connection_close",
    "connection_close_reopen",
    "channel_open",
    "channel_close",
    "broker_restart",
    "wait",
    "exchange_declare",
    "exchange_delete",
    "exchange_bind",
    "exchange_unbind",
    "queue_declare",
    "queue_bind",
    "queue_unbind",
    "queue_purge",
    "queue_delete",
    "confirm_select",
    "publish",
    "get",
    "basic_qos",
    "consume",
    "cancel",
    "deliveries",
    "ack",
    "nack",
    "reject",
    "recover",
];

/// Runs a program on a fresh driver case, every step, and returns its outcomes.
fn run_program(driver: &mut dyn Driver, program: &[Step]) -> anyhow::Result<Outcomes> {
    driver.begin_case(&[], &[])?;
    let mut stepper = Stepper::new();
    let mut out = Vec::with_capacity(program.len());
    let mut result = Ok(());
    for s in program {
        match stepper.step(driver, s) {
            Ok((v, _)) => out.push(v),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let end = driver.end_case(&[], &[]);
    result?;
    end?;
    Ok(out)
}

fn run_sim(program: &[Step]) -> anyhow::Result<Outcomes> {
    let mut d = SimDriver::new();
    run_program(&mut d, program)
}

/// Runs `programs` on the real broker, `jobs` at a time (each job its own
/// relay session and namespace).
fn run_real_parallel(
    programs: &[(String, Vec<Step>)],
    jobs: usize,
) -> anyhow::Result<Vec<anyhow::Result<Outcomes>>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<Outcomes>>>> =
        Mutex::new((0..programs.len()).map(|_| None).collect());
    let started = Instant::now();
    let total = programs.len();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut handles = Vec::new();
        for _ in 0..jobs.max(1).min(total.max(1)) {
            handles.push(scope.spawn(|| -> anyhow::Result<()> {
                let mut driver = real::driver()?;
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return Ok(());
                    }
                    let r = run_program(driver.as_mut(), &programs[i].1)
                        .with_context(|| programs[i].0.clone());
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if n.is_multiple_of(500) || n == total {
                        eprintln!(
                            "difftest: {n}/{total} programs on the real broker ({:.0} s)",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a difftest worker panicked"))??;
        }
        Ok(())
    })?;
    let v = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a difftest worker panicked"))?;
    Ok(v.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("not run"))))
        .collect())
}

/// The first step whose outcomes differ (or where one side stopped).
pub fn first_difference(sim: &Outcomes, real: &Outcomes) -> Option<usize> {
    let n = sim.len().min(real.len());
    (0..n)
        .find(|&i| sim[i] != real[i])
        .or((sim.len() != real.len()).then_some(n))
}

/// A coarse description of a difference, to group programs that show the same
/// bug and to check that a shrunk program still shows it.
pub fn signature(program: &[Step], at: usize, sim: &Outcomes, real: &Outcomes) -> String {
    let op = program
        .get(at)
        .and_then(|s| s.get("op"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!(
        "{op}: sim {} / real {}",
        shape(sim.get(at)),
        shape(real.get(at))
    )
}

fn shape(v: Option<&Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(Value::Null) => "null".into(),
        Some(Value::Array(a)) => format!("{} deliveries", a.len()),
        Some(Value::Object(m)) => {
            if let Some(e) = m.get("error") {
                format!(
                    "error {}",
                    e.get("code").map(Value::to_string).unwrap_or_default()
                )
            } else {
                let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                format!("{{{}}}", keys.join(","))
            }
        }
        Some(other) => other.to_string(),
    }
}

struct RealOracle {
    driver: Box<dyn Driver>,
}

impl shrink::Oracle for RealOracle {
    fn sim(&mut self, program: &[Step]) -> anyhow::Result<Outcomes> {
        run_sim(program)
    }
    fn real(&mut self, program: &[Step]) -> anyhow::Result<Outcomes> {
        run_program(self.driver.as_mut(), program)
    }
}

fn print_program(program: &[Step], sim: &Outcomes, real: &Outcomes, at: Option<usize>) {
    for (i, s) in program.iter().enumerate() {
        let mark = if Some(i) == at { ">>" } else { "  " };
        println!("   {mark} {i:>2} {}", Value::Object(s.clone()));
        if Some(i) == at {
            println!(
                "         sim  {}",
                sim.get(i).map(Value::to_string).unwrap_or_default()
            );
            println!(
                "         real {}",
                real.get(i).map(Value::to_string).unwrap_or_default()
            );
        }
    }
}

/// Writes the shrunk program as a conformance case with the real outcomes as
/// `expect`, numbered after the folder's last case.
fn write_case(
    dir: &Path,
    label: &str,
    sig: &str,
    seed: u64,
    program: &[Step],
    real: &Outcomes,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let next = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .split('-')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
        })
        .max()
        .unwrap_or(0)
        + 1;
    let name = format!("difftest-{label}");
    let steps: Vec<Value> = program
        .iter()
        .zip(real)
        .map(|(s, e)| {
            let mut s = s.clone();
            s.insert("expect".into(), e.clone());
            Value::Object(s)
        })
        .collect();
    let case = json!({
        "name": name,
        "about": format!("Found by `cargo xtask difftest --seed {seed}` ({label}), shrunk; sim and RabbitMQ disagreed at {sig}. Outcomes recorded from the real broker."),
        "tags": ["difftest", "regression"],
        "steps": steps,
    });
    let path = dir.join(format!("{next:03}-{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&case)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(p: &[Step]) -> Vec<String> {
        p.iter()
            .map(|s| s["op"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn same_seed_same_program_other_seed_other_program() {
        let opts = gen::Options::default();
        let a = gen::program(7, 40, opts).expect("generates");
        let b = gen::program(7, 40, opts).expect("generates");
        let c = gen::program(8, 40, opts).expect("generates");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() <= 40, "{} steps", a.len());
    }

    #[test]
    fn programs_cover_every_op_of_the_case_format() {
        let mut seen: std::collections::BTreeSet<String> = Default::default();
        for i in 0..150 {
            let restarts = gen::Options {
                restarts: i % 10 == 0,
            };
            let p = gen::program(program_seed(99, i), 40, restarts).expect("generates");
            seen.extend(ops(&p));
        }
        let missing: Vec<&&str> = OPS.iter().filter(|o| !seen.contains(**o)).collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }

    #[test]
    fn legalize_waits_after_a_short_ttl_publish_and_drops_a_racing_get() {
        let steps: Vec<Step> = [
            json!({"op": "queue_declare", "queue": "q", "arguments": {"x-message-ttl": 50}}),
            json!({"op": "publish", "routing_key": "q", "body": "m"}),
            json!({"op": "get", "queue": "q", "no_ack": true}),
            json!({"op": "consume", "queue": "q", "consumer_tag": "c"}),
            json!({"op": "get", "queue": "q", "no_ack": true}),
        ]
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap_or_default())
        .collect();
        let out = tracker::legalize(&steps).expect("legalizes");
        // The wait before `consume` lets deliveries in flight arrive (it
        // acts on a whole channel); the second get would race the consumer.
        assert_eq!(
            ops(&out),
            ["queue_declare", "publish", "wait", "get", "wait", "consume"],
            "{out:?}"
        );
        assert_eq!(out[2]["ms"], json!(tracker::TTL_WAIT_MS));
    }

    /// A "real broker" that differs from the simulation only when it sees the
    /// publish of body `m3`: shrinking must keep that publish and little else.
    struct Planted;

    impl shrink::Oracle for Planted {
        fn sim(&mut self, program: &[Step]) -> anyhow::Result<Outcomes> {
            run_sim(program)
        }
        fn real(&mut self, program: &[Step]) -> anyhow::Result<Outcomes> {
            let mut out = run_sim(program)?;
            for (s, o) in program.iter().zip(out.iter_mut()) {
                if s.get("body") == Some(&json!("m3")) {
                    *o = json!("planted");
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn shrinking_keeps_the_difference_and_drops_the_rest() {
        let program = (0..200)
            .map(|i| gen::program(program_seed(5, i), 40, gen::Options::default()))
            .find_map(|p| {
                p.ok()
                    .filter(|p| p.iter().any(|s| s.get("body") == Some(&json!("m3"))))
            })
            .expect("some program publishes m3");
        let sim = run_sim(&program).expect("sim runs");
        let real = Planted.real(&program).expect("runs");
        let at = first_difference(&sim, &real).expect("differs");
        let sig = signature(&program, at, &sim, &real);
        let shrunk = shrink::shrink(&mut Planted, program.clone(), &sig, 500).expect("shrinks");
        assert!(shrunk.program.len() < program.len());
        // At most the declare of the exchange it publishes to stays (without
        // it the publish fails with 404: another difference).
        let kept = ops(&shrunk.program);
        assert_eq!(kept.last().map(String::as_str), Some("publish"), "{kept:?}");
        assert!(kept.len() <= 2, "{:?}", shrunk.program);
        assert!(shrunk.program.iter().all(|s| !s.contains_key("properties")));
    }
}
