//! The playground's time machine: step one event, scrub back, replay, share a
//! run. Pure (no browser API), tested natively.
//!
//! Why replay and not snapshots: `sim_core::Broker` is deterministic (same
//! seed, same requests at the same virtual times, same frames), so a run is
//! fully described by its seed and its command log, a few bytes per request.
//! Going back to event `n` means replaying that log into a fresh broker and a
//! fresh [`Model`] until the model has seen `n` frames; going forward again
//! continues the same replay. The same log, deflated into the URL (`#r=`),
//! lets another page replay the very same run.
//!
//! An *event* is one frame the page's model received. Each recorded
//! [`Command`] keeps the broker's virtual time when it was handled and how
//! many frames the page had received when it sent it, so the replay hands the
//! model requests and frames in exactly the order the live page saw them.
//!
//! Only the simulation records: RabbitMQ runs on its own clock and cannot be
//! stepped or rewound, so real mode has no timeline (the page says so).

use std::collections::VecDeque;
use std::rc::Rc;

use sim_core::protocol::{Method, Request, ServerFrame};

use crate::history::Unavailable;
use crate::model::{Action, Mode, Model};
use crate::scene::{self, Scene};
use crate::sim::SimBroker;

/// Commands recorded at most (a lesson-sized session is far below); past it
/// the timeline stops recording and says why.
pub const MAX_COMMANDS: usize = 200_000;
/// The fragment prefix of a shared run.
pub const RUN_PREFIX: &str = "r=";
/// The run format version in a shared link.
const RUN_VERSION: u32 = 1;

/// One request the page sent to the simulated broker.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The broker's virtual time when it handled the request, ms.
    pub at_ms: u64,
    /// Frames the page's model had received when it sent the request.
    pub after: u32,
    pub req: Request,
}

/// A run of the playground: enough to replay it exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub seed: u64,
    pub scene: &'static Scene,
    pub commands: Vec<Command>,
    /// Virtual time the run reached; a replay fires the broker's timers up to it.
    pub end_ms: u64,
}

impl Run {
    pub fn new(seed: u64, scene: &'static Scene) -> Run {
        Run {
            seed,
            scene,
            commands: Vec::new(),
            end_ms: 0,
        }
    }
}

/// The timeline's page strings, `[key, en, ru, uk]` (read by `i18n::t`).
pub const STRINGS: &[[&str; 4]] = &[
    ["tl-step", "Step ▶︎", "Шаг ▶︎", "Крок ▶︎"],
    [
        "tl-step-back",
        "One event back",
        "На событие назад",
        "На подію назад",
    ],
    [
        "tl-step-nothing",
        "Nothing is on its way: publish a message, then step.",
        "Ничего не движется: опубликуйте сообщение, затем шагайте.",
        "Нічого не рухається: опублікуйте повідомлення, потім крокуйте.",
    ],
    ["tl-timeline", "Timeline", "Шкала времени", "Шкала часу"],
    ["tl-event", "event", "событие", "подія"],
    ["tl-live", "Back to live ⇥", "К живому ⇥", "До живого ⇥"],
    ["tl-reset", "⟲ Reset", "⟲ Сначала", "⟲ Спочатку"],
    [
        "tl-reset-hint",
        "Start the run over: a fresh broker, the same scene",
        "Начать прогон заново: новый брокер, та же сцена",
        "Почати прогін знову: новий брокер, та сама сцена",
    ],
    ["tl-speed", "Speed", "Скорость", "Швидкість"],
    [
        "tl-real",
        "a live RabbitMQ runs on its own clock: it cannot be stepped or rewound (switch to Sim to travel in time)",
        "живой RabbitMQ идёт по своим часам: его нельзя пройти по шагам или отмотать назад (переключитесь на Sim, чтобы путешествовать во времени)",
        "живий RabbitMQ іде за власним годинником: його не можна пройти кроками чи перемотати назад (перемкніться на Sim, щоб подорожувати в часі)",
    ],
    [
        "tl-full",
        "the timeline holds {0} entries; later ones are not recorded (press Reset to start over)",
        "шкала времени вмещает {0} записей; дальше запись не ведётся (нажмите «Сначала», чтобы начать заново)",
        "шкала часу вміщує {0} записів; далі запис не ведеться (натисніть «Спочатку», щоб почати знову)",
    ],
    [
        "tl-unordered",
        "request #{0} was not handled by the simulation in order; this run cannot be replayed",
        "симуляция обработала запрос #{0} не по порядку; этот прогон нельзя воспроизвести",
        "симуляція обробила запит #{0} не по черзі; цей прогін не можна відтворити",
    ],
];

