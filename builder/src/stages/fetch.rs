//! Stage 2: every .deb of the package set, verified, in the download cache.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use basalt_apt::{Cache, Download};

use super::resolve::{PackageSet, mirror_url};
use crate::lock::LockedPackage;
use crate::log;
use crate::profile::Profile;

/// Parallel downloads.
const JOBS: usize = 8;

/// Fetch (or find in the cache) every package; returns (name, path) in the
/// package set's order.
pub fn fetch(
    profile: &Profile,
    set: &PackageSet,
    cache: &Cache,
    offline: bool,
) -> Result<Vec<(String, PathBuf)>> {
    super::timings::stage("verify", || fetch_untimed(profile, set, cache, offline))
}

fn fetch_untimed(
    profile: &Profile,
    set: &PackageSet,
    cache: &Cache,
    offline: bool,
) -> Result<Vec<(String, PathBuf)>> {
    let mut missing: Vec<&LockedPackage> = Vec::new();
    let mut found = Vec::with_capacity(set.lock.packages.len());
    for (p, hit) in set
        .lock
        .packages
        .iter()
        .zip(lookup_all(cache, &set.lock.packages))
    {
        match hit.with_context(|| format!("checking the cache for {}", p.name))? {
            Some(path) => found.push(Some(path)),
            None => {
                missing.push(p);
                found.push(None);
            }
        }
    }
    if !missing.is_empty() {
        if offline {
            let names: Vec<&str> = missing.iter().take(10).map(|p| p.name.as_str()).collect();
            bail!(
                "{} packages are not in the cache and --offline forbids fetching them: {}{}",
                missing.len(),
                names.join(", "),
                if missing.len() > 10 { ", ..." } else { "" }
            );
        }
        let base = match &set.repo {
            Some(r) => r.config().mirror.clone(),
            None => mirror_url(profile)?,
        };
        let base = base.trim_end_matches('/').to_string();
        let downloads: Vec<Download> = missing
            .iter()
            .map(|p| Download {
                url: format!("{base}/{}", p.filename),
                sha256: p.sha256.clone(),
                size: p.size,
                label: format!("{}_{}", p.name, p.version),
            })
            .collect();
        let paths = cache.fetch_all(&downloads, JOBS).map_err(|e| {
            let hint = if set.from_lock {
                format!(
                    "\nthe lock {} names versions the mirror may no longer have; run `basalt lock` to re-resolve",
                    set.lock_path.display()
                )
            } else {
                String::new()
            };
            anyhow::anyhow!("{e}{hint}")
        })?;
        let mut it = paths.into_iter();
        for slot in found.iter_mut().filter(|s| s.is_none()) {
            *slot = it.next();
        }
    } else {
        log::step(&format!(
            "all {} packages are in the cache",
            set.lock.packages.len()
        ));
    }
    set.lock
        .packages
        .iter()
        .zip(found)
        .map(|(p, path)| match path {
            Some(path) => Ok((p.name.clone(), path)),
            None => bail!("internal: no path for {}", p.name),
        })
        .collect()
}

/// The cache lookup (size, then SHA-256 of the whole file) of every
/// package, hashed on every core; results in `packages` order.
fn lookup_all(
    cache: &Cache,
    packages: &[LockedPackage],
) -> Vec<basalt_apt::Result<Option<PathBuf>>> {
    basalt_tree::parallel::map_ordered(packages, |p| cache.get_sized(&p.sha256, p.size))
}
