//! The time controls and the shell's part of the timeline: play/pause, step,
//! speed, the scrub bar, back to live, reset; recording what the page sends;
//! pausing a live step; replay play on the page's ticks. The logic is in
//! [`crate::timeline`] (pure, tested natively).

use std::rc::Rc;

use sim_core::protocol::Request;
use yew::prelude::*;

use crate::app::{switch_mode, AppState, LinkSlot};
use crate::history::Unavailable;
use crate::i18n::{t, Lang};
use crate::inspector::fill;
use crate::link::{BrokerLink, LinkMsg, SimLink};
use crate::model::{Action, Model, Stage};
use crate::timeline::{self, Run, TimeAction};

/// The speeds offered (the clock takes any in 0.1..=100).
const SPEEDS: [(f64, &str); 7] = [
    (0.1, "0.1×"),
    (0.5, "½×"),
    (1.0, "1×"),
    (2.0, "2×"),
    (4.0, "4×"),
    (10.0, "10×"),
    (100.0, "100×"),
];

/// The live virtual time (the simulation's), 0 in real mode.
fn live_ms(slot: &LinkSlot) -> u64 {
    slot.link
        .try_borrow()
        .ok()
        .and_then(|l| l.as_ref().and_then(BrokerLink::sim_now_ms))
        .unwrap_or(0)
}

fn set_link_clock(slot: &LinkSlot, playing: bool, speed: f64) {
    if let Ok(l) = slot.link.try_borrow() {
        if let Some(link) = l.as_ref() {
            link.set_clock(playing, speed);
        }
    }
}

/// Sends the model's requests through the link and records them.
pub fn send_recorded(slot: &LinkSlot, model: &Model, out: Vec<Request>) {
    let Ok(l) = slot.link.try_borrow() else {
        return;
    };
    let Some(link) = l.as_ref() else {
        return;
    };
    let mut time = slot.time.try_borrow_mut().ok();
    for req in out {
        let copy = time.is_some().then(|| req.clone());
        let at = link.send(req);
        if let (Some(tm), Some(req)) = (time.as_mut(), copy) {
            tm.record(at, model.frames, &req);
        }
    }
}

/// After the live model took an action: a live step pauses once its event
/// came; while the past is shown, its replayed state follows new frames.
pub fn after_apply(slot: &LinkSlot, model: &mut Model) {
    let Ok(mut tm) = slot.time.try_borrow_mut() else {
        return;
    };
    if let Some(target) = tm.step_to {
        if model.frames >= target {
            tm.step_to = None;
            model.paused = true;
            set_link_clock(slot, false, model.speed);
            // Frames of the same batch after this one are the future.
            tm.cursor = Some(target);
        }
    }
    if let Some(c) = tm.cursor {
        if c < model.frames && tm.shown(model.frames).is_none() {
            let live = live_ms(slot);
            tm.seek(c, model.frames, live);
        }
    }
}

/// Is the past shown (the live run held)?
pub fn in_past(state: &AppState) -> bool {
    state
        .link_slot()
        .time
        .try_borrow()
        .map(|tm| tm.in_past(state.model.frames))
        .unwrap_or(false)
}

/// The model to draw: the replayed past, or the live one.
pub fn shown(state: &AppState) -> Option<Rc<Model>> {
    state
        .link_slot()
        .time
        .try_borrow()
        .ok()
        .and_then(|tm| tm.shown(state.model.frames))
}

fn with_model(state: &Rc<AppState>, model: Model) -> Rc<AppState> {
    let mut next = state.redrawn_parts();
    next.model = Rc::new(model);
    Rc::new(next)
}

fn with_notice(state: &Rc<AppState>, text: String) -> Rc<AppState> {
    let mut next = state.redrawn_parts();
    next.notice = Some(Rc::from(text));
    Rc::new(next)
}

/// Is anything on its way that will make an event (a live step can wait for it)?
fn something_moves(m: &Model) -> bool {
    !m.ready || m.tokens.iter().any(|t| t.stage < Stage::Acked)
}

