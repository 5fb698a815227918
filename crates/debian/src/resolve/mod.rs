//! Dependency resolution: from root names to the closed, deterministic set of
//! packages to install. The algorithm is described in `solver.rs` and README.md.

mod check;
mod error;
mod solver;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use check::check_closure;
pub use error::{AltFailure, Problem, ResolveError, Start, suggest};
pub use solver::resolve;

use crate::package::Package;
use crate::version::Version;

/// What to resolve.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Root requirements: `name`, `name (op version)`, `a | b`, or `name=version`.
    pub roots: Vec<String>,
    /// Target architecture; must be the index's.
    pub arch: String,
    /// Add every `Essential: yes` and `Priority: required` package.
    pub include_essential: bool,
    /// Follow Recommends (unsatisfiable ones are reported, not fatal).
    pub with_recommends: bool,
    /// Exact versions to use (from a lockfile).
    pub pins: BTreeMap<String, Version>,
    /// Names never to pull; a relation naming one of them is waived (and reported).
    pub excludes: BTreeSet<String>,
}

/// Which relation field pulled a package in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepKind {
    PreDepends,
    Depends,
    Recommends,
}

impl DepKind {
    fn verb(self) -> &'static str {
        match self {
            DepKind::PreDepends => "pre-depended on by",
            DepKind::Depends => "depended on by",
            DepKind::Recommends => "recommended by",
        }
    }

    /// The field name.
    pub fn field(self) -> &'static str {
        match self {
            DepKind::PreDepends => "Pre-Depends",
            DepKind::Depends => "Depends",
            DepKind::Recommends => "Recommends",
        }
    }
}

/// Why a package is in the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Asked for by a root of the request (the root text).
    Root { request: String },
    /// `Essential: yes` (with `include_essential`).
    Essential,
    /// `Priority: required` (with `include_essential`).
    Required,
    /// A relation of package `by`; `provides` is the virtual name when the
    /// relation was satisfied through Provides.
    Dependency {
        by: String,
        kind: DepKind,
        relation: String,
        provides: Option<String>,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Root { request } => write!(f, "root {request:?}"),
            Reason::Essential => f.write_str("essential"),
            Reason::Required => f.write_str("priority required"),
            Reason::Dependency {
                by,
                kind,
                relation,
                provides,
            } => {
                write!(f, "{} {by} via {relation:?}", kind.verb())?;
                if let Some(v) = provides {
                    write!(f, " (provides {v})")?;
                }
                Ok(())
            }
        }
    }
}

/// One package of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub package: Package,
    /// The first reason is the one that brought the package in.
    pub reasons: Vec<Reason>,
}

/// A relation not followed because it names an excluded package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waived {
    /// The package (or `root "…"`, `essential`) whose relation was waived.
    pub by: String,
    pub relation: String,
    pub excluded: String,
}

/// The resolved set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    /// Sorted by package name.
    pub packages: Vec<Resolved>,
    /// Relations skipped because of `excludes`, in resolution order.
    pub waived: Vec<Waived>,
    /// Recommends that could not be satisfied (only with `with_recommends`): error texts.
    pub unsatisfied_recommends: Vec<String>,
    /// Pinned names that are not in the set.
    pub unused_pins: Vec<String>,
}

impl Resolution {
    /// The resolved package called `name`.
    pub fn get(&self, name: &str) -> Option<&Resolved> {
        self.packages
            .binary_search_by(|r| r.package.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.packages[i])
    }

    /// Names of the resolved packages, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.packages.iter().map(|r| r.package.name.as_str())
    }

    /// One line per reason why `name` is in the set, each followed by the chain
    /// of first reasons back to a root (for `basalt packages --why`). Empty when
    /// `name` is not in the set.
    pub fn explain(&self, name: &str) -> Vec<String> {
        let Some(resolved) = self.get(name) else {
            return Vec::new();
        };
        resolved
            .reasons
            .iter()
            .map(|reason| match reason {
                Reason::Dependency { by, .. } => format!("{reason} [{}]", self.chain(by)),
                other => other.to_string(),
            })
            .collect()
    }

    /// `a <- b <- root "b"`: follows first reasons from `name`.
    fn chain(&self, name: &str) -> String {
        let mut parts = Vec::new();
        let mut current = name.to_string();
        // First reasons always point to packages chosen earlier, so this ends;
        // the bound guards against a hand-built inconsistent Resolution.
        for _ in 0..=self.packages.len() {
            parts.push(current.clone());
            match self.get(&current).and_then(|r| r.reasons.first()) {
                Some(Reason::Dependency { by, .. }) => current = by.clone(),
                Some(other) => {
                    parts.push(other.to_string());
                    break;
                }
                None => break,
            }
        }
        parts.join(" <- ")
    }
}

#[cfg(test)]
mod tests;
