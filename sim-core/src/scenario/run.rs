//! The scenario engine: a sans-IO state machine that plays a [`Scenario`]
//! against any broker by emitting [`Request`]s and consuming [`ServerFrame`]s.
//!
//! Connections: 1 is the admin connection (topology, timeline actions, the
//! closing queue-depth queries); producer `i` uses connection `2 + i`; consumer
//! `j` uses connection `2 + producers + j`. Each client has channel 1 only.
//! At most one request per connection is in flight, so the requests of one
//! client reach the broker in order, as over one AMQP channel.
//!
//! Phases: *setup* (declare the topology) → *subscribing* (consumers with
//! `start_ms` 0 subscribe, producers open) → *running* (scenario time 0 is the
//! moment this phase begins) → *finishing* (passive `queue_declare` of every
//! queue, for `queue_depth`) → *done*.

use crate::small_map::{sort_by, SmallMap, SmallSet};
use std::collections::VecDeque;

use serde::Serialize;

use super::format::*;
use super::report::{self, ConsumerReport, ProducerReport, QueueReport, Report};
use super::template::{self, Ctx};
use crate::protocol::{
    ConnectionId, DeliveryTag, ErrorScope, Event, Message, MessageId, Method, Outcome, Properties,
    ReplyResult, Request, ServerFrame, SharedProperties,
};
use crate::rng::SplitMix64;

const ADMIN: ConnectionId = 1;
const MAX_NOTES: usize = 10_000;
/// Requests in one run before it is stopped as a runaway loop (the finishing
/// queries still go out).
const MAX_REQUESTS: u64 = 250_000;

