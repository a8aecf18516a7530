//! The lessons shipped in `scenarios/`, compiled in (the page has no file
//! system). `tests/scenarios_sim.rs` checks that this list matches the folder.

macro_rules! lesson {
    ($file:literal) => {
        ($file, include_str!(concat!("../../../scenarios/", $file)))
    };
}

/// `(file name, JSON text)` of every file in `scenarios/`, in name order.
pub const BUILTIN: &[(&str, &str)] = &[
    lesson!("003-timing-1-consumer.json"),
    lesson!("003-timing-2-consumers.json"),
    lesson!("003-timing-5-consumers.json"),
    lesson!("003-timing-broker-restart.json"),
    lesson!("003-timing-kill-consumer.json"),
    lesson!("004-message-lifecycle.json"),
    lesson!("010-hello-world.json"),
    lesson!("011-work-queues-fair-dispatch.json"),
    lesson!("012-work-queues-round-robin.json"),
    lesson!("013-pubsub-fanout.json"),
    lesson!("014-routing-direct.json"),
    lesson!("015-topics.json"),
    lesson!("016-rpc.json"),
    lesson!("017-publisher-confirms.json"),
    lesson!("018-exchange-to-exchange.json"),
    lesson!("019-headers-exchange.json"),
    lesson!("020-marketplace-orders.json"),
    lesson!("030-shop-events-fanout.json"),
    lesson!("031-shop-saga.json"),
    lesson!("040-quiz-bot-pipeline.json"),
    lesson!("041-quiz-round-timer.json"),
    lesson!("050-delayed-retry.json"),
    lesson!("051-parking-lot.json"),
    lesson!("052-priority-queue.json"),
    lesson!("053-overflow-drop-head.json"),
    lesson!("054-overflow-reject-publish.json"),
    lesson!("055-alternate-exchange.json"),
    lesson!("056-mandatory-returns.json"),
];

/// Every built-in lesson, parsed and validated, in file order. A file that
/// does not parse is left out (the tests make sure none does).
pub fn builtin() -> Vec<super::Scenario> {
    BUILTIN
        .iter()
        .filter_map(|(_, json)| super::parse(json).ok())
        .collect()
}
