//! Scenarios: lessons and experiments as data, and the engine that plays them.
//!
//! A [`Scenario`] (a versioned JSON file, see `docs/scenario-format.md`)
//! describes a topology, simulated producers and consumers, a timeline of
//! scripted actions, lesson steps and checks. A [`ScenarioRun`] plays it
//! against *any* broker, sans-IO: it emits protocol [`Request`]s and consumes
//! [`ServerFrame`]s, so the very same engine drives the in-page simulation
//! ([`run_simulated`] over [`crate::Broker`]) and a real RabbitMQ through the
//! bridge's relay. Time is only what the caller says it is.
//!
//! [`Request`]: crate::protocol::Request
//! [`ServerFrame`]: crate::protocol::ServerFrame

mod builtin;
pub mod format;
mod report;
mod run;
mod sim;
pub mod template;
mod validate;

pub use builtin::{builtin, BUILTIN};
pub use format::*;
pub use report::{CheckResult, ConsumerReport, ProducerReport, QueueReport, Report};
pub use run::{ClientNote, NoteKind, ScenarioRun};
pub use sim::{drive, run_simulated};
pub use validate::{validate, PREDECLARED_EXCHANGES};

use serde::Deserialize;

/// One semantic problem in a scenario, at a JSON path such as `consumers[1].queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a scenario file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Not JSON, or not the shape of a scenario. `path` is the JSON path of the
    /// offending value (`.` for the top level).
    #[error("{path}: {message}")]
    Parse {
        path: String,
        message: String,
        line: usize,
        column: usize,
    },
    #[error(
        "format: unsupported scenario format {found} (this build reads format {FORMAT_VERSION})"
    )]
    UnsupportedFormat { found: String },
    /// Well-formed but inconsistent (unknown names, duplicates, bad numbers).
    #[error("{}", join_issues(.0))]
    Invalid(Vec<Issue>),
}

fn join_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(Issue::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
struct Probe {
    format: Option<serde_json::Value>,
}

/// Parses and validates a scenario file. Never panics on any input.
pub fn parse(json: &str) -> Result<Scenario, ScenarioError> {
    // The version first: a newer file should say so, not fail on a new field.
    if let Ok(Probe { format: Some(v) }) = serde_json::from_str::<Probe>(json) {
        if v.as_u64() != Some(u64::from(FORMAT_VERSION)) {
            return Err(ScenarioError::UnsupportedFormat {
                found: v.to_string(),
            });
        }
    }
    let de = &mut serde_json::Deserializer::from_str(json);
    let sc: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        ScenarioError::Parse {
            path: e.path().to_string(),
            message: strip_location(&inner.to_string()),
            line: inner.line(),
            column: inner.column(),
        }
    })?;
    let issues = validate(&sc);
    if issues.is_empty() {
        Ok(sc)
    } else {
        Err(ScenarioError::Invalid(issues))
    }
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (line {})", &msg[..i], &msg[i + 9..]),
        None => msg.to_string(),
    }
}
