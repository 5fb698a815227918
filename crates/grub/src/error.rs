//! Typed errors of the GRUB crate.

use std::path::PathBuf;

/// Everything that can go wrong while building or installing the boot loader.
#[derive(Debug, thiserror::Error)]
pub enum GrubError {
    #[error("environment block: {0}")]
    Env(String),
    #[error("grub.cfg: {0}")]
    Config(String),
    #[error("tree: {path}: {why}")]
    Tree { path: String, why: String },
    #[error(transparent)]
    Exec(#[from] basalt_treeexec::ExecError),
    #[error("grub-mkimage for {platform} failed ({status}): {stderr}")]
    Mkimage {
        platform: String,
        status: String,
        stderr: String,
    },
    #[error("BIOS install: {0}")]
    Bios(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GrubError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> GrubError {
        let path = path.into();
        move |source| GrubError::Io { what, path, source }
    }
}

pub type Result<T> = std::result::Result<T, GrubError>;
