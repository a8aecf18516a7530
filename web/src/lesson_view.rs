//! The lesson player's browser part: opening a lesson on its own link, the
//! picker, the SVG of any topology and the narrative panel. The state and the
//! logic are in [`crate::lesson`] (pure, tested natively).

use std::cell::RefCell;
use std::rc::Rc;

use sim_core::scenario::Scenario;
use yew::prelude::*;

use crate::app::AppState;
use crate::history::{History, Replay};
use crate::i18n::{t, Lang};
use crate::inspector::fill;
use crate::label::{place_label, text_box};
use crate::lesson::{
    parse_catalog, rates, CatalogEntry, EdgeKind, LessonAction, LessonInput, NodeKind, Player,
    Sample, GROUPS, TOKEN_MS,
};
use crate::link::{BrokerLink, LinkMsg, SimLink, WsLink};
use crate::model::{Action, LinkEvent, Mode};

/// The open lesson, shared by the reducer and the view.
pub struct OpenLesson {
    pub player: Player,
    /// Its recording: step, scrub back (simulation only).
    pub time: History<Player>,
    pub generation: u32,
    /// `performance.now()` when it opened (real mode's clock origin).
    pub started_wall: f64,
    /// Real mode: the link's state, `None` while connecting.
    pub link: Option<Result<(), String>>,
}

impl OpenLesson {
    /// Feeds the live player one input and records it: what to send, whether
    /// to redraw.
    pub fn input(&mut self, input: LessonInput) -> (Vec<sim_core::protocol::Request>, bool) {
        let (out, redraw) = self.player.feed(&input);
        let event = self.time.record(input, &self.player);
        (out, redraw || event)
    }

    /// What the picture and the panel show: the past being looked at, or
    /// the live lesson.
    pub fn shown(&self) -> &Player {
        self.time.shown().unwrap_or(&self.player)
    }
}

pub type LessonSlot = Rc<RefCell<Option<OpenLesson>>>;

thread_local! {
    /// The lesson catalogue once fetched (`None` while it is on its way).
    static CATALOG: RefCell<Option<Result<Rc<Vec<CatalogEntry>>, String>>> =
        const { RefCell::new(None) };
}

/// Where `cargo xtask build-web` puts the lessons.
const LESSONS_URL: &str = "/pkg/lessons";

/// GETs `url` as text.
async fn fetch_text(url: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("cannot fetch {url}: {}", crate::link::js_error_text(&e)))?;
    let resp: web_sys::Response = resp
        .dyn_into()
        .map_err(|e| crate::link::js_error_text(&e))?;
    if !resp.ok() {
        return Err(format!("{url} answered HTTP {}", resp.status()));
    }
    let text = resp.text().map_err(|e| crate::link::js_error_text(&e))?;
    JsFuture::from(text)
        .await
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| format!("{url} is not text"))
}

/// Fetches the lesson catalogue (once); the page draws again when it is in.
pub fn load_catalog(dispatcher: UseReducerDispatcher<AppState>) {
    wasm_bindgen_futures::spawn_local(async move {
        let got = fetch_text(&format!("{LESSONS_URL}/index.json"))
            .await
            .and_then(|text| parse_catalog(&text))
            .map(Rc::new);
        CATALOG.with(|c| *c.borrow_mut() = Some(got));
        dispatcher.dispatch(Action::Ui(crate::i18n::UiAction::Redraw));
    });
}

/// Fetches lesson `id` and opens it in the mode the page is in then.
pub fn open_by_id(state: &UseReducerHandle<AppState>, id: String) {
    let state = state.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let known = CATALOG
            .with(|c| matches!(&*c.borrow(), Some(Ok(list)) if list.iter().any(|e| e.id == id)));
        if !known {
            let text = fill(t(state.ui.lang, "no-lesson"), &[&id]);
            state.dispatch(Action::Notice(Some(text)));
            return;
        }
        let got = fetch_text(&format!("{LESSONS_URL}/{id}.json"))
            .await
            .and_then(|text| crate::lesson::parse_scenario(&text));
        match got {
            Ok(sc) => crate::app::leave_past(&state, || open_lesson(&state, sc, state.model.mode)),
            Err(e) => {
                let text = fill(t(state.ui.lang, "lesson-broken"), &[&id, &e]);
                state.dispatch(Action::Notice(Some(text)));
            }
        }
    });
}

