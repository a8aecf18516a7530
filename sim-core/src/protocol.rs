//! The one protocol of the playground: what a client asks of a broker and what a
//! broker tells a client.
//!
//! The same serde types travel in three places: into [`crate::Broker`] inside the
//! page (simulation mode), as JSON frames over the bridge's WebSocket (real mode),
//! and through the conformance runner. Because there is one seam, simulation and
//! real mode cannot drift apart: anything the page can do, it does by building a
//! [`Request`], and anything it shows, it learns from a [`ServerFrame`].
//!
//! Names follow AMQP 0-9-1 (exchange, binding, queue, consumer tag, delivery tag).
//! The `op` names and argument names are the ones of the conformance corpus
//! (`shared/conformance/README.md`), so a conformance step *is* a request.
//!
//! Wire shape (JSON):
//! ```json
//! {"id": 3, "connection": 1, "channel": 1, "op": "queue_declare", "queue": "orders"}
//! {"at_ms": 12, "event": "reply", "id": 3, "ok": {"kind": "queue_declare_ok", "queue": "orders", "message_count": 0, "consumer_count": 0}}
//! ```

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Exchange names, routing keys and consumer tags of publishes and
/// deliveries: no heap block when short.
pub use crate::short_string::ShortString;

/// An AMQP field table (`arguments`, `headers`) as JSON. Typing rules follow the
/// conformance corpus: strings are long strings, integers are signed 32/64-bit,
/// booleans, null (void), arrays and nested tables.
pub type FieldTable = serde_json::Map<String, serde_json::Value>;

/// Client-chosen number of a connection (a page may open several to show
/// exclusivity and connection-level errors).
pub type ConnectionId = u32;
/// Channel number within a connection.
pub type ChannelId = u16;
/// Per-channel delivery tag (AMQP: starts at 1 on every newly opened channel).
pub type DeliveryTag = u64;
/// A broker-wide identity of one message as it moves, so the UI can follow a
/// single message through routing, queues, dead-lettering and redelivery. Not an
/// AMQP concept: real mode assigns it at publish time in the bridge.
pub type MessageId = u64;

fn one_u32() -> u32 {
    1
}
fn one_u16() -> u16 {
    1
}
fn is_one_u32(v: &u32) -> bool {
    *v == 1
}
fn is_one_u16(v: &u16) -> bool {
    *v == 1
}
fn default_true() -> bool {
    true
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// One request from a client. Every request is answered by exactly one
/// [`Event::Reply`] with the same `id` (after any events the request caused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client; echoed in the reply.
    #[serde(default)]
    pub id: u64,
    #[serde(default = "one_u32", skip_serializing_if = "is_one_u32")]
    pub connection: ConnectionId,
    #[serde(default = "one_u16", skip_serializing_if = "is_one_u16")]
    pub channel: ChannelId,
    #[serde(flatten)]
    pub method: Method,
}

impl Request {
    /// A request on connection 1, channel 1.
    pub fn new(id: u64, method: Method) -> Self {
        Request {
            id,
            connection: 1,
            channel: 1,
            method,
        }
    }

    /// The same request on another connection/channel.
    pub fn on(mut self, connection: ConnectionId, channel: ChannelId) -> Self {
        self.connection = connection;
        self.channel = channel;
        self
    }
}

/// Exchange types RabbitMQ ships with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeKind {
    #[default]
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// The `type` of an `exchange_declare`: one of the types RabbitMQ ships with,
/// or any other name a client sends. RabbitMQ answers a type it does not know
/// (a plugin's that is not enabled, a misspelling, `""`) with the connection
/// error `503 COMMAND_INVALID`, so the protocol must be able to carry one.
/// On the wire it is the plain type name, as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExchangeType {
    Known(ExchangeKind),
    Unknown(String),
}

