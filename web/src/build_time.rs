//! The Build page's time machine: step one event, scrub back, play the past
//! again. Pure (no browser API), tested natively.
//!
//! Why record the page's inputs and not the broker's commands (as the main
//! scene's [`crate::timeline`] does): the Build page is a client whose state
//! also follows the user (forms saved, producers started, nodes dragged) and
//! its own animation clock. [`Workbench`] is a pure state machine over three
//! kinds of input (a [`WbAction`], a link's frames, which arrive as a
//! `WbAction` too, and a clock tick), so the log of those inputs, replayed
//! into the workbench as it was opened, gives back every past state exactly,
//! without the broker. What the replay would send is dropped: the past is
//! shown, never re-run against the broker.
//!
//! An *event* is one batch of frames the page received (a broker reply, a
//! delivery, the routing of a publish...). Position `n` shows the page just
//! after event `n`; position 0 shows it as it was opened.
//!
//! Seeking back replays from the nearest checkpoint (a copy of the workbench
//! kept every so many inputs; at most [`MAX_CHECKPOINTS`], thinned by doubling
//! their spacing), so a long session seeks in bounded time and memory.
//!
//! Real mode records nothing: RabbitMQ runs on its own clock.

use sim_core::protocol::Request;

use crate::workbench::{WbAction, Workbench};

/// Inputs recorded at most (the page ticks once per drawn frame: over two
/// hours at 60 fps); past it the timeline stops recording and says why.
pub const MAX_INPUTS: usize = 500_000;
/// Copies of the workbench kept for seeking back.
pub const MAX_CHECKPOINTS: usize = 32;
/// Inputs between checkpoints at first (closer in the tests, so that their
/// short sessions seek from checkpoints too).
const FIRST_SPACING: usize = if cfg!(test) { 64 } else { 500 };

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

impl Input {
    /// Feeds the input to `wb` (what the live page did with it).
    pub fn apply(&self, wb: &mut Workbench) -> (Vec<Request>, bool) {
        match self {
            Input::Act(a) => wb.apply(a.clone()),
            Input::Tick {
                wall_ms,
                paused,
                speed,
            } => wb.tick(*wall_ms, *paused, *speed),
        }
    }

    /// Whether it brings the page an event (a non-empty batch of frames).
    fn is_event(&self) -> bool {
        matches!(self, Input::Act(WbAction::Frames { frames, .. }) if !frames.is_empty())
    }
}

/// Why the timeline cannot be used (the page shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Real mode: a live broker cannot be stepped or rewound.
    Real,
    /// The recording reached [`MAX_INPUTS`].
    Full,
}

/// The past being shown.
#[derive(Clone, Debug)]
struct Past {
    /// The event shown.
    pos: u32,
    /// The replay: the workbench after `applied` inputs.
    applied: usize,
    wb: Workbench,
    /// Playing the past: (the page's wall ms at the last play tick, the
    /// animation ms the replay has reached).
    playing: Option<(f64, f64)>,
}

/// The recording of one open Build page, and what of it is shown.
#[derive(Clone, Debug)]
pub struct BuildTime {
    /// The workbench as it was opened (`None`: nothing is recorded).
    start: Option<Workbench>,
    inputs: Vec<Input>,
    /// `events[k]`: inputs applied once event `k + 1` has arrived.
    events: Vec<usize>,
    /// The live page's animation clock (ms, stopped while paused) after
    /// each input: playing the past follows it, so a pause is skipped.
    clock: Vec<f64>,
    checkpoints: Vec<(usize, Workbench)>,
    spacing: usize,
    full: bool,
    past: Option<Past>,
    /// Step at the live end: pause once this many events have arrived.
    pub step_to: Option<u32>,
}

impl BuildTime {
    /// A recording of `wb` from now on (`enabled: false` in real mode).
    pub fn new(wb: &Workbench, enabled: bool) -> BuildTime {
        BuildTime {
            start: enabled.then(|| wb.clone()),
            inputs: Vec::new(),
            events: Vec::new(),
            clock: Vec::new(),
            checkpoints: Vec::new(),
            spacing: FIRST_SPACING,
            full: false,
            past: None,
            step_to: None,
        }
    }

    /// Whether anything is on its way (a step at the live end would wait
    /// for ever otherwise).
    pub fn busy(wb: &Workbench) -> bool {
        !wb.flights.is_empty() || !wb.work.is_empty() || !wb.running.is_empty()
    }

    /// Whether stepping and scrubbing work, and if not, why.
    pub fn available(&self) -> Result<(), Unavailable> {
        if self.start.is_none() {
            Err(Unavailable::Real)
        } else if self.full {
            Err(Unavailable::Full)
        } else {
            Ok(())
        }
    }

    /// Events recorded.
    pub fn total(&self) -> u32 {
        self.events.len() as u32
    }

    /// The event shown (the total while live).
    pub fn position(&self) -> u32 {
        self.past.as_ref().map_or(self.total(), |p| p.pos)
    }

    pub fn in_past(&self) -> bool {
        self.past.is_some()
    }

    /// Whether the past is playing.
    pub fn playing(&self) -> bool {
        self.past.as_ref().is_some_and(|p| p.playing.is_some())
    }

    /// The past workbench shown (`None`: the live one is).
    pub fn shown(&self) -> Option<&Workbench> {
        self.past.as_ref().map(|p| &p.wb)
    }

    /// The past workbench shown, to select something in it (not recorded:
    /// looking at the past does not change it).
    pub fn shown_mut(&mut self) -> Option<&mut Workbench> {
        self.past.as_mut().map(|p| &mut p.wb)
    }

