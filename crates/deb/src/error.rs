//! Typed errors of the .deb reader and the tar writer.

use std::io;
use std::path::PathBuf;

use basalt_tree::{PathError, TreeError};
use thiserror::Error;

/// Everything that can go wrong reading a .deb or writing a tar.
#[derive(Debug, Error)]
pub enum DebError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not an ar archive (missing \"!<arch>\\n\" magic)")]
    NotAr { path: PathBuf },
    #[error("{path}: ar member header at offset {offset} is truncated (file ends early)")]
    TruncatedHeader { path: PathBuf, offset: u64 },
    #[error("{path}: ar member header at offset {offset} is corrupt: {why}")]
    BadHeader {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error(
        "{path}: ar member {member:?} declares {declared} bytes but only {available} remain (truncated .deb?)"
    )]
    TruncatedMember {
        path: PathBuf,
        member: String,
        declared: u64,
        available: u64,
    },
    #[error("{path}: first member is {found:?}, expected \"debian-binary\"")]
    NoDebianBinary { path: PathBuf, found: String },
    #[error("{path}: unsupported .deb format version {version:?} (only 2.x is supported)")]
    BadFormatVersion { path: PathBuf, version: String },
    #[error("{path}: no {which} member (control.tar* / data.tar*) found")]
    MissingMember { path: PathBuf, which: &'static str },
    #[error("{path}: member {member:?} uses an unsupported compression")]
    UnsupportedCompression { path: PathBuf, member: String },
    #[error("{path}: member {member:?}: {what}")]
    Tar {
        path: PathBuf,
        member: String,
        what: String,
    },
    #[error("{path}: entry {entry:?} in {member}: {what}")]
    BadEntry {
        path: PathBuf,
        member: String,
        entry: String,
        what: String,
    },
    #[error("{path}: entry {entry:?}: {source}")]
    Tree {
        path: PathBuf,
        entry: String,
        source: TreeError,
    },
    #[error("{path}: entry {entry:?}: {source}")]
    Path {
        path: PathBuf,
        entry: String,
        source: PathError,
    },
    #[error("{path}: control.tar has no ./control file")]
    NoControl { path: PathBuf },
    #[error("writing tar entry {entry:?}: {what}")]
    TarWrite { entry: String, what: String },
    #[error("writing tar: {0}")]
    TarWriteIo(#[source] io::Error),
}

pub type Result<T, E = DebError> = std::result::Result<T, E>;
