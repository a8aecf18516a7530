//! The timing rules of the conformance format, enforced by running a program
//! on the simulation step by step.
//!
//! A real broker does some things asynchronously (TTL expiry, dead-lettering,
//! exclusive-queue deletion, deliveries to consumers). The conformance format
//! stays deterministic only if nothing observes such an effect before it has
//! surely happened (`shared/conformance/README.md`, section 4). The tracker
//! knows what the simulation did at each step (its trace events and state), so
//! it can say which `wait` must come before the next step and which steps would
//! race with the real broker. The generator asks it before every step it
//! proposes, and the shrinker re-checks every smaller program with it: both
//! only ever produce programs whose real-broker outcome is reproducible.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sim_core::protocol::{ChannelId, ConnectionId, Event, Trace};
use sim_core::BrokerView;

use crate::conformance::case;
use crate::conformance::sim::SimDriver;
use crate::conformance::{Driver, Stepper};

pub type Step = Map<String, Value>;

/// Wait after a publish that may leave a message with a short TTL (<= 100 ms):
/// afterwards every such message has expired on the real broker too.
pub const TTL_WAIT_MS: u64 = 450;
/// Wait after anything the real broker finishes asynchronously (dead-lettering,
/// deleting an exclusive queue of a closed connection).
pub const ASYNC_WAIT_MS: u64 = 150;
/// Wait before a step that acts on a whole channel, so deliveries in flight
/// have arrived (on both sides) before it.
pub const SETTLE_WAIT_MS: u64 = 100;
/// Delivery tags at or above this are deliberately unknown (error on purpose):
/// they can never be in flight, so acking them is deterministic.
pub const BOGUS_TAG: u64 = 1000;
/// A message with an expiry closer than this is "short-lived".
const SHORT_HORIZON_MS: u64 = 1000;

/// A consumer the program created.
#[derive(Clone, Debug)]
pub struct ConsumerInfo {
    pub connection: u64,
    pub channel: u64,
    pub active: bool,
}

#[derive(Clone)]
pub struct Tracker {
    sim: SimDriver,
    stepper: Stepper,
    pub consumers: BTreeMap<String, ConsumerInfo>,
    /// Delivery tags reported to the client (by `get` or `deliveries`) per
    /// channel since it was opened: only these may be acked one by one.
    seen: BTreeMap<(u64, u64), BTreeSet<u64>>,
    /// A wait the next (non-wait) step needs first.
    hazard_ms: u64,
    /// The last step let the broker settle (`wait` or `deliveries`).
    settled: bool,
    /// Server-named queues declared so far (`$q1`..).
    pub server_named: usize,
    /// The last step made deliveries from two or more queues to one channel:
    /// RabbitMQ's queue processes race to the channel, so the delivery tags
    /// they get are not reproducible.
    pub racy: bool,
    /// The connection the last step closed (by closing it or by a
    /// connection-scope error), if any.
    pub closed: Option<u64>,
}

fn op(step: &Step) -> &str {
    step.get("op").and_then(Value::as_str).unwrap_or("")
}

fn int(step: &Step, key: &str, default: u64) -> u64 {
    step.get(key).and_then(Value::as_u64).unwrap_or(default)
}

fn boolean(step: &Step, key: &str) -> bool {
    step.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn text<'a>(step: &'a Step, key: &str) -> &'a str {
    step.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Ops that act on everything a channel holds, including deliveries that may
/// still be on their way to the client.
fn channel_wide(step: &Step) -> bool {
    match op(step) {
        "recover"
        | "channel_close"
        | "connection_close"
        | "connection_close_reopen"
        | "cancel"
        | "queue_delete"
        | "broker_restart"
        | "basic_qos"
        | "consume" => true,
        "ack" | "nack" | "reject" => boolean(step, "multiple") || int(step, "delivery_tag", 0) == 0,
        _ => false,
    }
}

impl Tracker {
    pub fn new() -> anyhow::Result<Tracker> {
        let mut sim = SimDriver::traced();
        sim.begin_case(&[], &[])?;
        Ok(Tracker {
            sim,
            stepper: Stepper::new(),
            consumers: BTreeMap::new(),
            seen: BTreeMap::new(),
            hazard_ms: 0,
            settled: true,
            server_named: 0,
            racy: false,
            closed: None,
        })
    }

