//! The page's view model: everything the page shows, derived from the protocol
//! stream (the requests it sends, the frames it receives) and from wall-clock
//! ticks for the animation. Pure and deterministic: no browser, no clock, no IO,
//! so it is unit-tested natively (`cargo test -p web`).
//!
//! [`Model::apply`] takes an [`Action`] and returns the [`Request`]s the page's
//! client (the scene's producer and consumer) must send. The browser shell sends
//! them through its one `BrokerLink` (simulation or WebSocket) and feeds every
//! frame back as [`Action::Frame`]. Simulation and real mode therefore run the very
//! same code here; only the link differs.

use sim_core::small_map::{SmallMap, SmallSet};
use std::collections::VecDeque;

use sim_core::protocol::{
    AmqpError, DestinationKind, Event, LinkState, Message, MessageId, Method, Outcome, ReplyResult,
    Request, ServerFrame, Trace,
};

use crate::inspector::Step;
use crate::scene::Scene;
use crate::why::Why;

/// How long a token takes to travel one edge of the picture, in wall ms.
pub const SEGMENT_MS: f64 = 650.0;
/// How long the consumer "works" on a message once it arrived, before acking.
pub const PROCESS_MS: f64 = 350.0;
/// How long an acked or dropped token stays visible, fading.
pub const FADE_MS: f64 = 700.0;
/// Upper bounds, so a teacher holding the Publish button cannot grow the page without end.
pub const MAX_LOG: usize = 50;
pub const MAX_EVENTS: usize = 200;
pub const MAX_TOKENS: usize = 400;
const MAX_EARLY: usize = 256;
/// The clock's speed range (the page offers 0.1× to 100×).
pub const MIN_SPEED: f64 = 0.1;
pub const MAX_SPEED: f64 = 100.0;

/// Where the broker lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `sim_core::Broker` inside the page.
    Sim,
    /// RabbitMQ through the bridge's `/ws`.
    Real,
}

/// The state of the link to the broker, as the header shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    /// Simulation: always there.
    Simulation,
    /// Real mode, waiting for the bridge.
    Connecting,
    /// Real mode: the bridge answered; the broker's state is not reported yet.
    BridgeConnected,
    /// Real mode: the bridge reports its link to RabbitMQ is up.
    Connected,
    /// Real mode: the page cannot reach the bridge (`/healthz` or `/ws` failed).
    BridgeUnreachable(String),
    /// Real mode: the bridge is up but its link to RabbitMQ is not.
    BrokerUnreachable(String),
}

impl LinkStatus {
    /// Short text for the header.
    pub fn label(&self) -> String {
        match self {
            LinkStatus::Simulation => "simulation running".into(),
            LinkStatus::Connecting => "connecting…".into(),
            LinkStatus::BridgeConnected => "bridge connected, waiting for broker…".into(),
            LinkStatus::Connected => "connected to RabbitMQ".into(),
            LinkStatus::BridgeUnreachable(why) => format!("bridge unreachable: {why}"),
            LinkStatus::BrokerUnreachable(why) => format!("broker unreachable: {why}"),
        }
    }

    /// A stable word for CSS classes and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkStatus::Simulation => "simulation",
            LinkStatus::Connecting => "connecting",
            LinkStatus::BridgeConnected => "connecting",
            LinkStatus::Connected => "connected",
            LinkStatus::BridgeUnreachable(_) => "bridge-unreachable",
            LinkStatus::BrokerUnreachable(_) => "broker-unreachable",
        }
    }
}

/// What a link reports besides frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The link can carry requests now (simulation: at once; real: `/ws` open).
    Open,
    /// The link failed or closed; the text says why.
    Failed(String),
    /// Real mode: the bridge answers but says RabbitMQ does not (`/healthz`).
    BrokerDown(String),
}

/// Everything that can happen to the page.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // frames pass through once; boxing buys nothing
pub enum Action {
    /// Wall-clock time moved on (ms, any origin; only differences matter).
    Tick { now_ms: f64 },
    /// The user asked to publish one order.
    Publish,
    /// Re-declare the scene (after a channel error or a broker restart).
    ResetScene,
    /// Start over in `mode` with `scene`; `generation` tags the link made for it.
    SwitchMode {
        mode: Mode,
        generation: u32,
        scene: &'static Scene,
    },
    /// The link of `generation` changed state.
    Link { generation: u32, event: LinkEvent },
    /// A frame from the link of `generation`.
    Frame { generation: u32, frame: ServerFrame },
    /// Frames from the link of `generation` that arrived together, in order
    /// (the simulation's outbox at one drain). The page's shell applies them
    /// one by one in a single reducer step, sending what each one asks for
    /// before the next, so the model is copied once per batch, not per frame.
    Frames {
        generation: u32,
        frames: Vec<ServerFrame>,
    },
    /// Pause/play and speed of the animation (and of the simulation's clock).
    SetClock { paused: bool, speed: f64 },
    /// The user closed the error banner.
    DismissError,
    /// The lesson player (handled by the shell around the player, not here).
    Lesson(crate::lesson::LessonAction),
    /// Page settings (language, projector mode, help).
    Ui(crate::i18n::UiAction),
    /// Space: play/pause (the shell turns it into `SetClock`).
    TogglePause,
    /// A message for the user (bad import, broken link), or none.
    Notice(Option<String>),
    /// Show an exported file `(file name, text)`, or close the export panel.
    Export(Option<(String, String)>),
    /// The timeline: step, scrub, replay, reset (handled by the shell, see
    /// [`crate::timeline`]).
    Time(crate::timeline::TimeAction),
    /// The Build page (handled by the shell around the workbench, not here).
    Build(crate::workbench::WbAction),
}

/// How far a message has come, as the protocol says (not as it is drawn).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Publish sent, on its way to the exchange.
    Sent,
    /// The exchange matched a binding.
    Routed,
    /// Ready in the queue.
    Queued,
    /// Delivered to the consumer, not acked yet.
    Delivered,
    /// Acked: gone.
    Acked,
    /// Dropped (unroutable, expired...): gone.
    Dropped,
}

impl Stage {
    /// Where on the path (0 producer, 1 exchange, 2 queue, 3 consumer) this stage is drawn.
    pub fn target(self) -> f64 {
        match self {
            Stage::Sent => 1.0,
            Stage::Routed | Stage::Queued => 2.0,
            Stage::Delivered | Stage::Acked => 3.0,
            Stage::Dropped => 1.0,
        }
    }
}

/// One message drawn on the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// Unique among the tokens (for drawing).
    pub key: u64,
    /// The publish request it came from (None: first seen at delivery, or a copy).
    pub req_id: Option<u64>,
    pub message_id: Option<MessageId>,
    /// The queue (index in the scene) it went to; None before routing.
    pub lane: Option<usize>,
    pub stage: Stage,
    /// Drawn position along the path, 0.0 ..= 3.0; moves toward `stage.target()`.
    pub pos: f64,
    pub delivery_tag: Option<u64>,
    /// Wall time the token reached the consumer (for the processing delay).
    pub arrived_ms: Option<f64>,
    /// Wall time it became acked/dropped (for fading out).
    pub gone_ms: Option<f64>,
    pub ack_sent: bool,
    /// The stage was inferred from the scene, not reported by the broker
    /// (real mode has no routing traces).
    pub inferred: bool,
    /// Short label (order number).
    pub label: String,
}

impl Token {
    fn new(key: u64, stage: Stage, pos: f64, label: String) -> Self {
        Token {
            key,
            req_id: None,
            message_id: None,
            lane: None,
            stage,
            pos,
            delivery_tag: None,
            arrived_ms: None,
            gone_ms: None,
            ack_sent: false,
            inferred: false,
            label,
        }
    }

    /// Opacity for drawing (fades once gone).
    pub fn opacity(&self, now_ms: f64) -> f64 {
        match self.gone_ms {
            Some(t) => (1.0 - (now_ms - t) / FADE_MS).clamp(0.0, 1.0),
            None => 1.0,
        }
    }
}

/// One message the consumer received.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// 1-based count.
    pub n: u64,
    pub consumer_tag: String,
    pub delivery_tag: u64,
    pub routing_key: String,
    pub redelivered: bool,
    pub body: String,
    pub acked: bool,
}

/// One line of the protocol inspector.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLine {
    pub at_ms: Option<u64>,
    /// `out` (request), `reply`, `deliver`, `trace`, `error`, `status`.
    pub kind: &'static str,
    pub text: String,
}

/// What a pending request was for.
#[derive(Clone, Debug, PartialEq)]
enum Pending {
    Setup,
    /// Not kept in [`Model::pending`]: a publish's token carries its request
    /// id (see [`Model::expect_reply`]).
    Publish,
    Ack {
        delivery_tag: u64,
    },
    Other,
}

