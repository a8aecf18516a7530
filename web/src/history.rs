//! The time machine of the Build page and of lessons: step one event, scrub
//! back, play the past again. Pure (no browser API), tested natively.
//!
//! Why record the page's inputs and not the broker's commands (as the main
//! scene's [`crate::timeline`] does): the Build page and a lesson are clients
//! whose state also follows the user (forms saved, answers given) and a clock
//! of their own. Each is a pure state machine over its inputs (a user's
//! action, a link's frames, a clock tick: see [`Replay`]), so the log of those
//! inputs, replayed into the state as it was opened, gives back every past
//! state exactly, without the broker. What the replay would send is dropped:
//! the past is shown, never re-run against the broker.
//!
//! An *event* is one batch of frames the page received (a broker reply, a
//! delivery, the routing of a publish...). Position `n` shows the page just
//! after event `n`; position 0 shows it as it was opened.
//!
//! Seeking back replays from the nearest checkpoint (a copy of the state
//! kept every so many inputs; at most [`MAX_CHECKPOINTS`], thinned by
//! doubling their spacing), so a long session seeks in bounded time and memory.
//!
//! Real mode records nothing: RabbitMQ runs on its own clock.

use sim_core::protocol::Request;

use crate::timeline::TimeAction;

/// Inputs recorded at most (the page ticks once per drawn frame: over two
/// hours at 60 fps); past it the timeline stops recording and says why.
pub const MAX_INPUTS: usize = 500_000;
/// Copies of the state kept for seeking back.
pub const MAX_CHECKPOINTS: usize = 32;
/// Inputs between checkpoints at first (closer in the tests, so that their
/// short sessions seek from checkpoints too).
const FIRST_SPACING: usize = if cfg!(test) { 64 } else { 500 };

/// A page state the time machine can record and replay.
///
/// **Invariant:** the state reads no clock and no randomness of its own:
/// everything it knows arrives as an [`Replay::Input`].
pub trait Replay: Clone {
    type Input: Clone;
    /// Takes one input as the live page does: what to send, whether to redraw.
    fn feed(&mut self, input: &Self::Input) -> (Vec<Request>, bool);
    /// Whether the input brings the page an event (a non-empty batch of frames).
    fn is_event(input: &Self::Input) -> bool;
    /// The page's animation clock, ms (stopped while paused): playing the
    /// past follows it, so a pause in the recording is skipped.
    fn clock(&self) -> f64;
    /// Drops what belongs to the live page only (an open form or menu)
    /// before a past state is shown.
    fn for_viewing(&mut self) {}
    /// Carries what the user chose to look at in one past state (the
    /// selection, the lesson step shown) over to another.
    fn keep_view(&mut self, _from: &Self) {}
    /// Whether `next`, coming right after `prev`, may take its place in the
    /// log: replaying `next` alone leaves the state exactly as replaying
    /// both (a paused clock ticking on). Keeps an idle page's log short.
    fn merges(_prev: &Self::Input, _next: &Self::Input) -> bool {
        false
    }
}

/// Where a timeline is, for its controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub past: bool,
    pub pos: u32,
    pub total: u32,
    pub available: Result<(), Unavailable>,
    pub playing: bool,
}

/// What [`History::act`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acted {
    /// A moment (past or live) is shown.
    Shown,
    /// A step at the live end: the page runs until the next event.
    RunForStep,
    /// A step at the live end with nothing on its way: it would wait for ever.
    NothingMoving,
}

/// Why a timeline cannot be used (the page says it in its language).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Real mode: a live broker cannot be stepped or rewound.
    Real,
    /// The recording reached its cap (this many entries).
    Full(usize),
    /// The playground's broker did not handle this request in order, so
    /// its run cannot be replayed.
    Unordered(u64),
}

