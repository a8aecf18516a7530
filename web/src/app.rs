//! The Yew shell: components that draw the [`Model`] and turn clicks into
//! [`Action`]s. State is a `Reducible` (in the manner of Yew's `function_todomvc`
//! example); the reducer applies the action to the pure model and sends the
//! requests the model returns through the one [`BrokerLink`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use yew::prelude::*;

use crate::build_time::{InPast, Input};
use crate::frame_clock::FrameClock;
use crate::history::{Acted, Replay, Unavailable};
use crate::i18n::{t, Lang, Ui, UiAction, LANGS};
use crate::inspector::fill;
use crate::label::{place_label, text_box, Rect};
use crate::lesson::{LessonAction, LessonInput};
use crate::lesson_view::{self, LessonSlot};
use crate::link::{BrokerLink, LinkMsg, SimLink, WsLink};
use crate::model::{Action, LinkStatus, Mode, Model};
use crate::scene::{self, Scene, NODE_X, QUEUE_H, QUEUE_SLOTS, QUEUE_W, WIDTH};
use crate::timeline::{TimeAction, TimeMachine};
use crate::timeline_view;
use crate::workbench::WbAction;
use crate::workbench_view::{self, BuildSlot};
use sim_core::protocol::ExchangeKind;

/// The link the reducer sends through (shared, replaced on a mode switch),
/// and the timeline recording what goes through it.
pub struct LinkSlot {
    pub(crate) link: RefCell<Option<BrokerLink>>,
    pub(crate) generation: Cell<u32>,
    pub(crate) time: RefCell<TimeMachine>,
    /// The mode of the newest link: a second click on the toggle before the
    /// page re-rendered must see the first one's mode, not the render's.
    pub(crate) mode: Cell<Mode>,
}

impl Default for LinkSlot {
    fn default() -> Self {
        LinkSlot {
            link: RefCell::new(None),
            generation: Cell::new(0),
            time: RefCell::new(TimeMachine::new(0, &scene::DIRECT, true)),
            mode: Cell::new(Mode::Sim),
        }
    }
}

pub struct AppState {
    pub model: Rc<Model>,
    link: Rc<LinkSlot>,
    /// The open lesson (if any); its link is the one in `link`.
    pub lesson: LessonSlot,
    pub ui: Ui,
    /// A message for the user (bad import, broken shared link).
    pub notice: Option<Rc<str>>,
    /// The export panel: (file name, text).
    pub export: Option<Rc<(String, String)>>,
    /// The Build page (if open); its link is the one in `link`.
    pub build: BuildSlot,
}

impl AppState {
    pub fn link_slot(&self) -> Rc<LinkSlot> {
        self.link.clone()
    }

    pub fn build_open(&self) -> bool {
        self.build
            .try_borrow()
            .map(|b| b.is_some())
            .unwrap_or(false)
    }

    pub fn lesson_open(&self) -> bool {
        self.lesson
            .try_borrow()
            .map(|l| l.is_some())
            .unwrap_or(false)
    }

    fn send_all(&self, out: Vec<sim_core::protocol::Request>) {
        if out.is_empty() {
            return;
        }
        if let Ok(slot) = self.link.link.try_borrow() {
            if let Some(link) = slot.as_ref() {
                for req in out {
                    link.send(req);
                }
            }
        }
    }

    pub(crate) fn redrawn_parts(&self) -> AppState {
        AppState {
            model: self.model.clone(),
            link: self.link.clone(),
            lesson: self.lesson.clone(),
            ui: self.ui,
            notice: self.notice.clone(),
            export: self.export.clone(),
            build: self.build.clone(),
        }
    }

    fn redrawn(&self, ui: Ui) -> Rc<Self> {
        Rc::new(AppState {
            model: self.model.clone(),
            link: self.link.clone(),
            lesson: self.lesson.clone(),
            ui,
            notice: self.notice.clone(),
            export: self.export.clone(),
            build: self.build.clone(),
        })
    }

    /// Feeds the live Build page one input: applied, recorded, its requests
    /// sent. A step at the live end pauses once its event has come.
    fn build_input(self: Rc<Self>, input: Input) -> Rc<Self> {
        let (out, redraw, stepped) = match self.build.try_borrow_mut() {
            Ok(mut b) => match b.as_mut() {
                Some(open) => {
                    let (out, redraw) = open.wb.feed(&input);
                    let event = open.time.record(input, &open.wb);
                    (out, redraw || event, event && open.time.step_reached())
                }
                None => (Vec::new(), false, false),
            },
            Err(_) => (Vec::new(), false, false),
        };
        self.send_all(out);
        if stepped {
            let speed = self.model.speed;
            return self.reduce(Action::SetClock {
                paused: true,
                speed,
            });
        }
        if redraw {
            self.redrawn(self.ui)
        } else {
            self
        }
    }

    /// Whether the open lesson shows its past.
    fn lesson_in_past(&self) -> bool {
        self.lesson
            .try_borrow()
            .map(|l| l.as_ref().is_some_and(|open| open.time.in_past()))
            .unwrap_or(false)
    }

    /// Whether the open Build page or lesson shows its past while holding
    /// a run that was playing (see [`leave_past`]).
    fn past_holds_run(&self) -> bool {
        let build = self
            .build
            .try_borrow()
            .map(|b| b.as_ref().is_some_and(|open| open.time.holds_run()));
        let lesson = self
            .lesson
            .try_borrow()
            .map(|l| l.as_ref().is_some_and(|open| open.time.holds_run()));
        build.unwrap_or(false) || lesson.unwrap_or(false)
    }

    /// Whether the Build page shows its past.
    fn build_in_past(&self) -> bool {
        self.build
            .try_borrow()
            .map(|b| b.as_ref().is_some_and(|open| open.time.in_past()))
            .unwrap_or(false)
    }

    /// A user's action on the Build page. While the past is shown, selecting
    /// looks at the past; anything else changes the present, so the page
    /// goes live first. The link's frames always go to the live page.
    fn build_action(self: Rc<Self>, a: WbAction) -> Rc<Self> {
        let live = matches!(a, WbAction::Frames { .. } | WbAction::Link { .. });
        if live || !self.build_in_past() {
            return self.build_input(Input::act(a));
        }
        let what = crate::build_time::in_past(&a);
        let slot = self.build.clone();
        let resume = match slot.try_borrow_mut() {
            Ok(mut b) => match (b.as_mut(), what) {
                (Some(open), InPast::Look(sel)) => {
                    if let Some(past) = open.time.shown_mut() {
                        past.select_view(sel);
                    }
                    drop(b);
                    return self.redrawn(self.ui);
                }
                (Some(open), InPast::GoLive) => {
                    let total = open.time.total();
                    open.time.seek(total);
                    open.time.take_resume()
                }
                _ => return self,
            },
            Err(_) => return self,
        };
        self.build_input(Input::act(a)).resumed(resume)
    }

