//! The HTTP side: static page, `/healthz`, `/ws`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::health;
use crate::relay::journal::{self, Journal};
use crate::relay::{RelayConfig, Session};

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid --bind address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error(
        "cannot listen on {addr}: {source} (is another bridge running? choose another --bind)"
    )]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[derive(Clone)]
struct AppState {
    config: Arc<Config>,
    shutdown: watch::Receiver<bool>,
    /// Every live WebSocket session holds a clone; `run` waits for them all
    /// (their cleanup) before returning.
    sessions: mpsc::Sender<()>,
    /// The last broker probe, reused for a second (healthz may be polled).
    health: Arc<Mutex<Option<(std::time::Instant, health::Health)>>>,
    /// This process's crash journal (shared by its sessions).
    journal: Option<Arc<Journal>>,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    config: Config,
}

impl Server {
    /// Binds `config.bind`. Fails with a clear error if the port is taken.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(config.bind.as_str())
                .await
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::InvalidInput => ServerError::BadAddress {
                        addr: config.bind.clone(),
                        reason: source.to_string(),
                    },
                    _ => ServerError::Bind {
                        addr: config.bind.clone(),
                        source,
                    },
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.bind.clone(),
            source,
        })?;
        Ok(Server {
            listener,
            addr,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then closes every WebSocket session
    /// (deleting its broker objects) and returns.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (sessions, mut sessions_done) = mpsc::channel::<()>(1);
        let journals = journal::broker_dir(&self.config.state_root(), &self.config.amqp_url);
        let own = match Journal::create(&journals) {
            Ok(j) => Some(Arc::new(j)),
            Err(e) => {
                warn!(error = %e, "no crash journal: a killed bridge's objects stay on the broker");
                None
            }
        };
        // After our own journal exists (and is locked), so we skip it.
        let sweeper = tokio::spawn(sweep_leftovers(journals, self.config.amqp_url.clone()));
        let state = AppState {
            journal: own,
            config: Arc::new(self.config),
            shutdown: stop_rx,
            sessions,
            health: Arc::new(Mutex::new(None)),
        };
        let app = router(state);
        info!(addr = %self.addr, "listening");
        let stop = async move {
            shutdown.await;
            info!("shutting down");
            let _ = stop_tx.send(true);
        };
        // Frames are small and interactive (a reply, then a delivery): no
        // Nagle delay behind an unacknowledged segment. Writes are batched
        // per flush instead (see `send_frames`).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(ServerError::Serve);
        debug!("http server stopped");
        // The router (and its state's sender) is gone; wait for the sessions'
        // cleanup (they were told to stop), bounded.
        if tokio::time::timeout(Duration::from_secs(30), sessions_done.recv())
            .await
            .is_err()
        {
            warn!("some sessions did not finish their cleanup in time");
        }
        debug!("sessions finished");
        sweeper.abort();
        served
    }
}

fn router(state: AppState) -> Router {
    let root = state.config.static_root();
    let index = root.join("index.html");
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/ws", get(ws_upgrade));
    if !root.is_dir() {
        warn!(dir = %root.display(), "static folder missing (run `cargo xtask build-web`)");
    }
    // Read at request time: the page may be built after the bridge started.
    let spa = get(move || spa_index(index.clone()));
    let files = ServeDir::new(&root).precompressed_gzip().fallback(spa);
    api.fallback_service(files)
        .layer(CompressionLayer::new().gzip(true))
        .with_state(state)
}

/// `index.html` for SPA routes, or a hint when the page is not built.
async fn spa_index(index: std::path::PathBuf) -> Response {
    match tokio::fs::read_to_string(&index).await {
        Ok(html) => Html(html).into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            Html(
                "<!doctype html><title>amqp-playground</title>\
                 <p>The page is not built yet: run <code>cargo xtask build-web</code>.</p>",
            ),
        )
            .into_response(),
    }
}

async fn healthz(State(state): State<AppState>) -> Json<health::Health> {
    if let Ok(cache) = state.health.lock() {
        if let Some((at, h)) = cache.as_ref() {
            if at.elapsed() < Duration::from_secs(1) {
                return Json(h.clone());
            }
        }
    }
    let h = health::probe(&state.config.amqp_url, health::PROBE_TIMEOUT).await;
    if let Ok(mut cache) = state.health.lock() {
        *cache = Some((std::time::Instant::now(), h.clone()));
    }
    Json(h)
}

