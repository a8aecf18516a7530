//! The compare panel: a button that plays the scenario on screen (the open
//! lesson, or the playground scene) in the simulation and on RabbitMQ through
//! the bridge, and shows both outcomes side by side, differences marked. Its
//! own component with its own bridge session, so it touches neither the
//! page's link nor its model. The comparison is [`crate::compare`].

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use sim_core::scenario::Scenario;
use yew::prelude::*;

use crate::compare::{self, Aligned, Comparison, Outcome, RealRun, RowKind};
use crate::i18n::{t, Lang};
use crate::inspector::fill;
use crate::link::{BrokerLink, LinkMsg, WsLink};
use crate::model::LinkEvent;

/// How the real run is going.
#[derive(Clone, PartialEq)]
enum RealState {
    Connecting,
    Running {
        elapsed_ms: u64,
    },
    Done(Rc<Outcome>, Rc<Comparison>),
    /// Why, as a string key with `{0}` and what fills it.
    Failed(&'static str, String),
}

#[derive(Properties)]
pub struct Props {
    pub lang: Lang,
    /// Which scenario is on screen (the lesson's or scene's id).
    pub current: String,
    /// The scenario on screen, read when the button is pressed.
    pub scenario: Callback<(), Scenario>,
}

/// The page re-renders on every animation frame with a new callback; the
/// panel only needs to when the language or the scenario on screen changes.
impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        self.lang == other.lang && self.current == other.current
    }
}

/// What the running comparison keeps between callbacks.
struct Driver {
    sim: Rc<Outcome>,
    run: Option<RealRun>,
    link: Option<BrokerLink>,
    started: f64,
    _clock: Option<Interval>,
}

fn wall_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

impl Driver {
    fn now(&self) -> u64 {
        (wall_ms() - self.started).max(0.0) as u64
    }

    /// Sends what the run wants; reports where it is.
    fn pump(&mut self) -> Option<RealState> {
        let run = self.run.as_mut()?;
        let reqs = run.requests();
        if let Some(link) = &self.link {
            for r in reqs {
                link.send(r);
            }
        }
        if run.is_done() {
            let outcome = self.run.take()?.outcome();
            self.link = None;
            self._clock = None;
            let comparison = compare::compare(&self.sim, &outcome);
            return Some(RealState::Done(Rc::new(outcome), Rc::new(comparison)));
        }
        // A bridge that stops answering cannot hold the panel forever.
        let limit = run.max_ms().saturating_add(60_000);
        let elapsed_ms = run.elapsed_ms();
        if self.now() > limit {
            self.run = None;
            self.link = None;
            self._clock = None;
            let secs = format!("{:.0}", limit as f64 / 1000.0);
            return Some(RealState::Failed("cmp-timeout", secs));
        }
        Some(RealState::Running { elapsed_ms })
    }
}

/// Starts the real run of `sc` over a fresh bridge session.
fn start_real(
    sc: &Scenario,
    sim: Rc<Outcome>,
    set: UseStateSetter<RealState>,
) -> Rc<RefCell<Driver>> {
    let driver = Rc::new(RefCell::new(Driver {
        sim,
        run: None,
        link: None,
        started: wall_ms(),
        _clock: None,
    }));
    let sc = sc.clone();
    let sink: crate::link::Sink = {
        let driver = Rc::downgrade(&driver);
        let set = set.clone();
        Rc::new(move |msg: LinkMsg| {
            let Some(driver) = driver.upgrade() else {
                return;
            };
            let Ok(mut d) = driver.try_borrow_mut() else {
                return;
            };
            match msg {
                LinkMsg::Link(LinkEvent::Open) => {
                    if d.run.is_none() {
                        d.started = wall_ms();
                        d.run = Some(RealRun::new(&sc, 0));
                    }
                }
                LinkMsg::Link(LinkEvent::Failed(why)) => {
                    if d.run.is_some() || d.link.is_some() {
                        d.run = None;
                        d.link = None;
                        d._clock = None;
                        set.set(RealState::Failed("cmp-no-bridge", why));
                    }
                    return;
                }
                LinkMsg::Link(LinkEvent::BrokerDown(why)) => {
                    d.run = None;
                    d.link = None;
                    d._clock = None;
                    set.set(RealState::Failed("cmp-no-broker", why));
                    return;
                }
                LinkMsg::Frames(frames) => {
                    let now = d.now();
                    if let Some(run) = d.run.as_mut() {
                        for frame in frames {
                            run.frame(frame, now);
                        }
                    }
                }
            }
            if let Some(state) = d.pump() {
                set.set(state);
            }
        })
    };
    let link = BrokerLink::Ws(WsLink::new(sink));
    let clock = {
        let driver = Rc::downgrade(&driver);
        Interval::new(50, move || {
            let Some(driver) = driver.upgrade() else {
                return;
            };
            let Ok(mut d) = driver.try_borrow_mut() else {
                return;
            };
            let now = d.now();
            if let Some(run) = d.run.as_mut() {
                run.tick(now);
            }
            if let Some(state) = d.pump() {
                set.set(state);
            }
        })
    };
    if let Ok(mut d) = driver.try_borrow_mut() {
        d.link = Some(link);
        d._clock = Some(clock);
    }
    driver
}

