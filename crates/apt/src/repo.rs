//! The top-level repository handle: verified InRelease plus index and pool access.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cache::{Cache, sha256_hex};
use crate::error::{Error, Result};
use crate::index::{IndexLocation, packages_text};
use crate::inrelease::verify;
use crate::keyring::{GoodSignature, Keyring};
use crate::release::Release;

/// The host's Debian archive keyring, the default `keyring`.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Largest InRelease accepted.
const MAX_INRELEASE: u64 = 64 << 20;

/// What repository to open and how to trust it.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// Base URL (`http://`, `https://` or `file://`), e.g. from [`crate::mirror::discover`].
    pub mirror: String,
    pub suite: String,
    pub components: Vec<String>,
    pub arch: String,
    /// Binary or armoured OpenPGP keyring.
    pub keyring: PathBuf,
    /// The time signatures, keys and Valid-Until are judged at.
    pub now: SystemTime,
    /// Use only the cache: the last verified InRelease and cached indexes.
    pub offline: bool,
}

/// An opened repository whose InRelease has been verified.
#[derive(Debug, Clone)]
pub struct Repo {
    config: RepoConfig,
    mirror: String,
    inrelease_url: String,
    release: Release,
    good_signatures: Vec<GoodSignature>,
    cache: Cache,
}

fn now_secs(now: SystemTime) -> Result<u64> {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Invalid {
            what: "time",
            msg: "`now` is before 1970".into(),
        })
}

impl Repo {
    /// Fetches (or, offline, loads) and verifies InRelease, checks suite, Valid-Until and
    /// components.
    pub fn open(config: &RepoConfig, cache: &Cache) -> Result<Repo> {
        let mirror = config.mirror.trim_end_matches('/').to_string();
        if mirror.is_empty() {
            return Err(Error::Invalid {
                what: "mirror",
                msg: "empty URL".into(),
            });
        }
        for (what, v) in [("suite", &config.suite), ("arch", &config.arch)] {
            if v.is_empty() || v.contains(['/', ' ']) {
                return Err(Error::Invalid {
                    what,
                    msg: format!("{v:?}"),
                });
            }
        }
        let now = now_secs(config.now)?;
        let keyring = Keyring::load(&config.keyring)?;
        let url = format!("{mirror}/dists/{}/InRelease", config.suite);
        let state = cache
            .root()
            .join("inrelease")
            .join(sha256_hex(format!("{mirror}\n{}", config.suite).as_bytes()));
        let bytes = if config.offline {
            std::fs::read(&state).map_err(|e| Error::Offline {
                msg: format!(
                    "no verified InRelease for {url} in the cache ({}: {e}); run once online",
                    state.display()
                ),
            })?
        } else {
            cache.transport().get_bytes(&url, MAX_INRELEASE)?
        };
        let verified = verify(&bytes, &keyring, now, &url)?;
        let release = verified.release;
        let bad = |msg: String| Error::Release {
            url: url.clone(),
            msg,
        };
        if config.offline {
            // Freshness cannot be re-established offline; the file was fresh when stored.
            release.check_suite(&config.suite).map_err(bad)?;
            if let Err(e) = release.check_valid_until(now) {
                log::warn!("offline: using the last verified InRelease {url} although it {e}");
            }
        } else {
            release.check(&config.suite, now).map_err(bad)?;
        }
        for c in &config.components {
            if !release.components.is_empty()
                && !release
                    .components
                    .iter()
                    .any(|rc| rc == c || rc.ends_with(&format!("/{c}")))
            {
                return Err(bad(format!(
                    "has no component {c:?} (it has: {})",
                    release.components.join(" ")
                )));
            }
        }
        if !config.offline {
            crate::cache::write_atomic(&state, &bytes)?;
        }
        Ok(Repo {
            config: config.clone(),
            mirror,
            inrelease_url: url,
            release,
            good_signatures: verified.good_signatures,
            cache: cache.clone(),
        })
    }

    /// The verified Release.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The signatures that were accepted.
    pub fn good_signatures(&self) -> &[GoodSignature] {
        &self.good_signatures
    }

    pub fn inrelease_url(&self) -> &str {
        &self.inrelease_url
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The verified text of `component`'s Packages index for the configured arch.
    pub fn packages_text(&self, component: &str) -> Result<String> {
        let loc = IndexLocation {
            mirror: &self.mirror,
            suite: &self.config.suite,
            component,
            arch: &self.config.arch,
            inrelease_url: &self.inrelease_url,
        };
        packages_text(&self.release, &loc, &self.cache, self.config.offline)
    }

    /// URL of a pool file (`Filename:` field of a Packages stanza).
    pub fn pool_url(&self, filename: &str) -> String {
        format!("{}/{}", self.mirror, filename.trim_start_matches('/'))
    }
}
