//! basalt-payload: signed A/B update payloads.
//!
//! Layout (see README.md): a 64-byte header ([`header`]), compact JSON
//! metadata ([`Metadata`]), a 64-byte Ed25519 signature over header +
//! metadata, then the slot image, kernel and initrd at 4096-aligned offsets.
//! The metadata carries every section's SHA-256, so the signature covers
//! every byte; [`Payload::open`] checks all of it before returning.

// The workspace declares rust-version 1.85; `is_multiple_of` needs 1.87.
#![allow(clippy::manual_is_multiple_of)]

mod error;
pub mod header;
pub mod index;
pub mod keys;
mod meta;
mod read;
mod record;
mod source;
mod version;
mod write;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::{PayloadError, Result};
pub use meta::{
    AGENT_ARGS, MAX_SALT, Metadata, SectionInfo, VerityInfo, check_cmdline, check_label,
};
pub use read::{Payload, Section, SectionReader};
pub use record::SlotRecord;
pub use source::Source;
pub use version::compare_versions;
pub use write::{PayloadInfo, write_payload};

#[cfg(test)]
mod tests;
