//! Artifact writers: one module per output format family.

pub mod disk;
mod boot;
mod initramfs;
mod region;
mod split;
pub mod tar;
mod xz;
