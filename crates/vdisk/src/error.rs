//! Errors of the disk format writers.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum VdiskError {
    #[error("raw image is empty")]
    Empty,
    #[error("raw image size {0} is not a multiple of 512 bytes")]
    UnalignedSize(u64),
    #[error("invalid extent map: {0}")]
    BadExtents(String),
    #[error("{format} cannot hold a {size}-byte disk: {why}")]
    TooLarge {
        format: &'static str,
        size: u64,
        why: &'static str,
    },
    #[error("invalid option: {0}")]
    BadOption(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, VdiskError>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> VdiskError {
    let what = what.into();
    move |source| VdiskError::Io { what, source }
}
