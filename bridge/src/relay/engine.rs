//! The session task: owns the lapin connections and executes requests in order.
//!
//! Requests start in the order they arrive. Most are executed one at a time
//! (the next starts when the previous one's reply is out), but the hot path
//! is pipelined: a publish or an ack that the broker cannot refuse (see
//! [`Engine::pipelined`]) is sent at once and its reply waits in `pending`
//! for what settles it — the publisher confirm, or a round trip on its
//! channel that several such requests share. "Sent" means queued on the
//! lapin channel: the engine does not wait for the connection's I/O thread
//! to write the frames (the settlement does), so frames that arrive together
//! leave together. Replies still come out in
//! request order, and any other request first waits for everything pending
//! to settle, so errors stay attributed to the request that caused them.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRecoverOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    ExchangeUnbindOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::protocol::AMQPErrorKind;
use lapin::types::FieldTable as AmqpTable;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind};
use sim_core::protocol::{
    AmqpError, ChannelId, ConnectionId, ErrorScope, Event, ExchangeKind, ExchangeType, LinkState,
    Method, Outcome, ReplyResult, Request,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::convert::{self, short, Invalid};
use super::names::{generated_queue_name, Namespace, AMQ_EXCHANGES};
use super::{Command, Emitter, RelayConfig};

/// Per-session limits (a browser must not exhaust the broker).
const MAX_CONNECTIONS: usize = 8;
const MAX_CHANNELS: usize = 32;
const MAX_CONSUMERS: usize = 64;

/// Why a request failed.
enum Failure {
    /// The broker closed the channel or connection (scope says which).
    Broker(AmqpError),
    /// The relay refused the request (a limit or rule of the playground's)
    /// or could not reach the broker; nothing was closed.
    Refused(AmqpError),
    /// RabbitMQ's own refusal, said by the relay because the broker never
    /// sees the request as the client sent it (a server-named queue, which
    /// the relay names itself): the channel closes as RabbitMQ's would.
    OnBehalf(AmqpError),
    /// lapin refused locally because the channel is already closing: the
    /// broker's reason arrives on the connection's event stream.
    ChannelGone(AmqpError),
}

impl Failure {
    /// The error, whatever said it.
    fn error(self) -> AmqpError {
        match self {
            Failure::Broker(e)
            | Failure::Refused(e)
            | Failure::OnBehalf(e)
            | Failure::ChannelGone(e) => e,
        }
    }
}

fn refused(scope: ErrorScope, code: u16, name: &str, text: impl Into<String>) -> Failure {
    Failure::Refused(AmqpError {
        scope,
        code,
        name: name.to_string(),
        text: text.into(),
    })
}

fn invalid(e: Invalid) -> Failure {
    refused(ErrorScope::Channel, 406, "PRECONDITION_FAILED", e.0)
}

/// The client's own names longer than an AMQP short string (255 bytes), as
/// the simulation checks them (`502 SYNTAX_ERROR`, connection scope).
fn oversize_short_string(m: &Method) -> Option<AmqpError> {
    let len = m.oversize_short_string()?;
    Some(AmqpError {
        scope: ErrorScope::Connection,
        code: 502,
        name: "SYNTAX_ERROR".into(),
        text: format!("short string of {len} bytes (at most 255)"),
    })
}

fn not_allowed(text: String) -> Failure {
    refused(ErrorScope::Channel, 403, "ACCESS_REFUSED", text)
}

/// Pipelined requests sharing one round trip on a channel.
struct Batch {
    /// Starts the round trip (the batch is closed: nothing joins it after).
    go: Option<tokio::sync::oneshot::Sender<()>>,
    result: ProbeResult,
    len: usize,
}

/// The outcome of a shared round trip (`Err(None)`: it never ran).
type ProbeResult = Shared<BoxFuture<'static, Result<(), Option<lapin::Error>>>>;

/// Pipelined requests per round trip at most (bounds the wait of a reply
/// while a client keeps streaming).
const MAX_BATCH: usize = 64;

impl Batch {
    /// The round trip runs where the batch's requests are awaited (the
    /// engine's task), once the batch is closed.
    fn new(ch: Channel) -> Self {
        let (go, started) = tokio::sync::oneshot::channel::<()>();
        let result = async move {
            if started.await.is_err() {
                return Err(None);
            }
            probe(&ch).await.map_err(Some)
        }
        .boxed()
        .shared();
        Batch {
            go: Some(go),
            result,
            len: 0,
        }
    }
}

/// A channel's delivery tags as the client sees them.
#[derive(Default)]
struct Tags {
    /// Delivered for manual acknowledgement and not settled yet: an
    /// ack/nack/reject of one of them cannot fail, so it is pipelined.
    unacked: BTreeSet<u64>,
    /// Added to the broker's tags. After an outage the broker numbers the
    /// reopened channel's deliveries from 1 again; the client's numbering
    /// goes on from the largest tag it saw.
    offset: u64,
    /// The largest tag the client has seen.
    max: u64,
    /// Deliveries that reach an older incarnation of the channel are dropped
    /// (RabbitMQ requeued them when the connection died).
    incarnation: u64,
}

impl Tags {
    /// The client's tag of a delivery (`None`: stale).
    fn delivered(&mut self, incarnation: u64, broker_tag: u64, manual_ack: bool) -> Option<u64> {
        if incarnation != self.incarnation {
            return None;
        }
        let tag = broker_tag + self.offset;
        self.max = self.max.max(tag);
        if manual_ack {
            self.unacked.insert(tag);
        }
        Some(tag)
    }

    /// The broker's tag for a client's (`None`: a delivery from before the
    /// outage, which the broker has requeued already). 0 stays 0 ("all").
    fn to_broker(&self, tag: u64) -> Option<u64> {
        match tag {
            0 => Some(0),
            t if t <= self.offset => None,
            t => Some(t - self.offset),
        }
    }

    /// Forgets settled tags (`multiple`: every tag up to `tag`, all for 0).
    fn settle(&mut self, tag: u64, multiple: bool) {
        if multiple {
            if tag == 0 {
                self.unacked.clear();
            } else {
                self.unacked = self.unacked.split_off(&(tag + 1));
            }
        } else {
            self.unacked.remove(&tag);
        }
    }

    /// The channel was reopened after an outage.
    fn reopened(&mut self, incarnation: u64) {
        self.offset = self.max;
        self.unacked.clear();
        self.incarnation = incarnation;
    }
}

/// How a consumer's task ended, seen by the engine.
#[derive(Default)]
struct ConsumerFlags {
    /// The client cancelled it (or closed its channel): no cancel to report.
    ended_by_client: AtomicBool,
    /// The broker cancelled it (its queue was deleted): nothing to restore.
    cancelled_by_broker: AtomicBool,
}

/// A consumer, as the client made it (to make it again after an outage).
struct ConsumerSpec {
    /// Broker-side queue name.
    queue: String,
    no_ack: bool,
    exclusive: bool,
    arguments: AmqpTable,
    /// The channel's per-consumer prefetch when it was made.
    prefetch: u16,
    /// Creation order.
    order: u64,
    flags: Arc<ConsumerFlags>,
}

struct Chan {
    ch: Channel,
    /// Distinguishes this channel from a later one with the same number.
    incarnation: u64,
    confirm: bool,
    seq: u64,
    /// consumer tag → how to make it again, and its task's flags.
    consumers: HashMap<String, ConsumerSpec>,
    /// `basic_qos` as set: per consumer (`global: false`) and per channel.
    prefetch: u16,
    global_prefetch: Option<u16>,
    /// The queue last declared on the channel (client name): AMQP's
    /// empty-queue-name shortcut.
    last_queue: Option<String>,
    tags: Arc<Mutex<Tags>>,
    /// The open round-trip batch of pipelined requests, if any.
    batch: Option<Batch>,
}

impl Chan {
    fn new(ch: Channel, incarnation: u64) -> Self {
        Chan {
            ch,
            incarnation,
            confirm: false,
            seq: 0,
            consumers: HashMap::new(),
            prefetch: 0,
            global_prefetch: None,
            last_queue: None,
            tags: Arc::new(Mutex::new(Tags {
                incarnation,
                ..Tags::default()
            })),
            batch: None,
        }
    }

    fn tags(&self) -> std::sync::MutexGuard<'_, Tags> {
        self.tags.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the round trip that settles the open batch.
    fn close_batch(&mut self) {
        if let Some(go) = self.batch.take().and_then(|mut b| b.go.take()) {
            let _ = go.send(());
        }
    }

    /// Joins the open batch (opening one): the future settles when the batch's
    /// round trip is back.
    fn join_batch(&mut self) -> ProbeResult {
        let ch = &self.ch;
        let batch = self.batch.get_or_insert_with(|| Batch::new(ch.clone()));
        batch.len += 1;
        let result = batch.result.clone();
        if batch.len >= MAX_BATCH {
            self.close_batch();
        }
        result
    }

    fn expect_consumer_ends(&self) {
        for spec in self.consumers.values() {
            spec.flags.ended_by_client.store(true, Ordering::SeqCst);
        }
    }
}

struct Conn {
    conn: Connection,
    generation: u64,
    /// Channel errors (soft) reported by the connection's event stream.
    soft_errors: mpsc::UnboundedReceiver<lapin::Error>,
    chans: HashMap<ChannelId, Chan>,
}

impl Conn {
    fn expect_consumer_ends(&self) {
        self.chans.values().for_each(Chan::expect_consumer_ends);
    }
}

/// What the session declared, to re-declare it after the broker came back
/// from an outage the client did not ask for.
#[derive(Default)]
struct Topology {
    exchanges: Vec<(
        String,
        lapin::ExchangeKind,
        ExchangeDeclareOptions,
        AmqpTable,
    )>,
    queues: Vec<(String, QueueDeclareOptions, AmqpTable)>,
    /// Exclusive queues die with their connection: (owner, name, options,
    /// arguments), re-declared on the owner when it is reopened.
    exclusive: Vec<(ConnectionId, String, QueueDeclareOptions, AmqpTable)>,
    /// (exchange-to-exchange?, destination, source, key, arguments)
    bindings: Vec<Binding>,
}

type Binding = (bool, String, String, String, AmqpTable);

impl Topology {
    fn forget_exchange(&mut self, name: &str) {
        self.exchanges.retain(|x| x.0 != name);
        self.bindings
            .retain(|b| b.2 != name && !(b.0 && b.1 == name));
    }

    fn forget_queue(&mut self, name: &str) {
        self.queues.retain(|q| q.0 != name);
        self.exclusive.retain(|q| q.1 != name);
        self.bindings.retain(|b| b.0 || b.1 != name);
    }

    /// Forgets how a queue was declared (not its bindings): it is declared anew.
    fn forget_queue_declaration(&mut self, name: &str) {
        self.queues.retain(|q| q.0 != name);
        self.exclusive.retain(|q| q.1 != name);
    }

    /// Connection `c` ended for good: its exclusive queues are gone.
    fn forget_owner(&mut self, c: ConnectionId) {
        let gone: Vec<String> = self
            .exclusive
            .iter()
            .filter(|q| q.0 == c)
            .map(|q| q.1.clone())
            .collect();
        for q in gone {
            self.forget_queue(&q);
        }
    }

    fn is_exclusive(&self, queue: &str) -> Option<ConnectionId> {
        self.exclusive.iter().find(|q| q.1 == queue).map(|q| q.0)
    }

    /// After a broker restart only durable objects (and bindings between
    /// them) exist.
    fn keep_durable(&mut self, durable_copies: &[String]) {
        self.exchanges.retain(|x| x.2.durable);
        self.queues.retain(|q| q.1.durable);
        self.exclusive.clear();
        let exchanges: Vec<String> = self
            .exchanges
            .iter()
            .map(|x| x.0.clone())
            .chain(durable_copies.iter().cloned())
            .collect();
        let queues: Vec<String> = self.queues.iter().map(|q| q.0.clone()).collect();
        self.bindings.retain(|b| {
            let dest_ok = if b.0 {
                exchanges.contains(&b.1)
            } else {
                queues.contains(&b.1)
            };
            dest_ok && exchanges.contains(&b.2)
        });
    }
}

/// Automatic reconnection of connection 1 (broker down at start, or gone).
struct Retry {
    at: tokio::time::Instant,
    backoff: Duration,
    restore: bool,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Retries after an outage in mid-session (the broker was up, so it is
/// probably restarting) stay frequent: the session is back within about 2 s
/// of RabbitMQ accepting connections again.
const OUTAGE_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A pipelined request whose reply waits for what settles it.
struct Settled {
    id: u64,
    c: ConnectionId,
    n: ChannelId,
    incarnation: u64,
    how: Settlement,
}

enum Settlement {
    /// A publish in confirm mode: its confirm (or the channel's end).
    Confirmed {
        seq: u64,
        message_id: u64,
        result: Box<Result<lapin::Confirmation, lapin::Error>>,
    },
    /// A publish without confirms or an ack/nack/reject: the shared round
    /// trip after it.
    RoundTrip {
        outcome: Outcome,
        result: Result<(), Option<lapin::Error>>,
    },
}

pub(crate) struct Engine {
    cfg: RelayConfig,
    ns: Namespace,
    em: Emitter,
    /// Weak, so dropping the `Session` ends the engine (and cleans up).
    commands: mpsc::WeakUnboundedSender<Command>,
    conns: HashMap<ConnectionId, Conn>,
    /// Broker-side names of everything declared, for cleanup.
    queues: BTreeSet<String>,
    exchanges: BTreeSet<String>,
    topology_ready: bool,
    topology: Topology,
    retry: Option<Retry>,
    /// Connections the broker dropped (it went away), with their channels as
    /// they were: reopened as they were when it is back.
    lost: std::collections::BTreeMap<ConnectionId, HashMap<ChannelId, Chan>>,
    next_message_id: u64,
    generation: u64,
    next_incarnation: u64,
    next_consumer: u64,
    /// Pipelined requests in request order (see the module docs); in a
    /// mutex only so that the engine is `Sync` (it is never locked).
    pending: Mutex<FuturesOrdered<BoxFuture<'static, Settled>>>,
}

impl Engine {
    pub(crate) fn new(
        cfg: RelayConfig,
        ns: Namespace,
        em: Emitter,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        Engine {
            cfg,
            ns,
            em,
            commands,
            conns: HashMap::new(),
            queues: BTreeSet::new(),
            exchanges: BTreeSet::new(),
            topology_ready: false,
            topology: Topology::default(),
            retry: None,
            lost: std::collections::BTreeMap::new(),
            next_message_id: 1,
            generation: 0,
            next_incarnation: 0,
            next_consumer: 0,
            pending: Mutex::new(FuturesOrdered::new()),
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        match self.open_connection(1).await {
            Ok(()) => self.em.emit(Event::Status {
                broker: LinkState::Up,
                detail: String::new(),
            }),
            Err(failure) => {
                let e = failure.error();
                self.em.emit(Event::Status {
                    broker: LinkState::Down,
                    detail: format!("{} (retrying in 1 s)", e.text),
                });
                self.retry = Some(Retry {
                    at: tokio::time::Instant::now() + Duration::from_secs(1),
                    backoff: Duration::from_secs(1),
                    restore: false,
                });
            }
        }
        let mut ack = None;
        loop {
            if rx.is_empty() {
                // Nothing else to send now: start the round trips that settle
                // the pipelined requests.
                self.close_batches();
            }
            let retry_at = self.retry.as_ref().map(|r| r.at);
            let cmd = tokio::select! {
                biased;
                Some(settled) = self.pending().next(), if !self.pending().is_empty() => {
                    self.settle(settled).await;
                    continue;
                }
                cmd = rx.recv() => cmd,
                _ = sleep_until(retry_at), if retry_at.is_some() => {
                    self.reconnect().await;
                    continue;
                }
            };
            let Some(cmd) = cmd else { break };
            match cmd {
                Command::Request(req) => self.handle(*req).await,
                Command::ConnectionLost {
                    connection,
                    generation,
                    error,
                } => self.connection_lost(connection, generation, &error),
                Command::Shutdown(done) => {
                    ack = Some(done);
                    break;
                }
            }
        }
        self.cleanup().await;
        if let Some(done) = ack {
            let _ = done.send(());
        }
    }

    /// Writes to the crash journal, if the session keeps one.
    fn journal(&self, f: impl FnOnce(&super::journal::Journal)) {
        if let Some(j) = &self.cfg.journal {
            f(j);
        }
    }

    fn redact(&self, text: &str) -> String {
        text.replace(&self.cfg.amqp_url, "<amqp-url>")
            .replace(self.ns.prefix(), "")
    }

    /// lapin error → protocol error (names inside the text mapped back).
    fn failure(&self, e: &lapin::Error) -> Failure {
        match e.kind() {
            ErrorKind::ProtocolError(err) => {
                let full = self.redact(err.get_message().as_str());
                let (name, text) = match full.split_once(" - ") {
                    Some((n, t)) => (n.trim().to_string(), t.to_string()),
                    None => (full.trim().to_string(), String::new()),
                };
                let scope = match err.kind() {
                    AMQPErrorKind::Hard(_) => ErrorScope::Connection,
                    AMQPErrorKind::Soft(_) => ErrorScope::Channel,
                };
                Failure::Broker(AmqpError {
                    scope,
                    code: err.get_id(),
                    name,
                    text,
                })
            }
            ErrorKind::InvalidChannelState(..) | ErrorKind::InvalidChannel(_) => {
                Failure::ChannelGone(AmqpError {
                    scope: ErrorScope::Channel,
                    code: 504,
                    name: "CHANNEL_ERROR".into(),
                    text: format!("channel is closed ({})", self.redact(&e.to_string())),
                })
            }
            _ => Failure::Broker(AmqpError {
                scope: ErrorScope::Connection,
                code: 320,
                name: "CONNECTION_FORCED".into(),
                text: self.redact(&e.to_string()),
            }),
        }
    }

    async fn handle(&mut self, req: Request) {
        let (c, ch) = (req.connection, req.channel);
        debug!(op = req.method.op(), id = req.id, "request");
        // The connection is being re-established in the background: try now
        // rather than fail the request.
        let own_call = matches!(
            req.method,
            Method::ConnectionOpen | Method::ConnectionClose | Method::BrokerRestart
        );
        if self.retry.is_some()
            && !self.conns.contains_key(&c)
            && (c == 1 || self.lost.contains_key(&c))
            && !own_call
        {
            if let Some(r) = self.retry.as_mut() {
                r.at = tokio::time::Instant::now();
            }
            self.reconnect().await;
        }
        if self.lost.contains_key(&c) && !own_call {
            self.drain().await;
            let e = AmqpError {
                scope: ErrorScope::Connection,
                code: 0,
                name: "BROKER_UNREACHABLE".into(),
                text: format!(
                    "RabbitMQ is unreachable; connection {c} is reopened as it was when it is back"
                ),
            };
            self.finish(req.id, c, ch, Err(Failure::Refused(e))).await;
            return;
        }
        match self.pipelined(&req).await {
            Some(Ok(settles)) => {
                self.pending().push_back(settles);
                return;
            }
            Some(Err(failure)) => {
                self.drain().await;
                self.finish(req.id, c, ch, Err(failure)).await;
                return;
            }
            None => self.drain().await,
        }
        let unopened_channel = !matches!(
            req.method,
            Method::ConnectionOpen
                | Method::ConnectionClose
                | Method::ChannelOpen
                | Method::ChannelClose
                | Method::BrokerRestart
        ) && self
            .conns
            .get(&c)
            .is_some_and(|conn| !conn.chans.contains_key(&ch));
        let synthetic = oversize_short_string(&req.method).or_else(|| {
            // RabbitMQ closes the connection when a method arrives on a
            // channel that is not open; so does the simulation.
            unopened_channel.then(|| AmqpError {
                scope: ErrorScope::Connection,
                code: 504,
                name: "CHANNEL_ERROR".into(),
                text: format!("expected 'channel.open' (channel {ch} is not open)"),
            })
        });
        if let Some(e) = synthetic {
            // A name that no AMQP frame can carry: the simulation's answer (a
            // connection error, as a broker gives for a malformed frame), and
            // the connection really closes so the client's picture is right.
            if let Some(old) = self.conns.remove(&c) {
                old.expect_consumer_ends();
                let _ = old.conn.close(200, "OK".into()).await;
            }
            self.em.emit(Event::Closed {
                connection: c,
                channel: None,
                error: e.clone(),
            });
            self.em.emit(Event::Reply {
                id: req.id,
                result: ReplyResult::Error(e),
            });
            return;
        }
        if let Some(conn) = self.conns.get_mut(&c) {
            while conn.soft_errors.try_recv().is_ok() {}
        }
        let outcome = self.exec(&req).await;
        self.finish(req.id, c, ch, outcome).await;
    }

    /// A channel error the relay says for RabbitMQ closes the channel as
    /// RabbitMQ's own would: its consumers end and what it held unacked goes
    /// back. Left open, a consumer the client thinks gone kept counting
    /// (s2044-p8415, regression 031).
    async fn close_on_behalf(&mut self, c: ConnectionId, ch: ChannelId, e: &AmqpError) {
        if e.scope != ErrorScope::Channel {
            return;
        }
        let Some(chan) = self
            .conns
            .get_mut(&c)
            .and_then(|conn| conn.chans.remove(&ch))
        else {
            return;
        };
        chan.expect_consumer_ends();
        let _ = chan.ch.close(200, "OK".into()).await;
        self.em.emit(Event::Closed {
            connection: c,
            channel: Some(ch),
            error: e.clone(),
        });
    }

    /// Emits the reply of request `id` (and the `closed` event of an error
    /// that closed its channel or connection).
    async fn finish(
        &mut self,
        id: u64,
        c: ConnectionId,
        ch: ChannelId,
        outcome: Result<Outcome, Failure>,
    ) {
        let mut outcome = outcome;
        if let Err(Failure::ChannelGone(e)) = outcome {
            outcome = Err(self.channel_close_reason(c, e).await);
        }
        let result = match outcome {
            Ok(outcome) => ReplyResult::Ok(outcome),
            Err(Failure::Refused(e)) => ReplyResult::Error(e),
            Err(Failure::OnBehalf(e)) => {
                self.close_on_behalf(c, ch, &e).await;
                ReplyResult::Error(e)
            }
            Err(Failure::Broker(e) | Failure::ChannelGone(e)) => {
                match e.scope {
                    ErrorScope::Channel => {
                        if let Some(conn) = self.conns.get_mut(&c) {
                            conn.chans.remove(&ch);
                        }
                        self.em.emit(Event::Closed {
                            connection: c,
                            channel: Some(ch),
                            error: e.clone(),
                        });
                    }
                    ErrorScope::Connection if e.code == 320 && self.conns.contains_key(&c) => {
                        // The broker went away: the connection is restored
                        // when it is back (see `lose`).
                        self.lose(c, &e);
                        return self.em.emit(Event::Reply {
                            id,
                            result: ReplyResult::Error(AmqpError {
                                scope: ErrorScope::Connection,
                                code: 0,
                                name: "BROKER_UNREACHABLE".into(),
                                text: format!(
                                    "the connection to RabbitMQ was lost ({} {}); reconnecting",
                                    e.name, e.text
                                ),
                            }),
                        });
                    }
                    ErrorScope::Connection => {
                        self.conns.remove(&c);
                        self.topology.forget_owner(c);
                        self.em.emit(Event::Closed {
                            connection: c,
                            channel: None,
                            error: e.clone(),
                        });
                    }
                }
                ReplyResult::Error(e)
            }
        };
        self.em.emit(Event::Reply { id, result });
    }

    /// The broker's reason for closing a channel that lapin already knows is
    /// closed (waits briefly for the connection's event stream to report it).
    async fn channel_close_reason(&mut self, c: ConnectionId, fallback: AmqpError) -> Failure {
        let Some(conn) = self.conns.get_mut(&c) else {
            return Failure::Broker(fallback);
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        let mut last = None;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, conn.soft_errors.recv()).await {
            last = Some(e);
            if conn.soft_errors.is_empty() {
                break;
            }
        }
        match last {
            Some(e) => Failure::Broker(self.failure(&e).error()),
            None => Failure::Broker(fallback),
        }
    }

    fn connection_lost(&mut self, c: ConnectionId, generation: u64, error: &lapin::Error) {
        let Some(conn) = self.conns.get(&c) else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        if conn.conn.status().connected() {
            // lapin reports some channel-level trouble on the connection's
            // event stream too; the connection itself is fine.
            debug!(connection = c, %error, "error event on a live connection");
            return;
        }
        let e = self.failure(error).error();
        let e = AmqpError {
            scope: ErrorScope::Connection,
            ..e
        };
        info!(connection = c, error = %e.name, "connection lost");
        let broker_gone = e.code == 320 || e.code == 0 || error.is_io_error();
        if broker_gone {
            self.lose(c, &e);
            return;
        }
        self.conns.remove(&c);
        self.topology.forget_owner(c);
        self.em.emit(Event::Closed {
            connection: c,
            channel: None,
            error: e.clone(),
        });
    }

    /// The broker went away under connection `c` (it stopped, or forced the
    /// connection closed): keeps what the connection had, to reopen it as it
    /// was, and starts reconnecting. The client is told by `status` frames,
    /// not `closed`: it has nothing to reopen itself.
    fn lose(&mut self, c: ConnectionId, e: &AmqpError) {
        if let Some(conn) = self.conns.remove(&c) {
            conn.expect_consumer_ends();
            let Conn {
                conn: amqp,
                mut chans,
                ..
            } = conn;
            for chan in chans.values_mut() {
                chan.batch = None;
            }
            if amqp.status().connected() {
                tokio::spawn(async move {
                    let _ = amqp.close(200, "OK".into()).await;
                });
            }
            self.lost.insert(c, chans);
        }
        if self.retry.is_none() {
            self.em.emit(Event::Status {
                broker: LinkState::Reconnecting,
                detail: format!("connection to RabbitMQ lost: {} {}", e.name, e.text),
            });
            self.topology_ready = false;
            self.retry = Some(Retry {
                at: tokio::time::Instant::now() + Duration::from_millis(500),
                backoff: Duration::from_secs(1),
                restore: true,
            });
        }
    }

    /// One reconnection attempt (with backoff on failure): connection 1 of a
    /// session that started while RabbitMQ was down, or every lost connection.
    async fn reconnect(&mut self) {
        let Some(retry) = self.retry.take() else {
            return;
        };
        let result = if retry.restore {
            self.restore().await
        } else if self.conns.contains_key(&1) {
            Ok(String::new())
        } else {
            self.open_connection(1).await.map(|()| String::new())
        };
        match result {
            Ok(detail) => {
                self.em.emit(Event::Status {
                    broker: LinkState::Up,
                    detail,
                });
            }
            Err(failure) => {
                let e = failure.error();
                let cap = if retry.restore {
                    OUTAGE_MAX_BACKOFF
                } else {
                    MAX_BACKOFF
                };
                let backoff = (retry.backoff * 2).min(cap);
                self.em.emit(Event::Status {
                    broker: LinkState::Down,
                    detail: format!("{} (retrying in {} s)", e.text, backoff.as_secs()),
                });
                self.retry = Some(Retry {
                    at: tokio::time::Instant::now() + backoff,
                    backoff,
                    restore: retry.restore,
                });
            }
        }
    }

    /// Reopens every lost connection and its channels as they were, after
    /// re-declaring the session's topology: exchanges, queues (exclusive ones
    /// on their own connection), bindings; then per channel `basic_qos`,
    /// confirm mode and the consumers (same tags, arguments and prefetch).
    /// Returns the `status` detail.
    async fn restore(&mut self) -> Result<String, Failure> {
        // Open every connection first: if the broker is not back, nothing
        // changes and the attempt is made again later.
        let ids: Vec<ConnectionId> = self.lost.keys().copied().collect();
        let mut opened = Vec::new();
        for &c in &ids {
            match self.connect_conn(c).await {
                Ok(conn) => opened.push((c, conn)),
                Err(e) => {
                    for (_, conn) in opened {
                        let _ = conn.conn.close(200, "OK".into()).await;
                    }
                    return Err(e);
                }
            }
        }
        for (c, conn) in opened {
            self.conns.insert(c, conn);
        }
        let Some(&first) = self.conns.keys().min() else {
            return Ok("reconnected".to_string());
        };
        self.ensure_topology(first).await;
        let mut detail = self.redeclare(first, false).await;
        let mut failed = 0;
        for &c in &ids {
            failed += self.redeclare_exclusive(c).await;
        }
        let (mut channels, mut consumers) = (0, 0);
        for &c in &ids {
            let Some(chans) = self.lost.remove(&c) else {
                continue;
            };
            let mut chans: Vec<(ChannelId, Chan)> = chans.into_iter().collect();
            chans.sort_by_key(|(n, _)| *n);
            for (n, chan) in chans {
                match self.reopen_channel(c, n, chan).await {
                    Ok((made, missed)) => {
                        channels += 1;
                        consumers += made;
                        failed += missed;
                    }
                    Err(_) => failed += 1,
                }
            }
        }
        detail.push_str(&format!(
            "; reopened {} connections, {channels} channels, {consumers} consumers",
            ids.len()
        ));
        if failed > 0 {
            detail.push_str(&format!(" ({failed} failed)"));
        }
        Ok(detail)
    }

    /// Re-declares connection `c`'s exclusive queues and their bindings on it
    /// (the broker deleted them with the old connection). Returns failures.
    async fn redeclare_exclusive(&mut self, c: ConnectionId) -> usize {
        let Some(conn) = self.conns.get(&c) else {
            return 0;
        };
        let mine: Vec<_> = self
            .topology
            .exclusive
            .iter()
            .filter(|q| q.0 == c)
            .cloned()
            .collect();
        if mine.is_empty() {
            return 0;
        }
        let Ok(mut ch) = conn.conn.create_channel().await else {
            return mine.len();
        };
        let mut failed = 0;
        for (_, name, opts, args) in &mine {
            let Ok(q) = short("queue", name) else {
                continue;
            };
            let mut ok = ch.queue_declare(q, *opts, args.clone()).await.is_ok();
            for (_, dest, src, key, bargs) in self
                .topology
                .bindings
                .iter()
                .filter(|b| !b.0 && &b.1 == name)
            {
                if !ok {
                    break;
                }
                let (Ok(d), Ok(x), Ok(k)) = (
                    short("queue", dest),
                    short("exchange", src),
                    short("routing_key", key),
                ) else {
                    continue;
                };
                ok = ch
                    .queue_bind(d, x, k, QueueBindOptions::default(), bargs.clone())
                    .await
                    .is_ok();
            }
            if !ok {
                failed += 1;
                let Ok(fresh) = conn.conn.create_channel().await else {
                    break;
                };
                ch = fresh;
            }
        }
        let _ = ch.close(200, "OK".into()).await;
        failed
    }

    /// Opens channel `n` of connection `c` again with what `old` had: qos,
    /// confirm mode (its sequence numbers go on), consumers. Returns the
    /// consumers made and those that could not be (reported to the client as
    /// cancelled).
    async fn reopen_channel(
        &mut self,
        c: ConnectionId,
        n: ChannelId,
        mut chan: Chan,
    ) -> Result<(usize, usize), Failure> {
        let mut specs: Vec<(String, ConsumerSpec)> = chan
            .consumers
            .drain()
            .filter(|(_, spec)| !spec.flags.cancelled_by_broker.load(Ordering::SeqCst))
            .collect();
        specs.sort_by_key(|(_, spec)| spec.order);
        let mut missed = 0;
        loop {
            let conn = self.conn(c)?;
            let ch = conn
                .conn
                .create_channel()
                .await
                .map_err(|e| self.failure(&e))?;
            self.next_incarnation += 1;
            let incarnation = self.next_incarnation;
            if let Some(p) = chan.global_prefetch {
                let opts = BasicQosOptions { global: true };
                ch.basic_qos(p, opts).await.map_err(|e| self.failure(&e))?;
            }
            if chan.confirm {
                ch.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| self.failure(&e))?;
            }
            chan.tags().reopened(incarnation);
            let mut prefetch = 0;
            let mut refused_at = None;
            let mut made = Vec::new();
            for (i, (tag, spec)) in specs.iter().enumerate() {
                if spec.prefetch != prefetch {
                    let opts = BasicQosOptions { global: false };
                    ch.basic_qos(spec.prefetch, opts)
                        .await
                        .map_err(|e| self.failure(&e))?;
                    prefetch = spec.prefetch;
                }
                let (Ok(q), Ok(t)) = (short("queue", &spec.queue), short("consumer_tag", tag))
                else {
                    continue;
                };
                let opts = BasicConsumeOptions {
                    no_local: false,
                    no_ack: spec.no_ack,
                    exclusive: spec.exclusive,
                    nowait: false,
                };
                match ch.basic_consume(q, t, opts, spec.arguments.clone()).await {
                    Ok(consumer) => made.push(consumer),
                    Err(_) => {
                        refused_at = Some(i);
                        break;
                    }
                }
            }
            if let Some(i) = refused_at {
                // Its queue is gone (the channel is closed by now): tell the
                // client, and make the channel again without it.
                let (tag, _) = specs.remove(i);
                missed += 1;
                self.em.emit(Event::ConsumerCancelled {
                    connection: c,
                    channel: n,
                    consumer_tag: tag,
                });
                continue;
            }
            if prefetch != chan.prefetch {
                let opts = BasicQosOptions { global: false };
                ch.basic_qos(chan.prefetch, opts)
                    .await
                    .map_err(|e| self.failure(&e))?;
            }
            let count = made.len();
            for ((tag, mut spec), consumer) in specs.into_iter().zip(made) {
                let flags = Arc::new(ConsumerFlags::default());
                spec.flags = flags.clone();
                let no_ack = spec.no_ack;
                chan.consumers.insert(tag, spec);
                let tags = chan.tags.clone();
                self.spawn_consumer(c, n, ch.clone(), consumer, no_ack, flags, tags, incarnation);
            }
            chan.ch = ch;
            chan.incarnation = incarnation;
            chan.batch = None;
            self.conn(c)?.chans.insert(n, chan);
            return Ok((count, missed));
        }
    }

    /// Re-declares the recorded topology on connection 1; with
    /// `bindings_only`, just the bindings (after a broker restart, the
    /// surviving durable queues' bindings to the session's transient copies of
    /// the broker's durable exchanges).
    async fn redeclare(&mut self, c: ConnectionId, bindings_only: bool) -> String {
        let Some(conn) = self.conns.get(&c) else {
            return String::new();
        };
        let Ok(mut ch) = conn.conn.create_channel().await else {
            return "reconnected; topology not restored".to_string();
        };
        let mut failed = 0;
        let t = &self.topology;
        let none = Topology::default();
        let objects = if bindings_only { &none } else { t };
        for (name, kind, opts, args) in &objects.exchanges {
            let Ok(n) = short("exchange", name) else {
                continue;
            };
            if ch
                .exchange_declare(n, kind.clone(), *opts, args.clone())
                .await
                .is_err()
            {
                failed += 1;
                let Ok(c) = conn.conn.create_channel().await else {
                    break;
                };
                ch = c;
            }
        }
        for (name, opts, args) in &objects.queues {
            let Ok(n) = short("queue", name) else {
                continue;
            };
            if ch.queue_declare(n, *opts, args.clone()).await.is_err() {
                failed += 1;
                let Ok(c) = conn.conn.create_channel().await else {
                    break;
                };
                ch = c;
            }
        }
        // Bindings of exclusive queues are made on their own connection.
        let shared = t
            .bindings
            .iter()
            .filter(|b| b.0 || t.is_exclusive(&b.1).is_none());
        for (e2e, dest, src, key, args) in shared {
            let (Ok(d), Ok(sname), Ok(k)) = (
                short("destination", dest),
                short("source", src),
                short("routing_key", key),
            ) else {
                continue;
            };
            let r = if *e2e {
                ch.exchange_bind(d, sname, k, ExchangeBindOptions::default(), args.clone())
                    .await
            } else {
                ch.queue_bind(d, sname, k, QueueBindOptions::default(), args.clone())
                    .await
            };
            if r.is_err() {
                failed += 1;
                let Ok(c) = conn.conn.create_channel().await else {
                    break;
                };
                ch = c;
            }
        }
        let _ = ch.close(200, "OK".into()).await;
        let failed = if failed > 0 {
            format!(" ({failed} failed)")
        } else {
            String::new()
        };
        format!(
            "reconnected; re-declared {} exchanges, {} queues, {} bindings{failed}",
            t.exchanges.len(),
            t.queues.len(),
            t.bindings.len(),
        )
    }

    // ------------------------------------------------------------ connections

    async fn connect(&self) -> Result<Connection, Failure> {
        let props = ConnectionProperties::default()
            .with_connection_name(format!("amqp-playground {}", self.ns.prefix()).into());
        match tokio::time::timeout(
            self.cfg.connect_timeout,
            Connection::connect(&self.cfg.amqp_url, props),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(refused(
                ErrorScope::Connection,
                0,
                "BROKER_UNREACHABLE",
                format!("broker unreachable: {}", self.redact(&e.to_string())),
            )),
            Err(_) => Err(refused(
                ErrorScope::Connection,
                0,
                "BROKER_UNREACHABLE",
                format!(
                    "broker unreachable: no answer within {} ms",
                    self.cfg.connect_timeout.as_millis()
                ),
            )),
        }
    }

    async fn open_connection(&mut self, c: ConnectionId) -> Result<(), Failure> {
        if let Some(old) = self.conns.remove(&c) {
            old.expect_consumer_ends();
            let _ = old.conn.close(200, "OK".into()).await;
        }
        if self.conns.len() >= MAX_CONNECTIONS {
            return Err(refused(
                ErrorScope::Connection,
                530,
                "NOT_ALLOWED",
                format!("the playground allows at most {MAX_CONNECTIONS} connections per session"),
            ));
        }
        self.lost.remove(&c);
        self.topology.forget_owner(c);
        let mut conn = self.connect_conn(c).await?;
        let ch = conn
            .conn
            .create_channel()
            .await
            .map_err(|e| self.failure(&e))?;
        self.next_incarnation += 1;
        conn.chans.insert(1, Chan::new(ch, self.next_incarnation));
        self.conns.insert(c, conn);
        self.ensure_topology(c).await;
        Ok(())
    }

    /// A new AMQP connection for protocol connection `c` (no channels yet),
    /// its error events forwarded to the engine.
    async fn connect_conn(&mut self, c: ConnectionId) -> Result<Conn, Failure> {
        let conn = self.connect().await?;
        self.generation += 1;
        let generation = self.generation;
        let commands = self.commands.clone();
        let mut events = conn.events_listener();
        let (soft_tx, soft_errors) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                if let lapin::Event::Error(error) = ev {
                    // Channel-level (soft) errors are reported with their request.
                    let soft = matches!(error.kind(), ErrorKind::ProtocolError(e)
                        if matches!(e.kind(), AMQPErrorKind::Soft(_)));
                    if soft {
                        let _ = soft_tx.send(error);
                    } else {
                        let Some(commands) = commands.upgrade() else {
                            break;
                        };
                        let lost = Command::ConnectionLost {
                            connection: c,
                            generation,
                            error,
                        };
                        if commands.send(lost).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Conn {
            conn,
            generation,
            soft_errors,
            chans: HashMap::new(),
        })
    }

    /// Declares the session's private copies of the `amq.*` exchanges.
    async fn ensure_topology(&mut self, c: ConnectionId) {
        if self.topology_ready {
            return;
        }
        let Some(conn) = self.conns.get(&c) else {
            return;
        };
        let ch = match conn.conn.create_channel().await {
            Ok(ch) => ch,
            Err(e) => {
                warn!(error = %e, "cannot open a channel for the amq.* copies");
                return;
            }
        };
        let mut ok = true;
        let default = ("", "direct");
        for (name, kind) in std::iter::once(default).chain(AMQ_EXCHANGES) {
            let real = self.ns.publish_exchange(name);
            self.journal(|j| j.exchange(&real));
            let Ok(real_short) = short("exchange", &real) else {
                ok = false;
                continue;
            };
            let kind = match kind {
                "fanout" => lapin::ExchangeKind::Fanout,
                "topic" => lapin::ExchangeKind::Topic,
                "headers" => lapin::ExchangeKind::Headers,
                _ => lapin::ExchangeKind::Direct,
            };
            match ch
                .exchange_declare(
                    real_short,
                    kind,
                    // Transient, so that a bridge killed before its cleanup
                    // leaves nothing behind a broker restart; bindings of
                    // durable queues to them are re-made after `broker_restart`
                    // (the originals are durable).
                    ExchangeDeclareOptions::default(),
                    AmqpTable::default(),
                )
                .await
            {
                Ok(()) => {
                    self.exchanges.insert(real);
                }
                Err(e) => {
                    warn!(error = %e, "cannot declare a session copy of {name}");
                    ok = false;
                    break;
                }
            }
        }
        let _ = ch.close(200, "OK".into()).await;
        self.topology_ready = ok;
    }

    fn conn(&mut self, c: ConnectionId) -> Result<&mut Conn, Failure> {
        self.conns.get_mut(&c).ok_or_else(|| {
            refused(
                ErrorScope::Connection,
                504,
                "CHANNEL_ERROR",
                format!("connection {c} is not open (send connection_open)"),
            )
        })
    }

    fn chan(&mut self, c: ConnectionId, n: ChannelId) -> Result<&mut Chan, Failure> {
        self.conn(c)?.chans.get_mut(&n).ok_or_else(|| {
            refused(
                ErrorScope::Channel,
                504,
                "CHANNEL_ERROR",
                format!("channel {n} of connection {c} is not open (send channel_open)"),
            )
        })
    }

    fn channel(&mut self, c: ConnectionId, n: ChannelId) -> Result<Channel, Failure> {
        Ok(self.chan(c, n)?.ch.clone())
    }

    // ------------------------------------------------------------ pipelining

    fn pending(&mut self) -> &mut FuturesOrdered<BoxFuture<'static, Settled>> {
        self.pending.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts every open round-trip batch.
    fn close_batches(&mut self) {
        for conn in self.conns.values_mut() {
            conn.chans.values_mut().for_each(Chan::close_batch);
        }
    }

    /// Waits for every pipelined request to settle and emits their replies.
    async fn drain(&mut self) {
        self.close_batches();
        while let Some(settled) = self.pending().next().await {
            self.settle(settled).await;
        }
    }

    /// Whether the broker cannot refuse a publish to `exchange` with these
    /// properties: the exchange is one the session itself declared and has
    /// not deleted (nobody else may touch the namespace), not internal and not
    /// auto-deleting, or one of the stand-ins for the default and `amq.*`
    /// exchanges; and no property RabbitMQ validates is set (`expiration`,
    /// `user_id`, `CC`/`BCC` headers).
    fn publish_cannot_fail(&self, exchange: &str, p: &sim_core::protocol::Properties) -> bool {
        if p.expiration.is_some() || p.user_id.is_some() {
            return false;
        }
        if p.headers
            .as_ref()
            .is_some_and(|h| h.contains_key("CC") || h.contains_key("BCC"))
        {
            return false;
        }
        if exchange.is_empty() || AMQ_EXCHANGES.iter().any(|(name, _)| *name == exchange) {
            return self.topology_ready;
        }
        let real = self.ns.exchange(exchange);
        self.topology
            .exchanges
            .iter()
            .any(|x| x.0 == real && !x.2.internal && !x.2.auto_delete && !x.2.passive)
    }

    /// Sends a request that cannot fail without waiting for its answer, if it
    /// is one (`None`: execute it the synchronous way). The future settles
    /// it; `Err` is a failure to send.
    async fn pipelined(
        &mut self,
        req: &Request,
    ) -> Option<Result<BoxFuture<'static, Settled>, Failure>> {
        let (id, c, n) = (req.id, req.connection, req.channel);
        if oversize_short_string(&req.method).is_some() {
            return None;
        }
        let chan = self.conns.get(&c)?.chans.get(&n)?;
        let incarnation = chan.incarnation;
        match &req.method {
            Method::Publish {
                exchange,
                routing_key,
                body,
                mandatory,
                properties,
            } => {
                if *mandatory || !self.publish_cannot_fail(exchange, properties) {
                    return None;
                }
                Some(
                    self.publish_pipelined(id, c, n, exchange, routing_key, body, properties)
                        .await,
                )
            }
            Method::Ack { delivery_tag, .. }
            | Method::Nack { delivery_tag, .. }
            | Method::Reject { delivery_tag, .. } => {
                let tag = *delivery_tag;
                let multiple = *multiple_of(&req.method);
                let (known, broker_tag) = {
                    let tags = chan.tags();
                    (tag != 0 && tags.unacked.contains(&tag), tags.to_broker(tag))
                };
                let Some(broker_tag) = broker_tag else {
                    // Delivered before an outage: RabbitMQ requeued it when the
                    // connection died, so there is nothing left to settle.
                    return Some(Ok(settled_now(id, c, n, incarnation)));
                };
                if !known {
                    return None;
                }
                let ch = chan.ch.clone();
                let send = match &req.method {
                    Method::Nack { requeue, .. } => {
                        let opts = BasicNackOptions {
                            multiple,
                            requeue: *requeue,
                        };
                        async move { ch.basic_nack(broker_tag, opts).await }.boxed()
                    }
                    Method::Reject { requeue, .. } => {
                        let opts = BasicRejectOptions { requeue: *requeue };
                        async move { ch.basic_reject(broker_tag, opts).await }.boxed()
                    }
                    _ => {
                        async move { ch.basic_ack(broker_tag, BasicAckOptions { multiple }).await }
                            .boxed()
                    }
                };
                let sent = start_send(send).await;
                Some(self.after_ack(sent, id, c, n, incarnation, tag, multiple))
            }
            _ => None,
        }
    }

    /// A pipelined ack/nack/reject was sent: its reply waits for the round trip.
    #[allow(clippy::too_many_arguments)]
    fn after_ack(
        &mut self,
        sent: Sending<()>,
        id: u64,
        c: ConnectionId,
        n: ChannelId,
        incarnation: u64,
        tag: u64,
        multiple: bool,
    ) -> Result<BoxFuture<'static, Settled>, Failure> {
        let sent = sent.map_err(|e| self.failure(&e))?;
        let chan = self.chan(c, n)?;
        chan.tags().settle(tag, multiple);
        let round_trip = chan.join_batch();
        Ok(async move {
            Settled {
                id,
                c,
                n,
                incarnation,
                how: Settlement::RoundTrip {
                    outcome: Outcome::Ok,
                    result: after_send(sent, round_trip).await,
                },
            }
        }
        .boxed())
    }

    #[allow(clippy::too_many_arguments)]
    async fn publish_pipelined(
        &mut self,
        id: u64,
        c: ConnectionId,
        n: ChannelId,
        exchange: &str,
        routing_key: &str,
        body: &str,
        properties: &sim_core::protocol::Properties,
    ) -> Result<BoxFuture<'static, Settled>, Failure> {
        let message_id = self.next_message_id;
        self.next_message_id += 1;
        let x = short("exchange", &self.ns.publish_exchange(exchange)).map_err(invalid)?;
        let key = short("routing_key", routing_key).map_err(invalid)?;
        let props = convert::to_properties(properties, message_id).map_err(invalid)?;
        let chan = self.chan(c, n)?;
        let ch = chan.ch.clone();
        let incarnation = chan.incarnation;
        let body = body.as_bytes().to_vec();
        let send = async move {
            ch.basic_publish(x, key, BasicPublishOptions::default(), &body, props)
                .await
        }
        .boxed();
        let sent = start_send(send).await.map_err(|e| self.failure(&e))?;
        let chan = self.chan(c, n)?;
        if chan.confirm {
            chan.seq += 1;
            let seq = chan.seq;
            Ok(async move {
                let result = match sent.finish().await {
                    Ok(confirm) => confirm.await,
                    Err(e) => Err(e),
                };
                Settled {
                    id,
                    c,
                    n,
                    incarnation,
                    how: Settlement::Confirmed {
                        seq,
                        message_id,
                        result: Box::new(result),
                    },
                }
            }
            .boxed())
        } else {
            let round_trip = chan.join_batch();
            Ok(async move {
                Settled {
                    id,
                    c,
                    n,
                    incarnation,
                    how: Settlement::RoundTrip {
                        outcome: Outcome::Published {
                            seq: None,
                            message_id,
                        },
                        result: after_send(sent, round_trip).await,
                    },
                }
            }
            .boxed())
        }
    }

    /// Emits what a pipelined request's settlement says, then its reply.
    async fn settle(&mut self, s: Settled) {
        let Settled {
            id,
            c,
            n,
            incarnation,
            how,
        } = s;
        let current = self
            .conns
            .get(&c)
            .and_then(|conn| conn.chans.get(&n))
            .is_some_and(|chan| chan.incarnation == incarnation);
        let error = match how {
            Settlement::Confirmed {
                seq,
                message_id,
                result,
            } => {
                let confirmation = match *result {
                    Ok(confirmation) => confirmation,
                    Err(e) => return self.settle_failure(id, c, n, current, Some(e)).await,
                };
                let ack = confirmation.is_ack();
                if let Some(ret) = confirmation.take_message() {
                    self.emit_return(c, n, &ret);
                }
                self.em.emit(Event::Confirm {
                    connection: c,
                    channel: n,
                    seq,
                    multiple: false,
                    ack,
                });
                let outcome = Outcome::Published {
                    seq: Some(seq),
                    message_id,
                };
                self.finish(id, c, n, Ok(outcome)).await;
                return;
            }
            Settlement::RoundTrip {
                outcome,
                result: Ok(()),
            } => {
                self.finish(id, c, n, Ok(outcome)).await;
                return;
            }
            Settlement::RoundTrip { result: Err(e), .. } => e,
        };
        self.settle_failure(id, c, n, current, error).await;
    }

    /// The reply of a pipelined request whose channel or connection ended
    /// (`error`: what lapin said, if anything).
    async fn settle_failure(
        &mut self,
        id: u64,
        c: ConnectionId,
        n: ChannelId,
        current: bool,
        error: Option<lapin::Error>,
    ) {
        let failure = match error {
            // The first request to learn of the channel's end reports it.
            Some(e) if current => self.failure(&e),
            // Later ones: the channel (or connection) is gone, as for any
            // request sent after it ended.
            _ if self.lost.contains_key(&c) => refused(
                ErrorScope::Connection,
                0,
                "BROKER_UNREACHABLE",
                "the connection to RabbitMQ was lost; reconnecting",
            ),
            _ => match self.chan(c, n) {
                Err(refusal) => refusal,
                Ok(_) => refused(
                    ErrorScope::Channel,
                    504,
                    "CHANNEL_ERROR",
                    format!("channel {n} of connection {c} was closed"),
                ),
            },
        };
        self.finish(id, c, n, Err(failure)).await;
    }

    // ------------------------------------------------------------ requests

    async fn exec(&mut self, req: &Request) -> Result<Outcome, Failure> {
        let (c, n) = (req.connection, req.channel);
        match &req.method {
            Method::ConnectionOpen => {
                self.open_connection(c).await?;
                self.em.emit(Event::Status {
                    broker: LinkState::Up,
                    detail: String::new(),
                });
                Ok(Outcome::Ok)
            }
            Method::ConnectionClose => {
                self.topology.forget_owner(c);
                if self.lost.remove(&c).is_some() {
                    return Ok(Outcome::Ok);
                }
                let conn = self.conns.remove(&c).ok_or_else(|| {
                    refused(
                        ErrorScope::Connection,
                        504,
                        "CHANNEL_ERROR",
                        format!("connection {c} is not open"),
                    )
                })?;
                conn.expect_consumer_ends();
                let _ = conn.conn.close(200, "OK".into()).await;
                Ok(Outcome::Ok)
            }
            Method::ChannelOpen => {
                if n == 0 {
                    return Err(refused(
                        ErrorScope::Connection,
                        503,
                        "COMMAND_INVALID",
                        "channel 0 is the connection's own channel",
                    ));
                }
                let conn = self.conn(c)?;
                if let Some(old) = conn.chans.remove(&n) {
                    old.expect_consumer_ends();
                    let _ = old.ch.close(200, "OK".into()).await;
                }
                let conn = self.conn(c)?;
                if conn.chans.len() >= MAX_CHANNELS {
                    return Err(refused(
                        ErrorScope::Channel,
                        530,
                        "NOT_ALLOWED",
                        format!(
                            "the playground allows at most {MAX_CHANNELS} channels per connection"
                        ),
                    ));
                }
                let ch = conn.conn.create_channel().await;
                let ch = ch.map_err(|e| self.failure(&e))?;
                self.next_incarnation += 1;
                let incarnation = self.next_incarnation;
                self.conn(c)?.chans.insert(n, Chan::new(ch, incarnation));
                Ok(Outcome::Ok)
            }
            Method::ChannelClose => {
                let chan = self.chan(c, n)?;
                chan.expect_consumer_ends();
                let ch = chan.ch.clone();
                self.conn(c)?.chans.remove(&n);
                ch.close(200, "OK".into())
                    .await
                    .map_err(|e| self.failure(&e))?;
                Ok(Outcome::Ok)
            }
            Method::BrokerRestart => self.broker_restart().await,
            Method::ExchangeDeclare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                arguments,
            } => {
                let ch = self.channel(c, n)?;
                // Declaring amq.* is refused by RabbitMQ itself (403): let it say so.
                let real = if !passive && exchange.starts_with("amq.") {
                    exchange.clone()
                } else {
                    self.ns.exchange(exchange)
                };
                if !passive && real.starts_with(self.ns.prefix()) {
                    self.journal(|j| j.exchange(&real));
                }
                let args = self
                    .ns
                    .exchange_arguments(arguments, self.cfg.lenient_arguments)
                    .map_err(not_allowed)?;
                let args = convert::to_table(&args).map_err(invalid)?;
                // A type RabbitMQ does not know goes as it is: RabbitMQ's own
                // answer (503 COMMAND_INVALID) is the one to relay.
                let kind = match kind {
                    ExchangeType::Known(ExchangeKind::Direct) => lapin::ExchangeKind::Direct,
                    ExchangeType::Known(ExchangeKind::Fanout) => lapin::ExchangeKind::Fanout,
                    ExchangeType::Known(ExchangeKind::Topic) => lapin::ExchangeKind::Topic,
                    ExchangeType::Known(ExchangeKind::Headers) => lapin::ExchangeKind::Headers,
                    ExchangeType::Unknown(name) => lapin::ExchangeKind::Custom(name.clone()),
                };
                let opts = ExchangeDeclareOptions {
                    passive: *passive,
                    durable: *durable,
                    auto_delete: *auto_delete,
                    internal: *internal,
                    nowait: false,
                };
                ch.exchange_declare(
                    short("exchange", &real).map_err(invalid)?,
                    kind.clone(),
                    opts,
                    args.clone(),
                )
                .await
                .map_err(|e| self.failure(&e))?;
                if !passive && real.starts_with(self.ns.prefix()) {
                    self.topology.forget_exchange(&real);
                    self.topology
                        .exchanges
                        .push((real.clone(), kind, opts, args));
                    self.exchanges.insert(real);
                }
                Ok(Outcome::Ok)
            }
            Method::ExchangeDelete {
                exchange,
                if_unused,
            } => {
                let ch = self.channel(c, n)?;
                // RabbitMQ refuses to delete amq.* (403): let it say so.
                let real = if exchange.starts_with("amq.") {
                    exchange.clone()
                } else {
                    self.ns.exchange(exchange)
                };
                let opts = ExchangeDeleteOptions {
                    if_unused: *if_unused,
                    nowait: false,
                };
                ch.exchange_delete(short("exchange", &real).map_err(invalid)?, opts)
                    .await
                    .map_err(|e| self.failure(&e))?;
                self.topology.forget_exchange(&real);
                Ok(Outcome::Ok)
            }
            Method::ExchangeBind {
                destination,
                source,
                routing_key,
                arguments,
            }
            | Method::ExchangeUnbind {
                destination,
                source,
                routing_key,
                arguments,
            } => {
                let ch = self.channel(c, n)?;
                let args = self
                    .ns
                    .binding_arguments(arguments, self.cfg.lenient_arguments)
                    .map_err(not_allowed)?;
                let args = convert::to_table(&args).map_err(invalid)?;
                let dest_name = self.ns.exchange(destination);
                let src_name = self.ns.exchange(source);
                let dest = short("destination", &dest_name).map_err(invalid)?;
                let src = short("source", &src_name).map_err(invalid)?;
                let key = short("routing_key", routing_key).map_err(invalid)?;
                let bind = matches!(req.method, Method::ExchangeBind { .. });
                let r = if bind {
                    let opts = ExchangeBindOptions::default();
                    ch.exchange_bind(dest, src, key, opts, args.clone()).await
                } else {
                    let opts = ExchangeUnbindOptions::default();
                    ch.exchange_unbind(dest, src, key, opts, args.clone()).await
                };
                r.map_err(|e| self.failure(&e))?;
                let b = (true, dest_name, src_name, routing_key.clone(), args);
                self.record_binding(bind, b);
                Ok(Outcome::Ok)
            }
            Method::QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                arguments,
            } => {
                let ch = self.channel(c, n)?;
                // The relay names server-named queues itself, so RabbitMQ never
                // sees the empty name it refuses for these types: say it here.
                let typed = matches!(
                    arguments.get("x-queue-type").and_then(|t| t.as_str()),
                    Some("quorum" | "stream")
                );
                if queue.is_empty() && !passive && typed {
                    return Err(Failure::OnBehalf(AmqpError {
                        scope: ErrorScope::Channel,
                        code: 406,
                        name: "PRECONDITION_FAILED".into(),
                        text: "cannot declare a server-named queue of this x-queue-type".into(),
                    }));
                }
                let real = if queue.is_empty() && !passive {
                    self.ns.queue(&generated_queue_name())
                } else if !passive && queue.starts_with("amq.") {
                    // RabbitMQ refuses amq.* queue names (403): let it say so.
                    queue.clone()
                } else {
                    self.ns.queue(queue)
                };
                if !passive && real.starts_with(self.ns.prefix()) {
                    self.journal(|j| j.queue(&real));
                }
                let args = self
                    .ns
                    .queue_arguments(arguments, self.cfg.lenient_arguments)
                    .map_err(not_allowed)?;
                let args = convert::to_table(&args).map_err(invalid)?;
                let opts = QueueDeclareOptions {
                    passive: *passive,
                    durable: *durable,
                    exclusive: *exclusive,
                    auto_delete: *auto_delete,
                    nowait: false,
                };
                let q = ch
                    .queue_declare(short("queue", &real).map_err(invalid)?, opts, args.clone())
                    .await
                    .map_err(|e| self.failure(&e))?;
                if !passive && real.starts_with(self.ns.prefix()) {
                    self.topology.forget_queue_declaration(&real);
                    if *exclusive {
                        self.topology.exclusive.push((c, real.clone(), opts, args));
                    } else {
                        self.topology.queues.push((real.clone(), opts, args));
                    }
                    self.queues.insert(real);
                }
                let client_name = self.ns.back(q.name().as_str()).to_string();
                self.chan(c, n)?.last_queue = Some(client_name.clone());
                if !passive && q.name().as_str().starts_with(self.ns.prefix()) {
                    // Reachable through the session's default exchange by name.
                    let dx = self.ns.default_exchange();
                    ch.queue_bind(
                        q.name().clone(),
                        short("exchange", &dx).map_err(invalid)?,
                        short("routing_key", &client_name).map_err(invalid)?,
                        QueueBindOptions::default(),
                        AmqpTable::default(),
                    )
                    .await
                    .map_err(|e| self.failure(&e))?;
                    let b = (
                        false,
                        q.name().as_str().to_string(),
                        dx,
                        client_name.clone(),
                        AmqpTable::default(),
                    );
                    self.record_binding(true, b);
                }
                Ok(Outcome::QueueDeclareOk {
                    queue: client_name,
                    message_count: q.message_count(),
                    consumer_count: q.consumer_count(),
                })
            }
            Method::QueueBind {
                queue,
                exchange,
                routing_key,
                arguments,
            }
            | Method::QueueUnbind {
                queue,
                exchange,
                routing_key,
                arguments,
            } => {
                let ch = self.channel(c, n)?;
                let args = self
                    .ns
                    .binding_arguments(arguments, self.cfg.lenient_arguments)
                    .map_err(not_allowed)?;
                let args = convert::to_table(&args).map_err(invalid)?;
                // Empty queue name: the queue last declared on the channel; if
                // the routing key is empty too, it is that queue's name.
                let mut queue = queue.clone();
                let mut routing_key = routing_key.clone();
                if queue.is_empty() {
                    if let Some(last) = self.chan(c, n)?.last_queue.clone() {
                        if routing_key.is_empty() {
                            routing_key = last.clone();
                        }
                        queue = last;
                    }
                }
                let q_name = self.ns.queue(&queue);
                let x_name = self.ns.exchange(exchange);
                let q = short("queue", &q_name).map_err(invalid)?;
                let x = short("exchange", &x_name).map_err(invalid)?;
                let key = short("routing_key", &routing_key).map_err(invalid)?;
                let bind = matches!(req.method, Method::QueueBind { .. });
                let r = if bind {
                    let opts = QueueBindOptions::default();
                    ch.queue_bind(q, x, key, opts, args.clone()).await
                } else {
                    ch.queue_unbind(q, x, key, args.clone()).await
                };
                r.map_err(|e| self.failure(&e))?;
                let b = (false, q_name, x_name, routing_key, args);
                self.record_binding(bind, b);
                Ok(Outcome::Ok)
            }
            Method::QueuePurge { queue } => {
                let ch = self.channel(c, n)?;
                let q = short("queue", &self.ns.queue(queue)).map_err(invalid)?;
                let count = ch
                    .queue_purge(q, QueuePurgeOptions::default())
                    .await
                    .map_err(|e| self.failure(&e))?;
                Ok(Outcome::MessageCount {
                    message_count: count,
                })
            }
            Method::QueueDelete {
                queue,
                if_unused,
                if_empty,
            } => {
                let ch = self.channel(c, n)?;
                let q_name = self.ns.queue(queue);
                let q = short("queue", &q_name).map_err(invalid)?;
                let opts = QueueDeleteOptions {
                    if_unused: *if_unused,
                    if_empty: *if_empty,
                    nowait: false,
                };
                let count = ch
                    .queue_delete(q, opts)
                    .await
                    .map_err(|e| self.failure(&e))?;
                self.topology.forget_queue(&q_name);
                Ok(Outcome::MessageCount {
                    message_count: count,
                })
            }
            Method::ConfirmSelect => {
                let ch = self.channel(c, n)?;
                ch.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| self.failure(&e))?;
                let chan = self.chan(c, n)?;
                if !chan.confirm {
                    chan.confirm = true;
                    chan.seq = 0;
                }
                Ok(Outcome::Ok)
            }
            Method::BasicQos {
                prefetch_count,
                global,
            } => {
                let ch = self.channel(c, n)?;
                ch.basic_qos(*prefetch_count, BasicQosOptions { global: *global })
                    .await
                    .map_err(|e| self.failure(&e))?;
                let chan = self.chan(c, n)?;
                if *global {
                    chan.global_prefetch = Some(*prefetch_count);
                } else {
                    chan.prefetch = *prefetch_count;
                }
                Ok(Outcome::Ok)
            }
            Method::Publish {
                exchange,
                routing_key,
                body,
                mandatory,
                properties,
            } => {
                self.publish(c, n, exchange, routing_key, body, *mandatory, properties)
                    .await
            }
            Method::Get { queue, no_ack } => {
                let ch = self.channel(c, n)?;
                let q = short("queue", &self.ns.queue(queue)).map_err(invalid)?;
                let got = ch
                    .basic_get(q, BasicGetOptions { no_ack: *no_ack })
                    .await
                    .map_err(|e| self.failure(&e))?;
                let Some(got) = got else {
                    return Ok(Outcome::GetEmpty);
                };
                let d = &got.delivery;
                let delivery_tag = {
                    let chan = self.chan(c, n)?;
                    let incarnation = chan.incarnation;
                    let tag = chan.tags().delivered(incarnation, d.delivery_tag, !no_ack);
                    tag.unwrap_or(d.delivery_tag)
                };
                let (message, message_id) = convert::to_message(&self.ns, &d.properties, &d.data);
                Ok(Outcome::GetOk {
                    delivery_tag,
                    redelivered: d.redelivered,
                    exchange: self.ns.back(d.exchange.as_str()).into(),
                    routing_key: self.ns.back(d.routing_key.as_str()).into(),
                    message_count: got.message_count,
                    message,
                    message_id,
                })
            }
            Method::Consume {
                queue,
                consumer_tag,
                no_ack,
                exclusive,
                arguments,
            } => {
                self.consume(c, n, queue, consumer_tag, *no_ack, *exclusive, arguments)
                    .await
            }
            Method::Cancel { consumer_tag } => {
                let chan = self.chan(c, n)?;
                if let Some(spec) = chan.consumers.remove(consumer_tag) {
                    spec.flags.ended_by_client.store(true, Ordering::SeqCst);
                }
                let ch = chan.ch.clone();
                let tag = short("consumer_tag", consumer_tag).map_err(invalid)?;
                ch.basic_cancel(tag, BasicCancelOptions::default())
                    .await
                    .map_err(|e| self.failure(&e))?;
                Ok(Outcome::Ok)
            }
            Method::Ack { delivery_tag, .. }
            | Method::Nack { delivery_tag, .. }
            | Method::Reject { delivery_tag, .. } => {
                let tag = *delivery_tag;
                let multiple = *multiple_of(&req.method);
                let chan = self.chan(c, n)?;
                let ch = chan.ch.clone();
                let Some(broker_tag) = chan.tags().to_broker(tag) else {
                    return Ok(Outcome::Ok);
                };
                let sent = match &req.method {
                    Method::Nack { requeue, .. } => {
                        let opts = BasicNackOptions {
                            multiple,
                            requeue: *requeue,
                        };
                        ch.basic_nack(broker_tag, opts).await
                    }
                    Method::Reject { requeue, .. } => {
                        let opts = BasicRejectOptions { requeue: *requeue };
                        ch.basic_reject(broker_tag, opts).await
                    }
                    _ => ch.basic_ack(broker_tag, BasicAckOptions { multiple }).await,
                };
                let offset = tag - broker_tag;
                let done = match sent {
                    Ok(()) => self.probe(&ch).await,
                    Err(e) => Err(self.failure(&e)),
                };
                // The broker names its own tag in "unknown delivery tag N".
                done.map_err(|f| match f {
                    Failure::Broker(mut e) if offset > 0 => {
                        e.text = e.text.replace(
                            &format!("delivery tag {broker_tag}"),
                            &format!("delivery tag {tag}"),
                        );
                        Failure::Broker(e)
                    }
                    f => f,
                })?;
                self.chan(c, n)?.tags().settle(tag, multiple);
                Ok(Outcome::Ok)
            }
            Method::Recover { requeue } => {
                let ch = self.channel(c, n)?;
                ch.basic_recover(BasicRecoverOptions { requeue: *requeue })
                    .await
                    .map_err(|e| self.failure(&e))?;
                // Every unacknowledged delivery comes again, with a new tag.
                self.chan(c, n)?.tags().settle(0, true);
                Ok(Outcome::Ok)
            }
        }
    }

    fn record_binding(&mut self, bind: bool, b: Binding) {
        let same = |x: &Binding| x.0 == b.0 && x.1 == b.1 && x.2 == b.2 && x.3 == b.3 && x.4 == b.4;
        self.topology.bindings.retain(|x| !same(x));
        if bind {
            self.topology.bindings.push(b);
        }
    }

    /// A synchronous no-op round trip (as record.py's `probe`): surfaces
    /// asynchronous channel errors and makes sure returns have arrived.
    async fn probe(&self, ch: &Channel) -> Result<(), Failure> {
        probe(ch).await.map_err(|e| self.failure(&e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &mut self,
        c: ConnectionId,
        n: ChannelId,
        exchange: &str,
        routing_key: &str,
        body: &str,
        mandatory: bool,
        properties: &sim_core::protocol::Properties,
    ) -> Result<Outcome, Failure> {
        let message_id = self.next_message_id;
        self.next_message_id += 1;
        let x = short("exchange", &self.ns.publish_exchange(exchange)).map_err(invalid)?;
        let key = short("routing_key", routing_key).map_err(invalid)?;
        let props = convert::to_properties(properties, message_id).map_err(invalid)?;
        let chan = self.chan(c, n)?;
        let ch = chan.ch.clone();
        let confirm_mode = chan.confirm;
        let opts = BasicPublishOptions {
            mandatory,
            immediate: false,
        };
        let pending = ch
            .basic_publish(x, key, opts, body.as_bytes(), props)
            .await
            .map_err(|e| self.failure(&e))?;
        if confirm_mode {
            let chan = self.chan(c, n)?;
            chan.seq += 1;
            let seq = chan.seq;
            let confirmation = pending.await.map_err(|e| self.failure(&e))?;
            let ack = confirmation.is_ack();
            if let Some(ret) = confirmation.take_message() {
                self.emit_return(c, n, &ret);
            }
            self.em.emit(Event::Confirm {
                connection: c,
                channel: n,
                seq,
                multiple: false,
                ack,
            });
            Ok(Outcome::Published {
                seq: Some(seq),
                message_id,
            })
        } else {
            drop(pending);
            self.probe(&ch).await?;
            let returned = ch.wait_for_confirms().await.map_err(|e| self.failure(&e))?;
            for ret in &returned {
                self.emit_return(c, n, ret);
            }
            Ok(Outcome::Published {
                seq: None,
                message_id,
            })
        }
    }

    fn emit_return(&self, c: ConnectionId, n: ChannelId, ret: &lapin::message::BasicReturnMessage) {
        let d = &ret.delivery;
        let (message, _) = convert::to_message(&self.ns, &d.properties, &d.data);
        self.em.emit(Event::Return {
            connection: c,
            channel: n,
            reply_code: ret.reply_code,
            reply_text: ret.reply_text.as_str().to_string(),
            exchange: self.ns.back(d.exchange.as_str()).into(),
            routing_key: self.ns.back(d.routing_key.as_str()).into(),
            message,
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn consume(
        &mut self,
        c: ConnectionId,
        n: ChannelId,
        queue: &str,
        consumer_tag: &str,
        no_ack: bool,
        exclusive: bool,
        arguments: &sim_core::protocol::FieldTable,
    ) -> Result<Outcome, Failure> {
        let args = self
            .ns
            .consume_arguments(arguments, self.cfg.lenient_arguments)
            .map_err(not_allowed)?;
        let args = convert::to_table(&args).map_err(invalid)?;
        let consumer_args = args.clone();
        let q = short("queue", &self.ns.queue(queue)).map_err(invalid)?;
        let tag = short("consumer_tag", consumer_tag).map_err(invalid)?;
        let chan = self.chan(c, n)?;
        if chan.consumers.len() >= MAX_CONSUMERS {
            return Err(refused(
                ErrorScope::Channel,
                530,
                "NOT_ALLOWED",
                format!("the playground allows at most {MAX_CONSUMERS} consumers per channel"),
            ));
        }
        let ch = chan.ch.clone();
        let opts = BasicConsumeOptions {
            no_local: false,
            no_ack,
            exclusive,
            nowait: false,
        };
        let consumer = ch
            .basic_consume(q, tag, opts, args)
            .await
            .map_err(|e| self.failure(&e))?;
        let tag = consumer.tag().as_str().to_string();
        let flags = Arc::new(ConsumerFlags::default());
        self.next_consumer += 1;
        let order = self.next_consumer;
        let broker_queue = self.ns.queue(queue);
        let chan = self.chan(c, n)?;
        let spec = ConsumerSpec {
            queue: broker_queue,
            no_ack,
            exclusive,
            arguments: consumer_args,
            prefetch: chan.prefetch,
            order,
            flags: flags.clone(),
        };
        chan.consumers.insert(tag.clone(), spec);
        let (tags, incarnation) = (chan.tags.clone(), chan.incarnation);
        self.spawn_consumer(c, n, ch, consumer, no_ack, flags, tags, incarnation);
        Ok(Outcome::ConsumeOk { consumer_tag: tag })
    }

    /// The task that turns a consumer's deliveries into `deliver` frames.
    #[allow(clippy::too_many_arguments)]
    fn spawn_consumer(
        &self,
        c: ConnectionId,
        n: ChannelId,
        ch: Channel,
        mut consumer: lapin::Consumer,
        no_ack: bool,
        flags: Arc<ConsumerFlags>,
        tags: Arc<Mutex<Tags>>,
        incarnation: u64,
    ) {
        let em = self.em.clone();
        let ns = self.ns.clone();
        let consumer_tag: sim_core::protocol::ShortString = consumer.tag().as_str().into();
        tokio::spawn(async move {
            let mut errored = false;
            while let Some(item) = consumer.next().await {
                match item {
                    Ok(d) => {
                        let tag = tags.lock().unwrap_or_else(|e| e.into_inner()).delivered(
                            incarnation,
                            d.delivery_tag,
                            !no_ack,
                        );
                        let Some(delivery_tag) = tag else { continue };
                        let (message, message_id) =
                            convert::to_message(&ns, &d.properties, &d.data);
                        em.emit(Event::Deliver {
                            connection: c,
                            channel: n,
                            consumer_tag: consumer_tag.clone(),
                            delivery_tag,
                            redelivered: d.redelivered,
                            exchange: ns.back(d.exchange.as_str()).into(),
                            routing_key: ns.back(d.routing_key.as_str()).into(),
                            message,
                            message_id,
                        });
                    }
                    Err(_) => errored = true,
                }
            }
            if !errored && !flags.ended_by_client.load(Ordering::SeqCst) && ch.status().connected()
            {
                flags.cancelled_by_broker.store(true, Ordering::SeqCst);
                em.emit(Event::ConsumerCancelled {
                    connection: c,
                    channel: n,
                    consumer_tag: consumer_tag.to_string(),
                });
            }
        });
    }

    // ------------------------------------------------------------ admin

    async fn close_all(&mut self) {
        self.lost.clear();
        for (_, conn) in self.conns.drain() {
            conn.expect_consumer_ends();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.conn.close(200, "OK".into()))
                .await;
        }
    }

    async fn broker_restart(&mut self) -> Result<Outcome, Failure> {
        if !self.cfg.allow_broker_restart {
            return Err(not_allowed(
                "broker_restart is disabled on this bridge (start it with --allow-broker-restart)"
                    .to_string(),
            ));
        }
        self.close_all().await;
        self.em.emit(Event::Status {
            broker: LinkState::Reconnecting,
            detail: "restarting the broker".to_string(),
        });
        restart_broker()
            .await
            .map_err(|e| refused(ErrorScope::Connection, 541, "INTERNAL_ERROR", e))?;
        self.topology_ready = false;
        let copies: Vec<String> = AMQ_EXCHANGES
            .iter()
            .map(|(name, _)| self.ns.exchange(name))
            .chain(std::iter::once(self.ns.default_exchange()))
            .collect();
        self.topology.keep_durable(&copies);
        let mut last = None;
        for _ in 0..100 {
            match self.open_connection(1).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        self.retry = None;
        // What survives a restart: durable queues, durable exchanges and the
        // bindings between them, the broker's amq.* (and default) exchanges
        // included, which the session's copies stand in for.
        self.redeclare(1, true).await;
        self.em.emit(Event::Status {
            broker: LinkState::Up,
            detail: String::new(),
        });
        Ok(Outcome::Ok)
    }

    /// Closes all connections and deletes everything the session declared.
    async fn cleanup(&mut self) {
        self.close_all().await;
        if self.queues.is_empty() && self.exchanges.is_empty() {
            self.journal(|j| j.end(self.ns.prefix()));
            return;
        }
        let conn = match self.connect().await {
            Ok(conn) => conn,
            Err(_) => {
                warn!(prefix = self.ns.prefix(), "cleanup: broker unreachable");
                return;
            }
        };
        let work = async {
            let mut ch = conn.create_channel().await.ok();
            for q in &self.queues {
                let Ok(name) = short("queue", q) else {
                    continue;
                };
                if let Some(c) = &ch {
                    if c.queue_delete(name, QueueDeleteOptions::default())
                        .await
                        .is_err()
                    {
                        ch = conn.create_channel().await.ok();
                    }
                }
            }
            for x in &self.exchanges {
                let Ok(name) = short("exchange", x) else {
                    continue;
                };
                if let Some(c) = &ch {
                    if c.exchange_delete(name, ExchangeDeleteOptions::default())
                        .await
                        .is_err()
                    {
                        ch = conn.create_channel().await.ok();
                    }
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(20), work)
            .await
            .is_err()
        {
            warn!(prefix = self.ns.prefix(), "cleanup timed out");
        } else {
            // Everything is deleted: nothing for a later sweep.
            self.journal(|j| j.end(self.ns.prefix()));
        }
        let _ = conn.close(200, "OK".into()).await;
        debug!(prefix = self.ns.prefix(), "cleanup done");
    }
}

/// A synchronous no-op round trip on a channel (as record.py's `probe`):
/// everything sent on the channel before it has been processed when it is
/// back, and asynchronous channel errors surface as its error.
async fn probe(ch: &Channel) -> Result<(), lapin::Error> {
    ch.exchange_declare(
        "amq.direct".into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        },
        AmqpTable::default(),
    )
    .await
}

/// A pipelined request's frames, queued on its channel: sent already, or
/// still being written by the connection's I/O thread.
enum Sent<T> {
    Done(T),
    Writing(BoxFuture<'static, Result<T, lapin::Error>>),
}

/// [`start_send`]'s answer: an error if lapin refused the frames at once.
type Sending<T> = Result<Sent<T>, lapin::Error>;

/// Polls a lapin send once, in the engine's task: that queues its frames on
/// the connection, in request order. The engine does not wait for the
/// connection's I/O thread to have written them (a thread hop per request);
/// the request's settlement does, before what settles it.
async fn start_send<T>(mut send: BoxFuture<'static, Result<T, lapin::Error>>) -> Sending<T> {
    match futures_util::poll!(&mut send) {
        std::task::Poll::Ready(Ok(done)) => Ok(Sent::Done(done)),
        std::task::Poll::Ready(Err(e)) => Err(e),
        std::task::Poll::Pending => Ok(Sent::Writing(send)),
    }
}

impl<T> Sent<T> {
    /// Waits for the frames to be written (or for lapin's error).
    async fn finish(self) -> Result<T, lapin::Error> {
        match self {
            Sent::Done(done) => Ok(done),
            Sent::Writing(send) => send.await,
        }
    }
}

/// A sent request's share of its channel's round trip (a failure to write
/// it counts as the round trip's failure).
async fn after_send<T>(sent: Sent<T>, round_trip: ProbeResult) -> Result<(), Option<lapin::Error>> {
    let written = sent.finish().await;
    let round_trip = round_trip.await;
    written.map_err(Some)?;
    round_trip
}

/// The `multiple` flag of an ack or nack.
fn multiple_of(m: &Method) -> &bool {
    match m {
        Method::Ack { multiple, .. } | Method::Nack { multiple, .. } => multiple,
        _ => &false,
    }
}

/// A request whose reply is due at once, in its place among the pipelined ones.
fn settled_now(
    id: u64,
    c: ConnectionId,
    n: ChannelId,
    incarnation: u64,
) -> BoxFuture<'static, Settled> {
    std::future::ready(Settled {
        id,
        c,
        n,
        incarnation,
        how: Settlement::RoundTrip {
            outcome: Outcome::Ok,
            result: Ok(()),
        },
    })
    .boxed()
}

/// Sleeps until `at`, or forever without it.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `rabbitmqctl stop_app; start_app; await_startup` (as record.py does).
pub(crate) async fn restart_broker() -> Result<(), String> {
    for args in [["stop_app"], ["start_app"], ["await_startup"]] {
        let run = tokio::process::Command::new("rabbitmqctl")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .map_err(|_| format!("rabbitmqctl {} timed out", args[0]))?
            .map_err(|e| format!("cannot run rabbitmqctl {}: {e}", args[0]))?;
        if !out.status.success() {
            return Err(format!(
                "rabbitmqctl {} failed: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}