    /// The live run plays again if `resume` (it was playing before the past
    /// was shown).
    fn resumed(self: Rc<Self>, resume: bool) -> Rc<Self> {
        if !resume {
            return self;
        }
        let speed = self.model.speed;
        self.reduce(Action::SetClock {
            paused: false,
            speed,
        })
    }

    /// A tick of the page's clock on the Build page: the live page's clock,
    /// or the past playing.
    fn build_tick(self: Rc<Self>, now_ms: f64) -> Rc<Self> {
        let (paused, speed) = (self.model.paused, self.model.speed);
        let played = match self.build.try_borrow_mut() {
            Ok(mut b) => match b.as_mut() {
                Some(open) if open.time.in_past() => {
                    let changed = open.time.play_tick(now_ms, speed);
                    Some((changed, open.time.take_resume()))
                }
                _ => None,
            },
            Err(_) => Some((false, false)),
        };
        match played {
            Some((true, resume)) => self.redrawn(self.ui).resumed(resume),
            Some((false, _)) => self,
            None => self.build_input(Input::Tick {
                wall_ms: now_ms,
                paused,
                speed,
            }),
        }
    }

    /// The time controls on the Build page (see [`crate::history`]).
    fn build_time(self: Rc<Self>, ta: TimeAction) -> Rc<Self> {
        let (slot, playing) = (self.build.clone(), !self.model.paused);
        self.time_in(&slot, |open| {
            let busy = crate::build_time::busy(&open.wb);
            let acted = open.time.act(&ta, busy, playing);
            (acted, open.time.in_past(), open.time.take_resume())
        })
    }

    /// The time controls in a lesson (see [`crate::history`]).
    fn lesson_time(self: Rc<Self>, ta: TimeAction) -> Rc<Self> {
        let (slot, playing) = (self.lesson.clone(), !self.model.paused);
        self.time_in(&slot, |open| {
            let busy = !open.player.is_done() && !open.player.waiting_for_answer();
            let acted = open.time.act(&ta, busy, playing);
            (acted, open.time.in_past(), open.time.take_resume())
        })
    }

    /// Runs `act` on what `slot` holds (the open Build page or lesson), then
    /// [`AppState::time_acted`].
    fn time_in<T>(
        self: Rc<Self>,
        slot: &RefCell<Option<T>>,
        act: impl FnOnce(&mut T) -> (Result<Acted, Unavailable>, bool, bool),
    ) -> Rc<Self> {
        let acted = match slot.try_borrow_mut() {
            Ok(mut open) => open.as_mut().map(act),
            Err(_) => None,
        };
        match acted {
            Some((acted, past, resume)) => self.time_acted(acted, past).resumed(resume),
            None => self,
        }
    }

    /// What the page does after the Build page's or a lesson's timeline
    /// acted: the live run holds while the past is shown, runs for a step.
    fn time_acted(self: Rc<Self>, acted: Result<Acted, Unavailable>, past: bool) -> Rc<Self> {
        let speed = self.model.speed;
        let notice = |text: String| Action::Notice(Some(text));
        match acted {
            Err(why) => {
                let text = timeline_view::history_reason(why, self.ui.lang);
                self.reduce(notice(text))
            }
            Ok(Acted::NothingMoving) => {
                let text = t(self.ui.lang, "tl-step-nothing").to_string();
                self.reduce(notice(text))
            }
            Ok(Acted::RunForStep) => self.reduce(Action::SetClock {
                paused: false,
                speed,
            }),
            Ok(Acted::Shown) if past && !self.model.paused => self.reduce(Action::SetClock {
                paused: true,
                speed,
            }),
            Ok(Acted::Shown) => self.redrawn(self.ui),
        }
    }

    /// The user paused or played: a pending step of the Build page or of
    /// a lesson is called off.
    fn cancel_steps(&self) {
        if let Ok(mut b) = self.build.try_borrow_mut() {
            if let Some(open) = b.as_mut() {
                open.time.cancel_step();
            }
        }
        if let Ok(mut l) = self.lesson.try_borrow_mut() {
            if let Some(open) = l.as_mut() {
                open.time.cancel_step();
            }
        }
    }

    /// Play or pause the past of the Build page or of a lesson.
    fn toggle_past(self: Rc<Self>) -> Rc<Self> {
        if let Ok(mut b) = self.build.try_borrow_mut() {
            if let Some(open) = b.as_mut() {
                open.time.toggle_play(now_ms());
            }
        }
        if let Ok(mut l) = self.lesson.try_borrow_mut() {
            if let Some(open) = l.as_mut() {
                open.time.toggle_play(now_ms());
            }
        }
        self.redrawn(self.ui)
    }

    /// A batch of frames from the link: each applied to one copy of the model
    /// in order, the requests it causes sent (and recorded) before the next,
    /// exactly as if each frame were its own action. A burst of publishes
    /// makes thousands of frames at once; copying the model for each of them
    /// was most of the time the page spent on the burst.
    fn apply_frames(
        self: Rc<Self>,
        generation: u32,
        frames: Vec<sim_core::protocol::ServerFrame>,
    ) -> Rc<Self> {
        let mut model = (*self.model).clone();
        let mut redraw = false;
        for frame in frames {
            let (out, changed) = model.apply(Action::Frame { generation, frame });
            redraw |= changed || !out.is_empty();
            if !out.is_empty() {
                timeline_view::send_recorded(&self.link, &model, out);
            }
            timeline_view::after_apply(&self.link, &mut model);
        }
        if !redraw {
            return self;
        }
        Rc::new(AppState {
            model: Rc::new(model),
            ..self.redrawn_parts()
        })
    }