    pub fn view(&self) -> BrokerView {
        self.sim.view()
    }

    /// Whether connection `c` (and channel `ch`, if given) is open.
    pub fn is_open(&self, c: u64, ch: Option<u64>) -> bool {
        self.view().connections.iter().any(|conn| {
            u64::from(conn.id) == c
                && ch.is_none_or(|ch| conn.channels.iter().any(|x| u64::from(x.id) == ch))
        })
    }

    /// The real name of a queue as the program wrote it.
    pub fn queue_name(&self, q: &str) -> String {
        match self.stepper.resolve(&Value::String(q.to_string())) {
            Value::String(s) => s,
            _ => q.to_string(),
        }
    }

    pub fn queue_has_consumers(&self, q: &str) -> bool {
        let name = self.queue_name(q);
        self.view()
            .queues
            .iter()
            .any(|x| x.name == name && !x.consumers.is_empty())
    }

    pub fn stream_has_messages(&self, q: &str) -> bool {
        let name = self.queue_name(q);
        self.view().queues.iter().any(|x| {
            x.name == name
                && x.arguments.get("x-queue-type").and_then(Value::as_str) == Some("stream")
                && (x.ready > 0 || !x.messages.is_empty())
        })
    }

    /// Seen delivery tags of a channel that are still unacked.
    pub fn ackable(&self, c: u64, ch: u64) -> Vec<u64> {
        let view = self.view();
        let unacked: BTreeSet<u64> = view
            .connections
            .iter()
            .filter(|x| u64::from(x.id) == c)
            .flat_map(|x| x.channels.iter().filter(|y| u64::from(y.id) == ch))
            .flat_map(|y| y.unacked.iter().copied())
            .collect();
        self.seen
            .get(&(c, ch))
            .map(|s| s.iter().copied().filter(|t| unacked.contains(t)).collect())
            .unwrap_or_default()
    }

