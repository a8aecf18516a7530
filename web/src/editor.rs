//! The topology editor's pure part: the forms that add, change and delete
//! exchanges, queues, bindings, producers and consumers, their inline
//! validation, and the plan of protocol methods that makes the broker match.
//!
//! The user's topology *is* a [`Scenario`] (its `topology`, `producers` and
//! `consumers`), so export, the definitions.json file and the share link carry
//! what the user built with no second format. A form holds its inputs as text
//! (what the user typed, even when it is not a number yet); [`Form::problems`]
//! explains what is wrong before anything is sent, and [`Form::plan`] turns a
//! valid form into the new scenario and the [`Method`]s that declare it. The
//! same methods go to the simulation and, through the bridge, to RabbitMQ.
//! Names and keys follow AMQP 0-9-1: short strings of at most 255 bytes, `amq.`
//! reserved for the broker, the default exchange not bindable.

use serde_json::Value;
use sim_core::protocol::{ExchangeKind, FieldTable, Method};
use sim_core::scenario::{
    AckMode, BindingDef, Consumer, ExchangeDef, FailAction, FailurePolicy, Producer, PropsDef,
    QueueDef, RunLimits, Scenario, Text, Topology, FORMAT_VERSION,
};

use crate::i18n::Lang;
use crate::vecmap::VecMap;

/// The tag an editor-made scenario carries, so a shared link reopens it in the editor.
pub const EDITOR_TAG: &str = "editor";
/// At most this many consumers (each has a channel; the bridge allows 32 per connection).
pub const MAX_CONSUMERS: usize = 16;
/// AMQP short strings (names, keys, consumer tags) are at most this many bytes.
pub const MAX_SHORT: usize = 255;

/// What a form edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Exchange,
    Queue,
    Binding,
    Producer,
    Consumer,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Exchange,
        Kind::Queue,
        Kind::Binding,
        Kind::Producer,
        Kind::Consumer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exchange => "exchange",
            Kind::Queue => "queue",
            Kind::Binding => "binding",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        }
    }
}

/// An empty scenario for the editor.
pub fn empty() -> Scenario {
    let title = Text {
        en: "My topology".into(),
        ru: "Моя топология".into(),
        uk: "Моя топологія".into(),
    };
    Scenario {
        format: FORMAT_VERSION,
        id: "my-topology".into(),
        title,
        summary: None,
        tags: vec![EDITOR_TAG.into()],
        seed: 1,
        topology: Topology::default(),
        producers: Vec::new(),
        consumers: Vec::new(),
        timeline: Vec::new(),
        steps: Vec::new(),
        checks: Vec::new(),
        run: RunLimits::default(),
    }
}

/// The Build page's own strings, `[key, en, ru, uk]` (the page's shared ones
/// are in `crate::i18n`).
const LABELS: &[[&str; 4]] = &[
    ["build", "Build", "Конструктор", "Конструктор"],
    ["exchange", "exchange", "exchange", "exchange"],
    ["queue", "queue", "очередь", "черга"],
    ["binding", "binding", "привязка", "прив'язка"],
    ["producer", "producer", "producer", "producer"],
    ["consumer", "consumer", "consumer", "consumer"],
    ["add", "Add", "Добавить", "Додати"],
    ["new", "New", "Новый объект:", "Новий об'єкт:"],
    ["change", "Change", "Изменить:", "Змінити:"],
    ["f-name", "Name", "Имя", "Ім'я"],
    ["f-type", "Type", "Тип", "Тип"],
    ["f-durable", "Durable", "Durable (переживает рестарт)", "Durable (переживає рестарт)"],
    ["f-auto_delete", "Auto-delete", "Auto-delete", "Auto-delete"],
    ["f-internal", "Internal (no direct publishing)", "Internal (нельзя публиковать напрямую)", "Internal (не можна публікувати напряму)"],
    ["f-alternate", "Alternate exchange", "Alternate exchange", "Alternate exchange"],
    ["f-ttl", "Message TTL (ms)", "TTL сообщений (мс)", "TTL повідомлень (мс)"],
    ["f-max_length", "Max length", "Макс. длина", "Макс. довжина"],
    ["f-overflow", "When full", "Когда полна", "Коли повна"],
    ["f-dlx", "Dead-letter exchange", "Dead-letter exchange", "Dead-letter exchange"],
    ["f-dlk", "Dead-letter routing key", "Ключ dead-letter", "Ключ dead-letter"],
    ["f-max_priority", "Max priority", "Макс. приоритет", "Макс. пріоритет"],
    ["f-sac", "Single active consumer", "Один активный consumer", "Один активний consumer"],
    ["f-source", "From exchange", "Из exchange", "З exchange"],
    ["f-dest_kind", "To a", "Куда", "Куди"],
    ["f-dest", "Destination", "Назначение", "Призначення"],
    ["f-key", "Binding key", "Ключ привязки", "Ключ прив'язки"],
    ["f-routing_key", "Routing key", "Ключ маршрутизации", "Ключ маршрутизації"],
    ["f-x_match", "Match", "Совпадение", "Збіг"],
    ["f-headers", "Headers (key=value, …)", "Заголовки (ключ=значение, …)", "Заголовки (ключ=значення, …)"],
    ["f-body", "Body ({n} = message number)", "Тело ({n} = номер сообщения)", "Тіло ({n} = номер повідомлення)"],
    ["f-persistent", "Persistent (delivery mode 2)", "Persistent (delivery mode 2)", "Persistent (delivery mode 2)"],
    ["f-priority", "Priority", "Приоритет", "Пріоритет"],
    ["f-expiration", "Expiration (ms)", "Срок жизни (мс)", "Термін життя (мс)"],
    ["f-mandatory", "Mandatory (return if unroutable)", "Mandatory (вернуть, если некуда)", "Mandatory (повернути, якщо нікуди)"],
    ["f-queue", "Queue", "Очередь", "Черга"],
    ["f-exchange", "Exchange", "Exchange", "Exchange"],
    ["f-prefetch", "Prefetch (0 = no limit)", "Prefetch (0 = без лимита)", "Prefetch (0 = без ліміту)"],
    ["f-ack", "Acknowledge", "Подтверждение", "Підтвердження"],
    ["f-on_message", "With each message", "С каждым сообщением", "З кожним повідомленням"],
    ["f-work_ms", "Work per message (ms)", "Работа на сообщение (мс)", "Робота на повідомлення (мс)"],
    ["save", "Save", "Сохранить", "Зберегти"],
    ["create", "Create", "Создать", "Створити"],
    ["cancel", "Cancel", "Отмена", "Скасувати"],
    ["edit", "Edit", "Изменить", "Змінити"],
    ["delete", "Delete", "Удалить", "Видалити"],
    ["applying", "Sending to the broker…", "Отправляем брокеру…", "Надсилаємо брокеру…"],
    ["broker-said", "The broker refused:", "Брокер отказал:", "Брокер відмовив:"],
    ["recreate", "Changing it deletes and declares it again (its messages are lost).", "Изменение удалит и объявит заново (сообщения пропадут).", "Зміна видалить і оголосить заново (повідомлення зникнуть)."],
    ["inspector", "Inspector", "Инспектор", "Інспектор"],
    ["route", "Route", "Маршрут", "Маршрут"],
    ["properties", "Properties", "Свойства", "Властивості"],
    ["headers", "Headers", "Заголовки", "Заголовки"],
    ["x-death", "Dead-letter trail (x-death)", "След dead-letter (x-death)", "Слід dead-letter (x-death)"],
    ["body", "Body", "Тело", "Тіло"],
    ["messages", "Messages", "Сообщения", "Повідомлення"],
    ["message", "Message", "Сообщение", "Повідомлення"],
    ["arguments", "Arguments", "Аргументы", "Аргументи"],
    ["bindings", "Bindings", "Привязки", "Прив'язки"],
    ["bound-here", "Bound to it", "Привязано к нему", "Прив'язано до нього"],
    ["broker-count", "the broker counts", "брокер насчитал", "брокер налічив"],
    ["inferred", "inferred", "выведено", "виведено"],
    ["none", "none", "нет", "немає"],
    ["state", "State", "Состояние", "Стан"],
    ["now", "Now", "Сейчас", "Зараз"],
    ["moving", "on its way", "в пути", "в дорозі"],
    ["acked", "acked", "подтверждено", "підтверджено"],
    ["dropped", "dropped", "удалено", "видалено"],
    ["returned", "returned", "возвращено", "повернуто"],
    ["running", "consuming", "получает", "отримує"],
    ["starting", "starting…", "запускается…", "запускається…"],
    ["stopped", "stopped", "остановлен", "зупинений"],
    ["redelivered", "redelivered", "доставлено повторно", "доставлено повторно"],
    ["empty-build", "Start with an exchange and a queue, bind them, add a producer: every change goes to the broker at once.", "Начните с exchange и очереди, привяжите их, добавьте producer: каждое изменение сразу уходит брокеру.", "Почніть з exchange і черги, прив'яжіть їх, додайте producer: кожна зміна одразу йде брокеру."],
    ["build-hint", "Click or tab to anything for its details; drag it (or arrow keys) to move it.", "Щёлкните (или Tab) по объекту, чтобы увидеть детали; тащите его (или стрелки), чтобы сдвинуть.", "Клацніть (або Tab) на об'єкт, щоб побачити деталі; тягніть його (або стрілки), щоб посунути."],
    ["no-producer", "Add a producer to publish.", "Добавьте producer, чтобы публиковать.", "Додайте producer, щоб публікувати."],
    ["f-rate", "Rate (messages/s, 0 = only on click)", "Частота (сообщений/с, 0 = только по кнопке)", "Частота (повідомлень/с, 0 = лише за кнопкою)"],
    ["rebind", "AMQP cannot change a binding: saving removes the old one (unbind) and adds the new one (bind).", "В AMQP привязку нельзя изменить: при сохранении старая удаляется (unbind), а новая создаётся (bind).", "В AMQP прив'язку не можна змінити: під час збереження стара видаляється (unbind), а нова створюється (bind)."],
    ["actions", "Actions", "Действия", "Дії"],
    ["m-edit", "Edit…", "Изменить…", "Змінити…"],
    ["m-delete", "Delete", "Удалить", "Видалити"],
    ["m-bind", "Bind to…", "Привязать к…", "Прив'язати до…"],
    ["m-consume", "Add consumer…", "Добавить consumer…", "Додати consumer…"],
    ["m-purge", "Purge (empty the queue)", "Очистить очередь (purge)", "Очистити чергу (purge)"],
    ["m-publish", "Publish now", "Опубликовать сейчас", "Опублікувати зараз"],
    ["m-start", "Start publishing", "Начать публикацию", "Почати публікацію"],
    ["m-stop", "Stop publishing", "Остановить публикацию", "Зупинити публікацію"],
    ["per-s", "/s", "/с", "/с"],
    ["rate", "Rate", "Частота", "Частота"],
];

