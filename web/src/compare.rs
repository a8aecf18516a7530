//! Compare: one scenario played in the simulation and on RabbitMQ, the two
//! outcomes side by side with every difference marked. Pure (no browser API),
//! tested natively; `compare_view` drives the real run over the bridge.
//!
//! Both runs are the same `sim_core::scenario::ScenarioRun` engine, so every
//! difference is the broker's: the simulation runs on its virtual clock
//! (instantly), RabbitMQ on the wall clock through `/ws`, requests paced at
//! [`REAL_REQUESTS_PER_SEC`] as lessons are. The outcome is the run's
//! [`Report`] (per consumer, producer and queue, errors, checks) and the
//! client-visible event sequence: deliveries, returns, confirms, errors and
//! closes, without ids, tags or times (which no two brokers share).

use sim_core::protocol::{Event, ReplyResult, Request, ServerFrame};
use sim_core::scenario::{Report, Scenario, ScenarioRun};
use sim_core::Broker;

use crate::i18n::{t, Lang};
use crate::inspector::fill;

/// Real runs are paced like real-mode lessons (the bridge limits a session's rate).
pub const REAL_REQUESTS_PER_SEC: u32 = 40;
/// Event lines kept per side (the alignment is quadratic in them).
pub const MAX_EVENT_LINES: usize = 1500;
/// Two times are "the same" within this fraction (or [`TIME_SLACK_MS`]):
/// wall-clock runs jitter; the checks have their own tolerances.
pub const TIME_TOLERANCE: f64 = 0.10;
pub const TIME_SLACK_MS: u64 = 100;
/// Driver iterations of the simulated run at most (a runaway scenario stops).
const MAX_STEPS: usize = 5_000_000;

/// The compare panel's page strings, `[key, en, ru, uk]` (read by `i18n::t`).
pub const STRINGS: &[[&str; 4]] = &[
    ["cmp-open", "Compare sim ↔ real", "Сравнить sim ↔ real", "Порівняти sim ↔ real"],
    ["cmp-title", "Simulation vs RabbitMQ", "Симуляция и RabbitMQ", "Симуляція та RabbitMQ"],
    ["cmp-sim", "Simulation", "Симуляция", "Симуляція"],
    ["cmp-real", "RabbitMQ (real)", "RabbitMQ (реальный)", "RabbitMQ (справжній)"],
    [
        "cmp-running",
        "running on RabbitMQ…",
        "идёт на RabbitMQ…",
        "виконується на RabbitMQ…",
    ],
    [
        "cmp-connecting",
        "connecting to the bridge…",
        "подключение к мосту…",
        "підключення до мосту…",
    ],
    [
        "cmp-failed",
        "The real run could not be made",
        "Реальный прогон не удался",
        "Справжній прогін не вдався",
    ],
    ["cmp-same", "Same outcome", "Одинаковый результат", "Однаковий результат"],
    ["cmp-differences", "differences", "различий", "відмінностей"],
    ["cmp-outcome", "Outcome", "Результат", "Результат"],
    [
        "cmp-events",
        "Event sequence",
        "Последовательность событий",
        "Послідовність подій",
    ],
    [
        "cmp-events-hint",
        "What the clients saw, in order, without ids, tags and times. Marked lines are in one run only.",
        "Что видели клиенты, по порядку, без id, тегов и времени. Отмеченные строки есть только в одном прогоне.",
        "Що бачили клієнти, по порядку, без id, тегів і часу. Позначені рядки є лише в одному прогоні.",
    ],
    [
        "cmp-time-hint",
        "times are equal within 10 % or 0.1 s (RabbitMQ runs on the wall clock)",
        "время считается равным в пределах 10 % или 0,1 с (RabbitMQ идёт по настоящим часам)",
        "час вважається рівним у межах 10 % або 0,1 с (RabbitMQ іде за справжнім годинником)",
    ],
    ["cmp-again", "Run again", "Запустить снова", "Запустити знову"],
    ["cmp-r-completed", "run completed", "прогон завершён", "прогін завершено"],
    ["cmp-r-checks", "checks passed", "проверок пройдено", "перевірок пройдено"],
    ["cmp-r-check", "check {0}", "проверка {0}", "перевірка {0}"],
    ["cmp-r-consumer", "consumer {0}: {1}", "consumer {0}: {1}", "consumer {0}: {1}"],
    ["cmp-f-received", "received", "получено", "отримано"],
    [
        "cmp-f-redelivered",
        "redelivered",
        "доставлено повторно",
        "доставлено повторно",
    ],
    ["cmp-f-processed", "processed", "обработано", "оброблено"],
    ["cmp-f-failed", "failed", "с ошибкой", "з помилкою"],
    ["cmp-f-forwarded", "forwarded", "переслано", "переслано"],
    [
        "cmp-f-replies",
        "replies sent",
        "ответов отправлено",
        "відповідей надіслано",
    ],
    ["cmp-v-published", "{0} published", "опубликовано {0}", "опубліковано {0}"],
    [
        "cmp-v-confirms",
        ", {0} acked, {1} nacked",
        ", ack {0}, nack {1}",
        ", ack {0}, nack {1}",
    ],
    ["cmp-v-returned", ", {0} returned", ", возвращено {0}", ", повернуто {0}"],
    [
        "cmp-r-queue",
        "queue {0}: ready at the end",
        "очередь {0}: готово в конце",
        "черга {0}: готові наприкінці",
    ],
    ["cmp-v-gone", "gone", "удалена", "видалена"],
    ["cmp-r-errors", "errors", "ошибки", "помилки"],
    ["cmp-v-none", "none", "нет", "немає"],
    ["cmp-r-time", "total time", "общее время", "загальний час"],
    ["cmp-v-yes", "yes", "да", "так"],
    ["cmp-v-no", "no", "нет", "ні"],
    [
        "cmp-no-bridge",
        "the bridge is unreachable: {0}",
        "мост недоступен: {0}",
        "міст недоступний: {0}",
    ],
    [
        "cmp-no-broker",
        "the bridge answers but RabbitMQ does not: {0}",
        "мост отвечает, а RabbitMQ нет: {0}",
        "міст відповідає, а RabbitMQ ні: {0}",
    ],
    [
        "cmp-timeout",
        "RabbitMQ did not finish the run within {0} s",
        "RabbitMQ не закончил прогон за {0} с",
        "RabbitMQ не завершив прогін за {0} с",
    ],
];