/// The button, and the panel while open.
#[function_component(Compare)]
pub fn compare_button(props: &Props) -> Html {
    let lang = props.lang;
    let open = use_state(|| None::<(Rc<Scenario>, Rc<Outcome>)>);
    let real = use_state(|| RealState::Connecting);
    let driver = use_mut_ref(|| None::<Rc<RefCell<Driver>>>);
    let run_id = use_state(|| 0u32);

    let start = {
        let open = open.clone();
        let real = real.clone();
        let driver = driver.clone();
        let run_id = run_id.clone();
        move |sc: Scenario| {
            let sim = Rc::new(compare::simulate(&sc));
            real.set(RealState::Connecting);
            *driver.borrow_mut() = Some(start_real(&sc, sim.clone(), real.setter()));
            open.set(Some((Rc::new(sc), sim)));
            run_id.set(*run_id + 1);
        }
    };
    let on_open = {
        let get = props.scenario.clone();
        let start = start.clone();
        Callback::from(move |_: MouseEvent| start(get.emit(())))
    };
    let on_close = {
        let open = open.clone();
        let driver = driver.clone();
        Callback::from(move |_: MouseEvent| {
            // Dropping the driver closes its bridge session.
            *driver.borrow_mut() = None;
            open.set(None);
        })
    };
    let on_again = {
        let open = open.clone();
        let start = start.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some((sc, _)) = open.as_ref() {
                start((**sc).clone());
            }
        })
    };
    html! {
        <>
            <button class="scene-choice compare-button" data-testid="compare-open" onclick={on_open}>
                { t(lang, "cmp-open") }
            </button>
            if let Some((sc, sim)) = open.as_ref() {
                { panel(sc, sim, &real, lang, on_close, on_again) }
            }
        </>
    }
}

/// The aligned event sequences (while the real run goes on: the simulation's).
fn event_lines(c: Option<&Comparison>, sim: &[String]) -> Vec<Html> {
    let line = |class: &'static str, s: &str, r: &str| {
        html! {
            <li class={class} data-diff={ if class == "same" { "false" } else { "true" } }>
                <code class="ev-sim">{ s.to_string() }</code>
                <code class="ev-real">{ r.to_string() }</code>
            </li>
        }
    };
    match c {
        Some(c) => c
            .events
            .iter()
            .map(|e| match e {
                Aligned::Both(l) => line("same", l, l),
                Aligned::SimOnly(l) => line("diff sim-only", l, ""),
                Aligned::RealOnly(l) => line("diff real-only", "", l),
            })
            .collect(),
        None => sim.iter().map(|l| line("same", l, "…")).collect(),
    }
}

