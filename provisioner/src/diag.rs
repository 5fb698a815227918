//! Diagnostics: problems found in a config, each with a line, column and config path.

use std::fmt;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// 1-based line; 0 when the problem has no location (e.g. empty input).
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
    /// Config path such as `storage.files[3].contents.source`, when known.
    pub path: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        line: usize,
        col: usize,
        path: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            line,
            col,
            path,
            message: message.into(),
        }
    }

    pub fn warning(
        line: usize,
        col: usize,
        path: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            line,
            col,
            path,
            message: message.into(),
        }
    }

    /// `FILE:LINE:COL: error: message (at path)`.
    pub fn render(&self, file: &str) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut s = format!("{file}:{}:{}: {sev}: {}", self.line, self.col, self.message);
        if let Some(p) = &self.path {
            if !p.is_empty() {
                s.push_str(&format!(" (at {p})"));
            }
        }
        s
    }
}

/// All problems found in one config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Sort by position so output is stable and reads top to bottom.
    pub fn sort(&mut self) {
        self.diagnostics
            .sort_by(|a, b| (a.line, a.col, a.severity).cmp(&(b.line, b.col, b.severity)));
    }

    /// One `FILE:LINE:COL: ...` line per problem.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(file));
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("<config>"))
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_formats() {
        let cases = [
            (
                Diagnostic::error(3, 7, Some("storage.files[0].path".into()), "bad"),
                "f.json:3:7: error: bad (at storage.files[0].path)",
            ),
            (
                Diagnostic::warning(1, 1, None, "unknown key"),
                "f.json:1:1: warning: unknown key",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(d.render("f.json"), want);
        }
    }
}
