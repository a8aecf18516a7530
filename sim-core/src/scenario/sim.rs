//! Playing a scenario against the simulated broker on its virtual clock.

use super::format::Scenario;
use super::report::Report;
use super::run::ScenarioRun;
use crate::Broker;

/// Upper bound on driver iterations, so a misbehaving scenario cannot hang.
const MAX_STEPS: usize = 5_000_000;

/// Plays `sc` to the end against a fresh [`Broker`] seeded with `sc.seed`, on
/// the virtual clock (instantly), and returns the report.
pub fn run_simulated(sc: &Scenario) -> Report {
    let mut broker = Broker::new(sc.seed);
    let mut run = ScenarioRun::new(sc.clone());
    drive(&mut broker, &mut run);
    run.report()
}

/// Drives `run` against `broker` on the virtual clock until the run is done
/// (notes are left in the run, at most the last 10000).
pub fn drive(broker: &mut Broker, run: &mut ScenarioRun) {
    run.handle_timeout(broker.now_ms());
    for _ in 0..MAX_STEPS {
        while let Some(req) = run.poll_request() {
            broker.handle_request(req);
            while let Some(frame) = broker.poll_event() {
                run.handle_frame(&frame);
            }
        }
        if run.is_done() {
            return;
        }
        let now = broker.now_ms();
        let next = match (run.poll_timeout(), broker.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return,
        };
        let next = next.max(now);
        broker.handle_timeout(next);
        while let Some(frame) = broker.poll_event() {
            run.handle_frame(&frame);
        }
        run.handle_timeout(next);
    }
}
