//! basalt-vdisk: cloud and hypervisor disk formats written from a sparse
//! raw image, streamed (the disk is never held in memory), deterministic,
//! reading only the raw image's data regions:
//!
//! - [`write_vmdk`]: VMDK streamOptimized (VMware, cloud imports);
//! - [`write_vhd_fixed`]: fixed VHD, 1 MiB aligned (Azure);
//! - [`write_gce`]: `disk.raw` in a GNU sparse tar, gzip-compressed (GCE).

// The workspace declares rust-version 1.85; `is_multiple_of` needs 1.87.
#![allow(clippy::manual_is_multiple_of)]

mod error;
pub mod gce;
mod source;
pub mod tar;
pub mod vhd;
pub mod vmdk;

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod testutil;

pub use error::{Result, VdiskError};
pub use gce::write_gce;
pub use source::{RawDisk, is_zero};
pub use vhd::{VhdOptions, VhdStats, write_vhd_fixed};
pub use vmdk::{VmdkOptions, VmdkStats, write_vmdk};