/// One run's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub report: Report,
    /// Client-visible events, in order (at most [`MAX_EVENT_LINES`]).
    pub events: Vec<String>,
    /// More events happened than are kept.
    pub truncated: bool,
}

/// Turns frames into event lines (request ids become op names).
#[derive(Default)]
struct Recorder {
    /// Requests awaiting their reply: (id, op). Few at a time (a plain list
    /// keeps one more map type out of the bundle).
    ops: Vec<(u64, &'static str)>,
    events: Vec<String>,
    truncated: bool,
}

impl Recorder {
    fn sent(&mut self, req: &Request) {
        self.ops.push((req.id, req.method.op()));
    }

    fn take_op(&mut self, id: u64) -> Option<&'static str> {
        let i = self.ops.iter().position(|(r, _)| *r == id)?;
        Some(self.ops.swap_remove(i).1)
    }

    fn frame(&mut self, f: &ServerFrame) {
        let line = match &f.event {
            Event::Deliver {
                consumer_tag,
                redelivered,
                routing_key,
                message,
                ..
            } => Some(format!(
                "deliver → {consumer_tag} [{routing_key}]: {}{}",
                message.body,
                if *redelivered { " (redelivered)" } else { "" }
            )),
            Event::Return {
                reply_code,
                reply_text,
                routing_key,
                message,
                ..
            } => Some(format!(
                "returned {reply_code} {reply_text} [{routing_key}]: {}",
                message.body
            )),
            Event::Confirm { ack, .. } => {
                Some(format!("confirm {}", if *ack { "ack" } else { "nack" }))
            }
            Event::Closed { channel, error, .. } => Some(format!(
                "{} closed: {} {}",
                if channel.is_some() {
                    "channel"
                } else {
                    "connection"
                },
                error.code,
                error.name
            )),
            Event::ConsumerCancelled { consumer_tag, .. } => {
                Some(format!("consumer {consumer_tag} cancelled"))
            }
            Event::Reply {
                id,
                result: ReplyResult::Error(e),
            } => {
                let op = self.take_op(*id);
                Some(format!(
                    "{} refused: {} {}",
                    op.unwrap_or("request"),
                    e.code,
                    e.name
                ))
            }
            Event::Reply { id, .. } => {
                self.take_op(*id);
                None
            }
            Event::ProtocolError { message, .. } => Some(format!("protocol error: {message}")),
            // The simulation's explanations and the bridge's link reports
            // exist on one side only by design.
            Event::Trace(_) | Event::Status { .. } => None,
        };
        if let Some(line) = line {
            if self.events.len() < MAX_EVENT_LINES {
                self.events.push(line);
            } else {
                self.truncated = true;
            }
        }
    }

