//! basalt-apt: a Debian repository client and a content-addressed download cache.
//!
//! - [`mirror::discover`] finds the default mirror in the host's apt configuration.
//! - [`Repo::open`] fetches `dists/<suite>/InRelease`, verifies its OpenPGP signature
//!   against a keyring ([`keyring`] documents the rules) and parses the Release.
//! - [`Repo::packages_text`] returns a verified `Packages` index.
//! - [`Cache::fetch_all`] downloads files in parallel into `<root>/blobs/sha256/<hex>`,
//!   verifying size and SHA256; [`Cache::get`] returns verified entries for offline use.

pub mod cache;
pub mod deb822;
pub mod error;
pub mod index;
pub mod inrelease;
pub mod keyring;
pub mod mirror;
pub mod progress;
pub mod release;
pub mod repo;
pub mod transport;

pub use cache::{Cache, Download};
pub use error::{Error, Result};
pub use keyring::{GoodSignature, Keyring};
pub use mirror::{Mirror, discover as discover_mirror};
pub use release::{FileInfo, Release};
pub use repo::{DEFAULT_KEYRING, Repo, RepoConfig};
pub use transport::Transport;
