//! Queues: ready messages in order, their limits, and who consumes them.
//!
//! Ready messages live in one `VecDeque` per priority level (one level for a
//! plain queue), each ordered by the queue-local sequence number assigned at
//! enqueue time; requeued messages are inserted back by that number, which is
//! how RabbitMQ puts them back "in their original position". Expiry is only
//! ever checked at the head of a level, as RabbitMQ does.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Fault;
use crate::message::QEntry;
use crate::protocol::{ConnectionId, FieldTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// What `x-queue-type` asks for. RabbitMQ 3.10 has three types; the
/// simulation stores all of them as classic queues, but declares them as
/// RabbitMQ does: a quorum queue or a stream must be durable, not exclusive,
/// not auto-delete and not server-named, and each type refuses the arguments
/// it does not support (`invalid_arguments` of its capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
    Stream,
}

impl QueueType {
    fn parse(args: &FieldTable) -> Result<QueueType, String> {
        match str_arg(args, "x-queue-type")? {
            None | Some("classic") => Ok(QueueType::Classic),
            Some("quorum") => Ok(QueueType::Quorum),
            Some("stream") => Ok(QueueType::Stream),
            Some(other) => Err(format!(
                "invalid arg 'x-queue-type': {{unsupported_queue_type,<<\"{other}\">>}}"
            )),
        }
    }

    /// RabbitMQ's module for the type, as its error texts name it.
    fn module(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
            QueueType::Stream => "rabbit_stream_queue",
        }
    }

    /// Arguments this type refuses.
    fn invalid_arguments(self) -> &'static [&'static str] {
        match self {
            QueueType::Classic => &["x-delivery-limit"],
            QueueType::Quorum => &["x-max-priority", "x-queue-mode"],
            QueueType::Stream => &[
                "x-expires",
                "x-message-ttl",
                "x-max-length",
                "x-max-priority",
                "x-queue-mode",
                "x-dead-letter-exchange",
                "x-dead-letter-routing-key",
                "x-overflow",
                "x-single-active-consumer",
                "x-delivery-limit",
            ],
        }
    }

    /// The checks of a new queue's properties (the arguments were checked by
    /// [`QueueConfig::parse`]).
    pub fn check_properties(
        self,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        server_named: bool,
    ) -> Result<(), String> {
        if self == QueueType::Classic {
            return Ok(());
        }
        let bad = if server_named {
            Some("server-named")
        } else if exclusive {
            Some("exclusive")
        } else if auto_delete {
            Some("auto-delete")
        } else if !durable {
            Some("non-durable")
        } else {
            None
        };
        match bad {
            Some(p) => Err(format!("invalid property '{p}'")),
            None => Ok(()),
        }
    }
}

/// Where a stream consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    First,
    /// The last message (RabbitMQ: the last chunk; a chunk here is one message).
    Last,
    Next,
    Offset(u64),
    /// The first message appended at most this many ms ago.
    Since(u64),
}

