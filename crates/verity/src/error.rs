//! Errors of the dm-verity writer and verifier.

use std::io;

use thiserror::Error;

/// Why hashing, writing or verifying a dm-verity area failed.
#[derive(Debug, Error)]
pub enum VerityError {
    #[error("data size {0} bytes is not a multiple of the {1}-byte data block size")]
    UnalignedData(u64, u32),
    #[error("data area is empty: dm-verity needs at least one data block")]
    EmptyData,
    #[error("salt is {0} bytes; dm-verity allows at most {1}")]
    SaltTooLong(usize, usize),
    #[error("hash offset {0} is not a multiple of 512 bytes")]
    UnalignedHashOffset(u64),
    #[error("size computation overflowed for {0} bytes of data")]
    Overflow(u64),
    #[error("superblock at byte {offset}: {why}")]
    BadSuperblock { offset: u64, why: String },
    #[error("hash block {block} of level {level} does not match the data it covers")]
    HashMismatch { level: usize, block: u64 },
    #[error("root hash mismatch: expected {expected}, computed {computed}")]
    RootMismatch { expected: String, computed: String },
    #[error("{what} at byte {offset}: {source}")]
    Io {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, VerityError>;