    /// A tick while a lesson is open: its clock moves, its requests go out.
    fn lesson_tick(self: &Rc<Self>, now_ms: f64) -> Option<Rc<Self>> {
        let mut guard = self.lesson.try_borrow_mut().ok()?;
        let open = guard.as_mut()?;
        if open.time.in_past() {
            // The live lesson holds; the past plays if asked.
            let changed = open.time.play_tick(now_ms, self.model.speed);
            let resume = open.time.take_resume();
            drop(guard);
            return Some(if changed {
                self.redrawn(self.ui).resumed(resume)
            } else {
                self.clone()
            });
        }
        let slot = self.link.link.try_borrow().ok()?;
        let link = slot.as_ref()?;
        let now = match link.sim_now_ms() {
            Some(v) => v,
            None => (lesson_view::wall_ms() - open.started_wall).max(0.0) as u64,
        };
        let before = lesson_view::fingerprint(&open.player);
        let moving = !open.player.tokens.is_empty();
        let (out, _) = open.input(LessonInput::Tick(now));
        link.set_cap(open.player.hold_ms());
        for req in out {
            link.send(req);
        }
        let after = lesson_view::fingerprint(&open.player);
        drop(slot);
        drop(guard);
        Some(if before != after || moving {
            self.redrawn(self.ui)
        } else {
            self.clone()
        })
    }
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        // The Build page has its own clock, clients and timeline; the
        // scene's timeline rests.
        let action = if self.build_open() {
            match action {
                Action::Build(a) => return self.build_action(a),
                Action::Tick { now_ms } => return self.build_tick(now_ms),
                // P publishes from the selected producer (or the first one),
                // as its button does (from the past, the page goes live first).
                Action::Publish => {
                    let producer =
                        self.build.try_borrow().ok().and_then(|b| {
                            b.as_ref().and_then(|open| open.shown().producer_for_key())
                        });
                    return match producer {
                        Some(p) => self.build_action(WbAction::Publish(p)),
                        None => self,
                    };
                }
                Action::Time(ta) => return self.build_time(ta),
                // → and ← step the Build page's timeline.
                Action::Lesson(LessonAction::Next) => return self.build_time(TimeAction::Step),
                Action::Lesson(LessonAction::Back) => return self.build_time(TimeAction::StepBack),
                Action::Lesson(_) => return self,
                Action::TogglePause if self.build_in_past() => return self.toggle_past(),
                Action::TogglePause => {
                    self.cancel_steps();
                    Action::TogglePause
                }
                a => a,
            }
        } else {
            action
        };
        let lesson_open = self.lesson_open();
        let action = match action {
            // Outside a lesson, → and ← step the timeline.
            Action::Lesson(LessonAction::Next) if !lesson_open => Action::Time(TimeAction::Step),
            Action::Lesson(LessonAction::Back) if !lesson_open => {
                Action::Time(TimeAction::StepBack)
            }
            a => a,
        };
        let action = match action {
            Action::Time(ta) if lesson_open => return self.lesson_time(ta),
            Action::TogglePause if lesson_open && self.lesson_in_past() => {
                return self.toggle_past();
            }
            Action::TogglePause if lesson_open => {
                self.cancel_steps();
                Action::SetClock {
                    paused: !self.model.paused,
                    speed: self.model.speed,
                }
            }
            // Looking at a lesson's past: nothing is published into it.
            Action::Publish if lesson_open && self.lesson_in_past() => return self,
            Action::Time(_) => return timeline_view::reduce(self, action),
            Action::Tick { .. } | Action::TogglePause | Action::SetClock { .. }
                if !lesson_open && !self.build_open() && timeline_view::in_past(&self) =>
            {
                return timeline_view::reduce(self, action);
            }
            // Looking at the past: nothing is published into it.
            Action::Publish if timeline_view::in_past(&self) => return self,
            Action::TogglePause => Action::SetClock {
                paused: !self.model.paused,
                speed: self.model.speed,
            },
            Action::Ui(a) => {
                let mut ui = self.ui;
                ui.apply(a);
                return self.redrawn(ui);
            }
            Action::Notice(n) => {
                return Rc::new(AppState {
                    notice: n.map(Rc::from),
                    ..self.redrawn_parts()
                });
            }
            Action::Export(e) => {
                return Rc::new(AppState {
                    export: e.map(Rc::new),
                    ..self.redrawn_parts()
                });
            }
            Action::Lesson(la) => {
                let (out, redraw, stepped, resume) = match self.lesson.try_borrow_mut() {
                    Ok(mut l) => match l.as_mut() {
                        Some(open) => {
                            let (out, redraw) = lesson_view::reduce(open, la);
                            let stepped = open.time.step_reached();
                            (out, redraw, stepped, open.time.take_resume())
                        }
                        None => (Vec::new(), false, false, false),
                    },
                    Err(_) => (Vec::new(), false, false, false),
                };
                self.send_all(out);
                if resume {
                    // An answer took the lesson back to live: it plays on.
                    return self.redrawn(self.ui).resumed(true);
                }
                if stepped {
                    // A step at the live end has got its event: pause there.
                    let speed = self.model.speed;
                    return self.reduce(Action::SetClock {
                        paused: true,
                        speed,
                    });
                }
                return if redraw { self.redrawn(self.ui) } else { self };
            }
            Action::Tick { now_ms } if self.lesson_open() => {
                return self.lesson_tick(now_ms).unwrap_or(self);
            }
            a => a,
        };
        if let Action::Frames { generation, frames } = action {
            return self.apply_frames(generation, frames);
        }
        // Idle ticks (nothing on the move) are the common case: no clone, no render.
        if matches!(action, Action::Tick { .. }) && self.model.tokens.is_empty() {
            return self;
        }
        if let Action::SetClock { paused, speed } = action {
            if let Ok(slot) = self.link.link.try_borrow() {
                if let Some(link) = slot.as_ref() {
                    link.set_clock(!paused, speed);
                }
            }
        }
        let mut model = (*self.model).clone();
        let (out, changed) = model.apply(action);
        let sent = !out.is_empty();
        if sent {
            timeline_view::send_recorded(&self.link, &model, out);
        }
        timeline_view::after_apply(&self.link, &mut model);
        if !changed && !sent {
            return self;
        }
        Rc::new(AppState {
            model: Rc::new(model),
            link: self.link.clone(),
            lesson: self.lesson.clone(),
            ui: self.ui,
            notice: self.notice.clone(),
            export: self.export.clone(),
            build: self.build.clone(),
        })
    }
}

/// Runs `leave`, which closes or replaces the open Build page or lesson
/// (Reset, another scene, the mode toggle...). If that page was showing its
/// past while holding a run that was playing, the run plays on afterwards:
/// the pause was the past's, not the user's. The clock is set last, so it
/// reaches whatever link `leave` made.
pub(crate) fn leave_past(state: &UseReducerHandle<AppState>, leave: impl FnOnce()) {
    let held = state.past_holds_run();
    leave();
    if held {
        state.dispatch(Action::SetClock {
            paused: false,
            speed: state.model.speed,
        });
    }
}

