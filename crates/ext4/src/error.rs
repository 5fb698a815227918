//! Typed errors of planning and writing.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("unsupported block size {0}: only 4096 is supported")]
    BlockSize(u32),
    #[error("label {0:?} is longer than 16 bytes")]
    LabelTooLong(String),
    #[error("{what}: time {secs} is outside what ext4 can store (1901..2446)")]
    TimeOutOfRange { what: String, secs: i64 },
    #[error("{path}: name is longer than 255 bytes")]
    NameTooLong { path: String },
    #[error("{path}: symlink target {reason}")]
    SymlinkTarget { path: String, reason: &'static str },
    #[error("{path}: device number {major}:{minor} does not fit (major < 4096, minor < 2^20)")]
    DeviceNumber {
        path: String,
        major: u32,
        minor: u32,
    },
    #[error("{path}: {count} links exceed ext4's limit of 65000")]
    TooManyLinks { path: String, count: u64 },
    #[error("{path}: extended attribute {name:?}: {reason}")]
    Xattr {
        path: String,
        name: String,
        reason: String,
    },
    #[error(
        "{path}: extended attributes need {bytes} bytes, more than the inode plus one 4096-byte block hold"
    )]
    XattrsTooLarge { path: String, bytes: usize },
    #[error("{path}: file of {size} bytes is too large for ext4 extents")]
    FileTooLarge { path: String, size: u64 },
    #[error("invalid tree: {0}")]
    Tree(#[from] basalt_tree::TreeError),
    #[error("{path} must be a directory (it is a {kind})")]
    NotDir { path: String, kind: &'static str },
    #[error("filesystem of {blocks} blocks is too small")]
    TooSmall { blocks: u64 },
    #[error("filesystem of {blocks} blocks is too large")]
    TooLarge { blocks: u64 },
    #[error("{inodes} inodes do not fit a filesystem of {blocks} blocks")]
    TooManyInodes { inodes: u64, blocks: u64 },
    #[error("requested size {size_bytes} is not a positive multiple of 4096")]
    BadSize { size_bytes: u64 },
    #[error("tree does not fit in {size_bytes} bytes: it needs at least {needed_bytes} bytes")]
    DoesNotFit { size_bytes: u64, needed_bytes: u64 },
    #[error("invalid option: {0}")]
    Option(String),
    #[error("reading content of {path}: {source}")]
    ReadContent { path: String, source: io::Error },
    #[error("content of {path} changed since planning (expected {expected} bytes)")]
    ContentChanged { path: String, expected: u64 },
    #[error("writing image: {0}")]
    Write(#[source] io::Error),
}
