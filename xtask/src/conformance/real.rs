//! The real-broker driver: RabbitMQ through the bridge's relay library
//! (`bridge::relay::Session`), so the cases verify the relay itself.
//!
//! * Each case runs in a fresh relay session, i.e. a fresh namespace
//!   (`pg.<hex>.`): leftovers of earlier runs cannot collide with it, and
//!   `end_case` deletes everything the session declared.
//! * `AMQP_URL` selects the broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
//! * `broker_restart` runs `rabbitmqctl stop_app/start_app/await_startup`
//!   (the relay does it; the driver enables it).
//!
//! The corpus was recorded with pika's `BlockingConnection`, whose consumer
//! callbacks only run when the recorder pumps events: in `deliveries`/`wait`
//! and in the round trip after a publish/ack/nack/reject on the same
//! connection. Deliveries not yet dispatched when a consumer is cancelled are
//! rejected with requeue by pika (and never reported); deliveries pending on a
//! channel or connection that closes are dropped. The driver reproduces that:
//! it holds `deliver` frames back until such a dispatch point.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use bridge::relay::{RelayConfig, Session};
use sim_core::protocol::{ChannelId, ConnectionId, Event, Method, Request, ServerFrame};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;

use super::driver::Driver;

/// Settle delay of `deliveries` steps (record.py's `--settle` default).
const SETTLE_MS: u64 = 200;
/// How long a cancel waits for deliveries already under way.
const CANCEL_GRACE_MS: u64 = 50;
/// Ids of requests the driver makes on its own (never clash with the runner's).
const OWN_IDS: u64 = 1 << 48;

pub fn driver() -> anyhow::Result<Box<dyn Driver>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let amqp_url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string());
    let health = rt.block_on(bridge::health::probe(&amqp_url, Duration::from_secs(5)));
    if health.broker != "up" {
        anyhow::bail!(
            "RabbitMQ is not reachable: {} (start it: rabbitmq-server -detached; rabbitmqctl await_startup)",
            health.detail.unwrap_or_default()
        );
    }
    let cfg = RelayConfig {
        amqp_url,
        allow_broker_restart: true,
        // The cases check RabbitMQ's answers to any argument; the allowlist is
        // a policy for browsers, not broker semantics.
        lenient_arguments: true,
        ..RelayConfig::default()
    };
    Ok(Box::new(RealDriver {
        rt,
        cfg,
        session: None,
        held: Vec::new(),
        consumers: HashMap::new(),
        next_own_id: OWN_IDS,
    }))
}

struct Live {
    session: Session,
    frames: UnboundedReceiver<ServerFrame>,
}

struct RealDriver {
    rt: Runtime,
    cfg: RelayConfig,
    session: Option<Live>,
    /// Deliveries not yet "dispatched" (see the module docs).
    held: Vec<ServerFrame>,
    /// consumer tag → (connection, channel, no_ack)
    consumers: HashMap<String, (ConnectionId, ChannelId, bool)>,
    next_own_id: u64,
}

fn deliver_key(f: &ServerFrame) -> Option<(ConnectionId, ChannelId, &str, u64)> {
    match &f.event {
        Event::Deliver {
            connection,
            channel,
            consumer_tag,
            delivery_tag,
            ..
        } => Some((*connection, *channel, &**consumer_tag, *delivery_tag)),
        _ => None,
    }
}

impl RealDriver {
    /// Sends a request; returns every frame up to and including its reply.
    /// Deliveries go to `held`.
    fn roundtrip(&mut self, req: Request) -> anyhow::Result<Vec<ServerFrame>> {
        let id = req.id;
        let op = req.method.op();
        let live = self
            .session
            .as_mut()
            .context("no case is running (begin_case was not called)")?;
        live.session
            .try_send(req)
            .context("the relay session has ended")?;
        let frames = &mut live.frames;
        let got = self.rt.block_on(async {
            let mut out = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
            loop {
                match tokio::time::timeout_at(deadline, frames.recv()).await {
                    Err(_) => return Err(anyhow::anyhow!("no reply to {op} within 180 s")),
                    Ok(None) => return Err(anyhow::anyhow!("the relay session ended")),
                    Ok(Some(f)) => {
                        let done = matches!(&f.event, Event::Reply { id: rid, .. } if *rid == id);
                        out.push(f);
                        if done {
                            return Ok(out);
                        }
                    }
                }
            }
        })?;
        let mut rest = Vec::new();
        for f in got {
            if deliver_key(&f).is_some() {
                self.held.push(f);
            } else {
                rest.push(f);
            }
        }
        Ok(rest)
    }

