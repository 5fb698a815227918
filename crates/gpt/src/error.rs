//! Errors of GPT planning, writing and reading.

use std::io;

use thiserror::Error;

/// Why a layout is impossible or a GPT cannot be read.
#[derive(Debug, Error)]
pub enum GptError {
    #[error("partition number {0} is outside 1..=128")]
    BadNumber(u32),
    #[error("partition number {0} is used twice")]
    DuplicateNumber(u32),
    #[error("partition {number} ({name:?}): {why}")]
    BadPartition {
        number: u32,
        name: String,
        why: String,
    },
    #[error(
        "partition {number} ({name:?}) starts at byte {start}, before the end of the previous partition (byte {prev_end})"
    )]
    Overlap {
        number: u32,
        name: String,
        start: u64,
        prev_end: u64,
    },
    #[error("partitions need {need} bytes but the disk has {have} bytes")]
    DiskTooSmall { need: u64, have: u64 },
    #[error("disk size {0} is not a multiple of the 512-byte sector size")]
    UnalignedDisk(u64),
    #[error("a Fill partition needs an explicit disk size")]
    FillWithoutDiskSize,
    #[error("no partitions given")]
    Empty,
    #[error("GPT {which} header at LBA {lba}: {why}")]
    BadHeader {
        which: &'static str,
        lba: u64,
        why: String,
    },
    #[error("GPT partition entry array at LBA {lba}: {why}")]
    BadEntries { lba: u64, why: String },
    #[error(
        "neither the primary nor the backup GPT header is valid (primary: {primary}; backup: {backup})"
    )]
    NoValidHeader {
        primary: Box<GptError>,
        backup: Box<GptError>,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, GptError>;

pub(crate) fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> GptError {
    move |source| GptError::Io { what, source }
}