impl StreamStart {
    /// Reads `x-stream-offset` as RabbitMQ 3.10 does (`rabbit_stream_queue`):
    /// first/last/next, an offset (a negative one is the start), or an age like
    /// "10s" (units Y M D h m s). An age of 0 or with another unit is a 406; a
    /// string that does not start with a digit, or a value of another type,
    /// crashes the channel process there: 541 on the connection (case 159).
    pub fn parse(v: Option<&Value>) -> Result<StreamStart, Fault> {
        let bad_age = |s: &str| {
            Fault::precondition_failed(format!("Invalid value for  x-stream-offset: {s}"))
        };
        let crash = |v: &Value| Fault::internal_error(format!("badarg: x-stream-offset {v}"));
        let s = match v {
            None => return Ok(StreamStart::Next),
            Some(Value::Number(n)) => {
                return match (n.as_u64(), n.as_i64()) {
                    (Some(o), _) => Ok(StreamStart::Offset(o)),
                    (None, Some(_)) => Ok(StreamStart::First),
                    _ => Err(crash(v.unwrap_or(&Value::Null))),
                }
            }
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(crash(other)),
        };
        match s {
            "first" => return Ok(StreamStart::First),
            "last" => return Ok(StreamStart::Last),
            "next" => return Ok(StreamStart::Next),
            _ => {}
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (value, unit) = s.split_at(digits);
        if value.is_empty() {
            return Err(crash(&Value::String(s.to_string())));
        }
        // Erlang's integers have no bound; ours saturate.
        let value = value.parse::<u64>().unwrap_or(u64::MAX);
        const S: u64 = 1000;
        const D: u64 = 24 * 3600 * S;
        let unit_ms = match unit {
            "Y" => 365 * D,
            "M" => 30 * D,
            "D" => D,
            "h" => 3600 * S,
            "m" => 60 * S,
            "s" => S,
            _ => return Err(bad_age(s)),
        };
        if value == 0 {
            return Err(bad_age(s));
        }
        Ok(StreamStart::Since(value.saturating_mul(unit_ms)))
    }
}

/// Sequence numbers of a quorum queue with a delivery limit start here; the
/// numbers below are its returns'.
const RETURNS_SPAN: u64 = 1 << 40;

/// The queue arguments the broker acts on, validated.
#[derive(Debug, Clone, Default)]
pub struct QueueConfig {
    pub queue_type: QueueType,
    pub message_ttl: Option<u64>,
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Option<Overflow>,
    pub dlx: Option<Arc<str>>,
    pub dlrk: Option<Arc<str>>,
    pub max_priority: Option<u8>,
    pub single_active_consumer: bool,
    /// `x-delivery-limit` (quorum queues only; a classic queue ignores it):
    /// a message returned more often than this dies.
    pub delivery_limit: Option<u64>,
}

/// Arguments compared when a queue is redeclared (`rabbit_amqqueue:declare_args`).
const EQUIVALENCE_KEYS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-delivery-limit",
];

fn int_arg(args: &FieldTable, key: &str, min: i64) -> Result<Option<u64>, String> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v >= min => Ok(Some(v as u64)),
            Some(v) if v < 0 => Err(format!("invalid arg '{key}': {{value_negative,{v}}}")),
            Some(v) => Err(format!("invalid arg '{key}': {{value_zero,{v}}}")),
            None => Err(format!("invalid arg '{key}': {{unacceptable_type,{n}}}")),
        },
        Some(other) => Err(format!(
            "invalid arg '{key}': {{unacceptable_type,{other}}}"
        )),
    }
}

fn str_arg<'a>(args: &'a FieldTable, key: &str) -> Result<Option<&'a str>, String> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "invalid arg '{key}': {{unacceptable_type,{other}}}"
        )),
    }
}

