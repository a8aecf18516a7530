//! The simulation driver: a fresh `sim_core::Broker` per case, clock advanced
//! only by `wait`.
//!
//! The corpus was recorded with pika's `BlockingConnection` (record.py), whose
//! consumer callbacks only run when the recorder pumps events: in `deliveries`
//! and `wait` (all connections), and in the round trip after a successful
//! non-confirm `publish` or an `ack`/`nack`/`reject` (that step's connection).
//! Deliveries still waiting for such a pump are handled by pika, not reported:
//! on `cancel` of an ack-mode consumer they are rejected with requeue (before
//! the cancel is sent; whatever reaches the consumer meanwhile is rejected
//! after it), for a no-ack consumer they are lost, and they vanish with their
//! channel or connection. The broker itself knows nothing of this; the driver
//! plays the client's part so that outcomes are comparable with the recording.

use std::collections::{BTreeMap, BTreeSet};

use sim_core::protocol::{
    ChannelId, ConnectionId, Event, Method, Outcome, ReplyResult, Request, ServerFrame,
};
use sim_core::Broker;

use super::driver::Driver;

/// Seed of every case's broker (server-named queues are aliased, so the seed
/// does not show in outcomes).
const SEED: u64 = 0x5eed;

/// Ids of requests the driver makes on the client's behalf.
const INTERNAL_ID: u64 = u64::MAX / 2;

#[derive(Clone)]
pub struct SimDriver {
    broker: Broker,
    /// Trace events on (the difftest reads routing and drops from them).
    tracing: bool,
    /// Deliveries the broker made so far (dispatched to the client or not),
    /// as (connection, channel, consumer tag).
    made: Vec<(ConnectionId, ChannelId, String)>,
    /// Deliver frames not yet dispatched to the client's callbacks.
    pending: Vec<ServerFrame>,
    /// consumer tag -> no_ack.
    no_ack: BTreeMap<String, bool>,
    confirm: BTreeSet<(ConnectionId, ChannelId)>,
    next_internal: u64,
}

impl SimDriver {
    pub fn new() -> SimDriver {
        SimDriver {
            broker: Broker::new(SEED),
            tracing: false,
            made: Vec::new(),
            pending: Vec::new(),
            no_ack: BTreeMap::new(),
            confirm: BTreeSet::new(),
            next_internal: INTERNAL_ID,
        }
    }

    /// A driver whose broker also reports `trace` events.
    pub fn traced() -> SimDriver {
        let mut d = SimDriver::new();
        d.tracing = true;
        d.broker.set_tracing(true);
        d
    }

    /// How many deliveries the broker has made since the case began.
    pub fn deliveries_made(&self) -> u64 {
        self.made.len() as u64
    }

    /// The deliveries made since the broker had made `n`: (connection,
    /// channel, consumer tag).
    pub fn deliveries_since(&self, n: u64) -> &[(ConnectionId, ChannelId, String)] {
        let n = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.made.len());
        &self.made[n..]
    }

    /// The broker's state, as the page shows it.
    pub fn view(&self) -> sim_core::BrokerView {
        self.broker.view()
    }

    /// Runs one request; deliveries are held back, closures drop the held
    /// deliveries of what they closed.
    fn send(&mut self, req: Request) -> Vec<ServerFrame> {
        let (conn, ch) = (req.connection, req.channel);
        match &req.method {
            Method::ChannelClose => self.forget(conn, Some(ch)),
            Method::ConnectionClose | Method::ConnectionOpen => self.forget(conn, None),
            Method::BrokerRestart => {
                self.pending.clear();
                self.confirm.clear();
            }
            Method::ChannelOpen => {
                self.confirm.remove(&(conn, ch));
            }
            _ => {}
        }
        self.broker.handle_request(req);
        let mut out = Vec::new();
        while let Some(f) = self.broker.poll_event() {
            let Some(f) = self.hold(f) else { continue };
            if let Event::Closed {
                connection,
                channel,
                ..
            } = &f.event
            {
                let (c, h) = (*connection, *channel);
                self.forget(c, h);
            }
            out.push(f);
        }
        out
    }

    /// Holds a delivery back for the client's next pump (and counts it);
    /// any other frame is handed back.
    fn hold(&mut self, f: ServerFrame) -> Option<ServerFrame> {
        match &f.event {
            Event::Deliver {
                connection,
                channel,
                consumer_tag,
                ..
            } => {
                self.made
                    .push((*connection, *channel, consumer_tag.to_string()));
                self.pending.push(f);
                None
            }
            _ => Some(f),
        }
    }

    fn internal(&mut self, conn: ConnectionId, ch: ChannelId, method: Method) -> Vec<ServerFrame> {
        self.next_internal += 1;
        let req = Request::new(self.next_internal, method).on(conn, ch);
        self.send(req)
            .into_iter()
            .filter(|f| !matches!(f.event, Event::Reply { .. }))
            .collect()
    }

    /// Drops held deliveries of a closed channel (or of every channel of a
    /// closed connection).
    fn forget(&mut self, conn: ConnectionId, ch: Option<ChannelId>) {
        self.pending.retain(|f| match &f.event {
            Event::Deliver {
                connection,
                channel,
                ..
            } => !(*connection == conn && ch.is_none_or(|c| c == *channel)),
            _ => true,
        });
        self.confirm
            .retain(|(c, h)| !(*c == conn && ch.is_none_or(|x| x == *h)));
    }

    /// Hands held deliveries to the client (of one connection, or all).
    fn dispatch(&mut self, conn: Option<ConnectionId>) -> Vec<ServerFrame> {
        let (out, keep): (Vec<ServerFrame>, Vec<ServerFrame>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|f| match &f.event {
                Event::Deliver { connection, .. } => conn.is_none_or(|c| c == *connection),
                _ => true,
            });
        self.pending = keep;
        out
    }

    /// Removes and returns held delivery tags of a consumer.
    fn take_pending(&mut self, tag: &str) -> Vec<u64> {
        let mut tags = Vec::new();
        self.pending.retain(|f| match &f.event {
            Event::Deliver {
                consumer_tag,
                delivery_tag,
                ..
            } if &**consumer_tag == tag => {
                tags.push(*delivery_tag);
                false
            }
            _ => true,
        });
        tags
    }
}

