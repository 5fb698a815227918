//! Errors of the ld.so.cache writer and scanner.

/// Why a cache could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    /// The cache would not fit the format's 32-bit offsets and counts.
    #[error("ld.so.cache too large: {0}")]
    TooLarge(String),
    /// Something in the tree ldconfig would handle but this writer does not.
    #[error("{path}: {why}")]
    Unsupported { path: String, why: String },
    /// A file of the tree could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, LdCacheError>;
