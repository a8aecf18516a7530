//! The scenario file format (`sim_core::scenario::format`), read from and
//! written to a `serde_json::Value` by hand.
//!
//! Why by hand: the derived `Deserialize` and `Serialize` of the scenario
//! types (twenty structs and enums, an internally tagged one among them) were
//! about a sixth of the page's wasm; a `Value` walk reuses the JSON code the
//! page has anyway. The rules are the derived ones: the same field names and
//! defaults, every unknown field refused (the format denies them), the same
//! fields left out when writing. Errors name the JSON path
//! (`consumers[0].prefetch: ...`). Each struct is built and taken apart with
//! all its fields named, so a field added to the format does not compile here
//! until it is read and written; the tests compare both directions with
//! serde's on every built-in lesson and on a scenario that sets every field.

use serde_json::{Map, Number, Value};
use sim_core::protocol::{ExchangeKind, FieldTable};
use sim_core::scenario::{
    AckMode, BindingDef, Check, CheckKind, Consumer, ExchangeDef, FailAction, FailurePolicy,
    Producer, PropsDef, Question, QueueDef, ReplyDef, RunLimits, Scenario, ScriptedMessage, Step,
    Target, Text, TimedAction, Topology,
};

const EXCHANGE_KINDS: [(&str, ExchangeKind); 4] = [
    ("direct", ExchangeKind::Direct),
    ("fanout", ExchangeKind::Fanout),
    ("topic", ExchangeKind::Topic),
    ("headers", ExchangeKind::Headers),
];
const ACK_MODES: [(&str, AckMode); 2] = [("manual", AckMode::Manual), ("auto", AckMode::Auto)];
const FAIL_ACTIONS: [(&str, FailAction); 5] = [
    ("reject", FailAction::Reject),
    ("reject_requeue", FailAction::RejectRequeue),
    ("nack", FailAction::Nack),
    ("nack_requeue", FailAction::NackRequeue),
    ("ack", FailAction::Ack),
];
const CHECK_KINDS: [CheckKind; 14] = [
    CheckKind::Received,
    CheckKind::Processed,
    CheckKind::DistinctProcessed,
    CheckKind::Failed,
    CheckKind::Redelivered,
    CheckKind::Published,
    CheckKind::Returned,
    CheckKind::ConfirmedAck,
    CheckKind::ConfirmedNack,
    CheckKind::QueueDepth,
    CheckKind::RepliesMatched,
    CheckKind::TotalTimeMs,
    CheckKind::Errors,
    CheckKind::Order,
];

