//! The "Build" page's state, pure: the user's topology ([`crate::editor`]),
//! applied to the broker through the protocol, the user's producers and
//! consumers as clients, the messages on their way, and what the inspector
//! shows ([`crate::inspector`]). No browser API: `cargo test -p web` drives it
//! against `sim_core::Broker` natively.
//!
//! Everything runs on connection 1: channel 1 declares, channel 2 publishes,
//! every consumer has a channel of its own (its prefetch is per channel).
//! Requests go out one at a time per channel (each after the previous one's
//! reply), because a method sent on a channel the broker just closed would close
//! the whole connection. A broker error closes only its channel: the page opens
//! it again, undoes the change that failed, shows the broker's words next to the
//! form, and declares the topology again.

use sim_core::protocol::{
    Event, FieldTable, LinkState, Message, MessageId, Method, Outcome, Properties, ReplyResult,
    Request, ServerFrame, Trace,
};
use sim_core::scenario::{template, AckMode, Scenario};

use crate::editor::{self, Form, Kind, Msg, Plan};
use crate::inspector::{Fate, Journal};
use crate::lesson::{Layout, NodeKind, MARGIN_RIGHT, MARGIN_Y};
use crate::model::{describe_error, LinkEvent};
use crate::route::{self, NodeBox};
use crate::vecmap::VecMap;

pub const ADMIN: u16 = 1;
pub const PUBLISH: u16 = 2;
const FIRST_CONSUMER: u16 = 3;
/// How long a message takes along one edge (animation ms).
pub const SEG_MS: f64 = 650.0;
/// How long an ended message stays, fading.
pub const FADE_MS: f64 = 600.0;
/// At most this many moving messages are drawn.
const MAX_FLIGHTS: usize = 200;

/// What the inspector shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Sel {
    /// A node, by its id (`queue:orders`).
    Node(String),
    Message(MessageId),
}

/// What a context menu is open on: a node (its id, `queue:orders`) or the
/// edge between two nodes (the bindings drawn along it).
#[derive(Clone, Debug, PartialEq)]
pub enum MenuOn {
    Node(String),
    Edge(String, String),
}

/// An open context menu, at `(x, y)` pixels in the picture's box.
#[derive(Clone, Debug, PartialEq)]
pub struct Menu {
    pub on: MenuOn,
    pub x: f64,
    pub y: f64,
}

/// One entry of a context menu: its label (an `editor::label` key and what
/// follows it), what it does, and whether it destroys something.
#[derive(Clone, Debug, PartialEq)]
pub struct MenuItem {
    pub label: &'static str,
    pub detail: String,
    pub testid: String,
    pub action: WbAction,
    pub danger: bool,
}

/// At most this many publishes of producers running at a rate wait for
/// channel 2 (a slow broker link drops ticks rather than piling up).
const RATE_BACKLOG: usize = 8;

/// Everything that can happen to the Build page.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum WbAction {
    /// Redraw.
    Refresh,
    NewForm(Kind),
    /// A new form with one field filled in (a binding from this exchange...).
    NewFormWith(Kind, &'static str, String),
    EditForm(Kind, String),
    /// The user typed into a form field.
    Field(String, String),
    Save,
    CancelForm,
    /// Delete `name` of `kind` (a binding by its `editor::binding_id`).
    Delete(Kind, String),
    Select(Option<Sel>),
    /// Publish one message from the producer of this name.
    Publish(String),
    /// Start (`true`) or stop the producer publishing at its rate.
    Run(String, bool),
    /// Empty the queue of this name (queue.purge).
    Purge(String),
    /// Open the context menu on something at `(x, y)` pixels in the picture.
    OpenMenu {
        on: MenuOn,
        x: f64,
        y: f64,
    },
    CloseMenu,
    /// The user chose entry `n` of the open menu.
    MenuPick(usize),
    /// Pointer down on node `node` at picture coordinates `(x, y)`.
    DragStart {
        node: String,
        x: f64,
        y: f64,
    },
    DragMove {
        x: f64,
        y: f64,
    },
    /// Pointer up: a press that did not move is a click (selects the node).
    DragEnd,
    /// Move a node with the keyboard.
    Nudge {
        node: String,
        dx: f64,
        dy: f64,
    },
    /// Frames that arrived together (a link's whole outbox at one drain):
    /// applied, and the clients pumped, in one step.
    Frames {
        generation: u32,
        frames: Vec<ServerFrame>,
    },
    Link {
        generation: u32,
        event: LinkEvent,
    },
}

#[derive(Clone, Debug, PartialEq)]
struct Publishing {
    n: u64,
    producer: String,
    exchange: String,
    routing_key: String,
    message: Message,
    at: f64,
    flight: u64,
    /// Bound to the broker's message id (by a frame or by the reply).
    id: Option<MessageId>,
    returned: Option<(u16, String)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Purpose {
    Setup,
    /// A step of the open form's plan.
    Form,
    Publish(Box<Publishing>),
    Consume(String),
    Settle,
    /// A passive declare: the broker's own count of a queue.
    Count(String),
    Purge(String),
    Other,
}

#[derive(Clone, Debug, PartialEq, Default)]
struct Chan {
    open: bool,
    /// Bumped whenever the channel closes (its delivery tags die with it).
    epoch: u32,
    queue: Vec<(Method, Purpose)>,
    in_flight: Option<u64>,
}

/// A consumer's state as its inspector shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CState {
    Starting,
    Running,
    /// The broker cancelled it (its queue went) or its channel closed.
    Stopped,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerRt {
    pub channel: u16,
    pub state: CState,
    pub error: Option<String>,
    pub received: u64,
    pub settled: u64,
}

/// A delivered message the consumer works on until `due`.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub consumer: String,
    pub queue: String,
    pub msg: MessageId,
    channel: u16,
    epoch: u32,
    tag: u64,
    /// When it reaches the consumer (drawn there from then on).
    pub arrive: f64,
    pub due: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlightKind {
    Move,
    /// Back to the producer (mandatory, unroutable).
    Return,
    /// Fading out where it ended (`true`: dropped, not acked).
    Fade(bool),
}

/// A message drawn moving from node `from` to node `to` (ids), from `start`.
#[derive(Clone, Debug, PartialEq)]
pub struct Flight {
    pub key: u64,
    pub msg: Option<MessageId>,
    pub label: String,
    pub from: String,
    pub to: String,
    pub start: f64,
    pub kind: FlightKind,
}

impl Flight {
    pub fn end(&self) -> f64 {
        self.start
            + match self.kind {
                FlightKind::Fade(_) => FADE_MS,
                _ => SEG_MS,
            }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Drag {
    node: String,
    off: (f64, f64),
    moved: bool,
}

/// The Build page.
#[derive(Clone, Debug, PartialEq)]
pub struct Workbench {
    pub sc: Scenario,
    /// Real mode (RabbitMQ reports no routing: it is inferred).
    pub real: bool,
    pub generation: u32,
    pub form: Option<Form>,
    /// The scenario before the form's plan went out (restored if it fails).
    before: Option<Scenario>,
    pub selected: Option<Sel>,
    /// A message not tied to a form (a refused delete, a closed channel...).
    pub notice: Option<String>,
    /// Why the last delete was refused.
    pub refusal: Option<Msg>,
    /// Why a producer's last publish failed, by producer.
    pub producer_errors: VecMap<String, String>,
    pub layout: Layout,
    /// Node positions the user dragged, by node id.
    pub moved: VecMap<String, (f64, f64)>,
    drag: Option<Drag>,
    pub journal: Journal,
    pub flights: Vec<Flight>,
    /// When a message gets to a node: `(message, node id)` → animation ms.
    arrive: VecMap<(MessageId, String), f64>,
    pub consumers: VecMap<String, ConsumerRt>,
    pub work: Vec<Work>,
    /// Messages published per producer (the `{n}` of its templates).
    pub counts: VecMap<String, u64>,
    /// The broker's own ready count of a queue (passive declare), by queue.
    pub broker_counts: VecMap<String, u32>,
    chans: VecMap<u16, Chan>,
    conn_open: bool,
    /// The publish in flight (channel 2 sends one at a time).
    publishing: Option<Box<Publishing>>,
    pending: VecMap<u64, (u16, Purpose)>,
    /// Consumers to start once channel 1 has declared everything queued.
    after_admin: Vec<String>,
    /// Channel 1 closed: declare the topology again once it is open.
    redeclare: bool,
    next_id: u64,
    next_key: u64,
    /// Animation time, ms (wall time × speed, stopped while paused).
    pub now: f64,
    last_wall: Option<f64>,
    pub link_up: bool,
    /// Requests sent so far (a test hook: an invalid form sends nothing).
    pub sent: u64,
    pub menu: Option<Menu>,
    /// Producers publishing at their rate: when each publishes next
    /// (animation ms, so the rate follows pause and speed).
    pub running: VecMap<String, f64>,
    /// The metrics strip: depth and counts on the animation clock, from the
    /// first publish on.
    pub samples: Vec<crate::metrics::Sample>,
    /// Messages published, delivered and settled since the page opened (they
    /// never go down, whatever is deleted).
    pub totals: Totals,
}

/// Cumulative counts of the Build page's clients.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub published: u64,
    pub delivered: u64,
    pub settled: u64,
}

impl Workbench {
    pub fn new(sc: Scenario, real: bool, generation: u32) -> Workbench {
        let mut chans = VecMap::new();
        chans.insert(
            ADMIN,
            Chan {
                open: true,
                ..Chan::default()
            },
        );
        chans.insert(PUBLISH, Chan::default());
        let mut wb = Workbench {
            sc: editor::adopt(sc),
            real,
            generation,
            form: None,
            before: None,
            selected: None,
            notice: None,
            refusal: None,
            producer_errors: VecMap::new(),
            layout: Layout::default(),
            moved: VecMap::new(),
            drag: None,
            journal: Journal::default(),
            flights: Vec::new(),
            arrive: VecMap::new(),
            consumers: VecMap::new(),
            work: Vec::new(),
            counts: VecMap::new(),
            broker_counts: VecMap::new(),
            chans,
            conn_open: true,
            publishing: None,
            pending: VecMap::new(),
            after_admin: Vec::new(),
            redeclare: false,
            next_id: 1,
            next_key: 1,
            now: 0.0,
            last_wall: None,
            link_up: false,
            sent: 0,
            menu: None,
            running: VecMap::new(),
            samples: Vec::new(),
            totals: Totals::default(),
        };
        wb.relayout();
        wb
    }

    /// The same, with nodes where the user had moved them.
    pub fn with_moved(mut self, moved: VecMap<String, (f64, f64)>) -> Workbench {
        self.moved = moved;
        self.relayout();
        self
    }

    /// The layout of the scenario, with the user's moves applied and the
    /// producers labelled with where they publish.
    fn relayout(&mut self) {
        let mut l = Layout::of(&self.sc);
        for n in &mut l.nodes {
            if n.kind == NodeKind::Producer {
                if let Some(p) = self.sc.producers.iter().find(|p| p.name == n.name) {
                    let x = if p.exchange.is_empty() {
                        "(default)"
                    } else {
                        &p.exchange
                    };
                    n.sub = if p.routing_key.is_empty() {
                        format!("→ {x}")
                    } else {
                        format!("→ {x} · {}", p.routing_key)
                    };
                }
            }
            if let Some(&(x, y)) = self.moved.get(&n.id()) {
                n.x = x;
                n.y = y;
            }
        }
        let (mut w, mut h) = (l.width, l.height);
        for n in &l.nodes {
            w = w.max(n.x + MARGIN_RIGHT);
            h = h.max(n.y + MARGIN_Y);
        }
        l.width = w.max(4.0 * crate::lesson::COL_W);
        l.height = h;
        if !self.moved.is_empty() {
            l.route_edges();
        }
        self.layout = l;
    }

