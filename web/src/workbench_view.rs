//! The Build page in the browser: opening it on a link of its own, the
//! picture (drag to move, click or Enter for details), the forms and the
//! inspector. The state and every decision are in [`crate::workbench`],
//! [`crate::editor`] and [`crate::inspector`] (pure, tested natively); this
//! module only draws them and turns events into [`WbAction`]s. Pointer and key
//! events are handled once, on the picture, and find their node through
//! `data-node` / `data-msg` attributes (one closure, not one per node).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use sim_core::protocol::FieldTable;
use sim_core::scenario::Scenario;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::app::AppState;
use crate::build_time::BuildTime;
use crate::editor::{self, Input, Kind};
use crate::i18n::Lang;
use crate::label::{place_label, text_box, Rect};
use crate::lesson::{EdgeKind, Layout, NodeKind};
use crate::link::{BrokerLink, LinkMsg, SimLink, WsLink};
use crate::model::{Action, Mode};
use crate::workbench::{CState, FlightKind, MenuOn, Sel, WbAction, Workbench};

/// The open Build page: the live workbench and its recording.
pub struct OpenBuild {
    pub wb: Workbench,
    pub time: BuildTime,
}

impl OpenBuild {
    /// What the picture shows: the past being looked at, or the live page.
    pub fn shown(&self) -> &Workbench {
        self.time.shown().unwrap_or(&self.wb)
    }
}

/// The open Build page, shared by the reducer and the view.
pub type BuildSlot = Rc<RefCell<Option<OpenBuild>>>;

fn tr(lang: Lang, key: &str) -> &'static str {
    editor::label(lang, key)
}

/// Opens the Build page with `sc` in `mode` on a fresh link of its own (an
/// open lesson closes); `moved` keeps node positions across a mode switch.
pub fn open_build(
    state: &UseReducerHandle<AppState>,
    sc: Scenario,
    mode: Mode,
    moved: crate::vecmap::VecMap<String, (f64, f64)>,
) {
    let slot = state.link_slot();
    let generation = slot.generation.get().wrapping_add(1);
    slot.generation.set(generation);
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = None;
    }
    if let Ok(mut l) = state.lesson.try_borrow_mut() {
        *l = None;
    }
    let real = mode == Mode::Real;
    if let Ok(mut b) = state.build.try_borrow_mut() {
        let wb = Workbench::new(sc, real, generation).with_moved(moved);
        // Real mode records nothing: RabbitMQ cannot be stepped or rewound.
        let time = BuildTime::new(&wb, !real);
        *b = Some(OpenBuild { wb, time });
    }
    let dispatcher = state.dispatcher();
    let sink: crate::link::Sink = Rc::new(move |msg: LinkMsg| {
        dispatcher.dispatch(Action::Build(match msg {
            LinkMsg::Frames(frames) => WbAction::Frames { generation, frames },
            LinkMsg::Link(event) => WbAction::Link { generation, event },
        }))
    });
    let link = if real {
        BrokerLink::Ws(WsLink::new(sink))
    } else {
        let link = BrokerLink::Sim(SimLink::new(1, sink));
        link.set_clock(!state.model.paused, state.model.speed);
        link
    };
    if let Ok(mut l) = slot.link.try_borrow_mut() {
        *l = Some(link);
    }
    state.dispatch(Action::Build(WbAction::Refresh));
}

/// Takes the Build page away (its link goes when the caller makes another).
pub fn close_build(state: &AppState) -> Option<Workbench> {
    state
        .build
        .try_borrow_mut()
        .ok()
        .and_then(|mut b| b.take())
        .map(|open| open.wb)
}

fn target_el(e: &Event) -> Option<web_sys::Element> {
    e.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
}

fn closest_attr(e: &Event, attr: &str) -> Option<String> {
    target_el(e)?
        .closest(&format!("[{attr}]"))
        .ok()??
        .get_attribute(attr)
}

/// The picture a pointer event happened in (Yew delegates events, so the
/// current target is not the picture).
fn svg_of(e: &Event) -> Option<web_sys::Element> {
    target_el(e)?.closest("svg").ok()?
}

/// Picture coordinates of a pointer event on the SVG (`xMinYMin meet`).
fn svg_xy(e: &PointerEvent, w: f64, h: f64) -> Option<(f64, f64)> {
    let svg = svg_of(e)?;
    let r = svg.get_bounding_client_rect();
    if r.width() <= 0.0 || r.height() <= 0.0 {
        return None;
    }
    let s = (w / r.width()).max(h / r.height());
    Some((
        (f64::from(e.client_x()) - r.left()) * s,
        (f64::from(e.client_y()) - r.top()) * s,
    ))
}

/// Focuses an element, HTML or SVG (`focus()` through JS: web-sys would
/// need a feature for each element type).
fn focus(el: &web_sys::Element) {
    if let Ok(f) = js_sys::Reflect::get(el, &"focus".into()) {
        if let Ok(f) = f.dyn_into::<js_sys::Function>() {
            let _ = f.call0(el);
        }
    }
}

/// Widest a context menu is drawn (px; it is kept inside the picture's box).
const MENU_W: f64 = 240.0;

/// What the context menu of the element under `e` is on, and that element.
fn menu_target(e: &Event) -> Option<(MenuOn, web_sys::Element)> {
    let el = target_el(e)?;
    if let Some(n) = el.closest("[data-node]").ok()? {
        return Some((MenuOn::Node(n.get_attribute("data-node")?), n));
    }
    let edge = el.closest("[data-edge]").ok()??;
    let (from, to) = edge
        .get_attribute("data-edge")?
        .split_once('|')
        .map(|(a, b)| (a.to_string(), b.to_string()))?;
    Some((MenuOn::Edge(from, to), edge))
}

/// Where a menu opens in the picture's box (`.build-stage`): at the pointer,
/// or (from the keyboard) at the middle of `el`; kept inside the box.
fn menu_at(el: &web_sys::Element, pointer: Option<(f64, f64)>) -> Option<(f64, f64)> {
    let stage = el.closest(".build-stage").ok()??;
    let s = stage.get_bounding_client_rect();
    let r = el.get_bounding_client_rect();
    let inside = |(x, y): (f64, f64)| {
        x >= r.left() - 4.0 && x <= r.right() + 4.0 && y >= r.top() - 4.0 && y <= r.bottom() + 4.0
    };
    let (x, y) = pointer
        .filter(|p| inside(*p))
        .unwrap_or((r.left() + r.width() / 2.0, r.top() + r.height() / 2.0));
    let x = (x - s.left()).min(s.width() - MENU_W).max(0.0);
    Some((x, (y - s.top()).max(0.0)))
}

