//! The in-memory tree model that every Basalt filesystem writer reads.
//!
//! A [`Tree`] maps absolute, normalised paths (`/`, `/usr`, `/usr/bin/ls`) to
//! [`Entry`] values. Ownership, modes, timestamps and xattrs live in the model,
//! so nothing is ever chowned on the host and no root is needed. Iteration is
//! in byte order of the path, which puts every directory before its contents
//! and makes every writer deterministic.

mod content;
mod entry;
pub mod parallel;
mod path;
mod tree;

pub use content::{Content, ContentStore, INLINE_LIMIT};
pub use entry::{Entry, Kind};
pub use path::{PathError, file_name, normalize, parent};
pub use tree::{Tree, TreeError};
