//! The Build page in the browser: opening it on a link of its own, the
//! picture (drag to move, click or Enter for details), the forms and the
//! inspector. The state and every decision are in [`crate::workbench`],
//! [`crate::editor`] and [`crate::inspector`] (pure, tested natively); this
//! module only draws them and turns events into [`WbAction`]s. Pointer and key
//! events are handled once, on the picture, and find their node through
//! `data-node` / `data-msg` attributes (one closure, not one per node).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;
use sim_core::protocol::FieldTable;
use sim_core::scenario::Scenario;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::app::AppState;
use crate::editor::{self, Input, Kind};
use crate::i18n::Lang;
use crate::inspector::Fate;
use crate::lesson::{EdgeKind, NodeKind};
use crate::link::{BrokerLink, LinkMsg, SimLink, WsLink};
use crate::model::{Action, Mode};
use crate::workbench::{CState, FlightKind, Sel, WbAction, Workbench};

/// The open Build page, shared by the reducer and the view.
pub type BuildSlot = Rc<RefCell<Option<Workbench>>>;

fn tr(lang: Lang, key: &str) -> &'static str {
    editor::label(lang, key)
}

/// Opens the Build page with `sc` in `mode` on a fresh link of its own (an
/// open lesson closes); `moved` keeps node positions across a mode switch.
pub fn open_build(
    state: &UseReducerHandle<AppState>,
    sc: Scenario,
    mode: Mode,
    moved: BTreeMap<String, (f64, f64)>,
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
        *b = Some(Workbench::new(sc, real, generation).with_moved(moved));
    }
    let dispatcher = state.dispatcher();
    let sink: crate::link::Sink = Rc::new(move |msg: LinkMsg| {
        dispatcher.dispatch(Action::Build(match msg {
            LinkMsg::Frame(frame) => WbAction::Frame { generation, frame },
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
    state.build.try_borrow_mut().ok().and_then(|mut b| b.take())
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

/// Picture coordinates of a pointer event on the SVG (`xMinYMin meet`).
fn svg_xy(e: &PointerEvent, w: f64, h: f64) -> Option<(f64, f64)> {
    let svg: web_sys::Element = e.current_target()?.dyn_into().ok()?;
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

fn short(s: &str) -> String {
    if s.chars().count() > 16 {
        let mut t: String = s.chars().take(15).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
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
        html! {
            <button class="small pub" data-testid={format!("publish-{}", p.name)} disabled={!wb.can_publish()}
                    aria-label={format!("{} {}", tr(lang, "publish"), p.name)}
                    onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::Publish(name.clone())))}>
                { format!("{} ▸ {}", tr(lang, "publish"), short(&p.name)) }
            </button>
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
        <section class="build" data-testid="build" aria-label={tr(lang, "build")}>
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
                <div class="stage build-stage">{ picture(wb, lang, &dispatch) }</div>
                <aside class="build-side panel" aria-live="polite">{ side }</aside>
            </div>
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
    let edges = edges.into_iter().filter_map(|(from, to, kind, label)| {
        let p = wb.path(&from, &to)?;
        let (lx, ly) = p.label;
        let names = |id: &str| id.split_once(':').map(|x| x.1.to_string()).unwrap_or_default();
        let id = format!("edge-binding:{}->{}", names(&from), names(&to));
        let class = classes!(
            "edge",
            match kind {
                EdgeKind::Binding => Some("binding"),
                EdgeKind::Side => Some("side"),
                _ => None,
            }
        );
        Some(html! {
            <g class="edge-g" data-testid={id}>
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
                <text y="-2" class={classes!("node-title", (n.title().chars().count() > 8).then_some("long"))}>{ short(n.title()) }</text>
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
                    <text y="-46" class="node-title">{ short(&n.name) }</text>
                    { for here.iter().take(7).enumerate().map(|(k, m)| html! {
                        <circle class="msg-dot" data-msg={m.to_string()} data-testid="message"
                                cx={format!("{}", 60 - 19 * k as i32)} cy="0" r="8" />
                    }) }
                    if here.len() > 7 { <text x="-66" y="6" class="overflow">{ format!("+{}", here.len() - 7) }</text> }
                    <text y="58" class="node-caption" data-testid={format!("build-counts-{}", n.name)}>
                        { format!("{} {} · {} {unacked}", tr(lang, "ready"), here.len(), tr(lang, "unacked")) }
                    </text>
                    if !n.sub.is_empty() { <text y="78" class="node-caption small">{ &n.sub }</text> }
                    </>
                }
            }
            NodeKind::Producer => html! {
                <>
                <rect x="-78" y="-40" width="156" height="80" rx="16" />
                <text y="-4" class="node-title">{ short(&n.name) }</text>
                <text y="22" class="node-sub">{ short(&n.sub) }</text>
                </>
            },
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
                    <text y="-10" class="node-title">{ short(&n.name) }</text>
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
               tabindex="0" role="button" aria-label={aria}>
                { body }
            </g>
        }
    });
    // Messages on their way, and the ones a consumer is working on.
    let colour = |id: Option<u64>| {
        id.and_then(|m| wb.journal.records.get(&m))
            .and_then(|r| wb.sc.producers.iter().position(|p| p.name == r.producer))
            .map_or("p0".to_string(), |i| format!("p{}", i % 6))
    };
    let flights = wb.flights.iter().filter_map(|f| {
        let (x, y) = wb.flight_xy(f)?;
        let class = match f.kind {
            FlightKind::Fade(true) => "token dropped",
            FlightKind::Fade(false) => "token acked",
            FlightKind::Return => "token returned",
            FlightKind::Move => "token",
        };
        let opacity = match f.kind {
            FlightKind::Fade(_) => (1.0 - (wb.now - f.start) / (f.end() - f.start)).clamp(0.0, 1.0),
            _ => 1.0,
        };
        Some(token(
            f.key,
            f.msg,
            &f.label,
            x,
            y,
            opacity,
            classes!(class, colour(f.msg)),
            lang,
        ))
    });
    let held = wb
        .work
        .iter()
        .filter(|w| w.arrive <= wb.now)
        .filter_map(|w| {
            let b = wb.node_box(&format!("consumer:{}", w.consumer))?;
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
                b.x + 60.0,
                b.y - 34.0,
                1.0,
                classes!("token", "working", colour(Some(w.msg))),
                lang,
            ))
        });
    let down = {
        let d = dispatch.clone();
        Callback::from(move |e: PointerEvent| {
            if let Some(m) = closest_attr(&e, "data-msg").and_then(|m| m.parse().ok()) {
                d.emit(WbAction::Select(Some(Sel::Message(m))));
                return;
            }
            let (Some(node), Some((x, y))) = (closest_attr(&e, "data-node"), svg_xy(&e, w, h))
            else {
                return;
            };
            if let Some(svg) = e
                .current_target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            {
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
            let Some(node) = closest_attr(&e, "data-node") else {
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
    html! {
        <svg viewBox={format!("0 0 {w:.0} {h:.0}")} preserveAspectRatio="xMinYMin meet"
             class="topology lesson-topology build-topology" role="group" aria-label={aria}
             data-testid="build-stage" onpointerdown={down} onpointermove={moving}
             onpointerup={up.clone()} onpointercancel={up} onkeydown={keys}>
            <defs>
                <marker id="build-arrow" viewBox="0 0 10 10" refX="9" refY="5"
                        markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                </marker>
            </defs>
            { for edges }
            { for nodes }
            { for flights }
            { for held }
        </svg>
    }
}

#[allow(clippy::too_many_arguments)]
fn token(
    key: u64,
    msg: Option<u64>,
    label: &str,
    x: f64,
    y: f64,
    opacity: f64,
    class: Classes,
    lang: Lang,
) -> Html {
    html! {
        <g key={key} class={class} transform={format!("translate({x:.1},{y:.1})")} opacity={format!("{opacity:.2}")}
           data-msg={msg.map(|m| m.to_string())} data-testid="token" tabindex={msg.map(|_| "0")}
           role={msg.map(|_| "button")} aria-label={format!("{} {label}", tr(lang, "message"))}>
            <circle r="11" />
            if !label.is_empty() { <text y="-16" class="token-label">{ label }</text> }
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
                       inputmode={ (field.input == Input::Number).then_some("numeric") }
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

/// A `<dl>` of `(term, value)` rows.
fn facts(rows: Vec<(String, String)>, lang: Lang) -> Html {
    if rows.is_empty() {
        return html! { <p class="hint">{ tr(lang, "none") }</p> };
    }
    html! {
        <dl class="facts">
            { for rows.into_iter().map(|(k, v)| html! { <><dt>{ k }</dt><dd><code>{ v }</code></dd></> }) }
        </dl>
    }
}

fn inspector(wb: &Workbench, sel: &Sel, lang: Lang, dispatch: &Callback<WbAction>) -> Html {
    let select = |s: Sel| {
        let d = dispatch.clone();
        Callback::from(move |_: MouseEvent| d.emit(WbAction::Select(Some(s.clone()))))
    };
    let msg_button = |id: u64, extra: String| {
        let label = wb
            .journal
            .records
            .get(&id)
            .map(|r| r.label())
            .unwrap_or_else(|| format!("m{id}"));
        html! {
            <li><button class="link-button" data-testid="inspect-message" onclick={select(Sel::Message(id))}>{ label }</button>{ extra }</li>
        }
    };
    let close = dispatch.reform(|_: MouseEvent| WbAction::Select(None));
    let (title, body) = match sel {
        Sel::Message(id) => {
            let Some(r) = wb.journal.records.get(id) else {
                return html! { <p class="hint">{ tr(lang, "none") }</p> };
            };
            let p = &r.message.properties;
            let mut props = vec![
                (
                    "exchange".to_string(),
                    if r.exchange.is_empty() {
                        "(default)".into()
                    } else {
                        r.exchange.clone()
                    },
                ),
                ("routing_key".to_string(), r.routing_key.clone()),
            ];
            let opt = |k: &str, v: Option<String>, props: &mut Vec<(String, String)>| {
                if let Some(v) = v {
                    props.push((k.to_string(), v));
                }
            };
            opt("content_type", p.content_type.clone(), &mut props);
            opt(
                "delivery_mode",
                p.delivery_mode.map(|v| v.to_string()),
                &mut props,
            );
            opt("priority", p.priority.map(|v| v.to_string()), &mut props);
            opt("expiration", p.expiration.clone(), &mut props);
            if r.redelivered {
                props.push((tr(lang, "redelivered").to_string(), "true".into()));
            }
            let headers: Vec<(String, String)> = p
                .headers
                .as_ref()
                .map(|h| {
                    arg_line(h)
                        .into_iter()
                        .filter(|(k, _)| k != "x-death")
                        .collect()
                })
                .unwrap_or_default();
            let trail = r.x_death();
            let fate = match r.fate {
                Fate::Ready => tr(lang, "ready"),
                Fate::Unacked => tr(lang, "unacked"),
                f => tr(lang, f.as_str()),
            };
            (
                format!("{} {}", tr(lang, "message"), r.label()),
                html! {
                    <>
                    <p data-testid="message-fate" data-fate={r.fate.as_str()}><strong>{ format!("{}: ", tr(lang, "now")) }</strong>{ fate }</p>
                    <h3>{ tr(lang, "route") }</h3>
                    <ol class="route" data-testid="route">
                        { for r.hops.iter().map(|h| html! {
                            <li class={classes!(h.inferred.then_some("inferred"))}>
                                { h.step.text(lang) }
                                if h.inferred { <span class="tag">{ format!(" ({})", tr(lang, "inferred")) }</span> }
                            </li>
                        }) }
                    </ol>
                    <h3>{ tr(lang, "body") }</h3>
                    <pre class="body" data-testid="message-body">{ &r.message.body }</pre>
                    <h3>{ tr(lang, "properties") }</h3>
                    { facts(props, lang) }
                    <h3>{ tr(lang, "headers") }</h3>
                    { facts(headers, lang) }
                    if !trail.is_empty() {
                        <h3>{ tr(lang, "x-death") }</h3>
                        <ol class="route" data-testid="x-death">
                            { for trail.into_iter().map(|(q, why, n, x)| html! {
                                <li>{ format!("{q}: {why} ×{n} → {}", if x.is_empty() { "(default)".to_string() } else { x }) }</li>
                            }) }
                        </ol>
                    }
                    </>
                },
            )
        }
        Sel::Node(id) => {
            let (kind, name) = id.split_once(':').unwrap_or(("", id.as_str()));
            let kind = match kind {
                "exchange" => Kind::Exchange,
                "queue" => Kind::Queue,
                "producer" => Kind::Producer,
                _ => Kind::Consumer,
            };
            let name = name.to_string();
            let sc = &wb.sc;
            let binding_row = |b: &sim_core::scenario::BindingDef, from_side: bool| {
                let d = dispatch.clone();
                let bid = editor::binding_id(b);
                let other = if from_side {
                    b.queue.clone().or(b.exchange.clone()).unwrap_or_default()
                } else {
                    b.source.clone()
                };
                let key = if b.arguments.is_empty() {
                    b.routing_key.clone()
                } else {
                    editor::headers_text(&b.arguments)
                };
                let match_mode = b
                    .arguments
                    .get("x-match")
                    .and_then(Value::as_str)
                    .map(|m| format!(" (x-match {m})"))
                    .unwrap_or_default();
                html! {
                    <li data-testid="binding">
                        <code>{ if from_side { format!("→ {other}") } else { format!("{other} →") } }</code>
                        { format!(" key “{key}”{match_mode} ") }
                        <button class="small" aria-label={format!("{} {}", tr(lang, "delete"), tr(lang, "binding"))}
                                onclick={Callback::from(move |_: MouseEvent| d.emit(WbAction::Delete(Kind::Binding, bid.clone())))}>{ "✕" }</button>
                    </li>
                }
            };
            let body = match kind {
                Kind::Exchange => {
                    let Some(x) = sc.topology.exchanges.iter().find(|x| x.name == name) else {
                        return html! { <p class="hint">{ tr(lang, "none") }</p> };
                    };
                    let mut rows =
                        vec![(tr(lang, "f-type").to_string(), x.kind.as_str().to_string())];
                    for (on, k) in [
                        (x.durable, "f-durable"),
                        (x.auto_delete, "f-auto_delete"),
                        (x.internal, "f-internal"),
                    ] {
                        if on {
                            rows.push((tr(lang, k).to_string(), "true".into()));
                        }
                    }
                    rows.extend(arg_line(&x.arguments));
                    let from: Vec<_> = sc
                        .topology
                        .bindings
                        .iter()
                        .filter(|b| b.source == name)
                        .collect();
                    let to: Vec<_> = sc
                        .topology
                        .bindings
                        .iter()
                        .filter(|b| b.exchange.as_deref() == Some(name.as_str()))
                        .collect();
                    html! {
                        <>
                        { facts(rows, lang) }
                        <h3>{ tr(lang, "bindings") }</h3>
                        <ul class="bindings" data-testid="exchange-bindings">
                            { for from.into_iter().map(|b| binding_row(b, true)) }
                        </ul>
                        if !to.is_empty() {
                            <h3>{ tr(lang, "bound-here") }</h3>
                            <ul class="bindings">{ for to.into_iter().map(|b| binding_row(b, false)) }</ul>
                        }
                        </>
                    }
                }
                Kind::Queue => {
                    let Some(q) = sc.topology.queues.iter().find(|q| q.name == name) else {
                        return html! { <p class="hint">{ tr(lang, "none") }</p> };
                    };
                    let contents = wb.journal.queues.get(&name).cloned().unwrap_or_default();
                    let mut rows = arg_line(&q.arguments);
                    for (on, k) in [(q.durable, "f-durable"), (q.auto_delete, "f-auto_delete")] {
                        if on {
                            rows.push((tr(lang, k).to_string(), "true".into()));
                        }
                    }
                    let to: Vec<_> = sc
                        .topology
                        .bindings
                        .iter()
                        .filter(|b| b.queue.as_deref() == Some(name.as_str()))
                        .collect();
                    let consumers: Vec<String> = sc
                        .consumers
                        .iter()
                        .filter(|c| c.queue == name)
                        .map(|c| c.name.clone())
                        .collect();
                    html! {
                        <>
                        <p data-testid="queue-counts">
                            { format!("{} {} · {} {}", tr(lang, "ready"), contents.ready.len(), tr(lang, "unacked"), contents.unacked.len()) }
                            if let Some(n) = wb.broker_counts.get(&name) {
                                <span class="hint">{ format!(" ({} {n} {})", tr(lang, "broker-count"), tr(lang, "ready")) }</span>
                            }
                        </p>
                        <h3>{ tr(lang, "messages") }</h3>
                        <ul class="messages" data-testid="queue-messages">
                            { for contents.ready.iter().map(|m| msg_button(*m, format!(" {}", tr(lang, "ready")))) }
                            { for contents.unacked.iter().map(|(m, c)| msg_button(*m, format!(" {} → {c}", tr(lang, "unacked")))) }
                        </ul>
                        <h3>{ tr(lang, "arguments") }</h3>
                        { facts(rows, lang) }
                        <h3>{ tr(lang, "bound-here") }</h3>
                        <ul class="bindings">{ for to.into_iter().map(|b| binding_row(b, false)) }</ul>
                        if !consumers.is_empty() { <p>{ format!("{}: {}", tr(lang, "consumer"), consumers.join(", ")) }</p> }
                        </>
                    }
                }
                Kind::Producer => {
                    let Some(p) = sc.producers.iter().find(|p| p.name == name) else {
                        return html! { <p class="hint">{ tr(lang, "none") }</p> };
                    };
                    let mut rows = vec![
                        (
                            tr(lang, "exchange").to_string(),
                            if p.exchange.is_empty() {
                                "(default)".into()
                            } else {
                                p.exchange.clone()
                            },
                        ),
                        (tr(lang, "f-routing_key").to_string(), p.routing_key.clone()),
                        (
                            tr(lang, "body").to_string(),
                            match &p.body {
                                Value::String(s) => s.clone(),
                                v => v.to_string(),
                            },
                        ),
                    ];
                    if let Some(h) = &p.properties.headers {
                        rows.push((tr(lang, "headers").to_string(), editor::headers_text(h)));
                    }
                    if p.mandatory {
                        rows.push(("mandatory".into(), "true".into()));
                    }
                    html! {
                        <>
                        { facts(rows, lang) }
                        if let Some(e) = wb.producer_errors.get(&name) {
                            <p class="form-error" role="alert" data-testid="publish-error">{ format!("{} {e}", tr(lang, "broker-said")) }</p>
                        }
                        </>
                    }
                }
                Kind::Consumer | Kind::Binding => {
                    let Some(c) = sc.consumers.iter().find(|c| c.name == name) else {
                        return html! { <p class="hint">{ tr(lang, "none") }</p> };
                    };
                    let rt = wb.consumers.get(&name);
                    let st = match rt.map(|r| r.state) {
                        Some(CState::Running) => "running",
                        Some(CState::Stopped) => "stopped",
                        _ => "starting",
                    };
                    let rows = vec![
                        (tr(lang, "f-queue").to_string(), c.queue.clone()),
                        (tr(lang, "f-prefetch").to_string(), c.prefetch.to_string()),
                        (
                            tr(lang, "f-ack").to_string(),
                            if c.ack == sim_core::scenario::AckMode::Auto {
                                "auto".into()
                            } else {
                                "manual".into()
                            },
                        ),
                        (
                            tr(lang, "f-on_message").to_string(),
                            editor::on_message_of(c).into(),
                        ),
                        (tr(lang, "state").to_string(), tr(lang, st).into()),
                        (
                            tr(lang, "received").to_string(),
                            rt.map_or(0, |r| r.received).to_string(),
                        ),
                    ];
                    let holding: Vec<u64> = wb
                        .work
                        .iter()
                        .filter(|w| w.consumer == name)
                        .map(|w| w.msg)
                        .collect();
                    html! {
                        <>
                        { facts(rows, lang) }
                        if let Some(e) = rt.and_then(|r| r.error.as_ref()) {
                            <p class="form-error" role="alert">{ e }</p>
                        }
                        if !holding.is_empty() {
                            <h3>{ tr(lang, "messages") }</h3>
                            <ul class="messages">{ for holding.into_iter().map(|m| msg_button(m, String::new())) }</ul>
                        }
                        </>
                    }
                }
            };
            let edit = {
                let (d, n) = (dispatch.clone(), name.clone());
                Callback::from(move |_: MouseEvent| d.emit(WbAction::EditForm(kind, n.clone())))
            };
            let delete = {
                let (d, n) = (dispatch.clone(), name.clone());
                Callback::from(move |_: MouseEvent| d.emit(WbAction::Delete(kind, n.clone())))
            };
            (
                format!(
                    "{} {}",
                    tr(lang, kind.as_str()),
                    if name.is_empty() { "(default)" } else { &name }
                ),
                html! {
                    <>
                    { body }
                    if let Some(m) = &wb.refusal {
                        <p class="form-error" role="alert" data-testid="delete-refused">{ m.text(lang) }</p>
                    }
                    if !name.is_empty() {
                        <div class="form-buttons">
                            <button class="small" data-testid="edit" onclick={edit}>{ tr(lang, "edit") }</button>
                            <button class="small danger" data-testid="delete" onclick={delete}>{ tr(lang, "delete") }</button>
                        </div>
                    }
                    </>
                },
            )
        }
    };
    html! {
        <section class="inspector" data-testid="inspector" aria-labelledby="inspector-title">
            <div class="inspector-head">
                <h2 id="inspector-title">{ format!("{} · {title}", tr(lang, "inspector")) }</h2>
                <button class="small" onclick={close} aria-label={tr(lang, "close")} data-testid="inspector-close">{ "✕" }</button>
            </div>
            { body }
        </section>
    }
}
