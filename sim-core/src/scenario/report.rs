//! What a run produced, and the evaluation of a scenario's checks against it.

use serde::Serialize;

use super::format::{Check, CheckKind};

/// The outcome of a run (serializable for the page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub scenario: String,
    /// Everything happened and the run ended normally.
    pub completed: bool,
    /// `run.max_ms` passed before the run was over.
    pub timed_out: bool,
    /// Scenario time at the end of the run.
    pub elapsed_ms: u64,
    /// From the first publish to the last successfully processed message.
    pub total_time_ms: Option<u64>,
    /// Timeline publishes from the admin connection.
    pub admin_published: u64,
    pub admin_returned: u64,
    pub consumers: Vec<ConsumerReport>,
    pub producers: Vec<ProducerReport>,
    /// Ready messages per queue at the end (`None`: the queue is gone).
    pub queues: Vec<QueueReport>,
    /// AMQP errors the clients saw, in order.
    pub errors: Vec<String>,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerReport {
    pub name: String,
    pub received: u64,
    pub redelivered: u64,
    pub processed: u64,
    pub distinct_processed: u64,
    pub failed: u64,
    pub gave_up: u64,
    pub replies_sent: u64,
    pub forwarded: u64,
    pub crashes: u64,
    /// Bodies in the order they were received.
    pub bodies: Vec<String>,
    /// Distinct bodies processed successfully, sorted.
    pub processed_bodies: Vec<String>,
    /// correlation_id of each received message that had one.
    pub correlation_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerReport {
    pub name: String,
    pub published: u64,
    pub confirmed_ack: u64,
    pub confirmed_nack: u64,
    pub returned: u64,
    pub correlation_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueReport {
    pub name: String,
    pub ready: Option<u64>,
}

/// One evaluated check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// e.g. `received[worker-1]`, `total_time_ms`.
    pub label: String,
    pub passed: bool,
    /// e.g. `10000 ±5%`, `at least 3`, `["a","b"]`.
    pub expected: String,
    pub got: String,
}

impl Report {
    /// All checks passed and the run completed.
    pub fn passed(&self) -> bool {
        self.completed && self.checks.iter().all(|c| c.passed)
    }

    /// The first failure, as `label: expected X, got Y`.
    pub fn first_failure(&self) -> Option<String> {
        if !self.completed {
            return Some(if self.timed_out {
                format!(
                    "run: did not settle within its max_ms or its request limit (at {} ms)",
                    self.elapsed_ms
                )
            } else {
                "run: not finished".to_string()
            });
        }
        self.checks
            .iter()
            .find(|c| !c.passed)
            .map(|c| format!("{}: expected {}, got {}", c.label, c.expected, c.got))
    }

    fn consumers_named<'a>(
        &'a self,
        name: &'a Option<String>,
    ) -> impl Iterator<Item = &'a ConsumerReport> + 'a {
        self.consumers
            .iter()
            .filter(move |c| name.as_ref().is_none_or(|n| &c.name == n))
    }

    fn producers_named<'a>(
        &'a self,
        name: &'a Option<String>,
    ) -> impl Iterator<Item = &'a ProducerReport> + 'a {
        self.producers
            .iter()
            .filter(move |p| name.as_ref().is_none_or(|n| &p.name == n))
    }
}

