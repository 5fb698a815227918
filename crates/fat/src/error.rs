//! Errors of the FAT32 writer and reader.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FatError {
    #[error("{path}: a {kind} cannot be stored on FAT (only directories and regular files)")]
    UnsupportedKind { path: String, kind: &'static str },
    #[error("{path}: bad FAT file name: {why}")]
    BadName { path: String, why: String },
    #[error("{dir}: names {a:?} and {b:?} differ only in case, and FAT is case-insensitive")]
    CaseClash { dir: String, a: String, b: String },
    #[error("{dir}: no free short name left for {name:?}")]
    ShortNamesExhausted { dir: String, name: String },
    #[error("{path}: directory needs {entries} entries, FAT allows at most 65536")]
    DirectoryTooLarge { path: String, entries: u64 },
    #[error("{path}: file is {size} bytes, FAT32 allows at most 4294967295")]
    FileTooLarge { path: String, size: u64 },
    #[error("volume label {0:?}: {1}")]
    BadLabel(String, String),
    #[error("volume size {size} bytes: {why}")]
    BadSize { size: u64, why: String },
    #[error("cluster size {0} is not a power of two between 512 and 32768")]
    BadClusterSize(u32),
    #[error("the tree needs {need} clusters of {cluster_size} bytes but the volume has {have}")]
    NoSpace {
        need: u64,
        have: u64,
        cluster_size: u32,
    },
    #[error("{path}: content is {got} bytes, the tree said {want}")]
    ContentChanged { path: String, want: u64, got: u64 },
    #[error("not a FAT32 volume: {0}")]
    NotFat32(String),
    #[error("corrupt FAT32 volume: {0}")]
    Corrupt(String),
    #[error("{path}: not found on the volume")]
    NotFound { path: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, FatError>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FatError {
    let what = what.into();
    move |source| FatError::Io { what, source }
}
