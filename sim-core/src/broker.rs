//! The broker: requests in, events out, time injected.
//!
//! Sans-IO in the manner of quinn-proto and str0m: [`Broker::handle_request`]
//! and [`Broker::handle_timeout`] are the only inputs, [`Broker::poll_event`] and
//! [`Broker::poll_timeout`] the only outputs. Every request is processed to
//! completion (routing, enqueueing, delivery, dead-lettering) before its reply
//! is queued, which is what the conformance corpus calls "instantaneous".
//!
//! Objects are kept in slabs indexed by ids that are never reused (`u32`), with
//! name maps for lookup; a stale id (an unacked message of a deleted queue, say)
//! then simply misses.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::sync::Arc;

use crate::channel::{Channel, Connection, Unacked};
use crate::consumer::Consumer;
use crate::dead_letter;
use crate::error::{rs_exchange, rs_queue, Fault, Res};
use crate::exchange::{Dest, Exchange, LastExchange};
use crate::headers;
use crate::message::{
    parse_expiration, take_cc_bcc, with_delivery_count, with_header, Address, AddressCache, Msg,
    QEntry,
};
use crate::outbox::Outbox;
use crate::protocol::*;
use crate::queue::{inequivalent_arg, Overflow, Queue, QueueConfig, QueueType, StreamStart};
use crate::rng::{Fnv, SplitMix64};
use crate::small_map::SmallMap;
use crate::view::*;

type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// The user every simulated connection is authenticated as (the playground's
/// real mode connects as `guest` too); a publish may only claim this
/// `user_id`.
pub const AUTHENTICATED_USER: &str = "guest";

const TIMER_HEAD: u8 = 0;
const TIMER_LEASE: u8 = 1;

/// What a successful publish answers ([`Outcome::Published`]).
///
/// Plain numbers rather than an `Option<u64>`: the reply's caller reads
/// them one by one from where `publish` wrote them, while an `Option` was
/// read back whole in one 16-byte piece, written as two 8-byte ones (a store
/// the store buffer cannot forward).
#[derive(Clone, Copy)]
struct Published {
    /// Meaningful only if `confirmed`.
    seq: u64,
    confirmed: bool,
    message_id: MessageId,
}

impl Published {
    #[inline]
    fn outcome(self) -> Outcome {
        Outcome::Published {
            seq: self.confirmed.then_some(self.seq),
            message_id: self.message_id,
        }
    }
}

/// A message on its way to a dead-letter exchange.
#[derive(Clone)]
struct Dying {
    msg: Msg,
    reason: DeathReason,
    queue_name: Arc<str>,
    dlx: Option<Arc<str>>,
    dlrk: Option<Arc<str>>,
}

/// A deterministic model of one RabbitMQ 3.10 node with one vhost (`/`).
///
/// `Clone` gives an independent copy (the page can keep snapshots to rewind).
/// Not `Send`: messages share their address through an `Rc` (see
/// `message.rs` for why).
#[derive(Clone)]
pub struct Broker {
    now: u64,
    rng: SplitMix64,
    tracing: bool,
    next_message_id: MessageId,
    exchanges: Vec<Option<Box<Exchange>>>,
    exchange_ids: Map<Arc<str>, u32>,
    queues: Vec<Option<Box<Queue>>>,
    queue_ids: Map<Arc<str>, u32>,
    consumers: Vec<Option<Consumer>>,
    connections: SmallMap<ConnectionId, Connection>,
    timers: BinaryHeap<Reverse<(u64, u8, u32)>>,
    events: Outbox,
    addresses: AddressCache,
    last_exchange: LastExchange,
    /// Bumped whenever an exchange or a binding changes: routes the address
    /// cache remembers are valid for one generation only.
    routing_generation: u64,
    dying: VecDeque<Dying>,
    scratch: Vec<Dest>,
    scratch_work: Vec<u32>,
    scratch_seen: Vec<u32>,
    scratch_targets: Vec<u32>,
    scratch_unacked: Vec<Unacked>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("now", &self.now)
            .field("queues", &self.queue_ids.len())
            .field("exchanges", &self.exchange_ids.len())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A fresh broker: the default exchange and the `amq.*` exchanges exist, no
    /// connection is open.
    pub fn new(seed: u64) -> Broker {
        let mut b = Broker {
            now: 0,
            rng: SplitMix64::new(seed),
            tracing: false,
            next_message_id: 1,
            exchanges: Vec::new(),
            exchange_ids: Map::default(),
            queues: Vec::new(),
            queue_ids: Map::default(),
            consumers: Vec::new(),
            connections: SmallMap::new(),
            timers: BinaryHeap::new(),
            events: Outbox::default(),
            addresses: AddressCache::default(),
            last_exchange: LastExchange::default(),
            routing_generation: 1,
            dying: VecDeque::new(),
            scratch: Vec::new(),
            scratch_work: Vec::new(),
            scratch_seen: Vec::new(),
            scratch_targets: Vec::new(),
            scratch_unacked: Vec::new(),
        };
        for (name, kind) in [
            ("", ExchangeKind::Direct),
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ] {
            b.add_exchange(Exchange::new(
                name.into(),
                kind,
                true,
                false,
                false,
                FieldTable::new(),
            ));
        }
        b
    }

    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Turns [`Event::Trace`] on or off (off: no trace work at all).
    pub fn set_tracing(&mut self, on: bool) {
        self.tracing = on;
    }

    pub fn poll_event(&mut self) -> Option<ServerFrame> {
        self.events.pop()
    }