impl ExchangeType {
    pub fn parse(name: &str) -> ExchangeType {
        match name {
            "direct" => ExchangeKind::Direct.into(),
            "fanout" => ExchangeKind::Fanout.into(),
            "topic" => ExchangeKind::Topic.into(),
            "headers" => ExchangeKind::Headers.into(),
            other => ExchangeType::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExchangeType::Known(k) => k.as_str(),
            ExchangeType::Unknown(name) => name,
        }
    }

    /// The kind, if RabbitMQ knows the type.
    pub fn known(&self) -> Option<ExchangeKind> {
        match self {
            ExchangeType::Known(k) => Some(*k),
            ExchangeType::Unknown(_) => None,
        }
    }
}

impl Default for ExchangeType {
    fn default() -> Self {
        ExchangeType::Known(ExchangeKind::default())
    }
}

impl From<ExchangeKind> for ExchangeType {
    fn from(k: ExchangeKind) -> Self {
        ExchangeType::Known(k)
    }
}

impl PartialEq<ExchangeKind> for ExchangeType {
    fn eq(&self, other: &ExchangeKind) -> bool {
        self.known() == Some(*other)
    }
}

impl Serialize for ExchangeType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExchangeType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ExchangeType::parse(&name))
    }
}

/// AMQP basic properties. `None` means "not set" (only set properties travel).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Properties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<FieldTable>,
    /// 1 transient, 2 persistent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_mode: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Per-message TTL in milliseconds, as a decimal string (AMQP shortstr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Seconds since the epoch (AMQP timestamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// [`Properties`] behind a shared pointer: cloning one is a reference-count
/// increment, so a message's properties travel from the publish through the
/// queue to every delivery without being copied, and the many messages that
/// set none hold no pointer at all (no allocation, no reference count to
/// touch when they are cloned or dropped).
///
/// It reads like `Properties` (`Deref`) and serializes exactly as `Properties`
/// does; writing through `DerefMut` copies the properties first if they are
/// shared (clone on write), so it behaves as a plain value.
#[derive(Clone, Default)]
pub struct SharedProperties(Option<Arc<Properties>>);

/// What an empty [`SharedProperties`] reads as. A plain constant rather than
/// a lazily made `Properties::default()`: every publish and delivery reads
/// the properties, and a lazy static costs a check of its state each time.
static NO_PROPERTIES: Properties = Properties {
    content_type: None,
    content_encoding: None,
    headers: None,
    delivery_mode: None,
    priority: None,
    correlation_id: None,
    reply_to: None,
    expiration: None,
    message_id: None,
    timestamp: None,
    kind: None,
    user_id: None,
    app_id: None,
};

impl SharedProperties {
    /// Shares `p` (nothing at all when no property is set).
    pub fn new(p: Properties) -> Self {
        if p == Properties::default() {
            SharedProperties(None)
        } else {
            SharedProperties(Some(Arc::new(p)))
        }
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            None => true,
            Some(p) => **p == Properties::default(),
        }
    }
}

impl PartialEq for SharedProperties {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            _ => **self == **other,
        }
    }
}

impl Deref for SharedProperties {
    type Target = Properties;
    fn deref(&self) -> &Properties {
        match &self.0 {
            Some(p) => p,
            None => &NO_PROPERTIES,
        }
    }
}

impl DerefMut for SharedProperties {
    fn deref_mut(&mut self) -> &mut Properties {
        Arc::make_mut(self.0.get_or_insert_with(Arc::default))
    }
}

impl From<Properties> for SharedProperties {
    fn from(p: Properties) -> Self {
        SharedProperties::new(p)
    }
}

impl PartialEq<Properties> for SharedProperties {
    fn eq(&self, other: &Properties) -> bool {
        **self == *other
    }
}

impl std::fmt::Debug for SharedProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Serialize for SharedProperties {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedProperties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Properties::deserialize(d).map(SharedProperties::new)
    }
}

/// A message as a client sees it: body and properties. The body is text: the
/// playground shows bodies, and the corpus sends UTF-8 strings. Both are
/// shared, so a delivery points at the queued message instead of copying it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    pub body: Arc<str>,
    #[serde(default)]
    pub properties: SharedProperties,
}