/// The Build page's string `key` in `lang` (then the page's shared strings).
pub fn label(lang: Lang, key: &str) -> &'static str {
    for row in LABELS {
        if row[0] == key {
            return match lang {
                Lang::En => row[1],
                Lang::Ru => row[2],
                Lang::Uk => row[3],
            };
        }
    }
    crate::i18n::t(lang, key)
}

/// What is wrong with one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Required,
    /// `amq.` names belong to the broker.
    Reserved,
    /// Over 255 bytes (this many).
    TooLong(usize),
    /// Another one of this kind has the name.
    Duplicate,
    NotNumber,
    Negative,
    /// Outside `lo..=hi`.
    Range(i64, i64),
    DlkWithoutDlx,
    /// No exchange or queue of that name.
    Unknown(String),
    /// A topic word mixing `*`/`#` with other characters.
    WildcardWord(String),
    /// `*`/`#` in a direct binding key.
    WildcardDirect,
    HeadersEmpty,
    /// A headers part that is not `key=value`.
    HeaderSyntax(String),
    DefaultBind,
    BindingExists,
    TooManyConsumers,
    /// Deleting it would leave a reference dangling (what refers to it).
    InUse(String),
}

impl Msg {
    pub fn text(&self, lang: Lang) -> String {
        let (t, arg): ([&'static str; 3], String) = match self {
            Msg::Required => (["Required.", "Обязательное поле.", "Обов'язкове поле."], String::new()),
            Msg::Reserved => ([
                "Names starting with “amq.” are reserved for the broker (RabbitMQ refuses them: 403 ACCESS_REFUSED).",
                "Имена на «amq.» зарезервированы брокером (RabbitMQ ответит 403 ACCESS_REFUSED).",
                "Імена на «amq.» зарезервовані брокером (RabbitMQ відповість 403 ACCESS_REFUSED).",
            ], String::new()),
            Msg::TooLong(n) => ([
                "{0} bytes: AMQP names and keys are at most 255 bytes.",
                "{0} байт: имена и ключи AMQP — не длиннее 255 байт.",
                "{0} байтів: імена й ключі AMQP — не довші за 255 байтів.",
            ], n.to_string()),
            Msg::Duplicate => (["This name is taken already.", "Это имя уже занято.", "Це ім'я вже зайняте."], String::new()),
            Msg::NotNumber => (["Enter a whole number.", "Введите целое число.", "Введіть ціле число."], String::new()),
            Msg::Negative => (["Cannot be negative.", "Не может быть отрицательным.", "Не може бути від'ємним."], String::new()),
            Msg::Range(lo, hi) => ([
                "Must be between {0}.",
                "Должно быть в пределах {0}.",
                "Має бути в межах {0}.",
            ], format!("{lo}…{hi}")),
            Msg::DlkWithoutDlx => ([
                "A dead-letter routing key needs a dead-letter exchange.",
                "Ключу dead-letter нужен dead-letter exchange.",
                "Ключу dead-letter потрібен dead-letter exchange.",
            ], String::new()),
            Msg::Unknown(name) => ([
                "There is no “{0}”: create it first.",
                "«{0}» не существует: сначала создайте его.",
                "«{0}» не існує: спершу створіть його.",
            ], name.clone()),
            Msg::WildcardWord(w) => ([
                "“{0}”: * and # are wildcards only as a whole word between dots (order.* or #.paid); here they match literally.",
                "«{0}»: * и # работают только как целое слово между точками (order.* или #.paid); здесь они совпадут буквально.",
                "«{0}»: * і # працюють лише як ціле слово між крапками (order.* або #.paid); тут вони збігатимуться буквально.",
            ], w.clone()),
            Msg::WildcardDirect => ([
                "A direct exchange compares keys exactly: * and # are not wildcards here (use a topic exchange).",
                "Direct exchange сравнивает ключи точно: * и # здесь не шаблоны (нужен topic exchange).",
                "Direct exchange порівнює ключі точно: * і # тут не шаблони (потрібен topic exchange).",
            ], String::new()),
            Msg::HeadersEmpty => ([
                "A headers binding needs at least one header to match, e.g. format=pdf.",
                "Привязке headers нужен хотя бы один заголовок, например format=pdf.",
                "Прив'язці headers потрібен хоча б один заголовок, наприклад format=pdf.",
            ], String::new()),
            Msg::HeaderSyntax(part) => ([
                "“{0}”: write headers as key=value, separated by commas.",
                "«{0}»: пишите заголовки как ключ=значение через запятую.",
                "«{0}»: пишіть заголовки як ключ=значення через кому.",
            ], part.clone()),
            Msg::DefaultBind => ([
                "The default exchange cannot be bound: it reaches every queue by its name (403 ACCESS_REFUSED).",
                "К default exchange нельзя привязать: он доставляет в очередь по её имени (403 ACCESS_REFUSED).",
                "До default exchange не можна прив'язати: він доставляє в чергу за її ім'ям (403 ACCESS_REFUSED).",
            ], String::new()),
            Msg::BindingExists => (["This binding exists already.", "Такая привязка уже есть.", "Така прив'язка вже є."], String::new()),
            Msg::TooManyConsumers => ([
                "At most {0} consumers.",
                "Не больше {0} consumer'ов.",
                "Не більше {0} consumer'ів.",
            ], MAX_CONSUMERS.to_string()),
            Msg::InUse(by) => ([
                "Still used by {0}: change or delete that first.",
                "Ещё используется: {0}. Сначала измените или удалите это.",
                "Ще використовується: {0}. Спершу змініть або видаліть це.",
            ], by.clone()),
        };
        crate::inspector::fill(crate::inspector::pick(lang, t), &[&arg])
    }
}

/// A problem with the input `field` of a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub msg: Msg,
}

/// How an input is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Text,
    Number,
    Check,
    /// `(value, label)` choices.
    Select(Vec<(String, String)>),
}

/// One input of a form, ready to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub input: Input,
    pub value: String,
    /// The name of something being changed is fixed (delete and create to rename).
    pub readonly: bool,
}

/// The fields of each kind, in order.
fn field_names(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Exchange => &[
            "name",
            "type",
            "durable",
            "auto_delete",
            "internal",
            "alternate",
        ],
        Kind::Queue => &[
            "name",
            "durable",
            "auto_delete",
            "ttl",
            "max_length",
            "overflow",
            "dlx",
            "dlk",
            "max_priority",
            "sac",
        ],
        Kind::Binding => &["source", "dest_kind", "dest", "key", "x_match", "headers"],
        Kind::Producer => &[
            "name",
            "exchange",
            "key",
            "rate",
            "headers",
            "body",
            "persistent",
            "priority",
            "expiration",
            "mandatory",
        ],
        Kind::Consumer => &["name", "queue", "prefetch", "ack", "on_message", "work_ms"],
    }
}

const CHECKS: [&str; 6] = [
    "durable",
    "auto_delete",
    "internal",
    "sac",
    "persistent",
    "mandatory",
];
const NUMBERS: [&str; 7] = [
    "ttl",
    "max_length",
    "max_priority",
    "priority",
    "expiration",
    "prefetch",
    "work_ms",
];