/// Makes the link for `mode` and points the reducer at it.
pub(crate) fn switch_mode(state: &UseReducerHandle<AppState>, mode: Mode, scene: &'static Scene) {
    let slot = state.link.clone();
    let generation = slot.generation.get().wrapping_add(1);
    slot.generation.set(generation);
    // Drop the old link first (closes its socket, stops its clock).
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = None;
    }
    state.dispatch(Action::SwitchMode {
        mode,
        generation,
        scene,
    });
    let dispatcher = state.dispatcher();
    let sink: crate::link::Sink = Rc::new(move |msg: LinkMsg| {
        dispatcher.dispatch(match msg {
            LinkMsg::Frames(frames) => Action::Frames { generation, frames },
            LinkMsg::Link(event) => Action::Link { generation, event },
        })
    });
    // The simulation's seed is the link's generation; the timeline records it.
    let seed = u64::from(generation);
    slot.mode.set(mode);
    if let Ok(mut tm) = slot.time.try_borrow_mut() {
        tm.reset(seed, scene, mode == Mode::Sim);
    }
    let link = match mode {
        Mode::Sim => BrokerLink::Sim(SimLink::new(seed, sink)),
        Mode::Real => BrokerLink::Ws(WsLink::new(sink)),
    };
    match slot.link.try_borrow_mut() {
        Ok(mut l) => *l = Some(link),
        Err(_) => web_sys::console::error_1(&"link slot busy: mode switch ignored".into()),
    };
}

/// Back from a lesson to the playground scene `sc`.
fn close_lesson(state: &UseReducerHandle<AppState>, sc: &'static Scene) {
    if let Ok(mut l) = state.lesson.try_borrow_mut() {
        *l = None;
    }
    if let Ok(slot) = state.link.link.try_borrow() {
        if let Some(link) = slot.as_ref() {
            link.set_cap(None);
        }
    }
    switch_mode(state, state.model.mode, sc);
}

/// The playground scene (or the open Build page) again, in `mode`.
fn reopen(state: &UseReducerHandle<AppState>, mode: Mode) {
    let build = workbench_view::close_build(state);
    switch_mode(state, mode, state.model.scene);
    if let Some(wb) = build {
        workbench_view::open_build(state, wb.sc, mode, wb.moved);
    }
}

/// Listens for the "p" key on the document while it lives.
struct KeyListener {
    closure: Option<wasm_bindgen::closure::Closure<dyn FnMut(web_sys::KeyboardEvent)>>,
}

impl Drop for KeyListener {
    fn drop(&mut self) {
        use wasm_bindgen::JsCast;
        if let (Some(closure), Some(doc)) = (
            self.closure.take(),
            web_sys::window().and_then(|w| w.document()),
        ) {
            let _ = doc
                .remove_event_listener_with_callback("keydown", closure.as_ref().unchecked_ref());
        }
    }
}

fn publish_key_listener(dispatcher: UseReducerDispatcher<AppState>) -> KeyListener {
    use wasm_bindgen::JsCast;
    let closure = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
        move |ev: web_sys::KeyboardEvent| {
            if ev.ctrl_key() || ev.alt_key() || ev.meta_key() || ev.repeat() {
                return;
            }
            // Typing in a field is not a shortcut.
            let typing = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .map(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
                .unwrap_or(false);
            if typing {
                return;
            }
            match ev.key().as_str() {
                "p" | "P" => dispatcher.dispatch(Action::Publish),
                " " => {
                    ev.prevent_default();
                    dispatcher.dispatch(Action::TogglePause);
                }
                "ArrowRight" => dispatcher.dispatch(Action::Lesson(LessonAction::Next)),
                "ArrowLeft" => dispatcher.dispatch(Action::Lesson(LessonAction::Back)),
                "?" => dispatcher.dispatch(Action::Ui(UiAction::Help(None))),
                "Escape" => dispatcher.dispatch(Action::Ui(UiAction::Help(Some(false)))),
                _ => {}
            }
        },
    );
    let added = web_sys::window()
        .and_then(|w| w.document())
        .map(|doc| {
            doc.add_event_listener_with_callback("keydown", closure.as_ref().unchecked_ref())
                .is_ok()
        })
        .unwrap_or(false);
    KeyListener {
        closure: added.then_some(closure),
    }
}

