//! Scenario files are user input: bad ones must give a precise error (with the
//! JSON path), never a panic.

use sim_core::scenario::{parse, Issue, ScenarioError};

const TEXT: &str = r#"{"en": "Hello", "ru": "Привет", "uk": "Привіт"}"#;

/// A small valid scenario with `extra` spliced into the top-level object.
fn scenario(extra: &str) -> String {
    format!(
        r#"{{
  "format": 1,
  "id": "hello",
  "title": {TEXT},
  "seed": 1,
  "topology": {{"queues": [{{"name": "hello"}}]}},
  "producers": [{{"name": "p", "routing_key": "hello", "count": 2}}],
  "consumers": [{{"name": "c", "queue": "hello"}}],
  "checks": [{{"check": "processed", "consumer": "c", "expect": 2}}]
  {extra}
}}"#
    )
}

fn parse_err(json: &str) -> ScenarioError {
    match parse(json) {
        Ok(_) => panic!("expected an error for {json}"),
        Err(e) => e,
    }
}

fn issues(json: &str) -> Vec<Issue> {
    match parse_err(json) {
        ScenarioError::Invalid(issues) => issues,
        other => panic!("expected semantic issues, got {other}"),
    }
}

fn has_issue(issues: &[Issue], path: &str, needle: &str) -> bool {
    issues
        .iter()
        .any(|i| i.path == path && i.message.contains(needle))
}

#[test]
fn the_base_scenario_is_valid() {
    let sc = parse(&scenario("")).expect("valid");
    assert_eq!(sc.id, "hello");
    assert_eq!(sc.title.get("ru"), "Привет");
    assert_eq!(sc.title.get("xx"), "Hello");
}

