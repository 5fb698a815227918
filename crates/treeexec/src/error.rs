//! Typed errors of the tree-program runner.

use std::path::PathBuf;

/// Everything that can go wrong while finding, staging or running a program
/// from a tree.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("tree: {path}: {why}")]
    Tree { path: String, why: String },
    #[error("ELF {path}: {why}")]
    Elf { path: String, why: String },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ExecError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ExecError {
        let path = path.into();
        move |source| ExecError::Io { what, path, source }
    }
}

pub type Result<T> = std::result::Result<T, ExecError>;