    /// The box of node `id`, if drawn.
    pub fn node_box(&self, id: &str) -> Option<NodeBox> {
        self.layout.node_box(self.node_index(id)?)
    }

    fn node_index(&self, id: &str) -> Option<usize> {
        self.layout.nodes.iter().position(|n| n.id() == id)
    }

    /// The path of an edge between two nodes, around all the others.
    pub fn path(&self, from: &str, to: &str) -> Option<route::Path> {
        self.layout
            .path(self.node_index(from)?, self.node_index(to)?)
    }

    pub fn consumer_queue(&self, name: &str) -> Option<&str> {
        self.sc
            .consumers
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.queue.as_str())
    }

    /// The producer key P publishes from: the selected one, else the first.
    pub fn producer_for_key(&self) -> Option<String> {
        if let Some(Sel::Node(id)) = &self.selected {
            if let Some(p) = id.strip_prefix("producer:") {
                return Some(p.to_string());
            }
        }
        self.sc.producers.first().map(|p| p.name.clone())
    }

    /// Can this producer publish now?
    pub fn can_publish(&self) -> bool {
        self.link_up
    }

    // ---------------------------------------------------------------- actions

    /// Applies `action` (frames and link events of another generation are
    /// ignored); returns the requests to send and whether to redraw.
    pub fn apply(&mut self, action: WbAction) -> (Vec<Request>, bool) {
        let changed = match action {
            WbAction::Refresh => true,
            WbAction::NewForm(kind) => {
                self.form = Some(Form::new(kind, &self.sc));
                true
            }
            WbAction::NewFormWith(kind, field, value) => {
                let mut f = Form::new(kind, &self.sc);
                f.set(field, value);
                self.form = Some(f);
                true
            }
            WbAction::EditForm(kind, name) => {
                self.form = Form::edit(kind, &name, &self.sc);
                true
            }
            WbAction::Field(field, value) => match self.form.as_mut() {
                Some(f) if !f.busy => {
                    f.set(&field, value);
                    if field == "dest_kind" {
                        f.fix_dest(&self.sc);
                    }
                    true
                }
                _ => false,
            },
            WbAction::Save => self.save(),
            WbAction::CancelForm => {
                if self.form.as_ref().is_some_and(|f| f.busy) {
                    false
                } else {
                    self.form = None;
                    true
                }
            }
            WbAction::Delete(kind, name) => {
                match editor::delete(&self.sc, kind, &name) {
                    Ok(plan) => {
                        self.refusal = None;
                        if let Some(Sel::Node(id)) = &self.selected {
                            if id == &format!("{}:{name}", kind.as_str()) {
                                self.selected = None;
                            }
                        }
                        self.execute(plan, false);
                    }
                    Err(msg) => self.refusal = Some(msg),
                }
                true
            }
            WbAction::Select(sel) => {
                self.refusal = None;
                if let Some(Sel::Node(id)) = &sel {
                    if let Some(q) = id.strip_prefix("queue:") {
                        // Ask the broker for its own count of the queue.
                        let q = q.to_string();
                        self.enqueue(
                            ADMIN,
                            Method::QueueDeclare {
                                queue: q.clone(),
                                passive: true,
                                durable: false,
                                exclusive: false,
                                auto_delete: false,
                                arguments: FieldTable::new(),
                            },
                            Purpose::Count(q),
                        );
                    }
                }
                self.selected = sel;
                true
            }
            WbAction::Publish(name) => self.publish(&name),
            WbAction::Run(name, on) => {
                let rate = self
                    .sc
                    .producers
                    .iter()
                    .any(|p| p.name == name && p.interval_ms > 0);
                if on && rate {
                    self.running.insert(name, self.now);
                } else {
                    self.running.remove(&name);
                }
                true
            }
            WbAction::Purge(queue) => {
                if !self.sc.topology.queues.iter().any(|q| q.name == queue) {
                    return (Vec::new(), false);
                }
                self.enqueue(
                    ADMIN,
                    Method::QueuePurge {
                        queue: queue.clone(),
                    },
                    Purpose::Purge(queue),
                );
                true
            }
            WbAction::OpenMenu { on, x, y } => {
                self.menu = Some(Menu { on, x, y });
                if self.menu_items().is_empty() {
                    self.menu = None;
                }
                true
            }
            WbAction::CloseMenu => self.menu.take().is_some(),
            WbAction::MenuPick(n) => {
                let item = self.menu_items().into_iter().nth(n);
                self.menu = None;
                return match item {
                    Some(item) => {
                        let (out, _) = self.apply(item.action);
                        (out, true)
                    }
                    None => (self.pump(), true),
                };
            }
            WbAction::DragStart { node, x, y } => {
                let Some(b) = self.node_box(&node) else {
                    return (Vec::new(), false);
                };
                self.drag = Some(Drag {
                    node,
                    off: (b.x - x, b.y - y),
                    moved: false,
                });
                false
            }
            WbAction::DragMove { x, y } => match self.drag.as_mut() {
                Some(d) => {
                    let to = (x + d.off.0, y + d.off.1);
                    let node = d.node.clone();
                    let start = self.node_box(&node).map(|b| (b.x, b.y));
                    if let Some(from) = start {
                        let d = self.drag.as_mut().map(|d| {
                            d.moved |= (to.0 - from.0).abs() + (to.1 - from.1).abs() > 2.0;
                            d.moved
                        });
                        if d == Some(true) {
                            self.move_node(&node, to);
                            return (Vec::new(), true);
                        }
                    }
                    false
                }
                None => false,
            },
            WbAction::DragEnd => match self.drag.take() {
                Some(d) if !d.moved => {
                    return self.apply(WbAction::Select(Some(Sel::Node(d.node))));
                }
                Some(_) => true,
                None => false,
            },
            WbAction::Nudge { node, dx, dy } => match self.node_box(&node) {
                Some(b) => {
                    self.move_node(&node, (b.x + dx, b.y + dy));
                    true
                }
                None => false,
            },
            WbAction::Frames { generation, frames } => {
                if generation != self.generation {
                    return (Vec::new(), false);
                }
                for frame in frames {
                    self.frame(frame);
                }
                true
            }
            WbAction::Link { generation, event } => {
                if generation != self.generation {
                    return (Vec::new(), false);
                }
                self.link_event(event);
                true
            }
        };
        (self.pump(), changed)
    }

    fn move_node(&mut self, node: &str, to: (f64, f64)) {
        let to = (to.0.clamp(40.0, 4000.0), to.1.clamp(40.0, 3000.0));
        self.moved.insert(node.to_string(), to);
        self.relayout();
    }

    fn save(&mut self) -> bool {
        let Some(form) = self.form.as_mut() else {
            return false;
        };
        if form.busy {
            return false;
        }
        form.tried = true;
        form.broker_error = None;
        match form.plan(&self.sc) {
            Err(_) => true,
            Ok(plan) => {
                self.execute(plan, true);
                true
            }
        }
    }

    /// Puts `plan` into effect: the scenario at once (the picture follows),
    /// the methods on channel 1, consumers stopped now and started once the
    /// declarations are through. With `from_form`, the form waits for the
    /// broker's replies and closes when all are ok.
    fn execute(&mut self, plan: Plan, from_form: bool) {
        let Plan {
            sc,
            admin,
            stop,
            start,
        } = plan;
        let old = std::mem::replace(&mut self.sc, sc);
        for q in &old.topology.queues {
            let gone = !self.sc.topology.queues.contains(q);
            if gone {
                self.journal.queue_gone(&q.name);
            }
        }
        for name in stop {
            self.stop_consumer(&name);
        }
        let waits = !admin.is_empty();
        for m in admin {
            self.enqueue(
                ADMIN,
                m,
                if from_form {
                    Purpose::Form
                } else {
                    Purpose::Setup
                },
            );
        }
        self.after_admin.extend(start);
        let producers = &self.sc.producers;
        self.running.retain(|name, _| {
            producers
                .iter()
                .any(|p| p.name == *name && p.interval_ms > 0)
        });
        if from_form {
            let selected = self.form.as_ref().and_then(|f| match f.kind {
                Kind::Binding => None,
                k => Some(format!("{}:{}", k.as_str(), f.get("name"))),
            });
            if waits {
                self.before = Some(old);
                if let Some(f) = self.form.as_mut() {
                    f.busy = true;
                }
            } else {
                self.form = None;
            }
            if let Some(id) = selected {
                self.selected = Some(Sel::Node(id));
            }
        }
        self.relayout();
    }

    fn publish(&mut self, name: &str) -> bool {
        if !self.link_up {
            return false;
        }
        let Some(p) = self.sc.producers.iter().find(|p| p.name == name).cloned() else {
            return false;
        };
        let n = self.counts.get(name).copied().unwrap_or(0) + 1;
        self.counts.insert(name.to_string(), n);
        self.totals.published += 1;
        let ctx = template::Ctx {
            n,
            name,
            ..template::Ctx::default()
        };
        let body = template::render_body(&p.body, &ctx);
        let routing_key = template::render(&p.routing_key, &ctx);
        let properties = Properties {
            content_type: looks_like_json(&body).then(|| "application/json".to_string()),
            headers: p.properties.headers.clone(),
            delivery_mode: p.properties.delivery_mode,
            priority: p.properties.priority,
            expiration: p.properties.expiration_ms.map(|ms| ms.to_string()),
            ..Properties::default()
        };
        let body: std::sync::Arc<str> = body.into();
        let properties = sim_core::protocol::SharedProperties::from(properties);
        let message = Message {
            body: body.clone(),
            properties: properties.clone(),
        };
        self.producer_errors.remove(name);
        let flight = self.fly(
            None,
            format!("#{n}"),
            format!("producer:{name}"),
            format!("exchange:{}", p.exchange),
            self.now,
            FlightKind::Move,
        );
        let publishing = Publishing {
            n,
            producer: name.to_string(),
            exchange: p.exchange.clone(),
            routing_key: routing_key.clone(),
            message,
            at: self.now,
            flight,
            id: None,
            returned: None,
        };
        self.enqueue(
            PUBLISH,
            Method::Publish {
                exchange: p.exchange.into(),
                routing_key: routing_key.into(),
                body,
                mandatory: p.mandatory,
                properties,
            },
            Purpose::Publish(Box::new(publishing)),
        );
        true
    }

    // -------------------------------------------------------------- requests

    fn enqueue(&mut self, ch: u16, method: Method, purpose: Purpose) {
        self.chans
            .get_or_insert_with(ch, Chan::default)
            .queue
            .push((method, purpose));
    }