#[test]
fn wrong_type_names_the_json_path() {
    let json = scenario("").replace(
        r#""name": "c", "queue": "hello""#,
        r#""name": "c", "queue": "hello", "prefetch": "one""#,
    );
    let err = parse_err(&json);
    match &err {
        ScenarioError::Parse { path, message, .. } => {
            assert_eq!(path, "consumers[0].prefetch");
            assert!(
                message.contains("invalid type: string \"one\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("consumers[0].prefetch: invalid type"),
        "{err}"
    );
}

#[test]
fn unknown_field_is_an_error_with_its_path() {
    let json = scenario("").replace(r#""count": 2"#, r#""count": 2, "conut": 3"#);
    match parse_err(&json) {
        ScenarioError::Parse { path, message, .. } => {
            assert_eq!(path, "producers[0].conut");
            assert!(message.contains("unknown field `conut`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_check_and_action_names_are_reported() {
    let json = scenario(r#", "timeline": [{"at_ms": 5, "action": "explode"}]"#);
    match parse_err(&json) {
        ScenarioError::Parse { path, message, .. } => {
            assert_eq!(path, "timeline[0].action");
            assert!(message.contains("unknown variant `explode`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let json =
        scenario(r#", "timeline": [{"at_ms": 5, "action": "kill_consumer", "consumr": "c"}]"#);
    match parse_err(&json) {
        ScenarioError::Parse { path, message, .. } => {
            assert_eq!(path, "timeline[0]");
            assert!(message.contains("unknown field `consumr`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let json = scenario("").replace(r#""check": "processed""#, r#""check": "procesed""#);
    match parse_err(&json) {
        ScenarioError::Parse { path, message, .. } => {
            assert_eq!(path, "checks[0].check");
            assert!(message.contains("unknown variant `procesed`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_language_is_reported() {
    let json = scenario("").replace(
        r#""title": {"en": "Hello", "ru": "Привет", "uk": "Привіт"}"#,
        r#""title": {"en": "Hello", "ru": "Привет"}"#,
    );
    match parse_err(&json) {
        ScenarioError::Parse { path, message, .. } => {
            assert_eq!(path, "title");
            assert!(message.contains("missing field `uk`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_json_at_all_gives_line_and_column() {
    match parse_err("{\n  \"format\": 1,\n  \"id\": \n}") {
        ScenarioError::Parse { line, .. } => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
    assert!(matches!(parse_err(""), ScenarioError::Parse { .. }));
    assert!(matches!(parse_err("[]"), ScenarioError::Parse { .. }));
}

#[test]
fn newer_format_is_refused_by_version() {
    let json = scenario("").replace(r#""format": 1"#, r#""format": 2"#);
    let err = parse_err(&json);
    assert!(
        matches!(err, ScenarioError::UnsupportedFormat { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("unsupported scenario format 2"),
        "{err}"
    );
}

#[test]
fn unknown_queue_of_a_consumer() {
    let json = scenario("").replace(r#""queue": "hello""#, r#""queue": "helo""#);
    let found = issues(&json);
    assert!(
        has_issue(&found, "consumers[0].queue", "unknown queue 'helo'"),
        "{found:?}"
    );
}

#[test]
fn duplicate_names() {
    let json = scenario("").replace(
        r#""queues": [{"name": "hello"}]"#,
        r#""queues": [{"name": "hello"}, {"name": "hello"}]"#,
    );
    let found = issues(&json);
    assert!(
        has_issue(
            &found,
            "topology.queues[1].name",
            "duplicate queue name 'hello'"
        ),
        "{found:?}"
    );
}

#[test]
fn several_semantic_problems_at_once() {
    let json = scenario(
        r#", "timeline": [{"at_ms": 100, "action": "kill_consumer", "consumer": "ghost"}],
           "steps": [{"text": {"en": "a", "ru": "б", "uk": ""}, "highlight": ["queue:nope", "wat"],
                      "question": {"prompt": {"en": "?", "ru": "?", "uk": "?"},
                                   "choices": [{"en": "x", "ru": "x", "uk": "x"}, {"en": "y", "ru": "y", "uk": "y"}],
                                   "answer": 2}}]"#,
    )
    .replace(r#""routing_key": "hello", "count": 2"#, r#""exchange": "nowhere", "routing_key": "{nn}", "count": 2"#)
    .replace(r#""expect": 2"#, r#""expect": "two""#);
    let found = issues(&json);
    for (path, needle) in [
        ("timeline[0].consumer", "unknown consumer 'ghost'"),
        ("steps[0].text.uk", "must not be empty"),
        ("steps[0].highlight[0]", "unknown queue 'nope'"),
        ("steps[0].highlight[1]", "is not one of"),
        ("steps[0].question.answer", "out of range"),
        ("producers[0].exchange", "unknown exchange 'nowhere'"),
        ("producers[0].routing_key", "unknown placeholder '{nn}'"),
        ("checks[0].expect", "expected a number"),
    ] {
        assert!(
            has_issue(&found, path, needle),
            "missing {path}: {needle} in {found:?}"
        );
    }
    // The error message lists every issue with its path.
    let text = ScenarioError::Invalid(found).to_string();
    assert!(
        text.contains("timeline[0].consumer: unknown consumer 'ghost'"),
        "{text}"
    );
}

#[test]
fn check_subjects_are_validated() {
    let json = scenario("").replace(
        r#""checks": [{"check": "processed", "consumer": "c", "expect": 2}]"#,
        r#""checks": [{"check": "queue_depth", "expect": 0},
                      {"check": "total_time_ms", "expect": 10, "tolerance_pct": 500},
                      {"check": "order", "consumer": "c", "expect": 3},
                      {"check": "received", "producer": "p", "expect": 1},
                      {"check": "errors"}]"#,
    );
    let found = issues(&json);
    for (path, needle) in [
        ("checks[0]", "needs a 'queue'"),
        ("checks[1].tolerance_pct", "not a percentage"),
        ("checks[2].expect", "expects an array"),
        ("checks[3].producer", "takes no producer"),
        ("checks[4]", "needs 'expect'"),
    ] {
        assert!(
            has_issue(&found, path, needle),
            "missing {path}: {needle} in {found:?}"
        );
    }
}

#[test]
fn numbers_out_of_range() {
    let json = scenario("")
        .replace(
            r#""name": "c", "queue": "hello""#,
            r#""name": "c", "queue": "hello", "failure": {"probability": 1.5}, "restart_at_ms": 5"#,
        )
        .replace(
            r#""count": 2"#,
            r#""count": 2, "properties": {"delivery_mode": 3}"#,
        );
    let found = issues(&json);
    assert!(
        has_issue(
            &found,
            "consumers[0].failure.probability",
            "not a probability"
        ),
        "{found:?}"
    );
    assert!(
        has_issue(&found, "consumers[0].restart_at_ms", "needs 'crash_at_ms'"),
        "{found:?}"
    );
    assert!(
        has_issue(&found, "producers[0].properties.delivery_mode", "must be 1"),
        "{found:?}"
    );
}

#[test]
fn binding_needs_exactly_one_destination() {
    let json = scenario("").replace(
        r#""queues": [{"name": "hello"}]"#,
        r#""queues": [{"name": "hello"}], "exchanges": [{"name": "x", "type": "fanout"}],
           "bindings": [{"source": "x"}, {"source": "y", "queue": "hello", "exchange": "x"}]"#,
    );
    let found = issues(&json);
    assert!(
        has_issue(&found, "topology.bindings[0]", "exactly one"),
        "{found:?}"
    );
    assert!(
        has_issue(
            &found,
            "topology.bindings[1].source",
            "unknown exchange 'y'"
        ),
        "{found:?}"
    );
}

#[test]
fn garbage_never_panics() {
    let base = scenario("");
    // Truncations and byte flips of a valid file.
    for cut in 0..base.len() {
        if base.is_char_boundary(cut) {
            let _ = parse(&base[..cut]);
        }
    }
    for (i, _) in base.char_indices().step_by(3) {
        let mut s = base.clone();
        s.replace_range(i..i + s[i..].chars().next().map_or(0, char::len_utf8), "}");
        let _ = parse(&s);
    }
    for json in [
        "null",
        "1",
        "\"x\"",
        "{\"format\": \"1\"}",
        "{\"format\": -1}",
        "{\"format\": 1e400}",
    ] {
        let _ = parse(json);
    }
}