/// The AMQP methods a client can call, plus the few administrative operations the
/// playground needs (`broker_restart`). Field names and defaults follow the
/// conformance corpus: booleans default to false, tables to empty, strings to "".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Method {
    /// Opens connection `connection` with channel 1.
    ConnectionOpen,
    /// Clean client close: unacked messages are requeued, exclusive queues deleted.
    ConnectionClose,
    ChannelOpen,
    /// Clean client close: unacked messages are requeued (redelivered=true).
    ChannelClose,
    ExchangeDeclare {
        exchange: String,
        #[serde(rename = "type", default)]
        kind: ExchangeType,
        #[serde(default, skip_serializing_if = "is_false")]
        passive: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        durable: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        auto_delete: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        internal: bool,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    ExchangeDelete {
        exchange: String,
        #[serde(default, skip_serializing_if = "is_false")]
        if_unused: bool,
    },
    ExchangeBind {
        destination: String,
        source: String,
        #[serde(default)]
        routing_key: String,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    ExchangeUnbind {
        destination: String,
        source: String,
        #[serde(default)]
        routing_key: String,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    QueueDeclare {
        /// Empty: the broker picks an `amq.gen-...` name.
        #[serde(default)]
        queue: String,
        #[serde(default, skip_serializing_if = "is_false")]
        passive: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        durable: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        exclusive: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        auto_delete: bool,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    QueueBind {
        queue: String,
        exchange: String,
        #[serde(default)]
        routing_key: String,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    QueueUnbind {
        queue: String,
        exchange: String,
        #[serde(default)]
        routing_key: String,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    QueuePurge {
        queue: String,
    },
    QueueDelete {
        queue: String,
        #[serde(default, skip_serializing_if = "is_false")]
        if_unused: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        if_empty: bool,
    },
    ConfirmSelect,
    BasicQos {
        #[serde(default)]
        prefetch_count: u16,
        #[serde(default, skip_serializing_if = "is_false")]
        global: bool,
    },
    /// basic.publish. The reply comes after any `return` and `confirm` events
    /// the publish caused.
    Publish {
        #[serde(default)]
        exchange: ShortString,
        #[serde(default)]
        routing_key: ShortString,
        #[serde(default)]
        body: Arc<str>,
        #[serde(default, skip_serializing_if = "is_false")]
        mandatory: bool,
        #[serde(default)]
        properties: SharedProperties,
    },
    /// basic.get
    Get {
        queue: String,
        #[serde(default, skip_serializing_if = "is_false")]
        no_ack: bool,
    },
    /// basic.consume. Deliveries arrive as [`Event::Deliver`].
    Consume {
        queue: String,
        consumer_tag: String,
        #[serde(default, skip_serializing_if = "is_false")]
        no_ack: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        exclusive: bool,
        #[serde(default, skip_serializing_if = "FieldTable::is_empty")]
        arguments: FieldTable,
    },
    /// basic.cancel
    Cancel {
        consumer_tag: String,
    },
    Ack {
        delivery_tag: DeliveryTag,
        #[serde(default, skip_serializing_if = "is_false")]
        multiple: bool,
    },
    Nack {
        delivery_tag: DeliveryTag,
        #[serde(default, skip_serializing_if = "is_false")]
        multiple: bool,
        #[serde(default = "default_true")]
        requeue: bool,
    },
    Reject {
        delivery_tag: DeliveryTag,
        #[serde(default = "default_true")]
        requeue: bool,
    },
    /// basic.recover: requeue every unacked message of the channel.
    Recover {
        #[serde(default = "default_true")]
        requeue: bool,
    },
    /// Stop and start the broker: durable exchanges/queues/bindings and persistent
    /// messages in durable queues survive, everything else is lost; all
    /// connections are closed, then connection 1 / channel 1 are open again.
    BrokerRestart,
}

impl Method {
    /// The names, keys and tags this method carries as AMQP short strings
    /// (at most 255 bytes on the wire); unused slots are empty.
    pub fn short_strings(&self) -> [&str; 3] {
        match self {
            Method::ExchangeDeclare { exchange, .. } | Method::ExchangeDelete { exchange, .. } => {
                [exchange, "", ""]
            }
            Method::ExchangeBind {
                destination,
                source,
                routing_key,
                ..
            }
            | Method::ExchangeUnbind {
                destination,
                source,
                routing_key,
                ..
            } => [destination, source, routing_key],
            Method::QueueDeclare { queue, .. }
            | Method::QueuePurge { queue }
            | Method::QueueDelete { queue, .. }
            | Method::Get { queue, .. } => [queue, "", ""],
            Method::QueueBind {
                queue,
                exchange,
                routing_key,
                ..
            }
            | Method::QueueUnbind {
                queue,
                exchange,
                routing_key,
                ..
            } => [queue, exchange, routing_key],
            Method::Publish {
                exchange,
                routing_key,
                ..
            } => [exchange, routing_key, ""],
            Method::Consume {
                queue,
                consumer_tag,
                ..
            } => [queue, consumer_tag, ""],
            Method::Cancel { consumer_tag } => [consumer_tag, "", ""],
            _ => ["", "", ""],
        }
    }

    /// The length of the first short string over 255 bytes, if any: RabbitMQ
    /// cannot even decode such a frame, and answers `502 SYNTAX_ERROR`.
    pub fn oversize_short_string(&self) -> Option<usize> {
        match self {
            // A publish's names know their lengths without reading the text.
            Method::Publish {
                exchange,
                routing_key,
                ..
            } => {
                return [exchange.len(), routing_key.len()]
                    .into_iter()
                    .find(|&len| len > 255)
            }
            Method::Ack { .. } | Method::Nack { .. } | Method::Reject { .. } => return None,
            _ => {}
        }
        self.short_strings()
            .iter()
            .map(|f| f.len())
            .find(|&len| len > 255)
    }

    /// The `op` name as it appears on the wire.
    pub fn op(&self) -> &'static str {
        match self {
            Method::ConnectionOpen => "connection_open",
            Method::ConnectionClose => "connection_close",
            Method::ChannelOpen => "channel_open",
            Method::ChannelClose => "channel_close",
            Method::ExchangeDeclare { .. } => "exchange_declare",
            Method::ExchangeDelete { .. } => "exchange_delete",
            Method::ExchangeBind { .. } => "exchange_bind",
            Method::ExchangeUnbind { .. } => "exchange_unbind",
            Method::QueueDeclare { .. } => "queue_declare",
            Method::QueueBind { .. } => "queue_bind",
            Method::QueueUnbind { .. } => "queue_unbind",
            Method::QueuePurge { .. } => "queue_purge",
            Method::QueueDelete { .. } => "queue_delete",
            Method::ConfirmSelect => "confirm_select",
            Method::BasicQos { .. } => "basic_qos",
            Method::Publish { .. } => "publish",
            Method::Get { .. } => "get",
            Method::Consume { .. } => "consume",
            Method::Cancel { .. } => "cancel",
            Method::Ack { .. } => "ack",
            Method::Nack { .. } => "nack",
            Method::Reject { .. } => "reject",
            Method::Recover { .. } => "recover",
            Method::BrokerRestart => "broker_restart",
        }
    }
}

/// Whether an error closed a channel or the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorScope {
    Channel,
    Connection,
}

/// An AMQP error (channel.close / connection.close from the broker), e.g.
/// `{"scope": "channel", "code": 404, "name": "NOT_FOUND", "text": "no queue 'q' in vhost '/'"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmqpError {
    pub scope: ErrorScope,
    pub code: u16,
    /// The reply-text up to the first `" - "`, e.g. `NOT_FOUND`.
    pub name: String,
    /// The details RabbitMQ gives after `" - "` (not compared by conformance).
    #[serde(default)]
    pub text: String,
}

/// The successful result of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Done, nothing to report.
    Ok,
    QueueDeclareOk {
        queue: String,
        message_count: u32,
        consumer_count: u32,
    },
    /// queue.purge-ok / queue.delete-ok
    MessageCount {
        message_count: u32,
    },
    /// basic.publish accepted. In confirm mode `seq` is the publish sequence number
    /// the [`Event::Confirm`] refers to.
    Published {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Broker-wide identity of the published message (for the UI).
        message_id: MessageId,
    },
    GetOk {
        delivery_tag: DeliveryTag,
        redelivered: bool,
        exchange: ShortString,
        routing_key: ShortString,
        /// Ready messages remaining after this one.
        message_count: u32,
        message: Message,
        message_id: MessageId,
    },
    GetEmpty,
    ConsumeOk {
        consumer_tag: String,
    },
}

/// Why a message left the broker (or never entered a queue), so the UI can answer
/// "why was it dropped?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Routed to no queue (after alternate exchanges), not mandatory.
    Unroutable,
    /// TTL ran out and the queue has no dead-letter exchange.
    Expired,
    /// Overflow `drop-head` pushed it out of a full queue.
    MaxLength,
    /// Overflow `reject-publish(-dlx)` refused it at the door.
    RejectedByQueue,
    /// A consumer rejected/nacked it without requeue and there is no DLX.
    Rejected,
    /// Its queue was purged or deleted.
    QueuePurged,
    QueueDeleted,
    /// Lost in a broker restart (transient message or non-durable queue).
    BrokerRestart,
    /// Dead-letter exchange missing or routed nowhere.
    DeadLetterUnroutable,
    /// A quorum queue got it back more often than its `x-delivery-limit`
    /// and has no dead-letter exchange.
    DeliveryLimit,
}

