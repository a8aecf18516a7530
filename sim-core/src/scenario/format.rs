//! The scenario file format, version 1 (serde types). See `docs/scenario-format.md`.
//!
//! Every struct denies unknown fields, so a typo in a lesson file is an error
//! with its JSON path instead of a silently ignored setting.

use serde::{Deserialize, Serialize};

use crate::protocol::{ExchangeKind, FieldTable};

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A text in the three languages of the course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub ru: String,
    pub uk: String,
}

impl Text {
    /// The text in `lang` (`en`, `ru`, `uk`); English for anything else.
    pub fn get(&self, lang: &str) -> &str {
        match lang {
            "ru" => &self.ru,
            "uk" => &self.uk,
            _ => &self.en,
        }
    }
}

/// One scenario (one lesson or experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Must be [`FORMAT_VERSION`].
    pub format: u32,
    /// Slug, unique across `scenarios/` (`[a-z0-9-]+`).
    pub id: String,
    pub title: Text,
    /// What the lesson is about (shown before it starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    /// Free tags (`tutorial`, `seed-003`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Seeds the simulated broker and the clients' failure draws.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub topology: Topology,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub producers: Vec<Producer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimedAction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub run: RunLimits,
}

/// When a run ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunLimits {
    /// Run at least this long (scenario time), e.g. to let TTLs fire.
    pub min_ms: u64,
    /// The run ends once nothing happened for this long and nothing is pending.
    /// Default: 1000 ms, or the longest TTL in the scenario + 1000 ms, so a
    /// message waiting for its TTL is not mistaken for the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_ms: Option<u64>,
    /// Give up (the run is reported as not completed) after this long.
    pub max_ms: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            min_ms: 0,
            quiet_ms: None,
            max_ms: 120_000,
        }
    }
}

/// Exchanges, queues and bindings declared before any client starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchanges: Vec<ExchangeDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<BindingDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeDef {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: ExchangeKind,
    #[serde(default)]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    /// e.g. `{"alternate-exchange": "unrouted"}`
    #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
    pub arguments: FieldTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDef {
    pub name: String,
    #[serde(default)]
    pub durable: bool,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub auto_delete: bool,
    /// `x-message-ttl`, `x-dead-letter-exchange`, `x-max-length`, `x-overflow`,
    /// `x-max-priority`, ...
    #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
    pub arguments: FieldTable,
}

/// A binding from exchange `source` to a queue or (exchange-to-exchange) an exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingDef {
    /// The exchange messages come from.
    pub source: String,
    /// Exactly one of `queue` and `exchange` names the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
    pub arguments: FieldTable,
}

/// Message properties as a scenario writes them. String values are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PropsDef {
    /// 1 transient, 2 persistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_mode: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Per-message TTL in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<FieldTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A body template: a string, or any JSON value whose string leaves are templates.
pub type BodyDef = serde_json::Value;

/// A simulated publisher with its own connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    pub name: String,
    /// Default exchange `""` when absent.
    #[serde(default)]
    pub exchange: String,
    /// Template, e.g. `"order.{pick:created|paid}"`.
    #[serde(default)]
    pub routing_key: String,
    #[serde(default = "default_body")]
    pub body: BodyDef,
    #[serde(default)]
    pub properties: PropsDef,
    /// Put the channel in confirm mode (publisher confirms).
    #[serde(default)]
    pub confirms: bool,
    #[serde(default)]
    pub mandatory: bool,
    /// Rate mode: publish `count` messages, the first at `start_ms`, then one
    /// every `interval_ms`.
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default)]
    pub interval_ms: u64,
    /// Script mode: these messages at these times (may be combined with `count`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ScriptedMessage>,
}

fn default_body() -> BodyDef {
    serde_json::Value::String("message {n}".into())
}

/// One scripted publish. Absent fields fall back to the producer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedMessage {
    #[serde(default)]
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<PropsDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<bool>,
}

/// How a consumer acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    #[default]
    Manual,
    /// `no_ack`: the broker forgets a message as soon as it is sent.
    Auto,
}