    /// The earliest virtual time at which a TTL or queue lease runs out.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Advances the virtual clock to `now_ms` (never backwards), firing every
    /// expiry due on the way, in time order.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        while let Some(&Reverse((t, kind, qid))) = self.timers.peek() {
            if t > now_ms {
                break;
            }
            self.timers.pop();
            self.now = self.now.max(t);
            match kind {
                TIMER_HEAD => {
                    let due = self.queue_mut(qid).is_some_and(|q| {
                        let due = q.timer_at == Some(t);
                        if due {
                            q.timer_at = None;
                        }
                        due
                    });
                    if due {
                        self.expire_heads(qid);
                        self.touch(qid);
                        self.drain_dying();
                    }
                }
                _ => {
                    let due = self
                        .queue(qid)
                        .is_some_and(|q| q.expires_at == Some(t) && q.consumers.is_empty());
                    if due {
                        self.delete_queue(qid, DropReason::QueueDeleted, true);
                    }
                }
            }
        }
        self.now = self.now.max(now_ms);
        self.prune_timers();
    }

    /// Processes one request completely; its reply is the last event it queues.
    ///
    /// A message's steady flow, a publish and the ack of the channel's
    /// oldest delivery, is answered on a way of its own: the reply is made
    /// from the few numbers it carries where it is queued. Through the
    /// general way it is an [`Outcome`] returned in memory and copied on
    /// through `Result`, `ReplyResult` and `Event`, each copy read back at
    /// once in other widths than it was written in, which the store buffer
    /// cannot forward (`perf` put about a third of this function's time on
    /// those copies). The checks `dispatch` makes first are made here too,
    /// in the same order, with the same errors.
    ///
    /// The request is read where the caller put it: the names of a publish
    /// by reference, the rest moved out field by field. Taken apart into
    /// locals first, it was copied whole in 16-byte pieces just after the
    /// caller wrote it in other widths (another stall, a quarter of this
    /// function's samples).
    pub fn handle_request(&mut self, req: Request) {
        let (id, conn, ch) = (req.id, req.connection, req.channel);
        let result = match req.method {
            Method::Publish {
                ref exchange,
                ref routing_key,
                body,
                mandatory,
                properties,
            } => {
                // What `dispatch` checks first, in the same order.
                let checked = if !self.connections.contains_key(&conn) {
                    Err(connection_not_open(conn))
                } else if let Some(len) = [exchange.len(), routing_key.len()]
                    .into_iter()
                    .find(|&len| len > 255)
                {
                    Err(oversize_short_string(len))
                } else if self.channel(conn, ch).is_none() {
                    Err(channel_not_open(ch))
                } else {
                    Ok(())
                };
                match checked.and_then(|()| {
                    self.publish(conn, ch, exchange, routing_key, body, mandatory, properties)
                }) {
                    Ok(published) => {
                        self.finish_ok(id, || published.outcome());
                        return;
                    }
                    Err(f) => Err(f),
                }
            }
            Method::Ack {
                delivery_tag,
                multiple: false,
            } if self.ack_oldest_and_wake(conn, ch, delivery_tag) => {
                self.finish_ok(id, || Outcome::Ok);
                return;
            }
            method => self.dispatch(conn, ch, method),
        };
        if !self.dying.is_empty() {
            self.drain_dying();
        }
        let result = match result {
            Ok(o) => ReplyResult::Ok(o),
            Err(f) => {
                self.apply_fault(conn, ch, &f);
                self.drain_dying();
                ReplyResult::Error(f.to_amqp())
            }
        };
        if !self.timers.is_empty() {
            self.prune_timers();
        }
        self.emit(Event::Reply { id, result });
    }

    /// The end of a request that succeeded with `outcome()`: what
    /// [`Self::handle_request`] does after `dispatch` returns `Ok`.
    ///
    /// The outcome is made only when the reply is: made before the calls
    /// above, it would wait in memory across them and be copied into the
    /// reply (a copy read back at once, as wide pieces of narrow stores).
    #[inline(always)]
    fn finish_ok(&mut self, id: u64, outcome: impl FnOnce() -> Outcome) {
        if !self.dying.is_empty() {
            self.drain_dying();
        }
        if !self.timers.is_empty() {
            self.prune_timers();
        }
        self.emit(Event::Reply {
            id,
            result: ReplyResult::Ok(outcome()),
        });
    }

    // ------------------------------------------------------------------ plumbing

    #[inline]
    fn emit(&mut self, event: Event) {
        self.events.frame(self.now, event);
    }

    fn trace(&mut self, f: impl FnOnce(&Self) -> Trace) {
        if self.tracing {
            let t = f(self);
            self.emit(Event::Trace(t));
        }
    }

    fn prune_timers(&mut self) {
        while let Some(&Reverse((t, kind, qid))) = self.timers.peek() {
            let live = match self.queue(qid) {
                None => false,
                Some(q) if kind == TIMER_HEAD => q.timer_at == Some(t),
                Some(q) => q.expires_at == Some(t),
            };
            if live {
                break;
            }
            self.timers.pop();
        }
    }

    fn add_exchange(&mut self, x: Exchange) -> u32 {
        self.routing_generation += 1;
        let id = self.exchanges.len() as u32;
        self.exchange_ids.insert(x.name.clone(), id);
        self.exchanges.push(Some(Box::new(x)));
        id
    }

    fn exchange(&self, id: u32) -> Option<&Exchange> {
        self.exchanges.get(id as usize).and_then(|x| x.as_deref())
    }

    /// Mutable access to an exchange, which may change its bindings: it ends
    /// the current routing generation.
    fn exchange_mut(&mut self, id: u32) -> Option<&mut Exchange> {
        self.routing_generation += 1;
        self.exchanges
            .get_mut(id as usize)
            .and_then(|x| x.as_deref_mut())
    }

    fn exchange_id(&self, name: &str) -> Option<u32> {
        self.exchange_ids.get(name).copied()
    }

    fn queue(&self, id: u32) -> Option<&Queue> {
        self.queues.get(id as usize).and_then(|q| q.as_deref())
    }

    fn queue_mut(&mut self, id: u32) -> Option<&mut Queue> {
        self.queues
            .get_mut(id as usize)
            .and_then(|q| q.as_deref_mut())
    }

    fn queue_id(&self, name: &str) -> Option<u32> {
        self.queue_ids.get(name).copied()
    }

    fn queue_name(&self, id: u32) -> Arc<str> {
        self.queue(id)
            .map(|q| q.name.clone())
            .unwrap_or_else(|| Arc::from(""))
    }

    fn channel(&self, conn: ConnectionId, ch: ChannelId) -> Option<&Channel> {
        self.connections
            .get(&conn)
            .and_then(|c| c.channels.get(&ch))
    }

    fn channel_mut(&mut self, conn: ConnectionId, ch: ChannelId) -> Option<&mut Channel> {
        self.connections
            .get_mut(&conn)
            .and_then(|c| c.channels.get_mut(&ch))
    }

    fn consumer(&self, id: u32) -> Option<&Consumer> {
        self.consumers.get(id as usize).and_then(|c| c.as_ref())
    }

    fn consumer_mut(&mut self, id: u32) -> Option<&mut Consumer> {
        self.consumers.get_mut(id as usize).and_then(|c| c.as_mut())
    }

    /// Schedules the queue's next head expiry if it is earlier than what is
    /// already scheduled.
    fn touch(&mut self, qid: u32) {
        let Some(q) = self.queue_mut(qid) else { return };
        let Some(t) = q.head_expiry() else { return };
        if q.timer_at.is_none_or(|s| t < s) {
            q.timer_at = Some(t);
            self.timers.push(Reverse((t, TIMER_HEAD, qid)));
        }
    }

    /// Restarts the x-expires lease of an unused queue (or stops it if used).
    fn renew_lease(&mut self, qid: u32) {
        let now = self.now;
        let Some(q) = self.queue_mut(qid) else { return };
        let Some(ttl) = q.cfg.expires else { return };
        if q.consumers.is_empty() {
            let t = now.saturating_add(ttl);
            q.expires_at = Some(t);
            self.timers.push(Reverse((t, TIMER_LEASE, qid)));
        } else {
            q.expires_at = None;
        }
    }

    /// Resolves a queue name (the empty name means the channel's most recently
    /// declared queue) to an existing queue the connection may use.
    fn usable_queue(&self, conn: ConnectionId, ch: ChannelId, name: &str) -> Res<u32> {
        let name = self.expand_queue_name(conn, ch, name)?;
        let qid = self
            .queue_id(&name)
            .ok_or_else(|| Fault::not_found(format!("no {}", rs_queue(&name))))?;
        self.check_exclusive(qid, conn)?;
        Ok(qid)
    }

    fn expand_queue_name(&self, conn: ConnectionId, ch: ChannelId, name: &str) -> Res<String> {
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        self.channel(conn, ch)
            .and_then(|c| c.last_queue.clone())
            .ok_or_else(|| Fault::not_found("no previously declared queue"))
    }

    fn check_exclusive(&self, qid: u32, conn: ConnectionId) -> Res<()> {
        match self.queue(qid) {
            Some(q) if q.exclusive_owner.is_some_and(|o| o != conn) => Err(Fault::resource_locked(format!(
                "cannot obtain exclusive access to locked {}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
                rs_queue(&q.name)
            ))),
            _ => Ok(()),
        }
    }

    // ------------------------------------------------------------------ requests

    // Inlined into its one caller (so no larger for it): that saves the call
    // and a copy of the method, about 20 instructions per request
    // (callgrind, direct workload).
    #[inline(always)]
    fn dispatch(&mut self, conn: ConnectionId, ch: ChannelId, method: Method) -> Res<Outcome> {
        match method {
            Method::ConnectionOpen => return self.connection_open(conn),
            Method::BrokerRestart => return self.broker_restart(),
            Method::ConnectionClose => {
                self.close_connection(conn);
                return Ok(Outcome::Ok);
            }
            _ => {}
        }
        if !self.connections.contains_key(&conn) {
            return Err(connection_not_open(conn));
        }
        check_short_strings(&method)?;
        if let Method::ChannelOpen = method {
            return self.channel_open(conn, ch);
        }
        if self.channel(conn, ch).is_none() {
            return Err(channel_not_open(ch));
        }
        match method {
            Method::ChannelClose => {
                self.close_channel(conn, ch);
                Ok(Outcome::Ok)
            }
            Method::ExchangeDeclare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                arguments,
            } => self.exchange_declare(
                &exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                arguments,
            ),
            Method::ExchangeDelete {
                exchange,
                if_unused,
            } => self.exchange_delete(&exchange, if_unused),
            Method::ExchangeBind {
                destination,
                source,
                routing_key,
                arguments,
            } => self.exchange_bind(&destination, &source, &routing_key, arguments, true),
            Method::ExchangeUnbind {
                destination,
                source,
                routing_key,
                arguments,
            } => self.exchange_bind(&destination, &source, &routing_key, arguments, false),
            Method::QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                arguments,
            } => self.queue_declare(
                conn,
                ch,
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                arguments,
            ),
            Method::QueueBind {
                queue,
                exchange,
                routing_key,
                arguments,
            } => self.queue_bind(conn, ch, &queue, &exchange, routing_key, arguments, true),
            Method::QueueUnbind {
                queue,
                exchange,
                routing_key,
                arguments,
            } => self.queue_bind(conn, ch, &queue, &exchange, routing_key, arguments, false),
            Method::QueuePurge { queue } => self.queue_purge(conn, ch, &queue),
            Method::QueueDelete {
                queue,
                if_unused,
                if_empty,
            } => self.queue_delete(conn, ch, &queue, if_unused, if_empty),
            Method::ConfirmSelect => {
                if let Some(c) = self.channel_mut(conn, ch) {
                    c.confirm_seq.get_or_insert(1);
                }
                Ok(Outcome::Ok)
            }
            Method::BasicQos {
                prefetch_count,
                global,
            } => self.basic_qos(conn, ch, prefetch_count, global),
            Method::Publish {
                exchange,
                routing_key,
                body,
                mandatory,
                properties,
            } => self
                .publish(
                    conn,
                    ch,
                    &exchange,
                    &routing_key,
                    body,
                    mandatory,
                    properties,
                )
                .map(Published::outcome),
            Method::Get { queue, no_ack } => self.get(conn, ch, &queue, no_ack),
            Method::Consume {
                queue,
                consumer_tag,
                no_ack,
                exclusive,
                arguments,
            } => self.consume(conn, ch, &queue, consumer_tag, no_ack, exclusive, arguments),
            Method::Cancel { consumer_tag } => {
                self.cancel(conn, ch, &consumer_tag);
                Ok(Outcome::Ok)
            }
            Method::Ack {
                delivery_tag,
                multiple,
            } => self.settle(conn, ch, delivery_tag, multiple, Settle::Ack),
            Method::Nack {
                delivery_tag,
                multiple,
                requeue,
            } => self.settle(conn, ch, delivery_tag, multiple, Settle::Reject { requeue }),
            Method::Reject {
                delivery_tag,
                requeue,
            } => self.settle(conn, ch, delivery_tag, false, Settle::Reject { requeue }),
            Method::Recover { requeue } => self.recover(conn, ch, requeue),
            Method::ConnectionOpen
            | Method::ConnectionClose
            | Method::ChannelOpen
            | Method::BrokerRestart => Ok(Outcome::Ok),
        }
    }

    fn apply_fault(&mut self, conn: ConnectionId, ch: ChannelId, f: &Fault) {
        match f.scope {
            ErrorScope::Channel => {
                if self.channel(conn, ch).is_some() {
                    self.close_channel(conn, ch);
                    self.emit(Event::Closed {
                        connection: conn,
                        channel: Some(ch),
                        error: f.to_amqp(),
                    });
                }
            }
            ErrorScope::Connection => {
                if self.connections.contains_key(&conn) {
                    self.close_connection(conn);
                    self.emit(Event::Closed {
                        connection: conn,
                        channel: None,
                        error: f.to_amqp(),
                    });
                }
            }
        }
    }

    // ------------------------------------------------------------------ connections and channels

    fn connection_open(&mut self, conn: ConnectionId) -> Res<Outcome> {
        if self.connections.contains_key(&conn) {
            // The client numbers connections; a second open of the same number
            // stands for a new connection, so the old one goes away cleanly.
            self.close_connection(conn);
        }
        let mut c = Connection::default();
        c.channels.insert(1, Channel::new());
        self.connections.insert(conn, c);
        Ok(Outcome::Ok)
    }

    fn channel_open(&mut self, conn: ConnectionId, ch: ChannelId) -> Res<Outcome> {
        if ch == 0 {
            return Err(Fault::channel_error(
                "channel 0 is the connection's own channel",
            ));
        }
        let Some(c) = self.connections.get_mut(&conn) else {
            return Err(Fault::channel_error(format!(
                "connection {conn} is not open"
            )));
        };
        if c.channels.contains_key(&ch) {
            return Err(Fault::channel_error("second 'channel.open' seen"));
        }
        c.channels.insert(ch, Channel::new());
        Ok(Outcome::Ok)
    }

    /// Closes a channel: its consumers go, its unacked messages are requeued.
    fn close_channel(&mut self, conn: ConnectionId, ch: ChannelId) {
        let Some(channel) = self
            .connections
            .get_mut(&conn)
            .and_then(|c| c.channels.remove(&ch))
        else {
            return;
        };
        let mut touched: Vec<u32> = Vec::new();
        for cid in &channel.consumers {
            if let Some(qid) = self.remove_consumer(*cid) {
                if !touched.contains(&qid) {
                    touched.push(qid);
                }
            }
        }
        for qid in self.requeue_all(channel.unacked) {
            if !touched.contains(&qid) {
                touched.push(qid);
            }
        }
        for qid in touched {
            self.after_consumers_changed(qid);
        }
    }

    fn close_connection(&mut self, conn: ConnectionId) {
        let Some(chans) = self
            .connections
            .get(&conn)
            .map(|c| c.channels.keys().copied().collect::<Vec<_>>())
        else {
            return;
        };
        for ch in chans {
            self.close_channel(conn, ch);
        }
        self.connections.remove(&conn);
        let owned: Vec<u32> = (0..self.queues.len() as u32)
            .filter(|q| {
                self.queue(*q)
                    .is_some_and(|q| q.exclusive_owner == Some(conn))
            })
            .collect();
        for qid in owned {
            self.delete_queue(qid, DropReason::QueueDeleted, false);
        }
    }

    // ------------------------------------------------------------------ exchanges

    #[allow(clippy::too_many_arguments)]
    fn exchange_declare(
        &mut self,
        name: &str,
        kind: ExchangeType,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Res<Outcome> {
        // RabbitMQ checks the type first (a passive declare has none to check).
        let kind = match kind.known() {
            Some(k) => k,
            None if passive => ExchangeKind::default(),
            None => {
                return Err(Fault::command_invalid(format!(
                    "unknown exchange type '{}'",
                    kind.as_str()
                )))
            }
        };
        if name.is_empty() {
            return Err(Fault::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        if passive {
            return match self.exchange_id(name) {
                Some(_) => Ok(Outcome::Ok),
                None => Err(Fault::not_found(format!("no {}", rs_exchange(name)))),
            };
        }
        if let Some(xid) = self.exchange_id(name) {
            let Some(x) = self.exchange(xid) else {
                return Ok(Outcome::Ok);
            };
            let ineq = |field: &str, got: &str, cur: &str| {
                Fault::precondition_failed(format!(
                    "inequivalent arg '{field}' for {}: received '{got}' but current is '{cur}'",
                    rs_exchange(name)
                ))
            };
            if x.kind != kind {
                return Err(ineq("type", kind.as_str(), x.kind.as_str()));
            }
            if x.durable != durable {
                return Err(ineq(
                    "durable",
                    &durable.to_string(),
                    &x.durable.to_string(),
                ));
            }
            if x.auto_delete != auto_delete {
                return Err(ineq(
                    "auto_delete",
                    &auto_delete.to_string(),
                    &x.auto_delete.to_string(),
                ));
            }
            if x.internal != internal {
                return Err(ineq(
                    "internal",
                    &internal.to_string(),
                    &x.internal.to_string(),
                ));
            }
            if x.arguments.get("alternate-exchange") != arguments.get("alternate-exchange") {
                return Err(Fault::precondition_failed(format!(
                    "inequivalent arg 'alternate-exchange' for {}",
                    rs_exchange(name)
                )));
            }
            return Ok(Outcome::Ok);
        }
        if name.starts_with("amq.") {
            return Err(Fault::access_refused(format!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        if let Some(v) = arguments.get("alternate-exchange") {
            if !v.is_string() {
                return Err(Fault::precondition_failed(format!(
                    "invalid type for arg 'alternate-exchange' in {}",
                    rs_exchange(name)
                )));
            }
        }
        self.add_exchange(Exchange::new(
            name.into(),
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
        ));
        Ok(Outcome::Ok)
    }

    fn exchange_delete(&mut self, name: &str, if_unused: bool) -> Res<Outcome> {
        if name.is_empty() {
            return Err(Fault::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        if name.starts_with("amq.") {
            return Err(Fault::access_refused(format!(
                "deletion of system {} not allowed",
                rs_exchange(name)
            )));
        }
        let Some(xid) = self.exchange_id(name) else {
            return Ok(Outcome::Ok);
        };
        if if_unused && self.exchange(xid).is_some_and(|x| !x.bindings.is_empty()) {
            return Err(Fault::precondition_failed(format!(
                "{} in use",
                rs_exchange(name)
            )));
        }
        self.delete_exchange(xid);
        Ok(Outcome::Ok)
    }

    fn delete_exchange(&mut self, xid: u32) {
        self.routing_generation += 1;
        let Some(x) = self.exchanges.get_mut(xid as usize).and_then(Option::take) else {
            return;
        };
        self.exchange_ids.remove(&x.name);
        self.remove_bindings_to(Dest::Exchange(xid));
    }

    /// Removes every binding leading to `dest`, then auto-deletes sources left
    /// without bindings.
    fn remove_bindings_to(&mut self, dest: Dest) {
        self.routing_generation += 1;
        let mut emptied = Vec::new();
        for (i, slot) in self.exchanges.iter_mut().enumerate() {
            if let Some(x) = slot {
                if x.unbind_dest(dest) > 0 && x.auto_delete && x.bindings.is_empty() {
                    emptied.push(i as u32);
                }
            }
        }
        for xid in emptied {
            self.delete_exchange(xid);
        }
    }

    fn exchange_bind(
        &mut self,
        destination: &str,
        source: &str,
        key: &str,
        arguments: FieldTable,
        bind: bool,
    ) -> Res<Outcome> {
        if destination.is_empty() || source.is_empty() {
            return Err(Fault::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        // Unbinding is idempotent: a missing source or destination is fine.
        let (sid, did) = match (self.exchange_id(source), self.exchange_id(destination)) {
            (Some(s), Some(d)) => (s, d),
            _ if !bind => return Ok(Outcome::Ok),
            (None, _) => return Err(Fault::not_found(format!("no {}", rs_exchange(source)))),
            (_, None) => return Err(Fault::not_found(format!("no {}", rs_exchange(destination)))),
        };
        self.bind_common(sid, Dest::Exchange(did), key, arguments, bind)
    }

    fn bind_common(
        &mut self,
        sid: u32,
        dest: Dest,
        key: &str,
        arguments: FieldTable,
        bind: bool,
    ) -> Res<Outcome> {
        let Some(x) = self.exchange_mut(sid) else {
            return Ok(Outcome::Ok);
        };
        if bind {
            if x.kind == ExchangeKind::Headers {
                headers::validate(&arguments).map_err(Fault::precondition_failed)?;
            }
            x.bind(dest, key, arguments);
        } else if x.unbind(dest, key, &arguments) && x.auto_delete && x.bindings.is_empty() {
            self.delete_exchange(sid);
        }
        Ok(Outcome::Ok)
    }

    // ------------------------------------------------------------------ queues

    #[allow(clippy::too_many_arguments)]
    fn queue_declare(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        queue: String,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: FieldTable,
    ) -> Res<Outcome> {
        let qid = if passive {
            // RabbitMQ 3.10 does not apply the "last declared queue" shortcut
            // to a passive declare: `""` is looked up as it is (and not found).
            let name = queue;
            let qid = self
                .queue_id(&name)
                .ok_or_else(|| Fault::not_found(format!("no {}", rs_queue(&name))))?;
            self.check_exclusive(qid, conn)?;
            qid
        } else {
            let server_named = queue.is_empty();
            let name = if server_named {
                loop {
                    let n = format!("amq.gen-{}", self.rng.token(22));
                    if self.queue_id(&n).is_none() {
                        break n;
                    }
                }
            } else if queue.starts_with("amq.") {
                return Err(Fault::access_refused(format!(
                    "queue name '{queue}' contains reserved prefix 'amq.*'"
                )));
            } else {
                queue
            };
            let owner = exclusive.then_some(conn);
            let durable = durable && !exclusive;
            match self.queue_id(&name) {
                Some(qid) => {
                    let Some(q) = self.queue(qid) else {
                        return Err(Fault::not_found(format!("no {}", rs_queue(&name))));
                    };
                    if q.exclusive_owner != owner {
                        self.check_exclusive(qid, conn)?;
                        return Err(Fault::resource_locked(format!(
                            "cannot obtain exclusive access to locked {}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
                            rs_queue(&name)
                        )));
                    }
                    let ineq = |field: &str, got: bool, cur: bool| {
                        Fault::precondition_failed(format!(
                            "inequivalent arg '{field}' for {}: received '{got}' but current is '{cur}'",
                            rs_queue(&name)
                        ))
                    };
                    if q.durable != durable {
                        return Err(ineq("durable", durable, q.durable));
                    }
                    if q.auto_delete != auto_delete {
                        return Err(ineq("auto_delete", auto_delete, q.auto_delete));
                    }
                    if let Some(k) = inequivalent_arg(&q.arguments, &arguments) {
                        return Err(Fault::precondition_failed(format!(
                            "inequivalent arg '{k}' for {}: received {} but current is {}",
                            rs_queue(&name),
                            arguments
                                .get(k)
                                .map_or("none".to_string(), |v| v.to_string()),
                            q.arguments
                                .get(k)
                                .map_or("none".to_string(), |v| v.to_string()),
                        )));
                    }
                    qid
                }
                None => {
                    let cfg = QueueConfig::parse(&arguments)
                        .and_then(|cfg| {
                            cfg.queue_type
                                .check_properties(durable, exclusive, auto_delete, server_named)
                                .map(|()| cfg)
                        })
                        .map_err(|e| {
                            Fault::precondition_failed(format!("{e} for {}", rs_queue(&name)))
                        })?;
                    let name: Arc<str> = name.into();
                    let qid = self.queues.len() as u32;
                    self.queue_ids.insert(name.clone(), qid);
                    self.queues.push(Some(Box::new(Queue::new(
                        name,
                        durable,
                        owner,
                        auto_delete,
                        arguments,
                        cfg,
                    ))));
                    qid
                }
            }
        };
        self.renew_lease(qid);
        let Some(q) = self.queue(qid) else {
            return Err(Fault::not_found("queue vanished"));
        };
        // RabbitMQ 3.10 counts neither the messages nor the consumers of a
        // stream in declare-ok.
        let stream = q.cfg.queue_type == QueueType::Stream;
        // A quorum queue keeps a consumer for each channel holding messages
        // it fetched with basic.get (ack mode), and a cancelled consumer
        // while it holds deliveries, until they are settled (case 154,
        // difftest s2036-p3335).
        let holders = if q.cfg.queue_type == QueueType::Quorum {
            let mut held: Vec<(ConnectionId, ChannelId, Option<u32>)> = Vec::new();
            for (conn, c) in self.connections.iter() {
                for (ch, chan) in c.channels.iter() {
                    for u in chan.unacked.iter().filter(|u| u.queue == qid) {
                        let key = (*conn, *ch, u.consumer);
                        let gone = u.consumer.is_none_or(|cid| !q.consumers.contains(&cid));
                        if gone && !held.contains(&key) {
                            held.push(key);
                        }
                    }
                }
            }
            held.len() as u32
        } else {
            0
        };
        // A single-active-consumer quorum queue counts only its active
        // consumer, not the waiting ones (difftest s2035-p5572).
        let consumers = if q.cfg.queue_type == QueueType::Quorum && q.cfg.single_active_consumer {
            q.consumers.len().min(1)
        } else {
            q.consumers.len()
        };
        let out = Outcome::QueueDeclareOk {
            queue: q.name.to_string(),
            message_count: if stream { 0 } else { q.ready_len() as u32 },
            consumer_count: if stream {
                0
            } else {
                consumers as u32 + holders
            },
        };
        let name = q.name.to_string();
        if let Some(c) = self.channel_mut(conn, ch) {
            c.last_queue = Some(name);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_bind(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        queue: &str,
        exchange: &str,
        mut key: String,
        arguments: FieldTable,
        bind: bool,
    ) -> Res<Outcome> {
        if queue.is_empty() && key.is_empty() {
            if let Some(last) = self.channel(conn, ch).and_then(|c| c.last_queue.clone()) {
                key = last;
            }
        }
        let qname = self.expand_queue_name(conn, ch, queue)?;
        if exchange.is_empty() {
            return Err(Fault::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        // Unbinding is idempotent: a missing queue or exchange is fine.
        let (sid, qid) = match (self.exchange_id(exchange), self.queue_id(&qname)) {
            (Some(s), Some(q)) => (s, q),
            _ if !bind => return Ok(Outcome::Ok),
            (None, _) => return Err(Fault::not_found(format!("no {}", rs_exchange(exchange)))),
            (_, None) => return Err(Fault::not_found(format!("no {}", rs_queue(&qname)))),
        };
        // RabbitMQ removes a binding that does not exist without looking at
        // the queue's owner: only a real unbind (or a bind) is refused.
        let exists = self
            .exchange(sid)
            .is_some_and(|x| x.has_binding(Dest::Queue(qid), &key, &arguments));
        // The binding's arguments are validated before the queue's owner
        // is checked (a bad x-match is a 406 even on a foreign queue).
        if bind
            && self
                .exchange(sid)
                .is_some_and(|x| x.kind == ExchangeKind::Headers)
        {
            headers::validate(&arguments).map_err(Fault::precondition_failed)?;
        }
        if bind || exists {
            self.check_exclusive(qid, conn)?;
        }
        self.bind_common(sid, Dest::Queue(qid), &key, arguments, bind)
    }

    fn queue_purge(&mut self, conn: ConnectionId, ch: ChannelId, queue: &str) -> Res<Outcome> {
        let qid = self.usable_queue(conn, ch, queue)?;
        if self
            .queue(qid)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Stream)
        {
            return Err(Fault::not_implemented(format!(
                "purge not supported by {}",
                rs_queue(&self.queue_name(qid))
            )));
        }
        let purged = self.queue_mut(qid).map(|q| q.purge()).unwrap_or_default();
        let n = purged.len() as u32;
        if self.tracing {
            let qn = self.queue_name(qid);
            for e in purged {
                self.trace(|_| Trace::Dropped {
                    message_id: e.msg.id,
                    queue: Some(qn.to_string()),
                    reason: DropReason::QueuePurged,
                    why: format!("queue '{qn}' was purged"),
                });
            }
        }
        Ok(Outcome::MessageCount { message_count: n })
    }

    fn queue_delete(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        queue: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Res<Outcome> {
        let name = self.expand_queue_name(conn, ch, queue)?;
        let Some(qid) = self.queue_id(&name) else {
            return Ok(Outcome::MessageCount { message_count: 0 });
        };
        self.check_exclusive(qid, conn)?;
        let Some(q) = self.queue(qid) else {
            return Ok(Outcome::MessageCount { message_count: 0 });
        };
        if (if_unused || if_empty) && q.cfg.queue_type == QueueType::Quorum {
            return Err(Fault::not_implemented(format!(
                "cannot delete {}. queue.delete operations with if-unused or if-empty flags set \
                 are not supported by quorum queues",
                rs_queue(&name)
            )));
        }
        // A stream's delete ignores both flags and always reports 0
        // messages (rabbit_stream_queue: difftest s2035-p73).
        if q.cfg.queue_type == QueueType::Stream {
            self.delete_queue(qid, DropReason::QueueDeleted, true);
            return Ok(Outcome::MessageCount { message_count: 0 });
        }
        if if_unused && !q.consumers.is_empty() {
            return Err(Fault::precondition_failed(format!(
                "{} in use",
                rs_queue(&name)
            )));
        }
        if if_empty && q.ready_len() > 0 {
            return Err(Fault::precondition_failed(format!(
                "{} not empty",
                rs_queue(&name)
            )));
        }
        let n = q.ready_len() as u32;
        self.delete_queue(qid, DropReason::QueueDeleted, true);
        Ok(Outcome::MessageCount { message_count: n })
    }

    /// Deletes a queue: consumers cancelled (notified if `notify`), ready
    /// messages dropped, bindings removed.
    fn delete_queue(&mut self, qid: u32, reason: DropReason, notify: bool) {
        let Some(mut q) = self.queues.get_mut(qid as usize).and_then(Option::take) else {
            return;
        };
        self.queue_ids.remove(&q.name);
        for cid in q.consumers.clone() {
            let Some(c) = self.consumers.get_mut(cid as usize).and_then(Option::take) else {
                continue;
            };
            if let Some(chan) = self.channel_mut(c.connection, c.channel) {
                chan.consumers.retain(|x| *x != cid);
            }
            if notify {
                self.emit(Event::ConsumerCancelled {
                    connection: c.connection,
                    channel: c.channel,
                    consumer_tag: c.tag.to_string(),
                });
            }
        }
        if self.tracing {
            for e in q.purge() {
                self.trace(|_| Trace::Dropped {
                    message_id: e.msg.id,
                    queue: Some(q.name.to_string()),
                    reason,
                    why: format!("queue '{}' was deleted", q.name),
                });
            }
        }
        self.remove_bindings_to(Dest::Queue(qid));
    }

    // ------------------------------------------------------------------ publishing and routing

    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        exchange: &ShortString,
        routing_key: &ShortString,
        body: Arc<str>,
        mandatory: bool,
        mut properties: SharedProperties,
    ) -> Res<Published> {
        let generation = self.routing_generation;
        let xid = match self.last_exchange.get(exchange, generation) {
            Some(xid) => xid,
            None => {
                let xid = self
                    .exchange_id(exchange)
                    .ok_or_else(|| Fault::not_found(format!("no {}", rs_exchange(exchange))))?;
                self.last_exchange.remember(exchange, xid, generation);
                xid
            }
        };
        // Borrowed from the field, not through `self.exchange()`, so that the
        // address cache below can take the name by reference (no reference
        // count to touch unless it makes a new address).
        let Some(Some(x)) = self.exchanges.get(xid as usize) else {
            return Err(Fault::not_found(format!("no {}", rs_exchange(exchange))));
        };
        if x.internal {
            return Err(Fault::access_refused(format!(
                "cannot publish to internal {}",
                rs_exchange(exchange)
            )));
        }
        if let Some(u) = properties.user_id.as_deref() {
            if u != AUTHENTICATED_USER {
                return Err(Fault::precondition_failed(format!(
                    "user_id property set to '{u}' but authenticated user was '{AUTHENTICATED_USER}'"
                )));
            }
        }
        if properties.expiration.is_some() {
            parse_expiration(&properties).map_err(Fault::precondition_failed)?;
        }
        let (address, slot) = match take_cc_bcc(&mut properties) {
            Some(extra_keys) => {
                let a = Rc::new(Address {
                    exchange: (&x.name).into(),
                    routing_key: routing_key.clone(),
                    extra_keys,
                });
                (a, None)
            }
            None => {
                let (a, slot) = self.addresses.get(xid, &x.name, routing_key);
                (a, Some(slot))
            }
        };
        let seq = match self.channel_mut(conn, ch) {
            Some(c) => match c.confirm_seq.as_mut() {
                Some(s) => {
                    let v = *s;
                    *s += 1;
                    Some(v)
                }
                None => None,
            },
            None => None,
        };
        let id = self.next_message_id;
        self.next_message_id += 1;
        let msg = Msg {
            id,
            address,
            body,
            properties,
        };

        let mut targets = std::mem::take(&mut self.scratch_targets);
        targets.clear();
        match slot.and_then(|i| self.addresses.route(i, generation)) {
            // A route is remembered only when tracing is off (a traced
            // route explains itself as it goes).
            Some(queues) if !self.tracing => targets.extend_from_slice(queues),
            _ => {
                if self.route(xid, &msg, &mut targets) {
                    if let Some(i) = slot {
                        self.addresses.remember_route(i, generation, &targets);
                    }
                }
            }
        }
        let mut ack = true;
        if targets.is_empty() {
            if mandatory {
                self.emit(Event::Return {
                    connection: conn,
                    channel: ch,
                    reply_code: 312,
                    reply_text: "NO_ROUTE".into(),
                    exchange: msg.exchange().clone(),
                    routing_key: msg.routing_key().clone(),
                    message: msg.to_message(),
                });
            }
            self.trace(|_| Trace::Dropped {
                message_id: id,
                queue: None,
                reason: DropReason::Unroutable,
                why: if mandatory {
                    format!(
                        "no queue matched key '{}' at exchange '{}'; returned to the publisher (mandatory)",
                        msg.routing_key(), msg.exchange()
                    )
                } else {
                    format!("no queue matched key '{}' at exchange '{}'", msg.routing_key(), msg.exchange())
                },
            });
        } else {
            // The last queue takes the message itself: no reference counts
            // to touch for the common single queue.
            if let Some((&last, others)) = targets.split_last() {
                for &qid in others {
                    ack &= self.enqueue(qid, msg.clone());
                }
                ack &= self.enqueue(last, msg);
            }
        }
        targets.clear();
        self.scratch_targets = targets;
        if let Some(seq) = seq {
            if !self.dying.is_empty() {
                self.drain_dying();
            }
            self.emit(Event::Confirm {
                connection: conn,
                channel: ch,
                seq,
                multiple: false,
                ack,
            });
        }
        Ok(Published {
            seq: seq.unwrap_or_default(),
            confirmed: seq.is_some(),
            message_id: id,
        })
    }

    /// The queues a message published to exchange `xid` reaches: through
    /// exchange-to-exchange bindings and alternate exchanges, each queue once,
    /// in the order RabbitMQ hands it to them (reverse name order).
    ///
    /// True if the answer depends only on the exchange's own bindings and the
    /// routing keys (not on headers, alternate or other exchanges, tracing),
    /// so it holds for the same keys until the bindings change.
    fn route(&mut self, xid: u32, msg: &Msg, out: &mut Vec<u32>) -> bool {
        // The common case, without the walk's bookkeeping: a named exchange
        // (tracing off) whose bindings lead only to queues, or match nothing
        // and it has no alternate exchange. Anything else (an alternate to
        // follow, exchange-to-exchange bindings) takes the walk.
        if !self.tracing {
            let mut dests = std::mem::take(&mut self.scratch);
            dests.clear();
            let (mut named, mut by_keys, mut no_alternate) = (false, false, false);
            if let Some(Some(ex)) = self.exchanges.get(xid as usize) {
                if !ex.name.is_empty() {
                    ex.route(msg.keys(), msg.props().headers.as_ref(), &mut dests);
                    named = true;
                    by_keys = ex.kind != ExchangeKind::Headers;
                    // An alternate named "" is never followed (see below).
                    no_alternate = ex.alternate.as_deref().is_none_or(str::is_empty);
                }
            }
            // Matching nothing is final too when there is no alternate
            // exchange to try.
            let direct = named
                && (!dests.is_empty() || no_alternate)
                && dests.iter().all(|d| matches!(d, Dest::Queue(_)));
            if direct {
                out.extend(dests.iter().filter_map(|d| match *d {
                    Dest::Queue(q) => Some(q),
                    Dest::Exchange(_) => None,
                }));
            }
            self.scratch = dests;
            if direct {
                self.order_targets(out);
                return by_keys;
            }
        }
        let headers = msg.props().headers.as_ref();
        let mut dests = std::mem::take(&mut self.scratch);
        let mut work = std::mem::take(&mut self.scratch_work);
        let mut seen = std::mem::take(&mut self.scratch_seen);
        work.clear();
        seen.clear();
        work.push(xid);
        seen.push(xid);
        while let Some(x) = work.pop() {
            let Some(ex) = self.exchange(x) else { continue };
            dests.clear();
            if ex.name.is_empty() {
                for k in msg.keys() {
                    if let Some(q) = self.queue_id(k) {
                        dests.push(Dest::Queue(q));
                    }
                }
                if self.tracing {
                    for d in dests.clone() {
                        self.trace(|b| Trace::Routed {
                            message_id: msg.id,
                            exchange: String::new(),
                            destination_kind: DestinationKind::Queue,
                            destination: b.dest_name(d),
                            binding_key: b.dest_name(d),
                            why: "default exchange: routing key equals the queue name".into(),
                        });
                    }
                }
            } else {
                ex.route(msg.keys(), headers, &mut dests);
                if self.tracing {
                    let keys: Vec<&str> = msg.keys().collect();
                    let exname = ex.name.to_string();
                    for (d, key, why) in ex.explain(&keys, headers) {
                        self.trace(|b| Trace::Routed {
                            message_id: msg.id,
                            exchange: exname.clone(),
                            destination_kind: match d {
                                Dest::Queue(_) => DestinationKind::Queue,
                                Dest::Exchange(_) => DestinationKind::Exchange,
                            },
                            destination: b.dest_name(d),
                            binding_key: key,
                            why,
                        });
                    }
                }
            }
            let Some(ex) = self.exchange(x) else { continue };
            if dests.is_empty() {
                // RabbitMQ never follows an alternate exchange named "" (the
                // default exchange cannot be one): the message is unroutable.
                if let Some(ae) = ex.alternate.clone().filter(|ae| !ae.is_empty()) {
                    if let Some(aid) = self.exchange_id(&ae) {
                        let exname = ex.name.to_string();
                        self.trace(|_| Trace::ToAlternateExchange {
                            message_id: msg.id,
                            exchange: exname,
                            alternate: ae.to_string(),
                        });
                        if !seen.contains(&aid) {
                            seen.push(aid);
                            work.push(aid);
                        }
                    }
                }
            }
            for d in dests.iter() {
                match *d {
                    Dest::Queue(q) => out.push(q),
                    Dest::Exchange(e) => {
                        if !seen.contains(&e) {
                            seen.push(e);
                            work.push(e);
                        }
                    }
                }
            }
        }
        self.scratch = dests;
        self.scratch_work = work;
        self.scratch_seen = seen;
        self.order_targets(out);
        false
    }

    /// Each routed queue once, in the order RabbitMQ hands it the message.
    fn order_targets(&self, out: &mut Vec<u32>) {
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        if out.len() > 1 {
            out.sort_by(|a, b| {
                let name = |q: u32| self.queue(q).map(|q| &*q.name);
                name(*a).cmp(&name(*b))
            });
            // `rabbit_exchange:route` sorts by name, then `delegate` casts
            // to the local queue processes in reverse (it prepends while
            // grouping them by node): the last name hears of the message
            // first, so a channel with consumers on several of these queues
            // numbers their deliveries in reverse name order.
            out.reverse();
        }
    }

    fn dest_name(&self, d: Dest) -> String {
        match d {
            Dest::Queue(q) => self
                .queue(q)
                .map(|q| q.name.to_string())
                .unwrap_or_default(),
            Dest::Exchange(x) => self
                .exchange(x)
                .map(|x| x.name.to_string())
                .unwrap_or_default(),
        }
    }

    /// Offers a message to a queue; false if the queue refused it (overflow
    /// `reject-publish`/`reject-publish-dlx`).
    fn enqueue(&mut self, qid: u32, msg: Msg) -> bool {
        let now = self.now;
        let Some(q) = self.queue_mut(qid) else {
            return false;
        };
        if q.would_overflow(msg.body_len()) {
            match q.cfg.overflow() {
                Overflow::DropHead => {}
                of => {
                    let name = q.name.clone();
                    if of == Overflow::RejectPublishDlx {
                        let (dlx, dlrk) = (q.cfg.dlx.clone(), q.cfg.dlrk.clone());
                        self.dying.push_back(Dying {
                            msg: msg.clone(),
                            reason: DeathReason::Maxlen,
                            queue_name: name.clone(),
                            dlx,
                            dlrk,
                        });
                    }
                    self.trace(|_| Trace::Dropped {
                        message_id: msg.id,
                        queue: Some(name.to_string()),
                        reason: DropReason::RejectedByQueue,
                        why: format!("queue '{name}' is full and its overflow is {of:?}"),
                    });
                    return false;
                }
            }
        }
        let ttl = match (q.cfg.message_ttl, msg.ttl()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let id = msg.id;
        q.push(QEntry::new(msg, ttl.map(|t| now.saturating_add(t))), now);
        self.trace(|b| Trace::Enqueued {
            message_id: id,
            queue: b.queue_name(qid).to_string(),
        });
        self.deliver_ready(qid);
        let limited = self
            .queue(qid)
            .is_some_and(|q| q.cfg.max_length.is_some() || q.cfg.max_length_bytes.is_some());
        let dropped = limited && self.drop_over_limit(qid);
        // RabbitMQ looks for expired messages after a publish only when the
        // head may have changed: something was dropped, or the message is
        // alone in the queue. A message that jumps ahead in a priority queue
        // therefore arms no timer and outlives its TTL until something else
        // (a get, a requeue, an older timer) looks at the head.
        let alone = self.queue(qid).is_some_and(|q| q.ready_len() == 1);
        if (dropped || alone) && !(dropped && alone && ttl.is_none()) {
            self.expire_heads(qid);
        }
        true
    }

    /// Overflow `drop-head`: the oldest messages leave (dead-lettered as
    /// `maxlen`) until the queue fits its limits.
    /// True if it dropped anything.
    fn drop_over_limit(&mut self, qid: u32) -> bool {
        let mut dropped = false;
        loop {
            let Some(q) = self.queue_mut(qid) else {
                return dropped;
            };
            if q.cfg.overflow() != Overflow::DropHead || !q.over_limit() {
                return dropped;
            }
            let Some(e) = q.pop() else { return dropped };
            self.kill(qid, e.msg, DeathReason::Maxlen);
            dropped = true;
        }
    }

    /// Removes expired head messages (dead-lettering them as `expired`) and
    /// keeps a timer for the new head's expiry (RabbitMQ's
    /// `drop_expired_msgs`).
    fn expire_heads(&mut self, qid: u32) {
        let now = self.now;
        let mut out = Vec::new();
        if let Some(q) = self.queue_mut(qid) {
            // The common case: a head without expiry; nothing to take, no timer.
            if q.head_expiry().is_none() {
                return;
            }
            q.take_expired(now, &mut out);
        }
        for e in out {
            self.kill(qid, e.msg, DeathReason::Expired);
        }
        self.touch(qid);
    }

    /// A message dies in a queue: to the dead-letter exchange if the queue has
    /// one, else dropped.
    fn kill(&mut self, qid: u32, msg: Msg, reason: DeathReason) {
        let Some(q) = self.queue(qid) else { return };
        let queue_name = q.name.clone();
        match q.cfg.dlx.clone() {
            Some(dlx) => {
                let dlrk = q.cfg.dlrk.clone();
                self.dying.push_back(Dying {
                    msg,
                    reason,
                    queue_name,
                    dlx: Some(dlx),
                    dlrk,
                });
            }
            None => {
                let (drop_reason, why) = match reason {
                    DeathReason::Expired => (
                        DropReason::Expired,
                        "its TTL ran out and the queue has no dead-letter exchange",
                    ),
                    DeathReason::Maxlen => (
                        DropReason::MaxLength,
                        "the queue was full (drop-head) and has no dead-letter exchange",
                    ),
                    DeathReason::Rejected => (
                        DropReason::Rejected,
                        "rejected without requeue and the queue has no dead-letter exchange",
                    ),
                    DeathReason::DeliveryLimit => (
                        DropReason::DeliveryLimit,
                        "returned more often than the queue's x-delivery-limit, and the queue has no dead-letter exchange",
                    ),
                };
                self.trace(|_| Trace::Dropped {
                    message_id: msg.id,
                    queue: Some(queue_name.to_string()),
                    reason: drop_reason,
                    why: why.into(),
                });
            }
        }
    }

    /// Republishes dead messages to their dead-letter exchanges until none is
    /// left (iterative, so chains of dead-lettering cannot grow the stack).
    fn drain_dying(&mut self) {
        while let Some(d) = self.dying.pop_front() {
            let Some(dlx) = d.dlx else { continue };
            let Some(xid) = self.exchange_id(&dlx) else {
                self.trace(|_| Trace::Dropped {
                    message_id: d.msg.id,
                    queue: Some(d.queue_name.to_string()),
                    reason: DropReason::DeadLetterUnroutable,
                    why: format!("dead-letter exchange '{dlx}' does not exist"),
                });
                continue;
            };
            let msg =
                dead_letter::rewrite(&d.msg, d.reason, &d.queue_name, &dlx, d.dlrk.as_deref());
            self.trace(|_| Trace::DeadLettered {
                message_id: msg.id,
                queue: d.queue_name.to_string(),
                reason: d.reason,
                dead_letter_exchange: dlx.to_string(),
                routing_key: msg.routing_key().to_string(),
            });
            let mut targets = Vec::new();
            self.route(xid, &msg, &mut targets);
            targets.retain(|q| {
                self.queue(*q)
                    .is_some_and(|q| !dead_letter::is_cycle(&msg, d.reason, &q.name))
            });
            if targets.is_empty() {
                self.trace(|_| Trace::Dropped {
                    message_id: msg.id,
                    queue: Some(d.queue_name.to_string()),
                    reason: DropReason::DeadLetterUnroutable,
                    why: format!(
                        "dead-letter exchange '{dlx}' routed key '{}' to no queue (or only into a cycle)",
                        msg.routing_key()
                    ),
                });
            }
            for qid in targets {
                self.enqueue(qid, msg.clone());
            }
        }
    }

    // ------------------------------------------------------------------ delivery

    fn can_send(&self, cid: u32) -> bool {
        let Some(c) = self.consumer(cid) else {
            return false;
        };
        // Quorum queues and streams never ask the channel's limiter.
        let classic = self
            .queue(c.queue)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Classic);
        if !classic {
            return c.no_ack || c.has_credit();
        }
        if c.no_ack {
            // RabbitMQ asks the channel's limiter even for a no-ack consumer
            // (it only does not count the delivery): once the channel's
            // global prefetch is used up, its no-ack consumers wait too.
            return self
                .channel(c.connection, c.channel)
                .is_none_or(|ch| ch.global_has_room());
        }
        c.has_credit()
            && self
                .channel(c.connection, c.channel)
                .is_some_and(|ch| ch.global_has_room())
    }

    /// Puts a consumer at the back of the active list, behind consumers of
    /// equal or higher priority.
    fn activate(&mut self, qid: u32, cid: u32) {
        // The common case: the consumer just served was the only one.
        if let Some(Some(q)) = self.queues.get_mut(qid as usize) {
            if q.active.is_empty() {
                q.active.push_back(cid);
                return;
            }
        }
        let prio = self.consumer(cid).map_or(0, |c| c.priority);
        let Some(q) = self.queue(qid) else { return };
        let prio_of = |x: &u32| self.consumer(*x).map_or(0, |c| c.priority);
        // Common case: everyone has the same priority, so this goes last.
        let at = if q.active.back().is_none_or(|x| prio_of(x) >= prio) {
            q.active.len()
        } else {
            q.active
                .iter()
                .position(|x| prio_of(x) < prio)
                .unwrap_or(q.active.len())
        };
        if let Some(q) = self.queue_mut(qid) {
            if at == q.active.len() {
                q.active.push_back(cid);
            } else {
                q.active.insert(at, cid);
            }
        }
    }

    /// Delivers ready messages to consumers that can take them, round-robin.
    fn deliver_ready(&mut self, qid: u32) {
        if self
            .queue(qid)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Stream)
        {
            self.deliver_stream(qid);
            return;
        }
        loop {
            let Some(q) = self.queue(qid) else { return };
            if q.ready_len() == 0 {
                return;
            }
            let sac = q.cfg.single_active_consumer;
            let cid = if sac {
                match q.consumers.first().copied() {
                    Some(c) if self.can_send(c) => c,
                    _ => return,
                }
            } else {
                loop {
                    let Some(c) = self.queue_mut(qid).and_then(|q| q.active.pop_front()) else {
                        return;
                    };
                    if self.can_send(c) {
                        break c;
                    }
                    if let Some(q) = self.queue_mut(qid) {
                        q.blocked.push(c);
                    }
                }
            };
            if !self.deliver(cid, qid) {
                return;
            }
            if !sac {
                self.activate(qid, cid);
            }
            self.expire_heads(qid);
        }
    }

    /// A stream is a log: every consumer reads it from its own offset, as far
    /// as its prefetch allows; nothing leaves the log when it is delivered.
    fn deliver_stream(&mut self, qid: u32) {
        let Some(q) = self.queue(qid) else { return };
        let consumers = q.consumers.clone();
        for cid in consumers {
            while self.can_send(cid) && self.deliver(cid, qid) {}
        }
    }

    /// Takes the queue's next message and delivers it to consumer `cid`
    /// (which [`Self::can_send`] approved); false if the queue had none.
    ///
    /// The consumer, its channel and the queue are distinct fields of the
    /// broker, borrowed together, so a delivery looks each of them up once.
    fn deliver(&mut self, cid: u32, qid: u32) -> bool {
        let Some(Some(q)) = self.queues.get_mut(qid as usize) else {
            return false;
        };
        let (entry, stream_offset) = if q.cfg.queue_type == QueueType::Stream {
            // A copy of the consumer's next message; the log keeps it.
            let Some(Some(c)) = self.consumers.get_mut(cid as usize) else {
                return false;
            };
            let at = c.offset.max(q.first_offset());
            let Some(e) = q.log_entry(at) else {
                return false;
            };
            c.offset = at + 1;
            (e.clone(), Some(at))
        } else {
            let Some(entry) = q.pop() else {
                return false;
            };
            (entry, None)
        };
        let Some(Some(c)) = self.consumers.get_mut(cid as usize) else {
            return true;
        };
        let (conn, ch, no_ack) = (c.connection, c.channel, c.no_ack);
        let Some(chan) = self
            .connections
            .get_mut(&conn)
            .and_then(|x| x.channels.get_mut(&ch))
        else {
            return true;
        };
        let delivery_tag = chan.next_tag;
        chan.next_tag += 1;
        let redelivered = entry.redelivered();
        let (exchange, routing_key, message_id) = (
            entry.msg.exchange().clone(),
            entry.msg.routing_key().clone(),
            entry.msg.id,
        );
        let count = Some(entry.delivery_count()).filter(|n| *n > 0);
        let consumer_tag = c.tag.clone();
        let stamp = |p: SharedProperties| match stream_offset {
            Some(at) => with_header(p, "x-stream-offset", serde_json::Value::from(at)),
            None => with_delivery_count(p, count),
        };
        let message = if no_ack {
            Message {
                body: entry.msg.body,
                properties: stamp(entry.msg.properties),
            }
        } else {
            let message = Message {
                body: entry.msg.body.clone(),
                properties: stamp(entry.msg.properties.clone()),
            };
            // Only a classic queue asks the channel's limiter.
            let limited = q.cfg.queue_type == QueueType::Classic;
            if limited && chan.global_prefetch > 0 {
                chan.limiter_volume += 1;
            }
            chan.unacked.push_back(Unacked {
                tag: delivery_tag,
                queue: qid,
                consumer: Some(cid),
                limited,
                entry,
            });
            c.unacked += 1;
            q.unacked += 1;
            message
        };
        self.events.frame(
            self.now,
            Event::Deliver {
                connection: conn,
                channel: ch,
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
                message_id,
                message,
            },
        );
        true
    }

    /// Moves blocked consumers that may receive again to the back of the
    /// active list, then delivers.
    fn unblock(&mut self, qid: u32) {
        let Some(q) = self.queue(qid) else { return };
        if q.blocked.is_empty() {
            self.deliver_ready(qid);
            return;
        }
        let blocked = q.blocked.clone();
        let (ready, still): (Vec<u32>, Vec<u32>) =
            blocked.into_iter().partition(|c| self.can_send(*c));
        if let Some(q) = self.queue_mut(qid) {
            q.blocked = still;
        }
        for c in ready {
            self.activate(qid, c);
        }
        self.deliver_ready(qid);
    }

    // ------------------------------------------------------------------ consuming

    fn basic_qos(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        prefetch: u16,
        global: bool,
    ) -> Res<Outcome> {
        let Some(c) = self.channel_mut(conn, ch) else {
            return Ok(Outcome::Ok);
        };
        if global && prefetch > 0 {
            // RabbitMQ's limiter starts from every unacked delivery on the
            // channel, basic.get's included; a change of limit keeps it.
            if c.global_prefetch == 0 {
                c.limiter_volume = u32::try_from(c.unacked.len()).unwrap_or(u32::MAX);
            }
            c.global_prefetch = prefetch;
        } else if global {
            c.global_prefetch = 0;
            c.limiter_volume = 0;
        } else {
            // RabbitMQ 3.10 also lifts the channel's global limit here (meant
            // for a default prefetch set as global): difftest s2032-p2167.
            c.consumer_prefetch = prefetch;
            c.global_prefetch = 0;
            c.limiter_volume = 0;
        }
        let qs = std::mem::take(&mut self.scratch_targets);
        self.wake_channel(conn, ch, qs);
        Ok(Outcome::Ok)
    }

    /// After acks, requeues or a qos change on a channel: give the queues its
    /// consumers a chance to deliver again. The queues that settled messages
    /// came from (`qs` on entry) go first: RabbitMQ's queue hears of the ack
    /// before the channel's limiter tells the others.
    fn wake_channel(&mut self, conn: ConnectionId, ch: ChannelId, mut qs: Vec<u32>) {
        // Nothing ready and nobody blocked: nothing to deliver, no head to
        // expire. The common case after an ack (the queue had been emptied
        // by its consumer), so it is checked first without building the
        // list of the channel's queues.
        let idle = |b: &Self, q: u32| {
            b.queue(q)
                .is_none_or(|q| q.ready_len() == 0 && q.blocked.is_empty())
        };
        let all_idle = qs.iter().all(|&q| idle(self, q))
            && self.channel(conn, ch).is_none_or(|c| {
                c.consumers
                    .iter()
                    .all(|cid| self.consumer(*cid).is_none_or(|c| idle(self, c.queue)))
            });
        if all_idle {
            qs.clear();
            self.scratch_targets = qs;
            return;
        }
        if let Some(c) = self.channel(conn, ch) {
            for cid in &c.consumers {
                if let Some(q) = self.consumer(*cid).map(|c| c.queue) {
                    if !qs.contains(&q) {
                        qs.push(q);
                    }
                }
            }
        }
        for &q in &qs {
            if idle(self, q) {
                continue;
            }
            self.unblock(q);
            self.touch(q);
        }
        qs.clear();
        self.scratch_targets = qs;
    }

    fn get(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        queue: &str,
        no_ack: bool,
    ) -> Res<Outcome> {
        let qid = self.usable_queue(conn, ch, queue)?;
        if self
            .queue(qid)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Stream)
        {
            return Err(Fault::not_implemented(format!(
                "basic.get not supported by stream {}",
                rs_queue(&self.queue_name(qid))
            )));
        }
        if self
            .queue(qid)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Quorum && q.cfg.single_active_consumer)
        {
            return Err(Fault::resource_locked(format!(
                "cannot obtain access to locked {}. basic.get operations are not supported \
                 by quorum queues with single active consumer",
                rs_queue(&self.queue_name(qid))
            )));
        }
        self.renew_lease(qid);
        let Some(e) = self.queue_mut(qid).and_then(|q| q.pop()) else {
            return Ok(Outcome::GetEmpty);
        };
        self.expire_heads(qid);
        self.touch(qid);
        let count = self
            .queue(qid)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Quorum)
            .then(|| e.delivery_count());
        let Some(chan) = self.channel_mut(conn, ch) else {
            return Ok(Outcome::GetEmpty);
        };
        let delivery_tag = chan.next_tag;
        chan.next_tag += 1;
        let msg = e.msg.clone();
        let redelivered = e.redelivered();
        if !no_ack {
            chan.unacked.push_back(Unacked {
                tag: delivery_tag,
                queue: qid,
                consumer: None,
                limited: false,
                entry: e,
            });
            if let Some(q) = self.queue_mut(qid) {
                q.unacked += 1;
            }
        }
        let message_count = self.queue(qid).map_or(0, |q| q.ready_len() as u32);
        Ok(Outcome::GetOk {
            delivery_tag,
            redelivered,
            exchange: msg.exchange().clone(),
            routing_key: msg.routing_key().clone(),
            message_count,
            message: Message {
                body: msg.body.clone(),
                properties: with_delivery_count(msg.properties.clone(), count),
            },
            message_id: msg.id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn consume(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        queue: &str,
        tag: String,
        no_ack: bool,
        exclusive: bool,
        arguments: FieldTable,
    ) -> Res<Outcome> {
        if !tag.is_empty() {
            let taken = self.channel(conn, ch).is_some_and(|c| {
                c.consumers
                    .iter()
                    .any(|cid| self.consumer(*cid).is_some_and(|x| *x.tag == *tag))
            });
            if taken {
                return Err(Fault::not_allowed(format!(
                    "attempt to reuse consumer tag '{tag}'"
                )));
            }
        }
        let qid = self.usable_queue(conn, ch, queue)?;
        let tag = if tag.is_empty() {
            format!("amq.ctag-{}", self.rng.token(22))
        } else {
            tag
        };
        let Some(q) = self.queue(qid) else {
            return Err(Fault::not_found("queue vanished"));
        };
        // Only a stream reads x-stream-offset; any other queue refuses it,
        // whatever its value, before anything else (case 159, difftest
        // s2033-p1290).
        if q.cfg.queue_type != QueueType::Stream && arguments.contains_key("x-stream-offset") {
            return Err(Fault::precondition_failed(format!(
                "x-stream-offset is only for streams, not for {}",
                rs_queue(&q.name)
            )));
        }
        // A quorum queue has no global prefetch (difftest s2033-p2366).
        if q.cfg.queue_type == QueueType::Quorum
            && self
                .channel(conn, ch)
                .is_some_and(|c| c.global_prefetch > 0)
        {
            return Err(Fault::not_implemented(format!(
                "{} does not support global qos",
                rs_queue(&q.name)
            )));
        }
        // Exclusive consumers are a classic-queue notion: a quorum queue
        // takes `exclusive` without checking it.
        let classic = q.cfg.queue_type == QueueType::Classic;
        if classic && exclusive && q.cfg.single_active_consumer {
            return Err(Fault::access_refused(format!(
                "exclusive consume not allowed on single active consumer {}",
                rs_queue(&q.name)
            )));
        }
        if classic && (q.has_exclusive_consumer || (exclusive && !q.consumers.is_empty())) {
            return Err(Fault::access_refused(format!(
                "{} in exclusive use",
                rs_queue(&q.name)
            )));
        }
        let priority = match arguments.get("x-priority") {
            None => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                Fault::precondition_failed(format!(
                    "invalid type for consumer argument 'x-priority': {v}"
                ))
            })?,
        };
        let prefetch = self.channel(conn, ch).map_or(0, |c| c.consumer_prefetch);
        let mut offset = 0;
        if let Some(q) = self
            .queue(qid)
            .filter(|q| q.cfg.queue_type == QueueType::Stream)
        {
            // RabbitMQ reads the offset first, then checks the prefetch (a
            // no-ack consumer too).
            let start = StreamStart::parse(arguments.get("x-stream-offset"))?;
            let name = self.queue_name(qid);
            if prefetch == 0 {
                return Err(Fault::precondition_failed(format!(
                    "consumer prefetch count is not set for stream {}",
                    rs_queue(&name)
                )));
            }
            if no_ack {
                return Err(Fault::not_implemented(format!(
                    "defining consumer with no_ack=true on stream {} is not supported",
                    rs_queue(&name)
                )));
            }
            offset = q.stream_start(start, self.now);
        }
        let cid = self.consumers.len() as u32;
        self.consumers.push(Some(Consumer {
            tag: tag.as_str().into(),
            queue: qid,
            connection: conn,
            channel: ch,
            no_ack,
            exclusive,
            prefetch,
            unacked: 0,
            priority,
            offset,
        }));
        if let Some(c) = self.channel_mut(conn, ch) {
            c.consumers.push(cid);
        }
        if let Some(q) = self.queue_mut(qid) {
            q.consumers.push(cid);
            q.had_consumers = true;
            q.has_exclusive_consumer |= exclusive;
            q.expires_at = None;
        }
        self.activate(qid, cid);
        self.deliver_ready(qid);
        self.touch(qid);
        Ok(Outcome::ConsumeOk { consumer_tag: tag })
    }

    /// Forgets a consumer (its unacked messages stay with the channel); returns
    /// its queue.
    fn remove_consumer(&mut self, cid: u32) -> Option<u32> {
        let c = self
            .consumers
            .get_mut(cid as usize)
            .and_then(Option::take)?;
        if let Some(chan) = self.channel_mut(c.connection, c.channel) {
            chan.consumers.retain(|x| *x != cid);
        }
        let q = self.queue_mut(c.queue)?;
        q.active.retain(|x| *x != cid);
        q.blocked.retain(|x| *x != cid);
        let was_first = q.consumers.first() == Some(&cid);
        q.consumers.retain(|x| *x != cid);
        if c.exclusive {
            q.has_exclusive_consumer = false;
        }
        if was_first && q.cfg.single_active_consumer {
            self.hand_over(c.queue);
        }
        Some(c.queue)
    }

    /// A single-active-consumer queue whose active consumer left: RabbitMQ
    /// picks the waiting consumer with the highest `x-priority` (the one that
    /// waited longest among equals), so it moves to the front, where the
    /// active consumer lives. A newcomer never takes over from a live active
    /// consumer, whatever its priority.
    fn hand_over(&mut self, qid: u32) {
        let Some(q) = self.queue(qid) else { return };
        let prio_of = |x: &u32| self.consumer(*x).map_or(0, |c| c.priority);
        let best = q
            .consumers
            .iter()
            .enumerate()
            .max_by_key(|(i, x)| (prio_of(x), std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        if let (Some(i @ 1..), Some(q)) = (best, self.queue_mut(qid)) {
            let next = q.consumers.remove(i);
            q.consumers.insert(0, next);
        }
    }

    /// After consumers left a queue: auto-delete, lease, or deliver to whoever
    /// is left (a new single active consumer, say).
    fn after_consumers_changed(&mut self, qid: u32) {
        let Some(q) = self.queue(qid) else { return };
        if q.consumers.is_empty() {
            if q.auto_delete && q.had_consumers {
                self.delete_queue(qid, DropReason::QueueDeleted, false);
                return;
            }
            self.renew_lease(qid);
        }
        self.deliver_ready(qid);
        self.touch(qid);
    }

    fn cancel(&mut self, conn: ConnectionId, ch: ChannelId, tag: &str) {
        let found = self.channel(conn, ch).and_then(|c| {
            c.consumers
                .iter()
                .copied()
                .find(|cid| self.consumer(*cid).is_some_and(|x| &*x.tag == tag))
        });
        if let Some(cid) = found {
            if let Some(qid) = self.remove_consumer(cid) {
                self.after_consumers_changed(qid);
            }
        }
    }

    /// Takes a settled delivery off the books of its consumer and queue.
    fn forget_unacked(&mut self, conn: ConnectionId, ch: ChannelId, u: &Unacked) {
        if u.limited {
            if let Some(c) = self.channel_mut(conn, ch) {
                c.forget_limited(u);
            }
        }
        self.forget_outside_channel(u.consumer, u.queue);
    }

    /// The part of [`Self::forget_unacked`] outside the channel: the
    /// delivery's consumer and queue.
    fn forget_outside_channel(&mut self, consumer: Option<u32>, qid: u32) {
        if let Some(cid) = consumer {
            if let Some(c) = self.consumer_mut(cid) {
                c.unacked = c.unacked.saturating_sub(1);
            }
        }
        if let Some(q) = self.queue_mut(qid) {
            q.unacked = q.unacked.saturating_sub(1);
        }
    }

    /// Puts an unacked message back in its queue (if the queue still
    /// exists), then lets the queue look at its head.
    fn requeue(&mut self, u: Unacked) -> Option<u32> {
        let (qid, put_back) = self.put_back(u)?;
        if put_back {
            self.look_at_head(qid);
        }
        Some(qid)
    }

    /// Puts unacked messages back at once, then lets each queue that took
    /// one back look at its head: RabbitMQ's `requeue_and_run` for a dying
    /// channel or a recover/nack group. A message that expired while out
    /// waits behind a live one requeued with it (difftest s2040-p38).
    /// Returns the queues touched, in the order first touched.
    fn requeue_all(&mut self, unacked: impl IntoIterator<Item = Unacked>) -> Vec<u32> {
        let (mut touched, mut plain) = (Vec::new(), Vec::new());
        for u in unacked {
            if let Some((qid, put_back)) = self.put_back(u) {
                if !touched.contains(&qid) {
                    touched.push(qid);
                }
                if put_back && !plain.contains(&qid) {
                    plain.push(qid);
                }
            }
        }
        for qid in plain {
            self.look_at_head(qid);
        }
        touched
    }

    /// What a queue does once messages came back: a classic queue drops
    /// what its length limit no longer holds (a quorum queue applies its
    /// limit to new messages only: difftest s2033-p3690), then expired
    /// messages at the head go.
    fn look_at_head(&mut self, qid: u32) {
        let quorum = self
            .queue(qid)
            .is_some_and(|q| q.cfg.queue_type == QueueType::Quorum);
        if !quorum {
            self.drop_over_limit(qid);
        }
        self.expire_heads(qid);
    }

    /// [`Self::requeue`] without the look at the head: the queue, and
    /// whether the message went back among the ready ones (not a stream's
    /// delivery settled, nor one over its delivery limit).
    fn put_back(&mut self, mut u: Unacked) -> Option<(u32, bool)> {
        let Some(q) = self.queue_mut(u.queue) else {
            self.trace(|_| Trace::Dropped {
                message_id: u.entry.msg.id,
                queue: None,
                reason: DropReason::QueueDeleted,
                why: "requeued after its queue was deleted".into(),
            });
            return None;
        };
        q.unacked = q.unacked.saturating_sub(1);
        if q.cfg.queue_type == QueueType::Stream {
            // The stream still has it: a requeue only settles the delivery.
            if let Some(c) = u.consumer.and_then(|cid| self.consumer_mut(cid)) {
                c.unacked = c.unacked.saturating_sub(1);
            }
            return Some((u.queue, false));
        }
        // A quorum queue counts the return; one too many and the message dies.
        let quorum = q.cfg.queue_type == QueueType::Quorum;
        let over_limit = quorum
            && q.cfg
                .delivery_limit
                .is_some_and(|limit| u64::from(u.entry.delivery_count()) >= limit);
        if let Some(cid) = u.consumer {
            if let Some(c) = self.consumer_mut(cid) {
                c.unacked = c.unacked.saturating_sub(1);
            }
        }
        if over_limit {
            self.kill(u.queue, u.entry.msg, DeathReason::DeliveryLimit);
            return Some((u.queue, false));
        }
        let q = self.queue_mut(u.queue)?;
        u.entry.set_redelivered();
        let id = u.entry.msg.id;
        q.requeue(u.entry);
        self.trace(|b| Trace::Requeued {
            message_id: id,
            queue: b.queue_name(u.queue).to_string(),
        });
        Some((u.queue, true))
    }

    fn settle(
        &mut self,
        conn: ConnectionId,
        ch: ChannelId,
        tag: DeliveryTag,
        multiple: bool,
        how: Settle,
    ) -> Res<Outcome> {
        if let (Settle::Ack, false) = (how, multiple) {
            if self.ack_oldest_and_wake(conn, ch, tag) {
                return Ok(Outcome::Ok);
            }
        }
        let mut done = std::mem::take(&mut self.scratch_unacked);
        done.clear();
        let Some(chan) = self.channel_mut(conn, ch) else {
            return Ok(Outcome::Ok);
        };
        if !chan.take_acked(tag, multiple, &mut done) {
            self.scratch_unacked = done;
            return Err(Fault::precondition_failed(format!(
                "unknown delivery tag {tag}"
            )));
        }
        // RabbitMQ refuses nack and reject of a stream's delivery outright
        // (the connection closes); the channel keeps what it took.
        let stream = matches!(how, Settle::Reject { .. })
            .then(|| {
                done.iter().find_map(|u| {
                    self.queue(u.queue)
                        .filter(|q| q.cfg.queue_type == QueueType::Stream)
                        .map(|q| q.name.to_string())
                })
            })
            .flatten();
        if let Some(name) = stream {
            if let Some(chan) = self.channel_mut(conn, ch) {
                for u in done.drain(..) {
                    let at = chan.unacked.partition_point(|x| x.tag < u.tag);
                    chan.unacked.insert(at, u);
                }
            }
            self.scratch_unacked = done;
            return Err(Fault::not_implemented(format!(
                "basic.nack and basic.reject not supported by stream queues {}",
                rs_queue(&name)
            )));
        }
        let mut touched = std::mem::take(&mut self.scratch_targets);
        touched.clear();
        let mut requeues = Vec::new();
        for u in done.drain(..) {
            if !touched.contains(&u.queue) {
                touched.push(u.queue);
            }
            match how {
                Settle::Ack => {
                    self.forget_unacked(conn, ch, &u);
                    self.trace(|b| Trace::Acked {
                        message_id: u.entry.msg.id,
                        queue: b.queue_name(u.queue).to_string(),
                    });
                }
                Settle::Reject { requeue: true } => {
                    if u.limited {
                        if let Some(c) = self.channel_mut(conn, ch) {
                            c.forget_limited(&u);
                        }
                    }
                    requeues.push(u);
                }
                Settle::Reject { requeue: false } => {
                    self.forget_unacked(conn, ch, &u);
                    self.kill(u.queue, u.entry.msg, DeathReason::Rejected);
                }
            }
        }
        self.scratch_unacked = done;
        if !requeues.is_empty() {
            self.requeue_in_groups(conn, ch, requeues);
        }
        self.wake_channel(conn, ch, touched);
        Ok(Outcome::Ok)
    }

    /// Requeues what a channel gives back at once (recover, nack or reject),
    /// as RabbitMQ's channel hands it over: one group per queue and consumer
    /// tag (basic.get's first, then the tags in byte order), and the queue
    /// delivers after each group before it takes the next; so a full queue
    /// (x-max-length) need not drop anything (difftest s2032-p8417).
    fn requeue_in_groups(&mut self, conn: ConnectionId, ch: ChannelId, list: Vec<Unacked>) {
        // Sorted by queue name, then consumer tag (none for basic.get).
        type Group = (Arc<str>, Option<ShortString>);
        let mut keyed: Vec<(Group, Unacked)> = list
            .into_iter()
            .map(|u| {
                let tag = u.consumer.map(|cid| {
                    self.consumer(cid)
                        .map_or_else(ShortString::default, |c| c.tag.clone())
                });
                ((self.queue_name(u.queue), tag), u)
            })
            .collect();
        // Stable: a group keeps its delivery-tag order.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rest = keyed.into_iter().peekable();
        while let Some((key, u)) = rest.next() {
            let mut group = vec![u];
            while let Some((_, u)) = rest.next_if(|(k, _)| *k == key) {
                group.push(u);
            }
            let queues = self.requeue_all(group);
            self.wake_channel(conn, ch, queues);
        }
    }

    /// [`Self::ack_oldest`], then what [`Self::settle`] does after it: wakes
    /// the channel. False (and nothing done) if `tag` is not the oldest.
    fn ack_oldest_and_wake(&mut self, conn: ConnectionId, ch: ChannelId, tag: DeliveryTag) -> bool {
        let Some(qid) = self.ack_oldest(conn, ch, tag) else {
            return false;
        };
        let mut touched = std::mem::take(&mut self.scratch_targets);
        touched.clear();
        touched.push(qid);
        self.wake_channel(conn, ch, touched);
        true
    }

    /// The common ack, of the channel's oldest delivery, without the general
    /// path's lists: what [`Self::settle`] does for it, in the same order.
    /// Returns the message's queue, or `None` if `tag` is not the oldest.
    ///
    /// The record is read where it lies and then dropped there, not popped
    /// into a local first: that copy, read back at once in other widths than
    /// it was written in, could not be forwarded from the store buffer (`perf`
    /// put about a fifth of `settle`'s time on it).
    fn ack_oldest(&mut self, conn: ConnectionId, ch: ChannelId, tag: DeliveryTag) -> Option<u32> {
        let chan = self.channel_mut(conn, ch)?;
        let u = chan.unacked.front().filter(|u| u.tag == tag)?;
        let (qid, consumer, message_id) = (u.queue, u.consumer, u.entry.msg.id);
        // What `forget_unacked` does, with the channel already at hand.
        if u.limited {
            chan.limiter_volume = chan.limiter_volume.saturating_sub(1);
        }
        chan.unacked.pop_front();
        self.forget_outside_channel(consumer, qid);
        self.trace(|b| Trace::Acked {
            message_id,
            queue: b.queue_name(qid).to_string(),
        });
        Some(qid)
    }

    fn recover(&mut self, conn: ConnectionId, ch: ChannelId, requeue: bool) -> Res<Outcome> {
        if !requeue {
            return Err(Fault::not_implemented("requeue=false"));
        }
        let Some(chan) = self.channel_mut(conn, ch) else {
            return Ok(Outcome::Ok);
        };
        let all: Vec<Unacked> = chan.unacked.drain(..).collect();
        let limited = all.iter().filter(|u| u.limited).count();
        chan.limiter_volume = chan
            .limiter_volume
            .saturating_sub(u32::try_from(limited).unwrap_or(u32::MAX));
        self.requeue_in_groups(conn, ch, all);
        self.wake_channel(conn, ch, Vec::new());
        Ok(Outcome::Ok)
    }

    // ------------------------------------------------------------------ restart

    fn broker_restart(&mut self) -> Res<Outcome> {
        // Connections die with the node: unacked messages go back to their
        // queues (a persistent one in a durable queue survives, redelivered).
        let conns: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for conn in conns {
            let chans: Vec<ChannelId> = self
                .connections
                .get(&conn)
                .map(|c| c.channels.keys().copied().collect())
                .unwrap_or_default();
            for ch in chans {
                let Some(channel) = self
                    .connections
                    .get_mut(&conn)
                    .and_then(|c| c.channels.remove(&ch))
                else {
                    continue;
                };
                for cid in &channel.consumers {
                    self.remove_consumer(*cid);
                }
                for u in channel.unacked {
                    self.requeue(u);
                }
            }
        }
        self.connections.clear();
        self.consumers.iter_mut().for_each(|c| *c = None);

        // Lost: transient and exclusive queues, and auto-delete queues whose
        // consumers went away with the connections.
        let doomed: Vec<u32> = (0..self.queues.len() as u32)
            .filter(|q| {
                self.queue(*q).is_some_and(|q| {
                    !q.durable || q.exclusive_owner.is_some() || (q.auto_delete && q.had_consumers)
                })
            })
            .collect();
        for qid in doomed {
            self.delete_queue(qid, DropReason::BrokerRestart, false);
        }
        let doomed: Vec<u32> = (0..self.exchanges.len() as u32)
            .filter(|x| self.exchange(*x).is_some_and(|x| !x.durable))
            .collect();
        self.routing_generation += 1;
        for xid in doomed {
            if let Some(x) = self.exchanges.get_mut(xid as usize).and_then(Option::take) {
                self.exchange_ids.remove(&x.name);
                for slot in self.exchanges.iter_mut().flatten() {
                    slot.unbind_dest(Dest::Exchange(xid));
                }
            }
        }
        let tracing = self.tracing;
        let mut lost = Vec::new();
        for qid in 0..self.queues.len() as u32 {
            let Some(q) = self.queue_mut(qid) else {
                continue;
            };
            let all = q.purge();
            q.active.clear();
            q.blocked.clear();
            q.consumers.clear();
            q.has_exclusive_consumer = false;
            q.unacked = 0;
            q.timer_at = None;
            for e in all {
                if e.msg.persistent() {
                    q.requeue(e);
                } else if tracing {
                    lost.push((e.msg.id, q.name.to_string()));
                }
            }
            self.renew_lease(qid);
            self.touch(qid);
        }
        for (id, qn) in lost {
            self.trace(|_| Trace::Dropped {
                message_id: id,
                queue: Some(qn),
                reason: DropReason::BrokerRestart,
                why: "transient message lost in the broker restart".into(),
            });
        }
        let mut c = Connection::default();
        c.channels.insert(1, Channel::new());
        self.connections.insert(1, c);
        Ok(Outcome::Ok)
    }

    // ------------------------------------------------------------------ view

    /// A snapshot of everything the UI shows.
    pub fn view(&self) -> BrokerView {
        let exchanges = self
            .exchanges
            .iter()
            .flatten()
            .map(|x| ExchangeView {
                name: x.name.to_string(),
                kind: x.kind,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments.clone(),
            })
            .collect();
        let mut bindings = Vec::new();
        for x in self.exchanges.iter().flatten() {
            for b in &x.bindings {
                bindings.push(BindingView {
                    source: x.name.to_string(),
                    destination: self.dest_name(b.dest),
                    destination_kind: match b.dest {
                        Dest::Queue(_) => DestinationKind::Queue,
                        Dest::Exchange(_) => DestinationKind::Exchange,
                    },
                    routing_key: b.key.to_string(),
                    arguments: b.arguments.clone(),
                });
            }
        }
        let queues = self
            .queues
            .iter()
            .flatten()
            .map(|q| QueueView {
                name: q.name.to_string(),
                durable: q.durable,
                exclusive_owner: q.exclusive_owner,
                auto_delete: q.auto_delete,
                arguments: q.arguments.clone(),
                ready: q.ready_len() as u32,
                unacked: q.unacked,
                consumers: q
                    .consumers
                    .iter()
                    .filter_map(|c| self.consumer(*c).map(|c| c.tag.to_string()))
                    .collect(),
                messages: q
                    .ready()
                    .map(|e| MessageView {
                        message_id: e.msg.id,
                        body: e.msg.body.to_string(),
                        exchange: e.msg.exchange().to_string(),
                        routing_key: e.msg.routing_key().to_string(),
                        redelivered: e.redelivered(),
                        priority: e.msg.props().priority,
                        expires_at_ms: e.expires_at(),
                    })
                    .collect(),
            })
            .collect();
        let consumers = self
            .consumers
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i as u32, c)))
            .map(|(cid, c)| {
                let q = self.queue(c.queue);
                ConsumerView {
                    consumer_tag: c.tag.to_string(),
                    queue: q.map(|q| q.name.to_string()).unwrap_or_default(),
                    connection: c.connection,
                    channel: c.channel,
                    no_ack: c.no_ack,
                    exclusive: c.exclusive,
                    prefetch: c.prefetch,
                    unacked: c.unacked,
                    active: q.is_some_and(|q| {
                        !q.cfg.single_active_consumer || q.consumers.first() == Some(&cid)
                    }),
                }
            })
            .collect();
        let connections = self
            .connections
            .iter()
            .map(|(id, c)| ConnectionView {
                id: *id,
                channels: c
                    .channels
                    .iter()
                    .map(|(n, ch)| ChannelView {
                        id: *n,
                        confirm_mode: ch.confirm_seq.is_some(),
                        consumer_prefetch: ch.consumer_prefetch,
                        global_prefetch: ch.global_prefetch,
                        unacked: ch.unacked.iter().map(|u| u.tag).collect(),
                        next_delivery_tag: ch.next_tag,
                    })
                    .collect(),
            })
            .collect();
        BrokerView {
            now_ms: self.now,
            exchanges,
            bindings,
            queues,
            consumers,
            connections,
        }
    }
}

/// Names, keys and tags are AMQP short strings (at most 255 bytes); a longer
/// one cannot be sent to RabbitMQ at all, and would let a single routing key
/// make topic matching recurse arbitrarily deep.
fn check_short_strings(m: &Method) -> Res<()> {
    match m.oversize_short_string() {
        Some(len) => Err(oversize_short_string(len)),
        None => Ok(()),
    }
}

fn oversize_short_string(len: usize) -> Fault {
    Fault::syntax_error(format!("short string of {len} bytes (at most 255)"))
}

fn connection_not_open(conn: ConnectionId) -> Fault {
    Fault::channel_error(format!("connection {conn} is not open"))
}

fn channel_not_open(ch: ChannelId) -> Fault {
    Fault::channel_error(format!(
        "expected 'channel.open' (channel {ch} is not open)"
    ))
}

#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    Reject { requeue: bool },
}