/// The language the page opens in (see [`Lang::first`]).
fn browser_lang() -> Lang {
    let Some(w) = web_sys::window() else {
        return Lang::default();
    };
    let saved = w
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(crate::i18n::LANG_KEY).ok().flatten());
    let preferred: Vec<String> = w
        .navigator()
        .languages()
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    Lang::first(saved.as_deref(), &preferred)
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| AppState {
        model: Rc::new(Model::new(Mode::Sim, 0, &scene::DIRECT)),
        link: Rc::new(LinkSlot::default()),
        lesson: Rc::new(RefCell::new(None)),
        ui: Ui {
            lang: browser_lang(),
            ..Ui::default()
        },
        notice: None,
        export: None,
        build: Rc::new(RefCell::new(None)),
    });

    // Start in simulation, and drive the animation clock.
    {
        let state = state.clone();
        use_effect_with((), move |_| {
            switch_mode(&state, Mode::Sim, &scene::DIRECT);
            let dispatcher = state.dispatcher();
            // One tick per drawn frame (see `frame_clock`).
            let ticker =
                FrameClock::new(move || dispatcher.dispatch(Action::Tick { now_ms: now_ms() }));
            // "P" publishes too (a presenter's clicker or a keyboard on the desk).
            let keys = publish_key_listener(state.dispatcher());
            // The lesson list (the lessons themselves are fetched when opened).
            lesson_view::load_catalog(state.dispatcher());
            // A shared link (#s=...) opens its scene, now and when the fragment changes.
            crate::files::open_fragment(&state);
            let hash = crate::files::hash_listener(state.clone());
            move || {
                drop(ticker);
                drop(keys);
                drop(hash);
            }
        });
    }

    let on_toggle = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            let next = match state.link.mode.get() {
                Mode::Sim => Mode::Real,
                Mode::Real => Mode::Sim,
            };
            let open = state
                .lesson
                .try_borrow()
                .ok()
                .and_then(|l| l.as_ref().map(|l| l.player.sc.clone()));
            leave_past(&state, || {
                let build = workbench_view::close_build(&state);
                switch_mode(&state, next, state.model.scene);
                if let Some(sc) = open {
                    lesson_view::open_lesson(&state, sc, next);
                }
                if let Some(wb) = build {
                    workbench_view::open_build(&state, wb.sc, next, wb.moved);
                }
            })
        })
    };
    let on_open_lesson = {
        let state = state.clone();
        Callback::from(move |id: String| {
            lesson_view::open_by_id(&state, id);
            state.dispatch(Action::Ui(UiAction::Picker(Some(false))));
        })
    };
    let on_close_lesson = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            leave_past(&state, || close_lesson(&state, state.model.scene))
        })
    };
    let on_restart_lesson = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| lesson_view::restart_lesson(&state))
    };
    let lesson_dispatch = {
        let state = state.clone();
        Callback::from(move |a: LessonAction| state.dispatch(Action::Lesson(a)))
    };
    let ui_button = |a: UiAction| {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(Action::Ui(a)))
    };
    let on_lang = {
        let state = state.clone();
        Callback::from(move |e: Event| {
            use wasm_bindgen::JsCast;
            if let Some(sel) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
            {
                if let Some(l) = crate::i18n::Lang::from_code(&sel.value()) {
                    // Kept for the next visit; a browser that keeps nothing still switches.
                    if let Some(store) =
                        web_sys::window().and_then(|w| w.local_storage().ok().flatten())
                    {
                        let _ = store.set_item(crate::i18n::LANG_KEY, l.code());
                    }
                    state.dispatch(Action::Ui(UiAction::Lang(l)));
                }
            }
        })
    };
    let on_retry = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| reopen(&state, Mode::Real))
    };
    let on_use_sim = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| reopen(&state, Mode::Sim))
    };
    let on_build = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            if !state.build_open() {
                state.dispatch(Action::Ui(UiAction::Picker(Some(false))));
                leave_past(&state, || {
                    workbench_view::open_build(
                        &state,
                        crate::editor::empty(),
                        state.model.mode,
                        Default::default(),
                    )
                });
            }
        })
    };
    let on_publish = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(Action::Publish))
    };
    let on_reset = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(Action::ResetScene))
    };
    let scene_button = |sc: &'static Scene| {
        let state = state.clone();
        let lang = state.ui.lang;
        let active = state.model.scene.id == sc.id && !state.lesson_open() && !state.build_open();
        let onclick = Callback::from(move |_: MouseEvent| {
            leave_past(&state, || {
                if workbench_view::close_build(&state).is_some() {
                    switch_mode(&state, state.model.mode, sc);
                } else if state.lesson_open() {
                    close_lesson(&state, sc);
                } else if state.model.scene.id != sc.id {
                    switch_mode(&state, state.model.mode, sc);
                }
            })
        });
        html! {
            <button class={classes!("scene-choice", active.then_some("active"))}
                    data-testid={format!("scene-{}", sc.id)}
                    aria-pressed={ if active { "true" } else { "false" } }
                    onclick={onclick}>{ t(lang, sc.id) }</button>
        }
    };
    let on_dismiss = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(Action::DismissError))
    };

    let m = &state.model;
    let real = m.mode == Mode::Real;
    let failed = matches!(
        m.status,
        LinkStatus::BridgeUnreachable(_) | LinkStatus::BrokerUnreachable(_)
    );
    let ui = state.ui;
    let lang = ui.lang;
    let lesson_guard = state.lesson.try_borrow().ok();
    let lesson = lesson_guard.as_ref().and_then(|l| l.as_ref());
    let build_guard = state.build.try_borrow().ok();
    let build = build_guard.as_ref().and_then(|b| b.as_ref());
    let (status_kind, status_label) = match (lesson, build.map(|open| &open.wb)) {
        (None, Some(wb)) => match (wb.real, wb.link_up, &wb.notice) {
            (false, _, _) if m.paused => ("simulation", t(lang, "sim-paused").to_string()),
            (false, _, _) => ("simulation", status_text(&LinkStatus::Simulation, lang)),
            (true, true, _) => ("connected", status_text(&LinkStatus::Connected, lang)),
            (true, false, Some(why)) => (
                "bridge-unreachable",
                format!("{}: {why}", t(lang, "link-failed")),
            ),
            (true, false, None) => ("connecting", status_text(&LinkStatus::Connecting, lang)),
        },
        _ => match lesson {
            Some(l) if l.player.real => match &l.link {
                None => ("connecting", status_text(&LinkStatus::Connecting, lang)),
                Some(Ok(())) => ("connected", status_text(&LinkStatus::Connected, lang)),
                Some(Err(why)) => (
                    "bridge-unreachable",
                    format!("{}: {why}", t(lang, "link-failed")),
                ),
            },
            Some(_) if m.paused => ("simulation", t(lang, "sim-paused").to_string()),
            Some(_) => ("simulation", status_text(&LinkStatus::Simulation, lang)),
            None if m.mode == Mode::Sim && m.paused => {
                (m.status.kind(), t(lang, "sim-paused").to_string())
            }
            None => (m.status.kind(), status_text(&m.status, lang)),
        },
    };
    let clock = timeline_view::controls(&state, lang);
    // While the timeline shows the past, the picture and counts are its replay.
    let past = timeline_view::shown(&state);
    let in_past = past.is_some();
    let live_error = m.error.clone();
    let m: &Model = past.as_deref().unwrap_or(m);
    let in_flight = m.in_flight_tags();

    html! {
        <div class={classes!("app", ui.projector.then_some("projector"), ui.contrast.then_some("contrast"))}
             lang={lang.code()} data-testid="app-root">
        <header class="top">
            <h1>{ "AMQP Playground" }</h1>
            <div class="mode">
                <span class={classes!("mode-label", (!real).then_some("active"))}>{ "Sim" }</span>
                <button
                    class={classes!("toggle", real.then_some("on"))}
                    role="switch"
                    aria-checked={ if real { "true" } else { "false" } }
                    aria-label={t(lang, "mode-real")}
                    data-testid="mode-toggle"
                    onclick={on_toggle}>
                    <span class="knob"></span>
                </button>
                <span class={classes!("mode-label", real.then_some("active"))}>{ "Real" }</span>
                <span class={classes!("status", status_kind)}
                      data-testid="link-status" data-status={status_kind}
                      role="status" aria-live="polite">
                    { status_label }
                </span>
                if real && (failed && lesson.is_none() && build.is_none() || build.is_some_and(|b| !b.wb.link_up && b.wb.notice.is_some())) {
                    <button class="small" data-testid="retry-real" onclick={on_retry} aria-label={t(lang, "retry-real")}>{ t(lang, "retry") }</button>
                    <button class="small" data-testid="use-sim" onclick={on_use_sim} aria-label={t(lang, "use-sim-long")}>{ t(lang, "use-sim") }</button>
                }
            </div>
            <div class="view-settings">
                <label class="lang">
                    <span class="sr-only">{ t(lang, "language") }</span>
                    <select data-testid="lang" aria-label={t(lang, "language")} onchange={on_lang}>
                        { for LANGS.iter().map(|l| html! {
                            <option value={l.code()} selected={*l == lang}>{ l.name() }</option>
                        }) }
                    </select>
                </label>
                <button class={classes!("small", ui.projector.then_some("active"))} data-testid="projector"
                        aria-pressed={ if ui.projector { "true" } else { "false" } }
                        onclick={ui_button(UiAction::Projector)}>{ t(lang, "projector") }</button>
                <button class={classes!("small", ui.contrast.then_some("active"))} data-testid="contrast"
                        aria-pressed={ if ui.contrast { "true" } else { "false" } }
                        onclick={ui_button(UiAction::Contrast)}>{ t(lang, "contrast") }</button>
                <button class="small" data-testid="help" aria-label={t(lang, "help")} aria-keyshortcuts="?"
                        onclick={ui_button(UiAction::Help(None))}>{ "?" }</button>
            </div>
        </header>
        if ui.help {
            <div class="help-overlay" role="dialog" aria-modal="true" aria-labelledby="help-title" data-testid="help-overlay">
                <div class="help-box">
                    <h2 id="help-title">{ t(lang, "help") }</h2>
                    <ul>
                        <li>{ t(lang, "help-space") }</li>
                        <li>{ t(lang, "help-right") }</li>
                        <li>{ t(lang, "help-left") }</li>
                        <li>{ t(lang, "help-p") }</li>
                        <li>{ t(lang, "help-q") }</li>
                    </ul>
                    <button class="small" onclick={ui_button(UiAction::Help(Some(false)))}>{ t(lang, "close") }</button>
                </div>
            </div>
        }
        if let Some(n) = &state.notice {
            <div class="error-banner notice" role="alert" data-testid="import-error">
                <span>{ n.to_string() }</span>
                <button class="small" onclick={{
                    let state = state.clone();
                    Callback::from(move |_: MouseEvent| state.dispatch(Action::Notice(None)))
                }} aria-label={t(lang, "close")}>{ t(lang, "close") }</button>
            </div>
        }
        if let Some(e) = &state.export {
            { crate::files::export_panel(&e.0, &e.1, lang, {
                let state = state.clone();
                Callback::from(move |_: MouseEvent| state.dispatch(Action::Export(None)))
            }) }
        }
        if let (Some(err), None, None) = (&live_error, lesson, build) {
            <div class="error-banner" role="alert" data-testid="error-banner">
                <span>{ err }</span>
                <button class="small" onclick={on_reset.clone()} aria-label={t(lang, "reset-scene-long")}>{ t(lang, "reset-scene") }</button>
                <button class="small" onclick={on_dismiss} aria-label={t(lang, "dismiss-long")}>{ t(lang, "dismiss") }</button>
            </div>
        }
        <main>
            <nav class="scenes" aria-label={t(lang, "scene")}>
                <span class="scenes-label">{ t(lang, "scene") }</span>
                { for scene::SCENES.iter().map(|sc| scene_button(sc)) }
                <button class={classes!("scene-choice", build.is_some().then_some("active"))}
                        data-testid="build-open" aria-pressed={ if build.is_some() { "true" } else { "false" } }
                        onclick={on_build}>{ crate::editor::label(lang, "build") }</button>
                <button class={classes!("scene-choice", "lessons-button", (ui.picker || lesson.is_some()).then_some("active"))}
                        data-testid="lessons-open" aria-expanded={ if ui.picker { "true" } else { "false" } }
                        onclick={ui_button(UiAction::Picker(None))}>{ t(lang, "lessons") }</button>
                <crate::compare_view::Compare lang={lang}
                    current={lesson.map_or_else(|| m.scene.id.to_string(), |l| l.player.sc.id.clone())}
                    scenario={{
                        let state = state.clone();
                        Callback::from(move |()| crate::files::current_scenario(&state))
                    }} />
            </nav>
            { crate::files::files_bar(&state, lang) }
            if ui.picker {
                { lesson_view::picker(lang, lesson.map(|l| l.player.sc.id.as_str()), on_open_lesson) }
            }
            if let Some(open) = build {
                { workbench_view::view(open.shown(), lang, {
                    let state = state.clone();
                    Callback::from(move |a: WbAction| state.dispatch(Action::Build(a)))
                }) }
                <section class="controls" aria-label={t(lang, "controls")}>
                    { clock.clone() }
                </section>
            } else if let Some(open) = lesson {
                <section class="stage" aria-label={t(lang, "message-flow")}>
                    { lesson_view::stage(open.shown(), lang) }
                </section>
                <section class="controls" aria-label={t(lang, "controls")}>
                    { clock }
                </section>
                { lesson_view::metrics(open.shown(), lang) }
                { lesson_view::panel(open, lang, lesson_dispatch, on_close_lesson, on_restart_lesson) }
            } else {
            <section class="stage" aria-label={t(lang, "message-flow")}>
                { topology(m, lang) }
            </section>
            <p class="why" data-testid="why" aria-live="polite">
                <span class="why-label">{ t(lang, "why") }</span>
                { m.why.as_ref().map_or_else(|| t(lang, "why-hint").to_string(), |w| w.text(lang)) }
            </p>
            <section class="controls" aria-label={t(lang, "controls")}>
                <button class="publish" data-testid="publish" onclick={on_publish}
                        disabled={!m.ready || in_past}
                        aria-keyshortcuts="P" title={t(lang, "publish-key")}
                    aria-label={fill(t(lang, "publish-to"), &[m.scene.exchange])}>
                    { t(lang, "publish") }
                </button>
                { clock }
                <div class="stat">
                    <span class="stat-label">{ t(lang, "published") }</span>
                    <span class="stat-value" data-testid="published-count">{ m.published }</span>
                </div>
                <div class="stat">
                    <span class="stat-label">{ t(lang, "received") }</span>
                    <span class="stat-value" data-testid="received-count">{ m.shown_received() }</span>
                </div>
                <div class="stat">
                    <span class="stat-label">{ t(lang, "in-queue") }</span>
                    <span class="stat-value">
                        <span data-testid="queue-ready">{ m.ready_count() }</span>
                        <span class="stat-sub">{ format!(" {} · ", t(lang, "ready")) }</span>
                        <span data-testid="queue-unacked">{ m.unacked_count() }</span>
                        <span class="stat-sub">{ format!(" {}", t(lang, "unacked")) }</span>
                    </span>
                </div>
                if !m.ready && m.error.is_none() && !failed {
                    <span class="hint">{ t(lang, "declaring") }</span>
                }
            </section>
            <div class="panels">
                <section class="panel" aria-labelledby="log-title">
                    <h2 id="log-title">{ t(lang, "consumer-received") }</h2>
                    <ol class="log" data-testid="consumer-log" aria-live="polite">
                        { for m.log.iter().filter(|r| !in_flight.contains(&r.delivery_tag)).map(|r| html! {
                            <li key={r.n} class={classes!(r.acked.then_some("acked"))}>
                                <span class="tag">{ format!("#{}", r.n) }</span>
                                <code class="body">{ &r.body }</code>
                                <span class="meta">
                                    { format!("{} · tag {}{}", r.consumer_tag, r.delivery_tag, if r.redelivered { " · redelivered" } else { "" }) }
                                    { if r.acked { " · acked ✓" } else { " · unacked" } }
                                </span>
                            </li>
                        }) }
                        if m.shown_received() == 0 {
                            <li class="empty">{ t(lang, "nothing-received") }</li>
                        }
                    </ol>
                </section>
                <section class="panel" aria-labelledby="events-title">
                    <h2 id="events-title">{ t(lang, "broker-events") }</h2>
                    <ol class="events" data-testid="event-log">
                        { for m.events.iter().take(40).map(|e| html! {
                            <li class={classes!("ev", format!("ev-{}", e.kind))}>
                                <span class="ev-kind">{ e.kind }</span>
                                <span class="ev-text">{ &e.text }</span>
                            </li>
                        }) }
                    </ol>
                </section>
            </div>
            }
        </main>
        </div>
    }
}