pub fn wall_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// Runs the open lesson again from its start: the same scenario and seed on
/// a fresh link (a fresh broker in simulation, a fresh namespace on
/// RabbitMQ), the answers cleared.
pub fn restart_lesson(state: &UseReducerHandle<AppState>) {
    let sc = state
        .lesson
        .try_borrow()
        .ok()
        .and_then(|l| l.as_ref().map(|l| l.player.sc.clone()));
    if let Some(sc) = sc {
        open_lesson(state, sc, state.model.mode);
    }
}

/// Opens `sc` in `mode` on a fresh link of its own.
pub fn open_lesson(state: &UseReducerHandle<AppState>, sc: Scenario, mode: Mode) {
    let slot = state.link_slot();
    let generation = slot.generation.get().wrapping_add(1);
    slot.generation.set(generation);
    slot.mode.set(mode);
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = None;
    }
    let real = mode == Mode::Real;
    // A lesson takes the place of the Build page.
    crate::workbench_view::close_build(state);
    if let Ok(mut lesson) = state.lesson.try_borrow_mut() {
        let player = Player::new(sc, real);
        // Real mode records nothing: RabbitMQ cannot be stepped or rewound.
        let time = History::new(&player, !real);
        *lesson = Some(OpenLesson {
            player,
            time,
            generation,
            started_wall: wall_ms(),
            link: if real { None } else { Some(Ok(())) },
        });
    }
    let dispatcher = state.dispatcher();
    let sink: crate::link::Sink = Rc::new(move |msg: LinkMsg| {
        dispatcher.dispatch(Action::Lesson(match msg {
            LinkMsg::Frames(frames) => LessonAction::Frames { generation, frames },
            LinkMsg::Link(event) => LessonAction::Link { generation, event },
        }))
    });
    let link = if real {
        BrokerLink::Ws(WsLink::new(sink))
    } else {
        let seed = state
            .lesson
            .try_borrow()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.player.sc.seed))
            .unwrap_or(0);
        let link = BrokerLink::Sim(SimLink::new(seed, sink));
        link.set_clock(!state.model.paused, state.model.speed);
        link
    };
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = Some(link);
    }
    state.dispatch(Action::Lesson(LessonAction::Refresh));
}

/// Applies a lesson action; returns the requests to send and whether to
/// redraw. While the past is shown, Back and Next page through the past's
/// steps; an answer is the present's, so the lesson goes live first.
pub fn reduce(
    lesson: &mut OpenLesson,
    action: LessonAction,
) -> (Vec<sim_core::protocol::Request>, bool) {
    let real = lesson.player.real;
    let input = match action {
        LessonAction::Refresh => return (Vec::new(), true),
        LessonAction::Frames { generation, frames } => {
            if generation != lesson.generation {
                return (Vec::new(), false);
            }
            let now = real.then(|| (wall_ms() - lesson.started_wall).max(0.0) as u64);
            LessonInput::Frames { frames, now }
        }
        LessonAction::Link { generation, event } => {
            if generation != lesson.generation {
                return (Vec::new(), false);
            }
            lesson.link = Some(match event {
                LinkEvent::Open => Ok(()),
                LinkEvent::Failed(why) | LinkEvent::BrokerDown(why) => Err(why),
            });
            return (Vec::new(), true);
        }
        LessonAction::Answer { step, choice } => LessonInput::Answer { step, choice },
        LessonAction::Next => LessonInput::Next,
        LessonAction::Back => LessonInput::Back,
    };
    if lesson.time.in_past() {
        match &input {
            LessonInput::Next | LessonInput::Back => {
                if let Some(past) = lesson.time.shown_mut() {
                    past.feed(&input);
                }
                return (Vec::new(), true);
            }
            LessonInput::Answer { .. } => {
                let total = lesson.time.total();
                lesson.time.seek(total);
            }
            // The link's frames go to the live lesson.
            LessonInput::Frames { .. } | LessonInput::Tick(_) => {}
        }
    }
    lesson.input(input)
}

