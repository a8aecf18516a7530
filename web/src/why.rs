//! The playground's "why" line: the last routing decision, explained.
//!
//! The model keeps the decision, not a sentence, so the line is worded in the
//! page's language when it is drawn, with the same steps the Build page's
//! inspector uses ([`Step::text`]): a class switching to Russian mid-run
//! reads the explanation in Russian at once.

use sim_core::protocol::MessageId;

use crate::i18n::{t, Lang};
use crate::inspector::{fill, pick, Step};

/// One explained decision about one message.
#[derive(Clone, Debug, PartialEq)]
pub enum Why {
    /// What one trace said: routed, to an alternate exchange,
    /// dead-lettered, dropped.
    Step(MessageId, Step),
    /// `exchange` routed one message to several destinations.
    Copies {
        message: MessageId,
        exchange: String,
        dests: Vec<String>,
        /// The rule that matched (the broker's words), if it said one.
        rule: String,
    },
    /// Real mode: RabbitMQ does not say how it routed; by the scene's own
    /// bindings the message went to `dests`.
    Inferred {
        message: MessageId,
        dests: Vec<String>,
    },
}

impl Why {
    pub fn text(&self, lang: Lang) -> String {
        let and = t(lang, "and");
        let list = |names: &[String]| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(and)
        };
        match self {
            Why::Step(m, step) => fill(
                pick(lang, ["message {0}: {1}", "сообщение {0}: {1}", "повідомлення {0}: {1}"]),
                &[&m.to_string(), &step.text(lang)],
            ),
            Why::Copies {
                message,
                exchange,
                dests,
                rule,
            } => {
                let rule = if rule.is_empty() {
                    String::new()
                } else {
                    format!(" ({rule})")
                };
                fill(
                    pick(
                        lang,
                        [
                            "message {0}: exchange `{1}` sent a copy to {2}{3}",
                            "сообщение {0}: exchange `{1}` отправил по копии в {2}{3}",
                            "повідомлення {0}: exchange `{1}` надіслав по копії до {2}{3}",
                        ],
                    ),
                    &[&message.to_string(), exchange, &list(dests), &rule],
                )
            }
            Why::Inferred { message, dests } if dests.is_empty() => fill(
                pick(
                    lang,
                    [
                        "message {0}: RabbitMQ does not say how it routed; by the scene's bindings it went to no queue",
                        "сообщение {0}: RabbitMQ не сообщает, как маршрутизировал; по привязкам сцены оно не попало ни в одну очередь",
                        "повідомлення {0}: RabbitMQ не повідомляє, як маршрутизував; за прив'язками сцени воно не потрапило в жодну чергу",
                    ],
                ),
                &[&message.to_string()],
            ),
            Why::Inferred { message, dests } => fill(
                pick(
                    lang,
                    [
                        "message {0}: RabbitMQ does not say how it routed; by the scene's bindings it went to {1}",
                        "сообщение {0}: RabbitMQ не сообщает, как маршрутизировал; по привязкам сцены оно ушло в {1}",
                        "повідомлення {0}: RabbitMQ не повідомляє, як маршрутизував; за прив'язками сцени воно пішло до {1}",
                    ],
                ),
                &[&message.to_string(), &list(dests)],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_worded_in_each_language() {
        let routed = Why::Step(
            3,
            Step::Routed {
                exchange: "orders".into(),
                destination: "orders.new".into(),
                to_exchange: false,
                binding_key: "new".into(),
                why: String::new(),
            },
        );
        assert_eq!(
            routed.text(Lang::En),
            "message 3: matched binding `new` on exchange `orders` → `orders.new`"
        );
        assert!(routed
            .text(Lang::Ru)
            .starts_with("сообщение 3: совпала привязка `new`"));
        let copies = Why::Copies {
            message: 4,
            exchange: "notify".into(),
            dests: vec!["email".into(), "sms".into()],
            rule: "fanout".into(),
        };
        assert_eq!(
            copies.text(Lang::En),
            "message 4: exchange `notify` sent a copy to `email` and `sms` (fanout)"
        );
        assert!(copies.text(Lang::Uk).contains("`email` і `sms`"));
        let nowhere = Why::Inferred {
            message: 5,
            dests: Vec::new(),
        };
        assert!(nowhere.text(Lang::En).ends_with("it went to no queue"));
        assert!(nowhere.text(Lang::Ru).ends_with("ни в одну очередь"));
    }
}