/// Same-origin (Origin's host:port equals Host) or listed in `--allow-origin`;
/// requests without Origin (non-browser clients) are allowed.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

async fn ws_upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.config.allow_origins) {
        return (
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused (start the bridge with --allow-origin ORIGIN)",
        )
            .into_response();
    }
    // Frames above our limit but below this hard cap get a protocol_error and the
    // connection stays usable; above the cap the WebSocket is closed.
    let hard_cap = state.config.max_frame_bytes.saturating_mul(8).max(1 << 20);
    ws.max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| handle_socket(socket, state))
}

/// Turns one text frame into a request, or explains why not.
pub fn parse_request(
    text: &str,
    max_frame_bytes: usize,
) -> Result<sim_core::protocol::Request, (Option<u64>, String)> {
    if text.len() > max_frame_bytes {
        return Err((
            None,
            format!(
                "frame of {} bytes exceeds the limit of {max_frame_bytes} bytes",
                text.len()
            ),
        ));
    }
    // The common case in one pass. What it refuses is read again as a
    // `Value` (as every frame was before), which says what is wrong, so
    // what is accepted and how a refusal reads are as they were.
    match serde_json::from_str(text) {
        Ok(req) => Ok(req),
        Err(_) => parse_value(text),
    }
}

/// [`parse_request`] by way of a `serde_json::Value`: the request, or which
/// part of the frame is wrong.
fn parse_value(text: &str) -> Result<sim_core::protocol::Request, (Option<u64>, String)> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| (None, format!("malformed JSON: {e}")))?;
    let id = value.get("id").and_then(|v| v.as_u64());
    let Some(obj) = value.as_object() else {
        return Err((id, "a request must be a JSON object".to_string()));
    };
    let op = match obj.get("op") {
        Some(serde_json::Value::String(op)) => op.clone(),
        Some(_) => return Err((id, "\"op\" must be a string".to_string())),
        None => return Err((id, "missing \"op\"".to_string())),
    };
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("unknown variant") {
            (id, format!("unknown op \"{op}\""))
        } else {
            (id, format!("invalid \"{op}\" request: {msg}"))
        }
    })
}

async fn handle_socket(socket: WebSocket, state: AppState) {
    let _alive = state.sessions.clone();
    let config = &state.config;
    let relay_config = RelayConfig {
        amqp_url: config.amqp_url.clone(),
        allow_broker_restart: config.allow_broker_restart,
        journal: state.journal.clone(),
        ..RelayConfig::default()
    };
    let (session, mut frames) = Session::start(relay_config);
    info!(prefix = session.prefix(), "session started");
    let (mut sink, mut stream) = socket.split();
    let mut shutdown = state.shutdown.clone();
    let idle = Duration::from_secs(config.idle_timeout_secs.max(1));
    let mut deadline = tokio::time::Instant::now() + idle;
    let mut bucket = RateLimit::new(config.max_requests_per_sec);
    loop {
        tokio::select! {
            msg = stream.next() => {
                deadline = tokio::time::Instant::now() + idle;
                match msg {
                    None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => break,
                    Some(Ok(WsMessage::Text(_))) if !bucket.take() => {
                        session.protocol_error(None, format!(
                            "rate limit: at most {} requests per second; frame dropped",
                            config.max_requests_per_sec
                        ));
                    }
                    Some(Ok(WsMessage::Text(text))) => {
                        match parse_request(text.as_str(), config.max_frame_bytes) {
                            Ok(req) => session.send(req),
                            Err((id, message)) => {
                                debug!(%message, "protocol error");
                                session.protocol_error(id, message);
                            }
                        }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        session.protocol_error(None, "binary frames are not accepted: send JSON text frames".to_string());
                    }
                    Some(Ok(_)) => {}
                }
            }
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                // Frames already waiting go out with it, in one write.
                let mut batch = vec![frame];
                while batch.len() < MAX_FRAMES_PER_WRITE {
                    match frames.try_recv() {
                        Ok(frame) => batch.push(frame),
                        Err(_) => break,
                    }
                }
                if send_frames(&mut sink, batch).await.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                info!(prefix = session.prefix(), "idle timeout");
                break;
            }
            _ = shutdown.changed() => break,
        }
    }
    let _ = sink.send(WsMessage::Close(None)).await;
    let prefix = session.prefix().to_string();
    session.shutdown().await;
    info!(%prefix, "session ended");
}

