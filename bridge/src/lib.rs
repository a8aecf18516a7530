//! `bridge`: the real-RabbitMQ side of the playground.
//!
//! * [`server`]: an axum HTTP server that serves the static page, `GET /healthz`
//!   and `GET /ws` (the playground protocol of [`sim_core::protocol`] as JSON
//!   text frames).
//! * [`relay`]: the library that executes protocol [`Request`]s against
//!   RabbitMQ with lapin and emits [`ServerFrame`]s. The WebSocket handler and the
//!   real conformance driver (`cargo xtask conformance --real`) both use it.
//!
//! [`Request`]: sim_core::protocol::Request
//! [`ServerFrame`]: sim_core::protocol::ServerFrame

pub mod config;
pub mod health;
pub mod relay;
pub mod server;

pub use config::Config;
pub use relay::{RelayConfig, Session};