    fn outcome(self, report: Report) -> Outcome {
        Outcome {
            report,
            events: self.events,
            truncated: self.truncated,
        }
    }
}

/// Plays `sc` in the simulation, instantly (as `run_simulated` does), and
/// keeps its event sequence.
pub fn simulate(sc: &Scenario) -> Outcome {
    let mut broker = Broker::new(sc.seed);
    let mut run = ScenarioRun::new(sc.clone());
    let mut rec = Recorder::default();
    run.handle_timeout(broker.now_ms());
    for _ in 0..MAX_STEPS {
        while let Some(req) = run.poll_request() {
            rec.sent(&req);
            broker.handle_request(req);
            while let Some(frame) = broker.poll_event() {
                rec.frame(&frame);
                run.handle_frame(&frame);
            }
        }
        while run.poll_note().is_some() {}
        if run.is_done() {
            break;
        }
        let now = broker.now_ms();
        let next = match (run.poll_timeout(), broker.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        let next = next.max(now);
        broker.handle_timeout(next);
        while let Some(frame) = broker.poll_event() {
            rec.frame(&frame);
            run.handle_frame(&frame);
        }
        run.handle_timeout(next);
    }
    rec.outcome(run.report())
}

/// The real run: the same engine on the page's wall clock. The shell sends
/// what [`RealRun::requests`] returns through a bridge link and feeds back
/// every frame and tick; frames are stamped with the page clock on arrival.
pub struct RealRun {
    run: ScenarioRun,
    rec: Recorder,
}

impl RealRun {
    /// Starts at page time `now_ms` (ms since the comparison began).
    pub fn new(sc: &Scenario, now_ms: u64) -> RealRun {
        let mut run = ScenarioRun::new(sc.clone());
        run.set_max_requests_per_sec(Some(REAL_REQUESTS_PER_SEC));
        run.handle_timeout(now_ms);
        RealRun {
            run,
            rec: Recorder::default(),
        }
    }

    /// What to send now.
    pub fn requests(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        while let Some(req) = self.run.poll_request() {
            self.rec.sent(&req);
            out.push(req);
        }
        while self.run.poll_note().is_some() {}
        out
    }

    pub fn frame(&mut self, mut frame: ServerFrame, now_ms: u64) {
        frame.at_ms = now_ms.max(self.run.now_ms());
        self.rec.frame(&frame);
        self.run.handle_frame(&frame);
    }

    pub fn tick(&mut self, now_ms: u64) {
        self.run.handle_timeout(now_ms.max(self.run.now_ms()));
    }

    /// When the engine next needs a tick (page time), if ever.
    pub fn next_tick_ms(&self) -> Option<u64> {
        self.run.poll_timeout()
    }

    pub fn is_done(&self) -> bool {
        self.run.is_done()
    }

    /// Scenario time so far, ms.
    pub fn elapsed_ms(&self) -> u64 {
        self.run.elapsed_ms()
    }

    /// The run's limit (`run.max_ms` of the scenario).
    pub fn max_ms(&self) -> u64 {
        self.run.scenario().run.max_ms
    }

    pub fn outcome(self) -> Outcome {
        let report = self.run.report();
        self.rec.outcome(report)
    }
}

/// How a row's two values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Exact,
    /// Times in ms: equal within [`TIME_TOLERANCE`] or [`TIME_SLACK_MS`].
    Time,
}

