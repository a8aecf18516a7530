//! The benchmark report: metrics with their baseline, ratio and target, printed
//! as one table and written as `report.json`.

use serde_json::{json, Map, Value};

/// What a metric must reach. `ratio` is `value / baseline`.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A baseline or a reference figure: nothing to meet.
    None,
    AtLeast(f64),
    AtMost(f64),
    RatioAtLeast(f64),
    RatioAtMost(f64),
    /// Every one of these.
    All(Vec<Target>),
}

impl Target {
    /// Whether `value` (and its `ratio`, when there is a baseline) meets the target.
    /// A ratio target without a ratio, or a non-finite value, is not met.
    pub fn met(&self, value: f64, ratio: Option<f64>) -> bool {
        if !value.is_finite() {
            return false;
        }
        match self {
            Target::None => true,
            Target::AtLeast(t) => value >= *t,
            Target::AtMost(t) => value <= *t,
            Target::RatioAtLeast(t) => ratio.is_some_and(|r| r.is_finite() && r >= *t),
            Target::RatioAtMost(t) => ratio.is_some_and(|r| r.is_finite() && r <= *t),
            Target::All(all) => all.iter().all(|t| t.met(value, ratio)),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    /// `None`: not measured (see `not_measured`).
    pub value: Option<f64>,
    pub unit: String,
    pub baseline: Option<f64>,
    /// What the baseline is (e.g. `rabbitmq_msgs_per_s`).
    pub baseline_name: Option<String>,
    pub target: Target,
    /// The target as people read it, e.g. `≥ 5M msgs/s and ≥ 250× RabbitMQ`.
    pub target_text: String,
    /// Why there is no value.
    pub not_measured: Option<String>,
    /// Anything a reader needs to judge the figure.
    pub note: Option<String>,
}

impl Metric {
    pub fn new(name: &str, value: f64, unit: &str, target: Target, target_text: &str) -> Self {
        Metric {
            name: name.to_string(),
            value: Some(value),
            unit: unit.to_string(),
            baseline: None,
            baseline_name: None,
            target,
            target_text: target_text.to_string(),
            not_measured: None,
            note: None,
        }
    }

    pub fn not_measured(name: &str, unit: &str, target_text: &str, why: &str) -> Self {
        Metric {
            name: name.to_string(),
            value: None,
            unit: unit.to_string(),
            baseline: None,
            baseline_name: None,
            target: Target::None,
            target_text: target_text.to_string(),
            not_measured: Some(why.to_string()),
            note: None,
        }
    }

    pub fn baseline(mut self, name: &str, value: f64) -> Self {
        self.baseline = Some(value);
        self.baseline_name = Some(name.to_string());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// `value / baseline`, when both exist and the baseline is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.value, self.baseline) {
            (Some(v), Some(b)) if b != 0.0 && b.is_finite() => Some(v / b),
            _ => None,
        }
    }

    pub fn met(&self) -> bool {
        match self.value {
            Some(v) if self.not_measured.is_none() => self.target.met(v, self.ratio()),
            _ => false,
        }
    }

    /// The metric's object in `report.json`.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("value".into(), num(self.value));
        o.insert("unit".into(), json!(self.unit));
        if let Some(b) = self.baseline {
            o.insert("baseline".into(), num(Some(b)));
            if let Some(name) = &self.baseline_name {
                o.insert("baseline_name".into(), json!(name));
            }
        }
        if let Some(r) = self.ratio() {
            o.insert("ratio".into(), num(Some(r)));
        }
        o.insert("target".into(), json!(self.target_text));
        o.insert("met".into(), json!(self.met()));
        if let Some(why) = &self.not_measured {
            o.insert("not_measured".into(), json!(why));
        }
        if let Some(note) = &self.note {
            o.insert("note".into(), json!(note));
        }
        Value::Object(o)
    }
}

/// JSON has no NaN or infinity: those become null.
fn num(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}

/// `{ metric name: {...} }`, in table order.
pub fn to_json(metrics: &[Metric]) -> Value {
    let mut o = Map::new();
    for m in metrics {
        o.insert(m.name.clone(), m.to_json());
    }
    Value::Object(o)
}

/// A number as people read it: 3 significant figures, thousands separated.
pub fn human(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        let s = format!("{:.0}", x);
        group(&s)
    } else if a >= 100.0 {
        format!("{:.0}", x)
    } else if a >= 10.0 {
        format!("{:.1}", x)
    } else if a >= 0.1 {
        format!("{:.2}", x)
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{:.4}", x)
    }
}

