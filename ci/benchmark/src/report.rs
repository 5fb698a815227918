//! One benchmark figure, bench.json and the table printed on stdout.

use serde_json::{Value, json};

/// Which direction is good for `value` (and for `ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    #[allow(dead_code)] // no entry yet is "higher is better" (slot throughput will be)
    Higher,
}

impl Better {
    fn name(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
        }
    }
}

/// What `target` bounds: the ratio to the baseline, or the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOn {
    Ratio,
    Value,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub baseline: Option<f64>,
    pub target: Option<f64>,
    pub target_on: TargetOn,
    pub better: Better,
    /// What the baseline is, or why a figure is missing.
    pub note: String,
}

impl Entry {
    pub fn new(name: impl Into<String>, value: Option<f64>, unit: &'static str) -> Entry {
        Entry {
            name: name.into(),
            value,
            unit,
            baseline: None,
            target: None,
            target_on: TargetOn::Value,
            better: Better::Lower,
            note: String::new(),
        }
    }

    pub fn baseline(mut self, b: Option<f64>) -> Entry {
        self.baseline = b;
        self
    }

    pub fn target(mut self, on: TargetOn, t: f64) -> Entry {
        self.target_on = on;
        self.target = Some(t);
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Entry {
        self.note = n.into();
        self
    }

    /// Ours over the baseline.
    pub fn ratio(&self) -> Option<f64> {
        match (self.value, self.baseline) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b),
            _ => None,
        }
    }

    /// `Some(true)` when the target is met, `None` when it cannot be judged.
    pub fn met(&self) -> Option<bool> {
        let t = self.target?;
        let x = match self.target_on {
            TargetOn::Ratio => self.ratio()?,
            TargetOn::Value => self.value?,
        };
        Some(match self.better {
            Better::Lower => x <= t,
            Better::Higher => x >= t,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio(),
            "target": self.target,
            "target_on": match self.target_on { TargetOn::Ratio => "ratio", TargetOn::Value => "value" },
            "better": self.better.name(),
            "met": self.met(),
            "note": self.note,
        })
    }
}

fn num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The table: one line per entry, notes underneath.
pub fn table(entries: &[Entry]) -> String {
    let w = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:w$}  {:>9} {:5} {:>9} {:>7} {:>12}  {}\n",
        "name", "value", "unit", "baseline", "ratio", "target", "met"
    );
    for e in entries {
        let op = match e.better {
            Better::Lower => "<=",
            Better::Higher => ">=",
        };
        let target = match (e.target, e.target_on) {
            (None, _) => "-".to_string(),
            (Some(t), TargetOn::Ratio) => format!("ratio{op}{t}"),
            (Some(t), TargetOn::Value) => format!("{op}{t}"),
        };
        let met = match e.met() {
            None => "-",
            Some(true) => "yes",
            Some(false) => "NO",
        };
        s += &format!(
            "{:w$}  {:>9} {:5} {:>9} {:>7} {:>12}  {}\n",
            e.name,
            num(e.value),
            e.unit,
            num(e.baseline),
            num(e.ratio()),
            target,
            met
        );
    }
    for e in entries.iter().filter(|e| !e.note.is_empty()) {
        s += &format!("  * {}: {}\n", e.name, e.note);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_and_targets() {
        // (value, baseline, target_on, target, better, ratio, met)
        let cases = [
            (
                Some(1.0),
                Some(4.0),
                TargetOn::Ratio,
                0.5,
                Better::Lower,
                Some(0.25),
                Some(true),
            ),
            (
                Some(3.0),
                Some(2.0),
                TargetOn::Ratio,
                1.0,
                Better::Lower,
                Some(1.5),
                Some(false),
            ),
            (
                Some(3.0),
                None,
                TargetOn::Ratio,
                1.0,
                Better::Lower,
                None,
                None,
            ),
            (
                Some(3.0),
                None,
                TargetOn::Value,
                5.0,
                Better::Lower,
                None,
                Some(true),
            ),
            (
                Some(0.7),
                Some(1.0),
                TargetOn::Ratio,
                0.8,
                Better::Higher,
                Some(0.7),
                Some(false),
            ),
            (
                None,
                Some(1.0),
                TargetOn::Value,
                0.8,
                Better::Lower,
                None,
                None,
            ),
        ];
        for (v, b, on, t, better, ratio, met) in cases {
            let mut e = Entry::new("x", v, "s").baseline(b).target(on, t);
            e.better = better;
            assert_eq!(e.ratio(), ratio, "{v:?}/{b:?}");
            assert_eq!(e.met(), met, "{v:?}/{b:?} {on:?} {t}");
            assert_eq!(e.to_json()["ratio"], json!(ratio));
        }
    }

    #[test]
    fn table_has_a_line_per_entry_and_notes() {
        let es = [
            Entry::new("a", Some(1.0), "s").note("why"),
            Entry::new("b", None, "MiB"),
        ];
        let t = table(&es);
        assert_eq!(t.lines().count(), 4, "{t}");
        assert!(t.contains("  * a: why"));
    }
}