/// The header's link status in the page language.
fn status_text(status: &LinkStatus, lang: Lang) -> String {
    match status {
        LinkStatus::Simulation => t(lang, "st-sim").to_string(),
        LinkStatus::Connecting => t(lang, "st-connecting").to_string(),
        LinkStatus::BridgeConnected => t(lang, "st-bridge").to_string(),
        LinkStatus::Connected => t(lang, "st-connected").to_string(),
        LinkStatus::BridgeUnreachable(why) => format!("{}: {why}", t(lang, "st-no-bridge")),
        LinkStatus::BrokerUnreachable(why) => format!("{}: {why}", t(lang, "st-no-broker")),
    }
}

/// A label above an edge: a caption and, if any, the key in large monospace.
fn edge_label(x: f64, y: f64, caption: &str, key: Option<&str>, testid: String) -> Html {
    let x = format!("{x:.1}");
    html! {
        <g class="edge-label" data-testid={testid}>
            // A caption longer than "routing key" (Russian, Ukrainian) is set smaller.
            <text x={x.clone()} y={format!("{:.1}", y - 40.0)}
                  class={classes!("edge-caption", (caption.chars().count() > 11).then_some("long"))}>{ caption }</text>
            if let Some(key) = key {
                <text x={x} y={format!("{:.1}", y - 12.0)} class="key">{ key }</text>
            }
        </g>
    }
}

