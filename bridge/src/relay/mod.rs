//! The relay: executes protocol [`Request`]s against a real RabbitMQ with lapin
//! and emits [`ServerFrame`]s, exactly as the simulator would.
//!
//! ```no_run
//! # async fn demo() {
//! use bridge::relay::{RelayConfig, Session};
//! use sim_core::protocol::{Method, Request};
//! let (session, mut frames) = Session::start(RelayConfig::default());
//! session.send(Request::new(1, Method::QueueDeclare {
//!     queue: "orders".into(), passive: false, durable: false, exclusive: false,
//!     auto_delete: false, arguments: Default::default() }));
//! while let Some(frame) = frames.recv().await { println!("{frame:?}"); break; }
//! session.shutdown().await; // deletes everything the session declared
//! # }
//! ```
//!
//! * One lapin connection per protocol `connection` id; connection 1 (with
//!   channel 1) is opened when the session starts.
//! * Each request is answered by exactly one `reply`, after the events it
//!   caused (`return`, `confirm`, `closed`), in request order. Requests run
//!   one at a time, except publishes and acks the broker cannot refuse, which
//!   are pipelined: sent at once, their replies waiting for their confirm or
//!   a shared round trip (see `engine`). Deliveries and broker-side consumer
//!   cancels arrive whenever they happen.
//! * If RabbitMQ goes away, every connection of the session is reopened as it
//!   was when it is back: topology, channels, qos, confirm mode, consumers
//!   (`status` frames tell the client).
//! * Every name is namespaced per session ([`names`]); the session's objects are
//!   deleted by [`Session::shutdown`] (or when the `Session` is dropped), and
//!   by the next bridge if this process is killed first ([`journal`]).

mod convert;
mod engine;
pub mod journal;
pub mod names;

use std::time::{Duration, Instant};

use sim_core::protocol::{Event, Request, ServerFrame};
use tokio::sync::{mpsc, oneshot};

pub use convert::ID_HEADER;
pub use names::Namespace;

/// How a relay session reaches RabbitMQ.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `amqp://user:pass@host:port/vhost`. Never sent to clients.
    pub amqp_url: String,
    /// Whether `broker_restart` may run `rabbitmqctl stop_app/start_app`.
    pub allow_broker_restart: bool,
    /// Bound on opening one AMQP connection.
    pub connect_timeout: Duration,
    /// Fixed namespace prefix (tests); `None` picks `pg.<8 random hex>.`.
    pub prefix: Option<String>,
    /// Pass queue/exchange/consumer arguments outside the allowlists on to
    /// RabbitMQ instead of refusing them (the conformance driver, which must
    /// see RabbitMQ's own answers; never for browsers).
    pub lenient_arguments: bool,
    /// The crash journal the session records its broker objects in (the
    /// bridge server keeps one per process); `None`: no journal.
    pub journal: Option<std::sync::Arc<journal::Journal>>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
            allow_broker_restart: false,
            connect_timeout: Duration::from_secs(5),
            prefix: None,
            lenient_arguments: false,
            journal: None,
        }
    }
}

/// Errors at the relay's edge.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The session task has stopped (after `shutdown`, or the runtime ended).
    #[error("the relay session has ended")]
    Ended,
}

/// Stamps events with the session clock and sends them to the client.
#[derive(Debug, Clone)]
pub(crate) struct Emitter {
    out: mpsc::UnboundedSender<ServerFrame>,
    start: Instant,
}

impl Emitter {
    pub(crate) fn emit(&self, event: Event) {
        let at_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let _ = self.out.send(ServerFrame { at_ms, event });
    }
}

pub(crate) enum Command {
    Request(Box<Request>),
    /// A connection's I/O loop reported an error (broker closed it, socket lost).
    ConnectionLost {
        connection: u32,
        generation: u64,
        error: lapin::Error,
    },
    Shutdown(oneshot::Sender<()>),
}

/// One client's session with RabbitMQ. Cheap to drive from any task; must be
/// started inside a tokio runtime.
#[derive(Debug)]
pub struct Session {
    commands: mpsc::UnboundedSender<Command>,
    emitter: Emitter,
    prefix: String,
}

impl Session {
    /// Starts a session (connection 1 / channel 1 are opened in the background)
    /// and returns it with the stream of frames for the client.
    pub fn start(config: RelayConfig) -> (Session, mpsc::UnboundedReceiver<ServerFrame>) {
        let (out, frames) = mpsc::unbounded_channel();
        let emitter = Emitter {
            out,
            start: Instant::now(),
        };
        let ns = match &config.prefix {
            Some(p) => Namespace::with_prefix(p),
            None => Namespace::random(),
        };
        let prefix = ns.prefix().to_string();
        let (commands, rx) = mpsc::unbounded_channel();
        let engine = engine::Engine::new(config, ns, emitter.clone(), commands.downgrade());
        tokio::spawn(engine.run(rx));
        (
            Session {
                commands,
                emitter,
                prefix,
            },
            frames,
        )
    }

    /// The namespace prefix of this session's broker objects (for logs; never
    /// shown to the client).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Queues a request. Its reply (and the events it causes) arrive on the
    /// frame stream.
    pub fn send(&self, req: Request) {
        let id = req.id;
        if self.try_send(req).is_err() {
            self.protocol_error(Some(id), "the session has ended".to_string());
        }
    }

    /// Like [`Session::send`] but reports a stopped session to the caller.
    pub fn try_send(&self, req: Request) -> Result<(), RelayError> {
        self.commands
            .send(Command::Request(Box::new(req)))
            .map_err(|_| RelayError::Ended)
    }

    /// Emits a `protocol_error` frame (for frames the server could not accept).
    pub fn protocol_error(&self, id: Option<u64>, message: String) {
        self.emitter.emit(Event::ProtocolError { id, message });
    }

    /// Closes every connection and deletes everything the session declared.
    /// Waits for the cleanup (bounded).
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(30), rx).await;
        }
    }
}
