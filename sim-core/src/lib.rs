//! `sim-core`: a deterministic, sans-IO model of a RabbitMQ (AMQP 0-9-1) broker.
//!
//! Requests go in ([`Broker::handle_request`]), events come out
//! ([`Broker::poll_event`]), and time only moves when the caller says so
//! ([`Broker::handle_timeout`]). Nothing here reads a clock, does IO, spawns a
//! thread or uses global randomness, so the same inputs always give the same
//! outputs: natively in tests and benchmarks, and as WebAssembly in the page.
//!
//! Real RabbitMQ is the oracle: `cargo xtask conformance` replays the recorded
//! cases of `shared/conformance` against this model and against the real broker.

// The protocol enums mirror the wire format; boxing variants would change their API.
#![allow(clippy::large_enum_variant)]

pub mod protocol;
pub mod scenario;

mod broker;
mod channel;
mod consumer;
mod dead_letter;
mod error;
mod exchange;
mod headers;
mod message;
mod outbox;
mod queue;
mod rng;
mod short_string;
pub mod small_map;
mod topic;
pub mod view;

pub use broker::Broker;
/// The seeded generator behind server-generated names, for tools that want the
/// same reproducible randomness (the difftest's program generator).
pub use rng::SplitMix64;
pub use view::BrokerView;
