//! Errors of the qcow2 writer.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Qcow2Error {
    #[error("raw image is empty")]
    Empty,
    #[error("raw image size {0} is not a multiple of 512 bytes")]
    UnalignedSize(u64),
    #[error("raw image changed while converting: {0}")]
    Changed(String),
    #[error("image too large for qcow2 offsets: {0} bytes")]
    TooLarge(u64),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Qcow2Error>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Qcow2Error {
    let what = what.into();
    move |source| Qcow2Error::Io { what, source }
}
