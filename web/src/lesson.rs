//! The lesson player's pure part: the layered picture of any scenario topology
//! ([`Layout`]) and the player state ([`Player`]) that drives a
//! `sim_core::scenario::ScenarioRun` from the protocol stream. No browser API
//! here: `cargo test -p web` runs it natively against `sim_core::Broker`.
//!
//! The shell (`app.rs`) owns the clock and the link: it calls
//! [`Player::tick`] with the link's clock (virtual in simulation, wall in real
//! mode), feeds every frame to [`Player::frame`], sends the requests both
//! return, and in simulation keeps the virtual clock at or below
//! [`Player::hold_ms`] so a "predict, then see" question is answered before
//! its step's time comes.

use sim_core::small_map::{sort_by, SmallMap, SmallSet};
use std::collections::VecDeque;

use sim_core::protocol::{
    DestinationKind, Event, ExchangeKind, Method, Request, ServerFrame, Trace,
};
use sim_core::scenario::{NoteKind, Report, Scenario, ScenarioRun, TimedAction};

/// What the lesson player is told (the shell owns the player and the link).
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum LessonAction {
    /// Redraw (the shell changed the player, e.g. opened a lesson).
    Refresh,
    /// Frames that arrived together (a link's whole outbox at one drain).
    Frames {
        generation: u32,
        frames: Vec<ServerFrame>,
    },
    Link {
        generation: u32,
        event: crate::model::LinkEvent,
    },
    Answer {
        step: usize,
        choice: usize,
    },
    Next,
    Back,
}

/// One input the live lesson player took (see [`crate::history`]): what
/// the shell feeds [`Player`], with the clock each was fed at.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum LessonInput {
    /// [`Player::tick`] at this clock.
    Tick(u64),
    /// A batch of frames, each fed to [`Player::frame`] with `now`.
    Frames {
        frames: Vec<ServerFrame>,
        now: Option<u64>,
    },
    Answer {
        step: usize,
        choice: usize,
    },
    Next,
    Back,
}

impl crate::history::Replay for Player {
    type Input = LessonInput;

    fn feed(&mut self, input: &LessonInput) -> (Vec<Request>, bool) {
        match input {
            LessonInput::Tick(now) => (self.tick(*now), false),
            LessonInput::Frames { frames, now } => {
                let out = frames
                    .iter()
                    .flat_map(|f| self.frame(f.clone(), *now))
                    .collect();
                (out, true)
            }
            LessonInput::Answer { step, choice } => {
                self.answer(*step, *choice);
                (Vec::new(), true)
            }
            LessonInput::Next => {
                self.next();
                (Vec::new(), true)
            }
            LessonInput::Back => {
                self.back();
                (Vec::new(), true)
            }
        }
    }

    fn is_event(input: &LessonInput) -> bool {
        matches!(input, LessonInput::Frames { frames, .. } if !frames.is_empty())
    }

    fn clock(&self) -> f64 {
        self.now as f64
    }

    fn keep_view(&mut self, from: &Self) {
        // A step the user went back to stays shown; following the run, the
        // replay's own step is the one.
        if !from.follow {
            // Never a step this moment has not reached.
            self.viewed = match (from.viewed, self.active_step()) {
                (Some(v), Some(active)) => Some(v.min(active)),
                (v, _) => v,
            };
            self.follow = false;
        }
    }

    fn merges(prev: &LessonInput, next: &LessonInput) -> bool {
        // A tick at the clock of the tick before it finds nothing new.
        matches!((prev, next), (LessonInput::Tick(a), LessonInput::Tick(b)) if a == b)
    }
}

/// The built-in lessons (`sim_core::scenario::BUILTIN`), read without
/// `serde_path_to_error` (which would double the deserializer code in the
/// bundle; the files are checked by sim-core's tests).
pub fn builtin_lessons() -> Vec<Scenario> {
    sim_core::scenario::BUILTIN
        .iter()
        .filter_map(|(_, json)| serde_json::from_str::<Scenario>(json).ok())
        .collect()
}

/// Reads a scenario file a user gives (import, shared link): the format
/// version first, then the shape ([`crate::scenario_json`], errors with their
/// JSON path), then
/// `sim_core::scenario::validate` (every issue with its JSON path). Never panics.
pub fn parse_scenario(json: &str) -> Result<Scenario, String> {
    let v = serde_json::from_str::<serde_json::Value>(json).map_err(|e| e.to_string())?;
    scenario_of_value(&v)
}

/// [`parse_scenario`] of JSON already parsed.
pub fn scenario_of_value(v: &serde_json::Value) -> Result<Scenario, String> {
    if let Some(f) = v.get("format") {
        if f.as_u64() != Some(u64::from(sim_core::scenario::FORMAT_VERSION)) {
            return Err(format!(
                "format: unsupported scenario format {f} (this page reads format {})",
                sim_core::scenario::FORMAT_VERSION
            ));
        }
    }
    let sc = crate::scenario_json::from_value(v)?;
    let issues = sim_core::scenario::validate(&sc);
    if issues.is_empty() {
        Ok(sc)
    } else {
        Err(issues
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Lesson groups of the picker.
pub const GROUPS: [&str; 3] = ["tutorials", "course", "reliability"];

/// Which picker group a lesson belongs to (by its tags).
pub fn group_of(sc: &Scenario) -> &'static str {
    group_of_tags(&sc.tags)
}

fn group_of_tags<S: AsRef<str>>(tags: &[S]) -> &'static str {
    if tags.iter().any(|t| t.as_ref() == "tutorial") {
        "tutorials"
    } else if tags.iter().any(|t| t.as_ref() == "reliability") {
        "reliability"
    } else {
        "course"
    }
}

/// One lesson of the picker. The page does not carry the lessons in its
/// wasm: `cargo xtask build-web` writes each to `pkg/lessons/<id>.json` (fetched
/// when opened) and their catalogue to `pkg/lessons/index.json`,
/// `[{"id": "...", "tags": [...], "title": {"en": "...", "ru": "...", "uk": "..."}}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub id: String,
    pub group: &'static str,
    pub title: sim_core::scenario::Text,
}

