//! Connections and channels: the client-side state the broker keeps.
//!
//! Delivery tags are per channel and strictly increasing; the unacked list is
//! kept in tag order so the common in-order ack is a `pop_front` and
//! `multiple` acks are a prefix.

use std::collections::VecDeque;

use crate::message::QEntry;
use crate::protocol::{ChannelId, DeliveryTag};
use crate::small_map::SmallMap;

/// A delivery awaiting ack.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub tag: DeliveryTag,
    pub queue: u32,
    /// The consumer it went to; `None` for basic.get.
    pub consumer: Option<u32>,
    /// Settling it counts down the channel's limiter volume: a delivery to
    /// a consumer of a classic queue (RabbitMQ tells its limiter of acks by
    /// consumer tag, and basic.get and quorum deliveries carry none it counts).
    pub limited: bool,
    pub entry: QEntry,
}

#[derive(Debug, Clone, Default)]
pub struct Channel {
    pub next_tag: DeliveryTag,
    pub unacked: VecDeque<Unacked>,
    /// Publish sequence number of the next publish, once in confirm mode.
    pub confirm_seq: Option<u64>,
    /// Prefetch given to consumers created from now on.
    pub consumer_prefetch: u16,
    /// Channel-wide prefetch shared by all consumers (0 = unlimited).
    pub global_prefetch: u16,
    /// What RabbitMQ's channel limiter counts against the global prefetch
    /// (its "volume"): set to every unacked delivery when a global prefetch
    /// is switched on (basic.get's included), then one up per ack-mode
    /// delivery from a classic queue and one down per settled delivery to a
    /// classic queue's consumer; 0 while no global prefetch is on. So
    /// basic.get messages unacked at that moment hold their place until the
    /// prefetch is switched off (difftest s2034-p8135).
    pub limiter_volume: u32,
    pub consumers: Vec<u32>,
    /// Most recently declared queue (AMQP's empty-queue-name shortcut).
    pub last_queue: Option<String>,
}

impl Channel {
    pub fn new() -> Channel {
        Channel {
            next_tag: 1,
            ..Channel::default()
        }
    }

    pub fn global_has_room(&self) -> bool {
        self.global_prefetch == 0 || self.limiter_volume < u32::from(self.global_prefetch)
    }

    /// Takes a settled (or returned) delivery off the limiter volume, if it
    /// counted there.
    #[inline]
    pub fn forget_limited(&mut self, u: &Unacked) {
        if u.limited {
            self.limiter_volume = self.limiter_volume.saturating_sub(1);
        }
    }

    /// Moves the deliveries an ack/nack/reject names into `out`, in tag order;
    /// false if the tag is unknown (RabbitMQ: 406 "unknown delivery tag").
    pub fn take_acked(&mut self, tag: DeliveryTag, multiple: bool, out: &mut Vec<Unacked>) -> bool {
        if multiple && tag == 0 {
            out.extend(self.unacked.drain(..));
            return true;
        }
        // The common case: acking the oldest delivery.
        if !multiple && self.unacked.front().is_some_and(|u| u.tag == tag) {
            out.extend(self.unacked.pop_front());
            return true;
        }
        let Ok(idx) = self.unacked.binary_search_by_key(&tag, |u| u.tag) else {
            return false;
        };
        if multiple {
            out.extend(self.unacked.drain(..=idx));
        } else if let Some(u) = self.unacked.remove(idx) {
            out.push(u);
        }
        true
    }
}

#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub channels: SmallMap<ChannelId, Channel>,
}
