//! The Build page in the time machine ([`crate::history`]): its inputs are
//! the user's actions and the link's frames (both [`WbAction`]s) and the
//! page's clock ticks.

use sim_core::protocol::Request;

use crate::history::{History, Replay};
use crate::workbench::{Sel, WbAction, Workbench};

/// The Build page's recording.
pub type BuildTime = History<Workbench>;

/// One input the live workbench took (the action boxed: a recording holds
/// mostly ticks, which stay small).
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Act(Box<WbAction>),
    Tick {
        wall_ms: f64,
        paused: bool,
        speed: f64,
    },
}

// A long session records hundreds of thousands of inputs.
const _: () = assert!(std::mem::size_of::<Input>() <= 32);

impl Input {
    pub fn act(a: WbAction) -> Input {
        Input::Act(Box::new(a))
    }
}

impl Replay for Workbench {
    type Input = Input;

    fn feed(&mut self, input: &Input) -> (Vec<Request>, bool) {
        match input {
            Input::Act(a) => self.apply(WbAction::clone(a)),
            Input::Tick {
                wall_ms,
                paused,
                speed,
            } => self.tick(*wall_ms, *paused, *speed),
        }
    }

    fn is_event(input: &Input) -> bool {
        matches!(input, Input::Act(a) if matches!(&**a, WbAction::Frames { frames, .. } if !frames.is_empty()))
    }

    fn clock(&self) -> f64 {
        self.now
    }

    fn for_viewing(&mut self) {
        // What the live page had open (a form, a menu) is not the past's.
        self.form = None;
        self.menu = None;
    }

    fn keep_view(&mut self, from: &Self) {
        self.selected = from.selected.clone();
    }

    fn merges(prev: &Input, next: &Input) -> bool {
        // A paused tick right after a paused tick only moves the wall clock
        // the next tick measures from (`last_wall`): the later one says it all.
        matches!(
            (prev, next),
            (
                Input::Tick { paused: true, .. },
                Input::Tick { paused: true, .. }
            )
        )
    }
}

/// What a user's action does while the past is shown.
#[derive(Clone, Debug, PartialEq)]
pub enum InPast {
    /// It only looks: select this in the past (the broker is not asked).
    Look(Option<Sel>),
    /// Nothing (moving the pointer moves nothing in the past).
    Ignore,
    /// It changes the present: the page goes live first.
    GoLive,
}

/// What `a` does while the past is shown.
pub fn in_past(a: &WbAction) -> InPast {
    match a {
        WbAction::Select(sel) => InPast::Look(sel.clone()),
        // A press on a node selects it, as a click does live.
        WbAction::DragStart { node, .. } => InPast::Look(Some(Sel::Node(node.clone()))),
        WbAction::DragMove { .. } | WbAction::DragEnd | WbAction::Refresh => InPast::Ignore,
        _ => InPast::GoLive,
    }
}

/// Whether anything is on its way (a step at the live end would wait for
/// ever otherwise): messages moving or being worked on, producers running,
/// replies awaited.
pub fn busy(wb: &Workbench) -> bool {
    !wb.flights.is_empty() || !wb.work.is_empty() || !wb.running.is_empty() || wb.awaiting()
}
