//! The queue of events waiting for [`crate::Broker::poll_event`].
//!
//! Frames are queued as they are: a delivery in a [`ServerFrame`] points at
//! the queued message's shared body and properties and carries copies of its
//! short names, so queueing one copies no message content. The ring buffer
//! keeps its capacity, so a steady stream of requests and polls allocates
//! nothing here.

use std::collections::VecDeque;

use crate::protocol::{Event, ServerFrame};

#[derive(Default, Clone)]
pub struct Outbox {
    queue: VecDeque<ServerFrame>,
}

impl Outbox {
    #[inline]
    pub fn frame(&mut self, at_ms: u64, event: Event) {
        self.queue.push_back(ServerFrame { at_ms, event });
    }

    #[inline]
    pub fn pop(&mut self) -> Option<ServerFrame> {
        self.queue.pop_front()
    }
}
