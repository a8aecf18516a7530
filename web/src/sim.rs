//! The simulated broker as the page's `SimLink` drives it: `sim_core::Broker`
//! with tracing on, starting the way a bridge session starts (connection 1 with
//! channel 1 open), so the page sends the same requests in both modes.
//! Pure (no browser API): the timeline replays runs with it natively too.

use sim_core::protocol::{Method, Request, ServerFrame};
use sim_core::Broker;

pub struct SimBroker {
    broker: Broker,
}

impl SimBroker {
    pub fn new(seed: u64) -> Self {
        let mut broker = Broker::new(seed);
        broker.set_tracing(true);
        // The bridge opens connection 1 / channel 1 when a session starts; so do we.
        broker.handle_request(Request::new(0, Method::ConnectionOpen));
        while broker.poll_event().is_some() {}
        SimBroker { broker }
    }

    /// Moves the virtual clock to `now_ms` (never backwards), firing what is due.
    pub fn advance_to(&mut self, now_ms: u64) {
        if now_ms > self.broker.now_ms() {
            self.broker.handle_timeout(now_ms);
        }
    }

    /// The broker's virtual clock, ms.
    pub fn now_ms(&self) -> u64 {
        self.broker.now_ms()
    }

    pub fn request(&mut self, req: Request) {
        self.broker.handle_request(req);
    }

    pub fn poll(&mut self) -> Option<ServerFrame> {
        self.broker.poll_event()
    }
}