/// A form for adding or changing one thing.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    pub kind: Kind,
    /// The name of what is being changed; `None`: a new one.
    pub editing: Option<String>,
    values: VecMap<&'static str, String>,
    /// Save was pressed: show every problem, "required" ones too.
    pub tried: bool,
    /// What the broker answered to the last attempt (shown next to the form).
    pub broker_error: Option<String>,
    /// The plan was sent; waiting for the broker's replies.
    pub busy: bool,
}

fn b(v: bool) -> String {
    if v {
        "true".into()
    } else {
        String::new()
    }
}

fn arg_text(args: &FieldTable, key: &str) -> String {
    match args.get(key) {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(v)) => b(*v),
        Some(v) => v.to_string(),
    }
}

/// `a=1, b=x` from a table (`x-match` left out).
pub fn headers_text(t: &FieldTable) -> String {
    t.iter()
        .filter(|(k, _)| k.as_str() != "x-match")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `a=1, b=x` into a table of strings; the first bad part is the error.
pub fn parse_headers(s: &str) -> Result<FieldTable, String> {
    let mut t = FieldTable::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                t.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
            }
            _ => return Err(part.to_string()),
        }
    }
    Ok(t)
}

/// A number field: `Ok(None)` when empty.
fn number(s: &str) -> Result<Option<i64>, Msg> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<i64>().map(Some).map_err(|_| {
        if s.starts_with('-') && s[1..].chars().all(|c| c.is_ascii_digit()) {
            Msg::Negative
        } else {
            Msg::NotNumber
        }
    })
}

fn name_problems(name: &str, reserved_prefix: bool) -> Option<Msg> {
    if name.is_empty() {
        Some(Msg::Required)
    } else if name.len() > MAX_SHORT {
        Some(Msg::TooLong(name.len()))
    } else if reserved_prefix && name.starts_with("amq.") {
        Some(Msg::Reserved)
    } else {
        None
    }
}

/// Problems of a binding key for an exchange of `kind`.
pub fn key_problem(kind: ExchangeKind, key: &str) -> Option<Msg> {
    if key.len() > MAX_SHORT {
        return Some(Msg::TooLong(key.len()));
    }
    match kind {
        ExchangeKind::Topic => key
            .split('.')
            .find(|w| (w.contains('*') || w.contains('#')) && *w != "*" && *w != "#")
            .map(|w| Msg::WildcardWord(w.to_string())),
        ExchangeKind::Direct if key.contains('*') || key.contains('#') => Some(Msg::WildcardDirect),
        _ => None,
    }
}

pub fn exchange_kind(sc: &Scenario, name: &str) -> Option<ExchangeKind> {
    if name.is_empty() {
        return Some(ExchangeKind::Direct);
    }
    sc.topology
        .exchanges
        .iter()
        .find(|x| x.name == name)
        .map(|x| x.kind)
}

fn has_exchange(sc: &Scenario, name: &str) -> bool {
    sc.topology.exchanges.iter().any(|x| x.name == name)
}

fn has_queue(sc: &Scenario, name: &str) -> bool {
    sc.topology.queues.iter().any(|q| q.name == name)
}

fn declare_exchange(x: &ExchangeDef) -> Method {
    Method::ExchangeDeclare {
        exchange: x.name.clone(),
        kind: x.kind.into(),
        passive: false,
        durable: x.durable,
        auto_delete: x.auto_delete,
        internal: x.internal,
        arguments: x.arguments.clone(),
    }
}

fn declare_queue(q: &QueueDef) -> Method {
    Method::QueueDeclare {
        queue: q.name.clone(),
        passive: false,
        durable: q.durable,
        exclusive: q.exclusive,
        auto_delete: q.auto_delete,
        arguments: q.arguments.clone(),
    }
}

/// The bind (or unbind) method of a binding.
pub fn bind_method(b: &BindingDef, unbind: bool) -> Method {
    let (source, routing_key, arguments) =
        (b.source.clone(), b.routing_key.clone(), b.arguments.clone());
    match (&b.queue, unbind) {
        (Some(queue), false) => Method::QueueBind {
            queue: queue.clone(),
            exchange: source,
            routing_key,
            arguments,
        },
        (Some(queue), true) => Method::QueueUnbind {
            queue: queue.clone(),
            exchange: source,
            routing_key,
            arguments,
        },
        (None, false) => Method::ExchangeBind {
            destination: b.exchange.clone().unwrap_or_default(),
            source,
            routing_key,
            arguments,
        },
        (None, true) => Method::ExchangeUnbind {
            destination: b.exchange.clone().unwrap_or_default(),
            source,
            routing_key,
            arguments,
        },
    }
}

/// Everything that declares `sc`'s topology, in an order the broker accepts
/// (exchanges, queues, then bindings). Declaring again is harmless.
pub fn declare_all(sc: &Scenario) -> Vec<Method> {
    let t = &sc.topology;
    t.exchanges
        .iter()
        .map(declare_exchange)
        .chain(t.queues.iter().map(declare_queue))
        .chain(t.bindings.iter().map(|b| bind_method(b, false)))
        .collect()
}

/// A stable id of a binding (it has no name): `source>queue:dest:key`.
pub fn binding_id(b: &BindingDef) -> String {
    let dest = match (&b.queue, &b.exchange) {
        (Some(q), _) => format!("queue:{q}"),
        (None, Some(x)) => format!("exchange:{x}"),
        _ => String::new(),
    };
    let args = if b.arguments.is_empty() {
        String::new()
    } else {
        format!(" {}", Value::Object(b.arguments.clone()))
    };
    format!("{}>{dest}:{}{args}", b.source, b.routing_key)
}

/// What a valid form (or a delete) changes: the new scenario, the methods for
/// the declaring channel, and the consumers to stop and (re)start.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub sc: Scenario,
    pub admin: Vec<Method>,
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

impl Plan {
    fn new(sc: Scenario) -> Plan {
        Plan {
            sc,
            admin: Vec::new(),
            stop: Vec::new(),
            start: Vec::new(),
        }
    }
}

impl Form {
    /// An empty form for a new `kind`, with sensible defaults (the first
    /// exchange or queue picked in the lists).
    pub fn new(kind: Kind, sc: &Scenario) -> Form {
        let mut f = Form {
            kind,
            editing: None,
            values: VecMap::new(),
            tried: false,
            broker_error: None,
            busy: false,
        };
        let first_x = sc
            .topology
            .exchanges
            .first()
            .map(|x| x.name.clone())
            .unwrap_or_default();
        let first_q = sc
            .topology
            .queues
            .first()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        match kind {
            Kind::Exchange => f.put("type", "direct"),
            Kind::Binding => {
                f.put("source", &first_x);
                f.put("dest_kind", "queue");
                f.put("dest", &first_q);
                f.put("x_match", "all");
            }
            Kind::Producer => {
                f.put("exchange", &first_x);
                f.put("body", "{\"n\": {n}}");
                f.put("rate", "0");
                f.put(
                    "name",
                    &free_name("producer", |n| sc.producers.iter().any(|p| p.name == n)),
                );
            }
            Kind::Consumer => {
                f.put("queue", &first_q);
                f.put("prefetch", "1");
                f.put("ack", "manual");
                f.put("on_message", "ack");
                f.put("work_ms", "800");
                f.put(
                    "name",
                    &free_name("consumer", |n| sc.consumers.iter().any(|c| c.name == n)),
                );
            }
            Kind::Queue => {}
        }
        f
    }

