//! Resolver errors: what could not be satisfied, the chain that led to it, and
//! suggestions for misspelt names.

use std::fmt;

use crate::index::PackageIndex;
use crate::relation::RelationError;

/// Why one alternative of a relation could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No real package and no provider of that name.
    Unknown { suggestions: Vec<String> },
    /// Real package(s) exist but none has an acceptable version.
    Versions { available: Vec<String> },
    /// Only providers exist and none provides an acceptable version.
    Providers { provided: Vec<String> },
    /// The name is pinned (lockfile) to a version the relation or index cannot give.
    Pinned { pin: String, available: Vec<String> },
    /// Another version of that package is already in the set.
    AlreadyChosen { version: String },
    /// Every candidate conflicts with (or breaks) a package already in the set.
    Conflict { candidate: String, detail: String },
    /// `:any` needs a package with `Multi-Arch: allowed`.
    NotMultiArchAllowed { candidate: String },
    /// The relation names an architecture the index does not hold.
    ForeignArch { arch: String },
    /// Every candidate is in the request's excludes.
    OnlyExcluded { candidates: Vec<String> },
}

/// One failed alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltFailure {
    pub name: String,
    pub problem: Problem,
}

/// Where a requirement came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A root of the request.
    Root(String),
    /// The essential set (`Essential: yes`).
    Essential,
    /// `Priority: required` packages.
    Required,
    /// A package's relation; `chain` is that package, the package that pulled
    /// it in, and so on, ending with how the first one got in.
    Package {
        chain: Vec<String>,
        start: Box<Start>,
    },
}

/// Resolver failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the request is for architecture {request} but the index holds {index}")]
    ArchMismatch { request: String, index: String },
    #[error("invalid root {root:?}: {source}")]
    BadRoot { root: String, source: RelationError },
    #[error("invalid root {root:?}: {message}")]
    BadRootPin { root: String, message: String },
    #[error("{}", unsatisfiable_message(.relation, .needed_by, .failures))]
    Unsatisfiable {
        relation: String,
        needed_by: Start,
        failures: Vec<AltFailure>,
    },
}

fn list(items: &[String]) -> String {
    match items {
        [] => "none".to_string(),
        [one] => one.clone(),
        _ => items.join(", "),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unknown { suggestions } => {
                f.write_str("no package or provider of that name in the index")?;
                if !suggestions.is_empty() {
                    let quoted: Vec<String> =
                        suggestions.iter().map(|s| format!("{s:?}")).collect();
                    write!(f, " (did you mean {}?)", quoted.join(" or "))?;
                }
                Ok(())
            }
            Problem::Versions { available } if available.len() == 1 => {
                write!(f, "only {} is available", available[0])
            }
            Problem::Versions { available } => {
                write!(f, "available versions are {}", list(available))
            }
            Problem::Providers { provided } => {
                write!(f, "it is virtual and its providers give {}", list(provided))
            }
            Problem::Pinned { pin, available } => write!(
                f,
                "it is pinned to {pin} (lockfile), which does not fit (index has {})",
                list(available)
            ),
            Problem::AlreadyChosen { version } => {
                write!(f, "version {version} is already in the set")
            }
            Problem::Conflict { candidate, detail } => write!(f, "candidate {candidate} {detail}"),
            Problem::NotMultiArchAllowed { candidate } => write!(
                f,
                "\":any\" needs Multi-Arch: allowed, which {candidate} does not declare"
            ),
            Problem::ForeignArch { arch } => {
                write!(f, "architecture {arch} is not in the index")
            }
            Problem::OnlyExcluded { candidates } => {
                write!(f, "its only candidates ({}) are excluded", list(candidates))
            }
        }
    }
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Start::Root(r) => write!(f, "root {r:?}"),
            Start::Essential => f.write_str("the essential set"),
            Start::Required => f.write_str("the Priority: required set"),
            Start::Package { chain, start } => write!(f, "{} <- {start}", chain.join(" <- ")),
        }
    }
}

fn unsatisfiable_message(relation: &str, needed_by: &Start, failures: &[AltFailure]) -> String {
    let head = match needed_by {
        Start::Root(r) if r == relation => format!("cannot satisfy root {r:?}"),
        other => format!("cannot satisfy {relation:?} needed by {other}"),
    };
    let why: Vec<String> = match failures {
        [one] => vec![one.problem.to_string()],
        many => many
            .iter()
            .map(|f| format!("{}: {}", f.name, f.problem))
            .collect(),
    };
    format!("{head}: {}", why.join("; "))
}

/// Up to three names of `index` close to `name` (optimal string alignment
/// distance at most 2, or a third of the length for long names), closest first.
pub fn suggest(index: &PackageIndex, name: &str) -> Vec<String> {
    let limit = (name.len() / 3).max(2);
    let mut found: Vec<(usize, &str)> = index
        .names()
        .filter(|n| n.len().abs_diff(name.len()) <= limit)
        .filter_map(|n| {
            let d = strsim::osa_distance(n, name);
            (d <= limit && d > 0).then_some((d, n))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}
