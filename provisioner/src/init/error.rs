//! Errors of the initramfs /init. Each one names the boot step that failed
//! and what to look at, because it ends up on the console of a machine
//! that is about to reboot.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum InitError {
    #[error("kernel command line: {0}")]
    Cmdline(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mounting {fstype} {source_dev} on {target}: {errno}")]
    Mount {
        source_dev: String,
        target: String,
        fstype: String,
        errno: io::Error,
    },
    #[error(
        "boot disk not found after {secs} s: no block device has a GPT with partitions named {wanted} (seen: {seen})"
    )]
    NoBootDisk {
        secs: u64,
        wanted: String,
        seen: String,
    },
    #[error("boot disk {disk}: {why}")]
    Disk { disk: String, why: String },
    #[error("dm-verity for /usr slot {slot}: {why}")]
    Verity { slot: char, why: String },
    #[error("device-mapper {op} {name}: {source}")]
    DeviceMapper {
        op: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("populating /etc from {factory}: {why}")]
    Etc { factory: PathBuf, why: String },
    #[error("first boot: {0}")]
    FirstBoot(String),
    #[error("switch_root into {sysroot}: {why}")]
    SwitchRoot { sysroot: PathBuf, why: String },
}

impl InitError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> InitError {
        let path = path.into();
        move |source| InitError::Io { what, path, source }
    }
}

pub type Result<T> = std::result::Result<T, InitError>;