fn arg_line(t: &FieldTable) -> Vec<(String, String)> {
    t.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            )
        })
        .collect()
}

/// A producer's name or publish target, cut to fit its box.
fn short(s: &str) -> String {
    crate::lesson::short(s, 16)
}

/// The Build page: the toolbar, the picture, and the form or the inspector.
pub fn view(wb: &Workbench, lang: Lang, dispatch: Callback<WbAction>) -> Html {
    let add = |k: Kind| {
        let d = dispatch.clone();
        html! {
            <button class="small" data-testid={format!("add-{}", k.as_str())}
                    onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::NewForm(k)))}>
                { format!("+ {}", tr(lang, k.as_str())) }
            </button>
        }
    };
    let publish = wb.sc.producers.iter().map(|p| {
        let d = dispatch.clone();
        let name = p.name.clone();
        let run = wb.rate_of(&p.name).map(|rate| {
            let on = wb.running.contains_key(&p.name);
            let d = dispatch.clone();
            let name = p.name.clone();
            html! {
                <button class={classes!("small", on.then_some("pub"))} data-testid={format!("run-{}", p.name)}
                        aria-pressed={if on { "true" } else { "false" }}
                        aria-label={format!("{} {} ({rate}{})", tr(lang, if on { "m-stop" } else { "m-start" }), p.name, tr(lang, "per-s"))}
                        onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::Run(name.clone(), !on)))}>
                    { format!("{} {rate}{}", if on { "■" } else { "▶" }, tr(lang, "per-s")) }
                </button>
            }
        });
        html! {
            <>
            <button class="small pub" data-testid={format!("publish-{}", p.name)} disabled={!wb.can_publish()}
                    aria-label={format!("{} {}", tr(lang, "publish"), p.name)}
                    onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::Publish(name.clone())))}>
                { format!("{} ▸ {}", tr(lang, "publish"), short(&p.name)) }
            </button>
            { for run }
            </>
        }
    });
    let side = match (&wb.form, &wb.selected) {
        (Some(_), _) => form_view(wb, lang, &dispatch),
        (None, Some(sel)) => inspector(wb, sel, lang, &dispatch),
        (None, None) => html! {
            <p class="hint">{ if wb.sc.topology.exchanges.is_empty() { tr(lang, "empty-build") } else { tr(lang, "build-hint") } }</p>
        },
    };
    html! {
        <section class="build" data-testid="build" aria-label={tr(lang, "build")} data-sent={wb.sent.to_string()}>
            <div class="build-bar" role="toolbar" aria-label={tr(lang, "add")}>
                { for Kind::ALL.into_iter().map(add) }
                <span class="bar-gap"></span>
                { for publish }
                if wb.sc.producers.is_empty() { <span class="hint">{ tr(lang, "no-producer") }</span> }
            </div>
            if let Some(n) = &wb.notice {
                <p class="form-error" role="alert" data-testid="build-notice">{ n }</p>
            }
            <div class="build-main">
                <div class="stage build-stage">
                    { picture(wb, lang, &dispatch) }
                    { menu(wb, lang, &dispatch) }
                </div>
                <aside class="build-side panel" aria-live="polite">{ side }</aside>
            </div>
            { crate::lesson_view::metrics_strip(&wb.samples, None, lang) }
        </section>
    }
}

