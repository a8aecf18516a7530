//! The scenes: one producer → one exchange → one or more queues, each with its
//! consumer. A scene's declaration (as protocol requests), what it routes where
//! (for real mode, which reports no routing), and its geometry: all pure.

use sim_core::protocol::{ExchangeKind, FieldTable, Method};

/// One queue of a scene, with its binding and its consumer.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: &'static str,
    pub binding_key: &'static str,
    pub consumer_tag: &'static str,
}

/// A scene the page can show.
#[derive(Debug, PartialEq, Eq)]
pub struct Scene {
    /// Stable id (selector value, tests).
    pub id: &'static str,
    /// What the selector says.
    pub title: &'static str,
    pub exchange: &'static str,
    pub kind: ExchangeKind,
    /// The routing key the producer publishes with.
    pub routing_key: &'static str,
    /// What the producer is.
    pub producer: &'static str,
    pub queues: &'static [QueueSpec],
}

/// `orders` (direct) → `orders.new` (binding key `new`).
pub const DIRECT: Scene = Scene {
    id: "direct",
    title: "Direct: one queue",
    exchange: "orders",
    kind: ExchangeKind::Direct,
    routing_key: "new",
    producer: "orders app",
    queues: &[QueueSpec {
        name: "orders.new",
        binding_key: "new",
        consumer_tag: "consumer-1",
    }],
};

/// `alerts` (fanout) → `email` and `sms`: every message to both.
pub const FANOUT: Scene = Scene {
    id: "fanout",
    title: "Fanout: two queues",
    exchange: "alerts",
    kind: ExchangeKind::Fanout,
    routing_key: "",
    producer: "monitoring",
    queues: &[
        QueueSpec {
            name: "email",
            binding_key: "",
            consumer_tag: "email-worker",
        },
        QueueSpec {
            name: "sms",
            binding_key: "",
            consumer_tag: "sms-worker",
        },
    ],
};

pub const SCENES: [&Scene; 2] = [&DIRECT, &FANOUT];

/// The scene with `id`, if any.
pub fn by_id(id: &str) -> Option<&'static Scene> {
    SCENES.iter().copied().find(|s| s.id == id)
}

const ITEMS: [&str; 6] = ["coffee", "bagel", "tea", "croissant", "juice", "muffin"];
const ALERTS: [&str; 4] = ["disk 91% full", "new login", "backup done", "price drop"];

/// Unacked messages a consumer may hold.
pub const PREFETCH: u16 = 1;

/// SVG user units of the picture.
pub const WIDTH: f64 = 1200.0;
/// The first lane's y; lanes are `LANE_GAP` apart.
pub const LANE_Y: f64 = 125.0;
pub const LANE_GAP: f64 = 170.0;
/// x of producer, exchange, queue, consumer (path positions 0, 1, 2, 3).
pub const NODE_X: [f64; 4] = [115.0, 425.0, 760.0, 1080.0];
/// The queue box.
pub const QUEUE_W: f64 = 230.0;
pub const QUEUE_H: f64 = 84.0;
/// How many waiting messages a queue box draws one by one.
pub const QUEUE_SLOTS: usize = 7;

impl Scene {
    /// The requests that declare the scene, in order. Queues are purged so every
    /// scene starts empty (real mode may hold messages from an earlier visit).
    /// Each consumer takes one message at a time (prefetch 1), so a burst of
    /// publishes visibly waits in the queue.
    pub fn setup_methods(&self) -> Vec<Method> {
        let mut out = vec![Method::BasicQos {
            prefetch_count: PREFETCH,
            global: false,
        }];
        out.push(Method::ExchangeDeclare {
            exchange: self.exchange.into(),
            kind: self.kind.into(),
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        });
        for q in self.queues {
            out.push(Method::QueueDeclare {
                queue: q.name.into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                arguments: FieldTable::new(),
            });
            out.push(Method::QueuePurge {
                queue: q.name.into(),
            });
            out.push(Method::QueueBind {
                queue: q.name.into(),
                exchange: self.exchange.into(),
                routing_key: q.binding_key.into(),
                arguments: FieldTable::new(),
            });
            out.push(Method::Consume {
                queue: q.name.into(),
                consumer_tag: q.consumer_tag.into(),
                no_ack: false,
                exclusive: false,
                arguments: FieldTable::new(),
            });
        }
        out
    }

    /// The body of message `n`, JSON.
    /// The producer's `n`-th publish (1-based), as the page sends it.
    pub fn publish_method(&self, n: u64) -> Method {
        Method::Publish {
            exchange: self.exchange.into(),
            routing_key: self.routing_key.into(),
            body: self.body(n).into(),
            mandatory: false,
            properties: sim_core::protocol::Properties {
                content_type: Some("application/json".into()),
                ..Default::default()
            }
            .into(),
        }
    }

    pub fn body(&self, n: u64) -> String {
        match self.kind {
            ExchangeKind::Fanout => {
                let text = ALERTS[(n as usize).wrapping_sub(1) % ALERTS.len()];
                serde_json::json!({"alert_id": n, "text": text}).to_string()
            }
            _ => order_body(n),
        }
    }

