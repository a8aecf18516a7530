//! Decoding and applying protocol requests: arbitrary bytes are split into
//! lines; a line `w<digits>` advances the virtual clock, any other line is
//! decoded as a JSON `Request` (most fail, which must be a clean `Err`) and
//! handed to the broker. Invariants: no panic; every request gets exactly one
//! reply, last, with its id; the clock only moves forward; every frame
//! serializes and decodes back to itself (what the page and bridge rely on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim_core::protocol::{Event, Request, ServerFrame};
use sim_core::Broker;

fuzz_target!(|data: &[u8]| {
    let (seed, rest) = match data.split_first() {
        Some((s, rest)) => (u64::from(*s), rest),
        None => (0, data),
    };
    let mut b = Broker::new(seed);
    b.set_tracing(seed % 2 == 0);
    for (i, line) in rest.split(|c| *c == b'\n').take(256).enumerate() {
        if let Some(ms) = line.strip_prefix(b"w") {
            let ms: u64 = std::str::from_utf8(ms)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
                .min(1_000_000);
            let before = b.now_ms();
            let t = before.saturating_add(ms);
            b.handle_timeout(t);
            assert!(b.now_ms() >= before, "time went backwards");
            drain(&mut b, None);
            continue;
        }
        let Ok(mut req) = serde_json::from_slice::<Request>(line) else {
            continue;
        };
        req.id = i as u64 + 1;
        let id = req.id;
        b.handle_request(req);
        drain(&mut b, Some(id));
        let _ = b.poll_timeout();
    }
    let _ = b.view();
});

fn drain(b: &mut Broker, id: Option<u64>) {
    let frames: Vec<ServerFrame> = std::iter::from_fn(|| b.poll_event()).collect();
    for f in &frames {
        let text = serde_json::to_string(f).expect("frames serialize");
        let back: ServerFrame = serde_json::from_str(&text).expect("frames decode");
        assert_eq!(&back, f, "frame round trip");
    }
    let replies: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.event, Event::Reply { .. }))
        .map(|(i, _)| i)
        .collect();
    match id {
        Some(id) => {
            assert_eq!(replies.len(), 1, "exactly one reply");
            assert_eq!(replies[0], frames.len() - 1, "the reply comes last");
            assert!(
                matches!(frames[replies[0]].event, Event::Reply { id: rid, .. } if rid == id),
                "the reply answers the request"
            );
        }
        None => assert!(replies.is_empty(), "timers cause no replies"),
    }
}