/// The reducer's part for timeline actions, ticks and clock changes while the
/// past is shown.
pub fn reduce(state: Rc<AppState>, action: Action) -> Rc<AppState> {
    let slot = state.link_slot();
    let total = state.model.frames;
    let live = live_ms(&slot);
    let Ok(mut tm) = slot.time.try_borrow_mut() else {
        return state;
    };
    let was_past = tm.in_past(total);
    match action {
        Action::Tick { now_ms } => {
            let speed = state.model.speed;
            if tm.play_tick(now_ms, speed, total, live) {
                // The replay caught up with the live run: it goes on playing.
                drop(tm);
                let mut model = (*state.model).clone();
                model.paused = false;
                set_link_clock(&slot, true, model.speed);
                return with_model(&state, model);
            }
            if tm.playing {
                drop(tm);
                return Rc::new(state.redrawn_parts());
            }
            state
        }
        Action::TogglePause => {
            let playing = !tm.playing;
            tm.set_playing(playing);
            drop(tm);
            Rc::new(state.redrawn_parts())
        }
        Action::SetClock { speed, .. } => {
            drop(tm);
            let mut model = (*state.model).clone();
            model.apply(Action::SetClock {
                paused: true,
                speed,
            });
            with_model(&state, model)
        }
        Action::Time(ta) => {
            if let Err(why) = tm.available() {
                if !matches!(ta, TimeAction::Reset) {
                    drop(tm);
                    let text = history_reason(why, state.ui.lang);
                    return with_notice(&state, text);
                }
            }
            let mut model = (*state.model).clone();
            let pos = tm.position(total);
            match ta {
                TimeAction::Step if was_past => {
                    tm.set_playing(false);
                    tm.seek(pos + 1, total, live);
                }
                TimeAction::Step => {
                    if !something_moves(&model) {
                        drop(tm);
                        let text = t(state.ui.lang, "tl-step-nothing").to_string();
                        return with_notice(&state, text);
                    }
                    // Run until one more event comes, then pause there.
                    tm.step_to = Some(total.saturating_add(1));
                    model.paused = false;
                    set_link_clock(&slot, true, model.speed);
                }
                TimeAction::StepBack => {
                    tm.set_playing(false);
                    tm.seek(pos.saturating_sub(1), total, live);
                }
                TimeAction::Seek(n) => {
                    tm.set_playing(false);
                    tm.seek(n, total, live);
                }
                TimeAction::Live => {
                    tm.set_playing(false);
                    tm.seek(total, total, live);
                }
                TimeAction::Reset => {}
                TimeAction::Adopt {
                    model: adopted,
                    cursor,
                } => {
                    model = *adopted;
                    let n = model.frames;
                    tm.seek(cursor, n, live);
                }
            }
            if tm.in_past(model.frames) && !model.paused {
                // The live run holds while the past is shown.
                model.paused = true;
                set_link_clock(&slot, false, model.speed);
            }
            drop(tm);
            with_model(&state, model)
        }
        _ => state,
    }
}

/// Opens a shared run (`#r=`): replays it, continues live from its end on a
/// fresh simulation, and shows it from its first event.
pub fn open_run(state: &UseReducerHandle<AppState>, run: Run) -> Result<(), String> {
    let slot = state.link_slot();
    let generation = slot.generation.get().wrapping_add(1);
    let (broker, mut model) = timeline::resume(&run, generation)?;
    // Any open lesson closes: the run is a playground scene.
    if let Ok(mut l) = state.lesson.try_borrow_mut() {
        *l = None;
    }
    slot.generation.set(generation);
    slot.mode.set(crate::model::Mode::Sim);
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = None;
    }
    model.paused = true;
    model.speed = state.model.speed;
    model.settle();
    let dispatcher = state.dispatcher();
    let sink: crate::link::Sink = Rc::new(move |msg: LinkMsg| {
        dispatcher.dispatch(match msg {
            LinkMsg::Frames(frames) => Action::Frames { generation, frames },
            LinkMsg::Link(event) => Action::Link { generation, event },
        })
    });
    let link = BrokerLink::Sim(SimLink::resume(broker, sink));
    link.set_clock(false, model.speed);
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = Some(link);
    }
    if let Ok(mut tm) = slot.time.try_borrow_mut() {
        tm.adopt(run);
    }
    state.dispatch(Action::Time(TimeAction::Adopt {
        model: Box::new(model),
        cursor: 0,
    }));
    Ok(())
}

fn speed_button(state: &UseReducerHandle<AppState>, speed: f64, label: &'static str) -> Html {
    let active = (state.model.speed - speed).abs() < 1e-9;
    let onclick = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            state.dispatch(Action::SetClock {
                paused: state.model.paused,
                speed,
            })
        })
    };
    html! {
        <button class={classes!("small", "speed", active.then_some("active"))}
                aria-pressed={ if active { "true" } else { "false" } }
                data-testid={format!("speed-{speed}")}
                aria-label={format!("{} {label}", t(state.ui.lang, "tl-speed"))} onclick={onclick}>{ label }</button>
    }
}

/// Why a timeline cannot be used, in `lang`.
pub fn history_reason(why: Unavailable, lang: Lang) -> String {
    match why {
        Unavailable::Real => t(lang, "tl-real").to_string(),
        Unavailable::Full(n) => fill(t(lang, "tl-full"), &[&n.to_string()]),
        Unavailable::Unordered(id) => fill(t(lang, "tl-unordered"), &[&id.to_string()]),
    }
}