/// The past being shown.
struct Past<S> {
    /// The event shown.
    pos: u32,
    /// The replay: the state after `applied` inputs.
    applied: usize,
    wb: S,
    /// Playing the past: (the page's wall ms at the last play tick, the
    /// animation ms the replay has reached).
    playing: Option<(f64, f64)>,
    /// The user changed what is looked at (a selection): the copy is no
    /// longer an exact replay, so going on replays afresh.
    touched: bool,
    /// Playing, a copy showing what the user chose to look at: kept over
    /// what the recording selects as it plays.
    view: Option<Box<S>>,
}

/// The recording of one open Build page or lesson, and what of it is shown.
pub struct History<S: Replay> {
    /// The state as it was opened (`None`: nothing is recorded).
    start: Option<S>,
    inputs: Vec<S::Input>,
    /// `events[k]`: inputs applied once event `k + 1` has arrived.
    events: Vec<usize>,
    /// The live page's animation clock (ms, stopped while paused) after
    /// each input: playing the past follows it, so a pause is skipped.
    clock: Vec<f64>,
    checkpoints: Vec<(usize, S)>,
    spacing: usize,
    full: bool,
    past: Option<Past<S>>,
    /// Step at the live end: pause once this many events have arrived.
    step_to: Option<u32>,
    /// The live run was playing when the past was first shown: it plays
    /// again when the page is live again.
    resume: bool,
    /// The page went from the past back to live since [`History::take_resume`].
    live_again: bool,
    /// The user chose what to look at in the past (a selection, a step):
    /// every past state shown keeps it until the page is live again.
    user_view: bool,
}

impl<S: Replay> History<S> {
    /// A recording of `wb` from now on (`enabled: false` in real mode).
    pub fn new(wb: &S, enabled: bool) -> History<S> {
        History {
            start: enabled.then(|| wb.clone()),
            inputs: Vec::new(),
            events: Vec::new(),
            clock: Vec::new(),
            checkpoints: Vec::new(),
            spacing: FIRST_SPACING,
            full: false,
            past: None,
            step_to: None,
            resume: false,
            live_again: false,
            user_view: false,
        }
    }

    /// Whether stepping and scrubbing work, and if not, why.
    pub fn available(&self) -> Result<(), Unavailable> {
        if self.start.is_none() {
            Err(Unavailable::Real)
        } else if self.full {
            Err(Unavailable::Full(MAX_INPUTS))
        } else {
            Ok(())
        }
    }

