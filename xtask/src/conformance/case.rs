//! Conformance case files: loading, validation, and turning steps into requests.
//!
//! A broken file is reported with the file name and the JSON path of the first
//! problem, and is never half-run: every step is checked before the case starts.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};
use sim_core::protocol::Request;

pub struct Case {
    pub file: PathBuf,
    pub name: String,
    pub steps: Vec<Map<String, Value>>,
}

impl Case {
    /// Queue and exchange names the case declares (for a real broker's cleanup),
    /// as record.py collects them.
    pub fn declared_names(&self) -> (Vec<String>, Vec<String>) {
        let mut queues = Vec::new();
        let mut exchanges = Vec::new();
        for s in &self.steps {
            let op = s.get("op").and_then(Value::as_str).unwrap_or("");
            if op == "queue_declare" {
                if let Some(q) = s.get("queue").and_then(Value::as_str) {
                    if !q.is_empty() && !q.starts_with('$') && !queues.iter().any(|x| x == q) {
                        queues.push(q.to_string());
                    }
                }
            }
            if op == "exchange_declare" {
                if let Some(x) = s.get("exchange").and_then(Value::as_str) {
                    if !x.is_empty() && !x.starts_with("amq.") && !exchanges.iter().any(|e| e == x)
                    {
                        exchanges.push(x.to_string());
                    }
                }
            }
        }
        queues.sort();
        exchanges.sort();
        (queues, exchanges)
    }
}

/// Every `*.json` under the given files and folders, folders in name order.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(files)
}

pub fn load(file: &Path) -> anyhow::Result<Case> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: $: invalid JSON: {e}", file.display()))?;
    let at = |path: &str, what: String| anyhow!("{}: {path}: {what}", file.display());
    let Value::Object(obj) = doc else {
        return Err(at("$", "a case must be a JSON object".into()));
    };
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match obj.get("name") {
        None => stem,
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(at("$.name", "must be a string".into())),
    };
    let Some(Value::Array(steps)) = obj.get("steps") else {
        return Err(at("$.steps", "missing or not an array".into()));
    };
    let mut out = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let path = format!("$.steps[{i}]");
        let Value::Object(step) = s else {
            return Err(at(&path, "a step must be an object".into()));
        };
        let op = match step.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(_) => return Err(at(&format!("{path}.op"), "must be a string".into())),
            None => return Err(at(&format!("{path}.op"), "missing".into())),
        };
        match op {
            "wait" => {
                if !step.get("ms").is_some_and(Value::is_u64) {
                    return Err(at(
                        &format!("{path}.ms"),
                        "missing or not a non-negative integer".into(),
                    ));
                }
            }
            "deliveries" => {
                if !step.get("consumer_tag").is_some_and(Value::is_string) {
                    return Err(at(
                        &format!("{path}.consumer_tag"),
                        "missing or not a string".into(),
                    ));
                }
            }
            "connection_close_reopen" => {
                to_request(step, 0).map_err(|e| at(&path, e.to_string()))?;
            }
            _ => {
                to_request(step, 0).map_err(|e| at(&path, e.to_string()))?;
            }
        }
        out.push(step.clone());
    }
    Ok(Case {
        file: file.to_path_buf(),
        name,
        steps: out,
    })
}

/// The request a (resolved) step stands for; `expect` and unknown fields are
/// ignored.
pub fn to_request(step: &Map<String, Value>, id: u64) -> anyhow::Result<Request> {
    let mut m = step.clone();
    m.remove("expect");
    if m.get("op").and_then(Value::as_str) == Some("connection_close_reopen") {
        m.insert("op".into(), Value::String("connection_close".into()));
    }
    m.insert("id".into(), Value::from(id));
    let req: Request = serde_path(Value::Object(m))?;
    Ok(req)
}

fn serde_path(v: Value) -> anyhow::Result<Request> {
    serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("unknown variant") {
            anyhow!("unknown op: {msg}")
        } else {
            anyhow!("{msg}")
        }
    })
}
