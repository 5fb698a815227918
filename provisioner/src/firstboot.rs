//! The whole first-boot provisioning run, as one call: find the config
//! (or take the one given), validate it, fetch and verify everything it
//! references, then apply it to a root. `basalt-provision apply` and the
//! initramfs `/init` both call [`provision`], so a config behaves the same
//! from the command line and at boot.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::apply::{self, Options, Outcome};
use crate::fetch::{Fetcher, resolve_plan};
use crate::sources;
use crate::userdata::{self, Format};

/// Where the config comes from.
pub enum ConfigInput<'a> {
    /// Bytes already read, with a name for messages (`file:/path`).
    Given { source: String, bytes: Vec<u8> },
    /// Search the platform's sources.
    Discover(&'a sources::Env),
}

/// What a run did: `None` when no source had a config.
pub struct Run {
    pub source: String,
    pub outcome: Outcome,
    pub warnings: Vec<String>,
}

/// Validate, fetch and apply. On any error nothing is applied to `root`
/// (the apply step restores what it touched; only its failure record stays).
pub fn provision(root: &Path, input: ConfigInput<'_>, now: Option<i64>) -> Result<Option<Run>> {
    let fetcher = Fetcher::new();
    let (source, bytes) = match input {
        ConfigInput::Given { source, bytes } => (source, bytes),
        ConfigInput::Discover(env) => {
            match sources::discover(env, &fetcher).context("searching config sources")? {
                Some(f) => (f.source, f.data),
                None => return Ok(None),
            }
        }
    };
    let text = userdata::to_text(&bytes).map_err(|r| anyhow::anyhow!("{}", r.render(&source)))?;
    let loaded = match userdata::load_str(&text) {
        Ok(l) => l,
        Err(r) => bail!(
            "config from {source} is invalid; nothing was applied:\n{}",
            r.render(&source)
        ),
    };
    let warnings: Vec<String> = loaded
        .warnings
        .diagnostics
        .iter()
        .map(|d| d.render(&source))
        .collect();
    let format = match loaded.format {
        Format::Ignition => "ignition",
        Format::CloudConfig => "cloud-config",
        Format::Script => "script",
    };
    let plan = userdata::assemble(loaded, &fetcher).context("resolving config references")?;
    let plan = resolve_plan(plan, &fetcher).context("fetching contents")?;
    let opts = Options {
        now,
        source: source.clone(),
        format: format.into(),
        warnings: warnings.clone(),
    };
    let outcome = apply::apply(&plan, root, &opts).context("applying config")?;
    Ok(Some(Run {
        source,
        outcome,
        warnings,
    }))
}
