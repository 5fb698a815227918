//! `<profile>.lock`: the exact version and SHA-256 of every .deb a profile
//! resolved to, so that later builds use the very same bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::profile::{Location, Profile};

/// Bumped whenever the format changes incompatibly.
pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Path below the mirror root.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub lock_version: u32,
    pub profile: String,
    pub suite: String,
    pub architecture: String,
    /// The profile's requested packages when the lock was made: a lock made
    /// for another package list is stale.
    pub requested: Vec<String>,
    pub excluded: Vec<String>,
    pub recommends: bool,
    pub essential: bool,
    /// The `Date:` of the InRelease the lock was resolved from; the default
    /// SOURCE_DATE_EPOCH of builds from this lock.
    pub release_date: i64,
    pub packages: Vec<LockedPackage>,
}

impl Lockfile {
    pub fn read(path: &Path) -> Result<Lockfile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let lock: Lockfile = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: invalid lock file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if lock.lock_version != LOCK_VERSION {
            bail!(
                "{}: lock format {} is not supported (expected {LOCK_VERSION}); run `basalt lock` again",
                path.display(),
                lock.lock_version
            );
        }
        Ok(lock)
    }

    /// Write atomically (temp file, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("serialising lock")?;
        text.push('\n');
        crate::atomic::write_file(path, text.as_bytes())
    }

    /// Refuse a lock made for a different package request.
    pub fn check_matches(&self, profile: &Profile, path: &Path) -> Result<()> {
        let stale = |what: &str| -> Result<()> {
            bail!(
                "{}: the lock is stale: the profile's {what} changed since it was written; run `basalt lock` to refresh it",
                path.display()
            )
        };
        if self.suite != profile.distribution.suite
            || self.architecture != profile.distribution.architecture
        {
            return stale("distribution");
        }
        if self.requested != profile.packages || self.excluded != profile.excluded_packages {
            return stale("package list");
        }
        if self.recommends != profile.recommends || self.essential != profile.essential {
            return stale("recommends/essential setting");
        }
        Ok(())
    }
}

/// Where a profile's lock lives unless `--lock` says otherwise.
pub fn default_lock_path(profile: &Profile) -> PathBuf {
    match &profile.files[0] {
        Location::Disk(p) => p.with_extension("lock"),
        Location::Embedded(p) => {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "basalt".into());
            PathBuf::from(format!("{stem}.lock"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lockfile {
        Lockfile {
            lock_version: LOCK_VERSION,
            profile: "t".into(),
            suite: "trixie".into(),
            architecture: "amd64".into(),
            requested: vec!["systemd".into()],
            excluded: vec![],
            recommends: false,
            essential: true,
            release_date: 1_700_000_000,
            packages: vec![LockedPackage {
                name: "systemd".into(),
                version: "257.9-1".into(),
                architecture: "amd64".into(),
                filename: "pool/main/s/systemd/systemd_257.9-1_amd64.deb".into(),
                size: 10,
                sha256: "00".repeat(32),
            }],
        }
    }

    #[test]
    fn round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("basalt-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.lock");
        sample().write(&p).unwrap();
        assert_eq!(Lockfile::read(&p).unwrap(), sample());
        let cases = [
            ("{", "x.lock:1:1: invalid lock file"),
            (
                "{\"lock_version\": 1, \"bogus\": 2}",
                "unknown field `bogus`",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&p, text).unwrap();
            let err = format!("{:#}", Lockfile::read(&p).unwrap_err());
            assert!(err.contains(want), "{err}");
        }
        let mut old = sample();
        old.lock_version = 0;
        old.write(&p).unwrap();
        assert!(format!("{:#}", Lockfile::read(&p).unwrap_err()).contains("not supported"));
    }
}
