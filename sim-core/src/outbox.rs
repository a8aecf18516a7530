//! The queue of events waiting for [`crate::Broker::poll_event`].
//!
//! Protocol events are large (a `Deliver` carries a whole `Message` with its
//! properties, several hundred bytes). The hot ones — deliveries and the
//! replies to publishes and acks — are queued in a compact form that points at
//! the shared message, and only turned into a [`ServerFrame`] when polled, so
//! the broker's own work per message moves a few dozen bytes, not a frame.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::message::Msg;
use crate::protocol::{
    ChannelId, ConnectionId, DeliveryTag, Event, MessageId, Outcome, ReplyResult, ServerFrame,
};

#[derive(Clone)]
pub enum Pending {
    Frame(Box<ServerFrame>),
    Deliver {
        at_ms: u64,
        connection: ConnectionId,
        channel: ChannelId,
        consumer_tag: Arc<str>,
        delivery_tag: DeliveryTag,
        redelivered: bool,
        msg: Arc<Msg>,
    },
    ReplyOk {
        at_ms: u64,
        id: u64,
    },
    Published {
        at_ms: u64,
        id: u64,
        seq: Option<u64>,
        message_id: MessageId,
    },
}

impl Pending {
    fn into_frame(self) -> ServerFrame {
        match self {
            Pending::Frame(f) => *f,
            Pending::Deliver {
                at_ms,
                connection,
                channel,
                consumer_tag,
                delivery_tag,
                redelivered,
                msg,
            } => ServerFrame {
                at_ms,
                event: Event::Deliver {
                    connection,
                    channel,
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange: msg.exchange.clone(),
                    routing_key: msg.routing_key.clone(),
                    message: msg.to_message(),
                    message_id: msg.id,
                },
            },
            Pending::ReplyOk { at_ms, id } => ServerFrame {
                at_ms,
                event: Event::Reply {
                    id,
                    result: ReplyResult::Ok(Outcome::Ok),
                },
            },
            Pending::Published {
                at_ms,
                id,
                seq,
                message_id,
            } => ServerFrame {
                at_ms,
                event: Event::Reply {
                    id,
                    result: ReplyResult::Ok(Outcome::Published { seq, message_id }),
                },
            },
        }
    }
}

#[derive(Default, Clone)]
pub struct Outbox {
    queue: VecDeque<Pending>,
}

impl Outbox {
    pub fn push(&mut self, p: Pending) {
        self.queue.push_back(p);
    }

    pub fn frame(&mut self, at_ms: u64, event: Event) {
        self.queue
            .push_back(Pending::Frame(Box::new(ServerFrame { at_ms, event })));
    }

    pub fn reply(&mut self, at_ms: u64, id: u64, result: ReplyResult) {
        let p = match result {
            ReplyResult::Ok(Outcome::Ok) => Pending::ReplyOk { at_ms, id },
            ReplyResult::Ok(Outcome::Published { seq, message_id }) => Pending::Published {
                at_ms,
                id,
                seq,
                message_id,
            },
            result => Pending::Frame(Box::new(ServerFrame {
                at_ms,
                event: Event::Reply { id, result },
            })),
        };
        self.queue.push_back(p);
    }

    pub fn pop(&mut self) -> Option<ServerFrame> {
        self.queue.pop_front().map(Pending::into_frame)
    }
}
