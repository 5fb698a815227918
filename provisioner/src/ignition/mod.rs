//! Ignition configs, spec 3.0 through 3.6.
//!
//! Parsing uses the `ignition-config` crate, which has typed structs for every
//! 3.x version and reports unused keys. Since 3.x versions only add fields, a
//! config of any version is re-read as 3.6 (lossless) and converted once, in
//! `convert`, which also performs Ignition's semantic validation.

mod convert;
pub mod merge;

use crate::diag::{Diagnostic, Report};
use crate::jsonloc::{LocationMap, from_dollar_path};
use crate::plan::{Plan, Source};
use ignition_config::v3_6 as ign;

/// A parsed, validated Ignition config.
#[derive(Debug)]
pub struct Parsed {
    pub plan: Plan,
    /// The config as 3.6 structs (for merging).
    pub config: ign::Config,
    /// Configs to merge (`ignition.config.merge`), in order.
    pub merge: Vec<Source>,
    /// Config that replaces this one (`ignition.config.replace`).
    pub replace: Option<Source>,
    /// Warnings (unused keys and the like).
    pub warnings: Report,
}

/// Parse and validate. On failure the report holds every problem found.
pub fn parse(text: &str) -> Result<Parsed, Report> {
    let locs = LocationMap::build(text);
    let config = parse_typed(text, &locs)?;
    from_config(config.0, config.1, &locs)
}

/// Validate and convert an already typed (e.g. merged) config.
pub fn from_config(
    config: ign::Config,
    warnings: Report,
    locs: &LocationMap,
) -> Result<Parsed, Report> {
    let mut ctx = convert::Ctx {
        locs,
        report: warnings,
    };
    let plan = convert::to_plan(&config, &mut ctx);
    let mut merge = Vec::new();
    let mut replace = None;
    if let Some(c) = &config.ignition.config {
        for (i, r) in c.merge.iter().flatten().enumerate() {
            if let Some(s) =
                convert::resource(r, &format!("ignition.config.merge[{i}]"), true, &mut ctx)
            {
                merge.push(s);
            }
        }
        if let Some(r) = &c.replace {
            replace = convert::resource(r, &"ignition.config.replace", true, &mut ctx);
        }
    }
    let mut report = ctx.report;
    report.sort();
    if report.has_errors() {
        return Err(report);
    }
    Ok(Parsed {
        plan,
        config,
        merge,
        replace,
        warnings: report,
    })
}

/// JSON syntax, then typed parsing of the declared version, then up-conversion to 3.6.
fn parse_typed(text: &str, locs: &LocationMap) -> Result<(ign::Config, Report), Report> {
    let mut report = Report::default();
    if !locs.root_is_object() {
        report.push(Diagnostic::error(1, 1, None, "config is not a JSON object"));
        return Err(report);
    }
    let parsed = ignition_config::Config::parse_str(text);
    // The checks below ask the location map about three paths, a pass over
    // the text. Their answers are known without it when the config parsed
    // (so it is valid JSON with a string `ignition.version`) and its text has
    // none of: `luks`, `raid` (the only ways to name those keys), a literal
    // `ignition.version` key (which could hide the real one), or a `\u`
    // escape (which could spell any of them).
    let known = parsed.is_ok()
        && !["luks", "raid", "ignition.version", "\\u"]
            .iter()
            .any(|k| text.contains(k));
    if !known {
        locs.probe(&["storage.luks", "storage.raid", "ignition.version"]);
        // Refuse unsupported sections loudly, whatever their contents.
        for key in ["luks", "raid"] {
            let p = format!("storage.{key}");
            if locs.contains(&p) {
                let (l, c) = locs.key_pos(&p);
                report.push(Diagnostic::error(
                    l,
                    c,
                    Some(p.clone()),
                    format!("{p} is not supported by Basalt; remove it"),
                ));
            }
        }
        if !locs.contains("ignition.version") {
            let (l, c) = locs.value_pos("ignition");
            report.push(Diagnostic::error(
                l,
                c,
                Some("ignition.version".into()),
                "ignition.version is missing",
            ));
            return Err(report);
        }
    }
    let (cfg, warns) = match parsed {
        Ok(x) => x,
        Err(e) => {
            let (l, c, path) = match &e {
                ignition_config::Error::Serialization(se) => (se.line(), se.column(), None),
                _ => {
                    let (l, c) = locs.value_pos("ignition.version");
                    (l, c, Some("ignition.version".to_string()))
                }
            };
            let msg = match &e {
                ignition_config::Error::UnknownVersion(v) => {
                    format!("unsupported Ignition config version {v} (supported: 3.0.0 to 3.6.0)")
                }
                ignition_config::Error::InvalidVersion(v) => format!("invalid config version: {v}"),
                ignition_config::Error::Serialization(se)
                    if matches!(
                        se.classify(),
                        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
                    ) =>
                {
                    format!("invalid JSON: {se}")
                }
                other => format!("invalid config: {other}"),
            };
            report.push(Diagnostic::error(l, c, path, msg));
            return Err(report);
        }
    };
    for w in warns {
        let ignition_config::Warning::UnusedKey(p) = w else {
            continue;
        };
        let p = from_dollar_path(&p);
        let (l, c) = locs.key_pos(&p);
        report.push(Diagnostic::warning(
            l,
            c,
            Some(p.clone()),
            format!("unknown key {p:?} (ignored by this config version)"),
        ));
    }
    // 3.x versions only add fields: a config of any version reads losslessly as 3.6.
    let v36 = match cfg {
        ignition_config::Config::V3_6(c) => c,
        _ => serde_json::from_str::<ign::Config>(text).map_err(|e| {
            let mut r = report.clone();
            r.push(Diagnostic::error(
                e.line(),
                e.column(),
                None,
                format!("reading the config as version 3.6: {e}"),
            ));
            r
        })?,
    };
    if report.has_errors() {
        return Err(report);
    }
    Ok((v36, report))
}

#[cfg(test)]
mod tests;
