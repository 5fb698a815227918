//! basalt-ext4: writes an ext4 filesystem image straight from a
//! [`basalt_tree::Tree`], without mkfs, mounts or root.
//!
//! ```no_run
//! # fn demo(tree: &basalt_tree::Tree) -> Result<(), basalt_ext4::Error> {
//! let opts = basalt_ext4::Options::new(basalt_ext4::Mode::ReadOnly { slack_percent: 2 });
//! let plan = basalt_ext4::plan(tree, &opts)?;
//! let mut f = std::fs::File::create("usr.ext4").map_err(basalt_ext4::Error::Write)?;
//! plan.write_to(&mut f)?;
//! # Ok(()) }
//! ```
//!
//! [`plan`] validates the whole tree and computes the layout first; only
//! then does [`Plan::write`] produce bytes, streaming file contents in large
//! sequential writes and seeking over holes.

mod alloc;
mod block_writer;
mod collect;
mod crc;
mod dir;
mod dx_hash;
mod error;
mod extent_tree;
pub mod format;
mod geometry;
mod htree;
mod le;
mod metadata;
mod options;
mod plan;
mod scan;
mod write;
mod xattrs;

pub use error::Error;
pub use options::{Mode, Options};
pub use plan::{Plan, plan};
