//! The build pipeline, one stage per module: resolve the package set, fetch
//! the .debs, assemble the tree, then write artifacts.

pub mod catalog;
pub mod depmod_cache;
pub mod fetch;
pub mod hwdb;
pub mod ldcache;
pub mod resolve;
pub mod rooted;
pub mod signing;
pub mod static_nodes;
pub mod sysusers;
pub mod timings;
pub mod tree;
