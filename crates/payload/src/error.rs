//! Typed errors of payload writing and reading.

use std::io;

/// Everything that can go wrong with a payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("not a Basalt update payload (magic {found:?}, expected \"BASALTUP\")")]
    BadMagic { found: String },
    #[error("payload format version {0} is not supported (this agent reads version {1})")]
    UnsupportedVersion(u32, u32),
    #[error("payload header: {0}")]
    BadHeader(String),
    #[error(
        "payload is truncated or has trailing data: header says {expected} bytes, file has {actual}"
    )]
    Truncated { expected: u64, actual: u64 },
    #[error(
        "payload signature does not verify with the given public key (wrong key, or header/metadata tampered with)"
    )]
    BadSignature,
    #[error("payload metadata: {0}")]
    Metadata(String),
    #[error("{section} section is corrupt: SHA-256 {actual}, metadata says {expected}")]
    HashMismatch {
        section: &'static str,
        expected: String,
        actual: String,
    },
    #[error(
        "{section} source changed while the payload was written (SHA-256 differs between passes)"
    )]
    SourceChanged { section: &'static str },
    #[error("key: {0}")]
    Key(String),
    #[error("update index: {0}")]
    Index(String),
    #[error(
        "update index signature does not verify with the given public key (wrong key, or index.json tampered with)"
    )]
    BadIndexSignature,
}

pub type Result<T> = std::result::Result<T, PayloadError>;

/// Wraps an io::Error with what was being done.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> PayloadError {
    let what = what.into();
    move |source| PayloadError::Io { what, source }
}