    /// A form to change the existing `name` of `kind` (a binding by its
    /// [`binding_id`]: saving an edited binding unbinds the old one and binds
    /// the new one, since AMQP has no way to change a binding).
    pub fn edit(kind: Kind, name: &str, sc: &Scenario) -> Option<Form> {
        let mut f = Form::new(kind, sc);
        f.editing = Some(name.to_string());
        if kind != Kind::Binding {
            f.put("name", name);
        }
        match kind {
            Kind::Exchange => {
                let x = sc.topology.exchanges.iter().find(|x| x.name == name)?;
                f.put("type", x.kind.as_str());
                f.put("durable", &b(x.durable));
                f.put("auto_delete", &b(x.auto_delete));
                f.put("internal", &b(x.internal));
                f.put("alternate", &arg_text(&x.arguments, "alternate-exchange"));
            }
            Kind::Queue => {
                let q = sc.topology.queues.iter().find(|q| q.name == name)?;
                f.put("durable", &b(q.durable));
                f.put("auto_delete", &b(q.auto_delete));
                for (field, arg) in QUEUE_ARGS {
                    f.put(field, &arg_text(&q.arguments, arg));
                }
            }
            Kind::Producer => {
                let p = sc.producers.iter().find(|p| p.name == name)?;
                f.put("exchange", &p.exchange);
                f.put("key", &p.routing_key);
                f.put(
                    "headers",
                    &p.properties
                        .headers
                        .as_ref()
                        .map(headers_text)
                        .unwrap_or_default(),
                );
                f.put(
                    "body",
                    &match &p.body {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                );
                f.put("persistent", &b(p.properties.delivery_mode == Some(2)));
                f.put(
                    "priority",
                    &p.properties
                        .priority
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
                f.put(
                    "expiration",
                    &p.properties
                        .expiration_ms
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
                f.put("mandatory", &b(p.mandatory));
                f.put("rate", &rate_text(p.interval_ms));
            }
            Kind::Consumer => {
                let c = sc.consumers.iter().find(|c| c.name == name)?;
                f.put("queue", &c.queue);
                f.put("prefetch", &c.prefetch.to_string());
                f.put(
                    "ack",
                    if c.ack == AckMode::Auto {
                        "auto"
                    } else {
                        "manual"
                    },
                );
                f.put("on_message", on_message_of(c));
                f.put("work_ms", &c.processing_ms.to_string());
            }
            Kind::Binding => {
                let bd = sc
                    .topology
                    .bindings
                    .iter()
                    .find(|bd| binding_id(bd) == name)?;
                f.put("source", &bd.source);
                match (&bd.queue, &bd.exchange) {
                    (Some(q), _) => {
                        f.put("dest_kind", "queue");
                        f.put("dest", q);
                    }
                    (None, x) => {
                        f.put("dest_kind", "exchange");
                        f.put("dest", x.as_deref().unwrap_or_default());
                    }
                }
                f.put("key", &bd.routing_key);
                f.put("headers", &headers_text(&bd.arguments));
                f.put(
                    "x_match",
                    if arg_text(&bd.arguments, "x-match") == "any" {
                        "any"
                    } else {
                        "all"
                    },
                );
            }
        }
        Some(f)
    }

    fn put(&mut self, field: &'static str, v: &str) {
        self.values.insert(field, v.to_string());
    }

    /// The text of input `field` (empty if never set).
    pub fn get(&self, field: &str) -> &str {
        self.values.get(field).map(String::as_str).unwrap_or("")
    }

    fn on(&self, field: &str) -> bool {
        self.get(field) == "true"
    }

    /// The user typed `value` into `field` (unknown fields are ignored).
    pub fn set(&mut self, field: &str, value: String) {
        if let Some(&name) = field_names(self.kind).iter().find(|n| **n == field) {
            if self.editing.is_some() && name == "name" {
                return;
            }
            // Switching the destination kind picks a destination of that kind.
            self.values.insert(name, value);
            self.broker_error = None;
        }
    }

    /// The destination list changed kind: a valid default destination.
    pub fn fix_dest(&mut self, sc: &Scenario) {
        if self.kind != Kind::Binding {
            return;
        }
        let ok = match self.get("dest_kind") {
            "exchange" => has_exchange(sc, self.get("dest")),
            _ => has_queue(sc, self.get("dest")),
        };
        if !ok {
            let first = match self.get("dest_kind") {
                "exchange" => sc.topology.exchanges.first().map(|x| x.name.clone()),
                _ => sc.topology.queues.first().map(|q| q.name.clone()),
            };
            self.put("dest", &first.unwrap_or_default());
        }
    }

    /// The inputs to draw (some depend on others: a headers binding has no key).
    pub fn fields(&self, sc: &Scenario) -> Vec<Field> {
        let exchanges = |blank: Option<&str>, except: Option<&str>| {
            let mut v: Vec<(String, String)> = blank
                .map(|l| vec![(String::new(), l.to_string())])
                .unwrap_or_default();
            v.extend(
                sc.topology
                    .exchanges
                    .iter()
                    .filter(|x| Some(x.name.as_str()) != except)
                    .map(|x| (x.name.clone(), x.name.clone())),
            );
            v
        };
        let queues = || {
            sc.topology
                .queues
                .iter()
                .map(|q| (q.name.clone(), q.name.clone()))
                .collect::<Vec<_>>()
        };
        let opts = |list: &[&str]| {
            list.iter()
                .map(|s| (s.to_string(), s.to_string()))
                .collect::<Vec<_>>()
        };
        let source_kind = exchange_kind(sc, self.get("source"));
        field_names(self.kind)
            .iter()
            .filter(|&&name| match (self.kind, name) {
                (Kind::Binding, "key") => !matches!(
                    source_kind,
                    Some(ExchangeKind::Fanout) | Some(ExchangeKind::Headers)
                ),
                (Kind::Binding, "x_match" | "headers") => {
                    source_kind == Some(ExchangeKind::Headers)
                }
                _ => true,
            })
            .map(|&name| {
                let input = match (self.kind, name) {
                    (_, n) if CHECKS.contains(&n) => Input::Check,
                    (_, n) if NUMBERS.contains(&n) => Input::Number,
                    (Kind::Producer, "rate") => Input::Number,
                    (Kind::Exchange, "type") => {
                        Input::Select(opts(&["direct", "fanout", "topic", "headers"]))
                    }
                    (Kind::Exchange, "alternate") => {
                        Input::Select(exchanges(Some("—"), self.editing.as_deref()))
                    }
                    (Kind::Queue, "overflow") => Input::Select(
                        [("", "drop-head (default)")]
                            .into_iter()
                            .chain(
                                ["drop-head", "reject-publish", "reject-publish-dlx"]
                                    .map(|s| (s, s)),
                            )
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .collect(),
                    ),
                    (Kind::Queue, "dlx") => Input::Select(exchanges(Some("—"), None)),
                    (Kind::Binding, "source") => Input::Select(exchanges(None, None)),
                    (Kind::Binding, "dest_kind") => Input::Select(opts(&["queue", "exchange"])),
                    (Kind::Binding, "dest") => Input::Select(match self.get("dest_kind") {
                        "exchange" => exchanges(None, None),
                        _ => queues(),
                    }),
                    (Kind::Binding, "x_match") => Input::Select(opts(&["all", "any"])),
                    (Kind::Producer, "exchange") => {
                        Input::Select(exchanges(Some("(default)"), None))
                    }
                    (Kind::Consumer, "queue") => Input::Select(queues()),
                    (Kind::Consumer, "ack") => Input::Select(opts(&["manual", "auto"])),
                    (Kind::Consumer, "on_message") => {
                        Input::Select(opts(&["ack", "reject", "requeue"]))
                    }
                    _ => Input::Text,
                };
                Field {
                    name,
                    input,
                    value: self.get(name).to_string(),
                    readonly: name == "name" && self.editing.is_some(),
                }
            })
            .collect()
    }

    /// Everything wrong with the form against `sc`, field by field.
    pub fn problems(&self, sc: &Scenario) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |field: &'static str, msg: Msg| out.push(Problem { field, msg });
        let num =
            |field: &'static str, lo: i64, hi: i64, bad: &mut dyn FnMut(&'static str, Msg)| {
                match number(self.get(field)) {
                    Err(m) => bad(field, m),
                    Ok(Some(v)) if v < 0 && lo >= 0 => bad(field, Msg::Negative),
                    Ok(Some(v)) if v < lo || v > hi => bad(field, Msg::Range(lo, hi)),
                    _ => {}
                }
            };
        let name = self.get("name");
        let new = self.editing.is_none();
        match self.kind {
            Kind::Exchange => {
                if let Some(m) = name_problems(name, true) {
                    bad("name", m);
                } else if new && has_exchange(sc, name) {
                    bad("name", Msg::Duplicate);
                }
                let ae = self.get("alternate");
                if !ae.is_empty() && !has_exchange(sc, ae) {
                    bad("alternate", Msg::Unknown(ae.to_string()));
                }
            }
            Kind::Queue => {
                if let Some(m) = name_problems(name, true) {
                    bad("name", m);
                } else if new && has_queue(sc, name) {
                    bad("name", Msg::Duplicate);
                }
                num("ttl", 0, u32::MAX as i64, &mut bad);
                num("max_length", 0, i64::MAX, &mut bad);
                num("max_priority", 1, 255, &mut bad);
                let dlx = self.get("dlx");
                if !dlx.is_empty() && !has_exchange(sc, dlx) {
                    bad("dlx", Msg::Unknown(dlx.to_string()));
                }
                let dlk = self.get("dlk");
                if dlk.len() > MAX_SHORT {
                    bad("dlk", Msg::TooLong(dlk.len()));
                } else if !dlk.is_empty() && dlx.is_empty() {
                    bad("dlk", Msg::DlkWithoutDlx);
                }
            }
            Kind::Binding => {
                let source = self.get("source");
                let dest = self.get("dest");
                let kind = exchange_kind(sc, source);
                if source.is_empty() {
                    bad("source", Msg::DefaultBind);
                } else if kind.is_none() {
                    bad("source", Msg::Unknown(source.to_string()));
                }
                let dest_ok = match self.get("dest_kind") {
                    "exchange" => has_exchange(sc, dest),
                    _ => has_queue(sc, dest),
                };
                if dest.is_empty() {
                    bad("dest", Msg::Required);
                } else if !dest_ok {
                    bad("dest", Msg::Unknown(dest.to_string()));
                }
                match kind {
                    Some(ExchangeKind::Headers) => match parse_headers(self.get("headers")) {
                        Err(part) => bad("headers", Msg::HeaderSyntax(part)),
                        Ok(t) if t.is_empty() => bad("headers", Msg::HeadersEmpty),
                        Ok(_) => {}
                    },
                    Some(k) => {
                        if let Some(m) = key_problem(k, self.get("key")) {
                            bad("key", m);
                        }
                    }
                    None => {}
                }
                if let Ok(def) = self.binding_def(sc) {
                    let id = binding_id(&def);
                    // An edited binding saved unchanged is not a duplicate of itself.
                    if self.editing.as_deref() != Some(id.as_str())
                        && sc.topology.bindings.iter().any(|b| binding_id(b) == id)
                    {
                        bad("key", Msg::BindingExists);
                    }
                }
                if let Some(old) = &self.editing {
                    if !sc.topology.bindings.iter().any(|b| binding_id(b) == *old) {
                        // Deleted meanwhile (another tab of the form, a queue delete).
                        bad("source", Msg::Unknown(old.clone()));
                    }
                }
            }
            Kind::Producer => {
                if let Some(m) = name_problems(name, false) {
                    bad("name", m);
                } else if new && sc.producers.iter().any(|p| p.name == name) {
                    bad("name", Msg::Duplicate);
                }
                let x = self.get("exchange");
                if !x.is_empty() && !has_exchange(sc, x) {
                    bad("exchange", Msg::Unknown(x.to_string()));
                }
                let key = self.get("key");
                if key.len() > MAX_SHORT {
                    bad("key", Msg::TooLong(key.len()));
                }
                if let Err(part) = parse_headers(self.get("headers")) {
                    bad("headers", Msg::HeaderSyntax(part));
                }
                num("priority", 0, 255, &mut bad);
                num("expiration", 0, u32::MAX as i64, &mut bad);
                if let Err(m) = rate_interval(self.get("rate")) {
                    bad("rate", m);
                }
            }
            Kind::Consumer => {
                if let Some(m) = name_problems(name, true) {
                    bad("name", m);
                } else if new && sc.consumers.iter().any(|c| c.name == name) {
                    bad("name", Msg::Duplicate);
                } else if new && sc.consumers.len() >= MAX_CONSUMERS {
                    bad("name", Msg::TooManyConsumers);
                }
                let q = self.get("queue");
                if q.is_empty() {
                    bad("queue", Msg::Required);
                } else if !has_queue(sc, q) {
                    bad("queue", Msg::Unknown(q.to_string()));
                }
                num("prefetch", 0, u16::MAX as i64, &mut bad);
                num("work_ms", 0, 60_000, &mut bad);
            }
        }
        out
    }

    /// The problems to show now: "required" ones only once Save was pressed.
    pub fn shown_problems(&self, sc: &Scenario) -> Vec<Problem> {
        let mut p = self.problems(sc);
        if !self.tried {
            p.retain(|p| p.msg != Msg::Required);
        }
        p
    }

    fn binding_def(&self, sc: &Scenario) -> Result<BindingDef, ()> {
        let source = self.get("source").to_string();
        let dest = self.get("dest").to_string();
        let (queue, exchange) = match self.get("dest_kind") {
            "exchange" => (None, Some(dest)),
            _ => (Some(dest), None),
        };
        let (routing_key, arguments) = match exchange_kind(sc, &source) {
            Some(ExchangeKind::Headers) => {
                let mut t = parse_headers(self.get("headers")).map_err(|_| ())?;
                t.insert(
                    "x-match".into(),
                    Value::String(match self.get("x_match") {
                        "any" => "any".into(),
                        _ => "all".into(),
                    }),
                );
                (String::new(), t)
            }
            Some(ExchangeKind::Fanout) => (String::new(), FieldTable::new()),
            _ => (self.get("key").to_string(), FieldTable::new()),
        };
        Ok(BindingDef {
            source,
            queue,
            exchange,
            routing_key,
            arguments,
        })
    }

    /// The new scenario and the methods that make the broker match it, or the
    /// problems (then nothing may be sent).
    pub fn plan(&self, sc: &Scenario) -> Result<Plan, Vec<Problem>> {
        let problems = self.problems(sc);
        if !problems.is_empty() {
            return Err(problems);
        }
        let name = self.get("name").to_string();
        let mut plan = Plan::new(sc.clone());
        let int = |f: &str| number(self.get(f)).ok().flatten();
        match self.kind {
            Kind::Exchange => {
                let mut arguments = FieldTable::new();
                let ae = self.get("alternate");
                if !ae.is_empty() {
                    arguments.insert("alternate-exchange".into(), Value::String(ae.into()));
                }
                let def = ExchangeDef {
                    name: name.clone(),
                    kind: match self.get("type") {
                        "fanout" => ExchangeKind::Fanout,
                        "topic" => ExchangeKind::Topic,
                        "headers" => ExchangeKind::Headers,
                        _ => ExchangeKind::Direct,
                    },
                    durable: self.on("durable"),
                    auto_delete: self.on("auto_delete"),
                    internal: self.on("internal"),
                    arguments,
                };
                let xs = &mut plan.sc.topology.exchanges;
                match xs.iter_mut().find(|x| x.name == name) {
                    Some(old) => {
                        if *old == def {
                            return Ok(plan);
                        }
                        *old = def.clone();
                        // Exchange properties cannot change: delete (which
                        // drops its bindings both ways), declare, bind again.
                        plan.admin.push(Method::ExchangeDelete {
                            exchange: name.clone(),
                            if_unused: false,
                        });
                        plan.admin.push(declare_exchange(&def));
                        for bd in plan.sc.topology.bindings.iter().filter(|bd| {
                            bd.source == name || bd.exchange.as_deref() == Some(name.as_str())
                        }) {
                            plan.admin.push(bind_method(bd, false));
                        }
                    }
                    None => {
                        xs.push(def.clone());
                        plan.admin.push(declare_exchange(&def));
                    }
                }
            }
            Kind::Queue => {
                let mut arguments = FieldTable::new();
                for (field, arg) in QUEUE_ARGS {
                    let v = self.get(field);
                    if v.is_empty() {
                        continue;
                    }
                    let value = match field {
                        "sac" => Value::Bool(true),
                        f if NUMBERS.contains(&f) => Value::from(int(f).unwrap_or(0)),
                        _ => Value::String(v.to_string()),
                    };
                    arguments.insert(arg.to_string(), value);
                }
                let def = QueueDef {
                    name: name.clone(),
                    durable: self.on("durable"),
                    exclusive: false,
                    auto_delete: self.on("auto_delete"),
                    arguments,
                };
                let qs = &mut plan.sc.topology.queues;
                match qs.iter_mut().find(|q| q.name == name) {
                    Some(old) => {
                        if *old == def {
                            return Ok(plan);
                        }
                        *old = def.clone();
                        // Queue arguments cannot change either: the queue goes
                        // (its messages and consumers with it) and comes back.
                        plan.admin.push(Method::QueueDelete {
                            queue: name.clone(),
                            if_unused: false,
                            if_empty: false,
                        });
                        plan.admin.push(declare_queue(&def));
                        for bd in plan
                            .sc
                            .topology
                            .bindings
                            .iter()
                            .filter(|bd| bd.queue.as_deref() == Some(name.as_str()))
                        {
                            plan.admin.push(bind_method(bd, false));
                        }
                        plan.start = consumers_of(&plan.sc, &name);
                    }
                    None => {
                        qs.push(def.clone());
                        plan.admin.push(declare_queue(&def));
                    }
                }
            }
            Kind::Binding => {
                let def = self.binding_def(sc).map_err(|_| {
                    vec![Problem {
                        field: "headers",
                        msg: Msg::HeadersEmpty,
                    }]
                })?;
                let bindings = &mut plan.sc.topology.bindings;
                match &self.editing {
                    Some(old_id) => {
                        let Some(old) = bindings.iter_mut().find(|b| binding_id(b) == *old_id)
                        else {
                            return Err(vec![Problem {
                                field: "source",
                                msg: Msg::Unknown(old_id.clone()),
                            }]);
                        };
                        if binding_id(&def) == *old_id {
                            return Ok(plan);
                        }
                        // Unbind first: a message published in between goes
                        // nowhere rather than both ways.
                        plan.admin.push(bind_method(old, true));
                        plan.admin.push(bind_method(&def, false));
                        *old = def;
                    }
                    None => {
                        plan.admin.push(bind_method(&def, false));
                        bindings.push(def);
                    }
                }
            }
            Kind::Producer => {
                let headers = parse_headers(self.get("headers")).unwrap_or_default();
                let p = Producer {
                    name: name.clone(),
                    exchange: self.get("exchange").to_string(),
                    routing_key: self.get("key").to_string(),
                    body: Value::String(self.get("body").to_string()),
                    properties: PropsDef {
                        delivery_mode: self.on("persistent").then_some(2),
                        priority: int("priority").and_then(|v| u8::try_from(v).ok()),
                        expiration_ms: int("expiration").and_then(|v| u64::try_from(v).ok()),
                        headers: (!headers.is_empty()).then_some(headers),
                        ..PropsDef::default()
                    },
                    confirms: false,
                    mandatory: self.on("mandatory"),
                    // An exported scenario publishes once from every producer;
                    // `interval_ms` keeps the Build page's rate (0: on click).
                    count: 1,
                    start_ms: 0,
                    interval_ms: rate_interval(self.get("rate")).unwrap_or(0),
                    messages: Vec::new(),
                };
                match plan.sc.producers.iter_mut().find(|x| x.name == name) {
                    Some(old) => *old = p,
                    None => plan.sc.producers.push(p),
                }
            }
            Kind::Consumer => {
                let failure = match self.get("on_message") {
                    "reject" => Some(FailAction::Reject),
                    "requeue" => Some(FailAction::NackRequeue),
                    _ => None,
                }
                .map(|action| FailurePolicy {
                    probability: 1.0,
                    action,
                    ..FailurePolicy::default()
                });
                let c = Consumer {
                    name: name.clone(),
                    queue: self.get("queue").to_string(),
                    prefetch: int("prefetch")
                        .and_then(|v| u16::try_from(v).ok())
                        .unwrap_or(0),
                    ack: if self.get("ack") == "auto" {
                        AckMode::Auto
                    } else {
                        AckMode::Manual
                    },
                    processing_ms: int("work_ms")
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(0),
                    failure,
                    reply: None,
                    forward: Vec::new(),
                    start_ms: 0,
                    crash_at_ms: None,
                    restart_at_ms: None,
                    exclusive: false,
                };
                match plan.sc.consumers.iter_mut().find(|x| x.name == name) {
                    Some(old) => {
                        if *old == c {
                            return Ok(plan);
                        }
                        *old = c;
                        plan.stop.push(name.clone());
                    }
                    None => plan.sc.consumers.push(c),
                }
                plan.start.push(name);
            }
        }
        Ok(plan)
    }
}

/// Queue form fields and the arguments they set.
const QUEUE_ARGS: [(&str, &str); 7] = [
    ("ttl", "x-message-ttl"),
    ("max_length", "x-max-length"),
    ("overflow", "x-overflow"),
    ("dlx", "x-dead-letter-exchange"),
    ("dlk", "x-dead-letter-routing-key"),
    ("max_priority", "x-max-priority"),
    ("sac", "x-single-active-consumer"),
];

/// The fastest a Build-page producer publishes, messages per second.
pub const MAX_RATE: i64 = 20;

/// A rate in messages per second as typed (`2`, `0.5`, `0,5`; empty or `0`:
/// only on click) as the milliseconds between publishes (0: on click).
/// Parsed by hand in thousandths: a float parser would cost the bundle.
pub fn rate_interval(s: &str) -> Result<u64, Msg> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Some(rest) = s.strip_prefix('-') {
        return Err(if rate_interval(rest).is_ok() {
            Msg::Negative
        } else {
            Msg::NotNumber
        });
    }
    let (int, frac) = s.split_once(['.', ',']).unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || int.len() > 6 {
        return Err(Msg::NotNumber);
    }
    let whole: u64 = int.parse().unwrap_or(0);
    // Thousandths of a message per second; digits past the third are dropped.
    let mut milli = whole * 1000;
    for (i, d) in frac.bytes().take(3).enumerate() {
        milli += u64::from(d - b'0') * [100, 10, 1][i];
    }
    if milli > MAX_RATE as u64 * 1000 || (milli == 0 && frac.bytes().any(|d| d != b'0')) {
        return Err(Msg::Range(0, MAX_RATE));
    }
    Ok((1_000_000 + milli / 2).checked_div(milli).unwrap_or(0))
}