/// Something a simulated client did that the protocol does not show (a worker
/// being busy, a crash), for the lesson player's animation and log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientNote {
    pub at_ms: u64,
    /// `producer:NAME`, `consumer:NAME` or `admin`.
    pub actor: String,
    #[serde(flatten)]
    pub kind: NoteKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum NoteKind {
    /// Consuming (basic.consume-ok).
    Subscribed,
    /// Started processing a message; done at `until_ms` unless it crashes.
    WorkStarted {
        message_id: MessageId,
        until_ms: u64,
    },
    /// Finished a message: `outcome` is `ack`, `reject`, `reject_requeue`,
    /// `nack`, `nack_requeue`, `gave_up` or `auto` (no ack needed).
    WorkFinished {
        message_id: MessageId,
        ok: bool,
        outcome: String,
    },
    Published {
        exchange: String,
        routing_key: String,
        body: String,
    },
    Crashed,
    Restarted,
    Cancelled,
    /// The broker restarted; the clients reconnect.
    BrokerRestarted,
    Error {
        text: String,
    },
    /// Every scheduled thing happened and the broker is quiet.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Subscribing,
    Running,
    Finishing,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Producer(usize),
    Consumer(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Purpose {
    Setup,
    Admin,
    ProducerOpen(usize),
    ConsumerStart(usize),
    ConsumerConsume(usize),
    ConsumerSettle(usize),
    ConsumerClose(usize),
    Publish(Who),
    BrokerRestart,
    Depth(usize),
    ChannelReopen,
}

#[derive(Debug, Clone)]
struct Pending {
    method: Method,
    purpose: Purpose,
}

#[derive(Debug, Clone, Default)]
struct Conn {
    queue: VecDeque<Pending>,
    in_flight: Option<u64>,
    /// Bumped when the connection is torn down; stale replies are ignored.
    gen: u32,
}

#[derive(Debug, Clone)]
struct InFlight {
    conn: ConnectionId,
    gen: u32,
    purpose: Purpose,
    op: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not started yet.
    Idle,
    Starting,
    Up,
    /// Crashed (consumer) or closed by the broker.
    Down,
    /// basic.cancel (consumer) / finished or broken (producer).
    Stopped,
}

#[derive(Debug, Clone)]
struct Item {
    at_ms: u64,
    script: Option<usize>,
}

#[derive(Debug, Clone)]
struct ProducerState {
    conn: ConnectionId,
    status: Status,
    schedule: Vec<Item>,
    next: usize,
    n: u64,
    next_seq: u64,
    unconfirmed: SmallSet<u64>,
    published: u64,
    confirmed_ack: u64,
    confirmed_nack: u64,
    returned: u64,
    correlation_ids: SmallSet<String>,
}

#[derive(Debug, Clone)]
struct Delivery {
    delivery_tag: DeliveryTag,
    redelivered: bool,
    routing_key: String,
    message: Message,
    message_id: MessageId,
}

#[derive(Debug, Clone)]
struct ConsumerState {
    conn: ConnectionId,
    status: Status,
    buffer: VecDeque<Delivery>,
    current: Option<(Delivery, u64)>,
    rng: SplitMix64,
    n: u64,
    received: u64,
    redelivered: u64,
    processed: u64,
    failed: u64,
    gave_up: u64,
    replies_sent: u64,
    forwarded: u64,
    crashes: u64,
    received_bodies: Vec<String>,
    processed_bodies: SmallSet<String>,
    correlation_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Sched {
    Action(usize),
    Crash(usize),
    Restart(usize),
}

/// One run of a scenario. Drive it like a quinn-proto connection:
///
/// ```text
/// loop {
///     while let Some(req) = run.poll_request() { send req to the broker }
///     for every frame the broker sends: run.handle_frame(&frame)
///     at run.poll_timeout() (or earlier): run.handle_timeout(now_ms)
///     until run.is_done()
/// }
/// ```
///
/// `handle_frame` takes the frame's `at_ms` as the current time, so frames and
/// `handle_timeout` must use the same clock (the simulated broker's virtual
/// clock, or a real-mode driver's wall clock stamped on arrival).
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    sc: Scenario,
    now: u64,
    phase: Phase,
    origin: Option<u64>,
    t0: Option<u64>,
    next_id: u64,
    conns: SmallMap<ConnectionId, Conn>,
    in_flight: SmallMap<u64, InFlight>,
    producers: Vec<ProducerState>,
    consumers: Vec<ConsumerState>,
    schedule: Vec<(u64, Sched)>,
    sched_next: usize,
    last_activity: u64,
    errors: Vec<String>,
    /// `closed` events whose error reply may still come: connection → (code,
    /// index in `errors`).
    closed_unanswered: SmallMap<ConnectionId, (u16, usize)>,
    notes: VecDeque<ClientNote>,
    admin_published: u64,
    admin_returned: u64,
    first_publish: Option<u64>,
    last_done: Option<u64>,
    timed_out: bool,
    queues: Vec<QueueReport>,
    /// A broker_restart is in flight: the closes it causes are expected.
    broker_restarting: bool,
    quiet_ms: u64,
    pace: Option<Pace>,
}

/// A token bucket in thousandths of a request.
#[derive(Debug, Clone)]
struct Pace {
    per_sec: u64,
    milli_tokens: u64,
    at_ms: u64,
}

impl ScenarioRun {
    /// Starts a run of a scenario (parse and validate it first with
    /// [`super::parse`]; an unvalidated scenario cannot panic the engine, but
    /// may produce broker errors).
    pub fn new(sc: Scenario) -> Self {
        let np = sc.producers.len();
        let producers = sc
            .producers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut schedule: Vec<Item> = (0..u64::from(p.count))
                    .map(|k| Item {
                        at_ms: p.start_ms.saturating_add(k.saturating_mul(p.interval_ms)),
                        script: None,
                    })
                    .collect();
                schedule.extend(p.messages.iter().enumerate().map(|(j, m)| Item {
                    at_ms: m.at_ms,
                    script: Some(j),
                }));
                sort_by(&mut schedule, &|a, b| a.at_ms.cmp(&b.at_ms));
                ProducerState {
                    conn: 2 + i as ConnectionId,
                    status: Status::Idle,
                    schedule,
                    next: 0,
                    n: 0,
                    next_seq: 1,
                    unconfirmed: SmallSet::new(),
                    published: 0,
                    confirmed_ack: 0,
                    confirmed_nack: 0,
                    returned: 0,
                    correlation_ids: SmallSet::new(),
                }
            })
            .collect();
        let consumers = sc
            .consumers
            .iter()
            .enumerate()
            .map(|(j, _)| ConsumerState {
                conn: 2 + (np + j) as ConnectionId,
                status: Status::Idle,
                buffer: VecDeque::new(),
                current: None,
                rng: SplitMix64::new(sc.seed ^ (0xC0FF_EE00 + j as u64).wrapping_mul(0x9E37_79B9)),
                n: 0,
                received: 0,
                redelivered: 0,
                processed: 0,
                failed: 0,
                gave_up: 0,
                replies_sent: 0,
                forwarded: 0,
                crashes: 0,
                received_bodies: Vec::new(),
                processed_bodies: SmallSet::new(),
                correlation_ids: Vec::new(),
            })
            .collect();
        let mut schedule: Vec<(u64, Sched)> = sc
            .timeline
            .iter()
            .enumerate()
            .map(|(i, a)| (a.at_ms(), Sched::Action(i)))
            .collect();
        for (j, c) in sc.consumers.iter().enumerate() {
            if let Some(t) = c.crash_at_ms {
                schedule.push((t, Sched::Crash(j)));
            }
            if let Some(t) = c.restart_at_ms {
                schedule.push((t, Sched::Restart(j)));
            }
        }
        sort_by(&mut schedule, &|a, b| a.0.cmp(&b.0));
        let queues = known_queues(&sc)
            .into_iter()
            .map(|name| QueueReport { name, ready: None })
            .collect();
        let mut run = ScenarioRun {
            sc,
            now: 0,
            phase: Phase::Setup,
            origin: None,
            t0: None,
            next_id: 1,
            conns: SmallMap::new(),
            in_flight: SmallMap::new(),
            producers,
            consumers,
            schedule,
            sched_next: 0,
            last_activity: 0,
            errors: Vec::new(),
            closed_unanswered: SmallMap::new(),
            notes: VecDeque::new(),
            admin_published: 0,
            admin_returned: 0,
            first_publish: None,
            last_done: None,
            timed_out: false,
            queues,
            broker_restarting: false,
            quiet_ms: 0,
            pace: None,
        };
        run.quiet_ms = run
            .sc
            .run
            .quiet_ms
            .unwrap_or_else(|| default_quiet_ms(&run.sc));
        run.enqueue_setup();
        run
    }

    /// The scenario being played.
    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    /// The engine's clock (the latest time it was told).
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Scenario time: milliseconds since the running phase began (0 before).
    pub fn elapsed_ms(&self) -> u64 {
        self.t0.map_or(0, |t0| self.now.saturating_sub(t0))
    }

    /// The clock value at which scenario time 0 began, once it has.
    pub fn started_at_ms(&self) -> Option<u64> {
        self.t0
    }

    /// When (on this run's clock) step `index` begins, once the run started;
    /// a player that asks a step's question pauses time before this.
    pub fn step_at_ms(&self, index: usize) -> Option<u64> {
        let step = self.sc.steps.get(index)?;
        Some(self.t0?.saturating_add(step.at_ms))
    }

    /// The lesson step to show now: the last one whose `at_ms` has been reached.
    pub fn active_step(&self) -> Option<usize> {
        let elapsed = self.elapsed_ms();
        self.sc.steps.iter().rposition(|s| s.at_ms <= elapsed)
    }

    /// True once the run ended (everything happened and the final queue depths
    /// are in, or `run.max_ms` passed).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The next request to send to the broker, if any.
    pub fn poll_request(&mut self) -> Option<Request> {
        if self.next_id > MAX_REQUESTS && !matches!(self.phase, Phase::Finishing | Phase::Done) {
            // A loop that never lets time pass (e.g. a zero-time consumer
            // forwarding to its own queue): stop it like max_ms would.
            self.timed_out = true;
            self.enter_finishing();
        }
        let conn_id = self
            .conns
            .iter()
            .find(|(_, c)| c.in_flight.is_none() && !c.queue.is_empty())
            .map(|(id, _)| *id)?;
        if !self.take_token() {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = self.conns.get_mut(&conn_id)?;
        let pending = conn.queue.pop_front()?;
        conn.in_flight = Some(id);
        let gen = conn.gen;
        self.last_activity = self.now;
        if let Method::Publish { .. } = &pending.method {
            self.on_send_publish(&pending);
        }
        self.in_flight.insert(
            id,
            InFlight {
                conn: conn_id,
                gen,
                purpose: pending.purpose,
                op: pending.method.op(),
            },
        );
        Some(Request {
            id,
            connection: conn_id,
            channel: 1,
            method: pending.method,
        })
    }

    /// When the engine next needs [`Self::handle_timeout`] (absolute time), if
    /// ever. Frames from the broker may come before.
    pub fn poll_timeout(&self) -> Option<u64> {
        let paced = self.next_token_at();
        if matches!(self.phase, Phase::Done | Phase::Finishing) {
            // Only the broker's answers (and maybe a token) are awaited now.
            return paced;
        }
        let base = self.t0.or(self.origin).unwrap_or(0);
        let mut best = base.saturating_add(self.sc.run.max_ms);
        let mut consider = |t: u64| best = best.min(t);
        if let Some(t0) = self.t0 {
            if self.phase == Phase::Running {
                if let Some((t, _)) = self.schedule.get(self.sched_next) {
                    consider(t0.saturating_add(*t));
                }
                for p in &self.producers {
                    if p.status == Status::Up {
                        if let Some(it) = p.schedule.get(p.next) {
                            consider(t0.saturating_add(it.at_ms));
                        }
                    }
                }
                for (c, def) in self.consumers.iter().zip(&self.sc.consumers) {
                    if c.status == Status::Idle && def.start_ms > 0 {
                        consider(t0.saturating_add(def.start_ms));
                    }
                }
                if let Some(t) = self.idle_deadline() {
                    consider(t);
                }
            }
        }
        for c in &self.consumers {
            if let Some((_, done)) = &c.current {
                consider(*done);
            }
        }
        if let Some(t) = paced {
            consider(t);
        }
        Some(best.max(self.now))
    }

    /// Time passes.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance(now_ms);
        self.pump();
    }

    /// A frame from the broker.
    pub fn handle_frame(&mut self, frame: &ServerFrame) {
        self.advance(frame.at_ms);
        match &frame.event {
            Event::Status { .. } | Event::Trace(_) => return,
            _ => self.last_activity = self.now,
        }
        match &frame.event {
            Event::Reply { id, result } => self.on_reply(*id, result),
            Event::Deliver {
                connection,
                channel: _,
                consumer_tag,
                delivery_tag,
                redelivered,
                routing_key,
                message,
                message_id,
                ..
            } => self.on_deliver(
                *connection,
                consumer_tag,
                Delivery {
                    delivery_tag: *delivery_tag,
                    redelivered: *redelivered,
                    routing_key: routing_key.to_string(),
                    message: message.clone(),
                    message_id: *message_id,
                },
            ),
            Event::Return { connection, .. } => match self.owner(*connection) {
                Some(Who::Producer(i)) => self.producers[i].returned += 1,
                _ => self.admin_returned += 1,
            },
            Event::Confirm {
                connection,
                seq,
                multiple,
                ack,
                ..
            } => {
                if let Some(Who::Producer(i)) = self.owner(*connection) {
                    let p = &mut self.producers[i];
                    let done: Vec<u64> = if *multiple {
                        p.unconfirmed.up_to(seq).to_vec()
                    } else if p.unconfirmed.contains(seq) {
                        vec![*seq]
                    } else {
                        Vec::new()
                    };
                    for s in &done {
                        p.unconfirmed.remove(s);
                    }
                    let n = done.len() as u64;
                    if *ack {
                        p.confirmed_ack += n;
                    } else {
                        p.confirmed_nack += n;
                    }
                }
            }
            Event::ConsumerCancelled { connection, .. } => {
                if let Some(Who::Consumer(j)) = self.owner(*connection) {
                    self.consumers[j].status = Status::Stopped;
                    self.note(Who::Consumer(j), NoteKind::Cancelled);
                }
            }
            Event::Closed { .. } if self.broker_restarting => {}
            Event::Closed {
                connection,
                channel,
                error,
            } => {
                let who = self.actor(self.owner(*connection).unwrap_or(Who::Admin));
                self.error(format!(
                    "{who}: broker closed the {}: {} {} {}",
                    if channel.is_some() {
                        "channel"
                    } else {
                        "connection"
                    },
                    error.code,
                    error.name,
                    error.text
                ));
                // If a request caused it, its error reply follows and takes this place.
                self.closed_unanswered
                    .insert(*connection, (error.code, self.errors.len() - 1));
                self.on_closed(*connection, channel.is_none());
            }
            Event::ProtocolError { id, message } => {
                self.error(format!("protocol error: {message}"));
                if let Some(id) = id {
                    // The request will get no reply: free its connection.
                    if let Some(f) = self.in_flight.remove(id) {
                        if let Some(c) = self.conns.get_mut(&f.conn) {
                            c.in_flight = None;
                        }
                    }
                }
            }
            Event::Status { .. } | Event::Trace(_) => {}
        }
        self.pump();
    }

    /// Sends at most `per_sec` requests per second (bursts up to `per_sec`),
    /// e.g. to stay under the bridge's WebSocket rate limit; `None` (the
    /// default) does not pace. Pacing follows the run's clock, so it is
    /// deterministic in simulation.
    pub fn set_max_requests_per_sec(&mut self, per_sec: Option<u32>) {
        self.pace = per_sec.filter(|n| *n > 0).map(|n| Pace {
            per_sec: u64::from(n),
            milli_tokens: u64::from(n) * 1000,
            at_ms: self.now,
        });
    }

    /// The next client note (oldest first).
    pub fn poll_note(&mut self) -> Option<ClientNote> {
        self.notes.pop_front()
    }

    /// The outcome so far, with every check evaluated (final once
    /// [`Self::is_done`]).
    pub fn report(&self) -> Report {
        let consumers = self
            .sc
            .consumers
            .iter()
            .zip(&self.consumers)
            .map(|(def, c)| ConsumerReport {
                name: def.name.clone(),
                received: c.received,
                redelivered: c.redelivered,
                processed: c.processed,
                distinct_processed: c.processed_bodies.len() as u64,
                failed: c.failed,
                gave_up: c.gave_up,
                replies_sent: c.replies_sent,
                forwarded: c.forwarded,
                crashes: c.crashes,
                bodies: c.received_bodies.clone(),
                processed_bodies: c.processed_bodies.iter().cloned().collect(),
                correlation_ids: c.correlation_ids.clone(),
            })
            .collect();
        let producers = self
            .sc
            .producers
            .iter()
            .zip(&self.producers)
            .map(|(def, p)| ProducerReport {
                name: def.name.clone(),
                published: p.published,
                confirmed_ack: p.confirmed_ack,
                confirmed_nack: p.confirmed_nack,
                returned: p.returned,
                correlation_ids: p.correlation_ids.iter().cloned().collect(),
            })
            .collect();
        let mut r = Report {
            scenario: self.sc.id.clone(),
            completed: self.phase == Phase::Done && !self.timed_out,
            timed_out: self.timed_out,
            elapsed_ms: self.elapsed_ms(),
            total_time_ms: match (self.first_publish, self.last_done) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
            admin_published: self.admin_published,
            admin_returned: self.admin_returned,
            consumers,
            producers,
            queues: self.queues.clone(),
            errors: self.errors.clone(),
            checks: Vec::new(),
        };
        r.checks = self
            .sc
            .checks
            .iter()
            .map(|c| report::evaluate(c, &r))
            .collect();
        r
    }

    // ---------------------------------------------------------------- internals

    /// Refills the pacing bucket to `now` and takes one token if there is one.
    fn take_token(&mut self) -> bool {
        let now = self.now;
        let Some(p) = &mut self.pace else {
            return true;
        };
        let cap = p.per_sec * 1000;
        let refill = now.saturating_sub(p.at_ms).saturating_mul(p.per_sec);
        p.milli_tokens = p.milli_tokens.saturating_add(refill).min(cap);
        p.at_ms = now;
        if p.milli_tokens >= 1000 {
            p.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// When a token will be there for a request that waits only for one.
    fn next_token_at(&self) -> Option<u64> {
        let p = self.pace.as_ref()?;
        let waiting = self
            .conns
            .values()
            .any(|c| c.in_flight.is_none() && !c.queue.is_empty());
        if !waiting {
            return None;
        }
        let refill = self.now.saturating_sub(p.at_ms).saturating_mul(p.per_sec);
        let have = p.milli_tokens.saturating_add(refill);
        if have >= 1000 {
            return Some(self.now);
        }
        Some(self.now + (1000 - have).div_ceil(p.per_sec))
    }

    fn advance(&mut self, t: u64) {
        if self.origin.is_none() {
            self.origin = Some(t);
            self.last_activity = t;
        }
        self.now = self.now.max(t);
    }

    fn actor(&self, who: Who) -> String {
        match who {
            Who::Admin => "admin".into(),
            Who::Producer(i) => format!("producer:{}", self.sc.producers[i].name),
            Who::Consumer(j) => format!("consumer:{}", self.sc.consumers[j].name),
        }
    }

    fn note(&mut self, who: Who, kind: NoteKind) {
        if self.notes.len() >= MAX_NOTES {
            self.notes.pop_front();
        }
        let actor = self.actor(who);
        self.notes.push_back(ClientNote {
            at_ms: self.now,
            actor,
            kind,
        });
    }

    fn error(&mut self, text: String) {
        self.errors.push(text.clone());
        self.note(Who::Admin, NoteKind::Error { text });
    }

    fn owner(&self, conn: ConnectionId) -> Option<Who> {
        if conn == ADMIN {
            return Some(Who::Admin);
        }
        let np = self.producers.len();
        let idx = (conn as usize).checked_sub(2)?;
        if idx < np {
            Some(Who::Producer(idx))
        } else if idx - np < self.consumers.len() {
            Some(Who::Consumer(idx - np))
        } else {
            None
        }
    }

    fn push(&mut self, conn: ConnectionId, method: Method, purpose: Purpose) {
        self.conns
            .get_or_insert_with(conn, Conn::default)
            .queue
            .push_back(Pending { method, purpose });
    }

    /// Drops everything not yet sent on `conn` and ignores replies to what was.
    fn reset_conn(&mut self, conn: ConnectionId) {
        let c = self.conns.get_or_insert_with(conn, Conn::default);
        c.queue.clear();
        c.gen += 1;
    }

    fn enqueue_setup(&mut self) {
        // A fresh simulated broker has no connection; a relay session opened
        // connection 1 already. Opening it (again) suits both.
        self.push(ADMIN, Method::ConnectionOpen, Purpose::Setup);
        let topo = self.sc.topology.clone();
        for x in &topo.exchanges {
            self.push(ADMIN, declare_exchange(x), Purpose::Setup);
        }
        for q in &topo.queues {
            self.push(ADMIN, declare_queue(q), Purpose::Setup);
        }
        for b in &topo.bindings {
            self.push(ADMIN, bind(b, false), Purpose::Setup);
        }
    }

    fn start_producer(&mut self, i: usize) {
        let conn = self.producers[i].conn;
        self.reset_conn(conn);
        self.producers[i].status = Status::Starting;
        self.producers[i].next_seq = 1;
        self.producers[i].unconfirmed.clear();
        self.push(conn, Method::ConnectionOpen, Purpose::ProducerOpen(i));
        if self.sc.producers[i].confirms {
            self.push(conn, Method::ConfirmSelect, Purpose::ProducerOpen(i));
        }
    }

    fn start_consumer(&mut self, j: usize) {
        let def = &self.sc.consumers[j];
        let conn = self.consumers[j].conn;
        let qos = (def.ack == AckMode::Manual && def.prefetch > 0).then_some(def.prefetch);
        let consume = Method::Consume {
            queue: def.queue.clone(),
            consumer_tag: def.name.clone(),
            no_ack: def.ack == AckMode::Auto,
            exclusive: def.exclusive,
            arguments: Default::default(),
        };
        self.reset_conn(conn);
        let c = &mut self.consumers[j];
        c.status = Status::Starting;
        c.buffer.clear();
        c.current = None;
        self.push(conn, Method::ConnectionOpen, Purpose::ConsumerStart(j));
        if let Some(prefetch_count) = qos {
            self.push(
                conn,
                Method::BasicQos {
                    prefetch_count,
                    global: false,
                },
                Purpose::ConsumerStart(j),
            );
        }
        self.push(conn, consume, Purpose::ConsumerConsume(j));
    }

    /// The consumer's process is gone: drop its local work.
    fn drop_consumer(&mut self, j: usize) {
        let conn = self.consumers[j].conn;
        self.reset_conn(conn);
        let c = &mut self.consumers[j];
        c.status = Status::Down;
        c.buffer.clear();
        c.current = None;
    }

    fn on_send_publish(&mut self, pending: &Pending) {
        let Purpose::Publish(who) = pending.purpose else {
            return;
        };
        self.first_publish.get_or_insert(self.now);
        if let Method::Publish {
            exchange,
            routing_key,
            body,
            properties,
            ..
        } = &pending.method
        {
            match who {
                Who::Producer(i) => {
                    let confirms = self.sc.producers[i].confirms;
                    let p = &mut self.producers[i];
                    p.published += 1;
                    if confirms {
                        p.unconfirmed.insert(p.next_seq);
                        p.next_seq += 1;
                    }
                    if let Some(c) = &properties.correlation_id {
                        p.correlation_ids.insert(c.clone());
                    }
                }
                Who::Admin => self.admin_published += 1,
                Who::Consumer(_) => {}
            }
            let kind = NoteKind::Published {
                exchange: exchange.to_string(),
                routing_key: routing_key.to_string(),
                body: body.to_string(),
            };
            self.note(who, kind);
        }
    }

    fn on_reply(&mut self, id: u64, result: &ReplyResult) {
        let Some(f) = self.in_flight.remove(&id) else {
            return;
        };
        if f.purpose == Purpose::BrokerRestart {
            self.broker_restarting = false;
        }
        let stale = match self.conns.get_mut(&f.conn) {
            Some(c) => {
                if c.in_flight == Some(id) {
                    c.in_flight = None;
                }
                c.gen != f.gen
            }
            None => true,
        };
        match result {
            ReplyResult::Error(e) => {
                // The `closed` event this request caused came first: one error.
                let slot = match self.closed_unanswered.remove(&f.conn) {
                    Some((code, idx)) if code == e.code && idx < self.errors.len() => Some(idx),
                    _ => None,
                };
                match f.purpose {
                    Purpose::Depth(q) => {
                        // Not the clients' error: the queue is gone.
                        if slot.is_some_and(|i| i + 1 == self.errors.len()) {
                            self.errors.pop();
                        }
                        if let Some(r) = self.queues.get_mut(q) {
                            r.ready = None;
                        }
                        // A 404 closed the admin channel: reopen it first.
                        self.reopen_admin(e.scope == ErrorScope::Connection);
                    }
                    _ if stale => {}
                    purpose => {
                        let who = self.actor(purpose_who(&purpose));
                        let text =
                            format!("{who}: {} failed: {} {} {}", f.op, e.code, e.name, e.text);
                        match slot {
                            Some(i) => self.errors[i] = text,
                            None => self.error(text),
                        }
                        match purpose {
                            Purpose::ConsumerStart(j) | Purpose::ConsumerConsume(j) => {
                                self.drop_consumer(j)
                            }
                            Purpose::ProducerOpen(i) | Purpose::Publish(Who::Producer(i)) => {
                                self.producers[i].status = Status::Stopped;
                            }
                            Purpose::Admin | Purpose::Setup | Purpose::Publish(Who::Admin) => {
                                // Keep the admin channel usable for what follows.
                                self.reopen_admin(e.scope == ErrorScope::Connection);
                            }
                            _ => {}
                        }
                    }
                }
            }
            ReplyResult::Ok(outcome) => {
                self.closed_unanswered.remove(&f.conn);
                if stale {
                    return;
                }
                match f.purpose {
                    Purpose::ProducerOpen(i) => {
                        let pending = self.conns.get(&self.producers[i].conn).is_some_and(|c| {
                            c.queue
                                .iter()
                                .any(|p| p.purpose == Purpose::ProducerOpen(i))
                        });
                        if !pending && self.producers[i].status == Status::Starting {
                            self.producers[i].status = Status::Up;
                        }
                    }
                    Purpose::ConsumerConsume(j)
                        if matches!(outcome, Outcome::ConsumeOk { .. })
                            && self.consumers[j].status == Status::Starting =>
                    {
                        self.consumers[j].status = Status::Up;
                        self.note(Who::Consumer(j), NoteKind::Subscribed);
                    }
                    Purpose::Depth(q) => {
                        if let (Some(r), Outcome::QueueDeclareOk { message_count, .. }) =
                            (self.queues.get_mut(q), outcome)
                        {
                            r.ready = Some(u64::from(*message_count));
                        }
                    }
                    Purpose::BrokerRestart => self.after_broker_restart(),
                    _ => {}
                }
            }
        }
    }

    fn after_broker_restart(&mut self) {
        self.note(Who::Admin, NoteKind::BrokerRestarted);
        for i in 0..self.producers.len() {
            if matches!(self.producers[i].status, Status::Up | Status::Starting) {
                self.start_producer(i);
            }
        }
        for j in 0..self.consumers.len() {
            if matches!(self.consumers[j].status, Status::Up | Status::Starting) {
                self.start_consumer(j);
            }
        }
    }

    fn on_closed(&mut self, conn: ConnectionId, connection_scope: bool) {
        match self.owner(conn) {
            Some(Who::Consumer(j)) => self.drop_consumer(j),
            Some(Who::Producer(i)) => {
                self.reset_conn(conn);
                self.producers[i].status = Status::Stopped;
            }
            _ => {
                // The admin channel (or connection): reopen it for what follows.
                self.reopen_admin(connection_scope);
            }
        }
    }

    /// Queues a reopen of the admin channel (or connection) ahead of what
    /// follows, once: an error comes both as a reply and as a `closed` event.
    fn reopen_admin(&mut self, connection_scope: bool) {
        let method = if connection_scope {
            Method::ConnectionOpen
        } else {
            Method::ChannelOpen
        };
        let queue = &mut self.conns.get_or_insert_with(ADMIN, Conn::default).queue;
        match queue.front_mut() {
            Some(front) if front.purpose == Purpose::ChannelReopen => {
                if connection_scope {
                    front.method = method;
                }
            }
            _ => queue.push_front(Pending {
                method,
                purpose: Purpose::ChannelReopen,
            }),
        }
    }

    fn on_deliver(&mut self, conn: ConnectionId, tag: &str, d: Delivery) {
        let Some(Who::Consumer(j)) = self.owner(conn) else {
            return;
        };
        if self.sc.consumers[j].name != tag {
            return;
        }
        let c = &mut self.consumers[j];
        if !matches!(c.status, Status::Starting | Status::Up | Status::Stopped) {
            return;
        }
        c.received += 1;
        if d.redelivered {
            c.redelivered += 1;
        }
        c.received_bodies.push(d.message.body.to_string());
        if let Some(id) = &d.message.properties.correlation_id {
            c.correlation_ids.push(id.clone());
        }
        c.buffer.push_back(d);
        self.start_work(j);
    }

    fn start_work(&mut self, j: usize) {
        let processing = self.sc.consumers[j].processing_ms;
        let now = self.now;
        let c = &mut self.consumers[j];
        if c.current.is_some() {
            return;
        }
        let Some(d) = c.buffer.pop_front() else {
            return;
        };
        let id = d.message_id;
        let until = now.saturating_add(processing);
        c.current = Some((d, until));
        self.note(
            Who::Consumer(j),
            NoteKind::WorkStarted {
                message_id: id,
                until_ms: until,
            },
        );
    }

    fn finish_work(&mut self, j: usize) {
        let Some((d, _)) = self.consumers[j].current.take() else {
            return;
        };
        let def = self.sc.consumers[j].clone();
        let conn = self.consumers[j].conn;
        self.consumers[j].n += 1;
        let n = self.consumers[j].n;
        let manual = def.ack == AckMode::Manual;
        let attempt = attempt_of(&d, &def.queue);
        let mut fail = false;
        if let Some(f) = &def.failure {
            if f.probability > 0.0 && self.consumers[j].rng.next_f64() < f.probability {
                fail = true;
            }
            // `when_body_contains` selects messages, `first_attempts` limits the
            // failures to their first attempts; with both, both must hold.
            let selective = f.when_body_contains.is_some() || f.first_attempts > 0;
            let matches = f
                .when_body_contains
                .as_ref()
                .is_none_or(|needle| d.message.body.contains(needle.as_str()));
            let early = f.first_attempts == 0 || attempt <= u64::from(f.first_attempts);
            fail |= selective && matches && early;
        }
        let body = d.message.body.clone();
        let correlation = d
            .message
            .properties
            .correlation_id
            .clone()
            .unwrap_or_default();
        let ctx = Ctx {
            n,
            name: &def.name,
            body: &body,
            routing_key: &d.routing_key,
            correlation_id: &correlation,
        };
        let mut outcome = "ack";
        let mut sends: Vec<Method> = Vec::new();
        if fail {
            self.consumers[j].failed += 1;
            let f = def.failure.clone().unwrap_or_default();
            let give_up = f.give_up_after.is_some_and(|k| attempt >= u64::from(k));
            if let (true, Some(t)) = (give_up, &f.give_up_to) {
                sends.push(target_publish(t, &ctx));
                self.consumers[j].gave_up += 1;
                outcome = "gave_up";
                if manual {
                    sends.push(Method::Ack {
                        delivery_tag: d.delivery_tag,
                        multiple: false,
                    });
                }
            } else if manual {
                let tag = d.delivery_tag;
                let (m, name) = match f.action {
                    FailAction::Reject => (
                        Method::Reject {
                            delivery_tag: tag,
                            requeue: false,
                        },
                        "reject",
                    ),
                    FailAction::RejectRequeue => (
                        Method::Reject {
                            delivery_tag: tag,
                            requeue: true,
                        },
                        "reject_requeue",
                    ),
                    FailAction::Nack => (
                        Method::Nack {
                            delivery_tag: tag,
                            multiple: false,
                            requeue: false,
                        },
                        "nack",
                    ),
                    FailAction::NackRequeue => (
                        Method::Nack {
                            delivery_tag: tag,
                            multiple: false,
                            requeue: true,
                        },
                        "nack_requeue",
                    ),
                    FailAction::Ack => (
                        Method::Ack {
                            delivery_tag: tag,
                            multiple: false,
                        },
                        "ack",
                    ),
                };
                sends.push(m);
                outcome = name;
            } else {
                outcome = "auto";
            }
        } else {
            let c = &mut self.consumers[j];
            c.processed += 1;
            c.processed_bodies.insert(body.to_string());
            self.last_done = Some(self.now);
            if let (Some(r), Some(reply_to)) = (&def.reply, &d.message.properties.reply_to) {
                sends.push(Method::Publish {
                    exchange: "".into(),
                    routing_key: reply_to.into(),
                    body: template::render_body(&r.body, &ctx).into(),
                    mandatory: false,
                    properties: Properties {
                        correlation_id: d.message.properties.correlation_id.clone(),
                        ..Properties::default()
                    }
                    .into(),
                });
                self.consumers[j].replies_sent += 1;
            }
            for t in &def.forward {
                sends.push(target_publish(t, &ctx));
                self.consumers[j].forwarded += 1;
            }
            if manual {
                sends.push(Method::Ack {
                    delivery_tag: d.delivery_tag,
                    multiple: false,
                });
            } else {
                outcome = "auto";
            }
        }
        for m in sends {
            let purpose = match m {
                Method::Publish { .. } => Purpose::Publish(Who::Consumer(j)),
                _ => Purpose::ConsumerSettle(j),
            };
            self.push(conn, m, purpose);
        }
        self.note(
            Who::Consumer(j),
            NoteKind::WorkFinished {
                message_id: d.message_id,
                ok: !fail,
                outcome: outcome.into(),
            },
        );
        self.start_work(j);
    }

    fn publish_from_producer(&mut self, i: usize) {
        let def = &self.sc.producers[i];
        let p = &mut self.producers[i];
        let Some(item) = p.schedule.get(p.next) else {
            return;
        };
        p.next += 1;
        p.n += 1;
        let n = p.n;
        let script = item.script.and_then(|k| def.messages.get(k));
        let ctx = Ctx {
            n,
            name: &def.name,
            ..Ctx::default()
        };
        let exchange = script
            .and_then(|m| m.exchange.clone())
            .unwrap_or_else(|| def.exchange.clone());
        let key = script
            .and_then(|m| m.routing_key.as_deref())
            .unwrap_or(&def.routing_key);
        let body = script.and_then(|m| m.body.as_ref()).unwrap_or(&def.body);
        let props = script
            .and_then(|m| m.properties.as_ref())
            .unwrap_or(&def.properties);
        let mandatory = script.and_then(|m| m.mandatory).unwrap_or(def.mandatory);
        let routing_key = template::render(key, &ctx);
        let ctx = Ctx {
            routing_key: &routing_key,
            ..ctx
        };
        let method = Method::Publish {
            exchange: exchange.into(),
            routing_key: (&routing_key).into(),
            body: template::render_body(body, &ctx).into(),
            mandatory,
            properties: properties(props, &ctx),
        };
        let conn = p.conn;
        self.push(conn, method, Purpose::Publish(Who::Producer(i)));
    }

    fn run_action(&mut self, idx: usize) {
        let Some(action) = self.sc.timeline.get(idx).cloned() else {
            return;
        };
        let admin = |m: Method| (ADMIN, m, Purpose::Admin);
        let job = match action {
            TimedAction::Publish {
                producer,
                exchange,
                routing_key,
                body,
                properties: props,
                mandatory,
                ..
            } => {
                let (conn, who, n) = match producer
                    .and_then(|name| self.sc.producers.iter().position(|p| p.name == name))
                {
                    Some(i) => {
                        self.producers[i].n += 1;
                        (
                            self.producers[i].conn,
                            Who::Producer(i),
                            self.producers[i].n,
                        )
                    }
                    None => (ADMIN, Who::Admin, self.admin_published + 1),
                };
                let ctx = Ctx {
                    n,
                    name: "admin",
                    ..Ctx::default()
                };
                let routing_key = template::render(&routing_key, &ctx);
                let ctx = Ctx {
                    routing_key: &routing_key,
                    ..ctx
                };
                let m = Method::Publish {
                    exchange: exchange.into(),
                    routing_key: (&routing_key).into(),
                    body: template::render_body(&body, &ctx).into(),
                    mandatory,
                    properties: properties(&props, &ctx),
                };
                Some((conn, m, Purpose::Publish(who)))
            }
            TimedAction::KillConsumer { consumer, .. } => {
                if let Some(j) = self.consumer_index(&consumer) {
                    self.crash(j);
                }
                None
            }
            TimedAction::RestartConsumer { consumer, .. } => {
                if let Some(j) = self.consumer_index(&consumer) {
                    self.restart(j);
                }
                None
            }
            TimedAction::CancelConsumer { consumer, .. } => match self.consumer_index(&consumer) {
                Some(j) if self.consumers[j].status == Status::Up => {
                    self.consumers[j].status = Status::Stopped;
                    self.note(Who::Consumer(j), NoteKind::Cancelled);
                    Some((
                        self.consumers[j].conn,
                        Method::Cancel {
                            consumer_tag: consumer,
                        },
                        Purpose::ConsumerSettle(j),
                    ))
                }
                _ => None,
            },
            TimedAction::RestartBroker { .. } => {
                // Whatever the clients had not sent yet dies with the broker.
                let conns: Vec<ConnectionId> =
                    self.conns.keys().copied().filter(|c| *c != ADMIN).collect();
                for c in conns {
                    self.reset_conn(c);
                }
                for j in 0..self.consumers.len() {
                    self.consumers[j].buffer.clear();
                    self.consumers[j].current = None;
                }
                self.broker_restarting = true;
                Some((ADMIN, Method::BrokerRestart, Purpose::BrokerRestart))
            }
            TimedAction::DeclareExchange { exchange, .. } => {
                Some(admin(declare_exchange(&exchange)))
            }
            TimedAction::DeleteExchange { exchange, .. } => Some(admin(Method::ExchangeDelete {
                exchange,
                if_unused: false,
            })),
            TimedAction::DeclareQueue { queue, .. } => Some(admin(declare_queue(&queue))),
            TimedAction::DeleteQueue { queue, .. } => Some(admin(Method::QueueDelete {
                queue,
                if_unused: false,
                if_empty: false,
            })),
            TimedAction::PurgeQueue { queue, .. } => Some(admin(Method::QueuePurge { queue })),
            TimedAction::Bind { binding, .. } => Some(admin(bind(&binding, false))),
            TimedAction::Unbind { binding, .. } => Some(admin(bind(&binding, true))),
        };
        if let Some((conn, m, purpose)) = job {
            self.push(conn, m, purpose);
        }
    }

    fn consumer_index(&self, name: &str) -> Option<usize> {
        self.sc.consumers.iter().position(|c| c.name == name)
    }

    fn crash(&mut self, j: usize) {
        if !matches!(
            self.consumers[j].status,
            Status::Up | Status::Starting | Status::Stopped
        ) {
            return;
        }
        self.drop_consumer(j);
        self.consumers[j].crashes += 1;
        let conn = self.consumers[j].conn;
        self.push(conn, Method::ConnectionClose, Purpose::ConsumerClose(j));
        self.note(Who::Consumer(j), NoteKind::Crashed);
    }

    fn restart(&mut self, j: usize) {
        if matches!(self.consumers[j].status, Status::Up | Status::Starting) {
            return;
        }
        self.start_consumer(j);
        self.note(Who::Consumer(j), NoteKind::Restarted);
    }

    fn conns_idle(&self) -> bool {
        self.conns
            .values()
            .all(|c| c.in_flight.is_none() && c.queue.is_empty())
    }

    /// Everything scripted happened and no client has work; the time at which
    /// the run may end if nothing else happens.
    fn idle_deadline(&self) -> Option<u64> {
        let t0 = self.t0?;
        if self.sched_next < self.schedule.len() {
            return None;
        }
        let producers_done = self.producers.iter().all(|p| {
            p.next >= p.schedule.len() || matches!(p.status, Status::Stopped | Status::Down)
        });
        let consumers_idle = self
            .consumers
            .iter()
            .zip(&self.sc.consumers)
            .all(|(c, def)| {
                c.current.is_none()
                    && c.buffer.is_empty()
                    && !(c.status == Status::Idle && def.start_ms > 0)
            });
        if !(producers_done && consumers_idle && self.conns_idle()) {
            return None;
        }
        Some(
            self.last_activity
                .saturating_add(self.quiet_ms)
                .max(t0.saturating_add(self.sc.run.min_ms)),
        )
    }

    /// Does everything that is due at `self.now`.
    fn pump(&mut self) {
        loop {
            let progressed = self.step();
            if !progressed {
                break;
            }
        }
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        // The safety net first.
        if !matches!(self.phase, Phase::Finishing | Phase::Done) {
            let base = self.t0.or(self.origin).unwrap_or(0);
            if now >= base.saturating_add(self.sc.run.max_ms) {
                self.timed_out = true;
                self.enter_finishing();
                return true;
            }
        }
        match self.phase {
            Phase::Setup => {
                if self.conns_idle() {
                    self.phase = Phase::Subscribing;
                    for j in 0..self.consumers.len() {
                        if self.sc.consumers[j].start_ms == 0 {
                            self.start_consumer(j);
                        }
                    }
                    for i in 0..self.producers.len() {
                        self.start_producer(i);
                    }
                    return true;
                }
                false
            }
            Phase::Subscribing => {
                let ready = self.consumers.iter().all(|c| c.status != Status::Starting)
                    && self.producers.iter().all(|p| p.status != Status::Starting);
                if ready {
                    self.phase = Phase::Running;
                    self.t0 = Some(now);
                    self.last_activity = now;
                    return true;
                }
                false
            }
            Phase::Running => self.step_running(now),
            Phase::Finishing => {
                if self.conns_idle() {
                    self.phase = Phase::Done;
                    self.note(Who::Admin, NoteKind::Finished);
                    return true;
                }
                false
            }
            Phase::Done => false,
        }
    }

    fn step_running(&mut self, now: u64) -> bool {
        let t0 = self.t0.unwrap_or(now);
        let elapsed = now.saturating_sub(t0);
        if let Some((at, what)) = self.schedule.get(self.sched_next).copied() {
            if at <= elapsed {
                self.sched_next += 1;
                match what {
                    Sched::Action(i) => self.run_action(i),
                    Sched::Crash(j) => self.crash(j),
                    Sched::Restart(j) => self.restart(j),
                }
                return true;
            }
        }
        // Consumers whose scheduled start has come.
        for j in 0..self.consumers.len() {
            let start = self.sc.consumers[j].start_ms;
            if self.consumers[j].status == Status::Idle && start > 0 && start <= elapsed {
                self.start_consumer(j);
                return true;
            }
        }
        for j in 0..self.consumers.len() {
            if let Some((_, done)) = &self.consumers[j].current {
                if *done <= now {
                    self.finish_work(j);
                    return true;
                }
            }
        }
        for i in 0..self.producers.len() {
            let p = &self.producers[i];
            if p.status == Status::Up {
                if let Some(it) = p.schedule.get(p.next) {
                    if it.at_ms <= elapsed {
                        self.publish_from_producer(i);
                        return true;
                    }
                }
            }
        }
        if let Some(deadline) = self.idle_deadline() {
            if now >= deadline {
                self.enter_finishing();
                return true;
            }
        }
        false
    }

    fn enter_finishing(&mut self) {
        self.phase = Phase::Finishing;
        // Stop every client: nothing more is sent but the depth queries.
        let conns: Vec<ConnectionId> = self.conns.keys().copied().filter(|c| *c != ADMIN).collect();
        for c in conns {
            if let Some(conn) = self.conns.get_mut(&c) {
                conn.queue.clear();
            }
        }
        if let Some(admin) = self.conns.get_mut(&ADMIN) {
            admin.queue.clear();
        }
        for j in 0..self.consumers.len() {
            self.consumers[j].buffer.clear();
            self.consumers[j].current = None;
        }
        for q in 0..self.queues.len() {
            let name = self.queues[q].name.clone();
            self.push(
                ADMIN,
                Method::QueueDeclare {
                    queue: name,
                    passive: true,
                    durable: false,
                    exclusive: false,
                    auto_delete: false,
                    arguments: Default::default(),
                },
                Purpose::Depth(q),
            );
        }
    }
}

fn purpose_who(p: &Purpose) -> Who {
    match p {
        Purpose::ProducerOpen(i) => Who::Producer(*i),
        Purpose::ConsumerStart(j)
        | Purpose::ConsumerConsume(j)
        | Purpose::ConsumerSettle(j)
        | Purpose::ConsumerClose(j) => Who::Consumer(*j),
        Purpose::Publish(w) => *w,
        _ => Who::Admin,
    }
}

/// 1 s, or the longest TTL anywhere in the scenario + 1 s.
fn default_quiet_ms(sc: &Scenario) -> u64 {
    let mut longest = 0u64;
    let mut queue = |q: &QueueDef| {
        if let Some(ttl) = q.arguments.get("x-message-ttl").and_then(|v| v.as_u64()) {
            longest = longest.max(ttl);
        }
    };
    sc.topology.queues.iter().for_each(&mut queue);
    for a in &sc.timeline {
        if let TimedAction::DeclareQueue { queue: q, .. } = a {
            queue(q);
        }
    }
    let mut props: Vec<&PropsDef> = Vec::new();
    for p in &sc.producers {
        props.push(&p.properties);
        props.extend(p.messages.iter().filter_map(|m| m.properties.as_ref()));
    }
    for c in &sc.consumers {
        props.extend(c.forward.iter().map(|t| &t.properties));
        if let Some(t) = c.failure.as_ref().and_then(|f| f.give_up_to.as_ref()) {
            props.push(&t.properties);
        }
    }
    for a in &sc.timeline {
        if let TimedAction::Publish { properties, .. } = a {
            props.push(properties);
        }
    }
    for p in props {
        longest = longest.max(p.expiration_ms.unwrap_or(0));
    }
    longest
        .saturating_add(1000)
        .min(super::validate::MAX_TIME_MS)
}

/// Queues a scenario declares (topology first, then the timeline), in order.
fn known_queues(sc: &Scenario) -> Vec<String> {
    let mut names: Vec<String> = sc.topology.queues.iter().map(|q| q.name.clone()).collect();
    for a in &sc.timeline {
        if let TimedAction::DeclareQueue { queue, .. } = a {
            if !names.contains(&queue.name) {
                names.push(queue.name.clone());
            }
        }
    }
    names
}

/// Which attempt this delivery is: 1 + the times it was rejected from `queue`
/// (from `x-death`); a redelivered message is at least attempt 2.
fn attempt_of(d: &Delivery, queue: &str) -> u64 {
    let deaths: u64 = d
        .message
        .properties
        .headers
        .as_ref()
        .and_then(|h| h.get("x-death"))
        .and_then(|v| v.as_array())
        .map(|entries| {
            entries
                .iter()
                .filter(|e| {
                    e.get("queue").and_then(|q| q.as_str()) == Some(queue)
                        && e.get("reason").and_then(|r| r.as_str()) == Some("rejected")
                })
                .filter_map(|e| e.get("count").and_then(|c| c.as_u64()))
                .sum()
        })
        .unwrap_or(0);
    let attempt = deaths + 1;
    if d.redelivered {
        attempt.max(2)
    } else {
        attempt
    }
}

fn properties(def: &PropsDef, ctx: &Ctx<'_>) -> SharedProperties {
    let t = |s: &Option<String>| s.as_ref().map(|s| template::render(s, ctx));
    Properties {
        content_type: def.content_type.clone(),
        headers: def.headers.clone(),
        delivery_mode: def.delivery_mode,
        priority: def.priority,
        correlation_id: t(&def.correlation_id),
        reply_to: t(&def.reply_to),
        expiration: def.expiration_ms.map(|ms| ms.to_string()),
        message_id: t(&def.message_id),
        kind: def.kind.clone(),
        ..Properties::default()
    }
    .into()
}

fn target_publish(t: &Target, ctx: &Ctx<'_>) -> Method {
    Method::Publish {
        exchange: (&t.exchange).into(),
        routing_key: template::render(&t.routing_key, ctx).into(),
        body: template::render_body(&t.body, ctx).into(),
        mandatory: false,
        properties: properties(&t.properties, ctx),
    }
}

fn declare_exchange(x: &ExchangeDef) -> Method {
    Method::ExchangeDeclare {
        exchange: x.name.clone(),
        kind: x.kind.into(),
        passive: false,
        durable: x.durable,
        auto_delete: x.auto_delete,
        internal: x.internal,
        arguments: x.arguments.clone(),
    }
}

fn declare_queue(q: &QueueDef) -> Method {
    Method::QueueDeclare {
        queue: q.name.clone(),
        passive: false,
        durable: q.durable,
        exclusive: q.exclusive,
        auto_delete: q.auto_delete,
        arguments: q.arguments.clone(),
    }
}

fn bind(b: &BindingDef, unbind: bool) -> Method {
    let source = b.source.clone();
    let routing_key = b.routing_key.clone();
    let arguments = b.arguments.clone();
    match (&b.queue, unbind) {
        (Some(queue), false) => Method::QueueBind {
            queue: queue.clone(),
            exchange: source,
            routing_key,
            arguments,
        },
        (Some(queue), true) => Method::QueueUnbind {
            queue: queue.clone(),
            exchange: source,
            routing_key,
            arguments,
        },
        (None, false) => Method::ExchangeBind {
            destination: b.exchange.clone().unwrap_or_default(),
            source,
            routing_key,
            arguments,
        },
        (None, true) => Method::ExchangeUnbind {
            destination: b.exchange.clone().unwrap_or_default(),
            source,
            routing_key,
            arguments,
        },
    }
}
