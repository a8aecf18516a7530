//! The relay: executes protocol requests against RabbitMQ (placeholder).

use std::time::Instant;

use sim_core::protocol::{AmqpError, ErrorScope, Event, ReplyResult, Request, ServerFrame};
use tokio::sync::mpsc;

/// How a relay session reaches RabbitMQ.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub amqp_url: String,
    pub allow_broker_restart: bool,
    pub connect_timeout: std::time::Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
            allow_broker_restart: false,
            connect_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// One client's session.
pub struct Session {
    out: mpsc::UnboundedSender<ServerFrame>,
    start: Instant,
    prefix: String,
}

impl Session {
    pub fn start(_config: RelayConfig) -> (Session, mpsc::UnboundedReceiver<ServerFrame>) {
        let (out, rx) = mpsc::unbounded_channel();
        (
            Session {
                out,
                start: Instant::now(),
                prefix: "pg.00000000.".to_string(),
            },
            rx,
        )
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    fn emit(&self, event: Event) {
        let at_ms = self.start.elapsed().as_millis() as u64;
        let _ = self.out.send(ServerFrame { at_ms, event });
    }
    pub fn send(&self, req: Request) {
        self.emit(Event::Reply {
            id: req.id,
            result: ReplyResult::Error(AmqpError {
                scope: ErrorScope::Connection,
                code: 540,
                name: "NOT_IMPLEMENTED".into(),
                text: "relay not written yet".into(),
            }),
        });
    }
    pub fn protocol_error(&self, id: Option<u64>, message: String) {
        self.emit(Event::ProtocolError { id, message });
    }
    pub async fn shutdown(self) {}
}