    /// Sends what may go now: the head of every idle channel's queue.
    fn pump(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            // Channel 1 first: it opens the connection and declares.
            let chans: Vec<u16> = self.chans.keys().copied().collect();
            for ch in chans {
                let conn_open = self.conn_open;
                // A publish waits for the declarations before it (a binding
                // not declared yet would drop the message).
                let admin_busy = self
                    .chans
                    .get(&ADMIN)
                    .is_some_and(|c| c.in_flight.is_some() || !c.queue.is_empty());
                if ch == PUBLISH && admin_busy {
                    continue;
                }
                let Some(c) = self.chans.get_mut(&ch) else {
                    continue;
                };
                if c.in_flight.is_some() {
                    continue;
                }
                let Some((method, _)) = c.queue.first() else {
                    continue;
                };
                let may = match method {
                    Method::ConnectionOpen => true,
                    Method::ChannelOpen => conn_open,
                    _ => conn_open && c.open,
                };
                if !may {
                    continue;
                }
                if c.queue.is_empty() {
                    continue;
                }
                let (method, purpose) = c.queue.remove(0);
                let id = self.next_id;
                self.next_id += 1;
                c.in_flight = Some(id);
                if let Purpose::Publish(p) = &purpose {
                    self.publishing = Some(p.clone());
                }
                self.pending.insert(id, (ch, purpose));
                self.sent += 1;
                out.push(Request::new(id, method).on(1, ch));
                progressed = true;
            }
            // Declarations done: start the consumers waiting for them.
            let admin_idle = self
                .chans
                .get(&ADMIN)
                .is_some_and(|c| c.in_flight.is_none() && c.queue.is_empty() && c.open);
            if admin_idle && !self.after_admin.is_empty() && self.conn_open {
                let names = std::mem::take(&mut self.after_admin);
                for n in names {
                    self.start_consumer(&n);
                }
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        out
    }

    fn free_channel(&self) -> u16 {
        (FIRST_CONSUMER..)
            .find(|ch| !self.consumers.values().any(|c| c.channel == *ch))
            .unwrap_or(FIRST_CONSUMER)
    }

    fn start_consumer(&mut self, name: &str) {
        let Some(def) = self.sc.consumers.iter().find(|c| c.name == name).cloned() else {
            return;
        };
        let ch = match self.consumers.get(name) {
            Some(rt) => rt.channel,
            None => self.free_channel(),
        };
        let rt = self
            .consumers
            .get_or_insert_with(name.to_string(), || ConsumerRt {
                channel: ch,
                state: CState::Starting,
                error: None,
                received: 0,
                settled: 0,
            });
        rt.state = CState::Starting;
        rt.error = None;
        let open = self.chans.get(&ch).is_some_and(|c| c.open);
        if !open {
            self.enqueue(ch, Method::ChannelOpen, Purpose::Other);
        }
        if def.ack == AckMode::Manual && def.prefetch > 0 {
            self.enqueue(
                ch,
                Method::BasicQos {
                    prefetch_count: def.prefetch,
                    global: false,
                },
                Purpose::Other,
            );
        }
        self.enqueue(
            ch,
            Method::Consume {
                queue: def.queue.clone(),
                consumer_tag: def.name.clone(),
                no_ack: def.ack == AckMode::Auto,
                exclusive: false,
                arguments: FieldTable::new(),
            },
            Purpose::Consume(def.name.clone()),
        );
    }

    /// Closes the consumer's channel: the broker requeues what it held.
    fn stop_consumer(&mut self, name: &str) {
        let Some(rt) = self.consumers.remove(name) else {
            return;
        };
        self.after_admin.retain(|n| n != name);
        self.work.retain(|w| w.consumer != name);
        if let Some(c) = self.chans.get_mut(&rt.channel) {
            c.queue.clear();
            if c.open {
                c.queue.push((Method::ChannelClose, Purpose::Other));
            }
        }
    }

    /// Declares everything again on a fresh link or connection: channel 2,
    /// the topology, then every consumer.
    fn resync(&mut self, open_connection: bool) {
        self.pending.clear();
        self.publishing = None;
        self.work.clear();
        for c in self.chans.values_mut() {
            c.open = false;
            c.epoch += 1;
            c.queue.clear();
            c.in_flight = None;
        }
        self.conn_open = !open_connection;
        if open_connection {
            self.enqueue(ADMIN, Method::ConnectionOpen, Purpose::Setup);
        } else if let Some(c) = self.chans.get_mut(&ADMIN) {
            c.open = true;
        }
        self.enqueue(PUBLISH, Method::ChannelOpen, Purpose::Setup);
        for m in editor::declare_all(&self.sc) {
            self.enqueue(ADMIN, m, Purpose::Setup);
        }
        for rt in self.consumers.values_mut() {
            rt.state = CState::Stopped;
        }
        self.after_admin = self.sc.consumers.iter().map(|c| c.name.clone()).collect();
        self.redeclare = false;
    }

    // ---------------------------------------------------------------- frames

    fn link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Open => {
                self.link_up = true;
                self.notice = None;
                self.resync(false);
            }
            LinkEvent::Failed(why) | LinkEvent::BrokerDown(why) => {
                self.link_up = false;
                self.notice = Some(why);
            }
        }
    }

    fn frame(&mut self, frame: ServerFrame) {
        let now = self.now;
        match frame.event {
            Event::Reply { id, result } => self.reply(id, result),
            Event::Deliver {
                channel,
                consumer_tag,
                delivery_tag,
                redelivered,
                message,
                message_id,
                ..
            } => self.deliver(
                channel,
                consumer_tag.to_string(),
                delivery_tag,
                redelivered,
                message,
                message_id,
            ),
            Event::Trace(t) => {
                self.bind_unknown(Some(t.message_id()));
                self.journal.trace(&t, now);
                self.animate_trace(&t);
            }
            Event::Return {
                reply_code,
                reply_text,
                ..
            } => {
                if let Some(p) = self.publishing.as_mut() {
                    p.returned = Some((reply_code, reply_text.clone()));
                    if let Some(id) = p.id {
                        let from = format!("exchange:{}", p.exchange);
                        let to = format!("producer:{}", p.producer);
                        let label = format!("#{}", p.n);
                        self.journal.returned(id, reply_code, &reply_text, now);
                        let start = self.arrival(id, &from);
                        self.fly(Some(id), label, from, to, start, FlightKind::Return);
                    }
                }
            }
            Event::ConsumerCancelled { consumer_tag, .. } => {
                if let Some(rt) = self.consumers.get_mut(&consumer_tag) {
                    rt.state = CState::Stopped;
                    rt.error = Some("cancelled by the broker (its queue was deleted)".into());
                }
                self.work.retain(|w| w.consumer != consumer_tag);
            }
            Event::Closed { channel, error, .. } => {
                let text = describe_error(&error);
                match channel {
                    Some(ch) => self.channel_closed(ch, text),
                    None => {
                        self.notice = Some(format!("The broker closed the connection: {text}"));
                        self.resync(true);
                    }
                }
            }
            Event::Status { broker, detail } => match broker {
                LinkState::Up => {
                    if !self.link_up {
                        self.link_up = true;
                        self.notice = None;
                        self.resync(false);
                    }
                }
                LinkState::Down | LinkState::Reconnecting => {
                    self.link_up = false;
                    self.notice = Some(if detail.is_empty() {
                        "the broker is unreachable".into()
                    } else {
                        detail
                    });
                }
            },
            Event::ProtocolError { id, message } => {
                if let Some(id) = id {
                    if let Some((ch, purpose)) = self.pending.remove(&id) {
                        self.done(ch, id);
                        self.failed(purpose, message.clone());
                    }
                }
                self.notice = Some(format!("Protocol error: {message}"));
            }
            Event::Confirm { .. } => {}
        }
    }

