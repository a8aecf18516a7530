//! Shrinking a differing program to a small one that still differs.
//!
//! Delta debugging over steps (drop chunks, halving their size down to single
//! steps), then simplification of what is left (drop a property, an argument,
//! a flag). Every candidate is legalized first (the timing rules still hold),
//! and it is kept only if the simulation and the real broker still disagree
//! in the same way (same op at the first differing step, same kind of
//! outcome), so the shrunk program shows the original difference and not a
//! new one the cuts created.

use serde_json::Value;

use super::tracker::{legalize, Step};
use super::{first_difference, signature, Outcomes};

/// What the shrinker needs: the outcomes of a program on each side.
pub trait Oracle {
    fn sim(&mut self, program: &[Step]) -> anyhow::Result<Outcomes>;
    fn real(&mut self, program: &[Step]) -> anyhow::Result<Outcomes>;
}

pub struct Shrunk {
    pub program: Vec<Step>,
    pub real_runs: usize,
}

/// Shrinks `program` (whose difference has signature `sig`) with at most
/// `budget` real-broker runs.
pub fn shrink(
    oracle: &mut dyn Oracle,
    program: Vec<Step>,
    sig: &str,
    budget: usize,
) -> anyhow::Result<Shrunk> {
    let mut best = program;
    let mut runs = 0usize;
    let mut still_differs = |cand: &[Step], runs: &mut usize| -> anyhow::Result<bool> {
        let sim = oracle.sim(cand)?;
        *runs += 1;
        let real = oracle.real(cand)?;
        Ok(first_difference(&sim, &real).is_some_and(|i| signature(cand, i, &sim, &real) == sig))
    };

    // 1. Drop chunks of steps.
    let mut chunk = (best.len() / 2).max(1);
    while chunk >= 1 && runs < budget {
        let mut i = 0;
        let mut progressed = false;
        while i < best.len() && runs < budget {
            let mut cand: Vec<Step> = best[..i].to_vec();
            cand.extend_from_slice(&best[(i + chunk).min(best.len())..]);
            let cand = legalize(&cand)?;
            if cand.len() < best.len() && still_differs(&cand, &mut runs)? {
                best = cand;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if !progressed {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }

    // 2. Simplify the steps that are left.
    let mut i = 0;
    while i < best.len() && runs < budget {
        let mut improved = false;
        for cand_step in simpler(&best[i]) {
            if runs >= budget {
                break;
            }
            let mut cand = best.clone();
            cand[i] = cand_step;
            let cand = legalize(&cand)?;
            if still_differs(&cand, &mut runs)? {
                best = cand;
                improved = true;
                break;
            }
        }
        if !improved {
            i += 1;
        }
    }
    Ok(Shrunk {
        program: best,
        real_runs: runs,
    })
}

/// Simpler variants of one step: each drops one thing.
fn simpler(step: &Step) -> Vec<Step> {
    let mut out = Vec::new();
    for key in ["properties", "arguments"] {
        if let Some(Value::Object(m)) = step.get(key) {
            if m.is_empty() {
                continue;
            }
            let mut s = step.clone();
            s.remove(key);
            out.push(s);
            for k in m.keys() {
                let mut s = step.clone();
                if let Some(Value::Object(inner)) = s.get_mut(key) {
                    inner.remove(k);
                }
                out.push(s);
            }
        }
    }
    for (k, v) in step {
        if v == &Value::Bool(true) && k != "requeue" {
            let mut s = step.clone();
            s.remove(k);
            out.push(s);
        }
    }
    if let Some(Value::Number(ms)) = step.get("ms") {
        if ms.as_u64().is_some_and(|m| m > 100) {
            let mut s = step.clone();
            s.insert("ms".into(), Value::from(100));
            out.push(s);
        }
    }
    out
}