/// The rate a producer publishing every `interval_ms` is shown with: the
/// shortest decimal (up to three places) that gives that interval back.
pub fn rate_text(interval_ms: u64) -> String {
    if interval_ms == 0 {
        return "0".into();
    }
    let milli = (1_000_000 + interval_ms / 2) / interval_ms;
    for places in 0..=3u32 {
        let step = 10u64.pow(3 - places);
        let r = (milli + step / 2) / step * step;
        let (w, f) = (r / 1000, r % 1000);
        let text = match places {
            0 => w.to_string(),
            p => {
                let f = format!("{f:03}");
                format!("{w}.{}", &f[..p as usize])
            }
        };
        if rate_interval(&text) == Ok(interval_ms) {
            return text;
        }
    }
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

/// What a consumer does with each message: `ack`, `reject` (dead-letters if
/// the queue has a DLX) or `requeue`.
pub fn on_message_of(c: &Consumer) -> &'static str {
    match c.failure.as_ref().map(|f| f.action) {
        Some(FailAction::Reject) | Some(FailAction::Nack) => "reject",
        Some(FailAction::RejectRequeue) | Some(FailAction::NackRequeue) => "requeue",
        _ => "ack",
    }
}

fn consumers_of(sc: &Scenario, queue: &str) -> Vec<String> {
    sc.consumers
        .iter()
        .filter(|c| c.queue == queue)
        .map(|c| c.name.clone())
        .collect()
}