fn picture(wb: &Workbench, lang: Lang, dispatch: &Callback<WbAction>) -> Html {
    let l = &wb.layout;
    let (w, h) = (l.width, l.height + 40.0);
    let selected = match &wb.selected {
        Some(Sel::Node(id)) => Some(id.as_str()),
        _ => None,
    };
    let mut edges: Vec<(String, String, EdgeKind, String)> = l
        .edges
        .iter()
        .map(|e| {
            (
                l.nodes[e.from].id(),
                l.nodes[e.to].id(),
                e.kind,
                e.label.clone(),
            )
        })
        .collect();
    for x in &wb.sc.topology.exchanges {
        if let Some(Value::String(ae)) = x.arguments.get("alternate-exchange") {
            edges.push((
                format!("exchange:{}", x.name),
                format!("exchange:{ae}"),
                EdgeKind::Side,
                "alternate".into(),
            ));
        }
    }
    // Where the bindings' keys are drawn (anchor, font size, text), for the
    // messages' labels to keep clear of.
    let edge_labels: Vec<(f64, f64, f64, String)> = edges
        .iter()
        .filter(|e| !e.3.is_empty())
        .filter_map(|(from, to, kind, label)| {
            let (lx, ly) = wb.path(from, to)?.label;
            let size = if *kind == EdgeKind::Side {
                13.0
            } else {
                crate::lesson::KEY_PX
            };
            Some((lx, ly - 8.0, size, label.clone()))
        })
        .collect();
    let edges = edges.into_iter().filter_map(|(from, to, kind, label)| {
        let p = wb.path(&from, &to)?;
        let (lx, ly) = p.label;
        let names = |id: &str| id.split_once(':').map(|x| x.1.to_string()).unwrap_or_default();
        let id = format!("edge-binding:{}->{}", names(&from), names(&to));
        // An edge opens the menu of what draws it (right click, or the keyboard).
        let on = MenuOn::Edge(from.clone(), to.clone());
        let menu = !wb.items_for(&on).is_empty();
        let data_edge = menu.then(|| format!("{from}|{to}"));
        let what = match kind {
            EdgeKind::Binding => tr(lang, "binding"),
            EdgeKind::Publish => tr(lang, "producer"),
            EdgeKind::Deliver => tr(lang, "consumer"),
            EdgeKind::Side => "",
        };
        let aria = menu.then(|| format!("{what} {} → {} {label}", names(&from), names(&to)).trim().to_string());
        let class = classes!(
            "edge",
            match kind {
                EdgeKind::Binding => Some("binding"),
                EdgeKind::Side => Some("side"),
                _ => None,
            }
        );
        Some(html! {
            <g class="edge-g" data-testid={id} data-edge={data_edge} tabindex={menu.then_some("0")}
               role={menu.then_some("button")} aria-haspopup={menu.then_some("menu")} aria-label={aria}>
                if menu { <path d={p.d()} class="edge-hit" fill="none" /> }
                <path d={p.d()} class={class} marker-end="url(#build-arrow)" fill="none" />
                if !label.is_empty() {
                    <text x={format!("{lx:.1}")} y={format!("{:.1}", ly - 8.0)}
                          class={classes!("edge-key", (kind == EdgeKind::Side).then_some("side"))}>{ label }</text>
                }
            </g>
        })
    });
    let nodes = l.nodes.iter().map(|n| {
        let id = n.id();
        let tf = format!("translate({:.1},{:.1})", n.x, n.y);
        let mut aria = format!("{} {}", tr(lang, n.kind.prefix()), n.title());
        let body = match n.kind {
            NodeKind::Exchange => html! {
                <>
                <polygon points="-62,0 -31,-50 31,-50 62,0 31,50 -31,50" />
                <text y="-2" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                <text y="24" class="node-sub">{ &n.sub }</text>
                </>
            },
            NodeKind::Queue => {
                let here = wb.ready_here(&n.name);
                let unacked = wb.journal.queues.get(&n.name).map_or(0, |c| c.unacked.len());
                aria.push_str(&format!(", {} {}, {} {unacked}", here.len(), tr(lang, "ready"), tr(lang, "unacked")));
                html! {
                    <>
                    <rect x="-80" y="-36" width="160" height="72" rx="10" />
                    <text y="-46" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                    // Seven dots, or six and "+n" where the seventh would be.
                    { for here.iter().take(if here.len() > 7 { 6 } else { 7 }).enumerate().map(|(k, m)| html! {
                        <circle class="msg-dot" data-msg={m.to_string()} data-testid="message"
                                cx={format!("{}", 60 - 19 * k as i32)} cy="0" r="8" />
                    }) }
                    if here.len() > 7 { <text x="-56" y="7" class="overflow">{ format!("+{}", here.len() - 6) }</text> }
                    <text y="58" class="node-caption" data-testid={format!("build-counts-{}", n.name)}>
                        { format!("{} {} · {} {unacked}", tr(lang, "ready"), here.len(), tr(lang, "unacked")) }
                    </text>
                    if !n.sub.is_empty() { <text y="78" class="node-caption small">{ &n.sub }</text> }
                    </>
                }
            }
            NodeKind::Producer => {
                let rate = wb.rate_of(&n.name).map(|r| {
                    let on = wb.running.contains_key(&n.name);
                    format!("{} {r}{}", if on { "▶" } else { "■" }, tr(lang, "per-s"))
                });
                if let Some(r) = &rate {
                    aria.push_str(&format!(", {r}"));
                }
                html! {
                    <>
                    <rect x="-78" y="-40" width="156" height="80" rx="16" />
                    <text y="-4" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                    <text y="22" class="node-sub">{ short(&n.sub) }</text>
                    if let Some(r) = rate {
                        <text y="60" class="node-caption" data-testid={format!("producer-rate-{}", n.name)}>{ r }</text>
                    }
                    </>
                }
            }
            NodeKind::Consumer => {
                let rt = wb.consumers.get(&n.name);
                let st = match rt.map(|r| r.state) {
                    Some(CState::Running) => "running",
                    Some(CState::Starting) | None => "starting",
                    Some(CState::Stopped) => "stopped",
                };
                let busy = wb.work.iter().any(|w| w.consumer == n.name && w.arrive <= wb.now);
                aria.push_str(&format!(", {}", tr(lang, st)));
                html! {
                    <>
                    <rect x="-78" y="-40" width="156" height="80" rx="16"
                          class={ if st == "stopped" { "state-down" } else if busy { "state-busy" } else { "" } } />
                    <text y="-10" class={classes!("node-title", n.long_title().then_some("long"))}>{ n.shown_title() }</text>
                    <text y="12" class="node-sub">{ &n.sub }</text>
                    <text y="32" class="node-state" data-testid={format!("consumer-state-{}", n.name)}>{ tr(lang, st) }</text>
                    <text y="60" class="node-caption">{ format!("{} {} · {} {}", tr(lang, "received"), rt.map_or(0, |r| r.received), tr(lang, "processed"), rt.map_or(0, |r| r.settled)) }</text>
                    </>
                }
            }
        };
        html! {
            <g key={id.clone()} class={classes!("node", n.kind.prefix(), (selected == Some(id.as_str())).then_some("hl"))}
               transform={tf} data-node={id.clone()} data-testid={format!("node-{id}")}
               tabindex="0" role="button" aria-haspopup="menu" aria-label={aria}>
                { body }
            </g>
        }
    });
    // Messages on their way, and the ones a consumer is working on; their
    // labels keep clear of the nodes' names and captions.
    let mut avoid = text_boxes(&wb.layout, lang);
    avoid.extend(
        edge_labels
            .iter()
            .map(|&(x, y, size, ref text)| text_box(x, y, size, text)),
    );
    let colour = |id: Option<u64>| {
        id.and_then(|m| wb.journal.records.get(&m))
            .and_then(|r| wb.sc.producers.iter().position(|p| p.name == r.producer))
            .map_or("p0".to_string(), |i| format!("p{}", i % 6))
    };
    let flights: Vec<Html> = wb
        .flights
        .iter()
        .filter_map(|f| {
            let (x, y) = wb.flight_xy(f)?;
            let class = match f.kind {
                FlightKind::Fade(true) => "token dropped",
                FlightKind::Fade(false) => "token acked",
                FlightKind::Return => "token returned",
                FlightKind::Move => "token",
            };
            let opacity = match f.kind {
                FlightKind::Fade(_) => {
                    (1.0 - (wb.now - f.start) / (f.end() - f.start)).clamp(0.0, 1.0)
                }
                _ => 1.0,
            };
            Some(token(
                f.key,
                f.msg,
                &f.label,
                (x, y),
                opacity,
                classes!(class, colour(f.msg)),
                lang,
                &mut avoid,
            ))
        })
        .collect();
    // Side by side above the consumer, right to left.
    let mut nth: crate::vecmap::VecMap<&str, usize> = crate::vecmap::VecMap::new();
    let held: Vec<Html> = wb
        .work
        .iter()
        .filter(|w| w.arrive <= wb.now)
        .filter_map(|w| {
            let k = nth.get_or_insert_with(w.consumer.as_str(), || 0);
            let at = wb.held_xy(&format!("consumer:{}", w.consumer), *k % 6)?;
            *k += 1;
            let label = wb
                .journal
                .records
                .get(&w.msg)
                .map(|r| r.label())
                .unwrap_or_default();
            Some(token(
                w.msg + (1 << 40),
                Some(w.msg),
                &label,
                at,
                1.0,
                classes!("token", "working", colour(Some(w.msg))),
                lang,
                &mut avoid,
            ))
        })
        .collect();
    let down = {
        let d = dispatch.clone();
        Callback::from(move |e: PointerEvent| {
            // The right button opens the menu (contextmenu), it does not drag.
            if e.button() != 0 {
                return;
            }
            if let Some(m) = closest_attr(&e, "data-msg").and_then(|m| m.parse().ok()) {
                d.emit(WbAction::Select(Some(Sel::Message(m))));
                return;
            }
            let (Some(node), Some((x, y))) = (closest_attr(&e, "data-node"), svg_xy(&e, w, h))
            else {
                return;
            };
            if let Some(svg) = svg_of(&e) {
                let _ = svg.set_pointer_capture(e.pointer_id());
            }
            d.emit(WbAction::DragStart { node, x, y });
        })
    };
    let moving = {
        let d = dispatch.clone();
        Callback::from(move |e: PointerEvent| {
            if e.buttons() != 0 {
                if let Some((x, y)) = svg_xy(&e, w, h) {
                    d.emit(WbAction::DragMove { x, y });
                }
            }
        })
    };
    let up = dispatch.reform(|_: PointerEvent| WbAction::DragEnd);
    let keys = {
        let d = dispatch.clone();
        Callback::from(move |e: KeyboardEvent| {
            let key = e.key();
            if let Some(m) = closest_attr(&e, "data-msg").and_then(|m| m.parse().ok()) {
                if key == "Enter" || key == " " {
                    e.prevent_default();
                    e.stop_propagation();
                    d.emit(WbAction::Select(Some(Sel::Message(m))));
                }
                return;
            }
            let node = closest_attr(&e, "data-node");
            let menu_key = key == "ContextMenu" || (key == "F10" && e.shift_key());
            // Enter on a binding's edge opens its menu too.
            let edge_enter = node.is_none() && (key == "Enter" || key == " ");
            if menu_key || edge_enter {
                let target =
                    menu_target(&e).filter(|(on, _)| menu_key || matches!(on, MenuOn::Edge(..)));
                if let Some((on, (x, y))) =
                    target.and_then(|(on, el)| Some((on, menu_at(&el, None)?)))
                {
                    e.prevent_default();
                    e.stop_propagation();
                    d.emit(WbAction::OpenMenu { on, x, y });
                    focus_menu_soon();
                }
                return;
            }
            let Some(node) = node else {
                return;
            };
            let (dx, dy) = match key.as_str() {
                "Enter" | " " => {
                    e.prevent_default();
                    e.stop_propagation();
                    d.emit(WbAction::Select(Some(Sel::Node(node))));
                    return;
                }
                "ArrowLeft" => (-20.0, 0.0),
                "ArrowRight" => (20.0, 0.0),
                "ArrowUp" => (0.0, -20.0),
                "ArrowDown" => (0.0, 20.0),
                _ => return,
            };
            e.prevent_default();
            e.stop_propagation();
            d.emit(WbAction::Nudge { node, dx, dy });
        })
    };
    let aria = format!(
        "{}: {}",
        tr(lang, "build"),
        l.nodes
            .iter()
            .map(|n| format!("{} {}", tr(lang, n.kind.prefix()), n.title()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let context = {
        let d = dispatch.clone();
        Callback::from(move |e: MouseEvent| {
            if closest_attr(&e, "data-msg").is_some() {
                return;
            }
            let Some((on, el)) = menu_target(&e) else {
                return;
            };
            e.prevent_default();
            let pointer = (f64::from(e.client_x()), f64::from(e.client_y()));
            if let Some((x, y)) = menu_at(&el, Some(pointer)) {
                d.emit(WbAction::OpenMenu { on, x, y });
                focus_menu_soon();
            }
        })
    };
    html! {
        <svg viewBox={format!("0 0 {w:.0} {h:.0}")} preserveAspectRatio="xMinYMin meet"
             class="topology lesson-topology build-topology" role="group" aria-label={aria}
             data-testid="build-stage" onpointerdown={down} onpointermove={moving}
             onpointerup={up.clone()} onpointercancel={up} onkeydown={keys} oncontextmenu={context}>
            <defs>
                <marker id="build-arrow" viewBox="0 0 10 10" refX="9" refY="5"
                        markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                </marker>
            </defs>
            <g class="edges">{ for edges }</g>
            <g class="nodes">{ for nodes }</g>
            <g class="tokens">{ for flights }</g>
            <g class="held">{ for held }</g>
            { keys_over(&edge_labels) }
        </svg>
    }
}

/// The bindings' keys once more, over the messages: a queue of tokens on a
/// short edge would otherwise hide the key a student is reading. Only a
/// picture (hidden from screen readers, transparent to the pointer): the
/// keys that are read out and clicked are the edges' own.
pub(crate) fn keys_over(labels: &[(f64, f64, f64, String)]) -> Html {
    html! {
        <g class="keys-over" aria-hidden="true">
            { for labels.iter().map(|(x, y, size, text)| html! {
                <text x={format!("{x:.1}")} y={format!("{y:.1}")}
                      class={classes!("edge-key", (*size < 15.0).then_some("side"))}>{ text }</text>
            }) }
        </g>
    }
}

/// Gives the open menu's first entry the focus once it is drawn (Yew draws
/// before a zero timeout fires).
fn focus_menu_soon() {
    gloo_timers::callback::Timeout::new(0, || {
        if let Some(first) = web_sys::window().and_then(|w| w.document()).and_then(|d| {
            d.query_selector(".build-menu [role=menuitem]")
                .ok()
                .flatten()
        }) {
            focus(&first);
        }
    })
    .forget();
}

/// The open context menu, if any: a backdrop that closes it on a click
/// anywhere else, and the menu at the pointer (or the focused node). Arrows,
/// Home and End move between its entries, Enter picks one, Escape and Tab
/// close it and give the focus back to what it opened on.
fn menu(wb: &Workbench, lang: Lang, dispatch: &Callback<WbAction>) -> Html {
    let Some(m) = &wb.menu else {
        return Html::default();
    };
    let items = wb.menu_items();
    if items.is_empty() {
        return Html::default();
    }
    let (origin, title) = match &m.on {
        MenuOn::Node(id) => {
            let (kind, name) = id.split_once(':').unwrap_or_default();
            (
                format!("[data-node=\"{id}\"]"),
                format!("{} {name}", tr(lang, kind)),
            )
        }
        MenuOn::Edge(from, to) => (
            format!("[data-edge=\"{from}|{to}\"]"),
            format!("{} {from} → {to}", tr(lang, "binding")),
        ),
    };
    let keys = {
        let d = dispatch.clone();
        Callback::from(move |e: KeyboardEvent| {
            // The page's shortcuts (space pauses, arrows step) stay out of it.
            e.stop_propagation();
            let Some(el) = target_el(&e) else { return };
            let menu = el.parent_element();
            let to = match e.key().as_str() {
                "ArrowDown" => el
                    .next_element_sibling()
                    .or_else(|| menu.and_then(|m| m.first_element_child())),
                "ArrowUp" => el
                    .previous_element_sibling()
                    .or_else(|| menu.and_then(|m| m.last_element_child())),
                "Home" => menu.and_then(|m| m.first_element_child()),
                "End" => menu.and_then(|m| m.last_element_child()),
                "Escape" | "Tab" => {
                    d.emit(WbAction::CloseMenu);
                    el.owner_document()
                        .and_then(|doc| doc.query_selector(&origin).ok().flatten())
                        .as_ref()
                        .map(focus);
                    None
                }
                _ => return,
            };
            e.prevent_default();
            if let Some(to) = to {
                focus(&to);
            }
        })
    };
    let away = dispatch.reform(|e: MouseEvent| {
        e.prevent_default();
        WbAction::CloseMenu
    });
    let entries = items.into_iter().enumerate().map(|(n, i)| {
        let label = if i.detail.is_empty() {
            tr(lang, i.label).to_string()
        } else {
            format!("{} {}", tr(lang, i.label), i.detail)
        };
        html! {
            <button type="button" role="menuitem" tabindex="-1" data-testid={i.testid}
                    class={classes!("menu-item", i.danger.then_some("danger"))}
                    onclick={dispatch.reform(move |_: MouseEvent| WbAction::MenuPick(n))}>{ label }</button>
        }
    });
    html! {
        <>
        <div class="menu-backdrop" data-testid="build-menu-away" onmousedown={away.clone()} oncontextmenu={away}></div>
        <div class="build-menu" role="menu" aria-label={format!("{}: {title}", tr(lang, "actions"))} data-testid="build-menu"
             style={format!("left:{:.0}px;top:{:.0}px", m.x, m.y)} onkeydown={keys}>
            { for entries }
        </div>
        </>
    }
}

/// The boxes of the text `picture` draws in each node (its name, kind,
/// state and counts, at the offsets and sizes it draws them with), for
/// message labels to keep clear of.
/// The boxes of every node's name and captions on a laid-out picture (the
/// Build page's or a lesson's), which messages' labels keep clear of. Widths
/// are for the longest captions these nodes show.
pub(crate) fn text_boxes(layout: &Layout, lang: Lang) -> Vec<Rect> {
    let mut out = Vec::new();
    for n in &layout.nodes {
        let mut line =
            |dy: f64, size: f64, text: &str| out.push(text_box(n.x, n.y + dy, size, text));
        match n.kind {
            NodeKind::Exchange => {
                line(-2.0, n.title_px(), &n.shown_title());
                line(24.0, 16.0, &n.sub);
            }
            NodeKind::Queue => {
                line(-46.0, n.title_px(), &n.shown_title());
                line(
                    58.0,
                    16.0,
                    &format!("{} 0000 · {} 0000", tr(lang, "ready"), tr(lang, "unacked")),
                );
                line(78.0, 14.0, &n.sub);
            }
            NodeKind::Producer => {
                line(-4.0, n.title_px(), &n.shown_title());
                line(22.0, 16.0, &short(&n.sub));
                line(60.0, 16.0, "▶ 20.25/s");
            }
            NodeKind::Consumer => {
                line(-10.0, n.title_px(), &n.shown_title());
                line(12.0, 16.0, &n.sub);
                line(32.0, 17.0, tr(lang, "starting"));
                line(
                    60.0,
                    16.0,
                    &format!(
                        "{} 0000 · {} 0000",
                        tr(lang, "received"),
                        tr(lang, "processed")
                    ),
                );
            }
        }
    }
    out
}

/// A message at `at`, its label where it covers no node's text nor another
/// label (`avoid`, which gains the label's box).
#[allow(clippy::too_many_arguments)]
fn token(
    key: u64,
    msg: Option<u64>,
    label: &str,
    (x, y): (f64, f64),
    opacity: f64,
    class: Classes,
    lang: Lang,
    avoid: &mut Vec<Rect>,
) -> Html {
    let spot = (!label.is_empty())
        .then(|| place_label(x, y, 11.0, label, avoid))
        .flatten();
    html! {
        <g key={key} class={class} transform={format!("translate({x:.1},{y:.1})")} opacity={format!("{opacity:.2}")}
           data-msg={msg.map(|m| m.to_string())} data-testid="token" tabindex={msg.map(|_| "0")}
           role={msg.map(|_| "button")} aria-label={format!("{} {label}", tr(lang, "message"))}>
            <circle r="11" />
            if let Some((lx, ly, anchor)) = spot {
                <text x={format!("{:.1}", lx - x)} y={format!("{:.1}", ly - y)} style={format!("text-anchor:{anchor}")}
                      class="token-label">{ label }</text>
            }
        </g>
    }
}

fn form_view(wb: &Workbench, lang: Lang, dispatch: &Callback<WbAction>) -> Html {
    let Some(f) = &wb.form else {
        return Html::default();
    };
    let problems = f.shown_problems(&wb.sc);
    let kind = f.kind;
    let on_value = {
        let d = dispatch.clone();
        move |e: Event| {
            let Some(el) = target_el(&e) else { return };
            let name = el.get_attribute("name").unwrap_or_default();
            let value = if let Some(i) = el.dyn_ref::<web_sys::HtmlInputElement>() {
                if i.type_() == "checkbox" {
                    if i.checked() {
                        "true".to_string()
                    } else {
                        String::new()
                    }
                } else {
                    i.value()
                }
            } else if let Some(s) = el.dyn_ref::<web_sys::HtmlSelectElement>() {
                s.value()
            } else {
                return;
            };
            d.emit(WbAction::Field(name, value));
        }
    };
    let on_input = {
        let f = on_value.clone();
        Callback::from(move |e: InputEvent| f(e.into()))
    };
    let on_change = Callback::from(on_value);
    let on_submit = {
        let d = dispatch.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            d.emit(WbAction::Save)
        })
    };
    let title = format!(
        "{} {}",
        tr(lang, if f.editing.is_some() { "change" } else { "new" }),
        tr(lang, kind.as_str())
    );
    let fields = f.fields(&wb.sc).into_iter().map(|field| {
        let id = format!("f-{}", field.name);
        let err = problems.iter().find(|p| p.field == field.name);
        let err_id = format!("{id}-err");
        let key = match (kind, field.name) {
            (Kind::Producer, "key") => "f-routing_key".to_string(),
            (_, n) => format!("f-{n}"),
        };
        let invalid = if err.is_some() { "true" } else { "false" };
        let described = err.map(|_| err_id.clone());
        let testid = format!("field-{}", field.name);
        let input = match &field.input {
            Input::Text | Input::Number => html! {
                <input id={id.clone()} name={field.name} type="text" value={field.value.clone()}
                       inputmode={ (field.input == Input::Number).then_some(if field.name == "rate" { "decimal" } else { "numeric" }) }
                       readonly={field.readonly} data-testid={testid} aria-invalid={invalid}
                       aria-describedby={described} autocomplete="off" spellcheck="false" />
            },
            Input::Check => html! {
                <input id={id.clone()} name={field.name} type="checkbox" checked={field.value == "true"}
                       data-testid={testid} />
            },
            Input::Select(opts) => html! {
                <select id={id.clone()} name={field.name} data-testid={testid} aria-invalid={invalid}
                        aria-describedby={described}>
                    { for opts.iter().map(|(v, label)| html! {
                        <option value={v.clone()} selected={*v == field.value}>{ label }</option>
                    }) }
                </select>
            },
        };
        html! {
            <div class={classes!("field", (field.input == Input::Check).then_some("check"), err.is_some().then_some("invalid"))}>
                <label for={id}>{ tr(lang, &key) }</label>
                { input }
                if let Some(p) = err {
                    <p class="field-error" id={err_id} data-testid={format!("error-{}", field.name)} role="alert">{ p.msg.text(lang) }</p>
                }
            </div>
        }
    });
    let cancel = dispatch.reform(|_: MouseEvent| WbAction::CancelForm);
    html! {
        <form class="build-form" data-testid={format!("form-{}", kind.as_str())} onsubmit={on_submit}
              oninput={on_input} onchange={on_change} aria-labelledby="build-form-title" novalidate=true>
            <h2 id="build-form-title">{ title }</h2>
            { for fields }
            if f.editing.is_some() && matches!(kind, Kind::Exchange | Kind::Queue) {
                <p class="hint">{ tr(lang, "recreate") }</p>
            }
            if f.editing.is_some() && kind == Kind::Binding {
                <p class="hint" data-testid="form-rebind">{ tr(lang, "rebind") }</p>
            }
            if let Some(e) = &f.broker_error {
                <p class="form-error" role="alert" data-testid="form-broker-error">{ format!("{} {e}", tr(lang, "broker-said")) }</p>
            }
            if f.busy { <p class="hint" data-testid="form-busy">{ tr(lang, "applying") }</p> }
            <div class="form-buttons">
                <button type="submit" class="small primary" data-testid="form-save" disabled={f.busy}>
                    { tr(lang, if f.editing.is_some() { "save" } else { "create" }) }
                </button>
                <button type="button" class="small" data-testid="form-cancel" onclick={cancel} disabled={f.busy}>{ tr(lang, "cancel") }</button>
            </div>
        </form>
    }
}

/// One line of an inspector list.
enum Item {
    /// Text; `true`: inferred (drawn muted, marked).
    Text(String, bool),
    /// A message to open, and what follows its label.
    Msg(u64, String),
    /// A binding, described, with a delete button (its `editor::binding_id`).
    Binding(String, String),
}

/// A part of the inspector: a heading, `(term, value)` rows, a list.
struct Part {
    title: &'static str,
    testid: &'static str,
    rows: Vec<(String, String)>,
    items: Vec<Item>,
}

fn part(title: &'static str, testid: &'static str) -> Part {
    Part {
        title,
        testid,
        rows: Vec::new(),
        items: Vec::new(),
    }
}

fn binding_item(b: &sim_core::scenario::BindingDef, from_side: bool) -> Item {
    let other = if from_side {
        b.queue.clone().or(b.exchange.clone()).unwrap_or_default()
    } else {
        b.source.clone()
    };
    let key = if b.arguments.is_empty() {
        format!("“{}”", b.routing_key)
    } else {
        let m = b
            .arguments
            .get("x-match")
            .and_then(Value::as_str)
            .unwrap_or("all");
        format!("“{}” (x-match {m})", editor::headers_text(&b.arguments))
    };
    let text = if from_side {
        format!("→ {other} {key}")
    } else {
        format!("{other} → {key}")
    };
    Item::Binding(text, editor::binding_id(b))
}

/// The inspector's parts for the selection, and its title.
fn inspect(wb: &Workbench, sel: &Sel, lang: Lang) -> Option<(String, Vec<Part>)> {
    let mut parts = Vec::new();
    let on = |v: bool, key: &str, rows: &mut Vec<(String, String)>| {
        if v {
            rows.push((tr(lang, key).to_string(), "true".into()));
        }
    };
    let title = match sel {
        Sel::Message(id) => {
            let r = wb.journal.records.get(id)?;
            let mut route = part("route", "route");
            route.items = r
                .hops
                .iter()
                .map(|h| Item::Text(h.step.text(lang), h.inferred))
                .collect();
            parts.push(route);
            let mut body = part("body", "message-body");
            body.items
                .push(Item::Text(r.message.body.to_string(), false));
            parts.push(body);
            let p = &r.message.properties;
            let mut props = part("properties", "message-properties");
            let x = if r.exchange.is_empty() {
                "(default)"
            } else {
                &r.exchange
            };
            props.rows = vec![
                ("exchange".into(), x.into()),
                ("routing_key".into(), r.routing_key.clone()),
            ];
            for (k, v) in [
                ("content_type", p.content_type.clone()),
                ("delivery_mode", p.delivery_mode.map(|v| v.to_string())),
                ("priority", p.priority.map(|v| v.to_string())),
                ("expiration", p.expiration.clone()),
            ] {
                if let Some(v) = v {
                    props.rows.push((k.into(), v));
                }
            }
            on(r.redelivered, "redelivered", &mut props.rows);
            parts.push(props);
            let mut headers = part("headers", "message-headers");
            if let Some(h) = &p.headers {
                headers.rows = arg_line(h)
                    .into_iter()
                    .filter(|(k, _)| k != "x-death")
                    .collect();
            }
            parts.push(headers);
            let trail = r.x_death();
            if !trail.is_empty() {
                let mut xd = part("x-death", "x-death");
                xd.items = trail
                    .into_iter()
                    .map(|(q, why, n, x)| {
                        let x = if x.is_empty() {
                            "(default)".to_string()
                        } else {
                            x
                        };
                        Item::Text(format!("{q}: {why} ×{n} → {x}"), false)
                    })
                    .collect();
                parts.push(xd);
            }
            format!("{} {}", tr(lang, "message"), r.label())
        }
        Sel::Node(id) => {
            let (kind, name) = id.split_once(':')?;
            let sc = &wb.sc;
            let mut main = part("", "node-facts");
            match kind {
                "exchange" => {
                    let x = sc.topology.exchanges.iter().find(|x| x.name == name)?;
                    main.rows
                        .push((tr(lang, "f-type").into(), x.kind.as_str().into()));
                    on(x.durable, "f-durable", &mut main.rows);
                    on(x.auto_delete, "f-auto_delete", &mut main.rows);
                    on(x.internal, "f-internal", &mut main.rows);
                    main.rows.extend(arg_line(&x.arguments));
                    parts.push(main);
                    let mut from = part("bindings", "exchange-bindings");
                    from.items = sc
                        .topology
                        .bindings
                        .iter()
                        .filter(|b| b.source == name)
                        .map(|b| binding_item(b, true))
                        .collect();
                    parts.push(from);
                    let mut to = part("bound-here", "exchange-bound");
                    to.items = sc
                        .topology
                        .bindings
                        .iter()
                        .filter(|b| b.exchange.as_deref() == Some(name))
                        .map(|b| binding_item(b, false))
                        .collect();
                    parts.push(to);
                }
                "queue" => {
                    let q = sc.topology.queues.iter().find(|q| q.name == name)?;
                    let c = wb.journal.queues.get(name).cloned().unwrap_or_default();
                    let mut counts = format!(
                        "{} {} · {} {}",
                        tr(lang, "ready"),
                        c.ready.len(),
                        tr(lang, "unacked"),
                        c.unacked.len()
                    );
                    if let Some(n) = wb.broker_counts.get(name) {
                        counts.push_str(&format!(
                            " ({} {n} {})",
                            tr(lang, "broker-count"),
                            tr(lang, "ready")
                        ));
                    }
                    main.title = "now";
                    main.testid = "queue-counts";
                    main.items.push(Item::Text(counts, false));
                    parts.push(main);
                    let mut msgs = part("messages", "queue-messages");
                    msgs.items = c
                        .ready
                        .iter()
                        .map(|m| Item::Msg(*m, format!(" {}", tr(lang, "ready"))))
                        .chain(c.unacked.iter().map(|(m, who)| {
                            Item::Msg(*m, format!(" {} → {who}", tr(lang, "unacked")))
                        }))
                        .collect();
                    parts.push(msgs);
                    let mut args = part("arguments", "queue-arguments");
                    args.rows = arg_line(&q.arguments);
                    on(q.durable, "f-durable", &mut args.rows);
                    on(q.auto_delete, "f-auto_delete", &mut args.rows);
                    for c in sc.consumers.iter().filter(|c| c.queue == name) {
                        args.rows
                            .push((tr(lang, "consumer").into(), c.name.clone()));
                    }
                    parts.push(args);
                    let mut to = part("bound-here", "queue-bound");
                    to.items = sc
                        .topology
                        .bindings
                        .iter()
                        .filter(|b| b.queue.as_deref() == Some(name))
                        .map(|b| binding_item(b, false))
                        .collect();
                    parts.push(to);
                }
                "producer" => {
                    let p = sc.producers.iter().find(|p| p.name == name)?;
                    let x = if p.exchange.is_empty() {
                        "(default)"
                    } else {
                        &p.exchange
                    };
                    main.rows = vec![
                        (tr(lang, "f-exchange").into(), x.into()),
                        (tr(lang, "f-routing_key").into(), p.routing_key.clone()),
                        (
                            tr(lang, "body").into(),
                            match &p.body {
                                Value::String(s) => s.clone(),
                                v => v.to_string(),
                            },
                        ),
                    ];
                    if let Some(h) = &p.properties.headers {
                        main.rows
                            .push((tr(lang, "headers").into(), editor::headers_text(h)));
                    }
                    on(p.mandatory, "f-mandatory", &mut main.rows);
                    if let Some(r) = wb.rate_of(name) {
                        main.rows
                            .push((tr(lang, "rate").into(), format!("{r}{}", tr(lang, "per-s"))));
                    }
                    parts.push(main);
                }
                _ => {
                    let c = sc.consumers.iter().find(|c| c.name == name)?;
                    let rt = wb.consumers.get(name);
                    let st = match rt.map(|r| r.state) {
                        Some(CState::Running) => "running",
                        Some(CState::Stopped) => "stopped",
                        _ => "starting",
                    };
                    let ack = if c.ack == sim_core::scenario::AckMode::Auto {
                        "auto"
                    } else {
                        "manual"
                    };
                    main.rows = vec![
                        (tr(lang, "f-queue").into(), c.queue.clone()),
                        (tr(lang, "f-prefetch").into(), c.prefetch.to_string()),
                        (tr(lang, "f-ack").into(), ack.into()),
                        (
                            tr(lang, "f-on_message").into(),
                            editor::on_message_of(c).into(),
                        ),
                        (tr(lang, "state").into(), tr(lang, st).into()),
                        (
                            tr(lang, "received").into(),
                            rt.map_or(0, |r| r.received).to_string(),
                        ),
                    ];
                    parts.push(main);
                    let mut held = part("messages", "consumer-messages");
                    held.items = wb
                        .work
                        .iter()
                        .filter(|w| w.consumer == name)
                        .map(|w| Item::Msg(w.msg, String::new()))
                        .collect();
                    parts.push(held);
                }
            }
            format!(
                "{} {}",
                tr(lang, kind),
                if name.is_empty() { "(default)" } else { name }
            )
        }
    };
    Some((title, parts))
}

fn inspector(wb: &Workbench, sel: &Sel, lang: Lang, dispatch: &Callback<WbAction>) -> Html {
    let Some((title, parts)) = inspect(wb, sel, lang) else {
        return html! { <p class="hint">{ tr(lang, "none") }</p> };
    };
    let item = |it: Item| match it {
        Item::Text(t, inferred) => html! {
            <li class={classes!(inferred.then_some("inferred"))}>
                { t }
                if inferred { <span class="tag">{ format!(" ({})", tr(lang, "inferred")) }</span> }
            </li>
        },
        Item::Msg(id, extra) => {
            let d = dispatch.clone();
            let label = wb
                .journal
                .records
                .get(&id)
                .map_or_else(|| format!("m{id}"), |r| r.label());
            html! {
                <li><button class="link-button" data-testid="inspect-message"
                            onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::Select(Some(Sel::Message(id)))))}>{ label }</button>{ extra }</li>
            }
        }
        Item::Binding(text, bid) => {
            let d = dispatch.clone();
            let e = dispatch.clone();
            let edit = bid.clone();
            html! {
                <li data-testid="binding">{ format!("{text} ") }
                    <button class="small" data-testid="binding-edit" aria-label={format!("{} {} {text}", tr(lang, "edit"), tr(lang, "binding"))}
                            onclick={Callback::from(move |_: MouseEvent| e.emit(WbAction::EditForm(Kind::Binding, edit.clone())))}>{ "✎" }</button>
                    <button class="small" aria-label={format!("{} {} {text}", tr(lang, "delete"), tr(lang, "binding"))}
                            onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::Delete(Kind::Binding, bid.clone())))}>{ "✕" }</button>
                </li>
            }
        }
    };
    let parts = parts.into_iter().map(|p| {
        let empty = p.rows.is_empty() && p.items.is_empty();
        html! {
            <>
            if !p.title.is_empty() { <h3>{ tr(lang, p.title) }</h3> }
            if empty {
                <p class="hint" data-testid={p.testid}>{ tr(lang, "none") }</p>
            } else if !p.rows.is_empty() {
                <dl class="facts" data-testid={p.testid}>
                    { for p.rows.into_iter().map(|(k, v)| html! { <><dt>{ k }</dt><dd><code>{ v }</code></dd></> }) }
                </dl>
            } else {
                <ol class={classes!("route", (p.testid == "message-body").then_some("body"))} data-testid={p.testid}>
                    { for p.items.into_iter().map(item) }
                </ol>
            }
            </>
        }
    });
    let fate = match sel {
        Sel::Message(id) => wb.journal.records.get(id).map(|r| r.fate),
        _ => None,
    };
    let node = match sel {
        Sel::Node(id) => id.split_once(':').and_then(|(k, n)| {
            let kind = Kind::ALL.into_iter().find(|x| x.as_str() == k)?;
            (!n.is_empty()).then(|| (kind, n.to_string()))
        }),
        _ => None,
    };
    let button = |key: &'static str, a: WbAction, class: &'static str| {
        let d = dispatch.clone();
        html! {
            <button class={classes!("small", class)} data-testid={key}
                    onclick={Callback::from(move |_: MouseEvent| d.emit(a.clone()))}>{ tr(lang, key) }</button>
        }
    };
    html! {
        <section class="inspector" data-testid="inspector" aria-labelledby="inspector-title">
            <div class="inspector-head">
                <h2 id="inspector-title">{ format!("{} · {title}", tr(lang, "inspector")) }</h2>
                <button class="small" onclick={dispatch.reform(|_: MouseEvent| WbAction::Select(None))}
                        aria-label={tr(lang, "close")} data-testid="inspector-close">{ "✕" }</button>
            </div>
            if let Some(f) = fate {
                <p data-testid="message-fate" data-fate={f.as_str()}><strong>{ format!("{}: ", tr(lang, "now")) }</strong>
                    { tr(lang, f.as_str()) }</p>
            }
            { for parts }
            if let Some(m) = &wb.refusal {
                <p class="form-error" role="alert" data-testid="delete-refused">{ m.text(lang) }</p>
            }
            if let Sel::Node(id) = sel {
                if let Some(e) = id.strip_prefix("producer:").and_then(|p| wb.producer_errors.get(p)) {
                    <p class="form-error" role="alert" data-testid="publish-error">{ format!("{} {e}", tr(lang, "broker-said")) }</p>
                }
                if let Some(e) = id.strip_prefix("consumer:").and_then(|c| wb.consumers.get(c)).and_then(|r| r.error.as_ref()) {
                    <p class="form-error" role="alert">{ e }</p>
                }
            }
            if let Some((kind, name)) = node {
                <div class="form-buttons">
                    { button("edit", WbAction::EditForm(kind, name.clone()), "") }
                    { button("delete", WbAction::Delete(kind, name), "danger") }
                </div>
            }
        </section>
    }
}