/// What a consumer answers for a message it failed to process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailAction {
    /// basic.reject requeue=false (dead-letters if the queue has a DLX).
    #[default]
    Reject,
    /// basic.reject requeue=true.
    RejectRequeue,
    /// basic.nack requeue=false.
    Nack,
    /// basic.nack requeue=true.
    NackRequeue,
    /// Acknowledge anyway (the failure is only counted).
    Ack,
}

/// When processing a message fails: with `probability`, or when the message is
/// selected by `when_body_contains` and/or `first_attempts` (with both, a
/// matching message fails on its first N attempts only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FailurePolicy {
    /// Chance of failure per message, drawn from a seeded generator.
    #[serde(default)]
    pub probability: f64,
    /// Fail the messages whose body contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_body_contains: Option<String>,
    /// Fail only the first N attempts of a (selected) message. Attempt = 1 +
    /// the rejections from this consumer's queue recorded in `x-death`; a
    /// redelivered message is at least attempt 2.
    #[serde(default)]
    pub first_attempts: u32,
    #[serde(default)]
    pub action: FailAction,
    /// After this many failed attempts of a message (counted as in
    /// `first_attempts`), publish it to `give_up_to` and ack it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_up_after: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_up_to: Option<Target>,
}

/// Where a consumer publishes: exchange, routing key and body templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub exchange: String,
    /// Template; `{routing_key}` is the incoming key.
    #[serde(default = "same_key")]
    pub routing_key: String,
    /// Template; `{body}` is the incoming body.
    #[serde(default = "same_body")]
    pub body: BodyDef,
    #[serde(default)]
    pub properties: PropsDef,
}

fn same_key() -> String {
    "{routing_key}".into()
}
fn same_body() -> BodyDef {
    serde_json::Value::String("{body}".into())
}

/// RPC server behaviour: answer to `reply_to` with the same `correlation_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyDef {
    #[serde(default = "same_body")]
    pub body: BodyDef,
}

/// A simulated consumer (worker) with its own connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub name: String,
    pub queue: String,
    /// basic.qos prefetch_count; 0 = unlimited.
    #[serde(default)]
    pub prefetch: u16,
    #[serde(default)]
    pub ack: AckMode,
    /// Processing time per message; messages are processed one at a time.
    #[serde(default)]
    pub processing_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailurePolicy>,
    /// Reply to `reply_to` (RPC server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyDef>,
    /// After a successful message, publish these (pipelines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<Target>,
    /// Subscribe at this time (0 = before the producers start).
    #[serde(default)]
    pub start_ms: u64,
    /// Crash (connection lost, unacked messages return) at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_at_ms: Option<u64>,
    /// Come back (reconnect and subscribe again) at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at_ms: Option<u64>,
    #[serde(default)]
    pub exclusive: bool,
}

/// A scripted action at scenario time `at_ms`, e.g.
/// `{"at_ms": 3000, "action": "kill_consumer", "consumer": "worker-1"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimedAction {
    /// Publish one message from the admin connection (or from `producer`'s).
    Publish {
        at_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        producer: Option<String>,
        #[serde(default)]
        exchange: String,
        #[serde(default)]
        routing_key: String,
        #[serde(default = "default_body")]
        body: BodyDef,
        #[serde(default)]
        properties: PropsDef,
        #[serde(default)]
        mandatory: bool,
    },
    /// The consumer's process dies: its connection goes, unacked messages return.
    KillConsumer {
        at_ms: u64,
        consumer: String,
    },
    /// The consumer comes back and subscribes again.
    RestartConsumer {
        at_ms: u64,
        consumer: String,
    },
    /// basic.cancel: the consumer stops receiving (unacked stay with it).
    CancelConsumer {
        at_ms: u64,
        consumer: String,
    },
    /// Stop and start the broker; clients reconnect right after.
    RestartBroker {
        at_ms: u64,
    },
    DeclareExchange {
        at_ms: u64,
        exchange: ExchangeDef,
    },
    DeleteExchange {
        at_ms: u64,
        exchange: String,
    },
    DeclareQueue {
        at_ms: u64,
        queue: QueueDef,
    },
    DeleteQueue {
        at_ms: u64,
        queue: String,
    },
    PurgeQueue {
        at_ms: u64,
        queue: String,
    },
    Bind {
        at_ms: u64,
        binding: BindingDef,
    },
    Unbind {
        at_ms: u64,
        binding: BindingDef,
    },
}