/// Why a message was dead-lettered (the `reason` of an x-death entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathReason {
    Rejected,
    Expired,
    Maxlen,
    /// Returned to a quorum queue more often than its `x-delivery-limit`.
    DeliveryLimit,
}

impl DeathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::Maxlen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// What a broker tells clients. Requests are answered by `Reply`; everything else
/// arrives on its own, as in AMQP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The answer to request `id`.
    Reply {
        id: u64,
        #[serde(flatten)]
        result: ReplyResult,
    },
    /// basic.deliver to a consumer.
    Deliver {
        connection: ConnectionId,
        channel: ChannelId,
        /// Short strings, copied rather than shared: a delivery then touches
        /// no reference count for them (see [`ShortString`]).
        consumer_tag: ShortString,
        delivery_tag: DeliveryTag,
        redelivered: bool,
        exchange: ShortString,
        routing_key: ShortString,
        message: Message,
        message_id: MessageId,
    },
    /// basic.return of a mandatory message that reached no queue.
    Return {
        connection: ConnectionId,
        channel: ChannelId,
        reply_code: u16,
        reply_text: String,
        exchange: ShortString,
        routing_key: ShortString,
        message: Message,
    },
    /// Publisher confirm (basic.ack / basic.nack from the broker).
    Confirm {
        connection: ConnectionId,
        channel: ChannelId,
        seq: u64,
        multiple: bool,
        ack: bool,
    },
    /// The broker cancelled a consumer (its queue was deleted).
    ConsumerCancelled {
        connection: ConnectionId,
        channel: ChannelId,
        consumer_tag: String,
    },
    /// The broker closed a channel (scope channel) or a connection (scope connection).
    Closed {
        connection: ConnectionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<ChannelId>,
        error: AmqpError,
    },
    /// Why something happened inside the broker (simulation; partially in real mode).
    Trace(Trace),
    /// Real mode: the state of the link to RabbitMQ as the bridge sees it.
    Status {
        broker: LinkState,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// A frame the server could not accept (malformed JSON, unknown op, oversize,
    /// rate limit...). The connection stays usable.
    ProtocolError {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        message: String,
    },
}

