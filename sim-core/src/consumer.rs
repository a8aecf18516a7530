//! Consumers: a subscription of one channel to one queue.
//!
//! Prefetch is RabbitMQ 3.10's: `basic.qos global=false` sets the limit for
//! consumers created afterwards on the channel (copied here at consume time);
//! `global=true` is one limit shared by the channel's consumers, kept on the
//! channel. `no_ack` consumers ignore both.

use crate::protocol::{ChannelId, ConnectionId, ShortString};

#[derive(Debug, Clone)]
pub struct Consumer {
    /// Copied into every delivery (see [`ShortString`]).
    pub tag: ShortString,
    pub queue: u32,
    pub connection: ConnectionId,
    pub channel: ChannelId,
    pub no_ack: bool,
    pub exclusive: bool,
    /// Per-consumer prefetch (0 = unlimited).
    pub prefetch: u16,
    pub unacked: u32,
    /// `x-priority` argument: higher-priority consumers are served first.
    pub priority: i64,
    /// A stream consumer's next offset in the stream's log (0 otherwise).
    pub offset: u64,
}

impl Consumer {
    /// Whether the consumer's own limit allows one more delivery.
    pub fn has_credit(&self) -> bool {
        self.no_ack || self.prefetch == 0 || self.unacked < self.prefetch as u32
    }
}
