//! `BrokerLink`: the page's one seam to a broker. Requests go in through
//! [`BrokerLink::send`]; frames and link events come out through the sink given
//! at creation, always asynchronously (from a timer or a socket callback, never
//! from inside `send`), so the sink may dispatch into the Yew reducer and the
//! reducer may send again without re-entrancy.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::callback::{Interval, Timeout};
use sim_core::protocol::{Event, Request, ServerFrame};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::model::LinkEvent;
use crate::sim::SimBroker;

/// What a link reports.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // each frame passes through once
pub enum LinkMsg {
    /// Frames that arrived together, in order: the simulation's whole outbox
    /// at one drain (a burst of publishes makes thousands), or one WebSocket
    /// message. A sink that applies them in one step copies its state once.
    Frames(Vec<ServerFrame>),
    Link(LinkEvent),
}

/// Where a link reports to.
pub type Sink = Rc<dyn Fn(LinkMsg)>;

/// A broker the page talks to: the in-page simulation or the bridge's `/ws`.
pub enum BrokerLink {
    Sim(SimLink),
    Ws(WsLink),
}

impl BrokerLink {
    /// Sends `req`. The simulation returns its virtual time when it handled
    /// the request (the timeline records it); real mode returns `None`.
    pub fn send(&self, req: Request) -> Option<u64> {
        match self {
            BrokerLink::Sim(l) => l.send(req),
            BrokerLink::Ws(l) => {
                l.send(req);
                None
            }
        }
    }

    /// The simulation's virtual clock, ms (`None` in real mode).
    pub fn sim_now_ms(&self) -> Option<u64> {
        match self {
            BrokerLink::Sim(l) => l.now_ms(),
            BrokerLink::Ws(_) => None,
        }
    }

    /// Simulation: the virtual clock stops at `cap` (a lesson question waits).
    pub fn set_cap(&self, cap: Option<u64>) {
        if let BrokerLink::Sim(l) = self {
            if let Ok(mut i) = l.inner.try_borrow_mut() {
                i.cap = cap.map(|c| c as f64);
            }
        }
    }

    /// The simulation's clock controls (no-ops in real mode, where time is real).
    pub fn set_clock(&self, playing: bool, speed: f64) {
        if let BrokerLink::Sim(l) = self {
            l.set_clock(playing, speed);
        }
    }
}

fn wall_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// How often the simulation's virtual clock is advanced, in wall ms.
const SIM_STEP_MS: u32 = 25;

struct SimInner {
    broker: SimBroker,
    /// Virtual time of the broker, ms.
    virtual_ms: f64,
    last_wall: f64,
    playing: bool,
    speed: f64,
    sink: Sink,
    drain_scheduled: bool,
    /// The virtual clock does not pass this (a lesson's question waits).
    cap: Option<f64>,
}

impl SimInner {
    fn advance(&mut self) {
        let now = wall_ms();
        let dt = (now - self.last_wall).clamp(0.0, 1000.0);
        self.last_wall = now;
        if self.playing {
            let next = self.virtual_ms + dt * self.speed;
            self.virtual_ms = match self.cap {
                Some(cap) => next.min(cap.max(self.virtual_ms)),
                None => next,
            };
        }
        self.broker.advance_to(self.virtual_ms as u64);
    }
}

/// The simulation, in the page: `sim_core::Broker` on a virtual clock that
/// follows wall time (times `speed`, stopped while paused).
pub struct SimLink {
    inner: Rc<RefCell<SimInner>>,
    _clock: Interval,
}

impl SimLink {
    pub fn new(seed: u64, sink: Sink) -> SimLink {
        SimLink::start(SimBroker::new(seed), sink, true)
    }

    /// Goes on from a replayed broker (a shared run): its clock continues
    /// where the run ended, and no `Open` is reported (the scene is declared).
    pub fn resume(broker: SimBroker, sink: Sink) -> SimLink {
        SimLink::start(broker, sink, false)
    }