/// A cheap fingerprint of what the view shows, to skip redraws on idle ticks.
pub fn fingerprint(p: &Player) -> (usize, u64, Option<usize>, bool, u64, usize) {
    (
        p.tokens.len(),
        p.elapsed_ms() / 100,
        p.viewed,
        p.report.is_some(),
        p.published,
        p.log.len(),
    )
}

/// The picker: every built-in lesson, grouped.
pub fn picker(lang: Lang, current: Option<&str>, on_open: Callback<String>) -> Html {
    let catalog = CATALOG.with(|c| c.borrow().clone());
    let all: Vec<(String, &'static str, String)> = match &catalog {
        Some(Ok(list)) => list
            .iter()
            .map(|e| (e.id.clone(), e.group, e.title.get(lang.code()).to_string()))
            .collect(),
        Some(Err(why)) => {
            return html! {
                <div class="lesson-picker" data-testid="lesson-picker">
                    <p class="hint" role="alert">{ format!("The lessons could not be loaded: {why}") }</p>
                </div>
            }
        }
        None => {
            return html! {
                <div class="lesson-picker" data-testid="lesson-picker">
                    <p class="hint">{ "…" }</p>
                </div>
            }
        }
    };
    html! {
        <div class="lesson-picker" data-testid="lesson-picker">
            { for GROUPS.iter().map(|g| {
                html! {
                    <section class="lesson-group" aria-label={t(lang, g)}>
                        <h3>{ t(lang, g) }</h3>
                        <ul>
                        { for all.iter().filter(|s| s.1 == *g).map(|(id, _, title)| {
                            let on_open = on_open.clone();
                            let active = current == Some(id.as_str());
                            let open_id = id.clone();
                            html! {
                                <li>
                                    <button class={classes!("lesson-choice", active.then_some("active"))}
                                            data-testid={format!("lesson-{id}")}
                                            aria-pressed={ if active { "true" } else { "false" } }
                                            onclick={Callback::from(move |_: MouseEvent| on_open.emit(open_id.clone()))}>
                                        { title }
                                    </button>
                                </li>
                            }
                        }) }
                        </ul>
                    </section>
                }
            }) }
        </div>
    }
}