fn line(class: &'static str, x1: f64, y1: f64, x2: f64, y2: f64) -> Html {
    html! {
        <line class={class} x1={format!("{x1:.1}")} y1={format!("{y1:.1}")}
              x2={format!("{x2:.1}")} y2={format!("{y2:.1}")} marker-end="url(#arrow)" />
    }
}

/// Radius of a message's circle in the scene.
const TOKEN_R: f64 = 14.0;

/// Labels are placed while fewer boxes than this are taken: past it the
/// picture is a crowd whose labels nobody reads, and placing more would cost
/// every frame of a burst time for nothing.
const MAX_LABEL_BOXES: usize = 160;

/// The boxes of the scene's fixed text (node names, captions, edge labels),
/// which messages' labels keep clear of. The offsets are the ones
/// [`topology`] draws them at.
fn scene_text_boxes(
    sc: &Scene,
    fanout: bool,
    lang: Lang,
    binding_label: impl Fn(f64) -> (f64, f64),
) -> Vec<Rect> {
    let [px, ex, qx, cx] = NODE_X;
    let cy = sc.center_y();
    let mut out = vec![
        text_box(px, cy - 6.0, 27.0, "Producer"),
        text_box(px, cy + 24.0, 20.0, sc.producer),
        text_box(ex, cy - 4.0, 27.0, sc.exchange),
        text_box(ex, cy + 24.0, 20.0, sc.kind.as_str()),
        text_box(ex, cy + 84.0, 21.0, "exchange"),
    ];
    let publish_x = (px + 85.0 + ex - 62.0) / 2.0;
    let publish = t(
        lang,
        if fanout {
            "sc-publish"
        } else {
            "sc-routing-key"
        },
    );
    out.push(text_box(publish_x, cy - 40.0, 20.0, publish));
    if !fanout {
        out.push(text_box(publish_x, cy - 12.0, 27.0, sc.routing_key));
    }
    for (i, q) in sc.queues.iter().enumerate() {
        let y = sc.lane_y(i);
        let (lx, ly) = binding_label(y);
        let binding = t(lang, if fanout { "sc-bound" } else { "sc-binding-key" });
        out.push(text_box(lx, ly - 40.0, 20.0, binding));
        if !fanout {
            out.push(text_box(lx, ly - 12.0, 27.0, q.binding_key));
        }
        out.push(text_box(qx, y - QUEUE_H / 2.0 - 14.0, 27.0, q.name));
        out.push(text_box(
            qx,
            y + QUEUE_H / 2.0 + 30.0,
            21.0,
            &queue_caption(lang, 10, 10),
        ));
        out.push(text_box(qx - QUEUE_W / 2.0 + 24.0, y + 8.0, 20.0, "+0000"));
        out.push(text_box(
            (qx + QUEUE_W / 2.0 + cx - 85.0) / 2.0,
            y - 40.0,
            20.0,
            t(lang, "sc-deliver"),
        ));
        out.push(text_box(cx, y - 6.0, 27.0, "Consumer"));
        out.push(text_box(cx, y + 24.0, 20.0, q.consumer_tag));
        out.push(text_box(cx, y + 80.0, 21.0, &received_caption(lang, 100)));
    }
    out
}

/// A queue's caption: "ready 3 · unacked 1".
fn queue_caption(lang: Lang, ready: usize, unacked: usize) -> String {
    format!(
        "{} {ready} · {} {unacked}",
        t(lang, "ready"),
        t(lang, "unacked")
    )
}

/// A consumer's caption: "received 4".
fn received_caption(lang: Lang, received: u64) -> String {
    format!("{} {received}", t(lang, "received"))
}

