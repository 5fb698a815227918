//! Stage 1: from a profile to the exact package set, through the signed
//! repository index and the resolver, or straight from a lock file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use basalt_apt::{Cache, Repo, RepoConfig};
use basalt_debian::{PackageIndex, Request, Resolution};

use crate::cli::ProfileArgs;
use crate::lock::{LOCK_VERSION, LockedPackage, Lockfile, default_lock_path};
use crate::log;
use crate::profile::Profile;

/// The mirror to use: `--mirror`, then the profile, then the host's apt
/// configuration.
pub fn mirror_url(profile: &Profile) -> Result<String> {
    if let Some(m) = &profile.distribution.mirror {
        return Ok(m.clone());
    }
    let m = basalt_apt::discover_mirror(Path::new("/etc/apt"))
        .context("finding the default Debian mirror")?;
    log::detail(&format!("mirror {} (from {})", m.url, m.found_in));
    Ok(m.url)
}

pub fn open_cache() -> Result<Cache> {
    Cache::open_default().context("opening the download cache")
}

/// Open and verify the profile's repository.
pub fn open_repo(profile: &Profile, args: &ProfileArgs, cache: &Cache) -> Result<Repo> {
    let d = &profile.distribution;
    let config = RepoConfig {
        mirror: mirror_url(profile)?,
        suite: d.suite.clone(),
        components: d.components.clone(),
        arch: d.architecture.clone(),
        keyring: d.keyring.clone(),
        now: SystemTime::now(),
        offline: args.offline,
    };
    log::step(&format!("verifying {} InRelease", d.suite));
    Repo::open(&config, cache)
        .with_context(|| format!("opening the {} repository at {}", d.suite, config.mirror))
}

/// Load every component's verified Packages index.
pub fn load_index(profile: &Profile, repo: &Repo) -> Result<PackageIndex> {
    let mut index = PackageIndex::new(&profile.distribution.architecture);
    for comp in &profile.distribution.components {
        let text = repo
            .packages_text(comp)
            .with_context(|| format!("loading the {comp} Packages index"))?;
        index
            .add_packages_text(comp, &text)
            .with_context(|| format!("parsing the {comp} Packages index"))?;
    }
    Ok(index)
}

/// Resolve the profile against the repository.
pub fn resolve(profile: &Profile, index: &PackageIndex) -> Result<Resolution> {
    let request = Request {
        roots: profile.packages.clone(),
        arch: profile.distribution.architecture.clone(),
        include_essential: profile.essential,
        with_recommends: profile.recommends,
        pins: Default::default(),
        excludes: profile
            .excluded_packages
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
    };
    log::step(&format!(
        "resolving {} requested packages",
        request.roots.len()
    ));
    let res =
        basalt_debian::resolve(index, &request).context("resolving the profile's packages")?;
    Ok(res)
}

/// A lock describing `res`.
pub fn lock_from(profile: &Profile, repo: &Repo, res: &Resolution) -> Result<Lockfile> {
    let release_date =
        i64::try_from(repo.release().date_secs).context("Release date out of range")?;
    Ok(Lockfile {
        lock_version: LOCK_VERSION,
        profile: profile.name.clone(),
        suite: profile.distribution.suite.clone(),
        architecture: profile.distribution.architecture.clone(),
        requested: profile.packages.clone(),
        excluded: profile.excluded_packages.clone(),
        recommends: profile.recommends,
        essential: profile.essential,
        release_date,
        packages: res
            .packages
            .iter()
            .map(|r| LockedPackage {
                name: r.package.name.clone(),
                version: r.package.version.to_string(),
                architecture: r.package.architecture.clone(),
                filename: r.package.filename.clone(),
                size: r.package.size,
                sha256: r.package.sha256.clone(),
            })
            .collect(),
    })
}

/// The package set a build uses: the lock when present, a fresh
/// resolution otherwise. The repository is opened only when needed.
pub struct PackageSet {
    pub lock: Lockfile,
    pub lock_path: PathBuf,
    pub from_lock: bool,
    pub repo: Option<Repo>,
}

pub fn package_set(profile: &Profile, args: &ProfileArgs, cache: &Cache) -> Result<PackageSet> {
    super::timings::stage("resolve", || package_set_untimed(profile, args, cache))
}

fn package_set_untimed(profile: &Profile, args: &ProfileArgs, cache: &Cache) -> Result<PackageSet> {
    let lock_path = args
        .lock
        .clone()
        .unwrap_or_else(|| default_lock_path(profile));
    if lock_path.exists() {
        let lock = Lockfile::read(&lock_path)?;
        lock.check_matches(profile, &lock_path)?;
        log::step(&format!(
            "using lock {} ({} packages)",
            lock_path.display(),
            lock.packages.len()
        ));
        return Ok(PackageSet {
            lock,
            lock_path,
            from_lock: true,
            repo: None,
        });
    }
    let repo = open_repo(profile, args, cache)?;
    let index = load_index(profile, &repo)?;
    let res = resolve(profile, &index)?;
    let lock = lock_from(profile, &repo, &res)?;
    Ok(PackageSet {
        lock,
        lock_path,
        from_lock: false,
        repo: Some(repo),
    })
}