    /// Records `input`, which the live workbench has just taken and is now
    /// `live`. Returns whether an event arrived with it.
    pub fn record(&mut self, input: Input, live: &Workbench) -> bool {
        if self.start.is_none() || self.full {
            return false;
        }
        if self.inputs.len() >= MAX_INPUTS {
            // The recording ends here; what is shown of the past goes too.
            self.full = true;
            self.past = None;
            self.inputs = Vec::new();
            self.events = Vec::new();
            self.clock = Vec::new();
            self.checkpoints = Vec::new();
            return false;
        }
        let event = input.is_event();
        self.inputs.push(input);
        self.clock.push(live.now);
        let n = self.inputs.len();
        if n.is_multiple_of(self.spacing) {
            self.checkpoints.push((n, live.clone()));
            if self.checkpoints.len() > MAX_CHECKPOINTS {
                // Keep every other one: twice the spacing, half the copies.
                self.spacing *= 2;
                let spacing = self.spacing;
                self.checkpoints
                    .retain(|(at, _)| at.is_multiple_of(spacing));
            }
        }
        if event {
            self.events.push(n);
        }
        event
    }

    /// Inputs applied to show position `pos`.
    fn inputs_at(&self, pos: u32) -> usize {
        match pos {
            0 => 0,
            p => self.events[(p as usize - 1).min(self.events.len() - 1)],
        }
    }

    /// Shows the page just after event `n` (at or past the total: live
    /// again). Returns the position shown.
    pub fn seek(&mut self, n: u32) -> u32 {
        let total = self.total();
        let Some(start) = self.start.as_ref() else {
            return total;
        };
        if n >= total || self.full {
            self.past = None;
            return total;
        }
        let target = self.inputs_at(n);
        let reuse = self.past.take().filter(|p| p.applied <= target);
        let (mut applied, mut wb) = match reuse {
            Some(p) => (p.applied, p.wb),
            None => match self.checkpoints.iter().rev().find(|(at, _)| *at <= target) {
                Some((at, wb)) => (*at, wb.clone()),
                None => (0, start.clone()),
            },
        };
        while applied < target {
            self.inputs[applied].apply(&mut wb);
            applied += 1;
        }
        // What the live page had open (a form, a menu) is not the past's.
        wb.form = None;
        wb.menu = None;
        self.past = Some(Past {
            pos: n,
            applied,
            wb,
            playing: None,
        });
        n
    }

    /// Plays the past from where it is shown (`now_wall`: the page's clock).
    pub fn play(&mut self, now_wall: f64) {
        if let Some(p) = self.past.as_mut() {
            p.playing = Some((now_wall, p.wb.now));
        }
    }

    /// Stops playing the past (it stays shown).
    pub fn hold(&mut self) {
        if let Some(p) = self.past.as_mut() {
            p.playing = None;
        }
    }

    /// While the past plays: feeds it the inputs the recorded animation
    /// clock has reached, `speed` times the wall time since the last call.
    /// Returns whether the picture changed; at the end of the recording the
    /// page is live again (see [`BuildTime::in_past`]).
    pub fn play_tick(&mut self, now_wall: f64, speed: f64) -> bool {
        let Some(p) = self.past.as_mut() else {
            return false;
        };
        let Some((last, reached)) = p.playing else {
            return false;
        };
        let until = reached + (now_wall - last).clamp(0.0, 100.0) * speed;
        p.playing = Some((now_wall, until));
        let mut changed = false;
        while p.applied < self.inputs.len() && self.clock[p.applied] <= until {
            let input = &self.inputs[p.applied];
            if input.is_event() {
                p.pos += 1;
            }
            changed |= input.apply(&mut p.wb).1;
            p.applied += 1;
        }
        if p.applied >= self.inputs.len() {
            self.past = None;
            return true;
        }
        p.wb.form = None;
        p.wb.menu = None;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor;

    fn ticks(time: &mut BuildTime, wb: &mut Workbench, walls: &[f64]) -> u32 {
        let mut events = 0;
        for &w in walls {
            let input = Input::Tick {
                wall_ms: w,
                paused: false,
                speed: 1.0,
            };
            input.apply(wb);
            events += time.record(input, wb) as u32;
        }
        events
    }

    #[test]
    fn real_mode_records_nothing_and_says_why() {
        let mut wb = Workbench::new(editor::empty(), true, 0);
        let mut time = BuildTime::new(&wb, false);
        assert_eq!(ticks(&mut time, &mut wb, &[1.0, 2.0]), 0);
        assert_eq!(time.available(), Err(Unavailable::Real));
        assert_eq!(time.seek(0), 0);
        assert!(!time.in_past());
    }

    #[test]
    fn ticks_are_not_events_and_seeking_to_the_end_is_live() {
        let mut wb = Workbench::new(editor::empty(), false, 0);
        let mut time = BuildTime::new(&wb, true);
        assert_eq!(ticks(&mut time, &mut wb, &[1.0, 17.0, 33.0]), 0);
        assert_eq!(time.total(), 0);
        assert_eq!(time.seek(5), 0);
        assert!(!time.in_past());
        assert_eq!(time.available(), Ok(()));
    }

    #[test]
    fn checkpoints_stay_bounded_as_the_recording_grows() {
        let mut wb = Workbench::new(editor::empty(), false, 0);
        let mut time = BuildTime::new(&wb, true);
        let walls: Vec<f64> = (0..40_000).map(|i| i as f64).collect();
        ticks(&mut time, &mut wb, &walls);
        assert!(time.checkpoints.len() <= MAX_CHECKPOINTS);
        assert!(time.spacing > FIRST_SPACING);
        assert!(time
            .checkpoints
            .iter()
            .all(|(at, _)| at.is_multiple_of(time.spacing)));
    }
}
