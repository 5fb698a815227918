//! basalt-deb: reading Debian binary packages (.deb) into the basalt tree
//! model, and writing a tree as a deterministic tar.
//!
//! - [`DebPackage::open`] checks a .deb's structure and exposes its control
//!   paragraph, conffiles and maintainer scripts (never run).
//! - [`unpack_data`] streams a package's data.tar into a [`basalt_tree::Tree`],
//!   storing large contents in a [`basalt_tree::ContentStore`].
//! - [`write_tar`] writes a tree as a pax tar; [`read_tar`] reads one back.
//! - [`fixture`] builds synthetic .debs in code for tests.

mod ar;
mod compression;
mod error;
pub mod fixture;
mod links;
mod merge;
mod package;
mod pax;
mod tarwrite;
mod unpack;

pub use ar::{ArMember, list_members, write_ar};
pub use compression::{Compression, Integrity, compress};
pub use error::{DebError, Result};
pub use links::{join_clamped, preserve_hard_links, resolve};
pub use merge::{merge_unpacked, unpack_data_alone, unpack_data_alone_with};
pub use package::{DebPackage, MAINTAINER_SCRIPTS, control_field};
pub use tarwrite::{member_name, write_tar};
pub use unpack::{DirPolicy, UnpackOptions, UnpackReport, read_tar, unpack_data, unpack_data_with};

#[cfg(test)]
mod tests;
