//! basalt-kmod: depmod in Rust, on a [`basalt_tree::Tree`].
//!
//! [`depmod`] reads every module (`.ko`, `.ko.xz`, `.ko.zst`) below
//! `/usr/lib/modules/<kver>` of the tree, parses the ELF `.modinfo`,
//! exported and undefined symbols, and writes modules.dep (same dependency
//! order as kmod's depmod), modules.alias, modules.softdep, modules.weakdep,
//! modules.symbols, modules.devname and libkmod's binary indexes
//! (modules.dep.bin, modules.alias.bin, modules.symbols.bin,
//! modules.builtin.bin, modules.builtin.alias.bin) back into the tree.
//! [`load_order`] then answers "which files, in which order" for an
//! initramfs, and [`initramfs_lists`] splits an initramfs's modules into
//! the lists its /init loads at different points.

mod decompress;
mod depmod;
mod elf;
mod error;
mod graph;
mod index;
mod initramfs;
mod load_order;
mod names;
mod output;

pub use decompress::module_image;
pub use depmod::{Report, depmod, module_dir};
pub use elf::{ModuleElf, NeededSymbol};
pub use error::KmodError;
pub use index::{INDEX_MAGIC, INDEX_VERSION, IndexBuilder, IndexReader, Values};
pub use initramfs::{
    ASYNC_PROBE_MODULES, ASYNC_PROBE_PARAM, BOOT_MODULES, InitramfsModule, InitramfsModules,
    ListSpec, NEEDS_FIELD, initramfs_lists, initramfs_modules,
};
pub use load_order::load_order;
pub use names::{modname, normalize_alias};

#[cfg(test)]
mod tests;