/// One line of the outcome table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub sim: String,
    pub real: String,
    pub kind: RowKind,
    pub same: bool,
}

/// One line of the aligned event sequences: a line both runs have, or one
/// that only one has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aligned {
    Both(String),
    SimOnly(String),
    RealOnly(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub events: Vec<Aligned>,
    /// Rows that differ.
    pub row_differences: usize,
    /// Event lines in one run only.
    pub event_differences: usize,
}

impl Comparison {
    pub fn differences(&self) -> usize {
        self.row_differences + self.event_differences
    }
}

fn exact(rows: &mut Vec<Row>, label: String, sim: String, real: String) {
    let same = sim == real;
    rows.push(Row {
        label,
        sim,
        real,
        kind: RowKind::Exact,
        same,
    });
}

fn time_same(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let slack = ((a.max(b) as f64) * TIME_TOLERANCE).max(TIME_SLACK_MS as f64);
            (a.abs_diff(b) as f64) <= slack
        }
        (None, None) => true,
        _ => false,
    }
}

fn ms(v: Option<u64>, lang: Lang) -> String {
    v.map_or_else(|| "—".to_string(), |v| crate::i18n::seconds(v, 1, lang))
}

/// The outcome table of one scenario's two runs, worded in `lang`.
pub fn outcome_rows(sim: &Report, real: &Report, lang: Lang) -> Vec<Row> {
    let yes = |b: bool| t(lang, if b { "cmp-v-yes" } else { "cmp-v-no" }).to_string();
    let mut rows = Vec::new();
    exact(
        &mut rows,
        t(lang, "cmp-r-completed").into(),
        yes(sim.completed),
        yes(real.completed),
    );
    let passed = |r: &Report| {
        format!(
            "{} / {}",
            r.checks.iter().filter(|c| c.passed).count(),
            r.checks.len()
        )
    };
    exact(
        &mut rows,
        t(lang, "cmp-r-checks").into(),
        passed(sim),
        passed(real),
    );
    for (i, c) in sim.checks.iter().enumerate() {
        let other = real.checks.get(i);
        let show = |c: &sim_core::scenario::CheckResult| {
            format!("{} ({})", if c.passed { "✓" } else { "✗" }, c.got)
        };
        let label = fill(t(lang, "cmp-r-check"), &[&c.label]);
        let real_text = other.map_or_else(|| "—".to_string(), show);
        if c.label.contains("time") {
            let same = other.is_some_and(|o| o.passed == c.passed);
            rows.push(Row {
                label,
                sim: show(c),
                real: real_text,
                kind: RowKind::Time,
                same,
            });
        } else {
            exact(&mut rows, label, show(c), real_text);
        }
    }
    let mut names: Vec<&str> = sim.consumers.iter().map(|c| c.name.as_str()).collect();
    for c in &real.consumers {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    for name in names {
        let s = sim.consumers.iter().find(|c| c.name == name);
        let r = real.consumers.iter().find(|c| c.name == name);
        type Field = fn(&sim_core::scenario::ConsumerReport) -> u64;
        let fields: [(&str, Field); 6] = [
            ("cmp-f-received", |c| c.received),
            ("cmp-f-redelivered", |c| c.redelivered),
            ("cmp-f-processed", |c| c.processed),
            ("cmp-f-failed", |c| c.failed),
            ("cmp-f-forwarded", |c| c.forwarded),
            ("cmp-f-replies", |c| c.replies_sent),
        ];
        for (what, f) in fields {
            let (a, b) = (s.map(f), r.map(f));
            if a.unwrap_or(0) == 0 && b.unwrap_or(0) == 0 && what != "cmp-f-received" {
                continue;
            }
            let show = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
            exact(
                &mut rows,
                fill(t(lang, "cmp-r-consumer"), &[name, t(lang, what)]),
                show(a),
                show(b),
            );
        }
    }
    for p in &sim.producers {
        let r = real.producers.iter().find(|q| q.name == p.name);
        let show = |p: Option<&sim_core::scenario::ProducerReport>| {
            p.map_or_else(
                || "—".to_string(),
                |p| {
                    let n = |v: u64| v.to_string();
                    let mut s = fill(t(lang, "cmp-v-published"), &[&n(p.published)]);
                    if p.confirmed_ack + p.confirmed_nack > 0 {
                        let (a, b) = (n(p.confirmed_ack), n(p.confirmed_nack));
                        s.push_str(&fill(t(lang, "cmp-v-confirms"), &[&a, &b]));
                    }
                    if p.returned > 0 {
                        s.push_str(&fill(t(lang, "cmp-v-returned"), &[&n(p.returned)]));
                    }
                    s
                },
            )
        };
        exact(
            &mut rows,
            format!("producer {}", p.name),
            show(Some(p)),
            show(r),
        );
    }
    for q in &sim.queues {
        let r = real.queues.iter().find(|x| x.name == q.name);
        let show = |v: Option<Option<u64>>| match v {
            None => "—".to_string(),
            Some(None) => t(lang, "cmp-v-gone").to_string(),
            Some(Some(n)) => n.to_string(),
        };
        exact(
            &mut rows,
            fill(t(lang, "cmp-r-queue"), &[&q.name]),
            show(Some(q.ready)),
            show(r.map(|r| r.ready)),
        );
    }
    let errors = |r: &Report| {
        if r.errors.is_empty() {
            t(lang, "cmp-v-none").to_string()
        } else {
            r.errors.join("; ")
        }
    };
    exact(
        &mut rows,
        t(lang, "cmp-r-errors").into(),
        errors(sim),
        errors(real),
    );
    let same = time_same(sim.total_time_ms, real.total_time_ms);
    rows.push(Row {
        label: t(lang, "cmp-r-time").into(),
        sim: ms(sim.total_time_ms, lang),
        real: ms(real.total_time_ms, lang),
        kind: RowKind::Time,
        same,
    });
    rows
}

/// Aligns two sequences on their longest common subsequence.
pub fn align(sim: &[String], real: &[String]) -> Vec<Aligned> {
    let (n, m) = (sim.len(), real.len());
    // lcs[i][j]: LCS length of sim[i..] and real[j..].
    let width = m + 1;
    let mut lcs = vec![0u16; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * width + j] = if sim[i] == real[j] {
                lcs[(i + 1) * width + j + 1].saturating_add(1)
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if sim[i] == real[j] {
            out.push(Aligned::Both(sim[i].clone()));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
            out.push(Aligned::SimOnly(sim[i].clone()));
            i += 1;
        } else {
            out.push(Aligned::RealOnly(real[j].clone()));
            j += 1;
        }
    }
    out.extend(sim[i..].iter().cloned().map(Aligned::SimOnly));
    out.extend(real[j..].iter().cloned().map(Aligned::RealOnly));
    out
}

/// The two outcomes side by side (the rows in English; the page words
/// them anew in its language with [`outcome_rows`]).
pub fn compare(sim: &Outcome, real: &Outcome) -> Comparison {
    let rows = outcome_rows(&sim.report, &real.report, Lang::En);
    let events = align(&sim.events, &real.events);
    Comparison {
        row_differences: rows.iter().filter(|r| !r.same).count(),
        event_differences: events
            .iter()
            .filter(|e| !matches!(e, Aligned::Both(_)))
            .count(),
        rows,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::builtin_lessons;

    fn lesson(id: &str) -> Scenario {
        builtin_lessons()
            .into_iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no lesson {id}"))
    }

    /// The real driver against the simulated broker (as if it were RabbitMQ,
    /// frames one poll late): the very outcome `simulate` gives.
    fn real_run_against_the_sim(sc: &Scenario) -> Outcome {
        let mut broker = Broker::new(sc.seed);
        let mut run = RealRun::new(sc, 0);
        let mut now = 0u64;
        while !run.is_done() && now < 600_000 {
            for req in run.requests() {
                broker.handle_request(req);
            }
            while let Some(f) = broker.poll_event() {
                run.frame(f, now);
            }
            now += 5;
            broker.handle_timeout(now);
            while let Some(f) = broker.poll_event() {
                run.frame(f, now);
            }
            run.tick(now);
        }
        run.outcome()
    }

    #[test]
    fn the_same_broker_twice_has_no_difference() {
        for id in ["hello-world", "routing-direct", "mandatory-returns"] {
            let sc = lesson(id);
            let sim = simulate(&sc);
            assert!(
                sim.report.passed(),
                "{id}: {:?}",
                sim.report.first_failure()
            );
            assert!(!sim.events.is_empty());
            let real = real_run_against_the_sim(&sc);
            let c = compare(&sim, &real);
            let diff: Vec<_> = c.rows.iter().filter(|r| !r.same).collect();
            assert_eq!(c.differences(), 0, "{id}: {diff:?} {:?}", c.events);
            assert!(c.events.iter().all(|e| matches!(e, Aligned::Both(_))));
        }
    }

    #[test]
    fn every_difference_is_marked() {
        let sc = lesson("hello-world");
        let sim = simulate(&sc);
        let mut real = sim.clone();
        real.report.consumers[0].received += 1;
        real.report.queues[0].ready = Some(3);
        real.report.errors.push("406 PRECONDITION_FAILED".into());
        real.events.remove(0);
        real.events.push("confirm nack".into());
        let c = compare(&sim, &real);
        let differing: Vec<&str> = c
            .rows
            .iter()
            .filter(|r| !r.same)
            .map(|r| r.label.as_str())
            .collect();
        assert!(differing.iter().any(|l| l.ends_with(": received")));
        assert!(differing.iter().any(|l| l.contains("ready at the end")));
        assert!(differing.contains(&"errors"));
        assert_eq!(c.row_differences, differing.len());
        assert_eq!(c.event_differences, 2);
        assert_eq!(
            c.events.first(),
            Some(&Aligned::SimOnly(sim.events[0].clone()))
        );
        assert_eq!(
            c.events.last(),
            Some(&Aligned::RealOnly("confirm nack".into()))
        );
    }

    /// The page words the table in its language: the same rows, the same
    /// marks, no English label left (names and numbers aside).
    #[test]
    fn the_table_reads_in_russian_with_the_same_marks() {
        let sc = lesson("mandatory-returns");
        let sim = simulate(&sc);
        let mut real = sim.clone();
        real.report.consumers[0].received += 1;
        let (en, ru) = (
            outcome_rows(&sim.report, &real.report, Lang::En),
            outcome_rows(&sim.report, &real.report, Lang::Ru),
        );
        assert_eq!(en.len(), ru.len());
        for (e, r) in en.iter().zip(&ru) {
            assert_eq!(
                (e.same, e.kind),
                (r.same, r.kind),
                "{} / {}",
                e.label,
                r.label
            );
            // "producer" is a term, kept in every language.
            if !e.label.starts_with("producer ") {
                assert_ne!(e.label, r.label);
            }
            let english = [
                "run completed",
                "checks passed",
                "received",
                "ready at the end",
                "errors",
                "total time",
                "published",
            ];
            // A check's own expression (`received[eu-warehouse] == 4`) is the lesson's.
            if r.label.starts_with("проверка ") {
                continue;
            }
            for word in english {
                assert!(!r.label.contains(word) && !r.sim.contains(word), "{r:?}");
            }
        }
        assert!(ru
            .iter()
            .any(|r| r.label == "общее время" && r.sim.ends_with(" с")));
    }

    #[test]
    fn times_are_compared_with_a_tolerance() {
        assert!(time_same(Some(10_000), Some(10_900)));
        assert!(!time_same(Some(10_000), Some(12_000)));
        assert!(time_same(Some(20), Some(110)));
        assert!(!time_same(Some(20), None));
    }

    #[test]
    fn alignment_keeps_the_common_order() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = align(&s(&["a", "b", "c", "d"]), &s(&["a", "c", "b", "d"]));
        let both = a.iter().filter(|x| matches!(x, Aligned::Both(_))).count();
        assert_eq!(both, 3);
        assert_eq!(a.len(), 5);
        assert_eq!(align(&[], &s(&["x"])), vec![Aligned::RealOnly("x".into())]);
    }
}
