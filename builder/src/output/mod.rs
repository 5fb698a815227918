//! Artifact writers: one module per output format family.

pub mod disk;
mod region;
mod split;
pub mod tar;
mod xz;