fn panel(
    sc: &Scenario,
    sim: &Outcome,
    real: &RealState,
    lang: Lang,
    on_close: Callback<MouseEvent>,
    on_again: Callback<MouseEvent>,
) -> Html {
    let (status_kind, status) = match real {
        RealState::Connecting => ("running", t(lang, "cmp-connecting").to_string()),
        RealState::Running { elapsed_ms } => (
            "running",
            format!(
                "{} {}",
                t(lang, "cmp-running"),
                crate::i18n::seconds(*elapsed_ms, 1, lang)
            ),
        ),
        RealState::Done(..) => ("done", String::new()),
        RealState::Failed(..) => ("failed", String::new()),
    };
    let comparison: Option<Rc<Comparison>> = match real {
        RealState::Done(_, c) => Some(c.clone()),
        _ => None,
    };
    let summary = comparison.as_ref().map(|c| {
        let n = c.differences();
        let text = if n == 0 {
            t(lang, "cmp-same").to_string()
        } else {
            format!(
                "{n} {} ({} {}, {} {})",
                t(lang, "cmp-differences"),
                c.row_differences,
                t(lang, "cmp-outcome"),
                c.event_differences,
                t(lang, "cmp-events")
            )
        };
        html! {
            <p class={classes!("compare-summary", (n > 0).then_some("has-diff"))}
               data-testid="compare-summary" data-differences={n.to_string()}>{ text }</p>
        }
    });
    let real_report = match real {
        RealState::Done(r, _) => Some(r.clone()),
        _ => None,
    };
    let rows = match &real_report {
        Some(r) => compare::outcome_rows(&sim.report, &r.report, lang),
        None => compare::outcome_rows(&sim.report, &sim.report, lang)
            .into_iter()
            .map(|mut r| {
                r.real = "…".into();
                r.same = true;
                r
            })
            .collect(),
    };
    let sim_events = sim.events.clone();
    let title = sc.title.get(lang.code()).to_string();
    html! {
        <div class="compare-panel" role="dialog" aria-modal="false" aria-labelledby="compare-title" data-testid="compare">
            <div class="compare-head">
                <h2 id="compare-title">{ format!("{} — {title}", t(lang, "cmp-title")) }</h2>
                <button class="small" onclick={on_again} data-testid="compare-again">{ t(lang, "cmp-again") }</button>
                <button class="small" onclick={on_close} data-testid="compare-close">{ t(lang, "close") }</button>
            </div>
            <p class="compare-status" data-testid="compare-status" data-state={status_kind}>{ status }</p>
            if let RealState::Failed(key, detail) = real {
                <p class="compare-error" role="alert" data-testid="compare-error">
                    <strong>{ format!("{}: ", t(lang, "cmp-failed")) }</strong>{ fill(t(lang, key), &[detail]) }
                </p>
            }
            { for summary }
            <h3>{ t(lang, "cmp-outcome") }</h3>
            <table class="compare-table" data-testid="compare-table">
                <thead>
                    <tr>
                        <th></th>
                        <th data-testid="compare-sim">{ t(lang, "cmp-sim") }</th>
                        <th data-testid="compare-real">{ t(lang, "cmp-real") }</th>
                    </tr>
                </thead>
                <tbody>
                    { for rows.iter().enumerate().map(|(i, r)| html! {
                        <tr class={classes!((!r.same).then_some("diff"))} data-testid={format!("compare-row-{i}")}
                            data-diff={ if r.same { "false" } else { "true" } }
                            data-kind={ if r.kind == RowKind::Time { "time" } else { "exact" } }>
                            <th scope="row">
                                { &r.label }
                                if r.kind == RowKind::Time {
                                    <span class="hint">{ format!(" ({})", t(lang, "cmp-time-hint")) }</span>
                                }
                            </th>
                            <td data-testid={format!("compare-sim-{i}")}>{ &r.sim }</td>
                            <td data-testid={format!("compare-real-{i}")}>{ &r.real }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <h3>{ t(lang, "cmp-events") }</h3>
            <p class="hint">{ t(lang, "cmp-events-hint") }</p>
            <ol class="compare-events" data-testid="compare-events">
                { for event_lines(comparison.as_deref(), &sim_events) }
            </ol>
            if sim.truncated || real_report.as_ref().is_some_and(|r| r.truncated) {
                <p class="hint">{ format!("(only the first {} events of a run are compared)", compare::MAX_EVENT_LINES) }</p>
            }
        </div>
    }
}