/// What the timeline controls ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum TimeAction {
    /// One event forward (→). At the live end: run until one more event happens.
    Step,
    /// One event back (←).
    StepBack,
    /// Show the state after event `n` (the timeline slider).
    Seek(u32),
    /// Back to the live run (the end of the timeline).
    Live,
    /// Start the run over: a fresh broker, the same scene.
    Reset,
    /// Continue live from a replayed state (a shared run was opened): the
    /// model the replay reached, to be shown from event `cursor`.
    Adopt { model: Box<Model>, cursor: u32 },
}

/// A replay in progress: a fresh broker and a fresh model fed the recorded
/// commands, positioned after some number of events. Goes forward only.
pub struct Replay {
    broker: SimBroker,
    model: Model,
    next_cmd: usize,
    pending: VecDeque<ServerFrame>,
}

impl Replay {
    pub fn new(run: &Run, generation: u32) -> Replay {
        Replay {
            broker: SimBroker::new(run.seed),
            model: Model::for_replay(Mode::Sim, generation, run.scene),
            next_cmd: 0,
            pending: VecDeque::new(),
        }
    }

    /// Events (frames) the model has received so far.
    pub fn applied(&self) -> u32 {
        self.model.frames
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    fn collect(&mut self) {
        while let Some(f) = self.broker.poll() {
            self.pending.push_back(f);
        }
    }

    fn send(&mut self, c: &Command) {
        self.broker.advance_to(c.at_ms);
        self.collect();
        self.model.note_sent(&c.req);
        self.broker.request(c.req.clone());
        self.collect();
        self.next_cmd += 1;
    }

    /// Sends the commands the page sent before its next frame.
    fn send_due(&mut self, run: &Run) {
        while let Some(c) = run.commands.get(self.next_cmd) {
            if c.after > self.model.frames {
                break;
            }
            self.send(c);
        }
    }

    /// The next frame in the recorded order (made by the broker if needed).
    fn peek(&mut self, run: &Run) -> Option<&ServerFrame> {
        self.send_due(run);
        if self.pending.is_empty() {
            // Timers that ran out before the next command (or the run's end).
            let until = run
                .commands
                .get(self.next_cmd)
                .map_or(run.end_ms, |c| c.at_ms);
            self.broker.advance_to(until);
            self.collect();
        }
        if self.pending.is_empty() {
            // The record says the page saw more frames before its next
            // request than the broker makes: only a tampered record does
            // that. Keep going with that request.
            if let Some(c) = run.commands.get(self.next_cmd) {
                let c = c.clone();
                self.send(&c);
            }
        }
        self.pending.front()
    }

    /// Virtual time of the next event, if there is one.
    pub fn next_at(&mut self, run: &Run) -> Option<u64> {
        self.peek(run).map(|f| f.at_ms)
    }

    /// Applies the next event; false when the run has no more.
    pub fn step(&mut self, run: &Run) -> bool {
        if self.peek(run).is_none() {
            return false;
        }
        let Some(frame) = self.pending.pop_front() else {
            return false;
        };
        let generation = self.model.generation;
        self.model.apply(Action::Frame { generation, frame });
        // What the page sent right after this event is part of its state.
        self.send_due(run);
        true
    }

    /// Goes forward to `events` events (or the run's end); returns where it is.
    pub fn seek(&mut self, run: &Run, events: u32) -> u32 {
        self.send_due(run);
        while self.model.frames < events && self.step(run) {}
        self.model.frames
    }

    /// Replays everything; the broker and model where the run ended, and
    /// whether every recorded command was used.
    pub fn finish(mut self, run: &Run) -> (SimBroker, Model, bool) {
        self.seek(run, u32::MAX);
        let complete = self.next_cmd == run.commands.len() && self.pending.is_empty();
        (self.broker, self.model, complete)
    }
}

/// The state after the replay's current event, drawn at rest.
fn settled(m: &Model) -> Rc<Model> {
    let mut m = m.clone();
    m.settle();
    Rc::new(m)
}

/// The playground's timeline: the recording of the live run and, while the
/// user looks at the past, the replay positioned at the event shown.
pub struct TimeMachine {
    pub run: Run,
    /// Recording (simulation). Real mode has no timeline.
    pub enabled: bool,
    /// The event shown while looking at the past; `None`: the live run.
    pub cursor: Option<u32>,
    /// The past is being replayed forward on the clock.
    pub playing: bool,
    /// Live step: pause once the model has received this many frames.
    pub step_to: Option<u32>,
    /// Why this run cannot be replayed, if it cannot.
    pub broken: Option<Unavailable>,
    /// Virtual time the replay's clock reached (while `playing`).
    clock_ms: f64,
    last_wall: Option<f64>,
    replay: Option<Replay>,
    shown: Option<Rc<Model>>,
}

impl TimeMachine {
    pub fn new(seed: u64, scene: &'static Scene, enabled: bool) -> TimeMachine {
        TimeMachine {
            run: Run::new(seed, scene),
            enabled,
            cursor: None,
            playing: false,
            step_to: None,
            broken: None,
            clock_ms: 0.0,
            last_wall: None,
            replay: None,
            shown: None,
        }
    }