    fn channel_closed(&mut self, ch: u16, text: String) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        c.open = false;
        c.epoch += 1;
        // What was queued behind the failed method is not sent (a method on a
        // closed channel would close the connection).
        let dropped: Vec<Purpose> = c.queue.drain(..).map(|(_, p)| p).collect();
        c.queue.push((Method::ChannelOpen, Purpose::Setup));
        for p in dropped {
            if let Purpose::Publish(p) = p {
                self.lost_publish(&p, &text);
            }
        }
        if ch == ADMIN {
            self.redeclare = true;
        } else if ch != PUBLISH {
            self.work.retain(|w| w.channel != ch);
            if let Some(rt) = self.consumers.values_mut().find(|r| r.channel == ch) {
                rt.state = CState::Stopped;
                rt.error = Some(text);
            }
        }
    }

    /// The in-flight request `id` on `ch` is answered: the channel may send again.
    fn done(&mut self, ch: u16, id: u64) {
        if let Some(c) = self.chans.get_mut(&ch) {
            if c.in_flight == Some(id) {
                c.in_flight = None;
            }
        }
    }

    fn reply(&mut self, id: u64, result: ReplyResult) {
        let Some((ch, purpose)) = self.pending.remove(&id) else {
            return;
        };
        self.done(ch, id);
        match result {
            ReplyResult::Ok(outcome) => self.succeeded(ch, purpose, outcome),
            ReplyResult::Error(e) => self.failed(purpose, describe_error(&e)),
        }
    }

    fn succeeded(&mut self, ch: u16, purpose: Purpose, outcome: Outcome) {
        match purpose {
            Purpose::Setup | Purpose::Other => {
                if let Some(c) = self.chans.get_mut(&ch) {
                    if !c.open {
                        c.open = true;
                        if ch == ADMIN {
                            self.conn_open = true;
                        }
                        if ch == ADMIN && self.redeclare {
                            self.redeclare = false;
                            for m in editor::declare_all(&self.sc) {
                                self.enqueue(ADMIN, m, Purpose::Setup);
                            }
                            let stopped = self
                                .sc
                                .consumers
                                .iter()
                                .filter(|c| {
                                    self.consumers
                                        .get(&c.name)
                                        .is_none_or(|rt| rt.state == CState::Stopped)
                                })
                                .map(|c| c.name.clone())
                                .collect::<Vec<_>>();
                            self.after_admin.extend(stopped);
                        }
                    }
                }
            }
            Purpose::Form => {
                let admin_busy = self
                    .chans
                    .get(&ADMIN)
                    .is_some_and(|c| c.queue.iter().any(|(_, p)| *p == Purpose::Form));
                if !admin_busy {
                    // Every step of the plan is through.
                    self.before = None;
                    self.form = None;
                    // Consumers the broker cancelled (queue re-declared) come back.
                    let stopped: Vec<String> = self
                        .sc
                        .consumers
                        .iter()
                        .filter(|c| {
                            self.consumers
                                .get(&c.name)
                                .is_some_and(|rt| rt.state == CState::Stopped)
                        })
                        .map(|c| c.name.clone())
                        .collect();
                    for n in stopped {
                        if !self.after_admin.contains(&n) {
                            self.after_admin.push(n);
                        }
                    }
                }
            }
            Purpose::Publish(_) => {
                // The live record (a frame may have named its message already).
                if let Some(p) = self.publishing.take() {
                    if let (Outcome::Published { message_id, .. }, None) = (outcome, p.id) {
                        self.bind(&p, message_id);
                    }
                }
            }
            Purpose::Consume(name) => {
                if let Some(rt) = self.consumers.get_mut(&name) {
                    rt.state = CState::Running;
                }
            }
            Purpose::Count(q) => {
                if let Outcome::QueueDeclareOk { message_count, .. } = outcome {
                    self.broker_counts.insert(q, message_count);
                }
            }
            Purpose::Purge(q) => {
                // The simulation reported every message it dropped; RabbitMQ
                // only says how many, so the page drops what it had ready.
                if !self.journal.traced {
                    self.journal.purged(&q, self.now);
                }
                if self.broker_counts.contains_key(&q) {
                    self.broker_counts.insert(q, 0);
                }
            }
            Purpose::Settle => {}
        }
    }

    fn failed(&mut self, purpose: Purpose, text: String) {
        match purpose {
            Purpose::Form => {
                // Undo the change; the topology is declared again as it was
                // once channel 1 is open.
                if let Some(before) = self.before.take() {
                    self.sc = before;
                    self.relayout();
                }
                if let Some(c) = self.chans.get_mut(&ADMIN) {
                    c.queue.retain(|(_, p)| *p != Purpose::Form);
                }
                self.redeclare = true;
                if let Some(f) = self.form.as_mut() {
                    f.busy = false;
                    f.broker_error = Some(text);
                }
            }
            Purpose::Publish(p) => {
                self.lost_publish(&p, &text);
                self.publishing = None;
            }
            Purpose::Consume(name) => {
                if let Some(rt) = self.consumers.get_mut(&name) {
                    rt.state = CState::Stopped;
                    rt.error = Some(text);
                }
            }
            Purpose::Count(q) => {
                self.broker_counts.remove(&q);
            }
            Purpose::Setup | Purpose::Settle | Purpose::Other | Purpose::Purge(_) => {
                self.notice = Some(format!("The broker refused a request: {text}"));
            }
        }
    }

    fn lost_publish(&mut self, p: &Publishing, text: &str) {
        self.producer_errors
            .insert(p.producer.clone(), text.to_string());
        // The message fades out red where its publish ended.
        if let Some(f) = self.flights.iter().find(|f| f.key == p.flight).cloned() {
            let end = f.end();
            self.fly(
                None,
                f.label,
                f.to.clone(),
                f.to,
                end,
                FlightKind::Fade(true),
            );
        }
    }

    // ------------------------------------------------------------- messages

    /// A frame names message `id` we have not seen: it is the publish in flight.
    fn bind_unknown(&mut self, id: Option<MessageId>) {
        let Some(id) = id else { return };
        if self.journal.records.contains_key(&id) {
            return;
        }
        if let Some(p) = self.publishing.as_ref().filter(|p| p.id.is_none()).cloned() {
            self.bind(&p, id);
        }
    }

    fn bind(&mut self, p: &Publishing, id: MessageId) {
        if let Some(cur) = self.publishing.as_mut() {
            if cur.flight == p.flight {
                cur.id = Some(id);
            }
        }
        self.journal.published(
            id,
            p.n,
            &p.producer,
            &p.exchange,
            &p.routing_key,
            p.message.clone(),
            p.at,
        );
        let mut at_exchange = self.now;
        if let Some(f) = self.flights.iter_mut().find(|f| f.key == p.flight) {
            f.msg = Some(id);
            at_exchange = f.end();
        }
        self.arrive
            .insert((id, format!("exchange:{}", p.exchange)), at_exchange);
        if let Some((code, text)) = &p.returned {
            self.journal.returned(id, *code, text, self.now);
        }
        if self.real && !self.journal.traced {
            let edges = self.journal.infer(&self.sc, id, self.now);
            let label = format!("#{}", p.n);
            for (from, to) in edges {
                let start = self.arrival(id, &from);
                self.fly(Some(id), label.clone(), from, to, start, FlightKind::Move);
            }
            if self
                .journal
                .records
                .get(&id)
                .is_some_and(|r| r.fate == Fate::Dropped)
            {
                let at = format!("exchange:{}", p.exchange);
                let start = self.arrival(id, &at);
                self.fly(
                    Some(id),
                    label,
                    at.clone(),
                    at,
                    start,
                    FlightKind::Fade(true),
                );
            }
        }
    }

    /// When message `id` is (or will be) at node `node`: not before now.
    fn arrival(&self, id: MessageId, node: &str) -> f64 {
        self.arrive
            .get(&(id, node.to_string()))
            .copied()
            .unwrap_or(self.now)
            .max(self.now)
    }

    fn label_of(&self, id: MessageId) -> String {
        self.journal
            .records
            .get(&id)
            .map(|r| r.label())
            .unwrap_or_else(|| format!("m{id}"))
    }

    /// A message moving along an edge; returns its key. It arrives at `to`
    /// when it ends.
    fn fly(
        &mut self,
        msg: Option<MessageId>,
        label: String,
        from: String,
        to: String,
        start: f64,
        kind: FlightKind,
    ) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        let f = Flight {
            key,
            msg,
            label,
            from,
            to,
            start,
            kind,
        };
        if let (Some(id), FlightKind::Move) = (msg, kind) {
            self.arrive.insert((id, f.to.clone()), f.end());
            if self.arrive.len() > 1000 {
                self.arrive.pop_first();
            }
        }
        self.flights.push(f);
        if self.flights.len() > MAX_FLIGHTS {
            self.flights.remove(0);
        }
        key
    }

    fn animate_trace(&mut self, t: &Trace) {
        let id = t.message_id();
        let label = self.label_of(id);
        let (from, to, kind) = match t {
            Trace::Routed {
                exchange,
                destination_kind,
                destination,
                ..
            } => (
                format!("exchange:{exchange}"),
                format!(
                    "{}:{destination}",
                    match destination_kind {
                        sim_core::protocol::DestinationKind::Queue => "queue",
                        sim_core::protocol::DestinationKind::Exchange => "exchange",
                    }
                ),
                FlightKind::Move,
            ),
            Trace::ToAlternateExchange {
                exchange,
                alternate,
                ..
            } => (
                format!("exchange:{exchange}"),
                format!("exchange:{alternate}"),
                FlightKind::Move,
            ),
            Trace::DeadLettered {
                queue,
                dead_letter_exchange,
                ..
            } => (
                format!("queue:{queue}"),
                format!("exchange:{dead_letter_exchange}"),
                FlightKind::Move,
            ),
            Trace::Dropped { queue, .. } => {
                let at = match queue {
                    Some(q) => format!("queue:{q}"),
                    None => self
                        .journal
                        .records
                        .get(&id)
                        .map(|r| format!("exchange:{}", r.exchange))
                        .unwrap_or_default(),
                };
                (at.clone(), at, FlightKind::Fade(true))
            }
            Trace::Requeued { queue, .. } => {
                // From the consumer that held it, if we know which.
                match self.work.iter().find(|w| w.msg == id) {
                    Some(w) => (
                        format!("consumer:{}", w.consumer),
                        format!("queue:{queue}"),
                        FlightKind::Move,
                    ),
                    None => return,
                }
            }
            Trace::Enqueued { .. } | Trace::Acked { .. } => return,
        };
        let start = self.arrival(id, &from);
        self.fly(Some(id), label, from, to, start, kind);
    }

    fn deliver(
        &mut self,
        channel: u16,
        consumer: String,
        tag: u64,
        redelivered: bool,
        message: Message,
        id: MessageId,
    ) {
        self.bind_unknown(Some(id));
        let Some(def) = self
            .sc
            .consumers
            .iter()
            .find(|c| c.name == consumer)
            .cloned()
        else {
            return;
        };
        let queue = def.queue.clone();
        self.journal
            .delivered(id, &queue, &consumer, tag, redelivered, message, self.now);
        if let Some(rt) = self.consumers.get_mut(&consumer) {
            rt.received += 1;
            self.totals.delivered += 1;
        }
        let from = format!("queue:{queue}");
        let start = self.arrival(id, &from);
        let label = self.label_of(id);
        let key = self.fly(
            Some(id),
            label,
            from,
            format!("consumer:{consumer}"),
            start,
            FlightKind::Move,
        );
        let arrive = self
            .flights
            .iter()
            .find(|f| f.key == key)
            .map_or(self.now, Flight::end);
        let epoch = self.chans.get(&channel).map_or(0, |c| c.epoch);
        self.work.push(Work {
            consumer,
            queue,
            msg: id,
            channel,
            epoch,
            tag,
            arrive,
            due: arrive + def.processing_ms as f64,
        });
    }

    // ------------------------------------------------------------------ time

    /// Wall time moved on; returns the acks that are due and whether to redraw.
    pub fn tick(&mut self, wall_ms: f64, paused: bool, speed: f64) -> (Vec<Request>, bool) {
        let dt = match self.last_wall {
            Some(prev) => (wall_ms - prev).clamp(0.0, 100.0),
            None => 0.0,
        };
        self.last_wall = Some(wall_ms);
        if !paused {
            self.now += dt * speed;
        }
        let now = self.now;
        let moving = dt > 0.0 && !paused && (!self.flights.is_empty() || !self.work.is_empty());
        self.flights.retain(|f| f.end() + 50.0 > now);
        let mut due: Vec<Work> = Vec::new();
        self.work.retain(|w| {
            if w.due <= now {
                due.push(w.clone());
                false
            } else {
                true
            }
        });
        let settled = !due.is_empty();
        for w in due {
            self.settle(w);
        }
        let published = self.publish_due();
        self.sample();
        let out = self.pump();
        let changed = moving || settled || published || !out.is_empty();
        (out, changed)
    }

    /// A point of the metrics strip, when one is due (nothing before the
    /// first publish: an empty strip says nothing).
    fn sample(&mut self) {
        if self.totals.published == 0 {
            return;
        }
        let s = crate::metrics::Sample {
            t: self.now.max(0.0) as u64,
            // What the queues' captions show: the messages drawn arrived.
            depth: self
                .journal
                .queues
                .keys()
                .map(|q| self.ready_count(q) as i64)
                .sum(),
            published: self.totals.published,
            delivered: self.totals.delivered,
            acked: self.totals.settled,
        };
        crate::metrics::record(&mut self.samples, s, false);
    }

    /// Publishes for every running producer whose next message is due (on
    /// the animation clock: paused, nothing goes; at 2× speed, twice as
    /// many). Returns whether anything was published.
    fn publish_due(&mut self) -> bool {
        if !self.link_up || self.running.is_empty() {
            return false;
        }
        let mut any = false;
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            let interval = self
                .sc
                .producers
                .iter()
                .find(|p| p.name == name)
                .map_or(0, |p| p.interval_ms) as f64;
            let Some(&due) = self.running.get(&name) else {
                continue;
            };
            if interval <= 0.0 {
                self.running.remove(&name);
                continue;
            }
            // After a long stall, start again from now instead of catching up.
            let mut next = due.max(self.now - 3.0 * interval);
            while next <= self.now {
                let backlog = self.chans.get(&PUBLISH).map_or(0, |c| c.queue.len());
                if backlog < RATE_BACKLOG {
                    any |= self.publish(&name);
                }
                next += interval;
            }
            self.running.insert(name, next);
        }
        any
    }

    /// Replies the page still waits for.
    pub fn awaiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Selects `sel` for the inspector only (a past state shown: unlike
    /// [`WbAction::Select`], the broker is not asked for a queue's count).
    pub fn select_view(&mut self, sel: Option<Sel>) {
        self.refusal = None;
        self.selected = sel;
    }

    /// The rate of producer `name`, messages per second as the form shows it
    /// (`None`: it publishes only on click).
    pub fn rate_of(&self, name: &str) -> Option<String> {
        self.sc
            .producers
            .iter()
            .find(|p| p.name == name && p.interval_ms > 0)
            .map(|p| editor::rate_text(p.interval_ms))
    }

    /// The entries of the open context menu (none: nothing to offer).
    pub fn menu_items(&self) -> Vec<MenuItem> {
        match &self.menu {
            Some(menu) => self.items_for(&menu.on),
            None => Vec::new(),
        }
    }

    /// The entries of a context menu on `on`. A binding's edge offers the
    /// binding(s) it draws; every other edge belongs to one element and
    /// offers what that element's menu does: a producer's publishing edge
    /// the producer's, a delivery edge its consumer's; a dead-letter or
    /// alternate-exchange edge edits the queue or exchange whose argument
    /// draws it.
    pub fn items_for(&self, on: &MenuOn) -> Vec<MenuItem> {
        let item = |label: &'static str, action: WbAction| MenuItem {
            label,
            detail: String::new(),
            // `m-edit` → `menu-edit`.
            testid: format!("menu-{}", label.get(2..).unwrap_or_default()),
            danger: label == "m-delete" || label == "m-purge",
            action,
        };
        let sc = &self.sc;
        let mut out = Vec::new();
        match on {
            MenuOn::Node(id) => {
                let Some((kind, name)) = id.split_once(':') else {
                    return out;
                };
                let Some(kind) = Kind::ALL.into_iter().find(|k| k.as_str() == kind) else {
                    return out;
                };
                let name = name.to_string();
                let exists = match kind {
                    Kind::Exchange => sc.topology.exchanges.iter().any(|x| x.name == name),
                    Kind::Queue => sc.topology.queues.iter().any(|q| q.name == name),
                    Kind::Producer => sc.producers.iter().any(|p| p.name == name),
                    Kind::Consumer => sc.consumers.iter().any(|c| c.name == name),
                    Kind::Binding => false,
                };
                // The default exchange (and one only named by a producer) is the broker's.
                if !exists {
                    return out;
                }
                match kind {
                    Kind::Producer => {
                        out.push(item("m-publish", WbAction::Publish(name.clone())));
                        if self.rate_of(&name).is_some() {
                            let on = self.running.contains_key(&name);
                            let label = if on { "m-stop" } else { "m-start" };
                            out.push(item(label, WbAction::Run(name.clone(), !on)));
                        }
                    }
                    Kind::Exchange => out.push(item(
                        "m-bind",
                        WbAction::NewFormWith(Kind::Binding, "source", name.clone()),
                    )),
                    Kind::Queue => {
                        out.push(item(
                            "m-consume",
                            WbAction::NewFormWith(Kind::Consumer, "queue", name.clone()),
                        ));
                        out.push(item("m-purge", WbAction::Purge(name.clone())));
                    }
                    _ => {}
                }
                out.push(item("m-edit", WbAction::EditForm(kind, name.clone())));
                out.push(item("m-delete", WbAction::Delete(kind, name)));
            }
            MenuOn::Edge(from, to) => {
                let Some(source) = from.strip_prefix("exchange:") else {
                    return match (from.split_once(':'), to.split_once(':')) {
                        (Some(("producer", _)), _) => self.items_for(&MenuOn::Node(from.clone())),
                        (_, Some(("consumer", _))) => self.items_for(&MenuOn::Node(to.clone())),
                        (Some(("queue", q)), _)
                            if sc.topology.queues.iter().any(|d| {
                                d.name == q && d.arguments.contains_key("x-dead-letter-exchange")
                            }) =>
                        {
                            let mut it =
                                item("m-edit", WbAction::EditForm(Kind::Queue, q.to_string()));
                            it.detail = q.to_string();
                            vec![it]
                        }
                        _ => out,
                    };
                };
                let along: Vec<&sim_core::scenario::BindingDef> = sc
                    .topology
                    .bindings
                    .iter()
                    .filter(|b| {
                        b.source == source
                            && match (&b.queue, &b.exchange) {
                                (Some(q), _) => to.strip_prefix("queue:") == Some(q.as_str()),
                                (None, Some(x)) => to.strip_prefix("exchange:") == Some(x.as_str()),
                                _ => false,
                            }
                    })
                    .collect();
                let several = along.len() > 1;
                for (i, b) in along.into_iter().enumerate() {
                    let id = editor::binding_id(b);
                    for label in ["m-edit", "m-delete"] {
                        let action = if label == "m-edit" {
                            WbAction::EditForm(Kind::Binding, id.clone())
                        } else {
                            WbAction::Delete(Kind::Binding, id.clone())
                        };
                        let mut it = item(label, action);
                        if several {
                            it.detail = binding_words(b);
                            it.testid = format!("{}-{i}", it.testid);
                        }
                        out.push(it);
                    }
                }
                // The alternate exchange `source` names.
                let alternate = to.strip_prefix("exchange:").is_some_and(|ae| {
                    sc.topology.exchanges.iter().any(|x| {
                        x.name == source
                            && x.arguments
                                .get("alternate-exchange")
                                .and_then(|v| v.as_str())
                                == Some(ae)
                    })
                });
                if alternate {
                    let mut it = item(
                        "m-edit",
                        WbAction::EditForm(Kind::Exchange, source.to_string()),
                    );
                    it.detail = source.to_string();
                    it.testid = "menu-edit-exchange".into();
                    out.push(it);
                }
            }
        }
        out
    }

    /// The consumer is done with a message: ack, reject or requeue it.
    fn settle(&mut self, w: Work) {
        let Some(def) = self.sc.consumers.iter().find(|c| c.name == w.consumer) else {
            return;
        };
        let action = editor::on_message_of(def);
        let manual = def.ack == AckMode::Manual;
        let (ack, requeue) = match (manual, action) {
            (false, _) | (true, "ack") => (true, false),
            (true, "requeue") => (false, true),
            _ => (false, false),
        };
        if let Some(rt) = self.consumers.get_mut(&w.consumer) {
            rt.settled += 1;
        }
        self.totals.settled += 1;
        self.journal
            .settled(w.msg, &w.queue, &w.consumer, ack, requeue, self.now);
        let at = format!("consumer:{}", w.consumer);
        let label = self.label_of(w.msg);
        if ack || !manual {
            self.fly(
                Some(w.msg),
                label,
                at.clone(),
                at,
                self.now,
                FlightKind::Fade(false),
            );
        }
        if !manual {
            return;
        }
        let alive = self
            .chans
            .get(&w.channel)
            .is_some_and(|c| c.open && c.epoch == w.epoch);
        if !alive {
            return;
        }
        let method = if ack {
            Method::Ack {
                delivery_tag: w.tag,
                multiple: false,
            }
        } else if requeue {
            Method::Nack {
                delivery_tag: w.tag,
                multiple: false,
                requeue: true,
            }
        } else {
            Method::Reject {
                delivery_tag: w.tag,
                requeue: false,
            }
        };
        self.enqueue(w.channel, method, Purpose::Settle);
    }

    /// Where flight `f` is drawn now, if it is on screen.
    pub fn flight_xy(&self, f: &Flight) -> Option<(f64, f64)> {
        if f.start > self.now {
            return None;
        }
        let t = ((self.now - f.start) / (f.end() - f.start)).clamp(0.0, 1.0);
        match f.kind {
            FlightKind::Fade(_) => self.held_xy(&f.from, 0),
            _ => self.path(&f.from, &f.to).map(|p| p.at(t)),
        }
    }

    /// Where the `k`-th message a node holds is drawn: above a consumer's
    /// box, right to left (clear of its name inside), or in the top corner
    /// of a queue's or exchange's box (their names are above or in the middle).
    pub fn held_xy(&self, node: &str, k: usize) -> Option<(f64, f64)> {
        let b = self.node_box(node)?;
        Some(if node.starts_with("consumer:") {
            (b.x + b.hw - 14.0 - 26.0 * k as f64, b.y - b.hh - 15.0)
        } else {
            (b.x + b.hw * 0.75, b.y - b.hh * 0.7)
        })
    }

    /// Messages ready in `queue` that have arrived there (drawn in its box).
    pub fn ready_here(&self, queue: &str) -> Vec<MessageId> {
        let Some(c) = self.journal.queues.get(queue) else {
            return Vec::new();
        };
        let coming = self.coming_to(queue);
        c.ready
            .iter()
            .copied()
            .filter(|id| coming.binary_search(id).is_err())
            .collect()
    }

    /// How many of [`Workbench::ready_here`] there are (the metrics strip
    /// asks at every tick, however long the queue).
    pub fn ready_count(&self, queue: &str) -> usize {
        let Some(c) = self.journal.queues.get(queue) else {
            return 0;
        };
        let coming = self.coming_to(queue);
        match coming.len() {
            0 => c.ready.len(),
            _ => c
                .ready
                .iter()
                .filter(|id| coming.binary_search(id).is_err())
                .count(),
        }
    }

    /// Messages still on their way into `queue`'s box, sorted. One pass over
    /// the arrival times (the last 1,000 moves), not one per queued message:
    /// a queue thousands long must not cost thousands of passes a frame.
    fn coming_to(&self, queue: &str) -> Vec<MessageId> {
        let node = format!("queue:{queue}");
        let mut coming: Vec<MessageId> = self
            .arrive
            .iter()
            .filter(|((_, n), t)| *n == node && **t > self.now)
            .map(|((id, _), _)| *id)
            .collect();
        coming.sort_unstable();
        coming
    }

    /// The message `id`'s form problems for display, and a delete refusal.
    pub fn delete_refusal(&self, kind: Kind, name: &str) -> Option<Msg> {
        editor::delete(&self.sc, kind, name).err()
    }
}

