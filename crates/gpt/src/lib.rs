//! basalt-gpt: GUID Partition Table planning, writing and reading.
//!
//! [`DiskLayout::plan`] places partitions (1 MiB aligned, validated) and
//! [`DiskLayout::write_headers`] writes the protective MBR, primary and
//! backup headers and entry arrays. [`read_gpt`] checks a GPT's CRCs and
//! decodes it; [`relocate_backup`] and [`grow_partition_to_end`] serve the
//! first boot after the disk was enlarged. Sector size is 512 bytes.
//!
//! With `default-features = false` (no `seed` feature, so no
//! `guid_from_seed`) the crate needs only std and thiserror, so the
//! provisioner's static /init can link the reader.

// The workspace declares rust-version 1.85; `is_multiple_of` needs 1.87.
#![allow(clippy::manual_is_multiple_of)]

mod attrs;
mod crc32;
mod entry;
mod error;
mod guid;
mod header;
mod layout;
mod mbr;
mod read;
mod write;

pub use attrs::Attributes;
pub use crc32::crc32;
pub use entry::{ENTRY_SIZE, NAME_UNITS, PartitionEntry};
pub use error::{GptError, Result};
#[cfg(feature = "seed")]
pub use guid::guid_from_seed;
pub use guid::{Guid, types};
pub use header::{GptHeader, SECTOR};
pub use layout::{
    ALIGN, BACKUP_SECTORS, DiskLayout, FIRST_USABLE_LBA, PartSize, PartSpec, Partition,
};
pub use mbr::protective_mbr;
pub use read::{Gpt, grow_partition_to_end, read_gpt, relocate_backup};