    /// Collects frames for `ms`: deliveries are held, the rest returned.
    fn collect(&mut self, ms: u64) -> anyhow::Result<Vec<ServerFrame>> {
        let live = self
            .session
            .as_mut()
            .context("no case is running (begin_case was not called)")?;
        let frames = &mut live.frames;
        let got = self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
            let mut out = Vec::new();
            while let Ok(Some(f)) = tokio::time::timeout_at(deadline, frames.recv()).await {
                out.push(f);
            }
            out
        });
        let mut rest = Vec::new();
        for f in got {
            if deliver_key(&f).is_some() {
                self.held.push(f);
            } else {
                rest.push(f);
            }
        }
        Ok(rest)
    }

    /// Collects frames for `ms`, then dispatches everything held.
    fn pump(&mut self, ms: u64) -> anyhow::Result<Vec<ServerFrame>> {
        let mut rest = self.collect(ms)?;
        let mut out = std::mem::take(&mut self.held);
        out.append(&mut rest);
        Ok(out)
    }

    /// Releases held deliveries matching `pred`.
    fn dispatch(
        &mut self,
        pred: impl Fn(ConnectionId, ChannelId, &str) -> bool,
    ) -> Vec<ServerFrame> {
        let (out, keep) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|f| deliver_key(f).is_some_and(|(c, n, t, _)| pred(c, n, t)));
        self.held = keep;
        out
    }

    /// pika's `basic_cancel`: undispatched deliveries of a manual-ack consumer
    /// are rejected (requeue) before the cancel, and deliveries arriving while
    /// it is being cancelled are rejected too; none of them is reported.
    fn cancel(&mut self, req: Request, tag: String) -> anyhow::Result<Vec<ServerFrame>> {
        let manual_ack = self
            .consumers
            .get(&tag)
            .is_some_and(|(_, _, no_ack)| !no_ack);
        // Deliveries already on their way when the cancel is issued were read
        // by pika during an earlier blocking call: collect them first.
        let mut out = self.collect(CANCEL_GRACE_MS)?;
        self.reject_held(&tag, manual_ack, &mut out)?;
        out.extend(self.roundtrip(req)?);
        for _ in 0..100 {
            if !self.reject_held(&tag, manual_ack, &mut out)? {
                break;
            }
        }
        Ok(out)
    }

    /// Rejects (requeue) or drops the held deliveries of `tag`; false if none.
    fn reject_held(
        &mut self,
        tag: &str,
        reject: bool,
        out: &mut Vec<ServerFrame>,
    ) -> anyhow::Result<bool> {
        let pending = self.dispatch(|_, _, t| t == tag);
        if pending.is_empty() {
            return Ok(false);
        }
        if reject {
            for f in pending {
                if let Some((c, n, _, delivery_tag)) = deliver_key(&f) {
                    let id = self.own_id();
                    let r = Request::new(
                        id,
                        Method::Reject {
                            delivery_tag,
                            requeue: true,
                        },
                    )
                    .on(c, n);
                    // Keep the events our own request caused, not its reply.
                    out.extend(self.roundtrip(r)?.into_iter().filter(
                        |x| !matches!(&x.event, Event::Reply { id: rid, .. } if *rid == id),
                    ));
                }
            }
        }
        Ok(true)
    }

    fn own_id(&mut self) -> u64 {
        self.next_own_id += 1;
        self.next_own_id
    }
}

impl Driver for RealDriver {
    fn begin_case(&mut self, _queues: &[String], _exchanges: &[String]) -> anyhow::Result<()> {
        // A fresh session is a fresh namespace: nothing of earlier runs is visible.
        if let Some(old) = self.session.take() {
            self.rt.block_on(old.session.shutdown());
        }
        self.held.clear();
        self.consumers.clear();
        // Someone else may be restarting the shared broker: wait for it.
        let url = self.cfg.amqp_url.clone();
        let up = self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let h = bridge::health::probe(&url, Duration::from_secs(2)).await;
                if h.broker == "up" || tokio::time::Instant::now() > deadline {
                    return h;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        if up.broker != "up" {
            anyhow::bail!(
                "RabbitMQ is not reachable: {}",
                up.detail.unwrap_or_default()
            );
        }
        let _guard = self.rt.enter();
        let (session, frames) = Session::start(self.cfg.clone());
        self.session = Some(Live { session, frames });
        Ok(())
    }

    fn request(&mut self, req: Request) -> anyhow::Result<Vec<ServerFrame>> {
        let (c, n) = (req.connection, req.channel);
        let method = req.method.clone();
        if let Method::Consume {
            consumer_tag,
            no_ack,
            ..
        } = &method
        {
            self.consumers.insert(consumer_tag.clone(), (c, n, *no_ack));
        }
        if let Method::Cancel { consumer_tag } = &method {
            return self.cancel(req, consumer_tag.clone());
        }
        let mut frames = self.roundtrip(req)?;
        // Channels/connections the broker closed drop their pending deliveries.
        for f in &frames {
            if let Event::Closed {
                connection,
                channel,
                ..
            } = &f.event
            {
                let (cc, ch) = (*connection, *channel);
                self.dispatch(|dc, dn, _| dc == cc && ch.is_none_or(|ch| ch == dn));
            }
        }
        match &method {
            // record.py's probe pumps the publishing connection.
            Method::Publish { .. }
            | Method::Ack { .. }
            | Method::Nack { .. }
            | Method::Reject { .. } => {
                let confirm_publish = matches!(method, Method::Publish { .. })
                    && frames
                        .iter()
                        .any(|f| matches!(f.event, Event::Confirm { .. }));
                if !confirm_publish {
                    let mut d = self.dispatch(|dc, _, _| dc == c);
                    frames.append(&mut d);
                }
            }
            Method::ChannelClose => {
                self.dispatch(|dc, dn, _| dc == c && dn == n);
            }
            Method::ConnectionClose | Method::ConnectionOpen | Method::BrokerRestart => {
                let all = matches!(method, Method::BrokerRestart);
                self.dispatch(|dc, _, _| all || dc == c);
            }
            _ => {}
        }
        Ok(frames)
    }

    fn wait(&mut self, ms: u64) -> anyhow::Result<Vec<ServerFrame>> {
        self.pump(ms)
    }

    fn settle(&mut self) -> anyhow::Result<Vec<ServerFrame>> {
        self.pump(SETTLE_MS)
    }

    fn end_case(&mut self, _queues: &[String], _exchanges: &[String]) -> anyhow::Result<()> {
        // Closes the case's connections and deletes everything its namespace holds.
        if let Some(old) = self.session.take() {
            self.rt.block_on(old.session.shutdown());
        }
        self.held.clear();
        self.consumers.clear();
        Ok(())
    }
}
