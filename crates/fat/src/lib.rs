//! basalt-fat: a small FAT32 writer for the EFI system partition.
//!
//! [`FatPlan::new`] turns a [`basalt_tree::Tree`] (directories and regular
//! files) into a volume plan (geometry, 8.3 and long names, contiguous
//! cluster runs), refusing bad input before anything is written;
//! [`FatPlan::write`] writes it into a file at an offset, leaving unused
//! clusters as holes. [`FatVolume`] reads a volume back and can replace
//! the contents of existing files in place.

// The workspace declares rust-version 1.85; `is_multiple_of` needs 1.87.
#![allow(clippy::manual_is_multiple_of)]

mod bpb;
mod dirent;
mod error;
mod geometry;
mod names;
mod plan;
mod read;
mod update;
mod write;

pub use error::{FatError, Result};
pub use geometry::Geometry;
pub use plan::{FatOptions, FatPlan, MAX_DIR_ENTRIES};
pub use read::{FatDirEntry, FatVolume};

use std::fs::File;

/// Plan and write `tree` as a FAT32 volume into `f` at `offset`.
pub fn write_fat(
    tree: &basalt_tree::Tree,
    opts: &FatOptions,
    f: &File,
    offset: u64,
) -> Result<FatPlan> {
    let plan = FatPlan::new(tree, opts)?;
    plan.write(f, offset)?;
    Ok(plan)
}