/// Facts learnt about a message before the reply to its publish told us its id
/// (the simulation answers a publish after the routing and delivery it caused).
#[derive(Clone, Debug, PartialEq)]
struct Fact {
    lane: Option<usize>,
    stage: Stage,
    delivery_tag: Option<u64>,
}

/// The whole page state.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub scene: &'static Scene,
    pub mode: Mode,
    pub generation: u32,
    pub status: LinkStatus,
    /// The scene is declared and the consumer is consuming.
    pub ready: bool,
    pub published: u64,
    pub received: u64,
    /// Deliveries per queue of the scene.
    received_per_lane: Vec<u64>,
    pub log: VecDeque<Received>,
    pub events: VecDeque<EventLine>,
    pub tokens: Vec<Token>,
    /// The error banner (broker errors, protocol errors), if any.
    pub error: Option<String>,
    /// Tracing events were seen: routing is reported, not inferred.
    pub traced: bool,
    /// The last routing decision (what the exchange did and why), worded
    /// when drawn.
    pub why: Option<Why>,
    /// The routes of the message `why` is about: (message, exchange, queues, rule).
    why_routes: Option<(MessageId, String, Vec<String>, String)>,
    /// The animation is paused (simulation: its clock too).
    pub paused: bool,
    /// Animation speed (simulation: clock speed), 1.0 = real time.
    pub speed: f64,
    /// Wall time of the last tick (None: restart timing at the next tick).
    last_wall: Option<f64>,
    /// Animation time: wall time scaled by `speed`, stopped while paused.
    anim_ms: f64,
    next_id: u64,
    next_order: u64,
    /// Requests waiting for their reply, publishes excepted (see
    /// [`Model::expect_reply`]).
    pending: SmallMap<u64, Pending>,
    setup_waiting: SmallSet<u64>,
    /// The broker closed channel 1 / connection 1: reopen before declaring again.
    channel_closed: bool,
    connection_closed: bool,
    early: SmallMap<MessageId, Vec<Fact>>,
    next_key: u64,
    link_open: bool,
    /// Frames of this model's link applied so far: the timeline's event count.
    pub frames: u32,
    /// The scene was fully declared over this link. After an outage the
    /// bridge restores what the session had (connections, channels,
    /// topology, the consumer with its tag and prefetch), so the scene is not
    /// declared again: a second `consume` with the same tag would be refused.
    declared: bool,
}

/// How a drawn message looks (its class in the scene's picture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    Moving,
    /// At its consumer, being worked on.
    Working,
    Acked,
    Dropped,
}

impl Look {
    /// The CSS class the scene draws it with.
    pub fn class(self) -> &'static str {
        match self {
            Look::Moving => "token",
            Look::Working => "token working",
            Look::Acked => "token acked",
            Look::Dropped => "token dropped",
        }
    }
}

/// Messages drawn as one circle: every token whose spot is within
/// [`PILE_PX`] of the first one's and that looks the same. A burst of
/// thousands of publishes moves as a few piles (`×400`), not as hundreds of
/// circles painted on top of each other (painting those is what made the
/// page miss frames), and the count says more than a smear does.
#[derive(Clone, Debug, PartialEq)]
pub struct Pile<'a> {
    /// The first token of the pile: its key and label stand for the pile.
    pub token: &'a Token,
    pub x: f64,
    pub y: f64,
    pub look: Look,
    pub count: usize,
    /// The most opaque of its tokens (a pile fades when all of it does).
    pub opacity: f64,
}

impl Pile<'_> {
    /// `#n` for one message, `×count` for a pile of them.
    pub fn label(&self) -> String {
        if self.count == 1 {
            self.token.label.clone()
        } else {
            format!("×{}", self.count)
        }
    }
}

/// Tokens closer than this (px) with the same look are drawn as one pile.
pub const PILE_PX: f64 = 3.0;

/// The scene's messages as they are drawn: the piles, and per queue how
/// many ready messages did not fit in its box (`+n`).
#[derive(Clone, Debug, PartialEq)]
pub struct Drawing<'a> {
    pub piles: Vec<Pile<'a>>,
    pub overflow: Vec<usize>,
}

impl Model {
    pub fn new(mode: Mode, generation: u32, scene: &'static Scene) -> Self {
        Model {
            scene,
            mode,
            generation,
            status: match mode {
                Mode::Sim => LinkStatus::Simulation,
                Mode::Real => LinkStatus::Connecting,
            },
            ready: false,
            declared: false,
            published: 0,
            received: 0,
            received_per_lane: vec![0; scene.queues.len()],
            log: VecDeque::new(),
            events: VecDeque::new(),
            tokens: Vec::new(),
            error: None,
            traced: false,
            why: None,
            why_routes: None,
            paused: false,
            speed: 1.0,
            last_wall: None,
            anim_ms: 0.0,
            next_id: 1,
            next_order: 1,
            pending: SmallMap::new(),
            setup_waiting: SmallSet::new(),
            channel_closed: false,
            connection_closed: false,
            early: SmallMap::new(),
            next_key: 1,
            link_open: false,
            frames: 0,
        }
    }

    /// Ready messages in the scene's queues (as far as this page knows).
    pub fn ready_count(&self) -> usize {
        (0..self.scene.queues.len())
            .map(|l| self.lane_counts(l).0)
            .sum()
    }

    /// Delivered but not yet acknowledged.
    pub fn unacked_count(&self) -> usize {
        (0..self.scene.queues.len())
            .map(|l| self.lane_counts(l).1)
            .sum()
    }

    /// (ready, unacked) of queue `lane`.
    pub fn lane_counts(&self, lane: usize) -> (usize, usize) {
        let mut counts = (0, 0);
        for t in self.tokens.iter().filter(|t| t.lane == Some(lane)) {
            match t.stage {
                Stage::Routed | Stage::Queued => counts.0 += 1,
                Stage::Delivered => counts.1 += 1,
                _ => {}
            }
        }
        counts
    }

    /// Animation time (what token timings are measured in).
    pub fn now_ms(&self) -> f64 {
        self.anim_ms
    }

