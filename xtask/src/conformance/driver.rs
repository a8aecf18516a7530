//! The seam between the conformance runner and a broker under test.
//!
//! The runner turns each case step into a [`Request`] (or a runner-only op such
//! as `wait` or `deliveries`) and hands it to a driver. The simulation driver
//! feeds `sim_core::Broker` directly; the real driver goes through the bridge's
//! relay code to RabbitMQ, so the relay itself is what the cases verify.

use sim_core::protocol::{Request, ServerFrame};

/// A broker the conformance runner can drive.
pub trait Driver {
    /// Called before each case with the names the case declares (non-passive,
    /// literal), so a real broker can delete leftovers. Starts from a fresh broker
    /// state with connection 1 / channel 1 open.
    fn begin_case(&mut self, queues: &[String], exchanges: &[String]) -> anyhow::Result<()>;

    /// Sends one request and returns every frame that arrived up to and
    /// including its `reply` (returns, confirms, closes it caused come first).
    /// For `publish` without confirm mode a real driver makes a synchronous round
    /// trip first, so returns and channel errors are attributed to this step.
    fn request(&mut self, req: Request) -> anyhow::Result<Vec<ServerFrame>>;

    /// Lets `ms` milliseconds pass (virtual clock or real sleep) and returns the
    /// frames that arrived meanwhile.
    fn wait(&mut self, ms: u64) -> anyhow::Result<Vec<ServerFrame>>;

    /// Returns frames that arrived without a request (deliveries, cancels); a real
    /// driver first lets network events settle for a short delay.
    fn settle(&mut self) -> anyhow::Result<Vec<ServerFrame>>;

    /// Called after each case (close connections, delete what the case made).
    fn end_case(&mut self, queues: &[String], exchanges: &[String]) -> anyhow::Result<()>;
}
