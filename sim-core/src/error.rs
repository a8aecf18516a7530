//! AMQP errors as the broker raises them.
//!
//! RabbitMQ reports failures by closing a channel (4xx) or the whole connection
//! (5xx) with a reply code and a reply text of the form `NAME - details`. A
//! handler returns a [`Fault`] and the broker decides, in one place, what the
//! closure does to channels, consumers and unacked messages.

use crate::protocol::{AmqpError, ErrorScope};

/// An error a request ends with; becomes an [`AmqpError`] in the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub scope: ErrorScope,
    pub code: u16,
    pub name: &'static str,
    pub text: String,
}

pub type Res<T> = Result<T, Fault>;

impl Fault {
    fn channel(code: u16, name: &'static str, text: String) -> Fault {
        Fault {
            scope: ErrorScope::Channel,
            code,
            name,
            text,
        }
    }
    fn connection(code: u16, name: &'static str, text: String) -> Fault {
        Fault {
            scope: ErrorScope::Connection,
            code,
            name,
            text,
        }
    }
    pub fn access_refused(text: impl Into<String>) -> Fault {
        Fault::channel(403, "ACCESS_REFUSED", text.into())
    }
    pub fn not_found(text: impl Into<String>) -> Fault {
        Fault::channel(404, "NOT_FOUND", text.into())
    }
    pub fn resource_locked(text: impl Into<String>) -> Fault {
        Fault::channel(405, "RESOURCE_LOCKED", text.into())
    }
    pub fn precondition_failed(text: impl Into<String>) -> Fault {
        Fault::channel(406, "PRECONDITION_FAILED", text.into())
    }
    pub fn syntax_error(text: impl Into<String>) -> Fault {
        Fault::connection(502, "SYNTAX_ERROR", text.into())
    }
    pub fn channel_error(text: impl Into<String>) -> Fault {
        Fault::connection(504, "CHANNEL_ERROR", text.into())
    }
    pub fn not_allowed(text: impl Into<String>) -> Fault {
        Fault::connection(530, "NOT_ALLOWED", text.into())
    }
    pub fn command_invalid(text: impl Into<String>) -> Fault {
        Fault::connection(503, "COMMAND_INVALID", text.into())
    }
    pub fn not_implemented(text: impl Into<String>) -> Fault {
        Fault::connection(540, "NOT_IMPLEMENTED", text.into())
    }
    /// What RabbitMQ replies when a process crashed on the request.
    pub fn internal_error(text: impl Into<String>) -> Fault {
        Fault::connection(541, "INTERNAL_ERROR", text.into())
    }

    pub fn to_amqp(&self) -> AmqpError {
        AmqpError {
            scope: self.scope,
            code: self.code,
            name: self.name.to_string(),
            text: self.text.clone(),
        }
    }
}

/// `queue 'q' in vhost '/'`, as RabbitMQ names resources in reply texts.
pub fn rs_queue(name: &str) -> String {
    format!("queue '{name}' in vhost '/'")
}

/// `exchange 'x' in vhost '/'`.
pub fn rs_exchange(name: &str) -> String {
    format!("exchange '{name}' in vhost '/'")
}