/// Play/pause, step, speed, the scrub bar, live and reset: of the scene, the
/// Build page or the open lesson.
pub fn controls(state: &UseReducerHandle<AppState>, lang: Lang) -> Html {
    let m = &state.model;
    let slot = state.link_slot();
    // The Build page's timeline, a lesson's, or the scene's.
    let build = state.build.try_borrow().ok();
    let build = build.as_ref().and_then(|b| b.as_ref());
    let lesson = state.lesson.try_borrow().ok();
    let lesson = lesson.as_ref().and_then(|l| l.as_ref());
    let recorded = build
        .map(|open| (open.time.at(), open.shown().now))
        .or_else(|| lesson.map(|open| (open.time.at(), open.shown().now as f64)));
    let (past, pos, total, available, playing) = match recorded {
        Some((at, _)) => (at.past, at.pos, at.total, at.available, at.playing),
        None => match slot.time.try_borrow() {
            Ok(tm) => (
                tm.in_past(m.frames),
                tm.position(m.frames),
                m.frames,
                tm.available(),
                tm.playing,
            ),
            Err(_) => (false, m.frames, m.frames, Ok(()), false),
        },
    };
    let dispatch = |a: Action| {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(a.clone()))
    };
    let time = |a: TimeAction| dispatch(Action::Time(a));
    let paused = if past { !playing } else { m.paused };
    let play = html! {
        <button class="small" data-testid="pause" onclick={dispatch(Action::TogglePause)}
                aria-keyshortcuts="Space"
                aria-pressed={ if paused { "true" } else { "false" } }
                aria-label={ t(lang, if paused { "a-play" } else { "a-pause" }) }>
            { if paused { t(lang, "play") } else { t(lang, "pause") } }
        </button>
    };
    let speeds = html! {
        <span class="speeds" role="group" aria-label={t(lang, "tl-speed")}>
            { for SPEEDS.iter().map(|(s, l)| speed_button(state, *s, l)) }
        </span>
    };
    let why = available.err().map(|why| history_reason(why, lang));
    let off = why.is_some();
    let on_scrub = {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            use wasm_bindgen::JsCast;
            if let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            {
                if let Ok(n) = input.value().parse::<u32>() {
                    state.dispatch(Action::Time(TimeAction::Seek(n)));
                }
            }
        })
    };
    let on_reset = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            state.dispatch(Action::Notice(None));
            // The Build page starts over with the same topology, a lesson
            // from its start.
            crate::app::leave_past(&state, || {
                if state.lesson_open() {
                    crate::lesson_view::restart_lesson(&state);
                    return;
                }
                match crate::workbench_view::close_build(&state) {
                    Some(wb) => {
                        crate::workbench_view::open_build(&state, wb.sc, state.model.mode, wb.moved)
                    }
                    None => switch_mode(&state, state.model.mode, state.model.scene),
                }
            })
        })
    };
    let shown_ms = match recorded {
        Some((_, now)) => now.max(0.0) as u64,
        None => shown(state)
            .and_then(|s| s.last_frame_ms())
            .or_else(|| m.last_frame_ms())
            .unwrap_or(0),
    };
    let where_text = format!(
        "{} {pos} / {total} · {}",
        t(lang, "tl-event"),
        crate::i18n::seconds(shown_ms, 2, lang)
    );
    html! {
        <div class="clock timeline" role="group" aria-label={t(lang, "tl-timeline")}
             data-testid="time-controls" data-state={ if past { "past" } else { "live" } }>
            <button class="small" data-testid="time-reset" onclick={on_reset}
                    title={t(lang, "tl-reset-hint")}>{ t(lang, "tl-reset") }</button>
            { play }
            <button class="small" data-testid="step-back" onclick={time(TimeAction::StepBack)}
                    disabled={off || pos == 0} aria-keyshortcuts={ (lesson.is_none()).then_some("ArrowLeft") }
                    aria-label={t(lang, "tl-step-back")} title={why.clone().unwrap_or_else(|| t(lang, "tl-step-back").to_string())}>{ "◀︎" }</button>
            <button class="small" data-testid="step" onclick={time(TimeAction::Step)}
                    disabled={off} aria-keyshortcuts={ (lesson.is_none()).then_some("ArrowRight") }
                    aria-label={t(lang, "tl-step")} title={why.clone().unwrap_or_else(|| t(lang, "tl-step").to_string())}>{ t(lang, "tl-step") }</button>
            { speeds }
            <label class="scrub">
                <span class="sr-only">{ t(lang, "tl-timeline") }</span>
                <input type="range" data-testid="timeline" min="0" max={total.to_string()}
                       value={pos.to_string()} disabled={off || total == 0}
                       aria-valuetext={where_text.clone()} oninput={on_scrub} />
            </label>
            <span class="timeline-pos" data-testid="timeline-pos" aria-live="polite">{ where_text }</span>
            if past {
                <button class="small live-button" data-testid="time-live" onclick={time(TimeAction::Live)}>{ t(lang, "tl-live") }</button>
            }
            if let Some(why) = why {
                <span class="hint timeline-reason" data-testid="timeline-reason">{ why }</span>
            }
        </div>
    }
}
