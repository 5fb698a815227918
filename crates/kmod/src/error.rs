//! Errors of the module indexer.

use thiserror::Error;

/// Why depmod or a load-order query failed.
#[derive(Debug, Error)]
pub enum KmodError {
    #[error(
        "module directory {0} is missing from the tree (no /usr/lib/modules/<kver> or /lib/modules/<kver>)"
    )]
    NoModuleDir(String),
    #[error("{path}: not a valid ELF module: {why}")]
    BadElf { path: String, why: String },
    #[error("{path}: decompressing {algo}")]
    Decompress {
        path: String,
        algo: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: compressed with {algo}, which basalt-kmod does not support")]
    UnsupportedCompression { path: String, algo: &'static str },
    #[error("reading {path} from the tree")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("module name {name} is provided twice: {first} and {second}")]
    DuplicateModule {
        name: String,
        first: String,
        second: String,
    },
    #[error("modules in a dependency cycle: {0}")]
    Cycle(String),
    #[error("index key {key:?} has a byte outside 0..=127 (libkmod indexes are ASCII)")]
    NonAsciiKey { key: String },
    #[error("index too large: offset {0} does not fit the 28-bit node offset")]
    IndexTooLarge(u64),
    #[error("{file}: line {line}: {why}")]
    BadDepFile {
        file: String,
        line: usize,
        why: String,
    },
    #[error("module {0} is neither a module in modules.dep nor built in (modules.builtin)")]
    UnknownModule(String),
    #[error("writing {path} into the tree")]
    Tree {
        path: String,
        #[source]
        source: basalt_tree::TreeError,
    },
}