/// `{"ok": {...}}` or `{"error": {...}}` inside a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyResult {
    Ok(Outcome),
    Error(AmqpError),
}

/// The bridge's link to RabbitMQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Up,
    Down,
    Reconnecting,
}

/// Explanations: each routing and drop decision, with the rule that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trace", rename_all = "snake_case")]
pub enum Trace {
    /// The exchange matched a binding and sent the message on.
    Routed {
        message_id: MessageId,
        exchange: String,
        /// `queue` or `exchange` (exchange-to-exchange binding).
        destination_kind: DestinationKind,
        destination: String,
        /// The binding key (or header match) that matched, and why.
        binding_key: String,
        why: String,
    },
    /// Nothing matched at `exchange`; the message goes to its alternate exchange.
    ToAlternateExchange {
        message_id: MessageId,
        exchange: String,
        alternate: String,
    },
    /// The message is now in `queue` (ready).
    Enqueued {
        message_id: MessageId,
        queue: String,
    },
    /// A requeued message is back in `queue`, flagged redelivered.
    Requeued {
        message_id: MessageId,
        queue: String,
    },
    /// The message was acknowledged and is gone.
    Acked {
        message_id: MessageId,
        queue: String,
    },
    /// The message left `queue` for the dead-letter exchange.
    DeadLettered {
        message_id: MessageId,
        queue: String,
        reason: DeathReason,
        dead_letter_exchange: String,
        routing_key: String,
    },
    /// The message is gone, for `reason`.
    Dropped {
        message_id: MessageId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        reason: DropReason,
        why: String,
    },
}

