//! `OUTDIR/manifest.json`: what was built, from what, and the checksums of
//! every artifact.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub profile: serde_json::Value,
    pub source_date_epoch: i64,
    pub packages: Vec<ManifestPackage>,
    pub kernels: Vec<String>,
    pub files: usize,
    pub size: u64,
    pub artifacts: Vec<Artifact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub usr: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ManifestPackage {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Artifact {
    pub file: String,
    pub format: String,
    pub size: u64,
    pub sha256: String,
}

impl Artifact {
    /// Describe the finished file at `path`.
    pub fn of(path: &Path, format: &str) -> Result<Artifact> {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("hashing {}", path.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Artifact {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            format: format.to_string(),
            size,
            sha256: hex::encode(h.finalize()),
        })
    }
}

impl Manifest {
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("serialising the manifest")?;
        text.push('\n');
        crate::atomic::write_file(&dir.join("manifest.json"), text.as_bytes())
    }
}
