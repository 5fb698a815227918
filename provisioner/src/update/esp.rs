//! Files the agent keeps on the mounted ESP: GRUB's env block (slot state),
//! each slot's kernel, initrd and command-line file (paths from
//! basalt-grub), and two small JSON records of its own:
//! `/EFI/basalt/slot-x.json` (what is installed in slot X) and
//! `/EFI/basalt/last-failure.json` (the last trial boot that never got
//! marked good).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use basalt_grub::config::{
    ESP_GRUBENV, ESP_SLOT_DIR, initrd_path, kernel_path, slot_cfg_path, slot_record_path,
};
pub use basalt_payload::SlotRecord;
use serde::{Deserialize, Serialize};

/// A trial boot that ran out of tries without being marked good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub slot: char,
    /// Version that was installed in the failed slot, if known.
    pub version: Option<String>,
    /// The slot that booted instead.
    pub fell_back_to: char,
}

/// A mounted ESP.
#[derive(Debug, Clone)]
pub struct Esp {
    pub root: PathBuf,
}

impl Esp {
    pub fn new(root: &Path) -> Esp {
        Esp {
            root: root.to_path_buf(),
        }
    }

    /// Host path of an absolute ESP path ("/grub/grubenv").
    pub fn path(&self, esp_path: &str) -> PathBuf {
        self.root.join(esp_path.trim_start_matches('/'))
    }

    pub fn grubenv(&self) -> PathBuf {
        self.path(ESP_GRUBENV)
    }

    pub fn kernel(&self, s: char) -> PathBuf {
        self.path(&kernel_path(s))
    }

    pub fn initrd(&self, s: char) -> PathBuf {
        self.path(&initrd_path(s))
    }

    pub fn slot_cfg(&self, s: char) -> PathBuf {
        self.path(&slot_cfg_path(s))
    }

    pub fn record(&self, s: char) -> PathBuf {
        self.path(&slot_record_path(s))
    }

    pub fn failure(&self) -> PathBuf {
        self.path(&format!("{ESP_SLOT_DIR}/last-failure.json"))
    }

    pub fn read_record(&self, s: char) -> Result<Option<SlotRecord>> {
        read_json(&self.record(s))
    }

    pub fn read_failure(&self) -> Result<Option<FailureRecord>> {
        read_json(&self.failure())
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Result<Option<T>> {
    match fs::read(p) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("parsing {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Writes `bytes` to `dest` through a temp file in the same directory:
/// write, fsync, rename, fsync the directory.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest
        .parent()
        .with_context(|| format!("{} has no parent directory", dest.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let res = (|| -> Result<()> {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, dest).with_context(|| format!("renaming into {}", dest.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

pub fn write_json<T: Serialize>(dest: &Path, v: &T) -> Result<()> {
    let mut b = serde_json::to_vec_pretty(v).context("serialising record")?;
    b.push(b'\n');
    write_atomic(dest, &b)
}