/// Reads the lesson catalogue; ids that could not be a file name are refused.
pub fn parse_catalog(json: &str) -> Result<Vec<CatalogEntry>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the lesson list is not JSON: {e}"))?;
    let list = v.as_array().ok_or("the lesson list is not a list")?;
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
            let id = s(e.get("id")).ok_or(format!("lesson {i} has no id"))?;
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!("lesson {i} has the id {id:?}"));
            }
            let tags: Vec<String> = e
                .get("tags")
                .and_then(|t| t.as_array())
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let title = e.get("title");
            let lang = |l: &str| s(title.and_then(|t| t.get(l))).unwrap_or_else(|| id.clone());
            Ok(CatalogEntry {
                group: group_of_tags(&tags),
                title: sim_core::scenario::Text {
                    en: lang("en"),
                    ru: lang("ru"),
                    uk: lang("uk"),
                },
                id,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Producer,
    Exchange,
    Queue,
    Consumer,
}

impl NodeKind {
    /// Half width and half height of the node's box in the pictures.
    pub fn half(self) -> (f64, f64) {
        match self {
            NodeKind::Exchange => (62.0, 50.0),
            NodeKind::Queue => (80.0, 36.0),
            _ => (78.0, 40.0),
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            NodeKind::Producer => "producer",
            NodeKind::Exchange => "exchange",
            NodeKind::Queue => "queue",
            NodeKind::Consumer => "consumer",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub name: String,
    /// The exchange type, the queue's notable arguments, the consumer's prefetch.
    pub sub: String,
    pub x: f64,
    pub y: f64,
}

impl Node {
    /// `queue:orders`: the id lesson steps highlight.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.prefix(), self.name)
    }

    /// The name as drawn (the default exchange has none).
    pub fn title(&self) -> &str {
        if self.kind == NodeKind::Exchange && self.name.is_empty() {
            "(default)"
        } else {
            &self.name
        }
    }

    /// The name as the pictures write it: cut only where it is written inside
    /// a shape. A queue's name stands above its box, and the layout makes room
    /// for it, so `orders.processing` is read whole.
    pub fn shown_title(&self) -> String {
        let most = match self.kind {
            NodeKind::Queue => 24,
            NodeKind::Exchange => 16,
            NodeKind::Producer | NodeKind::Consumer => 15,
        };
        short(self.title(), most)
    }

    /// Whether the name is written smaller (class `long`) to fit its place.
    pub fn long_title(&self) -> bool {
        let over = match self.kind {
            NodeKind::Exchange => 8,
            NodeKind::Queue => 12,
            NodeKind::Producer | NodeKind::Consumer => 10,
        };
        self.title().chars().count() > over
    }

    /// The name's size, px, on the lesson and Build pictures (the page's CSS:
    /// `.lesson-topology .node-title` and its `.long` rules).
    pub fn title_px(&self) -> f64 {
        match (self.kind, self.long_title()) {
            (NodeKind::Exchange, true) => 14.0,
            (NodeKind::Queue, true) => 16.0,
            (NodeKind::Producer | NodeKind::Consumer, true) => 15.0,
            _ => 21.0,
        }
    }

    /// How far the node's shape or name reaches either side of its centre.
    fn reach(&self) -> f64 {
        let name = crate::label::text_box(0.0, 0.0, self.title_px(), &self.shown_title());
        self.kind.half().0.max(name[2])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Publish,
    Binding,
    Deliver,
    /// Dead-lettering, forwarding: a message may take it.
    Side,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    pub label: String,
}

/// Producers → exchanges (in layers along exchange-to-exchange bindings) →
/// queues → consumers, left to right.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub width: f64,
    pub height: f64,
    /// Each edge's path, around the nodes between its ends (see [`Layout::route_edges`]).
    pub paths: Vec<crate::route::Path>,
}

pub const COL_W: f64 = 250.0;
pub const ROW_H: f64 = 160.0;
pub const MARGIN_X: f64 = 110.0;
/// Room right of the last column: the widest caption under a consumer
/// (Russian "получено 0 · обработано 0") is wider than its box.
pub const MARGIN_RIGHT: f64 = 150.0;
pub const MARGIN_Y: f64 = 80.0;

/// `s`, cut to at most `n` characters (the last an ellipsis).
pub(crate) fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn field_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn arg_str(args: &sim_core::protocol::FieldTable, key: &str) -> Option<String> {
    args.get(key).map(field_text)
}

impl Layout {
    pub fn index(&self, kind: NodeKind, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.kind == kind && n.name == name)
    }

    /// The layout of `sc`'s topology (plus what its timeline declares and what
    /// its producers and consumers use).
    pub fn of(sc: &Scenario) -> Layout {
        let mut exchanges: Vec<(String, ExchangeKind)> = Vec::new();
        let add_x =
            |name: &str, kind: Option<ExchangeKind>, xs: &mut Vec<(String, ExchangeKind)>| {
                if let Some(e) = xs.iter_mut().find(|(n, _)| n == name) {
                    if let Some(k) = kind {
                        e.1 = k;
                    }
                } else {
                    let default = match name {
                        "amq.fanout" => ExchangeKind::Fanout,
                        "amq.topic" => ExchangeKind::Topic,
                        "amq.headers" | "amq.match" => ExchangeKind::Headers,
                        _ => ExchangeKind::Direct,
                    };
                    xs.push((name.to_string(), kind.unwrap_or(default)));
                }
            };
        let mut queues: Vec<(String, String)> = Vec::new();
        let add_q = |q: &sim_core::scenario::QueueDef, qs: &mut Vec<(String, String)>| {
            if qs.iter().any(|(n, _)| *n == q.name) {
                return;
            }
            let mut sub = Vec::new();
            if let Some(t) = arg_str(&q.arguments, "x-message-ttl") {
                sub.push(format!("ttl {t}"));
            }
            if let Some(m) = arg_str(&q.arguments, "x-max-length") {
                sub.push(format!("max {m}"));
            }
            if let Some(p) = arg_str(&q.arguments, "x-max-priority") {
                sub.push(format!("prio ≤{p}"));
            }
            qs.push((q.name.clone(), sub.join(" · ")));
        };
        let mut bindings: Vec<sim_core::scenario::BindingDef> = sc.topology.bindings.clone();
        for p in &sc.producers {
            add_x(&p.exchange, None, &mut exchanges);
        }
        for x in &sc.topology.exchanges {
            add_x(&x.name, Some(x.kind), &mut exchanges);
        }
        for q in &sc.topology.queues {
            add_q(q, &mut queues);
        }
        for a in &sc.timeline {
            match a {
                TimedAction::DeclareExchange { exchange, .. } => {
                    add_x(&exchange.name, Some(exchange.kind), &mut exchanges)
                }
                TimedAction::DeclareQueue { queue, .. } => add_q(queue, &mut queues),
                TimedAction::Bind { binding, .. } => bindings.push(binding.clone()),
                TimedAction::Publish { exchange, .. } => add_x(exchange, None, &mut exchanges),
                _ => {}
            }
        }
        for b in &bindings {
            add_x(&b.source, None, &mut exchanges);
            if let Some(x) = &b.exchange {
                add_x(x, None, &mut exchanges);
            }
        }
        let mut side: Vec<(NodeKind, String, String, String)> = Vec::new();
        let all_queues: Vec<sim_core::scenario::QueueDef> = sc
            .topology
            .queues
            .iter()
            .cloned()
            .chain(sc.timeline.iter().filter_map(|a| match a {
                TimedAction::DeclareQueue { queue, .. } => Some(queue.clone()),
                _ => None,
            }))
            .collect();
        for q in &all_queues {
            if let Some(dlx) = arg_str(&q.arguments, "x-dead-letter-exchange") {
                add_x(&dlx, None, &mut exchanges);
                side.push((NodeKind::Queue, q.name.clone(), dlx, "dead-letter".into()));
            }
        }
        for x in &sc.topology.exchanges {
            if let Some(ae) = arg_str(&x.arguments, "alternate-exchange") {
                add_x(&ae, None, &mut exchanges);
            }
        }
        for c in &sc.consumers {
            for t in &c.forward {
                add_x(&t.exchange, None, &mut exchanges);
                side.push((
                    NodeKind::Consumer,
                    c.name.clone(),
                    t.exchange.clone(),
                    "forward".into(),
                ));
            }
            if let Some(f) = &c.failure {
                if let Some(to) = &f.give_up_to {
                    add_x(&to.exchange, None, &mut exchanges);
                    side.push((
                        NodeKind::Consumer,
                        c.name.clone(),
                        to.exchange.clone(),
                        "give up".into(),
                    ));
                }
            }
        }
        // The default exchange reaches a queue by its name: draw the edges a
        // routing key of this scenario names.
        let mut default_keys: SmallSet<String> = SmallSet::new();
        for p in &sc.producers {
            if p.exchange.is_empty() {
                default_keys.insert(p.routing_key.clone());
            }
            for m in &p.messages {
                if m.exchange.as_deref().unwrap_or(&p.exchange).is_empty() {
                    default_keys.insert(
                        m.routing_key
                            .clone()
                            .unwrap_or_else(|| p.routing_key.clone()),
                    );
                }
            }
        }
        for a in &sc.timeline {
            if let TimedAction::Publish {
                exchange,
                routing_key,
                ..
            } = a
            {
                if exchange.is_empty() {
                    default_keys.insert(routing_key.clone());
                }
            }
        }
        for c in &sc.consumers {
            for t in c
                .forward
                .iter()
                .chain(c.failure.iter().filter_map(|f| f.give_up_to.as_ref()))
            {
                if t.exchange.is_empty() {
                    default_keys.insert(t.routing_key.clone());
                }
            }
        }
        if exchanges.iter().any(|(n, _)| n.is_empty()) {
            for (q, _) in &queues {
                if default_keys.contains(q) {
                    bindings.push(sim_core::scenario::BindingDef {
                        source: String::new(),
                        queue: Some(q.clone()),
                        exchange: None,
                        routing_key: q.clone(),
                        arguments: Default::default(),
                    });
                }
            }
        }

        // Exchange layers: longest chain of exchange-to-exchange bindings (capped, so cycles end).
        let mut depth = vec![0usize; exchanges.len()];
        let xi = |name: &str| exchanges.iter().position(|(n, _)| n == name);
        for _ in 0..exchanges.len() {
            let mut moved = false;
            for b in &bindings {
                if let (Some(s), Some(d)) = (xi(&b.source), b.exchange.as_deref().and_then(xi)) {
                    if depth[d] < depth[s] + 1 && depth[s] + 1 < exchanges.len() {
                        depth[d] = depth[s] + 1;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let xcols = depth.iter().copied().max().map_or(1, |d| d + 1);

        let mut nodes: Vec<Node> = Vec::new();
        let mut columns: Vec<Vec<usize>> = vec![Vec::new(); xcols + 3];
        for p in &sc.producers {
            columns[0].push(nodes.len());
            nodes.push(Node {
                kind: NodeKind::Producer,
                name: p.name.clone(),
                sub: if p.count > 0 {
                    format!("{} msg", p.count)
                } else {
                    format!("{} msg", p.messages.len())
                },
                x: 0.0,
                y: 0.0,
            });
        }
        for (i, (name, kind)) in exchanges.iter().enumerate() {
            columns[1 + depth[i]].push(nodes.len());
            nodes.push(Node {
                kind: NodeKind::Exchange,
                name: name.clone(),
                sub: kind.as_str().to_string(),
                x: 0.0,
                y: 0.0,
            });
        }
        for (name, sub) in &queues {
            columns[1 + xcols].push(nodes.len());
            nodes.push(Node {
                kind: NodeKind::Queue,
                name: name.clone(),
                sub: sub.clone(),
                x: 0.0,
                y: 0.0,
            });
        }
        for c in &sc.consumers {
            columns[2 + xcols].push(nodes.len());
            let sub = match (c.ack, c.prefetch) {
                (sim_core::scenario::AckMode::Auto, _) => "auto-ack".to_string(),
                (_, 0) => "no prefetch limit".to_string(),
                (_, p) => format!("prefetch {p}"),
            };
            nodes.push(Node {
                kind: NodeKind::Consumer,
                name: c.name.clone(),
                sub,
                x: 0.0,
                y: 0.0,
            });
        }
        let find = |nodes: &[Node], kind: NodeKind, name: &str| {
            nodes.iter().position(|n| n.kind == kind && n.name == name)
        };
        let mut edges = Vec::new();
        for p in &sc.producers {
            if let (Some(a), Some(b)) = (
                find(&nodes, NodeKind::Producer, &p.name),
                find(&nodes, NodeKind::Exchange, &p.exchange),
            ) {
                let kind = exchanges
                    .iter()
                    .find(|(n, _)| *n == p.exchange)
                    .map(|e| e.1);
                let label = match kind {
                    Some(ExchangeKind::Fanout) | Some(ExchangeKind::Headers) => String::new(),
                    _ => short(&p.routing_key, 22),
                };
                edges.push(Edge {
                    from: a,
                    to: b,
                    kind: EdgeKind::Publish,
                    label,
                });
            }
        }
        for b in &bindings {
            let Some(s) = find(&nodes, NodeKind::Exchange, &b.source) else {
                continue;
            };
            let d = match (&b.queue, &b.exchange) {
                (Some(q), _) => find(&nodes, NodeKind::Queue, q),
                (None, Some(x)) => find(&nodes, NodeKind::Exchange, x),
                _ => None,
            };
            let Some(d) = d else { continue };
            let kind = exchanges.iter().find(|(n, _)| *n == b.source).map(|e| e.1);
            let label = match kind {
                Some(ExchangeKind::Fanout) => String::new(),
                Some(ExchangeKind::Headers) => {
                    let mut parts: Vec<String> = b
                        .arguments
                        .iter()
                        .filter(|(k, _)| k.as_str() != "x-match")
                        .map(|(k, v)| format!("{k}={}", field_text(v)))
                        .collect();
                    sort_by(&mut parts, &|a, b| a.cmp(b));
                    let m = arg_str(&b.arguments, "x-match").unwrap_or_else(|| "all".into());
                    short(&format!("{m}: {}", parts.join(", ")), 30)
                }
                _ => short(&b.routing_key, 22),
            };
            if !edges
                .iter()
                .any(|e: &Edge| e.from == s && e.to == d && e.label == label)
            {
                edges.push(Edge {
                    from: s,
                    to: d,
                    kind: EdgeKind::Binding,
                    label,
                });
            }
        }
        for c in &sc.consumers {
            if let (Some(q), Some(n)) = (
                find(&nodes, NodeKind::Queue, &c.queue),
                find(&nodes, NodeKind::Consumer, &c.name),
            ) {
                edges.push(Edge {
                    from: q,
                    to: n,
                    kind: EdgeKind::Deliver,
                    label: String::new(),
                });
            }
        }
        for (kind, from, to, label) in side {
            if let (Some(a), Some(b)) = (
                find(&nodes, kind, &from),
                find(&nodes, NodeKind::Exchange, &to),
            ) {
                edges.push(Edge {
                    from: a,
                    to: b,
                    kind: EdgeKind::Side,
                    label,
                });
            }
        }

        // Rows: each node near the mean row of its sources (linear in the
        // edges per column, so a large imported topology stays fast).
        let mut row = vec![0.0f64; nodes.len()];
        let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for e in edges.iter().filter(|e| e.kind != EdgeKind::Side) {
            incoming[e.to].push(e.from);
        }
        for (c, column) in columns.iter_mut().enumerate() {
            if c >= 2 {
                let mut keyed: Vec<(f64, usize, usize)> = column
                    .iter()
                    .enumerate()
                    .map(|(pos, &i)| {
                        let srcs = &incoming[i];
                        let k = if srcs.is_empty() {
                            2.0
                        } else {
                            srcs.iter().map(|&f| row[f]).sum::<f64>() / srcs.len() as f64
                        };
                        (k, pos, i)
                    })
                    .collect();
                sort_by(&mut keyed, &|a, b| {
                    a.0.partial_cmp(&b.0)
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(a.1.cmp(&b.1))
                });
                *column = keyed.into_iter().map(|(_, _, i)| i).collect();
            }
            let n = column.len().max(1) as f64;
            for (r, &i) in column.iter().enumerate() {
                row[i] = r as f64 / n;
            }
        }
        let rows = columns.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let height = MARGIN_Y * 2.0 + ROW_H * (rows as f64 - 1.0) + 40.0;
        let xs = column_xs(&nodes, &columns, &edges);
        for (c, col) in columns.iter().enumerate() {
            let top = (height - ROW_H * (col.len() as f64 - 1.0)) / 2.0;
            for (r, &i) in col.iter().enumerate() {
                nodes[i].x = xs[c];
                nodes[i].y = top + ROW_H * r as f64;
            }
        }
        let width = xs.last().map_or(0.0, |x| x + MARGIN_RIGHT);
        let mut l = Layout {
            nodes,
            edges,
            width,
            height,
            paths: Vec::new(),
        };
        l.route_edges();
        l
    }

    /// Computes every edge's path (again, after nodes moved).
    pub fn route_edges(&mut self) {
        self.paths = Vec::new();
        let paths: Vec<crate::route::Path> = self
            .edges
            .iter()
            .filter_map(|e| self.path(e.from, e.to))
            .collect();
        self.paths = paths;
    }

    /// Node `i`'s box.
    pub fn node_box(&self, i: usize) -> Option<crate::route::NodeBox> {
        let n = self.nodes.get(i)?;
        let (hw, hh) = n.kind.half();
        Some(crate::route::NodeBox {
            x: n.x,
            y: n.y,
            hw,
            hh,
        })
    }

    /// The path of an edge from node `from` to node `to`, around every other
    /// node (an edge's is computed once, by [`Layout::route_edges`]).
    pub fn path(&self, from: usize, to: usize) -> Option<crate::route::Path> {
        if let Some(i) = self.edges.iter().position(|e| e.from == from && e.to == to) {
            if let Some(p) = self.paths.get(i) {
                return Some(p.clone());
            }
        }
        let (a, b) = (self.node_box(from)?, self.node_box(to)?);
        let others: Vec<crate::route::NodeBox> = (0..self.nodes.len())
            .filter(|&i| i != from && i != to)
            .filter_map(|i| self.node_box(i))
            .collect();
        Some(crate::route::route(a, b, &others))
    }

    /// Is `edge` named by a highlight `binding:SOURCE->DEST`?
    pub fn edge_id(&self, e: &Edge) -> String {
        format!(
            "binding:{}->{}",
            self.nodes[e.from].name, self.nodes[e.to].name
        )
    }
}

/// Each column's x: [`COL_W`] apart, or further where the names either side
/// or a binding's key written between two columns need the room. A key is
/// written at the middle of its edge's last stretch, between the two nodes'
/// sides, so both of its ends must clear the names beside it.
fn column_xs(nodes: &[Node], columns: &[Vec<usize>], edges: &[Edge]) -> Vec<f64> {
    const PAD: f64 = 14.0;
    let mut col_of = vec![0usize; nodes.len()];
    for (c, col) in columns.iter().enumerate() {
        for &i in col {
            col_of[i] = c;
        }
    }
    let reach: Vec<f64> = columns
        .iter()
        .map(|col| col.iter().map(|&i| nodes[i].reach()).fold(0.0, f64::max))
        .collect();
    // The gap each column needs after the one before it.
    let mut gap: Vec<f64> = (0..columns.len())
        .map(|c| match c {
            0 => 0.0,
            _ => COL_W.max(reach[c - 1] + reach[c] + 2.0 * PAD),
        })
        .collect();
    for e in edges
        .iter()
        .filter(|e| e.kind != EdgeKind::Side && !e.label.is_empty())
    {
        let (a, b) = (col_of[e.from], col_of[e.to]);
        if b == 0 || b <= a {
            continue;
        }
        // The stretch runs from the source's side (or the column before's
        // edge, for an edge passing through) to the destination's side.
        let hw_a = if a + 1 == b {
            nodes[e.from].kind.half().0
        } else {
            reach[b - 1]
        };
        let hw_b = nodes[e.to].kind.half().0;
        let key = e.label.chars().count() as f64 * KEY_PX * 0.62;
        let need =
            key + 2.0 * PAD + (2.0 * reach[b] + hw_a - hw_b).max(2.0 * reach[b - 1] - hw_a + hw_b);
        gap[b] = gap[b].max(need);
    }
    let mut x = MARGIN_X;
    gap.iter()
        .map(|g| {
            x += g;
            x
        })
        .collect()
}

/// The size, px, of a binding's key on the pictures (`.edge-key`).
pub const KEY_PX: f64 = 17.0;

pub use crate::metrics::{rates, Sample, SAMPLE_MS};

/// A message on its way along an edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub key: u64,
    pub from: usize,
    pub to: usize,
    pub start_ms: u64,
    pub label: String,
}

pub const TOKEN_MS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerState {
    Waiting,
    Idle,
    Busy,
    PrefetchFull,
    Down,
}

impl ConsumerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerState::Waiting => "waiting",
            ConsumerState::Idle => "idle",
            ConsumerState::Busy => "busy",
            ConsumerState::PrefetchFull => "prefetch-full",
            ConsumerState::Down => "down",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerView {
    pub subscribed: bool,
    pub down: bool,
    pub working: bool,
    pub unacked: u32,
    pub received: u32,
    pub processed: u32,
}

/// The lesson being played.
#[derive(Clone)]
pub struct Player {
    pub sc: Scenario,
    run: ScenarioRun,
    pub layout: Layout,
    pub real: bool,
    pub answers: Vec<Option<usize>>,
    /// The step shown; follows the run unless the user went back.
    pub viewed: Option<usize>,
    follow: bool,
    pub ready: SmallMap<String, i64>,
    pub consumers: Vec<ConsumerView>,
    /// Simulation traces seen: queue counts come from them, not from inference.
    traced: bool,
    /// message id → the queue it waits in (simulation).
    waiting: SmallMap<u64, Vec<String>>,
    pub tokens: Vec<Token>,
    next_key: u64,
    pub log: VecDeque<String>,
    pub report: Option<Report>,
    pub now: u64,
    started: bool,
    pub published: u64,
    pub delivered: u64,
    pub acked: u64,
    /// The metrics strip.
    pub samples: Vec<Sample>,
}

impl Player {
    pub fn new(sc: Scenario, real: bool) -> Player {
        let mut run = ScenarioRun::new(sc.clone());
        if real {
            run.set_max_requests_per_sec(Some(40));
        }
        let layout = Layout::of(&sc);
        let mut ready = SmallMap::new();
        for n in &layout.nodes {
            if n.kind == NodeKind::Queue {
                ready.insert(n.name.clone(), 0);
            }
        }
        Player {
            answers: vec![None; sc.steps.len()],
            consumers: vec![ConsumerView::default(); sc.consumers.len()],
            viewed: None,
            follow: true,
            ready,
            traced: false,
            waiting: SmallMap::new(),
            tokens: Vec::new(),
            next_key: 0,
            log: VecDeque::new(),
            report: None,
            now: 0,
            started: false,
            published: 0,
            delivered: 0,
            acked: 0,
            samples: Vec::new(),
            layout,
            run,
            real,
            sc,
        }
    }

    pub fn is_done(&self) -> bool {
        self.report.is_some()
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.run.elapsed_ms()
    }

    pub fn active_step(&self) -> Option<usize> {
        if self.run.started_at_ms().is_none() {
            return if self.sc.steps.is_empty() {
                None
            } else {
                Some(0)
            };
        }
        self.run.active_step()
    }

    /// The first step whose question has no answer yet.
    pub fn gate(&self) -> Option<usize> {
        self.sc
            .steps
            .iter()
            .enumerate()
            .position(|(i, s)| s.question.is_some() && self.answers[i].is_none())
    }

    /// Simulation: the virtual clock must not pass this (a question waits).
    pub fn hold_ms(&self) -> Option<u64> {
        let g = self.gate()?;
        match self.run.started_at_ms() {
            Some(t0) => Some(t0 + self.sc.steps[g].at_ms),
            None => Some(self.now),
        }
    }

    /// Waiting for an answer before the run may go on.
    pub fn waiting_for_answer(&self) -> bool {
        match self.gate() {
            None => false,
            Some(g) => {
                if self.real && self.started {
                    return false;
                }
                match self.run.started_at_ms() {
                    Some(t0) => self.now >= t0 + self.sc.steps[g].at_ms,
                    None => self.sc.steps[g].at_ms == 0 || self.real,
                }
            }
        }
    }

    pub fn answer(&mut self, step: usize, choice: usize) {
        let Some(q) = self.sc.steps.get(step).and_then(|s| s.question.as_ref()) else {
            return;
        };
        if choice < q.choices.len() && self.answers[step].is_none() {
            self.answers[step] = Some(choice);
        }
    }

    pub fn next(&mut self) {
        let last = self.active_step().unwrap_or(0);
        let v = self.viewed.unwrap_or(0);
        if v < last {
            self.viewed = Some(v + 1);
        }
        self.follow = self.viewed.unwrap_or(0) >= last;
    }

    pub fn back(&mut self) {
        if let Some(v) = self.viewed {
            if v > 0 {
                self.viewed = Some(v - 1);
                self.follow = false;
            }
        }
    }

    /// Time passed (the link's clock). Returns the requests to send.
    pub fn tick(&mut self, now: u64) -> Vec<Request> {
        let now = now.max(self.now);
        self.now = now;
        let before = self.tokens.len();
        self.tokens.retain(|t| now < t.start_ms + TOKEN_MS);
        let _ = before;
        if !self.started {
            // Real mode cannot stop RabbitMQ's clock: the first questions come before the run.
            if self.real && self.gate().is_some_and(|g| self.sc.steps[g].at_ms == 0) {
                return Vec::new();
            }
            self.started = true;
        }
        self.run.handle_timeout(now.max(self.run.now_ms()));
        self.pump()
    }

    /// A frame from the link. In real mode `now` (the page clock) replaces its
    /// time stamp, so frames and ticks are on one clock.
    pub fn frame(&mut self, mut frame: ServerFrame, now: Option<u64>) -> Vec<Request> {
        if let Some(now) = now {
            frame.at_ms = now.max(self.now);
        }
        self.now = self.now.max(frame.at_ms);
        if !self.started {
            return Vec::new();
        }
        self.observe(&frame);
        self.run.handle_frame(&frame);
        self.pump()
    }

    fn consumer_of_conn(&self, conn: u32) -> Option<usize> {
        let first = 2 + self.sc.producers.len() as u32;
        let j = conn.checked_sub(first)? as usize;
        (j < self.sc.consumers.len()).then_some(j)
    }

    fn token(&mut self, from: Option<usize>, to: Option<usize>, label: String) {
        if let (Some(from), Some(to)) = (from, to) {
            self.next_key += 1;
            self.tokens.push(Token {
                key: self.next_key,
                from,
                to,
                start_ms: self.now,
                label,
            });
            if self.tokens.len() > 60 {
                self.tokens.remove(0);
            }
        }
    }

    fn note(&mut self, text: String) {
        self.log.push_front(text);
        self.log.truncate(40);
    }

    fn bump(&mut self, queue: &str, by: i64) {
        if let Some(v) = self.ready.get_mut(queue) {
            *v = (*v + by).max(0);
        }
    }

    fn observe(&mut self, f: &ServerFrame) {
        match &f.event {
            Event::Deliver {
                connection,
                consumer_tag,
                redelivered,
                message_id,
                ..
            } => {
                let Some(j) = self.consumer_of_conn(*connection).or_else(|| {
                    self.sc
                        .consumers
                        .iter()
                        .position(|c| c.name == **consumer_tag)
                }) else {
                    return;
                };
                let queue = self.sc.consumers[j].queue.clone();
                let manual = self.sc.consumers[j].ack == sim_core::scenario::AckMode::Manual;
                if self.traced {
                    if let Some(qs) = self.waiting.get_mut(message_id) {
                        if let Some(p) = qs.iter().position(|q| *q == queue) {
                            qs.remove(p);
                            self.bump(&queue, -1);
                        }
                    }
                } else if !*redelivered {
                    self.bump(&queue, -1);
                }
                self.delivered += 1;
                if !manual {
                    self.acked += 1;
                }
                let c = &mut self.consumers[j];
                c.received += 1;
                if manual {
                    c.unacked += 1;
                }
                let (from, to) = (
                    self.layout.index(NodeKind::Queue, &queue),
                    self.layout
                        .index(NodeKind::Consumer, &self.sc.consumers[j].name),
                );
                let label = if *redelivered {
                    "↺".to_string()
                } else {
                    String::new()
                };
                self.token(from, to, label);
            }
            Event::Trace(t) => {
                self.traced = true;
                match t {
                    Trace::Routed {
                        exchange,
                        destination_kind,
                        destination,
                        ..
                    } => {
                        let from = self.layout.index(NodeKind::Exchange, exchange);
                        let to = match destination_kind {
                            DestinationKind::Queue => {
                                self.layout.index(NodeKind::Queue, destination)
                            }
                            DestinationKind::Exchange => {
                                self.layout.index(NodeKind::Exchange, destination)
                            }
                        };
                        self.token(from, to, String::new());
                    }
                    Trace::Enqueued { message_id, queue }
                    | Trace::Requeued { message_id, queue } => {
                        self.waiting
                            .get_or_insert_with(*message_id, Vec::new)
                            .push(queue.clone());
                        self.bump(queue, 1);
                    }
                    Trace::DeadLettered {
                        message_id,
                        queue,
                        dead_letter_exchange,
                        ..
                    } => {
                        self.unwait(*message_id, queue);
                        let (from, to) = (
                            self.layout.index(NodeKind::Queue, queue),
                            self.layout.index(NodeKind::Exchange, dead_letter_exchange),
                        );
                        self.token(from, to, "☠".into());
                    }
                    Trace::Dropped {
                        message_id,
                        queue: Some(queue),
                        ..
                    } => {
                        self.unwait(*message_id, queue);
                    }
                    _ => {}
                }
            }
            Event::Closed { error, .. } => {
                self.note(format!("{} {}", error.code, error.text));
            }
            _ => {}
        }
    }

    fn unwait(&mut self, id: u64, queue: &str) {
        if let Some(qs) = self.waiting.get_mut(&id) {
            if let Some(p) = qs.iter().position(|q| q == queue) {
                qs.remove(p);
                self.bump(queue, -1);
            }
        }
    }

    /// Real mode has no traces: the queues a publish reaches, from the bindings.
    fn infer_route(&self, exchange: &str, key: &str, depth: usize) -> Vec<String> {
        let mut out = Vec::new();
        if exchange.is_empty() {
            if self.ready.contains_key(key) {
                out.push(key.to_string());
            }
            return out;
        }
        let kind = self
            .layout
            .index(NodeKind::Exchange, exchange)
            .map(|i| self.layout.nodes[i].sub.clone())
            .unwrap_or_default();
        let mut bindings: Vec<sim_core::scenario::BindingDef> = self.sc.topology.bindings.clone();
        for a in &self.sc.timeline {
            if let TimedAction::Bind { binding, at_ms } = a {
                if *at_ms <= self.run.elapsed_ms() {
                    bindings.push(binding.clone());
                }
            }
        }
        for b in bindings.iter().filter(|b| b.source == exchange) {
            let hit = match kind.as_str() {
                "fanout" | "headers" => true,
                "topic" => topic_match(&b.routing_key, key),
                _ => b.routing_key == key,
            };
            if !hit {
                continue;
            }
            match (&b.queue, &b.exchange) {
                (Some(q), _) => out.push(q.clone()),
                (None, Some(x)) if depth < 8 => out.extend(self.infer_route(x, key, depth + 1)),
                _ => {}
            }
        }
        sort_by(&mut out, &|a, b| a.cmp(b));
        out.dedup();
        out
    }

    fn observe_request(&mut self, r: &Request) {
        match &r.method {
            Method::Ack { .. } | Method::Nack { .. } | Method::Reject { .. } => {
                if let Some(j) = self.consumer_of_conn(r.connection) {
                    self.acked += 1;
                    let c = &mut self.consumers[j];
                    c.unacked = c.unacked.saturating_sub(1);
                    let requeue = match &r.method {
                        Method::Nack { requeue, .. } | Method::Reject { requeue, .. } => *requeue,
                        _ => false,
                    };
                    if requeue && !self.traced {
                        let q = self.sc.consumers[j].queue.clone();
                        self.bump(&q, 1);
                    }
                }
            }
            Method::Publish {
                exchange,
                routing_key,
                ..
            } => {
                self.published += 1;
                let pi = (r.connection as usize)
                    .checked_sub(2)
                    .filter(|i| *i < self.sc.producers.len());
                let from = match pi {
                    Some(i) => self
                        .layout
                        .index(NodeKind::Producer, &self.sc.producers[i].name),
                    None => self.consumer_of_conn(r.connection).and_then(|j| {
                        self.layout
                            .index(NodeKind::Consumer, &self.sc.consumers[j].name)
                    }),
                };
                let to = self.layout.index(NodeKind::Exchange, exchange);
                self.token(from, to, String::new());
                if !self.traced && self.real {
                    for q in self.infer_route(exchange, routing_key, 0) {
                        self.bump(&q, 1);
                        let (f, t) = (
                            self.layout.index(NodeKind::Exchange, exchange),
                            self.layout.index(NodeKind::Queue, &q),
                        );
                        self.token(f, t, String::new());
                    }
                }
            }
            _ => {}
        }
    }

    fn pump(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        while let Some(r) = self.run.poll_request() {
            self.observe_request(&r);
            out.push(r);
        }
        while let Some(n) = self.run.poll_note() {
            let j = n
                .actor
                .strip_prefix("consumer:")
                .and_then(|name| self.sc.consumers.iter().position(|c| c.name == name));
            let text = match &n.kind {
                NoteKind::Subscribed => {
                    if let Some(j) = j {
                        self.consumers[j].subscribed = true;
                        self.consumers[j].down = false;
                    }
                    None
                }
                NoteKind::WorkStarted { .. } => {
                    if let Some(j) = j {
                        self.consumers[j].working = true;
                    }
                    None
                }
                NoteKind::WorkFinished { ok, outcome, .. } => {
                    if let Some(j) = j {
                        self.consumers[j].working = false;
                        if *ok {
                            self.consumers[j].processed += 1;
                        }
                    }
                    (!ok).then(|| format!("{}: {outcome}", n.actor))
                }
                NoteKind::Published { .. } => None,
                NoteKind::Crashed => {
                    if let Some(j) = j {
                        let c = &mut self.consumers[j];
                        let back = i64::from(c.unacked);
                        c.down = true;
                        c.working = false;
                        c.unacked = 0;
                        if !self.traced {
                            let q = self.sc.consumers[j].queue.clone();
                            self.bump(&q, back);
                        }
                    }
                    Some(format!("{} crashed", n.actor))
                }
                NoteKind::Restarted => Some(format!("{} restarted", n.actor)),
                NoteKind::Cancelled => Some(format!("{} cancelled", n.actor)),
                NoteKind::BrokerRestarted => Some("broker restarted".into()),
                NoteKind::Error { text } => Some(format!("{}: {text}", n.actor)),
                NoteKind::Finished => Some("finished".into()),
            };
            if let Some(t) = text {
                let at = self.run.elapsed_ms();
                self.note(format!("{:.1} s · {t}", at as f64 / 1000.0));
            }
        }
        if self.follow {
            self.viewed = self.active_step();
        }
        self.sample();
        if self.run.is_done() && self.report.is_none() {
            self.report = Some(self.run.report());
        }
        out
    }

    fn sample(&mut self) {
        if self.run.started_at_ms().is_none() || self.report.is_some() {
            return;
        }
        let s = Sample {
            t: self.run.elapsed_ms(),
            depth: self.ready.values().sum(),
            published: self.published,
            delivered: self.delivered,
            acked: self.acked,
        };
        crate::metrics::record(&mut self.samples, s, self.run.is_done());
    }

    pub fn consumer_state(&self, j: usize) -> ConsumerState {
        let Some(c) = self.consumers.get(j) else {
            return ConsumerState::Idle;
        };
        let prefetch = u32::from(self.sc.consumers[j].prefetch);
        if c.down {
            ConsumerState::Down
        } else if !c.subscribed {
            ConsumerState::Waiting
        } else if prefetch > 0 && c.unacked >= prefetch {
            ConsumerState::PrefetchFull
        } else if c.working || c.unacked > 0 {
            ConsumerState::Busy
        } else {
            ConsumerState::Idle
        }
    }

    pub fn unacked_in(&self, queue: &str) -> u32 {
        self.sc
            .consumers
            .iter()
            .zip(&self.consumers)
            .filter(|(d, _)| d.queue == queue)
            .map(|(_, c)| c.unacked)
            .sum()
    }

    /// The highlighted element ids of the step shown.
    pub fn highlights(&self) -> Vec<String> {
        self.viewed
            .and_then(|v| self.sc.steps.get(v))
            .map(|s| s.highlight.clone())
            .unwrap_or_default()
    }
}

/// AMQP topic matching (`*` one word, `#` zero or more), in O(pattern × key).
pub fn topic_match(pattern: &str, key: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    // m[j]: the pattern so far matches the first j words of the key.
    let mut m = vec![false; k.len() + 1];
    m[0] = true;
    for w in &p {
        let mut next = vec![false; k.len() + 1];
        for j in 0..=k.len() {
            if *w == "#" {
                // Zero words, or one more word after a match.
                next[j] = m[j] || (j > 0 && next[j - 1]);
            } else if j > 0 {
                next[j] = m[j - 1] && (*w == "*" || *w == k[j - 1]);
            }
        }
        m = next;
    }
    m[k.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::Broker;

    fn builtin() -> Vec<Scenario> {
        let all = builtin_lessons();
        assert_eq!(all.len(), sim_core::scenario::BUILTIN.len());
        all
    }

    #[test]
    fn the_catalogue_lists_every_lesson_and_refuses_odd_ids() {
        // As `cargo xtask build-web` writes it.
        let index: Vec<serde_json::Value> = builtin()
            .iter()
            .map(|sc| {
                serde_json::json!({"id": sc.id, "tags": sc.tags,
                    "title": {"en": sc.title.en, "ru": sc.title.ru, "uk": sc.title.uk}})
            })
            .collect();
        let cat = parse_catalog(&serde_json::to_string(&index).unwrap()).expect("reads");
        assert_eq!(cat.len(), builtin().len());
        for (e, sc) in cat.iter().zip(builtin()) {
            assert_eq!((e.id.as_str(), e.group), (sc.id.as_str(), group_of(&sc)));
            assert_eq!(e.title, sc.title);
        }
        assert!(parse_catalog(r#"[{"id": "../x"}]"#).is_err());
        assert!(parse_catalog(r#"[{"tags": []}]"#).is_err());
        assert!(parse_catalog("{}").is_err());
    }

    #[test]
    fn parse_scenario_explains_bad_input() {
        assert!(parse_scenario("{").is_err());
        assert!(parse_scenario("").is_err());
        let e = parse_scenario(r#"{"format": 2, "id": "x"}"#).unwrap_err();
        assert!(e.contains("unsupported scenario format 2"), "{e}");
        let e = parse_scenario(r#"{"format": 1, "id": "x", "title": {"en":"a","ru":"b","uk":"c"}, "consumers": [{"name": "w", "queue": "nope"}]}"#).unwrap_err();
        assert!(e.contains("consumers[0].queue"), "{e}");
        let (_, json) = sim_core::scenario::BUILTIN[0];
        assert!(parse_scenario(json).is_ok());
    }

    fn lesson(id: &str) -> Scenario {
        builtin().into_iter().find(|s| s.id == id).expect(id)
    }

    /// Plays the player against the simulated broker on a virtual clock in
    /// 20 ms ticks (as the page does), answering each question with choice 0.
    fn play(sc: Scenario) -> Player {
        drive(sc, |p, input| crate::history::Replay::feed(p, &input).0)
    }

    /// [`play`], with every input to the player going through `feed`.
    fn drive(
        sc: Scenario,
        mut feed: impl FnMut(&mut Player, LessonInput) -> Vec<Request>,
    ) -> Player {
        let mut broker = Broker::new(sc.seed);
        broker.set_tracing(true);
        let mut p = Player::new(sc, false);
        let mut now = 0u64;
        let poll = |broker: &mut Broker| {
            let mut frames = Vec::new();
            while let Some(f) = broker.poll_event() {
                frames.push(f);
            }
            frames
        };
        for _ in 0..200_000 {
            if let Some(g) = p.gate() {
                if p.waiting_for_answer() {
                    feed(&mut p, LessonInput::Answer { step: g, choice: 0 });
                }
            }
            let mut reqs = feed(&mut p, LessonInput::Tick(now));
            loop {
                for r in reqs.drain(..) {
                    broker.handle_request(r);
                }
                let frames = poll(&mut broker);
                if frames.is_empty() {
                    break;
                }
                reqs = feed(&mut p, LessonInput::Frames { frames, now: None });
            }
            if p.is_done() {
                return p;
            }
            let next = now + 20;
            let next = p.hold_ms().map_or(next, |h| next.min(h.max(now)));
            now = next.max(now);
            broker.handle_timeout(now);
            let frames = poll(&mut broker);
            if !frames.is_empty() {
                for r in feed(&mut p, LessonInput::Frames { frames, now: None }) {
                    broker.handle_request(r);
                }
            }
        }
        panic!("did not finish");
    }

    /// What the picture, the metrics and the panel show of a player.
    fn view(p: &Player) -> String {
        format!(
            "{:?}",
            (
                &p.tokens,
                &p.log,
                &p.report,
                &p.samples,
                &p.ready,
                &p.consumers,
                (p.published, p.delivered, p.acked, p.now),
                (&p.viewed, &p.answers, p.elapsed_ms(), p.active_step()),
            )
        )
    }

    /// A lesson's timeline gives back what the page showed after every
    /// event, sought in any order, and playing the past ends live.
    #[test]
    fn a_lessons_recorded_past_replays_exactly_at_every_event() {
        use crate::history::{check, History, Replay};
        let sc = lesson("timing-2-consumers");
        let opened = Player::new(sc.clone(), false);
        let mut time = History::new(&opened, true);
        let mut snaps = vec![view(&opened)];
        drive(sc, |p, input| {
            let (out, _) = p.feed(&input);
            if time.record(input, p) {
                snaps.push(view(p));
            }
            out
        });
        assert!(
            time.total() >= 10,
            "a lesson makes many events: {}",
            time.total()
        );
        check::replays_exactly(&mut time, &snaps, view, 10.0);
    }

    #[test]
    fn every_builtin_lesson_lays_out_and_passes_in_the_player() {
        for sc in builtin() {
            let l = Layout::of(&sc);
            assert!(
                l.nodes
                    .iter()
                    .all(|n| n.x > 0.0 && n.y > 0.0 && n.x < l.width && n.y < l.height),
                "{}",
                sc.id
            );
            for c in &sc.consumers {
                assert!(l.index(NodeKind::Consumer, &c.name).is_some());
            }
            let id = sc.id.clone();
            let p = play(sc);
            let r = p.report.as_ref().unwrap();
            assert!(r.passed(), "{id}: {:?}", r.first_failure());
            for (q, n) in p.ready.iter() {
                assert!(*n >= 0, "{id} {q}");
            }
        }
    }

    #[test]
    fn timing_lesson_waits_for_its_question() {
        let sc = lesson("timing-1-consumer");
        let mut p = Player::new(sc, false);
        assert_eq!(p.gate(), Some(0));
        assert!(p.waiting_for_answer());
        assert_eq!(p.hold_ms(), Some(0));
        p.answer(0, 99); // out of range: ignored
        assert_eq!(p.gate(), Some(0));
        p.answer(0, 1);
        assert_eq!(p.answers[0], Some(1));
    }

    #[test]
    fn lesson_edges_go_around_the_nodes_they_pass() {
        let inside = |l: &Layout, path: &crate::route::Path, skip: [usize; 2]| {
            (0..=200).any(|k| {
                let (x, y) = path.at(k as f64 / 200.0);
                (0..l.nodes.len()).filter(|i| !skip.contains(i)).any(|i| {
                    l.node_box(i)
                        .is_some_and(|b| (x - b.x).abs() < b.hw && (y - b.y).abs() < b.hh)
                })
            })
        };
        let mut straight_would_cross = 0;
        for sc in builtin() {
            let l = Layout::of(&sc);
            for e in l.edges.iter().filter(|e| e.kind != EdgeKind::Side) {
                let path = l.path(e.from, e.to).expect("both nodes exist");
                assert!(
                    !inside(&l, &path, [e.from, e.to]),
                    "{}: edge {} crosses a node",
                    sc.id,
                    l.edge_id(e)
                );
                let (a, b) = (
                    l.node_box(e.from).expect("node"),
                    l.node_box(e.to).expect("node"),
                );
                let direct = crate::route::route(a, b, &[]);
                if inside(&l, &direct, [e.from, e.to]) {
                    straight_would_cross += 1;
                }
            }
        }
        assert!(
            straight_would_cross > 0,
            "no lesson has an edge past a node: the test proves nothing"
        );
    }

    #[test]
    fn binding_keys_and_names_are_written_whole_and_clear_of_each_other() {
        use crate::label::{overlap, text_box};
        // Where the pictures write a node's name, relative to its centre.
        let name_y = |k: NodeKind| match k {
            NodeKind::Exchange => -2.0,
            NodeKind::Queue => -46.0,
            NodeKind::Producer => -4.0,
            NodeKind::Consumer => -10.0,
        };
        let mut keys = 0;
        for sc in builtin() {
            let l = Layout::of(&sc);
            let names: Vec<_> = l
                .nodes
                .iter()
                .map(|n| text_box(n.x, n.y + name_y(n.kind), n.title_px(), &n.shown_title()))
                .collect();
            for n in &l.nodes {
                match n.kind {
                    NodeKind::Queue => {
                        assert_eq!(n.shown_title(), n.name, "{}: a queue's name is cut", sc.id)
                    }
                    // Written inside a 156-wide box (bold, ~0.62 em a character),
                    // with a margin for wider glyphs.
                    NodeKind::Producer | NodeKind::Consumer => {
                        let w = n.shown_title().chars().count() as f64 * n.title_px() * 0.62;
                        assert!(w <= 140.0, "{}: {} overflows its box", sc.id, n.id());
                    }
                    NodeKind::Exchange => {}
                }
            }
            for (e, p) in l.edges.iter().zip(&l.paths) {
                if e.kind == EdgeKind::Side || e.label.is_empty() {
                    continue;
                }
                keys += 1;
                let (x, y) = p.label;
                let key = text_box(x, y - 8.0, KEY_PX * 0.9, &e.label);
                for (n, name) in l.nodes.iter().zip(&names) {
                    assert!(
                        !overlap(&key, name),
                        "{}: the key {:?} of {} is written over the name of {}",
                        sc.id,
                        e.label,
                        l.edge_id(e),
                        n.id()
                    );
                }
            }
        }
        assert!(
            keys > 20,
            "the lessons have {keys} keys: the test proves little"
        );
    }

    #[test]
    fn layout_of_exchange_to_exchange_has_layers_and_labels() {
        let sc = lesson("exchange-to-exchange");
        let l = Layout::of(&sc);
        let xs: Vec<&Node> = l
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Exchange)
            .collect();
        assert!(xs.len() >= 2);
        let distinct: SmallSet<i64> = xs.iter().map(|n| n.x as i64).collect();
        assert!(distinct.len() >= 2, "exchanges in layers");
        assert!(l
            .edges
            .iter()
            .any(|e| l.nodes[e.from].kind == NodeKind::Exchange
                && l.nodes[e.to].kind == NodeKind::Exchange));
        let h = Layout::of(&lesson("headers-exchange"));
        assert!(
            h.edges.iter().any(|e| e.label.contains("all:")),
            "{:?}",
            h.edges
        );
        let hello = Layout::of(&lesson("hello-world"));
        assert!(hello.edges.iter().any(
            |e| hello.nodes[e.from].title() == "(default)" && hello.nodes[e.to].name == "hello"
        ));
    }

    #[test]
    fn consumer_state_follows_the_stream() {
        let p = play(lesson("timing-1-consumer"));
        assert_eq!(p.consumers[0].processed, 5);
        assert_eq!(p.consumer_state(0), ConsumerState::Idle);
        assert_eq!(p.ready.get("orders"), Some(&0));
        assert!(p.published >= 5);
    }

    #[test]
    fn metrics_show_one_consumer_is_slower_than_five() {
        let one = play(lesson("timing-1-consumer"));
        let five = play(lesson("timing-5-consumers"));
        let peak = |p: &Player| p.samples.iter().map(|s| s.depth).max().unwrap_or(0);
        assert!(peak(&one) >= 3, "{:?}", one.samples);
        assert!(peak(&five) <= 1, "{:?}", five.samples);
        let end = |p: &Player| {
            p.samples
                .last()
                .map(|s| (s.published, s.delivered, s.acked))
        };
        assert_eq!(end(&one), Some((5, 5, 5)));
        assert!(one.samples.last().unwrap().t > 3 * five.samples.last().unwrap().t / 2);
        let r = rates(&one.samples, 4);
        assert!(r
            .iter()
            .all(|(_, p, d, a)| *p >= 0.0 && *d >= 0.0 && *a >= 0.0));
        assert!(one.samples.windows(2).all(|w| w[0].t < w[1].t));
    }

    #[test]
    fn topic_matching() {
        assert!(topic_match("order.*", "order.paid"));
        assert!(!topic_match("order.*", "order.paid.eu"));
        assert!(topic_match("#", ""));
        assert!(topic_match("a.#.z", "a.z"));
        assert!(topic_match("a.#.z", "a.b.c.z"));
        assert!(topic_match("#.b", "b"));
        assert!(topic_match("*", "x"));
        assert!(!topic_match("a.*", "a"));
        // Hostile patterns stay fast.
        let many = vec!["#"; 200].join(".");
        let long = vec!["w"; 400].join(".");
        assert!(topic_match(&format!("{many}.x"), &format!("{long}.x")));
        assert!(!topic_match(&format!("{many}.x"), &long));
    }

    #[test]
    fn a_large_imported_topology_lays_out_quickly() {
        let mut sc = lesson("hello-world");
        for i in 0..600 {
            sc.topology.queues.push(sim_core::scenario::QueueDef {
                name: format!("q{i}"),
                durable: false,
                exclusive: false,
                auto_delete: false,
                arguments: Default::default(),
            });
            sc.topology.bindings.push(sim_core::scenario::BindingDef {
                source: "amq.topic".into(),
                queue: Some(format!("q{i}")),
                exchange: None,
                routing_key: format!("k.{i}"),
                arguments: Default::default(),
            });
        }
        let t = std::time::Instant::now();
        let l = Layout::of(&sc);
        assert!(t.elapsed().as_secs_f64() < 2.0);
        assert!(l.nodes.len() > 600);
    }

    #[test]
    fn next_and_back_move_within_reached_steps() {
        let mut p = play(lesson("timing-1-consumer"));
        let last = p.active_step().unwrap();
        assert_eq!(p.viewed, Some(last));
        p.back();
        assert_eq!(p.viewed, Some(last - 1));
        p.next();
        assert_eq!(p.viewed, Some(last));
        p.next();
        assert_eq!(p.viewed, Some(last));
    }
}