/// Deletes what killed bridges left on the broker (see [`journal`]); retried
/// while the broker is unreachable.
async fn sweep_leftovers(dir: std::path::PathBuf, amqp_url: String) {
    let mut wait = Duration::from_secs(5);
    loop {
        match journal::sweep(&dir, &amqp_url, Duration::from_secs(5)).await {
            Ok(s) if s.journals == 0 => return,
            Ok(s) => {
                info!(
                    journals = s.journals,
                    queues = s.queues,
                    exchanges = s.exchanges,
                    "deleted what stopped bridges left on the broker"
                );
                return;
            }
            Err(e) => {
                debug!(error = %e, "sweep: broker unreachable, retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(300));
            }
        }
    }
}

/// Server frames written to the socket with one flush at most.
const MAX_FRAMES_PER_WRITE: usize = 256;

/// Writes frames as JSON text messages, flushing once.
async fn send_frames<S>(
    sink: &mut S,
    frames: Vec<sim_core::protocol::ServerFrame>,
) -> Result<(), S::Error>
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    for frame in frames {
        match serde_json::to_string(&frame) {
            Ok(json) => sink.feed(WsMessage::Text(json.into())).await?,
            Err(e) => warn!(error = %e, "cannot serialize a frame"),
        }
    }
    sink.flush().await
}

/// A token bucket: `rate` tokens per second, holding at most `2 * rate`.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        RateLimit {
            rate,
            tokens: 2.0 * rate,
            last: std::time::Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(2.0 * self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass parse accepts and refuses exactly what the `Value` one does.
    #[test]
    fn parse_request_agrees_with_the_value_parse() {
        let frames = [
            r#"{"id": 7, "op": "publish", "exchange": "", "routing_key": "q", "body": "0123456789abcdef"}"#,
            r#"{"id": 8, "op": "ack", "channel": 2, "delivery_tag": 3}"#,
            r#"{"id": 8, "op": "ack", "channel": 2, "delivery_tag": 3, "multiple": true}"#,
            r#"{"op": "queue_declare", "queue": "orders", "arguments": {"x-max-length": 3, "x-queue-type": "classic"}}"#,
            r#"{"id": 9, "op": "publish", "routing_key": "q", "body": "b", "properties": {"headers": {"b": 1, "a": [true, null, 2.5]}, "priority": 3}}"#,
            r#"{"id": 1, "connection": 2, "channel": 3, "op": "channel_open"}"#,
            r#"{"id": 1, "op": "ack", "delivery_tag": 1, "delivery_tag": 2}"#,
            r#"{"id": 1, "op": "publish", "op": "ack", "delivery_tag": 1}"#,
            r#"{"id": 2, "op": "no_such_op"}"#,
            r#"{"id": 3}"#,
            r#"{"id": 4, "op": 5}"#,
            r#"{"id": 5, "op": "ack", "delivery_tag": "x"}"#,
            r#"{"id": 6, "op": "ack", "delivery_tag": 1, "unknown_field": 1}"#,
            r#"{"id": -1, "op": "confirm_select"}"#,
            r#"{"id": 1.5, "op": "confirm_select"}"#,
            r#"[1, 2]"#,
            r#""op""#,
            r#"{"id": 1, "op": "confirm_select"} trailing"#,
            r#"{"id": 1, "op": "confirm_select""#,
            "",
        ];
        for text in frames {
            assert_eq!(
                parse_request(text, 1 << 16),
                parse_value(text),
                "frame {text}"
            );
        }
        assert!(parse_request(frames[0], 1 << 16).is_ok());
        assert!(parse_request(frames[8], 1 << 16).is_err());
        let (id, message) = parse_request(frames[0], 10).expect_err("over the limit");
        assert_eq!(id, None);
        assert!(message.contains("exceeds the limit"), "{message}");
    }
}