fn label(c: &Check) -> String {
    let subject = c
        .consumer
        .as_ref()
        .or(c.producer.as_ref())
        .or(c.queue.as_ref());
    match (c.check, subject) {
        (CheckKind::RepliesMatched, _) => format!(
            "replies_matched[{}->{}]",
            c.producer.as_deref().unwrap_or("?"),
            c.consumer.as_deref().unwrap_or("?")
        ),
        (k, Some(s)) => format!("{}[{s}]", k.as_str()),
        (k, None) => k.as_str().to_string(),
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Evaluates one check against a report.
pub fn evaluate(c: &Check, r: &Report) -> CheckResult {
    let label = label(c);
    if c.check == CheckKind::Order {
        let consumer = r
            .consumers
            .iter()
            .find(|x| Some(&x.name) == c.consumer.as_ref());
        let got: Vec<serde_json::Value> = consumer
            .map(|x| {
                x.bodies
                    .iter()
                    .map(|b| match &c.field {
                        None => serde_json::Value::String(b.clone()),
                        Some(f) => serde_json::from_str::<serde_json::Value>(b)
                            .ok()
                            .and_then(|v| v.get(f).cloned())
                            .unwrap_or(serde_json::Value::Null),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expected = c.expect.clone().unwrap_or(serde_json::Value::Null);
        let got = serde_json::Value::Array(got);
        return CheckResult {
            label,
            passed: got == expected,
            expected: expected.to_string(),
            got: got.to_string(),
        };
    }
    let value: Option<f64> = match c.check {
        CheckKind::Received => Some(
            r.consumers_named(&c.consumer)
                .map(|x| x.received)
                .sum::<u64>() as f64,
        ),
        CheckKind::Processed => Some(
            r.consumers_named(&c.consumer)
                .map(|x| x.processed)
                .sum::<u64>() as f64,
        ),
        CheckKind::DistinctProcessed => {
            let all: crate::small_map::SmallSet<&String> = r
                .consumers_named(&c.consumer)
                .flat_map(|x| x.processed_bodies.iter())
                .collect();
            Some(all.len() as f64)
        }
        CheckKind::Failed => Some(
            r.consumers_named(&c.consumer)
                .map(|x| x.failed)
                .sum::<u64>() as f64,
        ),
        CheckKind::Redelivered => Some(
            r.consumers_named(&c.consumer)
                .map(|x| x.redelivered)
                .sum::<u64>() as f64,
        ),
        CheckKind::Published => {
            let admin = if c.producer.is_none() {
                r.admin_published
            } else {
                0
            };
            Some(
                (r.producers_named(&c.producer)
                    .map(|p| p.published)
                    .sum::<u64>()
                    + admin) as f64,
            )
        }
        CheckKind::Returned => {
            let admin = if c.producer.is_none() {
                r.admin_returned
            } else {
                0
            };
            Some(
                (r.producers_named(&c.producer)
                    .map(|p| p.returned)
                    .sum::<u64>()
                    + admin) as f64,
            )
        }
        CheckKind::ConfirmedAck => Some(
            r.producers_named(&c.producer)
                .map(|p| p.confirmed_ack)
                .sum::<u64>() as f64,
        ),
        CheckKind::ConfirmedNack => Some(
            r.producers_named(&c.producer)
                .map(|p| p.confirmed_nack)
                .sum::<u64>() as f64,
        ),
        CheckKind::QueueDepth => r
            .queues
            .iter()
            .find(|q| Some(&q.name) == c.queue.as_ref())
            .and_then(|q| q.ready)
            .map(|n| n as f64),
        CheckKind::RepliesMatched => {
            let sent: crate::small_map::SmallSet<&String> = r
                .producers
                .iter()
                .filter(|p| Some(&p.name) == c.producer.as_ref())
                .flat_map(|p| p.correlation_ids.iter())
                .collect();
            Some(
                r.consumers
                    .iter()
                    .filter(|x| Some(&x.name) == c.consumer.as_ref())
                    .flat_map(|x| x.correlation_ids.iter())
                    .filter(|id| sent.contains(id))
                    .count() as f64,
            )
        }
        CheckKind::TotalTimeMs => r.total_time_ms.map(|t| t as f64),
        CheckKind::Errors => Some(r.errors.len() as f64),
        CheckKind::Order => None,
    };
    let expect = c.expect.as_ref().and_then(|v| v.as_f64());
    let mut parts = Vec::new();
    let mut passed = value.is_some();
    if let Some(e) = expect {
        match c.tolerance_pct {
            Some(t) if t > 0.0 => {
                parts.push(format!("{} ±{}%", fmt_num(e), fmt_num(t)));
                let slack = e.abs() * t / 100.0;
                passed &= value.is_some_and(|v| (v - e).abs() <= slack + 1e-9);
            }
            _ => {
                parts.push(fmt_num(e));
                passed &= value.is_some_and(|v| (v - e).abs() < 1e-9);
            }
        }
    }
    if let Some(lo) = c.at_least {
        parts.push(format!("at least {}", fmt_num(lo)));
        passed &= value.is_some_and(|v| v >= lo);
    }
    if let Some(hi) = c.at_most {
        parts.push(format!("at most {}", fmt_num(hi)));
        passed &= value.is_some_and(|v| v <= hi);
    }
    CheckResult {
        label,
        passed,
        expected: parts.join(", "),
        got: value.map_or_else(|| "nothing".to_string(), fmt_num),
    }
}