/// The scene as SVG, with the messages on their way.
fn topology(m: &Model, lang: Lang) -> Html {
    let sc = m.scene;
    let view_box = format!("0 0 {WIDTH} {:.0}", sc.height());
    let cy = sc.center_y();
    let [px, ex, qx, cx] = NODE_X;
    let fanout = sc.kind == ExchangeKind::Fanout;

    // Where each binding's label sits: on a slanted edge, where the edge is
    // at label_x.
    let binding_label = |y: f64| {
        let (bx1, by1, bx2) = (ex + 62.0, cy, qx - QUEUE_W / 2.0 - 4.0);
        let label_x = (bx1 + bx2) / 2.0 + 10.0;
        let below = if y < cy {
            -4.0
        } else if y > cy {
            66.0
        } else {
            0.0
        };
        (
            label_x,
            by1 + (y - by1) * ((label_x - bx1) / (bx2 - bx1)) + below,
        )
    };
    let publish_label_x = (px + 85.0 + ex - 62.0) / 2.0;
    let deliver_label_x = (qx + QUEUE_W / 2.0 + cx - 85.0) / 2.0;

    // Messages at one spot are drawn as one pile (`×n`).
    let drawing = m.drawing();
    let mut avoid = scene_text_boxes(sc, fanout, lang, binding_label);
    let tokens: Vec<Html> = drawing
        .piles
        .iter()
        .map(|p| {
            let (x, y) = (p.x, p.y);
            let label = p.label();
            // A pile grows with what it holds: 10 → 18 px, 100 → 22, 1,000 → 26.
            let r = TOKEN_R + 4.0 * (p.count as f64).log10();
            // A label that would cover a name, a key or another label is left out.
            let spot = (avoid.len() < MAX_LABEL_BOXES)
                .then(|| place_label(x, y, r, &label, &mut avoid))
                .flatten();
            html! {
                <g key={p.token.key} class={classes!(p.look.class(), (p.count > 1).then_some("pile"))}
                   opacity={format!("{:.2}", p.opacity)} data-n={p.count.to_string()}
                   transform={format!("translate({x:.1},{y:.1})")}>
                    <circle r={format!("{r:.1}")} />
                    if let Some((lx, ly, anchor)) = spot {
                        <text x={format!("{:.1}", lx - x)} y={format!("{:.1}", ly - y)}
                              style={format!("text-anchor:{anchor}")} class="token-label">{ label }</text>
                    }
                </g>
            }
        })
        .collect();

    let lanes = sc.queues.iter().enumerate().map(|(i, q)| {
        let y = sc.lane_y(i);
        let (ready, unacked) = m.lane_counts(i);
        let overflow = drawing.overflow.get(i).copied().unwrap_or(0);
        let received = m.shown_received_in(i);
        let (bx1, by1, bx2) = (ex + 62.0, cy, qx - QUEUE_W / 2.0 - 4.0);
        let (label_x, label_y) = binding_label(y);
        html! {
            <g class="lane" key={q.name}>
                { line("edge binding", bx1, by1, bx2, y) }
                if fanout {
                    { edge_label(label_x, label_y, t(lang, "sc-bound"), None, format!("binding-{}", q.name)) }
                } else {
                    { edge_label(label_x, label_y, t(lang, "sc-binding-key"), Some(q.binding_key), format!("binding-{}", q.name)) }
                }
                { line("edge", qx + QUEUE_W / 2.0, y, cx - 87.0, y) }
                { edge_label(deliver_label_x, y, t(lang, "sc-deliver"), None, format!("deliver-{}", q.name)) }
                <g class="node queue" transform={format!("translate({qx},{y})")}>
                    <rect x={(-QUEUE_W / 2.0).to_string()} y={(-QUEUE_H / 2.0).to_string()}
                          width={QUEUE_W.to_string()} height={QUEUE_H.to_string()} rx="10" />
                    { for (1..QUEUE_SLOTS).map(|i| {
                        let x = QUEUE_W / 2.0 - 7.0 - 30.0 * i as f64;
                        html! { <line class="slot" x1={x.to_string()} x2={x.to_string()}
                                      y1={(-QUEUE_H / 2.0 + 10.0).to_string()} y2={(QUEUE_H / 2.0 - 10.0).to_string()} /> }
                    }) }
                    <text y={(-QUEUE_H / 2.0 - 14.0).to_string()} class="node-title">{ q.name }</text>
                    <text y={(QUEUE_H / 2.0 + 30.0).to_string()} class="node-caption"
                          data-testid={format!("counts-{}", q.name)}>
                        { queue_caption(lang, ready, unacked) }
                    </text>
                    if overflow > 0 {
                        <text x={(-QUEUE_W / 2.0 + 24.0).to_string()} y="8" class="overflow">{ format!("+{overflow}") }</text>
                    }
                </g>
                <g class="node consumer" transform={format!("translate({cx},{y})")}>
                    <rect x="-85" y="-48" width="170" height="96" rx="16" />
                    <text y="-6" class="node-title">{ "Consumer" }</text>
                    <text y="24" class="node-sub">{ q.consumer_tag }</text>
                    <text y="80" class="node-caption">{ received_caption(lang, received) }</text>
                </g>
            </g>
        }
    });

    let routes = sc
        .queues
        .iter()
        .map(|q| fill(t(lang, "sc-aria-queue"), &[q.name, q.consumer_tag]))
        .collect::<Vec<_>>()
        .join(t(lang, "and"));
    let aria = fill(
        t(lang, "sc-aria"),
        &[sc.kind.as_str(), sc.exchange, &routes],
    );

    html! {
        <svg viewBox={view_box} class="topology" role="img" aria-label={aria}>
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5"
                        markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                </marker>
            </defs>
            { line("edge", px + 85.0, cy, ex - 64.0, cy) }
            if fanout {
                { edge_label(publish_label_x, cy, t(lang, "sc-publish"), None, "routing-key".to_string()) }
            } else {
                { edge_label(publish_label_x, cy, t(lang, "sc-routing-key"), Some(sc.routing_key), "routing-key".to_string()) }
            }
            <g class="node producer" transform={format!("translate({px},{cy})")}>
                <rect x="-85" y="-48" width="170" height="96" rx="16" />
                <text y="-6" class="node-title">{ "Producer" }</text>
                <text y="24" class="node-sub">{ sc.producer }</text>
            </g>
            <g class="node exchange" transform={format!("translate({ex},{cy})")}>
                <polygon points="-62,0 -31,-54 31,-54 62,0 31,54 -31,54" />
                <text y="-4" class={classes!("node-title", (sc.exchange.len() > 8).then_some("long"))}>{ sc.exchange }</text>
                <text y="24" class="node-sub">{ sc.kind.as_str() }</text>
                <text y="84" class="node-caption">{ "exchange" }</text>
            </g>
            { for lanes }
            { tokens }
            // The keys once more, over the messages (a pile would hide them).
            if !fanout {
                <g class="edge-label keys-over" aria-hidden="true">
                    <text x={format!("{publish_label_x:.1}")} y={format!("{:.1}", cy - 12.0)} class="key">{ sc.routing_key }</text>
                    { for sc.queues.iter().enumerate().map(|(i, q)| {
                        let (lx, ly) = binding_label(sc.lane_y(i));
                        html! { <text x={format!("{lx:.1}")} y={format!("{:.1}", ly - 12.0)} class="key">{ q.binding_key }</text> }
                    }) }
                </g>
            }
        </svg>
    }
}