impl Trace {
    /// The message the trace is about.
    pub fn message_id(&self) -> MessageId {
        match self {
            Trace::Routed { message_id, .. }
            | Trace::ToAlternateExchange { message_id, .. }
            | Trace::Enqueued { message_id, .. }
            | Trace::Requeued { message_id, .. }
            | Trace::Acked { message_id, .. }
            | Trace::DeadLettered { message_id, .. }
            | Trace::Dropped { message_id, .. } => *message_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    Queue,
    Exchange,
}

/// One event with the time it happened: virtual milliseconds in simulation,
/// milliseconds since the session started in real mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFrame {
    pub at_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_step_parses_as_request() {
        let step = r#"{"op": "queue_declare", "queue": "orders", "passive": true,
                       "expect": {"queue": "orders"}}"#;
        let req: Request = serde_json::from_str(step).expect("parses");
        assert_eq!(req.connection, 1);
        assert_eq!(req.channel, 1);
        assert!(
            matches!(req.method, Method::QueueDeclare { passive: true, ref queue, .. } if queue == "orders")
        );
    }

    #[test]
    fn nack_requeues_by_default() {
        let req: Request =
            serde_json::from_str(r#"{"id": 9, "op": "nack", "delivery_tag": 2}"#).expect("parses");
        assert_eq!(
            req.method,
            Method::Nack {
                delivery_tag: 2,
                multiple: false,
                requeue: true
            }
        );
    }

    #[test]
    fn unknown_op_is_an_error_not_a_panic() {
        let err = serde_json::from_str::<Request>(r#"{"id": 1, "op": "frobnicate"}"#).unwrap_err();
        assert!(err.to_string().contains("frobnicate"), "{err}");
    }

    #[test]
    fn reply_round_trips() {
        let frame = ServerFrame {
            at_ms: 12,
            event: Event::Reply {
                id: 3,
                result: ReplyResult::Ok(Outcome::QueueDeclareOk {
                    queue: "orders".into(),
                    message_count: 0,
                    consumer_count: 0,
                }),
            },
        };
        let json = serde_json::to_string(&frame).expect("serializes");
        assert_eq!(
            json,
            r#"{"at_ms":12,"event":"reply","id":3,"ok":{"kind":"queue_declare_ok","queue":"orders","message_count":0,"consumer_count":0}}"#
        );
        let back: ServerFrame = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, frame);
    }

    /// Shared strings and shared properties are a representation choice: on
    /// the wire they are the plain strings and objects they always were.
    #[test]
    fn shared_fields_keep_the_wire_format() {
        let publish = Request::new(
            4,
            Method::Publish {
                exchange: "x".into(),
                routing_key: "k".into(),
                body: "hello".into(),
                mandatory: false,
                properties: SharedProperties::default(),
            },
        );
        let json = serde_json::to_string(&publish).expect("serializes");
        assert_eq!(
            json,
            r#"{"id":4,"op":"publish","exchange":"x","routing_key":"k","body":"hello","properties":{}}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(&json).expect("parses"),
            publish
        );
        let frame = ServerFrame {
            at_ms: 1,
            event: Event::Deliver {
                connection: 1,
                channel: 1,
                consumer_tag: "c".into(),
                delivery_tag: 2,
                redelivered: false,
                exchange: "x".into(),
                routing_key: "k".into(),
                message: Message {
                    body: "hello".into(),
                    properties: Properties {
                        priority: Some(3),
                        ..Properties::default()
                    }
                    .into(),
                },
                message_id: 9,
            },
        };
        let json = serde_json::to_string(&frame).expect("serializes");
        assert_eq!(
            json,
            r#"{"at_ms":1,"event":"deliver","connection":1,"channel":1,"consumer_tag":"c","delivery_tag":2,"redelivered":false,"exchange":"x","routing_key":"k","message":{"body":"hello","properties":{"priority":3}},"message_id":9}"#
        );
        assert_eq!(
            serde_json::from_str::<ServerFrame>(&json).expect("parses"),
            frame
        );
    }

    #[test]
    fn exchange_types_known_and_unknown_round_trip() {
        for (json, kind) in [
            (
                r#"{"op":"exchange_declare","exchange":"x","type":"topic"}"#,
                ExchangeKind::Topic.into(),
            ),
            (
                r#"{"op":"exchange_declare","exchange":"x","type":"x-consistent-hash"}"#,
                ExchangeType::Unknown("x-consistent-hash".into()),
            ),
            (
                r#"{"op":"exchange_declare","exchange":"x","type":""}"#,
                ExchangeType::Unknown(String::new()),
            ),
        ] {
            let req: Request = serde_json::from_str(json).expect("parses");
            assert!(
                matches!(&req.method, Method::ExchangeDeclare { kind: k, .. } if *k == kind),
                "{json}"
            );
            let back = serde_json::to_string(&req).expect("serializes");
            assert_eq!(format!("{{\"id\":0,{}", &json[1..]), back);
        }
        let req: Request =
            serde_json::from_str(r#"{"op":"exchange_declare","exchange":"x"}"#).expect("parses");
        assert!(
            matches!(req.method, Method::ExchangeDeclare { kind, .. } if kind == ExchangeKind::Direct)
        );
    }

    #[test]
    fn shared_properties_copy_on_write() {
        let mut a = SharedProperties::default();
        let b = a.clone();
        a.priority = Some(1);
        assert_eq!(a.priority, Some(1));
        assert_eq!(b.priority, None);
        assert!(b.is_empty() && !a.is_empty());
    }

    #[test]
    fn error_reply_round_trips() {
        let frame = ServerFrame {
            at_ms: 0,
            event: Event::Reply {
                id: 1,
                result: ReplyResult::Error(AmqpError {
                    scope: ErrorScope::Channel,
                    code: 404,
                    name: "NOT_FOUND".into(),
                    text: "no queue 'q'".into(),
                }),
            },
        };
        let json = serde_json::to_string(&frame).expect("serializes");
        let back: ServerFrame = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, frame);
    }
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn trace_event_round_trips() {
        let frame = ServerFrame {
            at_ms: 5,
            event: Event::Trace(Trace::Dropped {
                message_id: 7,
                queue: None,
                reason: DropReason::Unroutable,
                why: "no binding of exchange 'orders' matches key 'x'".into(),
            }),
        };
        let json = serde_json::to_string(&frame).expect("serializes");
        assert!(
            json.contains(r#""event":"trace","trace":"dropped""#),
            "{json}"
        );
        let back: ServerFrame = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, frame);
    }
}