fn word_of<T: Copy + PartialEq>(words: &[(&'static str, T)], v: T) -> &'static str {
    words
        .iter()
        .find(|(_, w)| *w == v)
        .map_or("", |(name, _)| name)
}

// ------------------------------------------------------------------ reading

/// The fields of one JSON object, read one by one; `done` refuses the rest.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: String,
    used: Vec<&'static str>,
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Fields<'a> {
    fn of(v: &'a Value, path: String) -> Result<Fields<'a>, String> {
        match v.as_object() {
            Some(obj) => Ok(Fields {
                obj,
                path,
                used: Vec::new(),
            }),
            None => Err(format!(
                "{}: expected an object",
                if path.is_empty() { "the file" } else { &path }
            )),
        }
    }

    fn path(&self, key: &str) -> String {
        at(&self.path, key)
    }

    /// The value of `key`, if present and not null.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn need(&mut self, key: &'static str) -> Result<&'a Value, String> {
        self.get(key)
            .ok_or_else(|| format!("{}: missing", self.path(key)))
    }

    fn string_of(&self, key: &str, v: &Value) -> Result<String, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{}: expected a string", self.path(key)))
    }

    fn string(&mut self, key: &'static str) -> Result<String, String> {
        let v = self.need(key)?;
        self.string_of(key, v)
    }

    fn string_or(&mut self, key: &'static str, default: &str) -> Result<String, String> {
        match self.get(key) {
            Some(v) => self.string_of(key, v),
            None => Ok(default.to_string()),
        }
    }

    fn opt_string(&mut self, key: &'static str) -> Result<Option<String>, String> {
        self.get(key).map(|v| self.string_of(key, v)).transpose()
    }

    fn whole_of<T: TryFrom<u64>>(&self, key: &str, v: &Value, max: u64) -> Result<T, String> {
        v.as_u64().and_then(|n| T::try_from(n).ok()).ok_or_else(|| {
            format!(
                "{}: expected a whole number from 0 to {max}",
                self.path(key)
            )
        })
    }

    fn whole<T: TryFrom<u64>>(&mut self, key: &'static str, max: u64) -> Result<T, String> {
        let v = self.need(key)?;
        self.whole_of(key, v, max)
    }

    fn whole_or<T: TryFrom<u64> + Default>(
        &mut self,
        key: &'static str,
        max: u64,
    ) -> Result<T, String> {
        match self.get(key) {
            Some(v) => self.whole_of(key, v, max),
            None => Ok(T::default()),
        }
    }

    fn opt_whole<T: TryFrom<u64>>(
        &mut self,
        key: &'static str,
        max: u64,
    ) -> Result<Option<T>, String> {
        self.get(key)
            .map(|v| self.whole_of(key, v, max))
            .transpose()
    }

    fn opt_number(&mut self, key: &'static str) -> Result<Option<f64>, String> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| format!("{}: expected a number", self.path(key)))
            })
            .transpose()
    }

    fn flag_of(&self, key: &str, v: &Value) -> Result<bool, String> {
        v.as_bool()
            .ok_or_else(|| format!("{}: expected true or false", self.path(key)))
    }

    fn flag(&mut self, key: &'static str) -> Result<bool, String> {
        match self.get(key) {
            Some(v) => self.flag_of(key, v),
            None => Ok(false),
        }
    }

    fn opt_flag(&mut self, key: &'static str) -> Result<Option<bool>, String> {
        self.get(key).map(|v| self.flag_of(key, v)).transpose()
    }

    fn table_of(&self, key: &str, v: &Value) -> Result<FieldTable, String> {
        v.as_object()
            .cloned()
            .ok_or_else(|| format!("{}: expected an object", self.path(key)))
    }

    fn table(&mut self, key: &'static str) -> Result<FieldTable, String> {
        match self.get(key) {
            Some(v) => self.table_of(key, v),
            None => Ok(FieldTable::new()),
        }
    }

    fn opt_table(&mut self, key: &'static str) -> Result<Option<FieldTable>, String> {
        self.get(key).map(|v| self.table_of(key, v)).transpose()
    }

    /// Any JSON value (bodies, `expect`).
    fn json_or(&mut self, key: &'static str, default: &str) -> Value {
        self.used.push(key);
        self.obj
            .get(key)
            .cloned()
            .unwrap_or_else(|| Value::String(default.into()))
    }

    fn word<T: Copy>(
        &mut self,
        key: &'static str,
        words: &[(&'static str, T)],
        default: Option<T>,
    ) -> Result<T, String> {
        let Some(v) = self.get(key) else {
            return default.ok_or_else(|| format!("{}: missing", self.path(key)));
        };
        let w = v.as_str().unwrap_or_default();
        words
            .iter()
            .find(|(name, _)| *name == w)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                format!(
                    "{}: expected one of {}",
                    self.path(key),
                    words
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    fn text(&mut self, key: &'static str) -> Result<Text, String> {
        let v = self.need(key)?;
        text(v, self.path(key))
    }

    fn opt_text(&mut self, key: &'static str) -> Result<Option<Text>, String> {
        let path = self.path(key);
        self.get(key).map(|v| text(v, path)).transpose()
    }

    /// A struct field; absent: `default`.
    fn object<T>(
        &mut self,
        key: &'static str,
        read: fn(&Value, String) -> Result<T, String>,
        default: T,
    ) -> Result<T, String> {
        let path = self.path(key);
        match self.get(key) {
            Some(v) => read(v, path),
            None => Ok(default),
        }
    }

    fn opt_object<T>(
        &mut self,
        key: &'static str,
        read: fn(&Value, String) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        let path = self.path(key);
        self.get(key).map(|v| read(v, path)).transpose()
    }

    fn required<T>(
        &mut self,
        key: &'static str,
        read: fn(&Value, String) -> Result<T, String>,
    ) -> Result<T, String> {
        let path = self.path(key);
        let v = self.need(key)?;
        read(v, path)
    }

    /// An array field of `read` items; absent: empty.
    fn list<T>(
        &mut self,
        key: &'static str,
        read: fn(&Value, String) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let path = self.path(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| read(v, format!("{path}[{i}]")))
                .collect(),
            Some(_) => Err(format!("{path}: expected an array")),
        }
    }

    /// Refuses the fields nobody read (the format denies unknown fields).
    fn done(self) -> Result<(), String> {
        match self.obj.keys().find(|k| !self.used.contains(&k.as_str())) {
            Some(k) => Err(format!("{}: unknown field", at(&self.path, k))),
            None => Ok(()),
        }
    }
}

fn string_item(v: &Value, path: String) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{path}: expected a string"))
}

fn text(v: &Value, path: String) -> Result<Text, String> {
    let mut f = Fields::of(v, path)?;
    let t = Text {
        en: f.string("en")?,
        ru: f.string("ru")?,
        uk: f.string("uk")?,
    };
    f.done()?;
    Ok(t)
}

fn run_limits(v: &Value, path: String) -> Result<RunLimits, String> {
    let mut f = Fields::of(v, path)?;
    let d = RunLimits::default();
    let r = RunLimits {
        min_ms: f.opt_whole("min_ms", u64::MAX)?.unwrap_or(d.min_ms),
        quiet_ms: f.opt_whole("quiet_ms", u64::MAX)?,
        max_ms: f.opt_whole("max_ms", u64::MAX)?.unwrap_or(d.max_ms),
    };
    f.done()?;
    Ok(r)
}

fn exchange_def(v: &Value, path: String) -> Result<ExchangeDef, String> {
    let mut f = Fields::of(v, path)?;
    let x = ExchangeDef {
        name: f.string("name")?,
        kind: f.word("type", &EXCHANGE_KINDS, Some(ExchangeKind::default()))?,
        durable: f.flag("durable")?,
        auto_delete: f.flag("auto_delete")?,
        internal: f.flag("internal")?,
        arguments: f.table("arguments")?,
    };
    f.done()?;
    Ok(x)
}

fn queue_def(v: &Value, path: String) -> Result<QueueDef, String> {
    let mut f = Fields::of(v, path)?;
    let q = QueueDef {
        name: f.string("name")?,
        durable: f.flag("durable")?,
        exclusive: f.flag("exclusive")?,
        auto_delete: f.flag("auto_delete")?,
        arguments: f.table("arguments")?,
    };
    f.done()?;
    Ok(q)
}

fn binding_def(v: &Value, path: String) -> Result<BindingDef, String> {
    let mut f = Fields::of(v, path)?;
    let b = BindingDef {
        source: f.string("source")?,
        queue: f.opt_string("queue")?,
        exchange: f.opt_string("exchange")?,
        routing_key: f.string_or("routing_key", "")?,
        arguments: f.table("arguments")?,
    };
    f.done()?;
    Ok(b)
}

fn topology(v: &Value, path: String) -> Result<Topology, String> {
    let mut f = Fields::of(v, path)?;
    let t = Topology {
        exchanges: f.list("exchanges", exchange_def)?,
        queues: f.list("queues", queue_def)?,
        bindings: f.list("bindings", binding_def)?,
    };
    f.done()?;
    Ok(t)
}

fn props_def(v: &Value, path: String) -> Result<PropsDef, String> {
    let mut f = Fields::of(v, path)?;
    let p = PropsDef {
        delivery_mode: f.opt_whole("delivery_mode", 255)?,
        priority: f.opt_whole("priority", 255)?,
        expiration_ms: f.opt_whole("expiration_ms", u64::MAX)?,
        headers: f.opt_table("headers")?,
        reply_to: f.opt_string("reply_to")?,
        correlation_id: f.opt_string("correlation_id")?,
        message_id: f.opt_string("message_id")?,
        content_type: f.opt_string("content_type")?,
        kind: f.opt_string("type")?,
    };
    f.done()?;
    Ok(p)
}

fn scripted_message(v: &Value, path: String) -> Result<ScriptedMessage, String> {
    let mut f = Fields::of(v, path)?;
    let m = ScriptedMessage {
        at_ms: f.whole_or("at_ms", u64::MAX)?,
        exchange: f.opt_string("exchange")?,
        routing_key: f.opt_string("routing_key")?,
        body: f.get("body").cloned(),
        properties: f.opt_object("properties", props_def)?,
        mandatory: f.opt_flag("mandatory")?,
    };
    f.done()?;
    Ok(m)
}

fn producer(v: &Value, path: String) -> Result<Producer, String> {
    let mut f = Fields::of(v, path)?;
    let p = Producer {
        name: f.string("name")?,
        exchange: f.string_or("exchange", "")?,
        routing_key: f.string_or("routing_key", "")?,
        body: f.json_or("body", "message {n}"),
        properties: f.object("properties", props_def, PropsDef::default())?,
        confirms: f.flag("confirms")?,
        mandatory: f.flag("mandatory")?,
        count: f.whole_or("count", u64::from(u32::MAX))?,
        start_ms: f.whole_or("start_ms", u64::MAX)?,
        interval_ms: f.whole_or("interval_ms", u64::MAX)?,
        messages: f.list("messages", scripted_message)?,
    };
    f.done()?;
    Ok(p)
}

fn target(v: &Value, path: String) -> Result<Target, String> {
    let mut f = Fields::of(v, path)?;
    let t = Target {
        exchange: f.string_or("exchange", "")?,
        routing_key: f.string_or("routing_key", "{routing_key}")?,
        body: f.json_or("body", "{body}"),
        properties: f.object("properties", props_def, PropsDef::default())?,
    };
    f.done()?;
    Ok(t)
}

fn failure_policy(v: &Value, path: String) -> Result<FailurePolicy, String> {
    let mut f = Fields::of(v, path)?;
    let p = FailurePolicy {
        probability: f.opt_number("probability")?.unwrap_or_default(),
        when_body_contains: f.opt_string("when_body_contains")?,
        first_attempts: f.whole_or("first_attempts", u64::from(u32::MAX))?,
        action: f.word("action", &FAIL_ACTIONS, Some(FailAction::default()))?,
        give_up_after: f.opt_whole("give_up_after", u64::from(u32::MAX))?,
        give_up_to: f.opt_object("give_up_to", target)?,
    };
    f.done()?;
    Ok(p)
}

fn reply_def(v: &Value, path: String) -> Result<ReplyDef, String> {
    let mut f = Fields::of(v, path)?;
    let r = ReplyDef {
        body: f.json_or("body", "{body}"),
    };
    f.done()?;
    Ok(r)
}

fn consumer(v: &Value, path: String) -> Result<Consumer, String> {
    let mut f = Fields::of(v, path)?;
    let c = Consumer {
        name: f.string("name")?,
        queue: f.string("queue")?,
        prefetch: f.whole_or("prefetch", u64::from(u16::MAX))?,
        ack: f.word("ack", &ACK_MODES, Some(AckMode::default()))?,
        processing_ms: f.whole_or("processing_ms", u64::MAX)?,
        failure: f.opt_object("failure", failure_policy)?,
        reply: f.opt_object("reply", reply_def)?,
        forward: f.list("forward", target)?,
        start_ms: f.whole_or("start_ms", u64::MAX)?,
        crash_at_ms: f.opt_whole("crash_at_ms", u64::MAX)?,
        restart_at_ms: f.opt_whole("restart_at_ms", u64::MAX)?,
        exclusive: f.flag("exclusive")?,
    };
    f.done()?;
    Ok(c)
}

fn timed_action(v: &Value, path: String) -> Result<TimedAction, String> {
    let mut f = Fields::of(v, path)?;
    let action = f.string("action")?;
    let at_ms = f.whole("at_ms", u64::MAX)?;
    let a = match action.as_str() {
        "publish" => TimedAction::Publish {
            at_ms,
            producer: f.opt_string("producer")?,
            exchange: f.string_or("exchange", "")?,
            routing_key: f.string_or("routing_key", "")?,
            body: f.json_or("body", "message {n}"),
            properties: f.object("properties", props_def, PropsDef::default())?,
            mandatory: f.flag("mandatory")?,
        },
        "kill_consumer" => TimedAction::KillConsumer {
            at_ms,
            consumer: f.string("consumer")?,
        },
        "restart_consumer" => TimedAction::RestartConsumer {
            at_ms,
            consumer: f.string("consumer")?,
        },
        "cancel_consumer" => TimedAction::CancelConsumer {
            at_ms,
            consumer: f.string("consumer")?,
        },
        "restart_broker" => TimedAction::RestartBroker { at_ms },
        "declare_exchange" => TimedAction::DeclareExchange {
            at_ms,
            exchange: f.required("exchange", exchange_def)?,
        },
        "delete_exchange" => TimedAction::DeleteExchange {
            at_ms,
            exchange: f.string("exchange")?,
        },
        "declare_queue" => TimedAction::DeclareQueue {
            at_ms,
            queue: f.required("queue", queue_def)?,
        },
        "delete_queue" => TimedAction::DeleteQueue {
            at_ms,
            queue: f.string("queue")?,
        },
        "purge_queue" => TimedAction::PurgeQueue {
            at_ms,
            queue: f.string("queue")?,
        },
        "bind" => TimedAction::Bind {
            at_ms,
            binding: f.required("binding", binding_def)?,
        },
        "unbind" => TimedAction::Unbind {
            at_ms,
            binding: f.required("binding", binding_def)?,
        },
        other => return Err(format!("{}: unknown action `{other}`", f.path("action"))),
    };
    f.done()?;
    Ok(a)
}

fn question(v: &Value, path: String) -> Result<Question, String> {
    let mut f = Fields::of(v, path)?;
    let q = Question {
        prompt: f.text("prompt")?,
        choices: {
            f.need("choices")?;
            f.list("choices", text)?
        },
        answer: f.whole("answer", u64::from(u32::MAX))?,
        explain: f.opt_text("explain")?,
    };
    f.done()?;
    Ok(q)
}

fn step(v: &Value, path: String) -> Result<Step, String> {
    let mut f = Fields::of(v, path)?;
    let s = Step {
        at_ms: f.whole_or("at_ms", u64::MAX)?,
        text: f.text("text")?,
        highlight: f.list("highlight", string_item)?,
        question: f.opt_object("question", question)?,
    };
    f.done()?;
    Ok(s)
}

fn check(v: &Value, path: String) -> Result<Check, String> {
    let mut f = Fields::of(v, path)?;
    let kinds: Vec<(&'static str, CheckKind)> =
        CHECK_KINDS.iter().map(|k| (k.as_str(), *k)).collect();
    let c = Check {
        check: f.word("check", &kinds, None)?,
        consumer: f.opt_string("consumer")?,
        producer: f.opt_string("producer")?,
        queue: f.opt_string("queue")?,
        field: f.opt_string("field")?,
        expect: f.get("expect").cloned(),
        tolerance_pct: f.opt_number("tolerance_pct")?,
        at_least: f.opt_number("at_least")?,
        at_most: f.opt_number("at_most")?,
        hint: f.opt_text("hint")?,
    };
    f.done()?;
    Ok(c)
}

/// A scenario from its JSON value, or what is wrong with it (with its path).
pub fn from_value(v: &Value) -> Result<Scenario, String> {
    let mut f = Fields::of(v, String::new())?;
    let sc = Scenario {
        format: f.whole("format", u64::from(u32::MAX))?,
        id: f.string("id")?,
        title: f.text("title")?,
        summary: f.opt_text("summary")?,
        tags: f.list("tags", string_item)?,
        seed: f.whole_or("seed", u64::MAX)?,
        topology: f.object("topology", topology, Topology::default())?,
        producers: f.list("producers", producer)?,
        consumers: f.list("consumers", consumer)?,
        timeline: f.list("timeline", timed_action)?,
        steps: f.list("steps", step)?,
        checks: f.list("checks", check)?,
        run: f.object("run", run_limits, RunLimits::default())?,
    };
    f.done()?;
    Ok(sc)
}

// ------------------------------------------------------------------ writing

/// An object under construction; `Option`s and empty lists are left out
/// where the format leaves them out.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(mut self, key: &str, v: impl Into<Value>) -> Obj {
        self.0.insert(key.into(), v.into());
        self
    }

    fn some<T: Into<Value>>(self, key: &str, v: Option<T>) -> Obj {
        match v {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    fn items<T>(self, key: &str, items: &[T], write: fn(&T) -> Value) -> Obj {
        if items.is_empty() {
            self
        } else {
            let list: Vec<Value> = items.iter().map(write).collect();
            self.put(key, list)
        }
    }

    fn table(self, key: &str, t: &FieldTable) -> Obj {
        if t.is_empty() {
            self
        } else {
            self.put(key, Value::Object(t.clone()))
        }
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn number(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn text_value(t: &Text) -> Value {
    let Text { en, ru, uk } = t;
    Obj::default()
        .put("en", en.as_str())
        .put("ru", ru.as_str())
        .put("uk", uk.as_str())
        .done()
}

fn exchange_value(x: &ExchangeDef) -> Value {
    let ExchangeDef {
        name,
        kind,
        durable,
        auto_delete,
        internal,
        arguments,
    } = x;
    Obj::default()
        .put("name", name.as_str())
        .put("type", kind.as_str())
        .put("durable", *durable)
        .put("auto_delete", *auto_delete)
        .put("internal", *internal)
        .table("arguments", arguments)
        .done()
}

fn queue_value(q: &QueueDef) -> Value {
    let QueueDef {
        name,
        durable,
        exclusive,
        auto_delete,
        arguments,
    } = q;
    Obj::default()
        .put("name", name.as_str())
        .put("durable", *durable)
        .put("exclusive", *exclusive)
        .put("auto_delete", *auto_delete)
        .table("arguments", arguments)
        .done()
}

fn binding_value(b: &BindingDef) -> Value {
    let BindingDef {
        source,
        queue,
        exchange,
        routing_key,
        arguments,
    } = b;
    Obj::default()
        .put("source", source.as_str())
        .some("queue", queue.as_deref())
        .some("exchange", exchange.as_deref())
        .put("routing_key", routing_key.as_str())
        .table("arguments", arguments)
        .done()
}

fn props_value(p: &PropsDef) -> Value {
    let PropsDef {
        delivery_mode,
        priority,
        expiration_ms,
        headers,
        reply_to,
        correlation_id,
        message_id,
        content_type,
        kind,
    } = p;
    Obj::default()
        .some("delivery_mode", *delivery_mode)
        .some("priority", *priority)
        .some("expiration_ms", *expiration_ms)
        .some("headers", headers.clone().map(Value::Object))
        .some("reply_to", reply_to.as_deref())
        .some("correlation_id", correlation_id.as_deref())
        .some("message_id", message_id.as_deref())
        .some("content_type", content_type.as_deref())
        .some("type", kind.as_deref())
        .done()
}

fn scripted_value(m: &ScriptedMessage) -> Value {
    let ScriptedMessage {
        at_ms,
        exchange,
        routing_key,
        body,
        properties,
        mandatory,
    } = m;
    Obj::default()
        .put("at_ms", *at_ms)
        .some("exchange", exchange.as_deref())
        .some("routing_key", routing_key.as_deref())
        .some("body", body.clone())
        .some("properties", properties.as_ref().map(props_value))
        .some("mandatory", *mandatory)
        .done()
}

fn producer_value(p: &Producer) -> Value {
    let Producer {
        name,
        exchange,
        routing_key,
        body,
        properties,
        confirms,
        mandatory,
        count,
        start_ms,
        interval_ms,
        messages,
    } = p;
    Obj::default()
        .put("name", name.as_str())
        .put("exchange", exchange.as_str())
        .put("routing_key", routing_key.as_str())
        .put("body", body.clone())
        .put("properties", props_value(properties))
        .put("confirms", *confirms)
        .put("mandatory", *mandatory)
        .put("count", *count)
        .put("start_ms", *start_ms)
        .put("interval_ms", *interval_ms)
        .items("messages", messages, scripted_value)
        .done()
}

fn target_value(t: &Target) -> Value {
    let Target {
        exchange,
        routing_key,
        body,
        properties,
    } = t;
    Obj::default()
        .put("exchange", exchange.as_str())
        .put("routing_key", routing_key.as_str())
        .put("body", body.clone())
        .put("properties", props_value(properties))
        .done()
}

fn failure_value(p: &FailurePolicy) -> Value {
    let FailurePolicy {
        probability,
        when_body_contains,
        first_attempts,
        action,
        give_up_after,
        give_up_to,
    } = p;
    Obj::default()
        .put("probability", number(*probability))
        .some("when_body_contains", when_body_contains.as_deref())
        .put("first_attempts", *first_attempts)
        .put("action", word_of(&FAIL_ACTIONS, *action))
        .some("give_up_after", *give_up_after)
        .some("give_up_to", give_up_to.as_ref().map(target_value))
        .done()
}

fn consumer_value(c: &Consumer) -> Value {
    let Consumer {
        name,
        queue,
        prefetch,
        ack,
        processing_ms,
        failure,
        reply,
        forward,
        start_ms,
        crash_at_ms,
        restart_at_ms,
        exclusive,
    } = c;
    Obj::default()
        .put("name", name.as_str())
        .put("queue", queue.as_str())
        .put("prefetch", *prefetch)
        .put("ack", word_of(&ACK_MODES, *ack))
        .put("processing_ms", *processing_ms)
        .some("failure", failure.as_ref().map(failure_value))
        .some(
            "reply",
            reply
                .as_ref()
                .map(|ReplyDef { body }| Obj::default().put("body", body.clone()).done()),
        )
        .items("forward", forward, target_value)
        .put("start_ms", *start_ms)
        .some("crash_at_ms", *crash_at_ms)
        .some("restart_at_ms", *restart_at_ms)
        .put("exclusive", *exclusive)
        .done()
}

fn timed_value(a: &TimedAction) -> Value {
    let head =
        |action: &str, at_ms: &u64| Obj::default().put("action", action).put("at_ms", *at_ms);
    match a {
        TimedAction::Publish {
            at_ms,
            producer,
            exchange,
            routing_key,
            body,
            properties,
            mandatory,
        } => head("publish", at_ms)
            .some("producer", producer.as_deref())
            .put("exchange", exchange.as_str())
            .put("routing_key", routing_key.as_str())
            .put("body", body.clone())
            .put("properties", props_value(properties))
            .put("mandatory", *mandatory),
        TimedAction::KillConsumer { at_ms, consumer } => {
            head("kill_consumer", at_ms).put("consumer", consumer.as_str())
        }
        TimedAction::RestartConsumer { at_ms, consumer } => {
            head("restart_consumer", at_ms).put("consumer", consumer.as_str())
        }
        TimedAction::CancelConsumer { at_ms, consumer } => {
            head("cancel_consumer", at_ms).put("consumer", consumer.as_str())
        }
        TimedAction::RestartBroker { at_ms } => head("restart_broker", at_ms),
        TimedAction::DeclareExchange { at_ms, exchange } => {
            head("declare_exchange", at_ms).put("exchange", exchange_value(exchange))
        }
        TimedAction::DeleteExchange { at_ms, exchange } => {
            head("delete_exchange", at_ms).put("exchange", exchange.as_str())
        }
        TimedAction::DeclareQueue { at_ms, queue } => {
            head("declare_queue", at_ms).put("queue", queue_value(queue))
        }
        TimedAction::DeleteQueue { at_ms, queue } => {
            head("delete_queue", at_ms).put("queue", queue.as_str())
        }
        TimedAction::PurgeQueue { at_ms, queue } => {
            head("purge_queue", at_ms).put("queue", queue.as_str())
        }
        TimedAction::Bind { at_ms, binding } => {
            head("bind", at_ms).put("binding", binding_value(binding))
        }
        TimedAction::Unbind { at_ms, binding } => {
            head("unbind", at_ms).put("binding", binding_value(binding))
        }
    }
    .done()
}

fn question_value(q: &Question) -> Value {
    let Question {
        prompt,
        choices,
        answer,
        explain,
    } = q;
    Obj::default()
        .put("prompt", text_value(prompt))
        .put(
            "choices",
            choices.iter().map(text_value).collect::<Vec<_>>(),
        )
        .put("answer", *answer)
        .some("explain", explain.as_ref().map(text_value))
        .done()
}

fn step_value(s: &Step) -> Value {
    let Step {
        at_ms,
        text,
        highlight,
        question,
    } = s;
    Obj::default()
        .put("at_ms", *at_ms)
        .put("text", text_value(text))
        .items("highlight", highlight, |h| Value::String(h.clone()))
        .some("question", question.as_ref().map(question_value))
        .done()
}

fn check_value(c: &Check) -> Value {
    let Check {
        check,
        consumer,
        producer,
        queue,
        field,
        expect,
        tolerance_pct,
        at_least,
        at_most,
        hint,
    } = c;
    Obj::default()
        .put("check", check.as_str())
        .some("consumer", consumer.as_deref())
        .some("producer", producer.as_deref())
        .some("queue", queue.as_deref())
        .some("field", field.as_deref())
        .some("expect", expect.clone())
        .some("tolerance_pct", tolerance_pct.map(number))
        .some("at_least", at_least.map(number))
        .some("at_most", at_most.map(number))
        .some("hint", hint.as_ref().map(text_value))
        .done()
}

/// The scenario as the JSON value of its file.
pub fn to_value(sc: &Scenario) -> Value {
    let Scenario {
        format,
        id,
        title,
        summary,
        tags,
        seed,
        topology,
        producers,
        consumers,
        timeline,
        steps,
        checks,
        run,
    } = sc;
    let Topology {
        exchanges,
        queues,
        bindings,
    } = topology;
    let RunLimits {
        min_ms,
        quiet_ms,
        max_ms,
    } = run;
    Obj::default()
        .put("format", *format)
        .put("id", id.as_str())
        .put("title", text_value(title))
        .some("summary", summary.as_ref().map(text_value))
        .items("tags", tags, |t| Value::String(t.clone()))
        .put("seed", *seed)
        .put(
            "topology",
            Obj::default()
                .items("exchanges", exchanges, exchange_value)
                .items("queues", queues, queue_value)
                .items("bindings", bindings, binding_value)
                .done(),
        )
        .items("producers", producers, producer_value)
        .items("consumers", consumers, consumer_value)
        .items("timeline", timeline, timed_value)
        .items("steps", steps, step_value)
        .items("checks", checks, check_value)
        .put(
            "run",
            Obj::default()
                .put("min_ms", *min_ms)
                .some("quiet_ms", *quiet_ms)
                .put("max_ms", *max_ms)
                .done(),
        )
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::builtin_lessons;

    /// A scenario in which every field of every type is set to something
    /// other than its default (so a field read or written wrong shows).
    fn everything() -> Scenario {
        let t = |s: &str| Text {
            en: format!("{s} en"),
            ru: format!("{s} ru"),
            uk: format!("{s} uk"),
        };
        let args: FieldTable =
            serde_json::json!({"x-max-length": 3, "x-dead-letter-exchange": "dlx"})
                .as_object()
                .cloned()
                .unwrap_or_default();
        let props = PropsDef {
            delivery_mode: Some(2),
            priority: Some(7),
            expiration_ms: Some(1500),
            headers: Some(args.clone()),
            reply_to: Some("replies".into()),
            correlation_id: Some("c-{n}".into()),
            message_id: Some("m-{n}".into()),
            content_type: Some("text/plain".into()),
            kind: Some("order".into()),
        };
        let target = Target {
            exchange: "out".into(),
            routing_key: "k.{n}".into(),
            body: serde_json::json!({"n": "{n}"}),
            properties: props.clone(),
        };
        let xd = ExchangeDef {
            name: "x".into(),
            kind: ExchangeKind::Headers,
            durable: true,
            auto_delete: true,
            internal: true,
            arguments: args.clone(),
        };
        let qd = QueueDef {
            name: "q".into(),
            durable: true,
            exclusive: true,
            auto_delete: true,
            arguments: args.clone(),
        };
        let bd = BindingDef {
            source: "x".into(),
            queue: Some("q".into()),
            exchange: Some("y".into()),
            routing_key: "#".into(),
            arguments: args.clone(),
        };
        Scenario {
            format: 1,
            id: "every-field".into(),
            title: t("title"),
            summary: Some(t("summary")),
            tags: vec!["a".into(), "reliability".into()],
            seed: 42,
            topology: Topology {
                exchanges: vec![xd.clone()],
                queues: vec![qd.clone()],
                bindings: vec![bd.clone()],
            },
            producers: vec![Producer {
                name: "p".into(),
                exchange: "x".into(),
                routing_key: "r".into(),
                body: serde_json::json!([1, "two", {"three": 3.5}]),
                properties: props.clone(),
                confirms: true,
                mandatory: true,
                count: 9,
                start_ms: 10,
                interval_ms: 20,
                messages: vec![ScriptedMessage {
                    at_ms: 5,
                    exchange: Some("x".into()),
                    routing_key: Some("s".into()),
                    body: Some("b".into()),
                    properties: Some(props.clone()),
                    mandatory: Some(true),
                }],
            }],
            consumers: vec![Consumer {
                name: "c".into(),
                queue: "q".into(),
                prefetch: 3,
                ack: AckMode::Auto,
                processing_ms: 250,
                failure: Some(FailurePolicy {
                    probability: 0.25,
                    when_body_contains: Some("bad".into()),
                    first_attempts: 2,
                    action: FailAction::NackRequeue,
                    give_up_after: Some(4),
                    give_up_to: Some(target.clone()),
                }),
                reply: Some(ReplyDef {
                    body: "pong {body}".into(),
                }),
                forward: vec![target],
                start_ms: 100,
                crash_at_ms: Some(3000),
                restart_at_ms: Some(4000),
                exclusive: true,
            }],
            timeline: vec![
                TimedAction::Publish {
                    at_ms: 1,
                    producer: Some("p".into()),
                    exchange: "x".into(),
                    routing_key: "r".into(),
                    body: "hi".into(),
                    properties: props,
                    mandatory: true,
                },
                TimedAction::KillConsumer {
                    at_ms: 2,
                    consumer: "c".into(),
                },
                TimedAction::RestartConsumer {
                    at_ms: 3,
                    consumer: "c".into(),
                },
                TimedAction::CancelConsumer {
                    at_ms: 4,
                    consumer: "c".into(),
                },
                TimedAction::RestartBroker { at_ms: 5 },
                TimedAction::DeclareExchange {
                    at_ms: 6,
                    exchange: xd,
                },
                TimedAction::DeleteExchange {
                    at_ms: 7,
                    exchange: "x".into(),
                },
                TimedAction::DeclareQueue {
                    at_ms: 8,
                    queue: qd,
                },
                TimedAction::DeleteQueue {
                    at_ms: 9,
                    queue: "q".into(),
                },
                TimedAction::PurgeQueue {
                    at_ms: 10,
                    queue: "q".into(),
                },
                TimedAction::Bind {
                    at_ms: 11,
                    binding: bd.clone(),
                },
                TimedAction::Unbind {
                    at_ms: 12,
                    binding: bd,
                },
            ],
            steps: vec![Step {
                at_ms: 50,
                text: t("step"),
                highlight: vec!["queue:q".into()],
                question: Some(Question {
                    prompt: t("prompt"),
                    choices: vec![t("a"), t("b")],
                    answer: 1,
                    explain: Some(t("explain")),
                }),
            }],
            checks: CHECK_KINDS
                .iter()
                .map(|k| Check {
                    check: *k,
                    consumer: Some("c".into()),
                    producer: Some("p".into()),
                    queue: Some("q".into()),
                    field: Some("n".into()),
                    expect: Some(serde_json::json!([1, 2])),
                    tolerance_pct: Some(5.5),
                    at_least: Some(1.0),
                    at_most: Some(2.5),
                    hint: Some(t("hint")),
                })
                .collect(),
            run: RunLimits {
                min_ms: 7,
                quiet_ms: Some(8),
                max_ms: 9,
            },
        }
    }

    #[test]
    fn reads_and_writes_as_serde_does() {
        let mut all = builtin_lessons();
        all.push(everything());
        all.push(crate::share::scene_to_scenario(&crate::scene::FANOUT));
        for sc in &all {
            let theirs = serde_json::to_value(sc).expect("serde writes");
            assert_eq!(to_value(sc), theirs, "{}: written", sc.id);
            assert_eq!(from_value(&theirs).as_ref(), Ok(sc), "{}: read", sc.id);
        }
        // Absent fields take the format's defaults.
        for (_, json) in sim_core::scenario::BUILTIN {
            let v: Value = serde_json::from_str(json).expect("json");
            let serde: Scenario = serde_json::from_str(json).expect("serde reads");
            assert_eq!(from_value(&v), Ok(serde));
        }
        let minimal = serde_json::json!({"format": 1, "id": "m",
            "title": {"en": "a", "ru": "b", "uk": "c"},
            "producers": [{"name": "p"}], "consumers": [{"name": "c", "queue": "q",
            "failure": {}, "reply": {}, "forward": [{}]}], "run": {"quiet_ms": null}});
        let serde: Scenario = serde_json::from_value(minimal.clone()).expect("serde reads");
        assert_eq!(from_value(&minimal), Ok(serde));
    }

    #[test]
    fn bad_files_say_where() {
        let base =
            serde_json::json!({"format": 1, "id": "x", "title": {"en": "a", "ru": "b", "uk": "c"}});
        let with = |key: &str, v: Value| {
            let mut o = base.clone();
            o[key] = v;
            from_value(&o).expect_err(key)
        };
        assert_eq!(
            from_value(&Value::Null).unwrap_err(),
            "the file: expected an object"
        );
        assert_eq!(
            from_value(&serde_json::json!({"format": 1})).unwrap_err(),
            "id: missing"
        );
        assert_eq!(with("colour", 1.into()), "colour: unknown field");
        assert_eq!(
            with(
                "consumers",
                serde_json::json!([{"name": "c", "queue": "q", "prefetch": 70000}])
            ),
            "consumers[0].prefetch: expected a whole number from 0 to 65535"
        );
        assert_eq!(
            with(
                "consumers",
                serde_json::json!([{"name": "c", "queue": "q", "ack": "maybe"}])
            ),
            "consumers[0].ack: expected one of `manual`, `auto`"
        );
        assert_eq!(
            with(
                "timeline",
                serde_json::json!([{"at_ms": 1, "action": "explode"}])
            ),
            "timeline[0].action: unknown action `explode`"
        );
        assert_eq!(
            with(
                "timeline",
                serde_json::json!([{"at_ms": 1, "action": "restart_broker", "queue": "q"}])
            ),
            "timeline[0].queue: unknown field"
        );
        assert_eq!(
            with(
                "steps",
                serde_json::json!([{"text": {"en": "a", "ru": "b"}}])
            ),
            "steps[0].text.uk: missing"
        );
        assert_eq!(with("tags", "x".into()), "tags: expected an array");
        assert_eq!(
            with(
                "topology",
                serde_json::json!({"exchanges": [{"name": "e", "type": "x-delayed"}]})
            ),
            "topology.exchanges[0].type: expected one of `direct`, `fanout`, `topic`, `headers`"
        );
    }
}