    /// Starts a new recording (a new link: mode or scene switch, reset).
    pub fn reset(&mut self, seed: u64, scene: &'static Scene, enabled: bool) {
        *self = TimeMachine::new(seed, scene, enabled);
    }

    /// Starts from a shared run, shown from event `cursor`.
    pub fn adopt(&mut self, run: Run) {
        *self = TimeMachine::new(run.seed, run.scene, true);
        self.run = run;
    }

    /// The page sent `req`, which the broker handled at `at_ms` (`None`: it
    /// could not say), after the model had received `after` frames.
    pub fn record(&mut self, at_ms: Option<u64>, after: u32, req: &Request) {
        if !self.enabled || self.broken.is_some() {
            return;
        }
        let Some(at_ms) = at_ms else {
            self.broken = Some(Unavailable::Unordered(req.id));
            return;
        };
        if self.run.commands.len() >= MAX_COMMANDS {
            self.broken = Some(Unavailable::Full(MAX_COMMANDS));
            return;
        }
        self.run.end_ms = self.run.end_ms.max(at_ms);
        self.run.commands.push(Command {
            at_ms,
            after,
            req: req.clone(),
        });
    }

    /// Can the user travel in time now? `Err` says why not.
    pub fn available(&self) -> Result<(), Unavailable> {
        if !self.enabled {
            return Err(Unavailable::Real);
        }
        match self.broken {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Is an event before the live end shown?
    pub fn in_past(&self, total: u32) -> bool {
        self.cursor.is_some_and(|c| c < total)
    }

    /// The position the timeline shows, `0..=total`.
    pub fn position(&self, total: u32) -> u32 {
        self.cursor.map_or(total, |c| c.min(total))
    }

    /// The replayed state shown while in the past.
    pub fn shown(&self, total: u32) -> Option<Rc<Model>> {
        if self.in_past(total) {
            self.shown.clone()
        } else {
            None
        }
    }

    /// Shows the state after event `n` of `total` (the live model has seen
    /// `total`); `live_ms` is the live virtual time (timers up to it fire).
    /// `n >= total` is the live run. Returns the position reached.
    pub fn seek(&mut self, n: u32, total: u32, live_ms: u64) -> u32 {
        if self.available().is_err() {
            return total;
        }
        if n >= total {
            self.cursor = None;
            self.playing = false;
            self.shown = None;
            return total;
        }
        self.run.end_ms = self.run.end_ms.max(live_ms);
        let behind = self.replay.as_ref().is_none_or(|r| r.applied() > n);
        if behind {
            self.replay = Some(Replay::new(&self.run, 0));
        }
        let Some(replay) = self.replay.as_mut() else {
            return total;
        };
        let at = replay.seek(&self.run, n);
        self.shown = Some(settled(replay.model()));
        self.cursor = Some(at);
        if at >= total {
            // The replay ran out early (a broken record): show the live run.
            self.cursor = None;
            self.shown = None;
            return total;
        }
        at
    }

    /// Replay play: the replay's clock moves by the wall time since the last
    /// call times `speed`, and the events due by then are shown. Returns true
    /// when it reached the live end (the live run should go on playing).
    pub fn play_tick(&mut self, wall_ms: f64, speed: f64, total: u32, live_ms: u64) -> bool {
        let Some(cursor) = self.cursor else {
            return false;
        };
        if !self.playing {
            self.last_wall = None;
            return false;
        }
        let dt = match self.last_wall {
            Some(prev) => (wall_ms - prev).clamp(0.0, 100.0),
            None => 0.0,
        };
        self.last_wall = Some(wall_ms);
        let Some(replay) = self.replay.as_mut() else {
            return false;
        };
        if self.clock_ms <= 0.0 {
            self.clock_ms = replay.model().last_frame_ms().unwrap_or(0) as f64;
        }
        self.clock_ms += dt * speed;
        let mut at = cursor;
        while at < total {
            match replay.next_at(&self.run) {
                Some(t) if (t as f64) <= self.clock_ms => {
                    if !replay.step(&self.run) {
                        break;
                    }
                    at = replay.applied();
                }
                Some(_) => break,
                None => {
                    at = total;
                    break;
                }
            }
        }
        if at >= total {
            self.seek(total, total, live_ms);
            return true;
        }
        if at != cursor {
            self.shown = Some(settled(replay.model()));
            self.cursor = Some(at);
        }
        false
    }

    /// Starts or stops replay play (the clock starts at the shown event).
    pub fn set_playing(&mut self, playing: bool) {
        self.playing = playing && self.cursor.is_some();
        self.clock_ms = 0.0;
        self.last_wall = None;
    }
}

/// A request in a shared link: what the playground's model sends, by
/// name, not as JSON: `s<i>` the scene's i-th declaration, `o` connection.open,
/// `c` channel.open, `p` the next publish, `a<tag>` an ack. The link stays
/// short, cannot carry any other request, and the page needs no JSON reader
/// for requests.
fn method_code(scene: &Scene, setup: &[Method], publishes: &mut u64, m: &Method) -> Option<String> {
    match m {
        Method::ConnectionOpen => Some("o".into()),
        Method::ChannelOpen => Some("c".into()),
        Method::Ack {
            delivery_tag,
            multiple: false,
        } => Some(format!("a{delivery_tag}")),
        Method::Publish { .. } => {
            *publishes += 1;
            (*m == scene.publish_method(*publishes)).then(|| "p".into())
        }
        _ => setup.iter().position(|s| s == m).map(|i| format!("s{i}")),
    }
}

fn code_method(scene: &Scene, setup: &[Method], publishes: &mut u64, code: &str) -> Option<Method> {
    let (kind, arg) = code.split_at(code.len().min(1));
    match (kind, arg) {
        ("o", "") => Some(Method::ConnectionOpen),
        ("c", "") => Some(Method::ChannelOpen),
        ("p", "") => {
            *publishes += 1;
            Some(scene.publish_method(*publishes))
        }
        ("a", tag) => Some(Method::Ack {
            delivery_tag: tag.parse().ok()?,
            multiple: false,
        }),
        ("s", i) => setup.get(i.parse::<usize>().ok()?).cloned(),
        _ => None,
    }
}

/// The URL fragment (without `#`) that replays `run`: `r=` and, deflated,
/// `1 scene seed end_ms` then one `at_ms after id code` line per request.
/// `Err` if the run holds a request the link cannot carry.
pub async fn encode_run(run: &Run) -> Result<String, String> {
    let setup = run.scene.setup_methods();
    let mut publishes = 0;
    let mut text = format!("{RUN_VERSION} {} {} {}", run.scene.id, run.seed, run.end_ms);
    for c in &run.commands {
        let code =
            method_code(run.scene, &setup, &mut publishes, &c.req.method).ok_or_else(|| {
                format!(
                    "request #{} ({}) cannot travel in a link",
                    c.req.id,
                    c.req.method.op()
                )
            })?;
        if (c.req.connection, c.req.channel) != (1, 1) {
            return Err(format!("request #{} is not on channel 1/1", c.req.id));
        }
        text.push_str(&format!("\n{} {} {} {code}", c.at_ms, c.after, c.req.id));
    }
    Ok(format!("{RUN_PREFIX}{}", crate::share::pack(&text).await?))
}

/// Is this fragment (with or without `#`) a shared run?
pub fn is_run(fragment: &str) -> bool {
    fragment.trim_start_matches('#').starts_with(RUN_PREFIX)
}

/// The run a shared fragment (with or without `#`) carries.
pub async fn decode_run(fragment: &str) -> Result<Run, String> {
    let body = fragment
        .trim_start_matches('#')
        .strip_prefix(RUN_PREFIX)
        .ok_or("the link has no shared run (#r=...)")?;
    let text = crate::share::unpack(body).await?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    let [version, scene, seed, end_ms] = head[..] else {
        return Err(
            "the shared run is broken: its first line is not `version scene seed end`".into(),
        );
    };
    if version != RUN_VERSION.to_string() {
        return Err(format!(
            "the shared run has format {version} (this page reads format {RUN_VERSION})"
        ));
    }
    let scene = scene::by_id(scene).ok_or_else(|| {
        format!("the shared run is of scene '{scene}', which this page does not have")
    })?;
    let number = |s: &str, what: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("the shared run is broken: its {what} `{s}` is not a number"))
    };
    let seed = number(seed, "seed")?;
    let mut end_ms = number(end_ms, "end time")?;
    let setup = scene.setup_methods();
    let mut publishes = 0;
    let mut commands = Vec::new();
    let mut last = 0;
    for (i, line) in lines.enumerate() {
        if commands.len() >= MAX_COMMANDS {
            return Err(format!(
                "the shared run has more than {MAX_COMMANDS} requests"
            ));
        }
        let broken = |why: &str| format!("the shared run is broken: request {}: {why}", i + 1);
        let parts: Vec<&str> = line.split(' ').collect();
        let [at, after, id, code] = parts[..] else {
            return Err(broken("not `at after id request`"));
        };
        let (Ok(at_ms), Ok(after), Ok(id)) =
            (at.parse::<u64>(), after.parse::<u32>(), id.parse::<u64>())
        else {
            return Err(broken("a number is not one"));
        };
        if at_ms < last {
            return Err(broken("it is timed before the one ahead of it"));
        }
        last = at_ms;
        let method = code_method(scene, &setup, &mut publishes, code)
            .ok_or_else(|| broken(&format!("unknown request `{code}`")))?;
        commands.push(Command {
            at_ms,
            after,
            req: Request::new(id, method),
        });
    }
    end_ms = end_ms.max(last);
    Ok(Run {
        seed,
        scene,
        commands,
        end_ms,
    })
}

/// Replays `run` to its end: the broker to continue live with, the model
/// (tagged `generation`) and its event count. `Err` when the record does not
/// replay completely.
pub fn resume(run: &Run, generation: u32) -> Result<(SimBroker, Model), String> {
    let (broker, model, complete) = Replay::new(run, generation).finish(run);
    if !complete {
        return Err("the shared run is broken: its requests do not replay in order".into());
    }
    Ok((broker, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::now;
    use crate::model::{LinkEvent, Stage};
    use crate::scene::{DIRECT, FANOUT};

    /// The page, natively: the model, the simulated broker on a virtual clock
    /// that follows a fake wall clock, frames handed over one poll later (as
    /// the link's timer does), ticks every 16 ms, every request recorded.
    struct Page {
        model: Model,
        broker: SimBroker,
        time: TimeMachine,
        wall: f64,
        inbox: VecDeque<ServerFrame>,
        frames: Vec<ServerFrame>,
    }

    impl Page {
        fn new(seed: u64, scene: &'static Scene) -> Page {
            let mut p = Page {
                model: Model::new(Mode::Sim, 0, scene),
                broker: SimBroker::new(seed),
                time: TimeMachine::new(seed, scene, true),
                wall: 0.0,
                inbox: VecDeque::new(),
                frames: Vec::new(),
            };
            p.act(Action::Link {
                generation: 0,
                event: LinkEvent::Open,
            });
            p
        }

        fn act(&mut self, action: Action) {
            let (out, _) = self.model.apply(action);
            for req in out {
                self.broker.advance_to(self.wall as u64);
                self.broker.request(req.clone());
                self.time
                    .record(Some(self.broker.now_ms()), self.model.frames, &req);
            }
        }

        /// Wall time moves on by `ms` (speed 1: virtual time = wall time).
        fn run(&mut self, ms: f64) {
            let end = self.wall + ms;
            while self.wall < end {
                self.wall += 16.0;
                self.broker.advance_to(self.wall as u64);
                while let Some(f) = self.inbox.pop_front() {
                    self.frames.push(f.clone());
                    self.act(Action::Frame {
                        generation: 0,
                        frame: f,
                    });
                }
                while let Some(f) = self.broker.poll() {
                    self.inbox.push_back(f);
                }
                self.act(Action::Tick { now_ms: self.wall });
            }
            self.time.run.end_ms = self.wall as u64;
        }
    }

    fn settled_counts(m: &Model) -> (u64, u64, usize, usize) {
        let mut m = m.clone();
        m.settle();
        (
            m.published,
            m.shown_received(),
            m.ready_count(),
            m.unacked_count(),
        )
    }

    /// Three publishes at once (prefetch 1: two wait in the queue), all acked.
    fn three_orders(scene: &'static Scene) -> Page {
        let mut p = Page::new(7, scene);
        p.run(200.0);
        assert!(p.model.ready);
        for _ in 0..3 {
            p.act(Action::Publish);
        }
        p.run(8000.0);
        p
    }

    #[test]
    fn replay_reproduces_the_live_frames_and_state() {
        for scene in [&DIRECT, &FANOUT] {
            let p = three_orders(scene);
            let copies = scene.queues.len() as u64;
            assert_eq!(p.model.received, 3 * copies, "{}", scene.id);
            let mut r = Replay::new(&p.time.run, 0);
            let mut frames = Vec::new();
            while r.peek(&p.time.run).is_some() {
                frames.push(r.pending.front().cloned().unwrap());
                assert!(r.step(&p.time.run));
            }
            assert_eq!(frames, p.frames, "{}: same frames, same order", scene.id);
            let m = r.model();
            assert_eq!(m.frames, p.model.frames);
            assert_eq!(m.log, p.model.log);
            assert_eq!(m.events, p.model.events);
            assert_eq!(settled_counts(m), settled_counts(&p.model));
            assert_eq!(settled_counts(m), (3, 3 * copies, 0, 0));
        }
    }

    #[test]
    fn scrub_back_shows_the_earlier_state_and_forward_the_same_end() {
        let p = three_orders(&DIRECT);
        let total = p.model.frames;
        let mut tm = TimeMachine::new(7, &DIRECT, true);
        tm.run = p.time.run.clone();
        // Walk back one event at a time: some point has all three published,
        // one delivered (prefetch 1) and two ready.
        let mut saw_two_waiting = false;
        for n in (0..total).rev() {
            assert_eq!(tm.seek(n, total, p.wall as u64), n);
            let shown = tm.shown(total).expect("a past state is shown");
            assert_eq!(shown.frames, n);
            if shown.ready_count() == 2 && shown.unacked_count() == 1 {
                saw_two_waiting = true;
            }
        }
        assert!(saw_two_waiting);
        // Event 0: only the declarations were sent.
        tm.seek(0, total, p.wall as u64);
        let first = tm.shown(total).unwrap();
        assert_eq!(
            (first.published, first.received, first.ready),
            (0, 0, false)
        );
        // Forward again, one step at a time, to the same end.
        let mut n = 0;
        while n + 1 < total {
            n = tm.seek(n + 1, total, p.wall as u64);
        }
        let last = tm.shown(total).unwrap();
        assert_eq!(last.frames, total - 1);
        assert_eq!(tm.seek(total, total, p.wall as u64), total);
        assert!(tm.shown(total).is_none(), "the end of the timeline is live");
        let mut r = Replay::new(&tm.run, 0);
        r.seek(&tm.run, total);
        assert_eq!(settled_counts(r.model()), settled_counts(&p.model));
    }

    #[test]
    fn replay_play_moves_on_the_virtual_clock_and_ends_live() {
        let p = three_orders(&DIRECT);
        let total = p.model.frames;
        let mut tm = TimeMachine::new(7, &DIRECT, true);
        tm.run = p.time.run.clone();
        tm.seek(3, total, p.wall as u64);
        tm.set_playing(true);
        let mut wall = 0.0;
        let mut seen = vec![tm.cursor];
        let mut live = false;
        for _ in 0..2000 {
            wall += 16.0;
            if tm.play_tick(wall, 4.0, total, p.wall as u64) {
                live = true;
                break;
            }
            seen.push(tm.cursor);
        }
        assert!(live, "replay play reaches the live end");
        assert!(tm.cursor.is_none() && !tm.playing);
        // It went forward through intermediate events, never back.
        let cursors: Vec<u32> = seen.into_iter().flatten().collect();
        assert!(cursors.windows(2).all(|w| w[0] <= w[1]));
        assert!(cursors.len() > 3 && *cursors.last().unwrap() > 3);
    }

    #[test]
    fn a_shared_run_replays_the_same_and_goes_on_live() {
        let mut p = three_orders(&FANOUT);
        let link = now(encode_run(&p.time.run)).expect("the playground's requests travel");
        assert!(is_run(&format!("#{link}")));
        let run = now(decode_run(&format!("#{link}"))).expect("round trip");
        assert_eq!(run, p.time.run);
        let (mut broker, mut model) = resume(&run, 5).expect("replays");
        assert_eq!(model.generation, 5);
        assert_eq!(model.frames, p.model.frames);
        assert_eq!(model.log, p.model.log);
        // One more publish on both: the same frames come back.
        p.act(Action::Publish);
        let live: Vec<ServerFrame> = std::iter::from_fn(|| p.broker.poll()).collect();
        let (out, _) = model.apply(Action::Publish);
        assert_eq!(out.len(), 1);
        for req in out {
            broker.advance_to(p.broker.now_ms());
            broker.request(req);
        }
        let resumed: Vec<ServerFrame> = std::iter::from_fn(|| broker.poll()).collect();
        assert!(!live.is_empty());
        assert_eq!(resumed, live);
    }

    #[test]
    fn broken_shared_runs_say_why() {
        assert!(now(decode_run("#r=")).unwrap_err().contains("broken"));
        assert!(now(decode_run("#r=!!!")).unwrap_err().contains("broken"));
        assert!(now(decode_run("#s=abc")).unwrap_err().contains("#r="));
        let link = |text: &str| format!("r={}", now(crate::share::pack(text)).unwrap());
        for (text, why) in [
            ("1 nope 1 0", "'nope'"),
            ("9 direct 1 0", "format 9"),
            ("1 direct x 0", "seed"),
            ("1 direct", "first line"),
            ("1 direct 1 0\n5 0 1 s0\n4 0 2 s1", "timed before"),
            ("1 direct 1 0\n5 0 1 z", "unknown request `z`"),
            ("1 direct 1 0\n5 0 1 s99", "unknown request `s99`"),
            ("1 direct 1 0\n5 0 1", "not `at after id request`"),
            ("1 direct 1 0\n5 -1 1 p", "not one"),
        ] {
            let err = now(decode_run(&link(text))).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
        // A run with a request the link cannot carry says so.
        let mut run = Run::new(1, &DIRECT);
        run.commands.push(Command {
            at_ms: 0,
            after: 0,
            req: Request::new(1, Method::BrokerRestart),
        });
        assert!(now(encode_run(&run))
            .unwrap_err()
            .contains("broker_restart"));
    }

    #[test]
    fn real_mode_and_broken_records_cannot_travel() {
        let mut tm = TimeMachine::new(1, &DIRECT, false);
        assert_eq!(tm.available(), Err(Unavailable::Real));
        assert_eq!(tm.seek(0, 10, 0), 10);
        assert!(tm.cursor.is_none());
        let mut tm = TimeMachine::new(1, &DIRECT, true);
        let req = Request::new(1, sim_core::protocol::Method::ChannelOpen);
        tm.record(None, 0, &req);
        assert_eq!(tm.available(), Err(Unavailable::Unordered(1)));
        assert!(tm.run.commands.is_empty());
    }

    #[test]
    fn a_replayed_state_is_drawn_at_rest() {
        let mut p = Page::new(3, &DIRECT);
        p.run(200.0);
        p.act(Action::Publish);
        p.act(Action::Publish);
        p.run(100.0);
        let mut m = p.model.clone();
        m.settle();
        assert!(m
            .tokens
            .iter()
            .all(|t| t.pos == t.stage.target() && t.stage < Stage::Acked));
        assert_eq!((m.ready_count(), m.unacked_count()), (1, 1));
    }
}