    /// Where every token is drawn: ready messages side by side in their
    /// queue's box (oldest, the head, at the right; those past its slots are
    /// counted, not drawn), the rest along their path; tokens at one spot
    /// with one look make one [`Pile`].
    pub fn drawing(&self) -> Drawing<'_> {
        let sc = self.scene;
        let now = self.now_ms();
        let mut slots = vec![0usize; sc.queues.len()];
        let mut piles: Vec<Pile<'_>> = Vec::new();
        for t in &self.tokens {
            let in_queue = matches!(t.stage, Stage::Routed | Stage::Queued) && t.pos >= 2.0;
            let queue_slot = match (in_queue, t.lane) {
                (true, Some(lane)) if lane < slots.len() => {
                    let s = slots[lane];
                    slots[lane] += 1;
                    if s >= crate::scene::QUEUE_SLOTS {
                        continue;
                    }
                    Some(s)
                }
                _ => None,
            };
            let (x, y) = sc.token_xy(t.pos, t.lane, queue_slot);
            let look = match t.stage {
                Stage::Acked => Look::Acked,
                Stage::Dropped => Look::Dropped,
                Stage::Delivered if t.pos >= 3.0 => Look::Working,
                _ => Look::Moving,
            };
            let opacity = t.opacity(now);
            let same = piles
                .iter_mut()
                .find(|p| p.look == look && (p.x - x).abs() < PILE_PX && (p.y - y).abs() < PILE_PX);
            match same {
                Some(p) => {
                    p.count += 1;
                    p.opacity = p.opacity.max(opacity);
                }
                None => piles.push(Pile {
                    token: t,
                    x,
                    y,
                    look,
                    count: 1,
                    opacity,
                }),
            }
        }
        let overflow = slots
            .iter()
            .map(|n| n.saturating_sub(crate::scene::QUEUE_SLOTS))
            .collect();
        Drawing { piles, overflow }
    }

    /// How many deliveries the consumer shows: a delivery counts once its
    /// message has been drawn arriving at the consumer (the protocol already
    /// said so; the picture catches up).
    pub fn shown_received(&self) -> u64 {
        self.received
            .saturating_sub(self.in_flight_tags().len() as u64)
    }

    /// Like [`Model::shown_received`], for the consumer of queue `lane`.
    pub fn shown_received_in(&self, lane: usize) -> u64 {
        let in_flight = self
            .tokens
            .iter()
            .filter(|t| {
                t.lane == Some(lane)
                    && t.stage == Stage::Delivered
                    && t.pos < Stage::Delivered.target()
                    && t.delivery_tag.is_some()
            })
            .count() as u64;
        self.received_per_lane
            .get(lane)
            .copied()
            .unwrap_or(0)
            .saturating_sub(in_flight)
    }

    /// Delivery tags of messages still drawn on their way to the consumer.
    pub fn in_flight_tags(&self) -> SmallSet<u64> {
        self.tokens
            .iter()
            .filter(|t| t.stage == Stage::Delivered && t.pos < Stage::Delivered.target())
            .filter_map(|t| t.delivery_tag)
            .collect()
    }

    /// Applies `action`; returns the requests to send, and whether anything
    /// visible changed (a tick with nothing moving changes nothing).
    pub fn apply(&mut self, action: Action) -> (Vec<Request>, bool) {
        match action {
            Action::Tick { now_ms } => self.tick(now_ms),
            Action::Publish => (self.publish().into_iter().collect(), true),
            Action::ResetScene => (self.reset_scene(), true),
            Action::SwitchMode {
                mode,
                generation,
                scene,
            } => {
                let (paused, speed) = (self.paused, self.speed);
                *self = Model::new(mode, generation, scene);
                self.paused = paused;
                self.speed = speed;
                (Vec::new(), true)
            }
            Action::Link { generation, event } => {
                if generation != self.generation {
                    return (Vec::new(), false);
                }
                (self.link_event(event), true)
            }
            Action::Frame { generation, frame } => {
                if generation != self.generation {
                    return (Vec::new(), false);
                }
                self.frames = self.frames.saturating_add(1);
                (self.frame(frame), true)
            }
            Action::Frames { generation, frames } => {
                let mut out = Vec::new();
                let mut changed = false;
                for frame in frames {
                    let (more, c) = self.apply(Action::Frame { generation, frame });
                    out.extend(more);
                    changed |= c;
                }
                (out, changed)
            }
            Action::SetClock { paused, speed } => {
                self.paused = paused;
                self.speed = if speed.is_finite() {
                    speed.clamp(MIN_SPEED, MAX_SPEED)
                } else {
                    1.0
                };
                (Vec::new(), true)
            }
            Action::DismissError => {
                self.error = None;
                (Vec::new(), true)
            }
            Action::Lesson(_)
            | Action::Ui(_)
            | Action::Notice(_)
            | Action::Export(_)
            | Action::Time(_)
            | Action::Build(_) => (Vec::new(), false),
            Action::TogglePause => {
                self.paused = !self.paused;
                (Vec::new(), true)
            }
        }
    }

    /// A model for replaying a recorded run (see [`crate::timeline`]): its link
    /// is open and the scene's declaration comes from the record through
    /// [`Model::note_sent`], not from [`LinkEvent::Open`].
    pub fn for_replay(mode: Mode, generation: u32, scene: &'static Scene) -> Self {
        let mut m = Model::new(mode, generation, scene);
        m.link_open = true;
        m
    }

    /// Replay: `req` was sent by this page. Has the effects the action that
    /// sent it had (a publish makes its token, an ack marks its token, a
    /// declaration starts or joins the scene's setup), so a model fed the
    /// recorded requests and the broker's frames in their recorded order ends
    /// in the state the live one was in.
    pub fn note_sent(&mut self, req: &Request) {
        self.next_id = self.next_id.max(req.id.saturating_add(1));
        self.push_event(None, "out", describe_request(req));
        let pending = match &req.method {
            Method::Publish { .. } => {
                let n = self.next_order;
                self.next_order += 1;
                self.published += 1;
                let mut token = self.new_token(Stage::Sent, 0.0, format!("#{n}"));
                token.req_id = Some(req.id);
                self.tokens.push(token);
                self.trim_tokens();
                Pending::Publish
            }
            Method::Ack { delivery_tag, .. } => {
                let tag = *delivery_tag;
                if let Some(t) = self
                    .tokens
                    .iter_mut()
                    .find(|t| t.delivery_tag == Some(tag) && t.stage == Stage::Delivered)
                {
                    t.ack_sent = true;
                }
                Pending::Ack { delivery_tag: tag }
            }
            _ => {
                if self.setup_waiting.is_empty() {
                    // A (re)declaration starts, as in `reset_scene` + `setup_requests`.
                    self.error = None;
                    self.tokens.clear();
                    self.early.clear();
                    self.ready = false;
                    self.connection_closed = false;
                    self.channel_closed = false;
                }
                self.setup_waiting.insert(req.id);
                Pending::Setup
            }
        };
        self.expect_reply(req.id, pending);
    }

    /// The picture of this state at rest: every token where its stage puts
    /// it, finished ones gone (a replayed state has no animation history).
    pub fn settle(&mut self) {
        let now = self.anim_ms;
        self.tokens
            .retain(|t| t.gone_ms.is_none() && !matches!(t.stage, Stage::Acked | Stage::Dropped));
        for t in &mut self.tokens {
            t.pos = t.stage.target();
            if t.stage == Stage::Delivered && t.arrived_ms.is_none() {
                t.arrived_ms = Some(now);
            }
        }
        self.last_wall = None;
    }

    /// Virtual time of the last frame applied, if any.
    pub fn last_frame_ms(&self) -> Option<u64> {
        self.events.iter().find_map(|e| e.at_ms)
    }

    fn request(&mut self, method: Method, pending: Pending) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        self.expect_reply(id, pending);
        let req = Request::new(id, method);
        self.push_event(None, "out", describe_request(&req));
        req
    }

    /// Remembers what request `id` was for, until its reply. Publishes are
    /// not kept: their token has the request id (`Token::req_id`), and the
    /// reply to a publish whose token is gone has nothing left to update. A
    /// burst of thousands of publishes would otherwise fill this map with
    /// thousands of entries, copied with the model at every step and shifted
    /// at every reply.
    fn expect_reply(&mut self, id: u64, pending: Pending) {
        if pending != Pending::Publish {
            self.pending.insert(id, pending);
        }
    }

    /// What request `id` was for (forgotten from now on).
    fn take_pending(&mut self, id: u64) -> Pending {
        match self.pending.remove(&id) {
            Some(p) => p,
            None if self.tokens.iter().any(|t| t.req_id == Some(id)) => Pending::Publish,
            None => Pending::Other,
        }
    }

    fn push_event(&mut self, at_ms: Option<u64>, kind: &'static str, text: String) {
        self.events.push_front(EventLine { at_ms, kind, text });
        self.events.truncate(MAX_EVENTS);
    }

    fn link_event(&mut self, event: LinkEvent) -> Vec<Request> {
        match event {
            LinkEvent::Open => {
                self.link_open = true;
                if self.mode == Mode::Real {
                    if matches!(self.status, LinkStatus::BrokerUnreachable(_)) {
                        // Declare the scene once the bridge reports the broker up.
                        return Vec::new();
                    }
                    self.status = LinkStatus::BridgeConnected;
                }
                self.setup_requests()
            }
            LinkEvent::BrokerDown(why) => {
                self.ready = false;
                self.push_event(None, "status", format!("broker unreachable: {why}"));
                if self.mode == Mode::Real {
                    self.status = LinkStatus::BrokerUnreachable(why);
                }
                Vec::new()
            }
            LinkEvent::Failed(why) => {
                self.link_open = false;
                self.ready = false;
                self.declared = false;
                self.pending.clear();
                self.setup_waiting.clear();
                if self.mode == Mode::Real {
                    self.status = LinkStatus::BridgeUnreachable(why.clone());
                } else {
                    self.error = Some(format!("simulation stopped: {why}"));
                }
                self.push_event(None, "status", format!("link failed: {why}"));
                Vec::new()
            }
        }
    }

    /// The scene, declared through the protocol: exchange, queue, binding, consumer.
    fn setup_requests(&mut self) -> Vec<Request> {
        self.ready = false;
        self.declared = false;
        self.setup_waiting.clear();
        let mut out = Vec::new();
        if self.connection_closed {
            // Opens connection 1 with channel 1.
            out.push(self.request(Method::ConnectionOpen, Pending::Setup));
        } else if self.channel_closed {
            out.push(self.request(Method::ChannelOpen, Pending::Setup));
        }
        self.connection_closed = false;
        self.channel_closed = false;
        for method in self.scene.setup_methods() {
            out.push(self.request(method, Pending::Setup));
        }
        self.setup_waiting = out.iter().map(|r| r.id).collect();
        out
    }

    fn reset_scene(&mut self) -> Vec<Request> {
        self.error = None;
        if !self.link_open {
            return Vec::new();
        }
        // Anything in flight belongs to the old scene.
        self.tokens.clear();
        self.early.clear();
        self.setup_requests()
    }

    fn publish(&mut self) -> Option<Request> {
        if !self.ready {
            return None;
        }
        let n = self.next_order;
        self.next_order += 1;
        let req = self.request(self.scene.publish_method(n), Pending::Publish);
        self.published += 1;
        let mut token = self.new_token(Stage::Sent, 0.0, format!("#{n}"));
        token.req_id = Some(req.id);
        self.tokens.push(token);
        self.trim_tokens();
        Some(req)
    }

    fn new_token(&mut self, stage: Stage, pos: f64, label: String) -> Token {
        let key = self.next_key;
        self.next_key += 1;
        Token::new(key, stage, pos, label)
    }

    fn trim_tokens(&mut self) {
        if self.tokens.len() <= MAX_TOKENS {
            return;
        }
        // Forget finished ones first, then the oldest.
        self.tokens
            .retain(|t| !matches!(t.stage, Stage::Acked | Stage::Dropped));
        while self.tokens.len() > MAX_TOKENS {
            self.tokens.remove(0);
        }
    }

    fn frame(&mut self, frame: ServerFrame) -> Vec<Request> {
        let at = Some(frame.at_ms);
        match frame.event {
            Event::Reply { id, result } => self.reply(at, id, result),
            Event::Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
                message,
                message_id,
                ..
            } => {
                self.push_event(
                    at,
                    "deliver",
                    format!(
                        "deliver to {consumer_tag}: tag {delivery_tag}{} from '{exchange}' key '{routing_key}'",
                        if redelivered { " (redelivered)" } else { "" }
                    ),
                );
                self.deliver(
                    consumer_tag.to_string(),
                    delivery_tag,
                    redelivered,
                    routing_key.to_string(),
                    message,
                    message_id,
                );
                Vec::new()
            }
            Event::Trace(trace) => {
                self.traced = true;
                let text = describe_trace(&trace);
                match &trace {
                    Trace::Routed {
                        message_id,
                        exchange,
                        destination,
                        why,
                        ..
                    } => {
                        // Several routes of one message read as one sentence.
                        match &mut self.why_routes {
                            Some((m, e, dests, _)) if m == message_id && e == exchange => {
                                dests.push(destination.clone());
                            }
                            slot => {
                                *slot = Some((
                                    *message_id,
                                    exchange.clone(),
                                    vec![destination.clone()],
                                    why.clone(),
                                ));
                            }
                        }
                        self.why = match &self.why_routes {
                            Some((m, e, dests, why)) if dests.len() > 1 => Some(Why::Copies {
                                message: *m,
                                exchange: e.clone(),
                                dests: dests.clone(),
                                rule: why.clone(),
                            }),
                            _ => Step::of_trace(&trace).map(|(m, step)| Why::Step(m, step)),
                        };
                    }
                    Trace::ToAlternateExchange { .. }
                    | Trace::Dropped { .. }
                    | Trace::DeadLettered { .. } => {
                        self.why_routes = None;
                        self.why = Step::of_trace(&trace).map(|(m, step)| Why::Step(m, step));
                    }
                    _ => {}
                }
                self.push_event(at, "trace", text);
                self.trace(trace);
                Vec::new()
            }
            Event::Return {
                reply_code,
                reply_text,
                exchange,
                routing_key,
                ..
            } => {
                self.push_event(
                    at,
                    "error",
                    format!("returned {reply_code} {reply_text}: exchange '{exchange}' key '{routing_key}'"),
                );
                Vec::new()
            }
            Event::Confirm { seq, ack, .. } => {
                self.push_event(
                    at,
                    "reply",
                    format!("confirm {} seq {seq}", if ack { "ack" } else { "nack" }),
                );
                Vec::new()
            }
            Event::ConsumerCancelled { consumer_tag, .. } => {
                self.ready = false;
                self.error = Some(format!(
                    "The broker cancelled consumer '{consumer_tag}'. Press “Reset scene”."
                ));
                self.push_event(at, "error", format!("consumer {consumer_tag} cancelled"));
                Vec::new()
            }
            Event::Closed {
                connection,
                channel,
                error,
            } => {
                self.ready = false;
                match channel {
                    Some(_) => self.channel_closed = true,
                    None => self.connection_closed = true,
                }
                let text = describe_error(&error);
                let what = match channel {
                    Some(ch) => format!("channel {connection}/{ch}"),
                    None => format!("connection {connection}"),
                };
                self.error = Some(format!("The broker closed {what}: {text}"));
                self.push_event(at, "error", format!("{what} closed: {text}"));
                Vec::new()
            }
            Event::Status { broker, detail } => {
                self.push_event(
                    at,
                    "status",
                    format!("broker link {broker:?}{}", suffix(&detail)),
                );
                self.status_frame(broker, detail)
            }
            Event::ProtocolError { id, message } => {
                if let Some(id) = id {
                    self.pending.remove(&id);
                }
                self.error = Some(format!("Protocol error: {message}"));
                self.push_event(at, "error", format!("protocol error: {message}"));
                Vec::new()
            }
        }
    }

    fn status_frame(&mut self, broker: LinkState, detail: String) -> Vec<Request> {
        if self.mode != Mode::Real {
            return Vec::new();
        }
        match broker {
            LinkState::Up => {
                let was_up = self.status == LinkStatus::Connected;
                self.status = LinkStatus::Connected;
                if !was_up && !self.ready && self.setup_waiting.is_empty() && self.link_open {
                    // The relay reopened connection 1 (with channel 1) itself.
                    self.connection_closed = false;
                    self.channel_closed = false;
                    self.error = None;
                    if self.declared {
                        // Back after an outage: the bridge restored the scene.
                        self.ready = true;
                        Vec::new()
                    } else {
                        // The broker was down from the start: declare the scene now.
                        self.setup_requests()
                    }
                } else {
                    Vec::new()
                }
            }
            LinkState::Down | LinkState::Reconnecting => {
                self.ready = false;
                self.setup_waiting.clear();
                let why = if detail.is_empty() {
                    match broker {
                        LinkState::Reconnecting => "reconnecting".to_string(),
                        _ => "down".to_string(),
                    }
                } else {
                    detail
                };
                self.status = LinkStatus::BrokerUnreachable(why);
                Vec::new()
            }
        }
    }

    fn reply(&mut self, at: Option<u64>, id: u64, result: ReplyResult) -> Vec<Request> {
        let pending = self.take_pending(id);
        match result {
            ReplyResult::Ok(outcome) => {
                self.push_event(
                    at,
                    "reply",
                    format!("#{id} ok: {}", describe_outcome(&outcome)),
                );
                match pending {
                    Pending::Setup => {
                        self.setup_waiting.remove(&id);
                        if self.setup_waiting.is_empty() {
                            self.ready = true;
                            self.declared = true;
                            if self.mode == Mode::Real && self.status == LinkStatus::BridgeConnected
                            {
                                // Every declare worked: the broker is there.
                                self.status = LinkStatus::Connected;
                            }
                        }
                    }
                    Pending::Publish => {
                        if let Outcome::Published { message_id, .. } = outcome {
                            self.published_ok(id, message_id);
                        }
                    }
                    Pending::Ack { delivery_tag } => {
                        self.acked(delivery_tag);
                    }
                    Pending::Other => {}
                }
            }
            ReplyResult::Error(error) => {
                let text = describe_error(&error);
                self.push_event(at, "error", format!("#{id} failed: {text}"));
                self.error = Some(format!("The broker refused request #{id}: {text}"));
                // A broker error closed the channel or connection (a `closed` event
                // came first); a relay refusal closed nothing.
                if pending == Pending::Setup {
                    self.setup_waiting.clear();
                    self.ready = false;
                }
                if pending == Pending::Publish {
                    if let Some(t) = self.tokens.iter_mut().find(|t| t.req_id == Some(id)) {
                        t.stage = Stage::Dropped;
                    }
                }
            }
        }
        Vec::new()
    }

    fn published_ok(&mut self, id: u64, message_id: MessageId) {
        let Some(token) = self.tokens.iter_mut().find(|t| t.req_id == Some(id)) else {
            return;
        };
        token.message_id = Some(message_id);
        let facts = self.early.remove(&message_id).unwrap_or_default();
        if !facts.is_empty() {
            for f in facts {
                self.fact(message_id, f.lane, f.stage, f.delivery_tag);
            }
            return;
        }
        if self.traced {
            return;
        }
        // No routing report (real mode): route by the scene's own bindings.
        let lanes = self
            .scene
            .routes_to(self.scene.exchange, self.scene.routing_key);
        self.why = Some(Why::Inferred {
            message: message_id,
            dests: lanes
                .iter()
                .map(|&l| self.scene.queues[l].name.to_string())
                .collect(),
        });
        if lanes.is_empty() {
            if let Some(t) = self.tokens.iter_mut().find(|t| t.req_id == Some(id)) {
                t.stage = Stage::Dropped;
                t.inferred = true;
            }
        }
        for lane in lanes {
            if self.fact(message_id, Some(lane), Stage::Queued, None) {
                if let Some(t) = self
                    .tokens
                    .iter_mut()
                    .find(|t| t.message_id == Some(message_id) && t.lane == Some(lane))
                {
                    t.inferred = true;
                }
            }
        }
    }

    /// Is a publish waiting for its reply (so an unknown message id may be its)?
    fn publish_in_flight(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| t.req_id.is_some() && t.message_id.is_none() && t.stage < Stage::Acked)
    }

    fn remember_early(&mut self, message_id: MessageId, fact: Fact) {
        if self.early.len() >= MAX_EARLY && !self.early.contains_key(&message_id) {
            let first = self.early.keys().next().copied();
            if let Some(first) = first {
                self.early.remove(&first);
            }
        }
        let facts = self.early.get_or_insert_with(message_id, Vec::new);
        if facts.len() < 32 {
            facts.push(fact);
        }
    }

    /// Applies "message `message_id` reached `stage` in queue `lane`" to its
    /// token: the token of that lane, or the not yet routed one, or a copy of
    /// another lane's (a fanout copies a message into every bound queue).
    /// Returns false if no token has that message id.
    fn fact(
        &mut self,
        message_id: MessageId,
        lane: Option<usize>,
        stage: Stage,
        delivery_tag: Option<u64>,
    ) -> bool {
        let now = Some(self.anim_ms);
        let same = |t: &Token| t.message_id == Some(message_id);
        let idx = self
            .tokens
            .iter()
            .position(|t| same(t) && t.lane == lane)
            .or_else(|| {
                lane.and_then(|_| self.tokens.iter().position(|t| same(t) && t.lane.is_none()))
            });
        let idx = match idx {
            Some(i) => i,
            None => {
                let Some(orig) = lane.and_then(|_| self.tokens.iter().position(same)) else {
                    return false;
                };
                let mut copy = self.tokens[orig].clone();
                copy.key = self.next_key;
                self.next_key += 1;
                copy.req_id = None;
                copy.lane = lane;
                copy.stage = Stage::Sent;
                copy.pos = copy.pos.min(1.0);
                copy.delivery_tag = None;
                copy.arrived_ms = None;
                copy.gone_ms = None;
                copy.ack_sent = false;
                self.tokens.push(copy);
                self.tokens.len() - 1
            }
        };
        let t = &mut self.tokens[idx];
        if t.lane.is_none() {
            t.lane = lane;
        }
        match stage {
            Stage::Queued if t.stage == Stage::Delivered => {
                // Requeued after a delivery: back to the queue.
                t.stage = Stage::Queued;
                t.arrived_ms = None;
                t.ack_sent = false;
                t.delivery_tag = None;
            }
            Stage::Delivered => {
                // (Re)delivered: a new delivery tag, to be acked anew.
                t.stage = Stage::Delivered;
                t.delivery_tag = delivery_tag;
                t.arrived_ms = None;
                t.ack_sent = false;
            }
            _ if stage > t.stage => {
                t.stage = stage;
                if matches!(stage, Stage::Acked | Stage::Dropped) && t.gone_ms.is_none() {
                    t.gone_ms = now;
                }
            }
            _ => {}
        }
        true
    }

    fn trace(&mut self, trace: Trace) {
        let scene = self.scene;
        let lane_of = |q: &str| scene.lane_of_queue(q);
        let (message_id, lane, stage) = match trace {
            Trace::Routed {
                message_id,
                destination_kind: DestinationKind::Queue,
                destination,
                ..
            } => match lane_of(&destination) {
                Some(l) => (message_id, Some(l), Stage::Routed),
                None => return,
            },
            Trace::Enqueued { message_id, queue } | Trace::Requeued { message_id, queue } => {
                (message_id, lane_of(&queue), Stage::Queued)
            }
            Trace::Acked { message_id, queue } => (message_id, lane_of(&queue), Stage::Acked),
            Trace::DeadLettered {
                message_id, queue, ..
            } => (message_id, lane_of(&queue), Stage::Dropped),
            Trace::Dropped {
                message_id, queue, ..
            } => (
                message_id,
                queue.as_deref().and_then(lane_of),
                Stage::Dropped,
            ),
            Trace::Routed { .. } | Trace::ToAlternateExchange { .. } => return,
        };
        if !self.fact(message_id, lane, stage, None) && self.publish_in_flight() {
            self.remember_early(
                message_id,
                Fact {
                    lane,
                    stage,
                    delivery_tag: None,
                },
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        consumer_tag: String,
        delivery_tag: u64,
        redelivered: bool,
        routing_key: String,
        message: Message,
        message_id: MessageId,
    ) {
        self.received += 1;
        let lane = self.scene.lane_of_consumer(&consumer_tag);
        if let Some(n) = lane.and_then(|l| self.received_per_lane.get_mut(l)) {
            *n += 1;
        }
        self.log.push_front(Received {
            n: self.received,
            consumer_tag,
            delivery_tag,
            routing_key,
            redelivered,
            body: message.body.to_string(),
            acked: false,
        });
        self.log.truncate(MAX_LOG);

        // The token: by message id; else (real mode, ids that do not match) the
        // oldest inferred one ready in that queue; else a publish whose reply is
        // still coming; else it was in the queue before we looked.
        if self.fact(message_id, lane, Stage::Delivered, Some(delivery_tag)) {
            return;
        }
        if let Some(t) = self.tokens.iter_mut().find(|t| {
            t.inferred && t.lane == lane && t.stage == Stage::Queued && t.message_id.is_some()
        }) {
            t.stage = Stage::Delivered;
            t.delivery_tag = Some(delivery_tag);
            t.arrived_ms = None;
            t.ack_sent = false;
            return;
        }
        if self.publish_in_flight() {
            self.remember_early(
                message_id,
                Fact {
                    lane,
                    stage: Stage::Delivered,
                    delivery_tag: Some(delivery_tag),
                },
            );
            return;
        }
        let mut t = self.new_token(Stage::Delivered, 2.0, format!("tag {delivery_tag}"));
        t.message_id = Some(message_id);
        t.lane = lane;
        t.delivery_tag = Some(delivery_tag);
        self.tokens.push(t);
        self.trim_tokens();
    }

    fn acked(&mut self, delivery_tag: u64) {
        if let Some(r) = self
            .log
            .iter_mut()
            .find(|r| r.delivery_tag == delivery_tag && !r.acked)
        {
            r.acked = true;
        }
        let now = Some(self.anim_ms);
        if let Some(t) = self
            .tokens
            .iter_mut()
            .find(|t| t.delivery_tag == Some(delivery_tag) && t.stage == Stage::Delivered)
        {
            t.stage = Stage::Acked;
            t.gone_ms = now;
        }
    }

    fn tick(&mut self, wall_ms: f64) -> (Vec<Request>, bool) {
        let wall_dt = match self.last_wall {
            Some(prev) => (wall_ms - prev).clamp(0.0, 100.0),
            None => 0.0,
        };
        self.last_wall = Some(wall_ms);
        let dt = if self.paused {
            0.0
        } else {
            wall_dt * self.speed
        };
        self.anim_ms += dt;
        let now_ms = self.anim_ms;
        let step = dt / SEGMENT_MS;
        // Animation time is state: while anything is drawn, a tick changes it.
        let mut changed = dt > 0.0 && !self.tokens.is_empty();
        let mut acks = Vec::new();
        for t in &mut self.tokens {
            let target = t.stage.target();
            if t.pos < target {
                t.pos = (t.pos + step).min(target);
                changed = true;
            } else if t.pos > target {
                // Requeued: jump back to the queue.
                t.pos = target;
                changed = true;
            }
            if t.stage == Stage::Delivered && t.pos >= 3.0 {
                match t.arrived_ms {
                    None => {
                        t.arrived_ms = Some(now_ms);
                        changed = true;
                    }
                    Some(arrived) if !t.ack_sent && now_ms - arrived >= PROCESS_MS => {
                        if let Some(tag) = t.delivery_tag {
                            t.ack_sent = true;
                            acks.push(tag);
                            changed = true;
                        }
                    }
                    Some(_) => {}
                }
            }
            if matches!(t.stage, Stage::Acked | Stage::Dropped) {
                if t.gone_ms.is_none() {
                    t.gone_ms = Some(now_ms);
                }
                changed = true;
            }
        }
        let before = self.tokens.len();
        self.tokens.retain(|t| match t.gone_ms {
            Some(g) => now_ms - g < FADE_MS || t.pos < t.stage.target(),
            None => true,
        });
        changed |= self.tokens.len() != before;
        if self.tokens.is_empty() {
            // Nothing moves: the next token starts timing afresh.
            self.last_wall = None;
        }
        let out = acks
            .into_iter()
            .map(|tag| {
                self.request(
                    Method::Ack {
                        delivery_tag: tag,
                        multiple: false,
                    },
                    Pending::Ack { delivery_tag: tag },
                )
            })
            .collect();
        (out, changed)
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// `404 NOT_FOUND: no queue 'q'`
pub fn describe_error(e: &AmqpError) -> String {
    let mut s = format!("{} {}", e.code, e.name);
    if !e.text.is_empty() {
        s.push_str(": ");
        s.push_str(&e.text);
    }
    s
}

/// One line for a request in the inspector.
pub fn describe_request(req: &Request) -> String {
    let detail = match &req.method {
        Method::ExchangeDeclare { exchange, kind, .. } => {
            format!(" '{exchange}' ({})", kind.as_str())
        }
        Method::QueueDeclare { queue, .. } | Method::QueuePurge { queue } => format!(" '{queue}'"),
        Method::QueueBind {
            queue,
            exchange,
            routing_key,
            ..
        } => format!(" '{queue}' to '{exchange}' with key '{routing_key}'"),
        Method::Publish {
            exchange,
            routing_key,
            body,
            ..
        } => format!(" to '{exchange}' key '{routing_key}': {body}"),
        Method::Consume {
            queue,
            consumer_tag,
            ..
        } => format!(" '{queue}' as '{consumer_tag}'"),
        Method::Ack { delivery_tag, .. } => format!(" tag {delivery_tag}"),
        _ => String::new(),
    };
    format!("#{} {}{detail}", req.id, req.method.op())
}

fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".into(),
        Outcome::QueueDeclareOk {
            queue,
            message_count,
            consumer_count,
        } => format!("queue '{queue}' ({message_count} ready, {consumer_count} consumers)"),
        Outcome::MessageCount { message_count } => format!("{message_count} messages"),
        Outcome::Published { message_id, .. } => format!("published (message {message_id})"),
        Outcome::GetOk { delivery_tag, .. } => format!("got tag {delivery_tag}"),
        Outcome::GetEmpty => "empty".into(),
        Outcome::ConsumeOk { consumer_tag } => format!("consuming as '{consumer_tag}'"),
    }
}

/// A trace as the event log words it (in English, as the rest of the
/// protocol log), e.g. "message 1: matched binding `new` on exchange
/// `orders` → `orders.new`".
pub fn describe_trace(t: &Trace) -> String {
    match (Step::of_trace(t), t) {
        (Some((m, step)), _) => Why::Step(m, step).text(crate::i18n::Lang::En),
        (None, Trace::Acked { message_id, queue }) => {
            format!("message {message_id}: acked, removed from `{queue}`")
        }
        (None, _) => format!("message {}", t.message_id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{DIRECT, FANOUT};
    use sim_core::protocol::ErrorScope;

    fn frame(event: Event) -> Action {
        Action::Frame {
            generation: 0,
            frame: ServerFrame { at_ms: 0, event },
        }
    }

    fn ok(id: u64, outcome: Outcome) -> Action {
        frame(Event::Reply {
            id,
            result: ReplyResult::Ok(outcome),
        })
    }

    /// A model whose scene is declared (every setup request answered ok).
    fn ready(mode: Mode) -> Model {
        let mut m = Model::new(mode, 0, &DIRECT);
        let (setup, _) = m.apply(Action::Link {
            generation: 0,
            event: LinkEvent::Open,
        });
        assert_eq!(
            setup.iter().map(|r| r.method.op()).collect::<Vec<_>>(),
            [
                "basic_qos",
                "exchange_declare",
                "queue_declare",
                "queue_purge",
                "queue_bind",
                "consume"
            ]
        );
        assert!(!m.ready);
        for r in setup {
            m.apply(ok(r.id, Outcome::Ok));
        }
        assert!(m.ready);
        m
    }

    fn deliver(tag: u64, message_id: u64, body: &str) -> Action {
        frame(Event::Deliver {
            connection: 1,
            channel: 1,
            consumer_tag: "consumer-1".into(),
            delivery_tag: tag,
            redelivered: false,
            exchange: "orders".into(),
            routing_key: "new".into(),
            message: Message {
                body: body.into(),
                properties: Default::default(),
            },
            message_id,
        })
    }

    /// Ticks as the Yew reducer applies them: an action that reports no change
    /// and sends nothing is thrown away (the old state is kept).
    fn run_ticks(m: &mut Model, from: f64, to: f64) -> Vec<Request> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            let mut next = m.clone();
            let (reqs, changed) = next.apply(Action::Tick { now_ms: t });
            if changed || !reqs.is_empty() {
                *m = next;
            }
            out.extend(reqs);
            t += 16.0;
        }
        out
    }

    #[test]
    fn publish_needs_a_ready_scene() {
        let mut m = Model::new(Mode::Sim, 0, &DIRECT);
        assert!(m.apply(Action::Publish).0.is_empty());
        assert_eq!(m.published, 0);
    }

    #[test]
    fn sim_order_events_before_reply_then_ack_after_animation() {
        let mut m = ready(Mode::Sim);
        let (out, _) = m.apply(Action::Publish);
        let publish = &out[0];
        match &publish.method {
            Method::Publish {
                exchange,
                routing_key,
                body,
                ..
            } => {
                assert_eq!(exchange, "orders");
                assert_eq!(routing_key, "new");
                assert!(body.contains("\"order_id\":1"), "{body}");
            }
            other => panic!("not a publish: {other:?}"),
        }
        // The simulation reports routing and delivery before the publish's reply.
        m.apply(frame(Event::Trace(Trace::Routed {
            message_id: 7,
            exchange: "orders".into(),
            destination_kind: DestinationKind::Queue,
            destination: "orders.new".into(),
            binding_key: "new".into(),
            why: String::new(),
        })));
        m.apply(frame(Event::Trace(Trace::Enqueued {
            message_id: 7,
            queue: "orders.new".into(),
        })));
        m.apply(deliver(1, 7, "{\"order_id\":1}"));
        assert_eq!(m.received, 1);
        m.apply(ok(
            publish.id,
            Outcome::Published {
                seq: None,
                message_id: 7,
            },
        ));
        assert_eq!(m.tokens.len(), 1);
        assert_eq!(m.tokens[0].stage, Stage::Delivered);
        let why = m.why.as_ref().expect("why").text(crate::i18n::Lang::En);
        assert!(
            why.contains("matched binding `new` on exchange `orders`"),
            "{why}"
        );
        assert_eq!(m.unacked_count(), 1);
        assert!(!m.tokens[0].inferred);
        // No ack before the token has reached the consumer.
        let early = run_ticks(&mut m, 0.0, 3.0 * SEGMENT_MS - 50.0);
        assert!(early.is_empty());
        let acks = run_ticks(
            &mut m,
            3.0 * SEGMENT_MS,
            3.0 * SEGMENT_MS + PROCESS_MS + 100.0,
        );
        assert_eq!(acks.len(), 1);
        assert_eq!(
            acks[0].method,
            Method::Ack {
                delivery_tag: 1,
                multiple: false
            }
        );
        m.apply(ok(acks[0].id, Outcome::Ok));
        assert_eq!(m.unacked_count(), 0);
        assert!(m.log[0].acked);
        assert_eq!(m.log[0].body, "{\"order_id\":1}");
        // The token fades out and is forgotten.
        run_ticks(&mut m, 4000.0, 4000.0 + FADE_MS + 100.0);
        assert!(m.tokens.is_empty());
    }

    #[test]
    fn real_mode_infers_queueing_without_traces() {
        let mut m = Model::new(Mode::Real, 0, &DIRECT);
        assert_eq!(m.status, LinkStatus::Connecting);
        let (setup, _) = m.apply(Action::Link {
            generation: 0,
            event: LinkEvent::Open,
        });
        assert_eq!(m.status, LinkStatus::BridgeConnected);
        m.apply(frame(Event::Status {
            broker: LinkState::Up,
            detail: String::new(),
        }));
        assert_eq!(m.status, LinkStatus::Connected);
        for r in setup {
            m.apply(ok(r.id, Outcome::Ok));
        }
        assert!(m.ready);
        let (out, _) = m.apply(Action::Publish);
        m.apply(ok(
            out[0].id,
            Outcome::Published {
                seq: None,
                message_id: 1,
            },
        ));
        assert_eq!(m.ready_count(), 1);
        assert!(m.tokens[0].inferred);
        assert!(m
            .why
            .as_ref()
            .expect("why")
            .text(crate::i18n::Lang::En)
            .contains("`orders.new`"));
        // The bridge may not know our message id: the queued token is matched anyway.
        m.apply(deliver(5, 999, "x"));
        assert_eq!(m.ready_count(), 0);
        assert_eq!(m.unacked_count(), 1);
        assert_eq!(m.tokens.len(), 1);
    }

    #[test]
    fn broker_down_at_start_declares_the_scene_when_up() {
        let mut m = Model::new(Mode::Real, 0, &DIRECT);
        m.apply(frame(Event::Status {
            broker: LinkState::Down,
            detail: "connection refused".into(),
        }));
        let (out, _) = m.apply(Action::Link {
            generation: 0,
            event: LinkEvent::Open,
        });
        assert!(
            out.is_empty(),
            "nothing is declared while the broker is down"
        );
        assert_eq!(
            m.status,
            LinkStatus::BrokerUnreachable("connection refused".into())
        );
        assert_eq!(m.status.label(), "broker unreachable: connection refused");
        let (out, _) = m.apply(frame(Event::Status {
            broker: LinkState::Up,
            detail: String::new(),
        }));
        assert_eq!(out.len(), 6);
        assert_eq!(out[5].method.op(), "consume");
        assert_eq!(m.status, LinkStatus::Connected);
    }

    #[test]
    fn outage_then_up_trusts_the_bridge_restore() {
        let mut m = ready(Mode::Real);
        m.apply(frame(Event::Status {
            broker: LinkState::Up,
            detail: String::new(),
        }));
        m.apply(frame(Event::Status {
            broker: LinkState::Reconnecting,
            detail: String::new(),
        }));
        assert_eq!(m.status.kind(), "broker-unreachable");
        assert!(!m.ready);
        m.apply(frame(Event::Status {
            broker: LinkState::Down,
            detail: "connection refused".into(),
        }));
        let (out, _) = m.apply(frame(Event::Status {
            broker: LinkState::Up,
            detail: "reconnected; re-declared 1 exchanges, 1 queues, 2 bindings; \
                     reopened 1 connections, 1 channels, 1 consumers"
                .into(),
        }));
        // The bridge restored the scene, consumer included: nothing to send
        // (a second consume with the same tag would be refused).
        assert!(out.is_empty(), "{out:?}");
        assert!(m.ready);
        assert_eq!(m.status, LinkStatus::Connected);
        assert!(m.error.is_none());
        // A reset still declares everything again.
        let (out, _) = m.apply(Action::ResetScene);
        assert_eq!(out.len(), 6);
        // Whereas a user's reset after a connection error in simulation reopens it.
        let mut s = ready(Mode::Sim);
        s.apply(frame(Event::Closed {
            connection: 1,
            channel: None,
            error: AmqpError {
                scope: ErrorScope::Connection,
                code: 504,
                name: "CHANNEL_ERROR".into(),
                text: String::new(),
            },
        }));
        let (out, _) = s.apply(Action::ResetScene);
        assert_eq!(out[0].method, Method::ConnectionOpen);
    }

    #[test]
    fn relay_refusal_keeps_the_scene_ready() {
        let mut m = ready(Mode::Real);
        let (out, _) = m.apply(Action::Publish);
        m.apply(frame(Event::Reply {
            id: out[0].id,
            result: ReplyResult::Error(AmqpError {
                scope: ErrorScope::Channel,
                code: 403,
                name: "ACCESS_REFUSED".into(),
                text: "argument not allowed".into(),
            }),
        }));
        assert!(m.error.is_some());
        assert!(m.ready);
    }

    #[test]
    fn link_failure_reports_bridge_unreachable() {
        let mut m = Model::new(Mode::Real, 3, &DIRECT);
        // Frames of an older link are ignored.
        let (_, changed) = m.apply(Action::Link {
            generation: 2,
            event: LinkEvent::Failed("old".into()),
        });
        assert!(!changed);
        m.apply(Action::Link {
            generation: 3,
            event: LinkEvent::Failed("connection refused".into()),
        });
        assert_eq!(m.status.label(), "bridge unreachable: connection refused");
        assert_eq!(m.status.kind(), "bridge-unreachable");
    }

    #[test]
    fn healthz_broker_down_waits_for_status_up_before_declaring() {
        let mut m = Model::new(Mode::Real, 0, &DIRECT);
        m.apply(Action::Link {
            generation: 0,
            event: LinkEvent::BrokerDown("connection refused".into()),
        });
        let (out, _) = m.apply(Action::Link {
            generation: 0,
            event: LinkEvent::Open,
        });
        assert!(out.is_empty());
        assert_eq!(m.status.kind(), "broker-unreachable");
        let (out, _) = m.apply(frame(Event::Status {
            broker: LinkState::Up,
            detail: String::new(),
        }));
        assert_eq!(out.len(), 6);
        assert_eq!(m.status, LinkStatus::Connected);
    }

    #[test]
    fn errors_show_a_banner_and_reset_reopens_the_channel() {
        let mut m = ready(Mode::Sim);
        let (out, _) = m.apply(Action::Publish);
        m.apply(frame(Event::Closed {
            connection: 1,
            channel: Some(1),
            error: AmqpError {
                scope: ErrorScope::Channel,
                code: 404,
                name: "NOT_FOUND".into(),
                text: "no exchange 'orders'".into(),
            },
        }));
        m.apply(frame(Event::Reply {
            id: out[0].id,
            result: ReplyResult::Error(AmqpError {
                scope: ErrorScope::Channel,
                code: 404,
                name: "NOT_FOUND".into(),
                text: "no exchange 'orders'".into(),
            }),
        }));
        let banner = m.error.clone().expect("banner");
        assert!(banner.contains("404 NOT_FOUND"), "{banner}");
        assert!(!m.ready);
        let (out, _) = m.apply(Action::ResetScene);
        assert_eq!(out[0].method, Method::ChannelOpen);
        assert_eq!(out.len(), 7);
        assert!(m.error.is_none());
    }

    #[test]
    fn delivery_of_a_message_we_did_not_publish_gets_its_own_token() {
        let mut m = ready(Mode::Sim);
        m.apply(deliver(1, 42, "left over"));
        assert_eq!(m.received, 1);
        assert_eq!(m.tokens.len(), 1);
        assert_eq!(m.tokens[0].pos, 2.0);
        assert_eq!(m.unacked_count(), 1);
    }

    #[test]
    fn a_burst_moves_as_a_few_piles_that_count_every_drawn_message() {
        let mut m = ready(Mode::Sim);
        for _ in 0..MAX_TOKENS {
            m.apply(Action::Publish);
        }
        let d = m.drawing();
        // Published at once, they all sit at the producer: one pile of all.
        assert_eq!(
            d.piles.len(),
            1,
            "{:?}",
            d.piles
                .iter()
                .map(|p| (p.x, p.y, p.count))
                .collect::<Vec<_>>()
        );
        assert_eq!(d.piles[0].count, MAX_TOKENS);
        assert_eq!(d.piles[0].label(), format!("×{MAX_TOKENS}"));
        // One message alone keeps its own label.
        let mut one = ready(Mode::Sim);
        one.apply(Action::Publish);
        let d = one.drawing();
        assert_eq!((d.piles.len(), d.piles[0].count), (1, 1));
        assert_eq!(d.piles[0].label(), d.piles[0].token.label);
    }

    #[test]
    fn queued_messages_fill_their_slots_apart_and_count_the_rest() {
        let mut m = ready(Mode::Sim);
        for _ in 0..10 {
            m.apply(Action::Publish);
        }
        for t in m.tokens.iter_mut() {
            t.lane = Some(0);
            t.stage = Stage::Queued;
            t.pos = 2.0;
        }
        let d = m.drawing();
        // Each slot is its own spot: seven piles of one, three counted.
        assert_eq!(d.piles.len(), crate::scene::QUEUE_SLOTS);
        assert!(d.piles.iter().all(|p| p.count == 1));
        assert_eq!(d.overflow[0], 10 - crate::scene::QUEUE_SLOTS);
        // Tokens at one spot but looking different are not piled together.
        m.tokens[1].stage = Stage::Dropped;
        m.tokens[1].lane = None;
        m.tokens[1].pos = 2.0;
        m.tokens[0].lane = None;
        m.tokens[0].stage = Stage::Sent;
        m.tokens[0].pos = 2.0;
        let d = m.drawing();
        let at_exchange: Vec<_> = d.piles.iter().filter(|p| p.token.lane.is_none()).collect();
        assert_eq!(at_exchange.len(), 2);
    }

    #[test]
    fn a_burst_of_publishes_keeps_no_pending_entry_per_publish() {
        let mut m = ready(Mode::Sim);
        let publishes: Vec<Request> = (0..MAX_TOKENS + 100)
            .map(|_| m.apply(Action::Publish).0.remove(0))
            .collect();
        // The pending-reply map holds no publish (a burst of thousands would
        // be copied with the model at every step)...
        assert!(m.pending.is_empty());
        assert_eq!(m.tokens.len(), MAX_TOKENS);
        // ...and the reply to a publish still reaches its token,
        let last = publishes.last().unwrap();
        m.apply(ok(
            last.id,
            Outcome::Published {
                seq: None,
                message_id: 9,
            },
        ));
        let token = m.tokens.iter().find(|t| t.req_id == Some(last.id));
        assert_eq!(token.and_then(|t| t.message_id), Some(9));
        // an error drops it,
        let before_last = &publishes[publishes.len() - 2];
        m.apply(frame(Event::Reply {
            id: before_last.id,
            result: ReplyResult::Error(AmqpError {
                scope: ErrorScope::Channel,
                code: 404,
                name: "NOT_FOUND".into(),
                text: "no exchange 'orders'".into(),
            }),
        }));
        let token = m.tokens.iter().find(|t| t.req_id == Some(before_last.id));
        assert_eq!(token.map(|t| t.stage), Some(Stage::Dropped));
        // and the reply to one whose token was trimmed away changes no token.
        let tokens = m.tokens.clone();
        m.apply(ok(
            publishes[0].id,
            Outcome::Published {
                seq: None,
                message_id: 10,
            },
        ));
        assert_eq!(m.tokens, tokens);
    }

    #[test]
    fn frames_in_one_batch_act_as_one_frame_each() {
        let frames = vec![ServerFrame {
            at_ms: 1,
            event: Event::Trace(Trace::Enqueued {
                message_id: 7,
                queue: "orders.new".into(),
            }),
        }];
        let Action::Frame { frame, .. } = deliver(1, 7, "{}") else {
            unreachable!("deliver() makes a frame")
        };
        let mut frames = frames;
        frames.push(frame);
        let mut one_by_one = ready(Mode::Sim);
        let mut batched = one_by_one.clone();
        let before = batched.frames;
        for frame in frames.clone() {
            one_by_one.apply(Action::Frame {
                generation: 0,
                frame,
            });
        }
        let (_, changed) = batched.apply(Action::Frames {
            generation: 0,
            frames,
        });
        assert!(changed);
        assert_eq!(batched, one_by_one);
        assert_eq!(batched.frames, before + 2);
        assert_eq!(batched.received, 1);
    }

    #[test]
    fn idle_tick_changes_nothing_and_bounds_hold() {
        let mut m = ready(Mode::Sim);
        assert!(!m.apply(Action::Tick { now_ms: 1.0 }).1);
        assert!(!m.apply(Action::Tick { now_ms: 2.0 }).1);
        for _ in 0..(MAX_TOKENS + 50) {
            m.apply(Action::Publish);
        }
        assert!(m.tokens.len() <= MAX_TOKENS);
        assert!(m.events.len() <= MAX_EVENTS);
    }

    #[test]
    fn received_shows_once_the_token_arrives_and_pause_freezes_it() {
        let mut m = ready(Mode::Sim);
        let (out, _) = m.apply(Action::Publish);
        m.apply(deliver(1, 3, "{}"));
        m.apply(ok(
            out[0].id,
            Outcome::Published {
                seq: None,
                message_id: 3,
            },
        ));
        assert_eq!(m.received, 1);
        assert_eq!(m.shown_received(), 0);
        m.apply(Action::SetClock {
            paused: true,
            speed: 1.0,
        });
        run_ticks(&mut m, 0.0, 5000.0);
        assert_eq!(m.tokens[0].pos, 0.0);
        assert_eq!(m.shown_received(), 0);
        m.apply(Action::SetClock {
            paused: false,
            speed: 2.0,
        });
        // Twice as fast: three segments in half the time.
        run_ticks(&mut m, 6000.0, 6000.0 + 1.5 * SEGMENT_MS + 50.0);
        assert_eq!(m.shown_received(), 1);
        m.apply(Action::SetClock {
            paused: false,
            speed: f64::NAN,
        });
        assert_eq!(m.speed, 1.0);
    }

    fn deliver_to(consumer: &str, queue_tag: u64, message_id: u64) -> Action {
        frame(Event::Deliver {
            connection: 1,
            channel: 1,
            consumer_tag: consumer.into(),
            delivery_tag: queue_tag,
            redelivered: false,
            exchange: "alerts".into(),
            routing_key: "".into(),
            message: Message {
                body: "{}".into(),
                properties: Default::default(),
            },
            message_id,
        })
    }

    fn ready_fanout(mode: Mode) -> Model {
        let mut m = Model::new(mode, 0, &FANOUT);
        let (setup, _) = m.apply(Action::Link {
            generation: 0,
            event: LinkEvent::Open,
        });
        assert_eq!(setup.len(), 10);
        for r in setup {
            m.apply(ok(r.id, Outcome::Ok));
        }
        assert!(m.ready);
        m
    }

    #[test]
    fn fanout_in_simulation_copies_the_token_into_both_queues() {
        let mut m = ready_fanout(Mode::Sim);
        let (out, _) = m.apply(Action::Publish);
        match &out[0].method {
            Method::Publish { exchange, body, .. } => {
                assert_eq!(exchange, "alerts");
                assert!(body.contains("alert_id"));
            }
            other => panic!("{other:?}"),
        }
        for (queue, _) in [("email", 0), ("sms", 1)] {
            m.apply(frame(Event::Trace(Trace::Routed {
                message_id: 4,
                exchange: "alerts".into(),
                destination_kind: DestinationKind::Queue,
                destination: queue.into(),
                binding_key: String::new(),
                why: String::new(),
            })));
            m.apply(frame(Event::Trace(Trace::Enqueued {
                message_id: 4,
                queue: queue.into(),
            })));
        }
        let why = m.why.as_ref().expect("why").text(crate::i18n::Lang::En);
        assert!(why.contains("sent a copy to `email` and `sms`"), "{why}");
        m.apply(deliver_to("email-worker", 1, 4));
        m.apply(deliver_to("sms-worker", 2, 4));
        m.apply(ok(
            out[0].id,
            Outcome::Published {
                seq: None,
                message_id: 4,
            },
        ));
        assert_eq!(m.tokens.len(), 2);
        assert_eq!(m.lane_counts(0), (0, 1));
        assert_eq!(m.lane_counts(1), (0, 1));
        let acks = run_ticks(&mut m, 0.0, 3.0 * SEGMENT_MS + PROCESS_MS + 200.0);
        let mut tags: Vec<_> = acks
            .iter()
            .map(|r| match r.method {
                Method::Ack { delivery_tag, .. } => delivery_tag,
                _ => 0,
            })
            .collect();
        tags.sort();
        assert_eq!(tags, [1, 2]);
        assert_eq!(m.shown_received(), 2);
        assert_eq!((m.shown_received_in(0), m.shown_received_in(1)), (1, 1));
    }

    #[test]
    fn fanout_in_real_mode_is_inferred_from_the_scene() {
        let mut m = ready_fanout(Mode::Real);
        let (out, _) = m.apply(Action::Publish);
        m.apply(ok(
            out[0].id,
            Outcome::Published {
                seq: None,
                message_id: 9,
            },
        ));
        assert_eq!(m.lane_counts(0), (1, 0));
        assert_eq!(m.lane_counts(1), (1, 0));
        m.apply(deliver_to("sms-worker", 1, 9));
        assert_eq!(m.lane_counts(0), (1, 0));
        assert_eq!(m.lane_counts(1), (0, 1));
        m.apply(deliver_to("email-worker", 2, 9));
        assert_eq!(m.ready_count(), 0);
        assert_eq!(m.unacked_count(), 2);
        assert_eq!(m.tokens.len(), 2);
    }

    #[test]
    fn switching_scene_keeps_the_clock_settings() {
        let mut m = ready(Mode::Sim);
        m.apply(Action::SetClock {
            paused: true,
            speed: 2.0,
        });
        m.apply(Action::SwitchMode {
            mode: Mode::Sim,
            generation: 1,
            scene: &FANOUT,
        });
        assert_eq!(m.scene.id, "fanout");
        assert!(m.paused);
        assert_eq!(m.speed, 2.0);
        assert!(!m.ready);
    }

    #[test]
    fn trace_text_names_binding_and_exchange() {
        let s = describe_trace(&Trace::Routed {
            message_id: 1,
            exchange: "orders".into(),
            destination_kind: DestinationKind::Queue,
            destination: "orders.new".into(),
            binding_key: "new".into(),
            why: String::new(),
        });
        assert!(
            s.contains("matched binding `new` on exchange `orders`"),
            "{s}"
        );
    }
}
