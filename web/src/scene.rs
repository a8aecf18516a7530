//! The scene: one producer → direct exchange `orders` → queue `orders.new`
//! (binding key `new`) → one consumer. Its declaration (as protocol requests)
//! and its geometry (for the SVG), both pure.

use sim_core::protocol::{ExchangeKind, FieldTable, Method};

pub const EXCHANGE: &str = "orders";
pub const QUEUE: &str = "orders.new";
pub const BINDING_KEY: &str = "new";
pub const ROUTING_KEY: &str = "new";
pub const CONSUMER_TAG: &str = "consumer-1";

/// The requests that declare the scene, in order. The queue is purged so every
/// scene starts empty (real mode may hold messages from an earlier visit).
pub fn setup_methods() -> Vec<Method> {
    vec![
        Method::ExchangeDeclare {
            exchange: EXCHANGE.into(),
            kind: ExchangeKind::Direct,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::new(),
        },
        Method::QueueDeclare {
            queue: QUEUE.into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: FieldTable::new(),
        },
        Method::QueuePurge {
            queue: QUEUE.into(),
        },
        Method::QueueBind {
            queue: QUEUE.into(),
            exchange: EXCHANGE.into(),
            routing_key: BINDING_KEY.into(),
            arguments: FieldTable::new(),
        },
        Method::Consume {
            queue: QUEUE.into(),
            consumer_tag: CONSUMER_TAG.into(),
            no_ack: false,
            exclusive: false,
            arguments: FieldTable::new(),
        },
    ]
}

const ITEMS: [&str; 6] = ["coffee", "bagel", "tea", "croissant", "juice", "muffin"];

/// The body of order `n`: `{"order_id":n,"item":"…","qty":…}`.
pub fn order_body(n: u64) -> String {
    let item = ITEMS[(n as usize).wrapping_sub(1) % ITEMS.len()];
    let qty = 1 + (n * 7 % 3);
    serde_json::json!({"order_id": n, "item": item, "qty": qty}).to_string()
}

/// SVG user units of the picture.
pub const WIDTH: f64 = 1200.0;
pub const HEIGHT: f64 = 255.0;
/// The line the nodes sit on.
pub const LANE_Y: f64 = 140.0;
/// x of producer, exchange, queue, consumer (path positions 0, 1, 2, 3).
pub const NODE_X: [f64; 4] = [115.0, 425.0, 760.0, 1080.0];
/// The queue box.
pub const QUEUE_W: f64 = 230.0;
pub const QUEUE_H: f64 = 84.0;
/// How many waiting messages the queue box draws one by one.
pub const QUEUE_SLOTS: usize = 7;

/// Where a token at path position `pos` is drawn. `queue_slot` places ready
/// messages side by side in the queue box (0 = head, at the right).
pub fn token_xy(pos: f64, queue_slot: Option<usize>) -> (f64, f64) {
    if let Some(slot) = queue_slot {
        let slot = slot.min(QUEUE_SLOTS - 1) as f64;
        let head = NODE_X[2] + QUEUE_W / 2.0 - 22.0;
        return (head - slot * 30.0, LANE_Y);
    }
    let pos = if pos.is_finite() {
        pos.clamp(0.0, 3.0)
    } else {
        0.0
    };
    let i = (pos.floor() as usize).min(2);
    let f = pos - i as f64;
    let x = NODE_X[i] + (NODE_X[i + 1] - NODE_X[i]) * f;
    (x, LANE_Y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_orders() {
        let v: serde_json::Value = serde_json::from_str(&order_body(3)).unwrap();
        assert_eq!(v["order_id"], 3);
        assert!(v["item"].is_string());
    }

    #[test]
    fn token_path_hits_the_nodes() {
        for (i, x) in NODE_X.iter().enumerate() {
            assert_eq!(token_xy(i as f64, None), (*x, LANE_Y));
        }
        assert_eq!(token_xy(f64::NAN, None).0, NODE_X[0]);
        assert_eq!(token_xy(9.0, None).0, NODE_X[3]);
        assert!(token_xy(2.0, Some(1)).0 < token_xy(2.0, Some(0)).0);
    }
}