impl TimedAction {
    pub fn at_ms(&self) -> u64 {
        match self {
            TimedAction::Publish { at_ms, .. }
            | TimedAction::KillConsumer { at_ms, .. }
            | TimedAction::RestartConsumer { at_ms, .. }
            | TimedAction::CancelConsumer { at_ms, .. }
            | TimedAction::RestartBroker { at_ms }
            | TimedAction::DeclareExchange { at_ms, .. }
            | TimedAction::DeleteExchange { at_ms, .. }
            | TimedAction::DeclareQueue { at_ms, .. }
            | TimedAction::DeleteQueue { at_ms, .. }
            | TimedAction::PurgeQueue { at_ms, .. }
            | TimedAction::Bind { at_ms, .. }
            | TimedAction::Unbind { at_ms, .. } => *at_ms,
        }
    }
}

/// A lesson step: narrative shown from `at_ms` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub at_ms: u64,
    pub text: Text,
    /// Elements to highlight: `exchange:NAME`, `queue:NAME`, `consumer:NAME`,
    /// `producer:NAME`, `binding:SOURCE->DEST`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlight: Vec<String>,
    /// "Predict, then see": asked before the step's time is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<Question>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub prompt: Text,
    pub choices: Vec<Text>,
    /// Index into `choices`.
    pub answer: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Text>,
}

/// Which outcome a [`Check`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Deliveries to `consumer` (all consumers when absent), redeliveries included.
    Received,
    /// Messages `consumer` (or all) finished successfully.
    Processed,
    /// Distinct message bodies finished successfully (duplicates counted once).
    DistinctProcessed,
    /// Messages `consumer` (or all) failed to process.
    Failed,
    /// Deliveries flagged `redelivered`.
    Redelivered,
    /// Messages published by `producer` (all when absent; timeline publishes too).
    Published,
    /// basic.return frames (mandatory and unroutable) for `producer` (or all).
    Returned,
    /// Publisher confirms: acks.
    ConfirmedAck,
    /// Publisher confirms: nacks.
    ConfirmedNack,
    /// Ready messages in `queue` at the end.
    QueueDepth,
    /// Replies received by `consumer` whose correlation_id `producer` sent.
    RepliesMatched,
    /// Time from the first publish to the last successfully processed message.
    TotalTimeMs,
    /// AMQP errors the clients saw (error replies and broker closes).
    Errors,
    /// The order in which `consumer` received messages: the bodies, or the JSON
    /// field `field` of each body. `expect` is an array.
    Order,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Received => "received",
            CheckKind::Processed => "processed",
            CheckKind::DistinctProcessed => "distinct_processed",
            CheckKind::Failed => "failed",
            CheckKind::Redelivered => "redelivered",
            CheckKind::Published => "published",
            CheckKind::Returned => "returned",
            CheckKind::ConfirmedAck => "confirmed_ack",
            CheckKind::ConfirmedNack => "confirmed_nack",
            CheckKind::QueueDepth => "queue_depth",
            CheckKind::RepliesMatched => "replies_matched",
            CheckKind::TotalTimeMs => "total_time_ms",
            CheckKind::Errors => "errors",
            CheckKind::Order => "order",
        }
    }
}

/// An assertion on the outcome of a run, e.g.
/// `{"check": "total_time_ms", "expect": 10000, "tolerance_pct": 5}`.
///
/// Numbers are compared with `expect` (exact, or within `tolerance_pct`
/// percent) and/or the bounds `at_least` / `at_most`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub check: CheckKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A number, or an array for `order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// Shown to the student when the check fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Text>,
}