impl QueueConfig {
    /// Validates arguments as `rabbit_amqqueue:check_arguments` does.
    pub fn parse(args: &FieldTable) -> Result<QueueConfig, String> {
        let queue_type = QueueType::parse(args)?;
        if let Some(k) = queue_type
            .invalid_arguments()
            .iter()
            .find(|k| args.contains_key(**k))
        {
            return Err(format!(
                "invalid arg '{k}' (not supported by {})",
                queue_type.module()
            ));
        }
        let message_ttl = int_arg(args, "x-message-ttl", 0)?;
        let expires = int_arg(args, "x-expires", 1)?;
        let max_length = int_arg(args, "x-max-length", 0)?;
        let max_length_bytes = int_arg(args, "x-max-length-bytes", 0)?;
        // RabbitMQ 3.10 does not check it: a value that is not a
        // non-negative integer means no limit.
        let delivery_limit = args
            .get("x-delivery-limit")
            .and_then(Value::as_u64)
            .filter(|_| queue_type == QueueType::Quorum);
        let max_priority = match int_arg(args, "x-max-priority", 0)? {
            None => None,
            Some(p) if p <= 255 => Some(p as u8),
            Some(p) => {
                return Err(format!(
                    "invalid arg 'x-max-priority': {{value_too_large,{p},255}}"
                ))
            }
        };
        let overflow = match str_arg(args, "x-overflow")? {
            None => None,
            Some("drop-head") => Some(Overflow::DropHead),
            Some("reject-publish") => Some(Overflow::RejectPublish),
            Some("reject-publish-dlx") => Some(Overflow::RejectPublishDlx),
            Some(other) => {
                return Err(format!(
                    "invalid arg 'x-overflow': {{invalid_value,<<\"{other}\">>}}"
                ))
            }
        };
        let dlx = str_arg(args, "x-dead-letter-exchange")?.map(Arc::from);
        let dlrk = str_arg(args, "x-dead-letter-routing-key")?.map(Arc::from);
        if dlrk.is_some() && dlx.is_none() {
            return Err("invalid arg 'x-dead-letter-routing-key': x-dead-letter-routing-key defined, but x-dead-letter-exchange is not".into());
        }
        let single_active_consumer = match args.get("x-single-active-consumer") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "invalid arg 'x-single-active-consumer': {{unacceptable_type,{other}}}"
                ))
            }
        };
        match str_arg(args, "x-queue-mode")? {
            None | Some("default") | Some("lazy") => {}
            Some(other) => {
                return Err(format!(
                    "invalid arg 'x-queue-mode': {{unsupported,<<\"{other}\">>}}"
                ))
            }
        }
        Ok(QueueConfig {
            queue_type,
            message_ttl,
            expires,
            max_length,
            max_length_bytes,
            overflow,
            dlx,
            dlrk,
            max_priority,
            single_active_consumer,
            delivery_limit,
        })
    }

    pub fn overflow(&self) -> Overflow {
        self.overflow.unwrap_or(Overflow::DropHead)
    }
}

/// Redeclare check: the first inequivalent argument, if any.
pub fn inequivalent_arg(old: &FieldTable, new: &FieldTable) -> Option<&'static str> {
    // A queue declared without a type is a classic queue.
    let queue_type = |t: &FieldTable| match t.get("x-queue-type") {
        None => Some(Value::String("classic".into())),
        v => v.cloned(),
    };
    if queue_type(old) != queue_type(new) {
        return Some("x-queue-type");
    }
    // A type compares only the arguments it supports (RabbitMQ 3.10: a classic
    // queue redeclared with x-delivery-limit, a stream with x-message-ttl, a
    // quorum queue with x-max-priority are all fine; difftest s2032-p3755).
    let refused = QueueType::parse(old).map_or(&[][..], QueueType::invalid_arguments);
    EQUIVALENCE_KEYS
        .iter()
        .filter(|k| !refused.contains(*k))
        .find(|k| old.get(**k) != new.get(**k))
        .copied()
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub name: Arc<str>,
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    pub cfg: QueueConfig,
    levels: Vec<VecDeque<QEntry>>,
    ready_len: usize,
    ready_bytes: u64,
    next_seq: u64,
    /// Where the next return goes in a quorum queue with a delivery limit:
    /// such returns wait ahead of every other message (below [`RETURNS_SPAN`]).
    returns_seq: u64,
    /// When each message of a stream's log was appended (virtual ms), for
    /// consumers that start at a time (`x-stream-offset` "10s"); empty for
    /// other queue types.
    appended_at: VecDeque<u64>,
    /// Consumers that may receive now, in dispatch (round-robin) order.
    pub active: VecDeque<u32>,
    /// Consumers found at their prefetch limit; they rejoin `active` at the back.
    pub blocked: Vec<u32>,
    /// Every consumer, in registration order (single-active-consumer order).
    pub consumers: Vec<u32>,
    pub has_exclusive_consumer: bool,
    pub had_consumers: bool,
    /// Messages of this queue delivered and not yet acked.
    pub unacked: u32,
    /// When the x-expires lease runs out (no consumers).
    pub expires_at: Option<u64>,
    /// The earliest head expiry a timer is scheduled for.
    pub timer_at: Option<u64>,
}

