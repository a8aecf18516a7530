//! The Build page in the time machine ([`crate::history`]): its inputs are
//! the user's actions and the link's frames (both [`WbAction`]s) and the
//! page's clock ticks.

use sim_core::protocol::Request;

use crate::history::{History, Replay};
use crate::workbench::{WbAction, Workbench};

/// The Build page's recording.
pub type BuildTime = History<Workbench>;

/// One input the live workbench took.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Act(WbAction),
    Tick {
        wall_ms: f64,
        paused: bool,
        speed: f64,
    },
}

impl Replay for Workbench {
    type Input = Input;

    fn feed(&mut self, input: &Input) -> (Vec<Request>, bool) {
        match input {
            Input::Act(a) => self.apply(a.clone()),
            Input::Tick {
                wall_ms,
                paused,
                speed,
            } => self.tick(*wall_ms, *paused, *speed),
        }
    }

    fn is_event(input: &Input) -> bool {
        matches!(input, Input::Act(WbAction::Frames { frames, .. }) if !frames.is_empty())
    }

    fn clock(&self) -> f64 {
        self.now
    }

    fn for_viewing(&mut self) {
        // What the live page had open (a form, a menu) is not the past's.
        self.form = None;
        self.menu = None;
    }
}

/// Whether anything is on its way (a step at the live end would wait for
/// ever otherwise).
pub fn busy(wb: &Workbench) -> bool {
    !wb.flights.is_empty() || !wb.work.is_empty() || !wb.running.is_empty()
}
