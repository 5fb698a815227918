//! Profiles: YAML files with `extends:` inheritance and a strict schema.
//!
//! Each file is parsed on its own (so every error names its `file:line:column`),
//! then the chain is merged from the root ancestor down: scalars are
//! overridden by children, package and path lists accumulate, users, groups
//! and maps merge by key.

mod locate;
mod merge;
mod schema;
pub mod size;
mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Serialize;

pub use schema::{Group, User};
pub use source::{DEFAULT_PROFILE, Location};

/// A problem in a profile, with where it is.
#[derive(Debug)]
pub struct ProfileError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "{}:{l}:{c}: {}: {}", self.file, self.key, self.message)
            }
            _ => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

impl std::error::Error for ProfileError {}

/// Partition sizes of the disk image, in bytes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiskSizes {
    pub seed: String,
    pub esp: u64,
    pub bios_boot: u64,
    pub usr: u64,
    pub oem: u64,
    pub root: u64,
}

/// The Debian distribution a profile builds from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Distribution {
    pub suite: String,
    pub components: Vec<String>,
    pub architecture: String,
    /// `None`: take it from the host's apt configuration.
    pub mirror: Option<String>,
    pub keyring: PathBuf,
}

/// A fully merged and validated profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The files it came from, leaf first.
    #[serde(serialize_with = "ser_locations")]
    pub files: Vec<Location>,
    pub name: String,
    pub version: String,
    pub distribution: Distribution,
    pub packages: Vec<String>,
    pub excluded_packages: Vec<String>,
    pub recommends: bool,
    pub essential: bool,
    pub path_excludes: Vec<String>,
    pub path_keep: Vec<String>,
    /// `None` keeps every kernel module.
    pub kernel_modules: Option<Vec<String>>,
    pub kernel_cmdline: Vec<String>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub alternatives: BTreeMap<String, String>,
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    #[serde(serialize_with = "ser_locations")]
    pub overlays: Vec<Location>,
    pub os_release: BTreeMap<String, String>,
    pub variables: BTreeMap<String, serde_json::Value>,
    pub disk: DiskSizes,
    /// Update payload signing key (`update.signing_key`), resolved against the profile's directory.
    pub signing_key: Option<PathBuf>,
}

fn ser_locations<S: serde::Serializer>(locs: &[Location], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(locs.iter().map(Location::display))
}

/// Command-line overrides applied on top of the profile.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub version: Option<String>,
    pub mirror: Option<String>,
}

impl Profile {
    /// Load a profile from disk, or the embedded default when `path` is None.
    pub fn load(path: Option<&std::path::Path>, ov: &Overrides) -> Result<Profile> {
        let loc = match path {
            Some(p) => Location::Disk(p.to_path_buf()),
            None => Location::Embedded(DEFAULT_PROFILE.into()),
        };
        Profile::load_location(&loc, ov)
    }

    pub fn load_location(loc: &Location, ov: &Overrides) -> Result<Profile> {
        let chain = merge::read_chain(loc)?;
        let mut p = merge::merge(&chain)?;
        if let Some(v) = &ov.version {
            p.version = v.clone();
        }
        if let Some(m) = &ov.mirror {
            p.distribution.mirror = Some(m.clone());
        }
        p.render_os_release()?;
        Ok(p)
    }

    /// The variables templated files and os-release values see.
    pub fn template_context(&self) -> serde_json::Value {
        let mut ctx = serde_json::Map::new();
        for (k, v) in &self.variables {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert("name".into(), self.name.clone().into());
        ctx.insert("version".into(), self.version.clone().into());
        ctx.insert("suite".into(), self.distribution.suite.clone().into());
        ctx.insert(
            "architecture".into(),
            self.distribution.architecture.clone().into(),
        );
        serde_json::Value::Object(ctx)
    }

    fn render_os_release(&mut self) -> Result<()> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let ctx = self.template_context();
        let mut out = BTreeMap::new();
        for (k, v) in &self.os_release {
            let rendered = env.render_str(v, &ctx).map_err(|e| ProfileError {
                file: self.files[0].display(),
                line: None,
                column: None,
                key: format!("os_release.{k}"),
                message: format!("template error: {e}"),
            })?;
            if rendered.contains(['\n', '"', '\\', '`', '$']) {
                bail!(ProfileError {
                    file: self.files[0].display(),
                    line: None,
                    column: None,
                    key: format!("os_release.{k}"),
                    message:
                        "value must not contain newlines, quotes, backslashes, backticks or '$'"
                            .into(),
                });
            }
            out.insert(k.clone(), rendered);
        }
        out.insert("VERSION_ID".into(), self.version.clone());
        out.insert("IMAGE_ID".into(), self.name.clone());
        out.insert("IMAGE_VERSION".into(), self.version.clone());
        self.os_release = out;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
