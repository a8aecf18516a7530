//! The page's handling of a burst of publishes, natively: what `cargo xtask
//! bench`'s frame probe does in the browser (n clicks on Publish at once, then
//! the frames they cause, then 2 s of animation ticks), minus the drawing.
//!
//! ```sh
//! cargo bench -p web --bench burst -- 5000
//! ```
//!
//! It drives the model the way the page's shell does (`app.rs`): one reducer
//! step per click and per frame, each on a copy of the model, the requests
//! sent to the in-page simulation and recorded by the timeline. Prints one
//! JSON object: the wall time of each phase.

use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use sim_core::protocol::Request;
use web::model::{Action, LinkEvent, Mode, Model};
use web::scene::DIRECT;
use web::sim::SimBroker;
use web::timeline::TimeMachine;

/// The shell's state: the model as the reducer keeps it, the link, the timeline.
struct Shell {
    model: Rc<Model>,
    broker: SimBroker,
    time: TimeMachine,
    virtual_ms: u64,
}

impl Shell {
    fn new() -> Shell {
        Shell {
            model: Rc::new(Model::new(Mode::Sim, 1, &DIRECT)),
            broker: SimBroker::new(1),
            time: TimeMachine::new(1, &DIRECT, true),
            virtual_ms: 0,
        }
    }

    /// One reducer step, as `AppState::reduce` does it for the live scene.
    fn dispatch(&mut self, action: Action) {
        if matches!(action, Action::Tick { .. }) && self.model.tokens.is_empty() {
            return;
        }
        let mut model = (*self.model).clone();
        let (out, changed) = model.apply(action);
        let sent = !out.is_empty();
        self.send(&model, out);
        if changed || sent {
            self.model = Rc::new(model);
        }
    }

    fn send(&mut self, model: &Model, out: Vec<Request>) {
        for req in out {
            self.broker.advance_to(self.virtual_ms);
            let at = self.broker.now_ms();
            self.broker.request(req.clone());
            self.time.record(Some(at), model.frames, &req);
        }
    }

    /// The link's drain: every pending frame, one batch, applied in one
    /// reducer step (`AppState::apply_frames`).
    fn drain(&mut self) -> usize {
        let frames: Vec<_> = std::iter::from_fn(|| self.broker.poll()).collect();
        let n = frames.len();
        if n == 0 {
            return 0;
        }
        let mut model = (*self.model).clone();
        let mut redraw = false;
        for frame in frames {
            let (out, changed) = model.apply(Action::Frame {
                generation: 1,
                frame,
            });
            redraw |= changed || !out.is_empty();
            self.send(&model, out);
        }
        if redraw {
            self.model = Rc::new(model);
        }
        n
    }
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|s| s.parse().expect("a number of publishes"))
        .unwrap_or(5000);
    let mut shell = Shell::new();
    shell.dispatch(Action::Link {
        generation: 1,
        event: LinkEvent::Open,
    });
    shell.drain();
    assert!(shell.model.ready, "the scene was not declared");

    let t = Instant::now();
    for _ in 0..n {
        shell.dispatch(Action::Publish);
    }
    let clicks_ms = t.elapsed().as_secs_f64() * 1e3;

    let t = Instant::now();
    let frames = shell.drain();
    let drain_ms = t.elapsed().as_secs_f64() * 1e3;

    // 2 s of the page's 16 ms ticks, the simulation's clock following.
    let t = Instant::now();
    let mut tick_frames = 0;
    for i in 1..=125u64 {
        shell.virtual_ms = i * 16;
        shell.broker.advance_to(shell.virtual_ms);
        tick_frames += shell.drain();
        shell.dispatch(Action::Tick {
            now_ms: (i * 16) as f64,
        });
    }
    let ticks_ms = t.elapsed().as_secs_f64() * 1e3;
    black_box(&shell.model);
    println!(
        "{{\"publishes\":{n},\"clicks_ms\":{clicks_ms:.1},\"frames\":{frames},\"drain_ms\":{drain_ms:.1},\
         \"tick_frames\":{tick_frames},\"ticks_ms\":{ticks_ms:.1},\"tokens\":{},\"received\":{}}}",
        shell.model.tokens.len(),
        shell.model.received
    );
}
