//! Where a payload comes from: a local file, or an http(s) URL downloaded
//! first into a directory on the writable root (the payload is verified from
//! that copy; nothing is trusted while it streams in).

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Default download directory (on ROOT, not tmpfs: slot images are large).
pub const DOWNLOAD_DIR: &str = "/var/lib/basalt/update";

/// Opens `spec`: `http://` / `https://` URLs are downloaded into
/// `download_dir`, anything else is a local path.
pub fn open(spec: &str, download_dir: &Path) -> Result<File> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        let p = download(spec, download_dir)?;
        let f = File::open(&p).with_context(|| format!("opening {}", p.display()));
        // The open file keeps the bytes; unlinking now means no 700 MiB
        // leftover on ROOT after the apply, whatever its outcome (or a power
        // cut: ext4 reclaims the orphan at the next mount).
        if let Err(e) = fs::remove_file(&p) {
            eprintln!("basalt-update: removing {}: {e}", p.display());
        }
        return f;
    }
    if spec.contains("://") {
        bail!("payload source {spec:?}: only local paths and http(s) URLs are supported");
    }
    File::open(spec).with_context(|| format!("opening payload {spec}"))
}

fn download(url: &str, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join("download.update");
    let tmp = dir.join("download.update.partial");
    // Leftovers of an earlier run would double the space a download needs.
    for stale in [&dest, &tmp] {
        match fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", stale.display())),
        }
    }
    let res = (|| -> Result<()> {
        let resp = ureq::get(url)
            .call()
            .with_context(|| format!("downloading {url}"))?;
        let mut body = resp.into_body().into_reader();
        let f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        io::copy(&mut body, &mut w).with_context(|| format!("downloading {url}"))?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, &dest).with_context(|| format!("renaming into {}", dest.display()))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map(|_| dest)
}
