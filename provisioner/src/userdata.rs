//! User data: detect the format (Ignition JSON, `#cloud-config`, `#!` script),
//! parse into a plan, and resolve Ignition's merge/replace references.

use crate::diag::{Diagnostic, Report};
use crate::fetch::{FetchError, Fetcher};
use crate::plan::{Plan, Source};
use crate::{cloudconfig, ignition, intent};
use std::io::Read;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    Ignition,
    CloudConfig,
    Script,
}

/// A parsed config: its plan, warnings and (Ignition) config references.
#[derive(Debug)]
pub struct Loaded {
    pub format: Format,
    pub plan: Plan,
    pub warnings: Report,
    /// Only for Ignition: the typed config and its merge/replace references.
    /// Its `plan` has been moved into `Loaded::plan` (left empty here).
    pub ignition: Option<ignition::Parsed>,
}

/// Decompress gzip user data (cloud-init accepts it) and require UTF-8.
pub fn to_text(bytes: &[u8]) -> Result<String, Report> {
    let mut data = bytes.to_vec();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(bytes).read_to_end(&mut out) {
            return Err(one(format!(
                "user data looks gzip-compressed but is not valid gzip: {e}"
            )));
        }
        data = out;
    }
    String::from_utf8(data).map_err(|e| {
        one(format!(
            "user data is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn one(msg: String) -> Report {
    let mut r = Report::default();
    r.push(Diagnostic::error(1, 1, None, msg));
    r
}

pub fn detect(text: &str) -> Result<Format, Report> {
    let t = text.trim_start_matches('\u{feff}');
    if t.starts_with("#cloud-config") {
        Ok(Format::CloudConfig)
    } else if t.starts_with("#!") {
        Ok(Format::Script)
    } else if t.trim_start().starts_with('{') {
        Ok(Format::Ignition)
    } else {
        Err(one(
            "unrecognised config: expected Ignition JSON ('{'), '#cloud-config' or a '#!' script"
                .into(),
        ))
    }
}

/// Parse and validate any supported config, without network access.
pub fn load_str(text: &str) -> Result<Loaded, Report> {
    match detect(text)? {
        Format::Ignition => {
            let mut p = ignition::parse(text)?;
            Ok(Loaded {
                format: Format::Ignition,
                plan: std::mem::take(&mut p.plan),
                warnings: p.warnings.clone(),
                ignition: Some(p),
            })
        }
        Format::CloudConfig => {
            let (plan, warnings) = cloudconfig::parse(text)?;
            Ok(Loaded {
                format: Format::CloudConfig,
                plan,
                warnings,
                ignition: None,
            })
        }
        Format::Script => {
            let mut plan = Plan::default();
            intent::firstboot_script(&mut plan, 30, "user-data", text.as_bytes().to_vec());
            Ok(Loaded {
                format: Format::Script,
                plan,
                warnings: Report::default(),
                ignition: None,
            })
        }
    }
}

/// All problems in a config text (errors and warnings), sorted.
pub fn validate_str(text: &str) -> Report {
    match load_str(text) {
        Ok(l) => l.warnings,
        Err(r) => r,
    }
}

/// Errors reading the file; problems in the config are in the returned report.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Validate a config file; the builder's `basalt validate FILE` calls this.
/// Render with `report.render(path)`; fail when `report.has_errors()`.
pub fn validate_file(path: &Path) -> Result<Report, ValidateError> {
    let bytes = std::fs::read(path).map_err(|source| ValidateError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(match to_text(&bytes) {
        Ok(t) => validate_str(&t),
        Err(r) => r,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("config referenced by {what}:\n{report}")]
    Invalid { what: String, report: Report },
    #[error("config references nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("merging configs: {0}")]
    Merge(String),
}

pub const MAX_DEPTH: usize = 10;

/// Follow `ignition.config.replace` and `ignition.config.merge` (fetching and
/// verifying each referenced config) and return the final plan.
pub fn assemble(loaded: Loaded, fetcher: &Fetcher) -> Result<Plan, AssembleError> {
    match loaded.ignition {
        // Nothing to follow: the plan is the config's own.
        None => Ok(loaded.plan),
        Some(p) if p.replace.is_none() && p.merge.is_empty() => Ok(loaded.plan),
        // `p.plan` is empty (moved into `loaded.plan`), but replace and merge
        // both produce a new plan, so it is never read.
        Some(p) => Ok(assemble_ign(p, fetcher, 0)?.plan),
    }
}

fn assemble_ign(
    p: ignition::Parsed,
    f: &Fetcher,
    depth: usize,
) -> Result<ignition::Parsed, AssembleError> {
    if depth > MAX_DEPTH {
        return Err(AssembleError::TooDeep);
    }
    let child = |src: &Source, what: String| -> Result<ignition::Parsed, AssembleError> {
        let bytes = f.resolve(src)?;
        let text = to_text(&bytes).map_err(|report| AssembleError::Invalid {
            what: what.clone(),
            report,
        })?;
        let parsed = ignition::parse(&text).map_err(|report| AssembleError::Invalid {
            what: what.clone(),
            report,
        })?;
        assemble_ign(parsed, f, depth + 1)
    };
    if let Some(r) = &p.replace {
        return child(r, "ignition.config.replace".into());
    }
    let mut cur = p;
    for (i, m) in cur.merge.clone().iter().enumerate() {
        let c = child(m, format!("ignition.config.merge[{i}]"))?;
        let merged = ignition::merge::merge(&cur.config, &c.config)
            .map_err(|e| AssembleError::Merge(e.to_string()))?;
        let locs = crate::jsonloc::LocationMap::default();
        cur = ignition::from_config(merged, Report::default(), &locs).map_err(|report| {
            AssembleError::Invalid {
                what: format!("the result of merging ignition.config.merge[{i}]"),
                report,
            }
        })?;
        cur.merge.clear();
    }
    Ok(cur)
}
