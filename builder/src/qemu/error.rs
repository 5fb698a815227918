//! Typed errors of the QEMU runner.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("no OVMF firmware found (looked for {looked}); install the `ovmf` package")]
    NoOvmf { looked: String },
    #[error("{what} {path}: the path is not valid UTF-8, which QEMU's option syntax needs")]
    NonUtf8Path { what: &'static str, path: PathBuf },
    #[error("image {path}: {why}")]
    BadImage { path: PathBuf, why: String },
    #[error("config {path}: {why}")]
    BadConfig { path: PathBuf, why: String },
    #[error("ssh port {port} on 127.0.0.1 is not free: {source}")]
    PortBusy { port: u16, source: std::io::Error },
    #[error("--forward {forward}: {why}")]
    BadForward { forward: String, why: String },
    #[error("finding a free TCP port on 127.0.0.1: {0}")]
    NoFreePort(std::io::Error),
    #[error("{what} must be at least {min}, got {got}")]
    TooSmall {
        what: &'static str,
        min: u32,
        got: u32,
    },
    #[error("copying the OVMF variable store {from}: {source}")]
    VarsCopy {
        from: PathBuf,
        source: std::io::Error,
    },
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}
