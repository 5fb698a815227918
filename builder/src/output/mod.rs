//! Artifact writers: one module per output format family.

mod boot;
pub mod disk;
mod gce;
mod initramfs;
pub mod oci;
pub mod payload;
pub mod pxe;
pub(crate) mod region;
mod seed_etc;
mod split;
pub mod tar;
mod vhd;
mod vmdk;
mod xz;
