//! What the Build page's timeline costs over a long session, natively: a
//! topic exchange, two queues, a producer at 20 messages a second and a
//! consumer taking 40 ms each, driven for MINUTES of page time at 60 ticks a
//! second against the in-page simulation, every input recorded as the page
//! records it (`web::history`).
//!
//! ```sh
//! cargo bench -p web --bench history -- 10
//! ```
//!
//! Prints one JSON object: events recorded, messages published and still
//! queued at the end, the run's wall time and the part recording added, and
//! what a seek costs (from a checkpoint, as the slider does it) at 25
//! positions spread over the run.

use std::time::Instant;

use sim_core::protocol::Request;
use web::build_time::{BuildTime, Input};
use web::editor::Kind;
use web::history::Replay;
use web::model::LinkEvent;
use web::sim::SimBroker;
use web::workbench::{WbAction, Workbench};

struct Page {
    wb: Workbench,
    time: BuildTime,
    broker: SimBroker,
    record_s: f64,
}

impl Page {
    /// What the page does with one input: feed it, record it, send what it asks.
    fn input(&mut self, input: Input) {
        let (out, _) = self.wb.feed(&input);
        let t = Instant::now();
        self.time.record(input, &self.wb);
        self.record_s += t.elapsed().as_secs_f64();
        self.send(out);
    }

    fn send(&mut self, mut out: Vec<Request>) {
        while !out.is_empty() {
            for req in out.drain(..) {
                self.broker.request(req);
            }
            let frames: Vec<_> = std::iter::from_fn(|| self.broker.poll()).collect();
            if frames.is_empty() {
                return;
            }
            let (more, _) = self.wb.feed(&Input::act(WbAction::Frames {
                generation: 0,
                frames: frames.clone(),
            }));
            let t = Instant::now();
            self.time.record(
                Input::act(WbAction::Frames {
                    generation: 0,
                    frames,
                }),
                &self.wb,
            );
            self.record_s += t.elapsed().as_secs_f64();
            out = more;
        }
    }

    fn form(&mut self, kind: Kind, fields: &[(&str, &str)]) {
        self.input(Input::act(WbAction::NewForm(kind)));
        for (k, v) in fields {
            self.input(Input::act(WbAction::Field(k.to_string(), v.to_string())));
        }
        self.input(Input::act(WbAction::Save));
    }
}

fn main() {
    let minutes: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10.0);
    let wb = Workbench::new(web::editor::empty(), false, 0);
    let time = BuildTime::new(&wb, true);
    let mut page = Page {
        wb,
        time,
        broker: SimBroker::new(1),
        record_s: 0.0,
    };
    let started = Instant::now();
    page.input(Input::act(WbAction::Link {
        generation: 0,
        event: LinkEvent::Open,
    }));
    page.form(Kind::Exchange, &[("name", "orders"), ("type", "topic")]);
    page.form(Kind::Queue, &[("name", "orders.new")]);
    page.form(Kind::Queue, &[("name", "orders.other")]);
    page.form(
        Kind::Binding,
        &[
            ("source", "orders"),
            ("dest", "orders.new"),
            ("key", "order.*"),
        ],
    );
    page.form(
        Kind::Producer,
        &[
            ("name", "shop"),
            ("exchange", "orders"),
            ("key", "order.new"),
            ("rate", "20"),
        ],
    );
    page.form(
        Kind::Consumer,
        &[
            ("name", "worker"),
            ("queue", "orders.new"),
            ("work_ms", "40"),
        ],
    );
    page.input(Input::act(WbAction::Run("shop".into(), true)));
    let ticks = (minutes * 60.0 * 60.0) as u64;
    for i in 1..=ticks {
        let wall = i as f64 * 1000.0 / 60.0;
        page.input(Input::Tick {
            wall_ms: wall,
            paused: false,
            speed: 1.0,
        });
        page.broker.advance_to(page.wb.now as u64);
        page.send(Vec::new());
    }
    let run_s = started.elapsed().as_secs_f64();
    // The consumer works one message at a time, each drawn along its edge:
    // the queue grows for the whole run, as it would on the page.
    let queued = page.wb.ready_count("orders.new");
    let total = page.time.total();
    let mut seeks = Vec::new();
    for k in (0..25u32).rev() {
        let n = total / 25 * k + total / 50;
        let t = Instant::now();
        page.time.seek(n);
        seeks.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut sorted = seeks.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"minutes\": {minutes}, \"events\": {total}, \"published\": {}, \"queued_at_end\": {queued}, \"run_s\": {run_s:.2}, \"record_s\": {:.3}, \"seek_ms_median\": {:.2}, \"seek_ms_max\": {:.2}}}",
        page.wb.totals.published,
        page.record_s,
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
    );
}
