//! Runs a dynamically linked program of an in-memory [`basalt_tree::Tree`]
//! on the build host, rootless and without chroot, through the tree's own
//! dynamic loader and libraries (used for `grub-mkimage` and `systemd-hwdb`).
//!
//! - [`treefs`]: reading files out of a tree, following symlinks and hard links.
//! - [`elf`]: `PT_INTERP`, `DT_NEEDED`, `DT_RUNPATH`/`DT_RPATH` of ELF64 files.
//! - [`closure`]: the program, its loader and its library closure in the tree.
//! - [`staged`]: those files copied to a temporary directory and run.

pub mod closure;
pub mod elf;
pub mod error;
pub mod staged;
pub mod treefs;

pub use closure::{Closure, Object, closure};
pub use error::{ExecError, Result};
pub use staged::Staged;