/// The open lesson's topology as SVG, with its messages on their way.
pub fn stage(p: &Player, lang: Lang) -> Html {
    let l = &p.layout;
    let hl = p.highlights();
    let now = p.now;
    let edges = l.edges.iter().map(|e| {
        let id = l.edge_id(e);
        let lit = hl.contains(&id);
        let class = classes!(
            "edge",
            match e.kind {
                EdgeKind::Binding => Some("binding"),
                EdgeKind::Side => Some("side"),
                _ => None,
            },
            lit.then_some("hl")
        );
        // Around the nodes between the two (crate::route).
        let Some(path) = l.path(e.from, e.to) else {
            return Html::default();
        };
        let d = path.d();
        let (lx, ly) = (path.label.0, path.label.1 - 10.0);
        html! {
            <g class="edge-g" data-testid={format!("edge-{id}")}>
                <path d={d} class={class} marker-end="url(#arrow)" fill="none" />
                if !e.label.is_empty() {
                    <text x={format!("{lx:.1}")} y={format!("{ly:.1}")}
                          class={classes!("edge-key", (e.kind == EdgeKind::Side).then_some("side"))}>{ &e.label }</text>
                }
            </g>
        }
    });
    let nodes = l.nodes.iter().enumerate().map(|(i, n)| {
        let id = n.id();
        let lit = hl.contains(&id);
        let tf = format!("translate({:.1},{:.1})", n.x, n.y);
        let body = match n.kind {
            NodeKind::Exchange => html! {
                <>
                <polygon points="-62,0 -31,-50 31,-50 62,0 31,50 -31,50" />
                <text y="-2" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                <text y="24" class="node-sub">{ &n.sub }</text>
                </>
            },
            NodeKind::Queue => {
                let ready = p.ready.get(&n.name).copied().unwrap_or(0);
                let unacked = p.unacked_in(&n.name);
                let dots = ready.clamp(0, 8) as usize;
                html! {
                    <>
                    <rect x="-80" y="-36" width="160" height="72" rx="10" />
                    <text y="-46" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                    { for (0..dots).map(|k| html! { <circle class="msg-dot" cx={format!("{}", 60 - 19 * k as i32)} cy="0" r="8" /> }) }
                    if ready > 8 { <text x="-66" y="6" class="overflow">{ format!("+{}", ready - 8) }</text> }
                    <text y="58" class="node-caption" data-testid={format!("lesson-counts-{}", n.name)}>
                        { format!("{} {ready} · {} {unacked}", t(lang, "ready"), t(lang, "unacked")) }
                    </text>
                    if !n.sub.is_empty() { <text y="78" class="node-caption small">{ &n.sub }</text> }
                    </>
                }
            }
            NodeKind::Producer => html! {
                <>
                <rect x="-78" y="-40" width="156" height="80" rx="16" />
                <text y="-4" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                <text y="22" class="node-sub">{ &n.sub }</text>
                </>
            },
            NodeKind::Consumer => {
                let j = p.sc.consumers.iter().position(|c| c.name == n.name).unwrap_or(0);
                let st = p.consumer_state(j);
                let c = p.consumers.get(j).cloned().unwrap_or_default();
                html! {
                    <g data-testid={format!("lesson-consumer-{}", n.name)} data-state={st.as_str()}>
                    <rect x="-78" y="-40" width="156" height="80" rx="16" class={format!("state-{}", st.as_str())} />
                    <text y="-10" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                    <text y="12" class="node-sub">{ &n.sub }</text>
                    <text y="32" class="node-state">{ t(lang, st.as_str()) }</text>
                    <text y="60" class="node-caption">{ format!("{} {} · {} {}", t(lang, "processed"), c.processed, t(lang, "unacked"), c.unacked) }</text>
                    </g>
                }
            }
        };
        html! {
            <g key={i} class={classes!("node", n.kind.prefix(), lit.then_some("hl"))} transform={tf}
               data-testid={format!("node-{id}")}>
                { body }
            </g>
        }
    });
    // Labels keep clear of the nodes' names, the bindings' keys and each
    // other (a fanout's copies of #1 would otherwise print over each other).
    let keys: Vec<(f64, f64, f64, String)> = l
        .edges
        .iter()
        .filter(|e| !e.label.is_empty())
        .filter_map(|e| {
            let (lx, ly) = l.path(e.from, e.to)?.label;
            let size = if e.kind == EdgeKind::Side { 13.0 } else { 17.0 };
            Some((lx, ly - 10.0, size, e.label.clone()))
        })
        .collect();
    let mut avoid = crate::workbench_view::text_boxes(l, lang);
    avoid.extend(
        keys.iter()
            .map(|(x, y, size, text)| text_box(*x, *y, *size, text)),
    );
    let tokens: Vec<Html> = p
        .tokens
        .iter()
        .filter_map(|tk| {
            let f = (now.saturating_sub(tk.start_ms) as f64 / TOKEN_MS as f64).clamp(0.0, 1.0);
            let (x, y) = l.path(tk.from, tk.to)?.at(f);
            let spot = (!tk.label.is_empty())
                .then(|| place_label(x, y, 11.0, &tk.label, &mut avoid))
                .flatten();
            Some(html! {
                <g key={tk.key} class="token" transform={format!("translate({x:.1},{y:.1})")}>
                    <circle r="11" />
                    if let Some((lx, ly, anchor)) = spot {
                        <text x={format!("{:.1}", lx - x)} y={format!("{:.1}", ly - y)}
                              style={format!("text-anchor:{anchor}")} class="token-label">{ &tk.label }</text>
                    }
                </g>
            })
        })
        .collect();
    let aria = format!(
        "{}: {}",
        p.sc.title.get(lang.code()),
        l.nodes
            .iter()
            .map(|n| format!("{} {}", n.kind.prefix(), n.title()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        <svg viewBox={format!("0 0 {:.0} {:.0}", l.width, l.height + 60.0)} class="topology lesson-topology"
             role="img" aria-label={aria} data-testid="lesson-stage">
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5"
                        markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                </marker>
            </defs>
            { for edges }
            { for nodes }
            { for tokens }
            { crate::workbench_view::keys_over(&keys) }
        </svg>
    }
}

/// The narrative: step text, Next/Back, the question, the report.
pub fn panel(
    lesson: &OpenLesson,
    lang: Lang,
    dispatch: Callback<LessonAction>,
    on_close: Callback<MouseEvent>,
    on_restart: Callback<MouseEvent>,
) -> Html {
    let p = lesson.shown();
    let code = lang.code();
    let n = p.sc.steps.len();
    let viewed = p.viewed;
    let step = viewed.and_then(|v| p.sc.steps.get(v));
    let gate = p.gate();
    let waiting = p.waiting_for_answer();
    let link_text = match (&lesson.link, p.real) {
        (_, false) => None,
        (None, true) => Some(t(lang, "connecting").to_string()),
        (Some(Ok(())), true) => None,
        (Some(Err(why)), true) => Some(format!("{}: {why}", t(lang, "link-failed"))),
    };
    let back = {
        let d = dispatch.clone();
        Callback::from(move |_: MouseEvent| d.emit(LessonAction::Back))
    };
    let next = {
        let d = dispatch.clone();
        Callback::from(move |_: MouseEvent| d.emit(LessonAction::Next))
    };
    // The question to show: the gate's (ask before its time), else the viewed step's (revealed).
    let q_step = gate.filter(|g| Some(*g) >= viewed).or(viewed);
    let question = q_step.and_then(|qi| {
        p.sc.steps
            .get(qi)
            .and_then(|s| s.question.as_ref())
            .map(|q| (qi, q))
    });
    // "See": a prediction is revealed once the run moved past its step (or ended).
    let reached =
        |i: usize| p.is_done() || p.elapsed_ms() > 0 && p.active_step().is_some_and(|a| a > i);
    html! {
        <section class="lesson-panel" data-testid="lesson-panel" aria-labelledby="lesson-title">
            <div class="lesson-head">
                <h2 id="lesson-title" data-testid="lesson-title">{ p.sc.title.get(code) }</h2>
                <span class="lesson-time" data-testid="lesson-time" aria-live="off">
                    { crate::i18n::seconds(p.elapsed_ms(), 1, lang) }
                </span>
                <button class="small" data-testid="lesson-restart" onclick={on_restart}>{ t(lang, "restart-lesson") }</button>
                <button class="small" data-testid="lesson-close" onclick={on_close} aria-label={t(lang, "close-lesson")}>{ t(lang, "close-lesson") }</button>
            </div>
            if let Some(s) = &p.sc.summary {
                <p class="lesson-summary">{ s.get(code) }</p>
            }
            if let Some(text) = link_text {
                <p class="lesson-link" role="status" data-testid="lesson-link">{ text }</p>
            }
            <div class="lesson-step" role="group" aria-label={t(lang, "step")}>
                <button class="small" data-testid="lesson-back" onclick={back}
                        disabled={viewed.unwrap_or(0) == 0} aria-label={t(lang, "back")}>{ format!("◀ {}", t(lang, "back")) }</button>
                <span class="step-no" data-testid="lesson-step-no">{ format!("{} {}/{}", t(lang, "step"), viewed.map_or(0, |v| v + 1), n) }</span>
                <button class="small" data-testid="lesson-next" onclick={next}
                        disabled={viewed.unwrap_or(0) >= p.active_step().unwrap_or(0)} aria-label={t(lang, "next")}>{ format!("{} ▶", t(lang, "next")) }</button>
            </div>
            <p class="step-text" data-testid="lesson-step" aria-live="polite">{ step.map(|s| s.text.get(code).to_string()).unwrap_or_default() }</p>
            if let Some((qi, q)) = question {
                <div class={classes!("lesson-question", (waiting && gate == Some(qi)).then_some("waiting"))} data-testid="lesson-question" role="group" aria-label={t(lang, "predict")}>
                    <p class="q-prompt"><strong>{ format!("{} ", t(lang, "predict")) }</strong>{ q.prompt.get(code) }</p>
                    <div class="choices">
                    { for q.choices.iter().enumerate().map(|(k, c)| {
                        let chosen = p.answers[qi] == Some(k);
                        let revealed = p.answers[qi].is_some() && reached(qi);
                        let class = classes!("choice", chosen.then_some("chosen"),
                            (revealed && k == q.answer).then_some("correct"),
                            (revealed && chosen && k != q.answer).then_some("wrong"));
                        let d = dispatch.clone();
                        html! {
                            <button class={class} data-testid={format!("lesson-choice-{k}")}
                                    disabled={p.answers[qi].is_some()}
                                    aria-pressed={ if chosen { "true" } else { "false" } }
                                    onclick={Callback::from(move |_: MouseEvent| d.emit(LessonAction::Answer { step: qi, choice: k }))}>
                                { c.get(code) }
                            </button>
                        }
                    }) }
                    </div>
                    if p.answers[qi].is_none() {
                        <p class="q-hint">{ t(lang, "choose-first") }</p>
                    } else if reached(qi) {
                        <p class="q-result" data-testid="lesson-answer">
                            { if p.answers[qi] == Some(q.answer) { t(lang, "right") } else { t(lang, "not-quite") } }
                            { " " }
                            { q.explain.as_ref().map(|e| e.get(code).to_string()).unwrap_or_default() }
                        </p>
                    } else {
                        <p class="q-hint">{ t(lang, "watch") }</p>
                    }
                </div>
            }
            if let Some(r) = &p.report {
                <div class="lesson-report" data-testid="lesson-report" data-passed={ if r.passed() { "true" } else { "false" } }>
                    <h3>{ if r.passed() { t(lang, "all-passed") } else { t(lang, "some-failed") } }</h3>
                    <ul>
                    { for r.checks.iter().enumerate().map(|(i, c)| {
                        let hint = (!c.passed).then(|| p.sc.checks.get(i).and_then(|ch| ch.hint.as_ref()).map(|h| h.get(code).to_string())).flatten();
                        html! {
                            <li class={ if c.passed { "passed" } else { "failed" } } data-testid={format!("check-{i}")}>
                                <span class="mark">{ if c.passed { "✓" } else { "✗" } }</span>
                                <code>{ &c.label }</code>
                                { format!(" {} {} · {} {}", t(lang, "expected"), c.expected, t(lang, "got"), c.got) }
                                if let Some(h) = hint { <em>{ format!(" — {h}") }</em> }
                            </li>
                        }
                    }) }
                    { for p.sc.steps.iter().enumerate().filter_map(|(i, st)| {
                        let q = st.question.as_ref()?;
                        let a = p.answers.get(i).copied().flatten()?;
                        let ok = a == q.answer;
                        Some(html! {
                            <li class={ if ok { "passed" } else { "failed" } } data-testid={format!("prediction-{i}")}>
                                <span class="mark">{ if ok { "✓" } else { "✗" } }</span>
                                { format!("{} {} → {}", t(lang, "predict"), q.choices.get(a).map(|c| c.get(code)).unwrap_or(""),
                                    if ok { t(lang, "right") } else { t(lang, "not-quite") }) }
                                if !ok { { format!(" ({})", q.choices.get(q.answer).map(|c| c.get(code)).unwrap_or("")) } }
                            </li>
                        })
                    }) }
                    if !r.completed {
                        <li class="failed">{ r.first_failure().unwrap_or_default() }</li>
                    }
                    </ul>
                </div>
            }
            if !p.log.is_empty() {
                <ol class="lesson-log">
                    { for p.log.iter().take(8).map(|e| html! { <li>{ e }</li> }) }
                </ol>
            }
        </section>
    }
}

const CHART_W: f64 = 520.0;
const CHART_H: f64 = 110.0;

fn polyline(points: &[(f64, f64)], max_t: f64, max_v: f64, class: &'static str) -> Html {
    let pts = points
        .iter()
        .map(|(t, v)| {
            format!(
                "{:.1},{:.1}",
                t / max_t.max(1.0) * CHART_W,
                CHART_H - v / max_v.max(1e-9) * (CHART_H - 12.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    html! { <polyline class={class} points={pts} fill="none" /> }
}

/// The metrics strip: queue depth and publish/deliver/ack rates over the
/// run, and the total time (the 1-vs-N-consumers experiment as a picture).
pub fn metrics(p: &Player, lang: Lang) -> Html {
    let total = p
        .report
        .as_ref()
        .and_then(|r| r.total_time_ms)
        .map(|ms| crate::i18n::seconds(ms, 1, lang))
        .unwrap_or_else(|| "…".into());
    metrics_strip(&p.samples, Some(total), lang)
}

/// The strip of `samples` (a lesson's or the Build page's), with the run's
/// total time if it has one.
pub(crate) fn metrics_strip(samples: &[Sample], total: Option<String>, lang: Lang) -> Html {
    if samples.len() < 2 {
        return html! {};
    }
    let max_t = samples.last().map_or(1, |s| s.t.max(1)) as f64;
    let depth: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t as f64, s.depth as f64))
        .collect();
    let max_depth = depth.iter().map(|d| d.1).fold(1.0, f64::max);
    let r = rates(samples, 4);
    let max_rate = r
        .iter()
        .map(|(_, a, b, c)| a.max(*b).max(*c))
        .fold(1.0, f64::max);
    let line = |f: fn(&(u64, f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        r.iter().map(|x| (x.0 as f64, f(x))).collect()
    };
    let vb = format!("0 0 {CHART_W} {CHART_H}");
    html! {
        <section class="metrics" data-testid="metrics" aria-label={t(lang, "metrics")}>
            <figure>
                <figcaption>{ format!("{} ({} {max_depth:.0})", t(lang, "queue-depth"), t(lang, "max")) }</figcaption>
                <svg viewBox={vb.clone()} class="chart" role="img" aria-label={t(lang, "queue-depth")} data-testid="chart-depth">
                    { polyline(&depth, max_t, max_depth, "depth") }
                </svg>
            </figure>
            <figure>
                <figcaption>
                    { format!("{} ({} {max_rate:.1}{}): ", t(lang, "rates"), t(lang, "max"), crate::editor::label(lang, "per-s")) }
                    <span class="k-pub">{ t(lang, "published") }</span>{ " · " }
                    <span class="k-del">{ t(lang, "delivered") }</span>{ " · " }
                    <span class="k-ack">{ "ack" }</span>
                </figcaption>
                <svg viewBox={vb} class="chart" role="img" aria-label={t(lang, "rates")} data-testid="chart-rates">
                    { polyline(&line(|x| x.1), max_t, max_rate, "pub") }
                    { polyline(&line(|x| x.2), max_t, max_rate, "del") }
                    { polyline(&line(|x| x.3), max_t, max_rate, "ack") }
                </svg>
            </figure>
            if let Some(total) = total {
                <div class="metrics-total">
                    <span class="stat-label">{ t(lang, "total-time") }</span>
                    <span class="stat-value" data-testid="metrics-total">{ total }</span>
                </div>
            }
        </section>
    }
}