fn group(digits: &str) -> String {
    let (sign, d) = digits
        .strip_prefix('-')
        .map_or(("", digits), |rest| ("-", rest));
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// The table as Markdown (also what the terminal shows).
pub fn table(metrics: &[Metric]) -> String {
    let mut out = String::from(
        "| metric | value | unit | baseline | ratio | target | met |\n|---|---:|---|---:|---:|---|---|\n",
    );
    for m in metrics {
        let value = match (m.value, &m.not_measured) {
            (_, Some(_)) | (None, _) => "not measured".to_string(),
            (Some(v), None) => human(v),
        };
        let baseline = match (m.baseline, &m.baseline_name) {
            (Some(b), Some(name)) => format!("{} ({name})", human(b)),
            (Some(b), None) => human(b),
            _ => String::new(),
        };
        let ratio = m
            .ratio()
            .map(|r| format!("{}×", human(r)))
            .unwrap_or_default();
        let met = if m.not_measured.is_some() {
            "not measured".to_string()
        } else if matches!(m.target, Target::None) {
            "—".to_string()
        } else if m.met() {
            "met".to_string()
        } else {
            "**MISSED**".to_string()
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            m.name, value, m.unit, baseline, ratio, m.target_text, met
        ));
    }
    let notes: Vec<String> = metrics
        .iter()
        .filter_map(|m| {
            m.not_measured
                .as_ref()
                .map(|w| format!("- `{}` not measured: {w}", m.name))
                .or_else(|| m.note.as_ref().map(|n| format!("- `{}`: {n}", m.name)))
        })
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_value_over_baseline() {
        let m = Metric::new("a", 10.0, "x", Target::None, "").baseline("b", 4.0);
        assert_eq!(m.ratio(), Some(2.5));
        let m = Metric::new("a", 10.0, "x", Target::None, "").baseline("b", 0.0);
        assert_eq!(m.ratio(), None);
        let m = Metric::new("a", 10.0, "x", Target::None, "");
        assert_eq!(m.ratio(), None);
    }

    #[test]
    fn targets() {
        assert!(Target::AtLeast(5.0).met(5.0, None));
        assert!(!Target::AtLeast(5.0).met(4.9, None));
        assert!(Target::AtMost(16.7).met(16.7, None));
        assert!(!Target::AtMost(16.7).met(16.8, None));
        assert!(
            !Target::RatioAtLeast(0.8).met(1.0, None),
            "no baseline, no ratio"
        );
        assert!(Target::RatioAtMost(0.05).met(1.0, Some(0.01)));
        assert!(!Target::AtMost(1.0).met(f64::NAN, None));
        let both = Target::All(vec![Target::AtLeast(5e6), Target::RatioAtLeast(250.0)]);
        assert!(both.met(6e6, Some(300.0)));
        assert!(!both.met(6e6, Some(200.0)));
        assert!(!both.met(4e6, Some(300.0)));
    }

    #[test]
    fn missed_is_reported_not_hidden() {
        let m = Metric::new(
            "sim_native_msgs_per_s",
            1.9e6,
            "msgs/s",
            Target::All(vec![Target::AtLeast(5e6), Target::RatioAtLeast(250.0)]),
            "≥ 5M msgs/s, ≥ 250× RabbitMQ",
        )
        .baseline("rabbitmq_msgs_per_s", 12_000.0);
        assert!(!m.met());
        let t = table(std::slice::from_ref(&m));
        assert!(t.contains("**MISSED**"), "{t}");
        assert!(t.contains("1.90M"), "{t}");
        assert_eq!(m.to_json()["met"], json!(false));
    }

    #[test]
    fn json_shape() {
        let metrics = vec![
            Metric::new("a", 2.0, "ms", Target::AtMost(16.7), "≤ 16.7 ms").baseline("b", 4.0),
            Metric::new("c", 3.0, "B", Target::AtMost(100.0), "≤ 100 B"),
            Metric::not_measured("d", "ms", "≤ 500 ms", "no browser"),
        ];
        let v = to_json(&metrics);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "c", "d"]);
        assert_eq!(
            v["a"],
            json!({"value": 2.0, "unit": "ms", "baseline": 4.0, "baseline_name": "b",
                   "ratio": 0.5, "target": "≤ 16.7 ms", "met": true})
        );
        let c = v["c"].as_object().unwrap();
        assert!(!c.contains_key("baseline") && !c.contains_key("ratio"));
        assert_eq!(v["c"]["met"], json!(true));
        assert_eq!(v["d"]["value"], Value::Null);
        assert_eq!(v["d"]["met"], json!(false));
        assert_eq!(v["d"]["not_measured"], json!("no browser"));
        assert!(table(&metrics).contains("| `d` | not measured |"));
    }

    #[test]
    fn non_finite_numbers_are_null() {
        let m = Metric::new("a", f64::NAN, "x", Target::AtLeast(1.0), "≥ 1");
        assert_eq!(m.to_json()["value"], Value::Null);
        assert!(!m.met());
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(12_345.0), "12,345");
        assert_eq!(human(999.4), "999");
        assert_eq!(human(16.66), "16.7");
        assert_eq!(human(0.5), "0.50");
        assert_eq!(human(0.0), "0");
    }
}