    fn start(broker: SimBroker, sink: Sink, announce: bool) -> SimLink {
        let virtual_ms = broker.now_ms() as f64;
        let inner = Rc::new(RefCell::new(SimInner {
            broker,
            virtual_ms,
            last_wall: wall_ms(),
            playing: true,
            speed: 1.0,
            sink: sink.clone(),
            drain_scheduled: false,
            cap: None,
        }));
        let clock = {
            let inner = inner.clone();
            Interval::new(SIM_STEP_MS, move || {
                if let Ok(mut i) = inner.try_borrow_mut() {
                    i.advance();
                }
                drain(&inner);
            })
        };
        if announce {
            Timeout::new(0, move || sink(LinkMsg::Link(LinkEvent::Open))).forget();
        }
        SimLink {
            inner,
            _clock: clock,
        }
    }

    fn send(&self, req: Request) -> Option<u64> {
        let Ok(mut i) = self.inner.try_borrow_mut() else {
            return None;
        };
        i.advance();
        let at = i.broker.now_ms();
        i.broker.request(req);
        if !i.drain_scheduled {
            i.drain_scheduled = true;
            let inner = self.inner.clone();
            Timeout::new(0, move || drain(&inner)).forget();
        }
        Some(at)
    }

    fn now_ms(&self) -> Option<u64> {
        let mut i = self.inner.try_borrow_mut().ok()?;
        i.advance();
        Some(i.virtual_ms as u64)
    }

    fn set_clock(&self, playing: bool, speed: f64) {
        if let Ok(mut i) = self.inner.try_borrow_mut() {
            i.advance();
            i.playing = playing;
            i.speed = if speed.is_finite() {
                speed.clamp(crate::model::MIN_SPEED, crate::model::MAX_SPEED)
            } else {
                1.0
            };
        }
    }
}

/// Hands the broker's pending frames to the sink, outside any borrow.
fn drain(inner: &Rc<RefCell<SimInner>>) {
    let (frames, sink) = {
        let Ok(mut i) = inner.try_borrow_mut() else {
            return;
        };
        i.drain_scheduled = false;
        let mut frames = Vec::new();
        while let Some(f) = i.broker.poll() {
            frames.push(f);
        }
        (frames, i.sink.clone())
    };
    if !frames.is_empty() {
        sink(LinkMsg::Frames(frames));
    }
}

/// A JS error as text.
pub fn js_error_text(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    format!("{e:?}")
}

struct WsInner {
    ws: Option<WebSocket>,
    /// Requests made before the socket opened.
    backlog: Vec<String>,
    closed: bool,
    _handlers: Vec<Box<dyn std::any::Any>>,
}

/// Real mode: JSON `Request`s to `ws://<page host>/ws`, `ServerFrame`s back.
/// First asks `/healthz`, so "bridge unreachable" and "broker unreachable" can
/// be told apart.
pub struct WsLink {
    inner: Rc<RefCell<WsInner>>,
    alive: Rc<Cell<bool>>,
}

impl WsLink {
    pub fn new(sink: Sink) -> WsLink {
        let inner = Rc::new(RefCell::new(WsInner {
            ws: None,
            backlog: Vec::new(),
            closed: false,
            _handlers: Vec::new(),
        }));
        let alive = Rc::new(Cell::new(true));
        {
            let inner = inner.clone();
            let alive = alive.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match healthz().await {
                    Err(why) => {
                        if alive.get() {
                            sink(LinkMsg::Link(LinkEvent::Failed(why)));
                        }
                        return;
                    }
                    Ok(Some(broker_down)) => {
                        if alive.get() {
                            sink(LinkMsg::Link(LinkEvent::BrokerDown(broker_down)));
                        }
                    }
                    Ok(None) => {}
                }
                if alive.get() {
                    open_socket(&inner, &alive, sink);
                }
            });
        }
        WsLink { inner, alive }
    }

    fn send(&self, req: Request) {
        let Ok(text) = serde_json::to_string(&req) else {
            return;
        };
        let Ok(mut i) = self.inner.try_borrow_mut() else {
            return;
        };
        match &i.ws {
            Some(ws) if ws.ready_state() == WebSocket::OPEN => {
                // A failed send shows up as a close event.
                let _ = ws.send_with_str(&text);
            }
            _ if !i.closed => i.backlog.push(text),
            _ => {}
        }
    }
}

