//! cloud-config (`#cloud-config` YAML), compatible with CoreOS/Flatcar's
//! coreos-cloudinit plus the cloud-init keys users reach for most (`runcmd`,
//! `bootcmd`, `mounts`). YAML 1.1 booleans are accepted. Unknown keys produce
//! warnings with line:column; known CoreOS features Basalt lacks are errors.

mod keys;
mod units;
pub mod yaml;

use crate::diag::{Diagnostic, Report};
use crate::plan::Plan;
use yaml::{Kind, Node};

/// Parse and validate; warnings are returned with the plan.
pub fn parse(text: &str) -> Result<(Plan, Report), Report> {
    let mut ctx = Ctx::default();
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            ctx.report.push(Diagnostic::error(
                e.line,
                e.col,
                None,
                format!("invalid YAML: {}", e.message),
            ));
            return Err(ctx.report);
        }
    };
    let mut plan = Plan::default();
    if root.is_null() {
        // An empty cloud-config is valid and does nothing.
        return Ok((plan, ctx.report));
    }
    match &root.kind {
        Kind::Map(entries) => keys::top(entries, &mut plan, &mut ctx),
        _ => ctx.err(&root, "", "cloud-config must be a mapping of keys"),
    }
    ctx.report.sort();
    if ctx.report.has_errors() {
        Err(ctx.report)
    } else {
        Ok((plan, ctx.report))
    }
}

#[derive(Default)]
pub(crate) struct Ctx {
    pub report: Report,
}

impl Ctx {
    pub fn err(&mut self, n: &Node, path: &str, msg: impl Into<String>) {
        self.report.push(Diagnostic::error(
            n.line,
            n.col,
            Some(path.to_string()).filter(|p| !p.is_empty()),
            msg,
        ));
    }

    pub fn warn(&mut self, n: &Node, path: &str, msg: impl Into<String>) {
        self.report.push(Diagnostic::warning(
            n.line,
            n.col,
            Some(path.to_string()).filter(|p| !p.is_empty()),
            msg,
        ));
    }

    pub fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.kind {
            Kind::Scalar { text, .. } if !n.is_null() => Some(text.clone()),
            _ => {
                self.err(
                    n,
                    path,
                    format!("{path} must be a string, not a {}", n.kind_name()),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, n: &Node, path: &str) -> Option<bool> {
        let b = n.as_bool();
        if b.is_none() {
            self.err(
                n,
                path,
                format!("{path} must be a boolean (true/false, yes/no, on/off)"),
            );
        }
        b
    }

    pub fn map<'n>(&mut self, n: &'n Node, path: &str) -> Option<&'n [(Node, Node)]> {
        match &n.kind {
            Kind::Map(m) => Some(m),
            _ => {
                self.err(
                    n,
                    path,
                    format!("{path} must be a mapping, not a {}", n.kind_name()),
                );
                None
            }
        }
    }

    pub fn seq<'n>(&mut self, n: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &n.kind {
            Kind::Seq(s) => Some(s),
            _ if n.is_null() => Some(&[]),
            _ => {
                self.err(
                    n,
                    path,
                    format!("{path} must be a list, not a {}", n.kind_name()),
                );
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-element list
    /// when `comma_ok` (cloud-init's "a,b" group lists).
    pub fn strings(&mut self, n: &Node, path: &str, comma_ok: bool) -> Vec<String> {
        if comma_ok {
            if let Kind::Scalar { text, .. } = &n.kind {
                if !n.is_null() {
                    return text
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                }
            }
        }
        let Some(items) = self.seq(n, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if let Some(s) = self.string(it, &format!("{path}[{i}]")) {
                out.push(s);
            }
        }
        out
    }

    /// Iterate a mapping's string keys, reporting duplicates.
    pub fn entries<'n>(
        &mut self,
        m: &'n [(Node, Node)],
        path: &str,
    ) -> Vec<(String, &'n Node, &'n Node)> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for (k, v) in m {
            let Some(key) = k.as_str().map(str::to_string) else {
                self.err(k, path, "mapping keys must be strings");
                continue;
            };
            if !seen.insert(key.clone()) {
                self.err(k, path, format!("duplicate key {key:?}"));
                continue;
            }
            out.push((key, k, v));
        }
        out
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests;
