//! A read-only snapshot of the broker for the UI.
//!
//! The page redraws from a snapshot rather than from broker internals, so the
//! broker keeps its hot-path data structures private and the page can diff two
//! snapshots or ship them over the wire (everything here is serde).

use serde::{Deserialize, Serialize};

use crate::protocol::{
    ChannelId, ConnectionId, DeliveryTag, DestinationKind, ExchangeKind, FieldTable, MessageId,
};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BrokerView {
    pub now_ms: u64,
    /// In declaration order; the default exchange `""` first.
    pub exchanges: Vec<ExchangeView>,
    /// Explicit bindings, by source exchange then binding order. The default
    /// exchange's implicit bindings (one per queue) are not listed.
    pub bindings: Vec<BindingView>,
    /// In declaration order.
    pub queues: Vec<QueueView>,
    pub consumers: Vec<ConsumerView>,
    pub connections: Vec<ConnectionView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeView {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingView {
    pub source: String,
    pub destination: String,
    pub destination_kind: DestinationKind,
    pub routing_key: String,
    pub arguments: FieldTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub name: String,
    pub durable: bool,
    /// The owning connection of an exclusive queue.
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// Ready messages (what queue.declare-ok's message_count reports).
    pub ready: u32,
    /// Delivered, not yet acknowledged.
    pub unacked: u32,
    /// Consumer tags, in registration order.
    pub consumers: Vec<String>,
    /// Ready messages, next to be delivered first.
    pub messages: Vec<MessageView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub message_id: MessageId,
    pub body: String,
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Virtual time at which it expires, if it has a TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerView {
    pub consumer_tag: String,
    pub queue: String,
    pub connection: ConnectionId,
    pub channel: ChannelId,
    pub no_ack: bool,
    pub exclusive: bool,
    /// Per-consumer prefetch (0 = unlimited).
    pub prefetch: u16,
    pub unacked: u32,
    /// False while waiting its turn on a single-active-consumer queue.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub channels: Vec<ChannelView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelView {
    pub id: ChannelId,
    pub confirm_mode: bool,
    /// Prefetch for consumers created from now on (`basic_qos global=false`).
    pub consumer_prefetch: u16,
    /// Channel-wide prefetch (`basic_qos global=true`, 0 = unlimited).
    pub global_prefetch: u16,
    /// Delivery tags awaiting ack, ascending.
    pub unacked: Vec<DeliveryTag>,
    pub next_delivery_tag: DeliveryTag,
}