impl Queue {
    pub fn new(
        name: Arc<str>,
        durable: bool,
        exclusive_owner: Option<ConnectionId>,
        auto_delete: bool,
        arguments: FieldTable,
        cfg: QueueConfig,
    ) -> Queue {
        let levels = cfg.max_priority.map_or(1, |p| p as usize + 1);
        let returns_first = cfg.queue_type == QueueType::Quorum && cfg.delivery_limit.is_some();
        Queue {
            name,
            durable,
            exclusive_owner,
            auto_delete,
            arguments,
            cfg,
            levels: (0..levels).map(|_| VecDeque::new()).collect(),
            ready_len: 0,
            ready_bytes: 0,
            next_seq: if returns_first { RETURNS_SPAN } else { 0 },
            returns_seq: 0,
            appended_at: VecDeque::new(),
            active: VecDeque::new(),
            blocked: Vec::new(),
            consumers: Vec::new(),
            has_exclusive_consumer: false,
            had_consumers: false,
            unacked: 0,
            expires_at: None,
            timer_at: None,
        }
    }

    pub fn ready_len(&self) -> usize {
        self.ready_len
    }

    fn level_of(&self, e: &QEntry) -> usize {
        match self.cfg.max_priority {
            None => 0,
            Some(max) => e.msg.props().priority.unwrap_or(0).min(max) as usize,
        }
    }

    /// Appends a newly arrived message (at virtual time `now`).
    pub fn push(&mut self, mut e: QEntry, now: u64) {
        if self.cfg.queue_type == QueueType::Stream {
            self.appended_at.push_back(now);
        }
        e.set_seq(self.next_seq);
        self.next_seq += 1;
        let l = self.level_of(&e);
        self.ready_len += 1;
        self.ready_bytes += e.msg.body_len();
        self.levels[l].push_back(e);
    }

    /// A stream's first offset still in its log.
    pub fn first_offset(&self) -> u64 {
        self.levels[0].front().map_or(self.next_seq, QEntry::seq)
    }

    /// The offset the next message published to a stream gets.
    pub fn next_offset(&self) -> u64 {
        self.next_seq
    }

    /// Where a stream consumer starts (RabbitMQ's `x-stream-offset`).
    pub fn stream_start(&self, start: StreamStart, now: u64) -> u64 {
        match start {
            StreamStart::First => self.first_offset(),
            StreamStart::Last => self
                .next_offset()
                .saturating_sub(1)
                .max(self.first_offset()),
            StreamStart::Next => self.next_offset(),
            StreamStart::Offset(n) => n,
            StreamStart::Since(age_ms) => {
                let since = now.saturating_sub(age_ms);
                let skip = self.appended_at.partition_point(|t| *t < since);
                self.first_offset() + skip as u64
            }
        }
    }

    /// A stream's message at `offset` (a stream is never popped, so offsets
    /// are positions in its log).
    pub fn log_entry(&self, offset: u64) -> Option<&QEntry> {
        let first = self.first_offset();
        let at = usize::try_from(offset.checked_sub(first)?).ok()?;
        self.levels[0].get(at)
    }

    /// Puts a message back: at its original position in a classic queue. A
    /// quorum queue (RabbitMQ 3.10's `rabbit_fifo`) counts the return and puts
    /// it at the back, or, when it has a delivery limit, ahead of the messages
    /// waiting, behind earlier returns (cases 153 and 157).
    pub fn requeue(&mut self, mut e: QEntry) {
        if self.cfg.queue_type == QueueType::Quorum {
            let seq = if self.cfg.delivery_limit.is_some() {
                &mut self.returns_seq
            } else {
                &mut self.next_seq
            };
            e.set_seq(*seq);
            *seq += 1;
            e.count_return();
        }
        let l = self.level_of(&e);
        self.ready_len += 1;
        self.ready_bytes += e.msg.body_len();
        let level = &mut self.levels[l];
        let at = level.partition_point(|x| x.seq() < e.seq());
        level.insert(at, e);
    }

    /// Takes the next message to deliver (highest priority, oldest).
    pub fn pop(&mut self) -> Option<QEntry> {
        let level = self.levels.iter_mut().rev().find(|l| !l.is_empty())?;
        let e = level.pop_front()?;
        self.ready_len -= 1;
        self.ready_bytes -= e.msg.body_len();
        Some(e)
    }