fn reply_ok(frames: &[ServerFrame], id: u64) -> Option<&Outcome> {
    frames.iter().rev().find_map(|f| match &f.event {
        Event::Reply {
            id: rid,
            result: ReplyResult::Ok(o),
        } if *rid == id => Some(o),
        _ => None,
    })
}

impl Driver for SimDriver {
    fn begin_case(&mut self, _queues: &[String], _exchanges: &[String]) -> anyhow::Result<()> {
        *self = if self.tracing {
            SimDriver::traced()
        } else {
            SimDriver::new()
        };
        self.internal(1, 1, Method::ConnectionOpen);
        Ok(())
    }

    fn request(&mut self, req: Request) -> anyhow::Result<Vec<ServerFrame>> {
        let (id, conn, ch) = (req.id, req.connection, req.channel);
        let mut pre = Vec::new();
        let mut reject_after = Vec::new();
        if let Method::Cancel { consumer_tag } = &req.method {
            let held = self.take_pending(consumer_tag);
            if !self.no_ack.get(consumer_tag).copied().unwrap_or(false) {
                for t in held {
                    pre.extend(self.internal(
                        conn,
                        ch,
                        Method::Reject {
                            delivery_tag: t,
                            requeue: true,
                        },
                    ));
                }
                reject_after = self.take_pending(consumer_tag);
            }
        }
        let consume = match &req.method {
            Method::Consume { no_ack, .. } => Some(*no_ack),
            _ => None,
        };
        let settles = matches!(
            req.method,
            Method::Ack { .. } | Method::Nack { .. } | Method::Reject { .. }
        );
        let publish = matches!(req.method, Method::Publish { .. });
        let select = matches!(req.method, Method::ConfirmSelect);
        let mut frames = self.send(req);
        let ok = reply_ok(&frames, id).cloned();
        for t in reject_after {
            frames.extend(self.internal(
                conn,
                ch,
                Method::Reject {
                    delivery_tag: t,
                    requeue: true,
                },
            ));
        }
        if let Some(o) = &ok {
            if let (Some(no_ack), Outcome::ConsumeOk { consumer_tag }) = (consume, o) {
                self.no_ack.insert(consumer_tag.clone(), no_ack);
            }
            if select {
                self.confirm.insert((conn, ch));
            }
            if settles || (publish && !self.confirm.contains(&(conn, ch))) {
                let d = self.dispatch(Some(conn));
                frames.extend(d);
            }
        }
        pre.extend(frames);
        // The reply must stay last.
        if let Some(pos) = pre
            .iter()
            .position(|f| matches!(f.event, Event::Reply { id: rid, .. } if rid == id))
        {
            let r = pre.remove(pos);
            pre.push(r);
        }
        Ok(pre)
    }

    fn wait(&mut self, ms: u64) -> anyhow::Result<Vec<ServerFrame>> {
        let until = self.broker.now_ms().saturating_add(ms);
        self.broker.handle_timeout(until);
        let mut out = Vec::new();
        while let Some(f) = self.broker.poll_event() {
            out.extend(self.hold(f));
        }
        out.extend(self.dispatch(None));
        Ok(out)
    }

    fn settle(&mut self) -> anyhow::Result<Vec<ServerFrame>> {
        Ok(self.dispatch(None))
    }

    fn end_case(&mut self, _queues: &[String], _exchanges: &[String]) -> anyhow::Result<()> {
        Ok(())
    }
}