/// How a binding is told apart from others on the same edge: its key, or
/// its header match.
pub fn binding_words(b: &sim_core::scenario::BindingDef) -> String {
    if b.arguments.is_empty() {
        format!("“{}”", b.routing_key)
    } else {
        format!("“{}”", editor::headers_text(&b.arguments))
    }
}

/// A body that reads as a JSON object or array gets `content_type: application/json`
/// (a look at its ends: parsing it would cost the bundle a JSON reader).
fn looks_like_json(body: &str) -> bool {
    let b = body.trim();
    (b.starts_with('{') && b.ends_with('}')) || (b.starts_with('[') && b.ends_with(']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspector::Step;
    use sim_core::protocol::{AmqpError, ErrorScope};
    use sim_core::Broker;

    /// The workbench against `sim_core::Broker`, as the page's link drives it.
    struct Rig {
        wb: Workbench,
        broker: Broker,
        wall: f64,
        /// Every request sent, in order.
        log: Vec<Request>,
        /// The Build page's recording, and the live page after each event.
        time: Option<(crate::build_time::BuildTime, Vec<Workbench>)>,
    }

    impl Rig {
        fn new(real: bool) -> Rig {
            let mut rig = Rig::quiet(editor::empty(), real);
            rig.act(WbAction::Link {
                generation: 0,
                event: LinkEvent::Open,
            });
            rig
        }

        /// A workbench for `sc` and a fresh broker; the link is not open yet.
        fn quiet(sc: Scenario, real: bool) -> Rig {
            let mut broker = Broker::new(7);
            // Real mode: RabbitMQ reports no routing, so neither does this broker.
            broker.set_tracing(!real);
            broker.handle_request(Request::new(0, Method::ConnectionOpen));
            while broker.poll_event().is_some() {}
            Rig {
                wb: Workbench::new(sc, real, 0),
                broker,
                wall: 0.0,
                log: Vec::new(),
                time: None,
            }
        }

        /// What the page does with every input: apply it, and record it.
        fn feed(&mut self, input: crate::build_time::Input) -> Vec<Request> {
            let (reqs, _) = crate::history::Replay::feed(&mut self.wb, &input);
            if let Some((time, snaps)) = self.time.as_mut() {
                if time.record(input, &self.wb) {
                    snaps.push(self.wb.clone());
                }
            }
            reqs
        }

        fn run(&mut self, mut reqs: Vec<Request>) {
            for _ in 0..10_000 {
                for r in reqs.drain(..) {
                    self.log.push(r.clone());
                    self.broker.handle_request(r);
                }
                let mut frames = Vec::new();
                while let Some(f) = self.broker.poll_event() {
                    frames.push(f);
                }
                if frames.is_empty() {
                    return;
                }
                reqs.extend(self.feed(crate::build_time::Input::act(WbAction::Frames {
                    generation: 0,
                    frames,
                })));
            }
            panic!("no quiet");
        }

        fn act(&mut self, a: WbAction) {
            let reqs = self.feed(crate::build_time::Input::act(a));
            self.run(reqs);
        }

        fn form(&mut self, kind: Kind, fields: &[(&str, &str)]) {
            self.act(WbAction::NewForm(kind));
            for (k, v) in fields {
                self.act(WbAction::Field(k.to_string(), v.to_string()));
            }
            self.act(WbAction::Save);
        }

        /// Lets `ms` of animation time pass (the broker's clock follows).
        fn wait(&mut self, ms: f64) {
            let end = self.wall + ms;
            while self.wall < end {
                self.wall += 16.0;
                let reqs = self.feed(crate::build_time::Input::Tick {
                    wall_ms: self.wall,
                    paused: false,
                    speed: 1.0,
                });
                self.run(reqs);
                self.broker.handle_timeout(self.wb.now as u64);
                let mut frames = Vec::new();
                while let Some(f) = self.broker.poll_event() {
                    frames.push(f);
                }
                if !frames.is_empty() {
                    let out = self.feed(crate::build_time::Input::act(WbAction::Frames {
                        generation: 0,
                        frames,
                    }));
                    self.run(out);
                }
            }
        }

        fn record(&self, n: u64) -> &crate::inspector::Record {
            self.wb
                .journal
                .records
                .values()
                .find(|r| r.n == n)
                .expect("a record of that message")
        }

        fn texts(&self, n: u64) -> Vec<String> {
            self.record(n)
                .hops
                .iter()
                .map(|h| h.step.text(crate::i18n::Lang::En))
                .collect()
        }

        /// A consumer `worker` on `orders.new` taking `work_ms` per message,
        /// and the producer `shop` set to publish `rate` per second (not
        /// started).
        fn worker_and_rate(&mut self, work_ms: &str, rate: &str) {
            self.form(
                Kind::Consumer,
                &[
                    ("name", "worker"),
                    ("queue", "orders.new"),
                    ("work_ms", work_ms),
                ],
            );
            self.act(WbAction::EditForm(Kind::Producer, "shop".into()));
            self.act(WbAction::Field("rate".into(), rate.into()));
            self.act(WbAction::Save);
        }

        /// Topic `orders` → `orders.new` (`order.*`), a producer publishing `order.new`.
        fn shop(real: bool) -> Rig {
            let mut r = Rig::new(real);
            r.form(Kind::Exchange, &[("name", "orders"), ("type", "topic")]);
            r.form(Kind::Queue, &[("name", "orders.new")]);
            r.form(Kind::Queue, &[("name", "orders.other")]);
            r.form(
                Kind::Binding,
                &[
                    ("source", "orders"),
                    ("dest", "orders.new"),
                    ("key", "order.*"),
                ],
            );
            r.form(
                Kind::Binding,
                &[
                    ("source", "orders"),
                    ("dest", "orders.other"),
                    ("key", "invoice.#"),
                ],
            );
            r.form(
                Kind::Producer,
                &[
                    ("name", "shop"),
                    ("exchange", "orders"),
                    ("key", "order.new"),
                ],
            );
            assert!(r.wb.form.is_none(), "every form closed: {:?}", r.wb.form);
            r
        }
    }

    #[test]
    fn a_built_topology_routes_a_publish_into_the_right_queue() {
        let mut r = Rig::shop(false);
        let declared: Vec<_> = r.log.iter().map(|q| q.method.op()).collect();
        assert!(declared.contains(&"exchange_declare") && declared.contains(&"queue_bind"));
        assert!(r.wb.layout.index(NodeKind::Producer, "shop").is_some());
        r.act(WbAction::Publish("shop".into()));
        r.wait(100.0);
        let rec = r.record(1);
        assert_eq!(rec.fate, Fate::Ready);
        assert_eq!(&*rec.message.body, "{\"n\": 1}");
        assert_eq!(r.wb.journal.queues["orders.new"].ready.len(), 1);
        assert!(r
            .wb
            .journal
            .queues
            .get("orders.other")
            .is_none_or(|c| c.ready.is_empty()));
        let texts = r.texts(1);
        assert!(
            texts[0].contains("published by shop to exchange `orders`"),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(
                |t| t.contains("matched binding `order.*` on exchange `orders` → `orders.new`")
            ),
            "{texts:?}"
        );
        assert!(
            texts.iter().all(|t| !t.contains("orders.other")),
            "{texts:?}"
        );
        // The token flies producer → exchange → queue, then sits in the queue.
        let f = &r.wb.flights;
        assert!(f
            .iter()
            .any(|f| f.from == "producer:shop" && f.to == "exchange:orders"));
        assert!(f
            .iter()
            .any(|f| f.from == "exchange:orders" && f.to == "queue:orders.new"));
        assert!(
            r.wb.ready_here("orders.new").is_empty(),
            "not drawn in the queue before it gets there"
        );
        r.wait(1500.0);
        assert_eq!(r.wb.ready_here("orders.new").len(), 1);
        assert!(r.wb.flights.is_empty());
        // Clicking the queue asks the broker for its count.
        r.act(WbAction::Select(Some(Sel::Node("queue:orders.new".into()))));
        assert_eq!(r.wb.broker_counts.get("orders.new"), Some(&1));
    }

    #[test]
    fn an_invalid_form_sends_nothing_and_says_why() {
        let mut r = Rig::shop(false);
        let sent = r.wb.sent;
        r.form(Kind::Queue, &[("name", "q"), ("ttl", "-1")]);
        r.form(Kind::Exchange, &[("name", "amq.x")]);
        assert_eq!(r.wb.sent, sent, "an invalid form sent requests");
        let f = r.wb.form.as_ref().expect("the form stays open");
        assert_eq!(f.shown_problems(&r.wb.sc)[0].msg, Msg::Reserved);
        assert!(!r.wb.sc.topology.queues.iter().any(|q| q.name == "q"));
    }

    /// The shop recording its timeline from now on (the workbench as it was
    /// opened is returned), a producer at 8/s running against a consumer
    /// that works 250 ms a message.
    fn busy_shop_recording() -> (Rig, Workbench) {
        let mut r = Rig::shop(false);
        let opened = r.wb.clone();
        r.time = Some((crate::build_time::BuildTime::new(&opened, true), Vec::new()));
        r.worker_and_rate("250", "8");
        r.act(WbAction::Run("shop".into(), true));
        (r, opened)
    }

    /// The Build page's time machine gives back every past state exactly:
    /// the workbench shown at event `n`, reached by seeking in any order
    /// (back, forward, from a checkpoint), equals the live one right after
    /// event `n`, and playing the past ends live.
    #[test]
    fn the_recorded_past_replays_exactly_at_every_event() {
        let (mut r, opened) = busy_shop_recording();
        r.wait(2500.0);
        r.act(WbAction::Run("shop".into(), false));
        r.wait(1500.0);
        let (mut time, snaps) = r.time.take().expect("recording");
        assert!(
            time.total() >= 20,
            "a busy page makes many events: {}",
            time.total()
        );
        let viewed = |wb: &Workbench| {
            let mut wb = wb.clone();
            crate::history::Replay::for_viewing(&mut wb);
            wb
        };
        let snaps: Vec<Workbench> = std::iter::once(&opened).chain(&snaps).map(viewed).collect();
        crate::history::check::replays_exactly(&mut time, &snaps, viewed, 4.0);
        // Selecting a queue in the past asks the broker nothing, and the
        // events after it replay as they were, the selection kept.
        let sel = Some(Sel::Node("queue:orders.new".into()));
        time.seek(8);
        time.shown_mut().expect("past").select_view(sel.clone());
        for n in [12, 9, 15] {
            time.seek(n);
            let mut want = snaps[n as usize].clone();
            want.selected = sel.clone();
            assert!(
                *time.shown().expect("past") == want,
                "event {n} after a selection"
            );
        }
    }

    /// Playing the past keeps what the user chose to look at in it: a
    /// selection the live page made later does not take its place, and
    /// play goes on from the very moment shown.
    #[test]
    fn playing_the_past_keeps_the_users_selection() {
        use crate::history::Replay;
        let (mut r, _) = busy_shop_recording();
        r.wait(1000.0);
        let live_choice = Some(Sel::Node("exchange:shop".into()));
        r.act(WbAction::Select(live_choice.clone()));
        r.wait(1000.0);
        r.act(WbAction::Run("shop".into(), false));
        let (mut time, _) = r.time.take().expect("recording");
        assert_eq!(r.wb.selected, live_choice);
        time.seek(2);
        // Let the past play a little, hold it between two events, select.
        time.play(0.0);
        time.play_tick(30.0, 1.0);
        time.hold();
        let (pos, clock) = (time.position(), time.shown().expect("past").clock());
        let mine = Some(Sel::Node("queue:orders.new".into()));
        time.shown_mut().expect("past").select_view(mine.clone());
        time.play(1000.0);
        assert_eq!(time.position(), pos);
        assert_eq!(
            time.shown().expect("past").clock(),
            clock,
            "not back to the event"
        );
        let mut wall = 1000.0;
        while time.in_past() {
            wall += 50.0;
            time.play_tick(wall, 1.0);
            if let Some(wb) = time.shown() {
                assert_eq!(wb.selected, mine, "at event {}", time.position());
            }
        }
        assert!(wall > 2000.0, "played through the live selection");
    }

    #[test]
    fn a_consumer_gets_and_acks_after_its_work_time() {
        let mut r = Rig::shop(false);
        r.form(
            Kind::Consumer,
            &[
                ("name", "worker"),
                ("queue", "orders.new"),
                ("work_ms", "300"),
            ],
        );
        assert_eq!(r.wb.consumers["worker"].state, CState::Running);
        r.act(WbAction::Publish("shop".into()));
        r.wait(200.0);
        assert_eq!(r.record(1).fate, Fate::Unacked);
        assert_eq!(r.wb.journal.queues["orders.new"].unacked.len(), 1);
        r.wait(3000.0);
        assert_eq!(
            r.record(1).fate,
            Fate::Acked,
            "{:?} {:?}",
            r.record(1).hops,
            r.wb.work
        );
        assert!(r
            .log
            .iter()
            .any(|q| matches!(q.method, Method::Ack { .. }) && q.channel >= 3));
        let texts = r.texts(1);
        assert!(
            texts.iter().any(|t| t.contains("delivered to worker")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("acked by worker")),
            "{texts:?}"
        );
        assert_eq!(r.wb.consumers["worker"].settled, 1);
    }

    #[test]
    fn a_rejected_message_is_dead_lettered_with_its_x_death_trail() {
        let mut r = Rig::shop(false);
        r.form(Kind::Exchange, &[("name", "dlx"), ("type", "fanout")]);
        r.form(Kind::Queue, &[("name", "dead")]);
        r.form(Kind::Binding, &[("source", "dlx"), ("dest", "dead")]);
        // Give orders.new a dead-letter exchange (delete and declare again).
        r.act(WbAction::EditForm(Kind::Queue, "orders.new".into()));
        r.act(WbAction::Field("dlx".into(), "dlx".into()));
        r.act(WbAction::Save);
        assert!(r.wb.form.is_none());
        r.form(
            Kind::Consumer,
            &[
                ("name", "picky"),
                ("queue", "orders.new"),
                ("on_message", "reject"),
                ("work_ms", "0"),
            ],
        );
        r.form(
            Kind::Consumer,
            &[
                ("name", "undertaker"),
                ("queue", "dead"),
                ("work_ms", "5000"),
            ],
        );
        r.act(WbAction::Publish("shop".into()));
        r.wait(3000.0);
        let rec = r.record(1);
        assert_eq!(rec.fate, Fate::Unacked, "{:?}", rec.hops);
        assert!(rec
            .hops
            .iter()
            .any(|h| matches!(&h.step, Step::DeadLettered { queue, .. } if queue == "orders.new")));
        let trail = rec.x_death();
        assert_eq!(trail.len(), 1, "{:?}", rec.message.properties.headers);
        assert_eq!(
            (trail[0].0.as_str(), trail[0].1.as_str()),
            ("orders.new", "rejected")
        );
        assert!(r.wb.flights.is_empty() || r.wb.flights.iter().all(|f| f.msg == Some(rec.id)));
    }

    #[test]
    fn changing_a_queue_keeps_its_bindings_and_consumers() {
        let mut r = Rig::shop(false);
        r.form(
            Kind::Consumer,
            &[("name", "worker"), ("queue", "orders.new")],
        );
        r.act(WbAction::EditForm(Kind::Queue, "orders.new".into()));
        r.act(WbAction::Field("max_length".into(), "5".into()));
        r.act(WbAction::Save);
        assert!(r.wb.form.is_none(), "{:?}", r.wb.form);
        assert_eq!(r.wb.consumers["worker"].state, CState::Running);
        r.act(WbAction::Publish("shop".into()));
        r.wait(3000.0);
        assert_eq!(r.record(1).fate, Fate::Acked);
        // Changing the exchange's type keeps the bindings too.
        r.act(WbAction::EditForm(Kind::Exchange, "orders".into()));
        r.act(WbAction::Field("durable".into(), "true".into()));
        r.act(WbAction::Save);
        assert!(
            r.wb.form.is_none() && r.wb.notice.is_none(),
            "{:?}",
            r.wb.notice
        );
        r.act(WbAction::Publish("shop".into()));
        r.wait(3000.0);
        assert_eq!(r.record(2).fate, Fate::Acked);
    }

    #[test]
    fn a_broker_refusal_shows_next_to_the_form_and_is_undone() {
        let mut r = Rig::shop(false);
        r.act(WbAction::NewForm(Kind::Exchange));
        r.act(WbAction::Field("name".into(), "extra".into()));
        let (reqs, _) = r.wb.apply(WbAction::Save);
        assert_eq!(reqs.len(), 1);
        assert!(r.wb.sc.topology.exchanges.iter().any(|x| x.name == "extra"));
        // Instead of the broker's ok: the channel error RabbitMQ would send.
        let error = AmqpError {
            scope: ErrorScope::Channel,
            code: 406,
            name: "PRECONDITION_FAILED".into(),
            text: "inequivalent arg 'durable'".into(),
        };
        let frames = [
            Event::Closed {
                connection: 1,
                channel: Some(ADMIN),
                error: error.clone(),
            },
            Event::Reply {
                id: reqs[0].id,
                result: ReplyResult::Error(error),
            },
        ];
        r.broker
            .handle_request(Request::new(999, Method::ChannelClose));
        while r.broker.poll_event().is_some() {}
        let out =
            r.wb.apply(WbAction::Frames {
                generation: 0,
                frames: frames
                    .into_iter()
                    .map(|event| ServerFrame { at_ms: 0, event })
                    .collect(),
            })
            .0;
        let f = r.wb.form.as_ref().expect("the form stays open");
        assert!(f
            .broker_error
            .as_deref()
            .is_some_and(|e| e.contains("406 PRECONDITION_FAILED")));
        assert!(!f.busy);
        assert!(
            !r.wb.sc.topology.exchanges.iter().any(|x| x.name == "extra"),
            "undone"
        );
        // The channel opens again and the topology is declared again.
        assert_eq!(out[0].method, Method::ChannelOpen);
        r.run(out);
        assert!(r
            .log
            .iter()
            .rev()
            .take(6)
            .any(|q| q.method.op() == "queue_bind"));
        r.act(WbAction::Publish("shop".into()));
        r.wait(100.0);
        assert_eq!(r.record(1).fate, Fate::Ready);
    }

    #[test]
    fn publishing_to_an_internal_exchange_is_refused_by_the_broker() {
        let mut r = Rig::shop(false);
        r.act(WbAction::EditForm(Kind::Exchange, "orders".into()));
        r.act(WbAction::Field("internal".into(), "true".into()));
        r.act(WbAction::Save);
        r.act(WbAction::Publish("shop".into()));
        r.wait(50.0);
        let e =
            r.wb.producer_errors
                .get("shop")
                .expect("an error for the producer");
        assert!(e.contains("403"), "{e}");
        // Channel 2 opens again: the next publish goes out.
        r.act(WbAction::EditForm(Kind::Exchange, "orders".into()));
        r.act(WbAction::Field("internal".into(), String::new()));
        r.act(WbAction::Save);
        r.act(WbAction::Publish("shop".into()));
        r.wait(100.0);
        assert!(r.wb.producer_errors.is_empty());
        assert_eq!(r.record(2).fate, Fate::Ready);
    }

    #[test]
    fn real_mode_infers_the_route_from_the_topology() {
        let mut r = Rig::shop(true);
        r.act(WbAction::Publish("shop".into()));
        r.wait(100.0);
        let rec = r.record(1);
        assert!(!r.wb.journal.traced);
        assert_eq!(rec.fate, Fate::Ready);
        assert!(rec.hops.iter().skip(1).all(|h| h.inferred));
        assert!(r
            .texts(1)
            .iter()
            .any(|t| t.contains("matched binding `order.*`")));
        assert_eq!(r.wb.journal.queues["orders.new"].ready.len(), 1);
        r.form(
            Kind::Consumer,
            &[
                ("name", "worker"),
                ("queue", "orders.new"),
                ("work_ms", "100"),
            ],
        );
        r.wait(2000.0);
        assert_eq!(r.record(1).fate, Fate::Acked);
        assert!(r.wb.journal.queues["orders.new"].ready.is_empty());
    }

    #[test]
    fn deleting_a_queue_takes_its_bindings_and_consumers() {
        let mut r = Rig::shop(false);
        r.form(
            Kind::Consumer,
            &[("name", "worker"), ("queue", "orders.other")],
        );
        let ch = r.wb.consumers["worker"].channel;
        r.act(WbAction::Delete(Kind::Queue, "orders.other".into()));
        assert!(r.wb.consumers.is_empty() && r.wb.sc.consumers.is_empty());
        assert_eq!(r.wb.sc.topology.bindings.len(), 1);
        assert!(r
            .log
            .iter()
            .any(|q| q.method == Method::ChannelClose && q.channel == ch));
        assert!(r.log.iter().any(|q| q.method.op() == "queue_delete"));
        // An exchange a producer uses is not deleted.
        r.act(WbAction::Delete(Kind::Exchange, "orders".into()));
        assert!(matches!(r.wb.refusal, Some(Msg::InUse(_))));
        assert_eq!(r.wb.sc.topology.exchanges.len(), 1);
        assert!(r.wb.notice.is_none(), "{:?}", r.wb.notice);
    }

    #[test]
    fn nodes_drag_and_a_click_selects() {
        let mut r = Rig::shop(false);
        let b = r.wb.node_box("queue:orders.new").expect("drawn");
        r.act(WbAction::DragStart {
            node: "queue:orders.new".into(),
            x: b.x + 5.0,
            y: b.y,
        });
        r.act(WbAction::DragMove {
            x: b.x + 105.0,
            y: b.y + 300.0,
        });
        r.wb.selected = None;
        r.act(WbAction::DragEnd);
        let moved = r.wb.node_box("queue:orders.new").expect("drawn");
        assert_eq!((moved.x, moved.y), (b.x + 100.0, b.y + 300.0));
        assert!(r.wb.selected.is_none(), "a drag is not a click");
        assert!(r.wb.layout.height >= moved.y + MARGIN_Y);
        // The move survives a change of the topology.
        r.form(Kind::Queue, &[("name", "more")]);
        assert_eq!(
            r.wb.node_box("queue:orders.new").map(|b| b.y),
            Some(b.y + 300.0)
        );
        r.act(WbAction::DragStart {
            node: "exchange:orders".into(),
            x: 0.0,
            y: 0.0,
        });
        r.act(WbAction::DragEnd);
        assert_eq!(r.wb.selected, Some(Sel::Node("exchange:orders".into())));
        r.act(WbAction::Nudge {
            node: "exchange:orders".into(),
            dx: 0.0,
            dy: 20.0,
        });
        assert!(r.wb.moved.contains_key("exchange:orders"));
    }

    #[test]
    fn a_publish_waits_for_the_declarations_before_it() {
        let sc = Rig::shop(false).wb.sc;
        // A fresh link (a mode switch): everything is declared, one request at a time.
        let mut r = Rig::quiet(sc, false);
        let (mut out, _) = r.wb.apply(WbAction::Link {
            generation: 0,
            event: LinkEvent::Open,
        });
        out.extend(r.wb.apply(WbAction::Publish("shop".into())).0);
        assert!(
            out.iter()
                .all(|q| !matches!(q.method, Method::Publish { .. })),
            "published before the topology was declared: {out:?}"
        );
        r.run(out);
        let ops: Vec<_> = r.log.iter().rev().take(8).map(|q| q.method.op()).collect();
        let publish = ops.iter().position(|o| *o == "publish").expect("published");
        let bind = ops.iter().position(|o| *o == "queue_bind").expect("bound");
        assert!(
            publish < bind,
            "the publish went out after the last bind: {ops:?}"
        );
        r.wait(100.0);
        assert_eq!(r.record(1).fate, Fate::Ready);
    }

    /// The labels of the open menu's entries.
    fn menu_labels(wb: &Workbench) -> Vec<&'static str> {
        wb.menu_items().iter().map(|i| i.label).collect()
    }

    fn open_menu(r: &mut Rig, on: MenuOn) {
        r.act(WbAction::OpenMenu {
            on,
            x: 10.0,
            y: 20.0,
        });
    }

    fn pick(r: &mut Rig, label: &str) {
        let n =
            r.wb.menu_items()
                .iter()
                .position(|i| i.label == label)
                .unwrap_or_else(|| panic!("no {label} in {:?}", menu_labels(&r.wb)));
        r.act(WbAction::MenuPick(n));
        assert!(r.wb.menu.is_none(), "a pick closes the menu");
    }

    #[test]
    fn the_context_menu_offers_what_fits_each_node() {
        let mut r = Rig::shop(false);
        let node = |id: &str| MenuOn::Node(id.into());
        open_menu(&mut r, node("exchange:orders"));
        assert_eq!(menu_labels(&r.wb), ["m-bind", "m-edit", "m-delete"]);
        assert_eq!(r.wb.menu.as_ref().map(|m| (m.x, m.y)), Some((10.0, 20.0)));
        pick(&mut r, "m-bind");
        let f = r.wb.form.as_ref().expect("the binding form");
        assert_eq!((f.kind, f.get("source")), (Kind::Binding, "orders"));
        r.act(WbAction::CancelForm);
        open_menu(&mut r, node("queue:orders.other"));
        assert_eq!(
            menu_labels(&r.wb),
            ["m-consume", "m-purge", "m-edit", "m-delete"]
        );
        pick(&mut r, "m-consume");
        let f = r.wb.form.as_ref().expect("the consumer form");
        assert_eq!((f.kind, f.get("queue")), (Kind::Consumer, "orders.other"));
        r.act(WbAction::Field("name".into(), "w".into()));
        r.act(WbAction::Save);
        assert!(r.wb.sc.consumers.iter().any(|c| c.queue == "orders.other"));
        open_menu(&mut r, node("consumer:w"));
        assert_eq!(menu_labels(&r.wb), ["m-edit", "m-delete"]);
        pick(&mut r, "m-delete");
        assert!(r.wb.sc.consumers.is_empty());
        // A producer without a rate: publish now, edit, delete.
        open_menu(&mut r, node("producer:shop"));
        assert_eq!(menu_labels(&r.wb), ["m-publish", "m-edit", "m-delete"]);
        pick(&mut r, "m-publish");
        r.wait(100.0);
        assert_eq!(r.record(1).fate, Fate::Ready);
        // Escape (or a click elsewhere) closes it; nothing to offer, no menu.
        open_menu(&mut r, node("queue:orders.new"));
        r.act(WbAction::CloseMenu);
        assert!(r.wb.menu.is_none());
        open_menu(&mut r, node("exchange:"));
        assert!(r.wb.menu.is_none(), "the default exchange is the broker's");
        open_menu(&mut r, node("queue:nope"));
        assert!(r.wb.menu.is_none());
        // An item picked after its target went does nothing.
        open_menu(&mut r, node("queue:orders.other"));
        r.act(WbAction::Delete(Kind::Queue, "orders.other".into()));
        assert!(r.wb.menu_items().is_empty());
        r.act(WbAction::MenuPick(0));
        assert!(r.wb.form.is_none() && r.wb.menu.is_none());
    }

    #[test]
    fn purge_empties_a_queue_in_both_modes() {
        for real in [false, true] {
            let mut r = Rig::shop(real);
            for _ in 0..3 {
                r.act(WbAction::Publish("shop".into()));
            }
            r.wait(100.0);
            assert_eq!(r.wb.journal.queues["orders.new"].ready.len(), 3);
            open_menu(&mut r, MenuOn::Node("queue:orders.new".into()));
            pick(&mut r, "m-purge");
            assert!(r.log.iter().any(|q| q.method.op() == "queue_purge"));
            assert!(r.wb.journal.queues["orders.new"].ready.is_empty(), "{real}");
            assert_eq!(r.record(2).fate, Fate::Dropped);
            assert!(r.wb.notice.is_none(), "{:?}", r.wb.notice);
            let texts = r.texts(3);
            assert!(texts.iter().any(|t| t.contains("purged")), "{texts:?}");
        }
    }

    #[test]
    fn the_metrics_strip_follows_a_producer_and_a_slow_consumer() {
        let mut r = Rig::shop(false);
        r.worker_and_rate("400", "10");
        assert!(r.wb.samples.is_empty(), "nothing sampled before a publish");
        r.act(WbAction::Run("shop".into(), true));
        r.wait(3000.0);
        let s = &r.wb.samples;
        assert!(s.len() >= 8, "{s:?}");
        assert!(s
            .windows(2)
            .all(|w| w[0].t < w[1].t && w[0].published <= w[1].published));
        assert_eq!(
            r.wb.ready_count("orders.new"),
            r.wb.ready_here("orders.new").len()
        );
        let last = s.last().expect("samples");
        // 10/s for 3 s, worked one at a time for 400 ms each: the queue grows.
        assert!(last.published >= 25, "{last:?}");
        assert!(last.acked < last.published, "{last:?}");
        assert!(last.depth >= 10, "{last:?}");
        let r4 = crate::metrics::rates(s, 4);
        let (_, p, _, a) = r4.last().copied().expect("rates");
        assert!(p > 6.0 && p < 14.0, "publish rate {p}/s");
        // 400 ms of work plus the message's way to the consumer, one at a time.
        assert!(a > 0.5 && a < 2.5, "ack rate {a}/s");
    }

    #[test]
    fn every_edge_offers_the_menu_of_what_draws_it() {
        let mut r = Rig::shop(false);
        r.form(
            Kind::Consumer,
            &[("name", "worker"), ("queue", "orders.new")],
        );
        r.form(Kind::Queue, &[("name", "parking"), ("dlx", "orders")]);
        r.form(
            Kind::Exchange,
            &[
                ("name", "front"),
                ("type", "fanout"),
                ("alternate", "orders"),
            ],
        );
        // A delivery edge: the consumer's menu.
        open_menu(
            &mut r,
            MenuOn::Edge("queue:orders.new".into(), "consumer:worker".into()),
        );
        assert_eq!(menu_labels(&r.wb), ["m-edit", "m-delete"]);
        pick(&mut r, "m-edit");
        assert_eq!(r.wb.form.as_ref().map(|f| f.kind), Some(Kind::Consumer));
        r.act(WbAction::CancelForm);
        // A dead-letter edge: edit the queue whose argument draws it (not delete it).
        open_menu(
            &mut r,
            MenuOn::Edge("queue:parking".into(), "exchange:orders".into()),
        );
        let items = r.wb.menu_items();
        assert_eq!(menu_labels(&r.wb), ["m-edit"]);
        assert_eq!(items[0].detail, "parking");
        pick(&mut r, "m-edit");
        let f = r.wb.form.as_ref().expect("the queue form");
        assert_eq!((f.kind, f.get("dlx")), (Kind::Queue, "orders"));
        r.act(WbAction::CancelForm);
        // An alternate-exchange edge: edit the exchange that names it.
        open_menu(
            &mut r,
            MenuOn::Edge("exchange:front".into(), "exchange:orders".into()),
        );
        assert_eq!(menu_labels(&r.wb), ["m-edit"]);
        pick(&mut r, "m-edit");
        let f = r.wb.form.as_ref().expect("the exchange form");
        assert_eq!((f.kind, f.get("alternate")), (Kind::Exchange, "orders"));
        // An edge nothing draws: no menu.
        r.act(WbAction::CancelForm);
        open_menu(
            &mut r,
            MenuOn::Edge("queue:orders.new".into(), "exchange:orders".into()),
        );
        assert!(r.wb.menu.is_none());
    }

    #[test]
    fn a_binding_edited_from_its_edge_routes_by_the_new_key() {
        let mut r = Rig::shop(false);
        let edge = MenuOn::Edge("exchange:orders".into(), "queue:orders.new".into());
        open_menu(&mut r, edge.clone());
        assert_eq!(menu_labels(&r.wb), ["m-edit", "m-delete"]);
        pick(&mut r, "m-edit");
        let f = r.wb.form.as_ref().expect("the binding form");
        assert_eq!((f.kind, f.get("key")), (Kind::Binding, "order.*"));
        // The same inline check as a new binding: this one exists already.
        r.act(WbAction::Field("dest".into(), "orders.other".into()));
        r.act(WbAction::Field("key".into(), "invoice.#".into()));
        let sent = r.wb.sent;
        r.act(WbAction::Save);
        assert_eq!(r.wb.sent, sent, "a duplicate binding was sent");
        let f = r.wb.form.as_ref().expect("still open");
        assert_eq!(f.shown_problems(&r.wb.sc)[0].msg, Msg::BindingExists);
        r.act(WbAction::Field("dest".into(), "orders.new".into()));
        r.act(WbAction::Field("key".into(), "order.paid".into()));
        r.act(WbAction::Save);
        assert!(r.wb.form.is_none(), "{:?}", r.wb.form);
        let ops: Vec<_> = r.log.iter().rev().take(2).map(|q| q.method.op()).collect();
        assert_eq!(ops, ["queue_bind", "queue_unbind"], "unbind, then bind");
        // order.new no longer matches; order.paid does.
        r.act(WbAction::Publish("shop".into()));
        r.wait(100.0);
        assert_eq!(r.record(1).fate, Fate::Dropped, "{:?}", r.texts(1));
        r.act(WbAction::EditForm(Kind::Producer, "shop".into()));
        r.act(WbAction::Field("key".into(), "order.paid".into()));
        r.act(WbAction::Save);
        r.act(WbAction::Publish("shop".into()));
        r.wait(100.0);
        assert_eq!(r.record(2).fate, Fate::Ready);
        assert!(r
            .texts(2)
            .iter()
            .any(|t| t.contains("matched binding `order.paid`")));
        // Two bindings on one edge: the menu names each.
        r.form(
            Kind::Binding,
            &[("source", "orders"), ("dest", "orders.new"), ("key", "x.*")],
        );
        open_menu(&mut r, edge);
        let items = r.wb.menu_items();
        assert_eq!(items.len(), 4);
        assert_eq!(items[2].detail, "“x.*”");
        assert_eq!(items[2].testid, "menu-edit-1");
        // A producer's publishing edge offers the producer's menu.
        open_menu(
            &mut r,
            MenuOn::Edge("producer:shop".into(), "exchange:orders".into()),
        );
        assert_eq!(menu_labels(&r.wb), ["m-publish", "m-edit", "m-delete"]);
        pick(&mut r, "m-edit");
        let f = r.wb.form.as_ref().expect("the producer form");
        assert_eq!(f.kind, Kind::Producer);
    }

    #[test]
    fn a_producer_with_a_rate_publishes_on_the_clock_until_stopped() {
        let mut r = Rig::shop(false);
        r.act(WbAction::EditForm(Kind::Producer, "shop".into()));
        r.act(WbAction::Field("rate".into(), "4".into()));
        r.act(WbAction::Save);
        assert_eq!(r.wb.rate_of("shop").as_deref(), Some("4"));
        r.wait(1000.0);
        assert_eq!(r.wb.counts.get("shop"), None, "not before it is started");
        open_menu(&mut r, MenuOn::Node("producer:shop".into()));
        assert_eq!(
            menu_labels(&r.wb),
            ["m-publish", "m-start", "m-edit", "m-delete"]
        );
        pick(&mut r, "m-start");
        r.wait(1010.0);
        // At once, then every 250 ms: 5 in the first second.
        assert_eq!(r.wb.counts.get("shop"), Some(&5));
        // Paused, the clock stands and so does the producer.
        for _ in 0..30 {
            r.wall += 16.0;
            let (reqs, _) = r.wb.tick(r.wall, true, 1.0);
            r.run(reqs);
        }
        assert_eq!(r.wb.counts.get("shop"), Some(&5));
        r.wait(500.0);
        assert_eq!(r.wb.counts.get("shop"), Some(&7));
        r.act(WbAction::Run("shop".into(), false));
        r.wait(1000.0);
        assert_eq!(r.wb.counts.get("shop"), Some(&7));
        assert_eq!(r.wb.journal.queues["orders.new"].ready.len(), 7);
        // Rate 0 again: no start, and a running producer stops.
        r.act(WbAction::Run("shop".into(), true));
        r.act(WbAction::EditForm(Kind::Producer, "shop".into()));
        r.act(WbAction::Field("rate".into(), "0".into()));
        r.act(WbAction::Save);
        assert!(r.wb.running.is_empty());
        r.act(WbAction::Run("shop".into(), true));
        assert!(r.wb.running.is_empty());
    }

    #[test]
    fn a_held_message_label_keeps_clear_of_the_consumer_name() {
        // A held message sits above a consumer's box, its label clear of the name.
        let mut r = Rig::shop(false);
        r.form(
            Kind::Consumer,
            &[("name", "worker"), ("queue", "orders.new")],
        );
        let b = r.wb.node_box("consumer:worker").expect("drawn");
        let (x, y) = r.wb.held_xy("consumer:worker", 0).expect("a spot");
        assert!(y + 11.0 < b.y - b.hh, "the token is above the box");
        let title = crate::label::text_box(b.x, b.y - 10.0, 21.0, "worker");
        assert_eq!(
            crate::label::label_spot(x, y, 11.0, "#1", &[title]).map(|s| s.2),
            Some("middle")
        );
    }

    #[test]
    fn frames_of_an_old_link_are_ignored() {
        let mut r = Rig::shop(false);
        let (out, changed) = r.wb.apply(WbAction::Link {
            generation: 9,
            event: LinkEvent::Failed("x".into()),
        });
        assert!(out.is_empty() && !changed && r.wb.link_up);
    }
}