    /// Which queues (lanes) a publish reaches, by the scene's own bindings. Real
    /// mode uses it because RabbitMQ does not say how it routed.
    pub fn routes_to(&self, exchange: &str, routing_key: &str) -> Vec<usize> {
        if exchange != self.exchange {
            return Vec::new();
        }
        (0..self.queues.len())
            .filter(|&i| match self.kind {
                ExchangeKind::Fanout => true,
                ExchangeKind::Direct => self.queues[i].binding_key == routing_key,
                // Not used by the scenes; routing is left to traces.
                ExchangeKind::Topic | ExchangeKind::Headers => false,
            })
            .collect()
    }

    pub fn lane_of_queue(&self, queue: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.name == queue)
    }

    pub fn lane_of_consumer(&self, consumer_tag: &str) -> Option<usize> {
        self.queues
            .iter()
            .position(|q| q.consumer_tag == consumer_tag)
    }

    /// Height of the picture.
    pub fn height(&self) -> f64 {
        235.0 + LANE_GAP * (self.queues.len().max(1) - 1) as f64
    }

    /// y of the producer and the exchange (centred on the lanes).
    pub fn center_y(&self) -> f64 {
        LANE_Y + LANE_GAP * (self.queues.len().max(1) - 1) as f64 / 2.0
    }

    /// y of queue `lane` and its consumer.
    pub fn lane_y(&self, lane: usize) -> f64 {
        LANE_Y + LANE_GAP * lane as f64
    }

    /// Where a token at path position `pos` (0 producer, 1 exchange, 2 queue,
    /// 3 consumer) is drawn. `lane` is its queue once routed; `queue_slot` places
    /// ready messages side by side in the queue box (0 = head, at the right).
    pub fn token_xy(&self, pos: f64, lane: Option<usize>, queue_slot: Option<usize>) -> (f64, f64) {
        let cy = self.center_y();
        let ly = lane.map_or(cy, |l| self.lane_y(l));
        if let Some(slot) = queue_slot {
            let slot = slot.min(QUEUE_SLOTS - 1) as f64;
            let head = NODE_X[2] + QUEUE_W / 2.0 - 22.0;
            return (head - slot * 30.0, ly);
        }
        let pos = if pos.is_finite() {
            pos.clamp(0.0, 3.0)
        } else {
            0.0
        };
        let i = (pos.floor() as usize).min(2);
        let f = pos - i as f64;
        let ys = [cy, cy, ly, ly];
        let x = NODE_X[i] + (NODE_X[i + 1] - NODE_X[i]) * f;
        let y = ys[i] + (ys[i + 1] - ys[i]) * f;
        (x, y)
    }
}

/// The body of order `n`: `{"order_id":n,"item":"…","qty":…}`.
pub fn order_body(n: u64) -> String {
    let item = ITEMS[(n as usize).wrapping_sub(1) % ITEMS.len()];
    let qty = 1 + (n * 7 % 3);
    serde_json::json!({"order_id": n, "item": item, "qty": qty}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json() {
        let v: serde_json::Value = serde_json::from_str(&DIRECT.body(3)).unwrap();
        assert_eq!(v["order_id"], 3);
        assert!(v["item"].is_string());
        let v: serde_json::Value = serde_json::from_str(&FANOUT.body(2)).unwrap();
        assert_eq!(v["alert_id"], 2);
    }

    #[test]
    fn setup_declares_binds_and_consumes_every_queue() {
        let ops: Vec<_> = FANOUT.setup_methods().iter().map(|m| m.op()).collect();
        assert_eq!(ops.len(), 2 + 4 * 2);
        assert_eq!(ops[0], "basic_qos");
        assert_eq!(ops.iter().filter(|o| **o == "consume").count(), 2);
    }

    #[test]
    fn routing_by_the_scene() {
        assert_eq!(DIRECT.routes_to("orders", "new"), vec![0]);
        assert!(DIRECT.routes_to("orders", "old").is_empty());
        assert_eq!(FANOUT.routes_to("alerts", "anything"), vec![0, 1]);
        assert!(FANOUT.routes_to("orders", "").is_empty());
        assert_eq!(FANOUT.lane_of_consumer("sms-worker"), Some(1));
        assert_eq!(by_id("fanout"), Some(&FANOUT));
        assert_eq!(by_id("nope"), None);
    }

    #[test]
    fn token_path_hits_the_nodes() {
        for (i, x) in NODE_X.iter().enumerate() {
            assert_eq!(DIRECT.token_xy(i as f64, Some(0), None), (*x, LANE_Y));
        }
        assert_eq!(DIRECT.token_xy(f64::NAN, None, None).0, NODE_X[0]);
        assert_eq!(DIRECT.token_xy(9.0, Some(0), None).0, NODE_X[3]);
        assert!(
            DIRECT.token_xy(2.0, Some(0), Some(1)).0 < DIRECT.token_xy(2.0, Some(0), Some(0)).0
        );
        // Fanout: the exchange sits between the two lanes.
        let (_, y0) = FANOUT.token_xy(3.0, Some(0), None);
        let (_, y1) = FANOUT.token_xy(3.0, Some(1), None);
        let (_, yx) = FANOUT.token_xy(1.0, Some(1), None);
        assert!(y0 < yx && yx < y1);
    }
}