impl Drop for WsLink {
    fn drop(&mut self) {
        self.alive.set(false);
        if let Ok(mut i) = self.inner.try_borrow_mut() {
            i.closed = true;
            if let Some(ws) = i.ws.take() {
                ws.set_onopen(None);
                ws.set_onmessage(None);
                ws.set_onclose(None);
                ws.set_onerror(None);
                let _ = ws.close();
            }
            i._handlers.clear();
        }
    }
}

fn ws_url() -> Result<String, String> {
    let loc = web_sys::window().ok_or("no window")?.location();
    let host = loc.host().map_err(|e| js_error_text(&e))?;
    let scheme = match loc.protocol().map_err(|e| js_error_text(&e))?.as_str() {
        "https:" => "wss",
        _ => "ws",
    };
    Ok(format!("{scheme}://{host}/ws"))
}

/// `Ok(None)`: bridge and broker up; `Ok(Some(why))`: bridge up, broker down;
/// `Err(why)`: no bridge.
async fn healthz() -> Result<Option<String>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str("/healthz"))
        .await
        .map_err(|e| format!("cannot fetch /healthz: {}", js_error_text(&e)))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|e| js_error_text(&e))?;
    if !resp.ok() {
        return Err(format!(
            "/healthz answered HTTP {} (is this page served by the bridge? run `cargo xtask serve`)",
            resp.status()
        ));
    }
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let health: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("/healthz is not the bridge's JSON: {e}"))?;
    match health.get("broker").and_then(|b| b.as_str()) {
        Some("up") => Ok(None),
        Some(_) => Ok(Some(
            health
                .get("detail")
                .and_then(|d| d.as_str())
                .unwrap_or("down")
                .to_string(),
        )),
        None => Ok(None),
    }
}

fn open_socket(inner: &Rc<RefCell<WsInner>>, alive: &Rc<Cell<bool>>, sink: Sink) {
    let url = match ws_url() {
        Ok(u) => u,
        Err(why) => {
            sink(LinkMsg::Link(LinkEvent::Failed(why)));
            return;
        }
    };
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            sink(LinkMsg::Link(LinkEvent::Failed(format!(
                "cannot open {url}: {}",
                js_error_text(&e)
            ))));
            return;
        }
    };

    let on_open = {
        let inner = inner.clone();
        let sink = sink.clone();
        let alive = alive.clone();
        Closure::<dyn FnMut()>::new(move || {
            if !alive.get() {
                return;
            }
            let backlog = match inner.try_borrow_mut() {
                Ok(mut i) => std::mem::take(&mut i.backlog),
                Err(_) => Vec::new(),
            };
            if let Ok(i) = inner.try_borrow() {
                if let Some(ws) = &i.ws {
                    for text in &backlog {
                        let _ = ws.send_with_str(text);
                    }
                }
            }
            sink(LinkMsg::Link(LinkEvent::Open));
        })
    };
    let on_message = {
        let sink = sink.clone();
        let alive = alive.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if !alive.get() {
                return;
            }
            let Some(text) = ev.data().as_string() else {
                return;
            };
            match crate::wire::parse_frame(&text) {
                Ok(frame) => sink(LinkMsg::Frames(vec![frame])),
                Err(e) => sink(LinkMsg::Frames(vec![ServerFrame {
                    at_ms: 0,
                    event: Event::ProtocolError {
                        id: None,
                        message: format!("unreadable frame from the bridge: {e}"),
                    },
                }])),
            }
        })
    };
    let on_close = {
        let sink = sink.clone();
        let alive = alive.clone();
        let inner = inner.clone();
        Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            if !alive.get() {
                return;
            }
            if let Ok(mut i) = inner.try_borrow_mut() {
                i.closed = true;
            }
            let reason = ev.reason();
            let why = match (ev.code(), reason.is_empty()) {
                (1006, true) => "connection to the bridge lost (WebSocket code 1006)".to_string(),
                (code, true) => format!("the bridge closed the connection (WebSocket code {code})"),
                (code, false) => {
                    format!("the bridge closed the connection: {reason} (WebSocket code {code})")
                }
            };
            sink(LinkMsg::Link(LinkEvent::Failed(why)));
        })
    };
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    if let Ok(mut i) = inner.try_borrow_mut() {
        i.ws = Some(ws);
        i._handlers.push(Box::new(on_open));
        i._handlers.push(Box::new(on_message));
        i._handlers.push(Box::new(on_close));
    }
}