    /// Tags ever reported on a channel (acking a settled one is a 406 on purpose).
    pub fn seen(&self, c: u64, ch: u64) -> Vec<u64> {
        self.seen
            .get(&(c, ch))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether closing connection `c` would race on a real broker: one of its
    /// channels holds unacked messages while a consumer on another of its
    /// channels consumes a queue with unacked messages of someone else. The
    /// channels close one by one, so the requeued messages may or may not be
    /// delivered to the dying consumer first (a no-ack one then loses them;
    /// difftest seeds 2028 p1860 and 2031 p7824).
    pub fn close_would_race(&self, c: u64) -> bool {
        let view = self.view();
        let Some(conn) = view.connections.iter().find(|x| u64::from(x.id) == c) else {
            return false;
        };
        view.consumers
            .iter()
            .filter(|k| u64::from(k.connection) == c)
            .any(|k| {
                let others_hold = view
                    .queues
                    .iter()
                    .any(|q| q.name == k.queue && q.unacked > k.unacked);
                others_hold
                    && conn
                        .channels
                        .iter()
                        .any(|a| a.id != k.channel && !a.unacked.is_empty())
            })
    }

    /// The wait (ms) that must come right before `step`, 0 if none.
    pub fn wait_before(&self, step: &Step) -> u64 {
        if op(step) == "wait" {
            return 0;
        }
        let settle = if channel_wide(step) && !self.settled {
            SETTLE_WAIT_MS
        } else {
            0
        };
        self.hazard_ms.max(settle)
    }

    /// Whether `step` keeps the program deterministic on a real broker (after
    /// the wait [`Tracker::wait_before`] asks for).
    pub fn legal(&self, step: &Step) -> bool {
        let o = op(step);
        if !matches!(o, "wait" | "deliveries" | "connection_close_reopen")
            && case::to_request(step, 0).is_err()
        {
            return false;
        }
        let c = int(step, "connection", 1);
        let ch = int(step, "channel", 1);
        match o {
            "wait" => int(step, "ms", 0) > 0,
            "deliveries" => step.get("consumer_tag").is_some_and(Value::is_string),
            "broker_restart" => true,
            "connection_open" => !self.is_open(c, None),
            "channel_open" => self.is_open(c, None) && !self.is_open(c, Some(ch)),
            "connection_close" | "connection_close_reopen" => self.is_open(c, None),
            _ if !self.is_open(c, Some(ch)) => false,
            // A consumer may take the message first: never race it with a get.
            "get" => !self.queue_has_consumers(text(step, "queue")),
            // A stream's declare-ok counts its log once RabbitMQ's metrics have
            // caught up, a moment after the publish (s2033-p2758).
            "queue_declare" => !self.stream_has_messages(text(step, "queue")),
            "consume" => !self.consumers.contains_key(text(step, "consumer_tag")),
            "ack" | "nack" | "reject" => {
                let tag = int(step, "delivery_tag", 0);
                tag == 0 || tag >= BOGUS_TAG || self.seen(c, ch).contains(&tag)
            }
            _ => true,
        }
    }

    /// Runs `step` on the simulation and updates what the rules need.
    pub fn apply(&mut self, step: &Step) -> anyhow::Result<Value> {
        let o = op(step).to_string();
        let c = int(step, "connection", 1);
        let ch = int(step, "channel", 1);
        let delivered_before = self.sim.deliveries_made();
        let (outcome, frames) = self.stepper.step(&mut self.sim, step)?;
        // A delivery reaches a real client a little after the step that
        // caused it: let it arrive before anything (an error closing the
        // channel, say) could make the two sides disagree about it.
        let delivered = self.sim.deliveries_made() > delivered_before;
        if o == "wait" {
            let ms = int(step, "ms", 0);
            if ms >= self.hazard_ms {
                self.hazard_ms = 0;
            }
        } else {
            self.hazard_ms = 0;
        }
        self.settled = matches!(o.as_str(), "wait" | "deliveries");

        // Channels that start afresh (delivery tags restart at 1).
        match o.as_str() {
            "channel_open" | "channel_close" => {
                self.seen.remove(&(c, ch));
            }
            "connection_open" | "connection_close" | "connection_close_reopen" => {
                self.seen.retain(|(sc, _), _| *sc != c);
            }
            "broker_restart" => self.seen.clear(),
            _ => {}
        }
        let connection_error = outcome
            .get("error")
            .and_then(|e| e.get("scope"))
            .and_then(Value::as_str)
            == Some("connection");
        if outcome.get("error").is_some() {
            if connection_error {
                self.seen.retain(|(sc, _), _| *sc != c);
            } else {
                self.seen.remove(&(c, ch));
            }
        }

        match o.as_str() {
            "get" => {
                if let Some(tag) = outcome.get("delivery_tag").and_then(Value::as_u64) {
                    self.seen.entry((c, ch)).or_default().insert(tag);
                }
            }
            "deliveries" => {
                let tag = text(step, "consumer_tag");
                if let (Some(info), Some(list)) = (self.consumers.get(tag), outcome.as_array()) {
                    let key = (info.connection, info.channel);
                    for d in list {
                        if let Some(t) = d.get("delivery_tag").and_then(Value::as_u64) {
                            self.seen.entry(key).or_default().insert(t);
                        }
                    }
                }
            }
            "consume" if outcome.is_null() => {
                self.consumers.insert(
                    text(step, "consumer_tag").to_string(),
                    ConsumerInfo {
                        connection: c,
                        channel: ch,
                        active: true,
                    },
                );
            }
            "queue_declare" if text(step, "queue").is_empty() && outcome.get("queue").is_some() => {
                self.server_named += 1;
            }
            _ => {}
        }

        // Asynchronous on a real broker: dead-lettering and drops, the
        // deletion of a closed connection's exclusive queues, and the
        // requeue of what a channel closed by an error held (its queues hear
        // of it only once the channel process is gone: s2035-p3040).
        let error = outcome.get("error").is_some();
        let async_effect = frames.iter().any(|f| {
            matches!(
                &f.event,
                Event::Trace(Trace::DeadLettered { .. }) | Event::Trace(Trace::Dropped { .. })
            ) || (error && matches!(&f.event, Event::Trace(Trace::Requeued { .. })))
        }) || matches!(
            o.as_str(),
            "connection_close" | "connection_close_reopen" | "broker_restart"
        ) || connection_error;
        // A quorum queue or stream takes a message once its log has it: a
        // count right after the publish may not show it yet.
        let to_log = frames.iter().any(|f| match &f.event {
            Event::Trace(Trace::Enqueued { queue, .. }) => self.view().queues.iter().any(|q| {
                &q.name == queue
                    && matches!(
                        q.arguments.get("x-queue-type").and_then(Value::as_str),
                        Some("quorum" | "stream")
                    )
            }),
            _ => false,
        });
        if async_effect || to_log {
            self.hazard_ms = self.hazard_ms.max(ASYNC_WAIT_MS);
        }
        if delivered && !matches!(o.as_str(), "wait" | "deliveries") {
            self.hazard_ms = self.hazard_ms.max(SETTLE_WAIT_MS);
        }
        let view = self.view();
        let mut sources: BTreeMap<(ConnectionId, ChannelId), BTreeSet<&str>> = BTreeMap::new();
        for (conn, chan, tag) in self.sim.deliveries_since(delivered_before) {
            // A consumer gone by now counts as a queue of its own.
            let queue = view
                .consumers
                .iter()
                .find(|x| x.connection == *conn && x.channel == *chan && x.consumer_tag == *tag)
                .map_or(tag.as_str(), |x| x.queue.as_str());
            sources.entry((*conn, *chan)).or_default().insert(queue);
        }
        self.racy = sources.values().any(|queues| queues.len() > 1);
        self.closed = (matches!(o.as_str(), "connection_close" | "connection_close_reopen")
            || connection_error)
            .then_some(c);
        let now = view.now_ms;
        let short_lived = view.queues.iter().any(|q| {
            q.messages.iter().any(|m| {
                m.expires_at_ms
                    .is_some_and(|at| at > now && at <= now + SHORT_HORIZON_MS)
            })
        });
        if short_lived {
            self.hazard_ms = self.hazard_ms.max(TTL_WAIT_MS);
        }

        // Consumers the broker or the client ended.
        let live: BTreeSet<String> = view
            .consumers
            .iter()
            .map(|x| x.consumer_tag.clone())
            .collect();
        for (tag, info) in self.consumers.iter_mut() {
            info.active = live.contains(tag);
        }
        Ok(outcome)
    }
}

/// Rewrites `steps` so that it follows the timing rules: inserts the waits the
/// tracker asks for and drops steps that would race with the real broker.
pub fn legalize(steps: &[Step]) -> anyhow::Result<Vec<Step>> {
    let mut t = Tracker::new()?;
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for s in steps {
        if op(s) == "wait" {
            // A wait right after another one is folded into it.
            if let Some(prev) = out.last_mut().filter(|p| op(p) == "wait") {
                let (had, want) = (int(prev, "ms", 0), int(s, "ms", 0));
                if want > had {
                    prev.insert("ms".into(), Value::from(want));
                    t.apply(&wait(want - had))?;
                }
                continue;
            }
        }
        push_legal(&mut t, &mut out, s.clone())?;
    }
    Ok(out)
}

/// Appends `step` (after the wait it needs) if it is legal; false if dropped.
pub fn push_legal(t: &mut Tracker, out: &mut Vec<Step>, step: Step) -> anyhow::Result<bool> {
    // Legality does not depend on the clock, so it is checked before the wait.
    if !t.legal(&step) {
        return Ok(false);
    }
    // The step is tried on a copy: one that makes racing deliveries is dropped.
    let mut trial = t.clone();
    let need = trial.wait_before(&step);
    let w = (need > 0).then(|| wait(need));
    if let Some(w) = &w {
        trial.apply(w)?;
    }
    trial.apply(&step)?;
    if trial.racy && op(&step) != "wait" {
        return Ok(false);
    }
    if trial.closed.is_some_and(|c| t.close_would_race(c)) {
        return Ok(false);
    }
    *t = trial;
    out.extend(w);
    out.push(step);
    Ok(true)
}

pub fn wait(ms: u64) -> Step {
    let mut m = Map::new();
    m.insert("op".into(), Value::String("wait".into()));
    m.insert("ms".into(), Value::from(ms));
    m
}