fn free_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    (1..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

/// Deletes `name` of `kind` (for a binding: its [`binding_id`]). What still
/// refers to it by name blocks the delete with [`Msg::InUse`]; what depends on
/// it goes with it (an exchange's or queue's bindings, a queue's consumers),
/// as in the broker.
pub fn delete(sc: &Scenario, kind: Kind, name: &str) -> Result<Plan, Msg> {
    let mut plan = Plan::new(sc.clone());
    let t = &mut plan.sc.topology;
    match kind {
        Kind::Exchange => {
            let mut users: Vec<String> = sc
                .producers
                .iter()
                .filter(|p| p.exchange == name)
                .map(|p| format!("producer {}", p.name))
                .collect();
            users.extend(
                t.exchanges
                    .iter()
                    .filter(|x| arg_text(&x.arguments, "alternate-exchange") == name)
                    .map(|x| format!("exchange {} (alternate)", x.name)),
            );
            users.extend(
                t.queues
                    .iter()
                    .filter(|q| arg_text(&q.arguments, "x-dead-letter-exchange") == name)
                    .map(|q| format!("queue {} (dead-letter)", q.name)),
            );
            if !users.is_empty() {
                return Err(Msg::InUse(users.join(", ")));
            }
            let before = t.exchanges.len();
            t.exchanges.retain(|x| x.name != name);
            if t.exchanges.len() == before {
                return Err(Msg::Unknown(name.to_string()));
            }
            t.bindings
                .retain(|b| b.source != name && b.exchange.as_deref() != Some(name));
            plan.admin.push(Method::ExchangeDelete {
                exchange: name.to_string(),
                if_unused: false,
            });
        }
        Kind::Queue => {
            let before = t.queues.len();
            t.queues.retain(|q| q.name != name);
            if t.queues.len() == before {
                return Err(Msg::Unknown(name.to_string()));
            }
            t.bindings.retain(|b| b.queue.as_deref() != Some(name));
            plan.stop = consumers_of(sc, name);
            plan.sc.consumers.retain(|c| c.queue != name);
            plan.admin.push(Method::QueueDelete {
                queue: name.to_string(),
                if_unused: false,
                if_empty: false,
            });
        }
        Kind::Binding => {
            let Some(i) = t.bindings.iter().position(|b| binding_id(b) == name) else {
                return Err(Msg::Unknown(name.to_string()));
            };
            let b = t.bindings.remove(i);
            plan.admin.push(bind_method(&b, true));
        }
        Kind::Producer => {
            let before = plan.sc.producers.len();
            plan.sc.producers.retain(|p| p.name != name);
            if plan.sc.producers.len() == before {
                return Err(Msg::Unknown(name.to_string()));
            }
        }
        Kind::Consumer => {
            let before = plan.sc.consumers.len();
            plan.sc.consumers.retain(|c| c.name != name);
            if plan.sc.consumers.len() == before {
                return Err(Msg::Unknown(name.to_string()));
            }
            plan.stop.push(name.to_string());
        }
    }
    Ok(plan)
}

/// An imported or shared scenario made fit for the editor: its topology,
/// producers and consumers (a lesson's timeline, steps and checks dropped),
/// and the editor's tag so its share link opens here again.
pub fn adopt(mut sc: Scenario) -> Scenario {
    sc.timeline.clear();
    sc.steps.clear();
    sc.checks.clear();
    sc.consumers.truncate(MAX_CONSUMERS);
    if !sc.tags.iter().any(|t| t == EDITOR_TAG) {
        sc.tags.push(EDITOR_TAG.into());
    }
    sc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: Kind, sc: &Scenario, fields: &[(&str, &str)]) -> Form {
        let mut f = Form::new(kind, sc);
        for (k, v) in fields {
            f.set(k, v.to_string());
        }
        f
    }

    fn msgs(f: &Form, sc: &Scenario) -> Vec<(&'static str, Msg)> {
        f.problems(sc)
            .into_iter()
            .map(|p| (p.field, p.msg))
            .collect()
    }

    /// `orders` (topic) → `orders.new` (binding `order.*`), and `audit` (headers).
    fn shop() -> Scenario {
        let mut sc = empty();
        for (kind, fields) in [
            (Kind::Exchange, vec![("name", "orders"), ("type", "topic")]),
            (Kind::Exchange, vec![("name", "audit"), ("type", "headers")]),
            (Kind::Queue, vec![("name", "orders.new")]),
            (
                Kind::Binding,
                vec![
                    ("source", "orders"),
                    ("dest", "orders.new"),
                    ("key", "order.*"),
                ],
            ),
        ] {
            sc = form(kind, &sc, &fields).plan(&sc).expect("valid").sc;
        }
        sc
    }

    #[test]
    fn names_are_checked_before_anything_is_sent() {
        let sc = shop();
        let long = "x".repeat(256);
        for (name, want) in [
            ("orders", Msg::Duplicate),
            ("amq.mine", Msg::Reserved),
            (long.as_str(), Msg::TooLong(256)),
        ] {
            let f = form(Kind::Exchange, &sc, &[("name", name)]);
            assert_eq!(msgs(&f, &sc), vec![("name", want.clone())], "{name}");
            assert!(f.plan(&sc).is_err());
        }
        // 255 bytes of two-byte letters is over: bytes count, not characters.
        let f = form(Kind::Queue, &sc, &[("name", &"я".repeat(128))]);
        assert_eq!(msgs(&f, &sc), vec![("name", Msg::TooLong(256))]);
        let f = form(Kind::Queue, &sc, &[("name", "orders.new")]);
        assert_eq!(msgs(&f, &sc), vec![("name", Msg::Duplicate)]);
        // An empty name is "required", shown only once Save was pressed.
        let mut f = Form::new(Kind::Exchange, &sc);
        assert_eq!(msgs(&f, &sc), vec![("name", Msg::Required)]);
        assert!(f.shown_problems(&sc).is_empty());
        f.tried = true;
        assert_eq!(f.shown_problems(&sc).len(), 1);
        // The name of something being changed cannot be typed over.
        let mut f = Form::edit(Kind::Exchange, "orders", &sc).expect("exists");
        f.set("name", "other".into());
        assert_eq!(f.get("name"), "orders");
        assert!(f.problems(&sc).is_empty());
    }

    #[test]
    fn queue_arguments_are_checked() {
        let sc = shop();
        type Case<'a> = (&'a [(&'a str, &'a str)], Vec<(&'a str, Msg)>);
        let cases: [Case; 6] = [
            (&[("ttl", "-5")], vec![("ttl", Msg::Negative)]),
            (&[("ttl", "soon")], vec![("ttl", Msg::NotNumber)]),
            (
                &[("max_priority", "300")],
                vec![("max_priority", Msg::Range(1, 255))],
            ),
            (&[("dlk", "retry")], vec![("dlk", Msg::DlkWithoutDlx)]),
            (
                &[("dlx", "nowhere")],
                vec![("dlx", Msg::Unknown("nowhere".into()))],
            ),
            (&[("max_length", "-1")], vec![("max_length", Msg::Negative)]),
        ];
        for (fields, want) in cases {
            let mut all = vec![("name", "q")];
            all.extend_from_slice(fields);
            let f = form(Kind::Queue, &sc, &all);
            assert_eq!(msgs(&f, &sc), want, "{fields:?}");
        }
        let f = form(
            Kind::Queue,
            &sc,
            &[
                ("name", "work"),
                ("ttl", "5000"),
                ("max_length", "3"),
                ("overflow", "reject-publish"),
                ("dlx", "audit"),
                ("dlk", "dead"),
                ("max_priority", "10"),
                ("sac", "true"),
            ],
        );
        let plan = f.plan(&sc).expect("valid");
        let q = plan.sc.topology.queues.last().expect("added");
        let args = Value::Object(q.arguments.clone());
        assert_eq!(
            args,
            serde_json::json!({"x-message-ttl": 5000, "x-max-length": 3, "x-overflow": "reject-publish",
                "x-dead-letter-exchange": "audit", "x-dead-letter-routing-key": "dead",
                "x-max-priority": 10, "x-single-active-consumer": true})
        );
        assert!(
            matches!(&plan.admin[..], [Method::QueueDeclare { queue, arguments, .. }] if queue == "work" && arguments.len() == 7)
        );
        // And back into a form for changing it.
        let f = Form::edit(Kind::Queue, "work", &plan.sc).expect("exists");
        assert_eq!(
            (f.get("ttl"), f.get("sac"), f.get("dlx")),
            ("5000", "true", "audit")
        );
    }

    #[test]
    fn binding_keys_and_headers_are_explained() {
        let sc = shop();
        let bind = |fields: &[(&str, &str)]| form(Kind::Binding, &sc, fields);
        let f = bind(&[
            ("source", "orders"),
            ("dest", "orders.new"),
            ("key", "order.new*"),
        ]);
        assert_eq!(
            msgs(&f, &sc),
            vec![("key", Msg::WildcardWord("new*".into()))]
        );
        let f = bind(&[
            ("source", "orders"),
            ("dest", "orders.new"),
            ("key", "order.*"),
        ]);
        assert_eq!(msgs(&f, &sc), vec![("key", Msg::BindingExists)]);
        let f = bind(&[
            ("source", "orders"),
            ("dest", "orders.new"),
            ("key", "#.paid"),
        ]);
        assert!(msgs(&f, &sc).is_empty());
        let f = bind(&[("source", "audit"), ("dest", "orders.new")]);
        assert_eq!(msgs(&f, &sc), vec![("headers", Msg::HeadersEmpty)]);
        let f = bind(&[
            ("source", "audit"),
            ("dest", "orders.new"),
            ("headers", "format pdf"),
        ]);
        assert_eq!(
            msgs(&f, &sc),
            vec![("headers", Msg::HeaderSyntax("format pdf".into()))]
        );
        let f = bind(&[("source", ""), ("dest", "orders.new")]);
        assert_eq!(msgs(&f, &sc), vec![("source", Msg::DefaultBind)]);
        let f = bind(&[
            ("source", "orders"),
            ("dest_kind", "exchange"),
            ("dest", "nope"),
        ]);
        assert_eq!(msgs(&f, &sc), vec![("dest", Msg::Unknown("nope".into()))]);
        assert_eq!(
            key_problem(ExchangeKind::Direct, "order.*"),
            Some(Msg::WildcardDirect)
        );
        assert_eq!(key_problem(ExchangeKind::Fanout, "a*"), None);
        // A headers binding: its arguments carry x-match; its key field is not shown.
        let f = bind(&[
            ("source", "audit"),
            ("dest", "orders.new"),
            ("headers", "format=pdf, lang = uk"),
            ("x_match", "any"),
        ]);
        let names: Vec<_> = f.fields(&sc).iter().map(|f| f.name).collect();
        assert_eq!(names, ["source", "dest_kind", "dest", "x_match", "headers"]);
        let plan = f.plan(&sc).expect("valid");
        assert_eq!(
            Value::Object(plan.sc.topology.bindings[1].arguments.clone()),
            serde_json::json!({"format": "pdf", "lang": "uk", "x-match": "any"})
        );
        assert!(
            matches!(&plan.admin[..], [Method::QueueBind { exchange, .. }] if exchange == "audit")
        );
        // An exchange-to-exchange binding.
        let mut f = bind(&[("source", "orders"), ("key", "#")]);
        f.set("dest_kind", "exchange".into());
        f.fix_dest(&sc);
        assert_eq!(f.get("dest"), "orders");
        f.set("dest", "audit".into());
        let plan = f.plan(&sc).expect("valid");
        assert!(
            matches!(&plan.admin[..], [Method::ExchangeBind { destination, source, .. }] if destination == "audit" && source == "orders")
        );
    }

    #[test]
    fn producers_and_consumers() {
        let sc = shop();
        let f = form(
            Kind::Producer,
            &sc,
            &[
                ("exchange", "orders"),
                ("key", "order.new"),
                ("headers", "a=1"),
                ("priority", "-1"),
            ],
        );
        assert_eq!(msgs(&f, &sc), vec![("priority", Msg::Negative)]);
        let f = form(
            Kind::Producer,
            &sc,
            &[
                ("exchange", "orders"),
                ("key", "order.new"),
                ("persistent", "true"),
                ("expiration", "60000"),
            ],
        );
        let plan = f.plan(&sc).expect("valid");
        assert!(plan.admin.is_empty());
        let p = &plan.sc.producers[0];
        assert_eq!((p.name.as_str(), p.count), ("producer-1", 1));
        assert_eq!(p.properties.delivery_mode, Some(2));
        assert_eq!(p.properties.expiration_ms, Some(60000));
        let sc = plan.sc;
        let f = form(
            Kind::Consumer,
            &sc,
            &[("on_message", "reject"), ("prefetch", "70000")],
        );
        assert_eq!(msgs(&f, &sc), vec![("prefetch", Msg::Range(0, 65535))]);
        let f = form(Kind::Consumer, &sc, &[("on_message", "reject")]);
        let plan = f.plan(&sc).expect("valid");
        assert_eq!(plan.start, ["consumer-1"]);
        let c = &plan.sc.consumers[0];
        assert_eq!(
            (c.queue.as_str(), c.prefetch, on_message_of(c)),
            ("orders.new", 1, "reject")
        );
        // The whole thing is a valid scenario (export, share link).
        assert_eq!(sim_core::scenario::validate(&plan.sc), vec![]);
    }

    #[test]
    fn an_edited_binding_unbinds_the_old_then_binds_the_new() {
        let mut sc = shop();
        sc = form(Kind::Queue, &sc, &[("name", "orders.all")])
            .plan(&sc)
            .expect("valid")
            .sc;
        sc = form(
            Kind::Binding,
            &sc,
            &[("source", "orders"), ("dest", "orders.all"), ("key", "#")],
        )
        .plan(&sc)
        .expect("valid")
        .sc;
        let id = binding_id(&sc.topology.bindings[0]);
        let mut f = Form::edit(Kind::Binding, &id, &sc).expect("a binding form");
        assert_eq!(
            (
                f.get("source"),
                f.get("dest_kind"),
                f.get("dest"),
                f.get("key")
            ),
            ("orders", "queue", "orders.new", "order.*")
        );
        // Unchanged: valid (not a duplicate of itself) and nothing to send.
        assert_eq!(msgs(&f, &sc), vec![]);
        let plan = f.plan(&sc).expect("valid");
        assert!(plan.admin.is_empty() && plan.sc == sc);
        // The same inline checks as a new binding.
        f.set("key", "order.new*".into());
        assert_eq!(
            msgs(&f, &sc),
            vec![("key", Msg::WildcardWord("new*".into()))]
        );
        f.set("dest", "orders.all".into());
        f.set("key", "#".into());
        assert_eq!(msgs(&f, &sc), vec![("key", Msg::BindingExists)]);
        f.set("key", "order.paid".into());
        let plan = f.plan(&sc).expect("valid");
        match &plan.admin[..] {
            [Method::QueueUnbind {
                queue: q0,
                routing_key: k0,
                ..
            }, Method::QueueBind {
                queue: q1,
                routing_key: k1,
                ..
            }] => assert_eq!(
                (q0.as_str(), k0.as_str(), q1.as_str(), k1.as_str()),
                ("orders.new", "order.*", "orders.all", "order.paid")
            ),
            other => panic!("not unbind + bind: {other:?}"),
        }
        // Changed in place: still two bindings, the old one gone.
        let keys: Vec<_> = plan
            .sc
            .topology
            .bindings
            .iter()
            .map(|b| b.routing_key.as_str())
            .collect();
        assert_eq!(keys, ["order.paid", "#"]);
        // A binding deleted meanwhile cannot be saved.
        let gone = delete(&sc, Kind::Binding, &id).expect("deleted").sc;
        assert!(f.plan(&gone).is_err());
        assert!(Form::edit(Kind::Binding, "nope", &sc).is_none());
        // A headers binding reads back its table and match.
        let sc = form(
            Kind::Binding,
            &sc,
            &[
                ("source", "audit"),
                ("dest", "orders.new"),
                ("headers", "format=pdf, lang=en"),
                ("x_match", "any"),
            ],
        )
        .plan(&sc)
        .expect("valid")
        .sc;
        let hb = sc.topology.bindings.last().expect("bound");
        let f = Form::edit(Kind::Binding, &binding_id(hb), &sc).expect("a form");
        assert_eq!(
            (f.get("headers"), f.get("x_match")),
            ("format=pdf, lang=en", "any")
        );
        assert_eq!(msgs(&f, &sc), vec![]);
    }

    #[test]
    fn a_producer_rate_is_messages_per_second() {
        for (typed, want) in [
            ("", Ok(0)),
            ("0", Ok(0)),
            ("1", Ok(1000)),
            ("2", Ok(500)),
            ("0.5", Ok(2000)),
            ("0,5", Ok(2000)),
            (" 3 ", Ok(333)),
            ("20", Ok(50)),
            ("21", Err(Msg::Range(0, MAX_RATE))),
            ("0.0001", Err(Msg::Range(0, MAX_RATE))),
            ("-1", Err(Msg::Negative)),
            ("abc", Err(Msg::NotNumber)),
            ("1.2.3", Err(Msg::NotNumber)),
            (".", Err(Msg::NotNumber)),
            ("99999999999999999999", Err(Msg::NotNumber)),
        ] {
            assert_eq!(rate_interval(typed), want, "{typed:?}");
        }
        for (interval, shown) in [
            (0, "0"),
            (1000, "1"),
            (500, "2"),
            (333, "3"),
            (2000, "0.5"),
            (4000, "0.25"),
            (143, "7"),
        ] {
            assert_eq!(rate_text(interval), shown, "{interval}");
            assert_eq!(rate_interval(shown), Ok(interval));
        }
        let sc = shop();
        let f = form(
            Kind::Producer,
            &sc,
            &[("exchange", "orders"), ("rate", "x")],
        );
        assert_eq!(msgs(&f, &sc), vec![("rate", Msg::NotNumber)]);
        let f = form(
            Kind::Producer,
            &sc,
            &[("exchange", "orders"), ("rate", "4")],
        );
        let sc = f.plan(&sc).expect("valid").sc;
        assert_eq!(sc.producers[0].interval_ms, 250);
        let f = Form::edit(Kind::Producer, "producer-1", &sc).expect("a form");
        assert_eq!(f.get("rate"), "4");
        assert_eq!(sim_core::scenario::validate(&sc), vec![]);
    }

    #[test]
    fn changing_an_exchange_declares_it_again_with_its_bindings() {
        let sc = shop();
        let mut f = Form::edit(Kind::Exchange, "orders", &sc).expect("exists");
        f.set("durable", "true".into());
        let plan = f.plan(&sc).expect("valid");
        let ops: Vec<_> = plan.admin.iter().map(Method::op).collect();
        assert_eq!(ops, ["exchange_delete", "exchange_declare", "queue_bind"]);
        // Unchanged: nothing to do.
        let f = Form::edit(Kind::Exchange, "orders", &sc).expect("exists");
        assert!(f.plan(&sc).expect("valid").admin.is_empty());
    }

    #[test]
    fn deletes_cascade_or_say_what_still_uses_it() {
        let mut sc = shop();
        sc = form(Kind::Producer, &sc, &[("exchange", "orders")])
            .plan(&sc)
            .expect("ok")
            .sc;
        sc = form(Kind::Consumer, &sc, &[]).plan(&sc).expect("ok").sc;
        let Err(Msg::InUse(by)) = delete(&sc, Kind::Exchange, "orders") else {
            panic!("deleting a producer's exchange");
        };
        assert!(by.contains("producer-1"), "{by}");
        let plan = delete(&sc, Kind::Queue, "orders.new").expect("ok");
        assert!(plan.sc.topology.bindings.is_empty() && plan.sc.consumers.is_empty());
        assert_eq!(plan.stop, ["consumer-1"]);
        let id = binding_id(&sc.topology.bindings[0]);
        let plan = delete(&sc, Kind::Binding, &id).expect("ok");
        assert!(
            matches!(&plan.admin[..], [Method::QueueUnbind { routing_key, .. }] if routing_key == "order.*")
        );
        assert_eq!(
            delete(&sc, Kind::Queue, "nope"),
            Err(Msg::Unknown("nope".into()))
        );
        let plan = delete(&sc, Kind::Exchange, "audit").expect("ok");
        assert_eq!(plan.sc.topology.exchanges.len(), 1);
    }

    #[test]
    fn every_label_the_build_page_uses_exists() {
        let mut keys = std::collections::BTreeSet::new();
        for row in LABELS {
            assert!(keys.insert(row[0]), "duplicate {}", row[0]);
            assert!(row.iter().all(|s| !s.is_empty()), "{row:?}");
        }
        let src = include_str!("workbench_view.rs");
        let mut missing = Vec::new();
        for part in src.split("tr(lang, \"").skip(1) {
            let key = part.split('"').next().unwrap_or_default();
            if label(Lang::En, key) == "?" {
                missing.push(key);
            }
        }
        for k in Kind::ALL {
            for f in field_names(k) {
                if label(Lang::Uk, &format!("f-{f}")) == "?" {
                    missing.push(f);
                }
            }
        }
        assert!(missing.is_empty(), "missing Build strings: {missing:?}");
    }

    #[test]
    fn every_message_reads_in_every_language() {
        let all = [
            Msg::Required,
            Msg::Reserved,
            Msg::TooLong(300),
            Msg::Duplicate,
            Msg::NotNumber,
            Msg::Negative,
            Msg::Range(1, 2),
            Msg::DlkWithoutDlx,
            Msg::Unknown("x".into()),
            Msg::WildcardWord("a*".into()),
            Msg::WildcardDirect,
            Msg::HeadersEmpty,
            Msg::HeaderSyntax("x".into()),
            Msg::DefaultBind,
            Msg::BindingExists,
            Msg::TooManyConsumers,
            Msg::InUse("x".into()),
        ];
        for m in all {
            let texts: Vec<String> = crate::i18n::LANGS.iter().map(|l| m.text(*l)).collect();
            assert!(texts.iter().all(|t| t.len() > 5), "{m:?}");
            assert_ne!(texts[0], texts[1], "{m:?}");
        }
    }
}
