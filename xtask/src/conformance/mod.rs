//! `cargo xtask conformance [--real] PATH...`: replays conformance cases.
//!
//! Each case runs against a fresh broker (the simulation, or RabbitMQ through
//! the bridge's relay with `--real`); every step's outcome is normalized as
//! `shared/conformance/record.py` does and compared with the recorded `expect`
//! by JSON equality. Output: `PASS name` / `FAIL name` (with the first differing
//! step) per case, then `N passed, M failed`. With `--real`, a failing case runs
//! once more; when the second run passes, `RETRY name` shows the first run.

pub mod case;
mod driver;
mod normalize;
pub mod real;
pub mod sim;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use sim_core::protocol::{Event, ReplyResult, ServerFrame};

pub use driver::Driver;
use normalize::Aliases;

pub fn main(real: bool, paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let paths = if paths.is_empty() {
        default_paths()
    } else {
        paths
    };
    let files = case::collect(&paths)?;
    let mut driver: Box<dyn Driver> = if real {
        real::driver()?
    } else {
        Box::new(sim::SimDriver::new())
    };
    let (mut passed, mut failed, mut retried) = (0usize, 0usize, 0usize);
    for file in files {
        let case = match case::load(&file) {
            Ok(c) => c,
            Err(e) => {
                failed += 1;
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                println!("FAIL {stem}\n   broken case file: {e:#}");
                continue;
            }
        };
        let mut outcome = run_case(driver.as_mut(), &case);
        if real && !matches!(outcome, Ok(None)) {
            // RabbitMQ's queues are processes of their own: on a loaded machine a
            // case can meet a race its recording did not. A real difference fails
            // twice; one that passes on the second run is printed, not hidden.
            let first = match &outcome {
                Ok(Some(diff)) => diff.clone(),
                Err(e) => format!("   error: {e:#}"),
                Ok(None) => String::new(),
            };
            outcome = run_case(driver.as_mut(), &case);
            if matches!(outcome, Ok(None)) {
                retried += 1;
                println!(
                    "RETRY {} passed on a second run; the first run:\n{first}",
                    case.name
                );
            }
        }
        match outcome {
            Ok(None) => {
                passed += 1;
                println!("PASS {}", case.name);
            }
            Ok(Some(diff)) => {
                failed += 1;
                println!("FAIL {}\n{diff}", case.name);
            }
            Err(e) => {
                failed += 1;
                println!(
                    "FAIL {}\n   error in {}: {e:#}",
                    case.name,
                    case.file.display()
                );
            }
        }
    }
    if retried > 0 {
        println!("RETRY: {retried} case(s) passed only on a second run (above)");
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn default_paths() -> Vec<PathBuf> {
    let root = crate::project_root();
    let mut v = vec![root.join("../shared/conformance/cases")];
    for own in ["conformance/cases", "conformance/regressions"] {
        let dir = root.join(own);
        if dir.is_dir() {
            v.push(dir);
        }
    }
    v
}

/// What one case run observed so far: the state that turns a step's frames
/// into its normalized outcome. The difftest drives it step by step.
#[derive(Clone)]
pub struct Stepper {
    aliases: Aliases,
    /// Deliveries (and broker cancels) per consumer tag, not yet reported.
    buffers: BTreeMap<String, Vec<Value>>,
    next_id: u64,
}

impl Default for Stepper {
    fn default() -> Self {
        Stepper::new()
    }
}

impl Stepper {
    pub fn new() -> Stepper {
        Stepper {
            aliases: Aliases::default(),
            buffers: BTreeMap::new(),
            next_id: 0,
        }
    }

    fn absorb(&mut self, frames: &[ServerFrame]) {
        for f in frames {
            match &f.event {
                Event::Deliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange,
                    routing_key,
                    message,
                    ..
                } => {
                    let mut m = self
                        .aliases
                        .message(exchange, routing_key, *redelivered, message);
                    m.insert("delivery_tag".into(), json!(delivery_tag));
                    self.buffers
                        .entry(consumer_tag.to_string())
                        .or_default()
                        .push(Value::Object(m));
                }
                Event::ConsumerCancelled { consumer_tag, .. } => {
                    self.buffers
                        .entry(consumer_tag.clone())
                        .or_default()
                        .push(json!({"cancelled_by_broker": true}));
                }
                _ => {}
            }
        }
    }

    /// Step arguments with `$qN` aliases replaced by the generated names.
    pub fn resolve(&self, v: &Value) -> Value {
        self.aliases.resolve(v)
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Runs one case step (its `expect` ignored) and returns its normalized
    /// outcome and every frame it produced.
    pub fn step(
        &mut self,
        driver: &mut dyn Driver,
        raw: &serde_json::Map<String, Value>,
    ) -> anyhow::Result<(Value, Vec<ServerFrame>)> {
        let step: serde_json::Map<String, Value> = raw
            .iter()
            .filter(|(k, _)| k.as_str() != "expect")
            .map(|(k, v)| (k.clone(), self.aliases.resolve(v)))
            .collect();
        let op = step.get("op").and_then(Value::as_str).unwrap_or("");
        let mut all = Vec::new();
        let got = match op {
            "wait" => {
                let ms = step.get("ms").and_then(Value::as_u64).unwrap_or(0);
                all = driver.wait(ms)?;
                self.absorb(&all);
                Value::Null
            }
            "deliveries" => {
                all = driver.settle()?;
                self.absorb(&all);
                let tag = step
                    .get("consumer_tag")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Value::Array(self.buffers.remove(tag).unwrap_or_default())
            }
            "connection_close_reopen" => {
                let mut out = Value::Null;
                for which in ["connection_close", "connection_open"] {
                    let mut s = step.clone();
                    s.insert("op".into(), Value::String(which.into()));
                    let id = self.id();
                    let req = case::to_request(&s, id)?;
                    let frames = driver.request(req)?;
                    self.absorb(&frames);
                    let failed = reply(&frames, id).and_then(|r| match r {
                        ReplyResult::Error(e) => Some(normalize::error(e)),
                        ReplyResult::Ok(_) => None,
                    });
                    all.extend(frames);
                    if let Some(e) = failed {
                        out = e;
                        break;
                    }
                }
                out
            }
            _ => {
                let id = self.id();
                let req = case::to_request(&step, id)?;
                let requested_queue = step
                    .get("queue")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                all = driver.request(req)?;
                self.absorb(&all);
                normalize::outcome(&mut self.aliases, op, &requested_queue, id, &all)
            }
        };
        Ok((got, all))
    }
}

/// Runs a case; `Some(report)` describes the first step whose outcome differs.
fn run_case(driver: &mut dyn Driver, case: &case::Case) -> anyhow::Result<Option<String>> {
    let (queues, exchanges) = case.declared_names();
    driver.begin_case(&queues, &exchanges)?;
    let result = run_steps(driver, case);
    let end = driver.end_case(&queues, &exchanges);
    let r = result?;
    end?;
    Ok(r)
}

fn run_steps(driver: &mut dyn Driver, case: &case::Case) -> anyhow::Result<Option<String>> {
    let mut run = Stepper::new();
    for (i, raw) in case.steps.iter().enumerate() {
        let (got, _) = run.step(driver, raw)?;
        let expected = raw.get("expect").cloned().unwrap_or(Value::Null);
        if got != expected {
            let op = raw.get("op").and_then(Value::as_str).unwrap_or("");
            return Ok(Some(format!(
                "   step {i} {op}\n      expected {}\n      got      {}",
                expected, got
            )));
        }
    }
    Ok(None)
}

fn reply(frames: &[ServerFrame], id: u64) -> Option<&ReplyResult> {
    frames.iter().rev().find_map(|f| match &f.event {
        Event::Reply { id: rid, result } if *rid == id => Some(result),
        _ => None,
    })
}
