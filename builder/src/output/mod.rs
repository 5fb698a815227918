//! Artifact writers: one module per output format family.

mod boot;
pub mod disk;
mod initramfs;
pub mod payload;
mod region;
mod split;
pub mod tar;
mod xz;
