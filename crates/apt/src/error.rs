//! Typed errors of the repository client and the download cache.

use std::path::PathBuf;

/// Every failure of this crate. Messages name what failed, where, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable Debian mirror was found in the host's apt configuration.
    #[error(
        "no Debian mirror found in the apt configuration under {etc_apt} \
         (looked at sources.list.d/*.sources, then sources.list); set one with `mirror:` \
         in the profile, `--mirror URL` on the command line, or point either at a local \
         mirror with a file:///path/to/debian URL"
    )]
    NoMirror { etc_apt: PathBuf },

    /// A configuration or metadata file has bad syntax.
    #[error("{file}:{line}: {msg}")]
    Syntax {
        file: String,
        line: usize,
        msg: String,
    },

    /// A URL this crate cannot fetch (unsupported scheme, malformed).
    #[error("unsupported URL {url}: {msg}")]
    BadUrl { url: String, msg: String },

    /// The server (or file:// directory) does not have the file.
    #[error("fetching {url}: not found")]
    NotFound { url: String },

    /// Fetching failed (after retries when the error looked transient).
    #[error("fetching {url}: {msg}")]
    Fetch { url: String, msg: String },

    /// The keyring could not be read or holds no usable key.
    #[error("keyring {path}: {msg}")]
    Keyring { path: PathBuf, msg: String },

    /// The InRelease signature did not verify; `reasons` lists why each signature was rejected.
    #[error("InRelease {url}: no acceptable signature: {reasons}")]
    BadSignature { url: String, reasons: String },

    /// The InRelease file is malformed or its content is not acceptable.
    #[error("InRelease {url}: {msg}")]
    Release { url: String, msg: String },

    /// A downloaded file has the wrong size.
    #[error("{url}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },

    /// A downloaded file has the wrong SHA256.
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    /// The InRelease does not list a file that is needed.
    #[error("InRelease {url} does not list {path} (is the component or architecture right?)")]
    NotListed { url: String, path: String },

    /// Decompressing an index failed.
    #[error("decompressing {url}: {msg}")]
    Decompress { url: String, msg: String },

    /// A local file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Offline mode was asked for but nothing usable is cached.
    #[error("offline: {msg}")]
    Offline { msg: String },

    /// A value given by the caller is invalid.
    #[error("invalid {what}: {msg}")]
    Invalid { what: &'static str, msg: String },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