    /// Where the timeline is.
    pub fn at(&self) -> At {
        At {
            past: self.in_past(),
            pos: self.position(),
            total: self.total(),
            available: self.available(),
            playing: self.playing(),
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

    /// Whether the past is shown while the live run, playing before, is
    /// held for it: when the page is left from here, the run plays on.
    pub fn holds_run(&self) -> bool {
        self.past.is_some() && self.resume
    }

    /// Whether the past is playing.
    pub fn playing(&self) -> bool {
        self.past.as_ref().is_some_and(|p| p.playing.is_some())
    }

    /// The past state shown (`None`: the live one is).
    pub fn shown(&self) -> Option<&S> {
        self.past.as_ref().map(|p| &p.wb)
    }

    /// The past state shown, to change what is looked at in it (not
    /// recorded; the next step or play replays afresh and keeps only the
    /// view, see [`Replay::keep_view`]).
    pub fn shown_mut(&mut self) -> Option<&mut S> {
        let past = self.past.as_mut()?;
        past.touched = true;
        // Playing on, the view is taken afresh from what the user now chose.
        past.view = None;
        self.user_view = true;
        Some(&mut past.wb)
    }

    /// Records `input`, which the live state has just taken and is now
    /// `live`. Returns whether an event arrived with it.
    pub fn record(&mut self, input: S::Input, live: &S) -> bool {
        if self.start.is_none() || self.full {
            return false;
        }
        if self.inputs.len() >= MAX_INPUTS {
            // The recording ends here; what is shown of the past goes too.
            self.full = true;
            self.step_to = None;
            // The page stays as it is (paused, if the past was shown): no
            // resume is left to fire at some later, unrelated moment.
            self.past = None;
            self.resume = false;
            self.live_again = false;
            self.user_view = false;
            self.inputs = Vec::new();
            self.events = Vec::new();
            self.clock = Vec::new();
            self.checkpoints = Vec::new();
            return false;
        }
        let event = S::is_event(&input);
        let n = self.inputs.len();
        let checkpoint_at_last = self.checkpoints.last().is_some_and(|(at, _)| *at == n);
        if let (Some(prev), Some(clock)) = (self.inputs.last_mut(), self.clock.last_mut()) {
            if !checkpoint_at_last && S::merges(prev, &input) {
                *prev = input;
                *clock = live.clock();
                return false;
            }
        }
        self.inputs.push(input);
        self.clock.push(live.clock());
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
        if self.start.is_none() {
            return total;
        }
        if n >= total || self.full {
            self.go_live();
            return total;
        }
        self.show(n, self.inputs_at(n));
        n
    }

    /// Shows the page after `target` inputs, event `pos` (see [`History::seek`]).
    fn show(&mut self, pos: u32, target: usize) {
        let Some(start) = self.start.as_ref() else {
            return;
        };
        // Going on from the copy shown moves it (a copy of what it shows is
        // kept only if the user chose a view); a fresh replay takes the view
        // from the copy it replaces.
        let (mut applied, mut wb, donor) = match self.past.take() {
            Some(p) if p.applied <= target && !p.touched => {
                let donor = self.user_view.then(|| p.wb.clone());
                (p.applied, p.wb, donor)
            }
            old => {
                let (at, wb) = match self.checkpoints.iter().rev().find(|(at, _)| *at <= target) {
                    Some((at, wb)) => (*at, wb.clone()),
                    None => (0, start.clone()),
                };
                (at, wb, old.filter(|_| self.user_view).map(|p| p.wb))
            }
        };
        while applied < target {
            wb.feed(&self.inputs[applied]);
            applied += 1;
        }
        wb.for_viewing();
        if let Some(old) = donor {
            wb.keep_view(&old);
        }
        self.past = Some(Past {
            pos,
            applied,
            wb,
            playing: None,
            touched: false,
            view: None,
        });
    }

    /// Back to live (remembering it for [`History::take_resume`]).
    fn go_live(&mut self) {
        if self.past.take().is_some() {
            self.live_again = true;
        }
        self.user_view = false;
    }

    /// Whether the live run should play again: it was playing when the past
    /// was first shown, and the page has just gone live. Asked once.
    pub fn take_resume(&mut self) -> bool {
        let resume = self.live_again && self.resume;
        if self.live_again {
            self.live_again = false;
            self.resume = false;
        }
        resume
    }

    /// A pending step at the live end is called off (the user paused).
    pub fn cancel_step(&mut self) {
        self.step_to = None;
    }

    /// Carries out what the time controls ask (`busy`: something is on its
    /// way, so a step at the live end will see an event come).
    ///
    /// `live_playing`: the live run is playing now; if this shows the past
    /// for the first time, the run pauses and plays again once the page is
    /// live again (see [`History::take_resume`]).
    pub fn act(
        &mut self,
        ta: &TimeAction,
        busy: bool,
        live_playing: bool,
    ) -> Result<Acted, Unavailable> {
        self.available()?;
        let was_past = self.in_past();
        // A clock running only for a pending step is not a run to resume.
        let stepping = self.step_to.is_some();
        let acted = self.act_on(ta, busy)?;
        if !was_past && self.in_past() {
            self.resume = live_playing && !stepping;
        }
        Ok(acted)
    }

    fn act_on(&mut self, ta: &TimeAction, busy: bool) -> Result<Acted, Unavailable> {
        let (pos, total) = (self.position(), self.total());
        // Any other use of the controls calls a pending step off.
        self.step_to = None;
        match ta {
            TimeAction::Step if self.in_past() => {
                self.hold();
                self.seek(pos + 1);
            }
            TimeAction::Step if !busy => return Ok(Acted::NothingMoving),
            TimeAction::Step => {
                // Run until one more event comes, then pause there.
                self.step_to = Some(total.saturating_add(1));
                return Ok(Acted::RunForStep);
            }
            TimeAction::StepBack => {
                self.hold();
                self.seek(pos.saturating_sub(1));
            }
            TimeAction::Seek(n) => {
                self.hold();
                self.seek(*n);
            }
            TimeAction::Live => {
                self.seek(total);
            }
            TimeAction::Reset | TimeAction::Adopt { .. } => {}
        }
        Ok(Acted::Shown)
    }

    /// After an input was recorded: whether a step at the live end has got
    /// its event (the page pauses there).
    pub fn step_reached(&mut self) -> bool {
        let reached = self.step_to.is_some_and(|to| self.total() >= to);
        if reached {
            self.step_to = None;
        }
        reached
    }

    /// Play or hold the past shown.
    pub fn toggle_play(&mut self, now_wall: f64) {
        if self.playing() {
            self.hold();
        } else {
            self.play(now_wall);
        }
    }

    /// Plays the past from where it is shown (`now_wall`: the page's clock).
    pub fn play(&mut self, now_wall: f64) {
        if let Some((pos, applied)) = self
            .past
            .as_ref()
            .filter(|p| p.touched)
            .map(|p| (p.pos, p.applied))
        {
            // Go on from an exact replay of the very moment shown, keeping
            // what is looked at.
            self.show(pos, applied);
        }
        if let Some(p) = self.past.as_mut() {
            p.playing = Some((now_wall, p.wb.clock()));
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
    /// page is live again (see [`History::in_past`]).
    pub fn play_tick(&mut self, now_wall: f64, speed: f64) -> bool {
        let Some(p) = self.past.as_mut() else {
            return false;
        };
        let Some((last, reached)) = p.playing else {
            return false;
        };
        let until = reached + (now_wall - last).clamp(0.0, 100.0) * speed;
        p.playing = Some((now_wall, until));
        if self.user_view && p.view.is_none() {
            p.view = Some(Box::new(p.wb.clone()));
        }
        let mut changed = false;
        while p.applied < self.inputs.len() && self.clock[p.applied] <= until {
            let input = &self.inputs[p.applied];
            if S::is_event(input) {
                p.pos += 1;
            }
            changed |= p.wb.feed(input).1;
            p.applied += 1;
        }
        if p.applied >= self.inputs.len() {
            self.go_live();
            return true;
        }
        p.wb.for_viewing();
        if let Some(view) = p.view.as_deref() {
            p.wb.keep_view(view);
        }
        changed
    }
}

/// What the Build page's and lessons' tests check of a recording.
#[cfg(test)]
pub(crate) mod check {
    use super::*;

    /// Seeks every event of `time` in a scrambled order (back, forward, far,
    /// near, from checkpoints) and compares what is shown, through `view`,
    /// with `snaps[n]`, what the live page showed after event `n`; then
    /// plays the past from half way at `speed` until the page is live.
    pub fn replays_exactly<S: Replay, V: PartialEq + std::fmt::Debug>(
        time: &mut History<S>,
        snaps: &[V],
        view: impl Fn(&S) -> V,
        speed: f64,
    ) {
        let total = time.total();
        assert_eq!(total as usize + 1, snaps.len(), "one snapshot per event");
        let mut order: Vec<u32> = (0..total).collect();
        let mut x: u64 = 2038;
        for i in (1..order.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        for n in order.into_iter().chain([3.min(total), 1.min(total)]) {
            if n == total {
                continue;
            }
            assert_eq!(time.seek(n), n);
            assert_eq!(time.position(), n);
            let shown = time.shown().expect("the past is shown");
            assert!(
                view(shown) == snaps[n as usize],
                "event {n} of {total} differs"
            );
        }
        time.seek(total / 2);
        time.play(0.0);
        let mut wall = 0.0;
        while time.in_past() {
            wall += 16.0;
            time.play_tick(wall, speed);
            assert!(wall < 3_600_000.0, "the past never ended");
        }
        assert_eq!(time.position(), total);
        assert!(time.shown().is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter that counts ticks and events: enough to see what the
    /// machine replays (the Build page's and lessons' own tests replay the
    /// real states exactly).
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Counter {
        ticks: u32,
        events: u32,
        now: f64,
        open_form: bool,
    }

    #[derive(Clone, Debug, PartialEq)]
    enum In {
        Tick(f64),
        Event,
        OpenForm,
        /// A tick that changes nothing but the clock (merges).
        Idle(f64),
    }

    impl Replay for Counter {
        type Input = In;
        fn feed(&mut self, input: &In) -> (Vec<Request>, bool) {
            match input {
                In::Tick(now) => {
                    self.ticks += 1;
                    self.now = *now;
                }
                In::Event => self.events += 1,
                In::OpenForm => self.open_form = true,
                In::Idle(now) => self.now = *now,
            }
            (Vec::new(), true)
        }
        fn merges(prev: &In, next: &In) -> bool {
            matches!((prev, next), (In::Idle(_), In::Idle(_)))
        }
        fn is_event(input: &In) -> bool {
            matches!(input, In::Event)
        }
        fn clock(&self) -> f64 {
            self.now
        }
        fn for_viewing(&mut self) {
            self.open_form = false;
        }
    }

    fn run(time: &mut History<Counter>, live: &mut Counter, inputs: &[In]) -> u32 {
        let mut events = 0;
        for input in inputs {
            live.feed(input);
            events += time.record(input.clone(), live) as u32;
        }
        events
    }

    #[test]
    fn real_mode_records_nothing_and_says_why() {
        let mut live = Counter::default();
        let mut time = History::new(&live, false);
        assert_eq!(run(&mut time, &mut live, &[In::Tick(1.0), In::Event]), 0);
        assert_eq!(time.available(), Err(Unavailable::Real));
        assert_eq!(time.seek(0), 0);
        assert!(!time.in_past());
    }

    #[test]
    fn ticks_are_not_events_and_seeking_to_the_end_is_live() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        assert_eq!(
            run(&mut time, &mut live, &[In::Tick(1.0), In::Tick(2.0)]),
            0
        );
        assert_eq!(time.total(), 0);
        assert_eq!(time.seek(5), 0);
        assert!(!time.in_past());
        assert_eq!(time.available(), Ok(()));
    }

    #[test]
    fn the_past_is_shown_without_what_belongs_to_the_live_page() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        let inputs = [
            In::Tick(1.0),
            In::Event,
            In::OpenForm,
            In::Tick(2.0),
            In::Event,
        ];
        assert_eq!(run(&mut time, &mut live, &inputs), 2);
        assert_eq!(time.seek(1), 1);
        let shown = time.shown().expect("past");
        assert_eq!((shown.ticks, shown.events, shown.open_form), (1, 1, false));
        assert_eq!(time.seek(0), 0);
        assert_eq!(time.shown(), Some(&Counter::default()));
        // Playing skips the paused stretch: the clock, not the wall, leads.
        time.play(1000.0);
        assert!(time.play_tick(1001.0, 1.0));
        assert_eq!(time.position(), 1);
        time.play_tick(1002.5, 1.0);
        assert!(!time.in_past(), "played to the end, the page is live");
    }

    #[test]
    fn an_idle_clock_keeps_one_input_and_replays_the_same() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        let mut inputs = vec![In::Event];
        inputs.extend((0..1000).map(|i| In::Idle(i as f64)));
        inputs.push(In::Event);
        assert_eq!(run(&mut time, &mut live, &inputs), 2);
        assert_eq!(time.inputs.len(), 3, "a thousand idle ticks are one");
        time.seek(1);
        assert_eq!(time.shown().expect("past").now, 0.0);
        time.play(0.0);
        time.play_tick(1.0, 1000.0);
        assert!(!time.in_past());
    }

    #[test]
    fn the_live_run_plays_again_only_if_it_was_playing() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        run(&mut time, &mut live, &[In::Event, In::Event, In::Event]);
        for playing in [true, false] {
            assert_eq!(
                time.act(&TimeAction::Seek(1), false, playing),
                Ok(Acted::Shown)
            );
            assert!(!time.take_resume(), "still in the past");
            // Moving about the past does not change what was playing.
            time.act(&TimeAction::StepBack, false, !playing)
                .expect("act");
            // Leaving the page from here lets the run play on only if it was playing.
            assert_eq!(time.holds_run(), playing);
            time.act(&TimeAction::Live, false, false).expect("act");
            assert!(!time.holds_run(), "live: nothing is held");
            assert_eq!(time.take_resume(), playing);
            assert!(!time.take_resume(), "asked once");
        }
    }

    #[test]
    fn a_clock_running_only_for_a_step_is_not_resumed() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        run(&mut time, &mut live, &[In::Event, In::Event]);
        assert_eq!(
            time.act(&TimeAction::Step, true, false),
            Ok(Acted::RunForStep)
        );
        // The clock now runs for the step; ← before its event comes.
        time.act(&TimeAction::StepBack, true, true).expect("act");
        assert!(time.in_past());
        time.act(&TimeAction::Live, true, false).expect("act");
        assert!(!time.take_resume(), "the user had paused: stay paused");
    }

    #[test]
    fn a_full_recording_leaves_nothing_to_resume_later() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        run(&mut time, &mut live, &[In::Event, In::Event]);
        time.act(&TimeAction::Seek(1), false, true).expect("act");
        let idle: Vec<In> = (0..MAX_INPUTS).map(|_| In::Event).collect();
        run(&mut time, &mut live, &idle);
        assert_eq!(time.available(), Err(Unavailable::Full(MAX_INPUTS)));
        assert!(!time.in_past());
        assert!(
            !time.take_resume(),
            "no resume fires after the recording filled up"
        );
    }

    #[test]
    fn a_pending_step_ends_with_its_event_or_when_called_off() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        assert_eq!(
            time.act(&TimeAction::Step, false, false),
            Ok(Acted::NothingMoving)
        );
        assert_eq!(
            time.act(&TimeAction::Step, true, false),
            Ok(Acted::RunForStep)
        );
        run(&mut time, &mut live, &[In::Tick(1.0)]);
        assert!(!time.step_reached(), "a tick is no event");
        run(&mut time, &mut live, &[In::Event]);
        assert!(time.step_reached());
        assert!(!time.step_reached(), "reached once");
        time.act(&TimeAction::Step, true, false).expect("act");
        time.cancel_step();
        run(&mut time, &mut live, &[In::Event]);
        assert!(!time.step_reached(), "called off");
        time.act(&TimeAction::Step, true, false).expect("act");
        time.act(&TimeAction::StepBack, true, false).expect("act");
        time.act(&TimeAction::Live, true, false).expect("act");
        run(&mut time, &mut live, &[In::Event]);
        assert!(!time.step_reached(), "another control calls a step off");
    }

    #[test]
    fn checkpoints_stay_bounded_as_the_recording_grows() {
        let mut live = Counter::default();
        let mut time = History::new(&live, true);
        let inputs: Vec<In> = (0..40_000)
            .map(|i| {
                if i % 7 == 0 {
                    In::Event
                } else {
                    In::Tick(i as f64)
                }
            })
            .collect();
        run(&mut time, &mut live, &inputs);
        assert!(time.checkpoints.len() <= MAX_CHECKPOINTS);
        assert!(time.spacing > FIRST_SPACING);
        assert!(time
            .checkpoints
            .iter()
            .all(|(at, _)| at.is_multiple_of(time.spacing)));
        // A seek far back and one near the end agree with a count.
        let n = time.total();
        time.seek(n / 3);
        let a = time.shown().expect("past").events;
        assert_eq!(a, n / 3);
        time.seek(n - 1);
        assert_eq!(time.shown().expect("past").events, n - 1);
    }
}
