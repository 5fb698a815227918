//! Errors of the cpio writer.

use std::io;

use thiserror::Error;

/// Why an archive could not be built or written.
#[derive(Debug, Error)]
pub enum CpioError {
    #[error("cpio member {path:?}: {field} value {value} does not fit the newc 32-bit field")]
    FieldOverflow {
        path: String,
        field: &'static str,
        value: i128,
    },
    #[error("cpio member {path:?}: invalid name ({why})")]
    BadName { path: String, why: &'static str },
    #[error("cpio member {0:?} appears twice")]
    Duplicate(String),
    #[error(
        "cpio member {path:?} is a hard link to {target:?}, which is not a regular file earlier in the archive"
    )]
    BadHardLink { path: String, target: String },
    #[error(
        "cpio member {path:?}: content changed size while writing (declared {declared}, read {read})"
    )]
    SizeMismatch {
        path: String,
        declared: u64,
        read: u64,
    },
    #[error("reading the content of cpio member {path:?}")]
    ReadContent {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("writing cpio archive")]
    Write(#[source] io::Error),
    #[error("setting up {algo} compression")]
    Compressor {
        algo: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{algo} compression level {level} out of range {min}..={max}")]
    BadLevel {
        algo: &'static str,
        level: i32,
        min: i32,
        max: i32,
    },
}