    /// Removes expired messages from the head, in delivery order (highest
    /// priority first), stopping at the first one that has not expired: as
    /// RabbitMQ's `dropwhile`, a live message shields everything behind it,
    /// lower priorities included.
    pub fn take_expired(&mut self, now: u64, out: &mut Vec<QEntry>) {
        for level in self.levels.iter_mut().rev() {
            while let Some(e) = level.front() {
                if e.expires_at().is_none_or(|t| t > now) {
                    return;
                }
                if let Some(e) = level.pop_front() {
                    self.ready_len -= 1;
                    self.ready_bytes -= e.msg.body_len();
                    out.push(e);
                }
            }
        }
    }

    /// The expiry of the message at the head (the next to be delivered), if
    /// it has one: the only expiry RabbitMQ keeps a timer for.
    pub fn head_expiry(&self) -> Option<u64> {
        self.levels
            .iter()
            .rev()
            .find_map(|l| l.front())
            .and_then(|e| e.expires_at())
    }

    /// Whether one more message of `bytes` would exceed a limit.
    pub fn would_overflow(&self, bytes: u64) -> bool {
        self.cfg
            .max_length
            .is_some_and(|m| self.ready_len as u64 + 1 > m)
            || self
                .cfg
                .max_length_bytes
                .is_some_and(|m| self.ready_bytes + bytes > m)
    }

    pub fn over_limit(&self) -> bool {
        self.cfg
            .max_length
            .is_some_and(|m| self.ready_len as u64 > m)
            || self
                .cfg
                .max_length_bytes
                .is_some_and(|m| self.ready_bytes > m)
    }

    pub fn purge(&mut self) -> Vec<QEntry> {
        let mut out = Vec::with_capacity(self.ready_len);
        for l in self.levels.iter_mut().rev() {
            out.extend(l.drain(..));
        }
        self.ready_len = 0;
        self.ready_bytes = 0;
        out
    }

    /// Ready messages in delivery order.
    pub fn ready(&self) -> impl Iterator<Item = &QEntry> {
        self.levels.iter().rev().flat_map(|l| l.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<StreamStart, u16> {
        StreamStart::parse(Some(&v)).map_err(|f| f.code)
    }

    #[test]
    fn stream_offset_specs_read_as_rabbitmq_does() {
        assert_eq!(StreamStart::parse(None), Ok(StreamStart::Next));
        assert_eq!(parse(json!("first")), Ok(StreamStart::First));
        assert_eq!(parse(json!("last")), Ok(StreamStart::Last));
        assert_eq!(parse(json!(7)), Ok(StreamStart::Offset(7)));
        assert_eq!(parse(json!(-3)), Ok(StreamStart::First));
        assert_eq!(parse(json!("10s")), Ok(StreamStart::Since(10_000)));
        assert_eq!(parse(json!("2m")), Ok(StreamStart::Since(120_000)));
        assert_eq!(parse(json!("1D")), Ok(StreamStart::Since(86_400_000)));
        assert_eq!(parse(json!("1M")), Ok(StreamStart::Since(30 * 86_400_000)));
        assert_eq!(parse(json!("0s")), Err(406));
        assert_eq!(parse(json!("5x")), Err(406));
        assert_eq!(parse(json!("5")), Err(406));
        assert_eq!(parse(json!("bogus")), Err(541));
        assert_eq!(parse(json!("")), Err(541));
        assert_eq!(parse(json!("-5s")), Err(541));
        assert_eq!(parse(json!(true)), Err(541));
        assert_eq!(parse(json!(1.5)), Err(541));
        // Does not overflow.
        assert_eq!(
            parse(json!("99999999999999999999Y")),
            Ok(StreamStart::Since(u64::MAX))
        );
        assert!(matches!(
            parse(json!("9999999999999Y")),
            Ok(StreamStart::Since(u64::MAX))
        ));
    }
}
