//! Content-addressed download cache: `<root>/blobs/sha256/<hex>`.
//!
//! Entries are written to a temporary file in the same directory (`.partial-…`, a name
//! that can never look like a final 64-hex name), hashed while written, checked for size
//! and SHA256, fsynced and renamed into place, so an interrupted run never leaves a bad
//! entry. Every use of an existing entry re-verifies it (size first, then SHA256); a
//! corrupt or truncated entry is reported at info level, removed and fetched again.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::transport::{Failure, Transport, read_failure};

const BUF: usize = 1 << 20;
const TEMP_PREFIX: &str = ".partial-";
/// Temporary files older than this are leftovers of interrupted runs and are removed
/// when the cache is opened (younger ones may belong to a run still going on).
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Best-effort removal of old `.partial-*` files in `dir`; failures are only logged.
fn remove_stale_temps(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX)) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|e| e > age);
        if old && let Err(e) = std::fs::remove_file(entry.path()) {
            log::info!("removing stale {}: {e}", entry.path().display());
        }
    }
}

/// One file to download: where from, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    /// Lower-case (or upper-case) hex SHA256.
    pub sha256: String,
    pub size: u64,
    /// Short name for progress output, e.g. "bash_5.2.37-2_amd64.deb".
    pub label: String,
}

/// The download cache.
#[derive(Clone)]
pub struct Cache {
    root: PathBuf,
    blobs: PathBuf,
    transport: Transport,
}

/// Checks and lower-cases a hex SHA256.
pub fn normalise_sha256(s: &str) -> Result<String> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid {
            what: "sha256",
            msg: format!("{s:?} is not 64 hex digits"),
        });
    }
    Ok(s.to_ascii_lowercase())
}

/// Streams `r` into `w` (if any) while hashing; returns (bytes, hex sha256).
pub(crate) fn hash_copy(
    mut r: impl Read,
    mut w: Option<&mut dyn Write>,
) -> std::io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut n: u64 = 0;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        if let Some(w) = w.as_deref_mut() {
            w.write_all(&buf[..k])?;
        }
        n += u64::try_from(k).map_err(std::io::Error::other)?;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Hex SHA256 of a byte slice.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Cache {
    /// The default root: `$XDG_CACHE_HOME/basalt`, else `$HOME/.cache/basalt`.
    pub fn default_root() -> Result<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(x).join("basalt"));
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(h).join(".cache").join("basalt"));
        }
        Err(Error::Invalid {
            what: "cache directory",
            msg: "neither XDG_CACHE_HOME nor HOME is set".into(),
        })
    }

    /// Opens the cache at the default root.
    pub fn open_default() -> Result<Cache> {
        Cache::open(Cache::default_root()?)
    }

    /// Opens (creating if needed) a cache rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Cache> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)
            .map_err(|e| Error::io("creating cache directory", &blobs, e))?;
        remove_stale_temps(&blobs, STALE_TEMP_AGE);
        Ok(Cache {
            root,
            blobs,
            transport: Transport::new(),
        })
    }

    /// Uses `transport` for downloads.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Where the entry for `sha256` lives (whether or not it exists).
    pub fn blob_path(&self, sha256: &str) -> Result<PathBuf> {
        Ok(self.blobs.join(normalise_sha256(sha256)?))
    }

    /// The verified entry for `sha256`, if present and intact (for offline use of a lock).
    /// A corrupt entry is removed and `None` returned.
    pub fn get(&self, sha256: &str) -> Option<PathBuf> {
        self.lookup(sha256, None, "").ok().flatten()
    }

    /// Like [`Cache::get`] with a known size (checked first, cheaply); I/O errors are reported.
    pub fn get_sized(&self, sha256: &str, size: u64) -> Result<Option<PathBuf>> {
        self.lookup(sha256, Some(size), "")
    }

    fn lookup(&self, sha256: &str, size: Option<u64>, label: &str) -> Result<Option<PathBuf>> {
        let want = normalise_sha256(sha256)?;
        let path = self.blobs.join(&want);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("checking cache entry", &path, e)),
        };
        let what = if label.is_empty() {
            want.as_str()
        } else {
            label
        };
        if let Some(size) = size
            && meta.len() != size
        {
            log::info!(
                "cache entry {} for {what} is truncated or corrupt ({} bytes, expected {size}); fetching again",
                path.display(),
                meta.len()
            );
            self.discard(&path)?;
            return Ok(None);
        }
        let f = File::open(&path).map_err(|e| Error::io("opening cache entry", &path, e))?;
        let (_, got) =
            hash_copy(f, None).map_err(|e| Error::io("hashing cache entry", &path, e))?;
        if got != want {
            log::info!(
                "cache entry {} for {what} is corrupt (sha256 {got}); fetching again",
                path.display()
            );
            self.discard(&path)?;
            return Ok(None);
        }
        Ok(Some(path))
    }

    /// Reads the entry for `sha256` into memory, verifying size and hash in one pass over
    /// the disk. A corrupt entry is reported, removed and `None` returned.
    pub fn read_verified(&self, sha256: &str, size: u64) -> Result<Option<Vec<u8>>> {
        let want = normalise_sha256(sha256)?;
        let path = self.blobs.join(&want);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading cache entry", &path, e)),
        };
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let got = if len == size {
            sha256_hex(&bytes)
        } else {
            String::new()
        };
        if got != want {
            log::info!(
                "cache entry {} is truncated or corrupt ({len} bytes, expected {size}); fetching again",
                path.display()
            );
            self.discard(&path)?;
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    fn discard(&self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing corrupt cache entry", path, e)),
        }
    }

    /// Stores `data` (already verified by the caller) under its SHA256, atomically.
    pub fn insert_bytes(&self, data: &[u8]) -> Result<PathBuf> {
        let sha = sha256_hex(data);
        let path = self.blobs.join(&sha);
        let tmp = TempFile::create(&self.blobs, &sha)?;
        {
            let mut f = &tmp.file;
            f.write_all(data)
                .map_err(|e| Error::io("writing cache entry", &tmp.path, e))?;
        }
        tmp.commit(&path)?;
        Ok(path)
    }

    /// Returns the verified entry for `d`, downloading it when absent or corrupt.
    pub fn fetch(&self, d: &Download) -> Result<PathBuf> {
        if let Some(p) = self.lookup(&d.sha256, Some(d.size), &d.label)? {
            return Ok(p);
        }
        self.download(d, &Progress::disabled())
    }

    fn download(&self, d: &Download, progress: &Progress) -> Result<PathBuf> {
        let want = normalise_sha256(&d.sha256)?;
        let path = self.blobs.join(&want);
        let url = d.url.as_str();
        let tmp = self.transport.retry(|t| {
            let reader = t.open(url)?;
            let tmp = TempFile::create(&self.blobs, &want).map_err(|error| Failure {
                error,
                transient: false,
            })?;
            let counted = progress.reader(reader.take(d.size.saturating_add(1)));
            let mut w = std::io::BufWriter::with_capacity(BUF, &tmp.file);
            let (n, got) = hash_copy(counted, Some(&mut w)).map_err(|e| read_failure(url, &e))?;
            w.flush().map_err(|e| Failure {
                error: Error::io("writing download", &tmp.path, e),
                transient: false,
            })?;
            drop(w);
            if n != d.size {
                return Err(Failure {
                    error: Error::SizeMismatch {
                        url: url.into(),
                        expected: d.size,
                        actual: n,
                    },
                    // A short body may be a dropped connection.
                    transient: n < d.size,
                });
            }
            if got != want {
                return Err(Failure {
                    error: Error::HashMismatch {
                        url: url.into(),
                        expected: want.clone(),
                        actual: got,
                    },
                    transient: false,
                });
            }
            Ok(tmp)
        })?;
        tmp.commit(&path)?;
        Ok(path)
    }

    /// Fetches every download (deduplicated by SHA256) with up to `jobs` threads and
    /// returns the verified paths in input order. Existing entries are re-verified in
    /// parallel too. Stops at the first error.
    pub fn fetch_all(&self, downloads: &[Download], jobs: usize) -> Result<Vec<PathBuf>> {
        let mut unique: Vec<&Download> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for d in downloads {
            if seen.insert(normalise_sha256(&d.sha256)?) {
                unique.push(d);
            }
        }
        let present = par_each(&unique, jobs, |d| {
            Ok(self.lookup(&d.sha256, Some(d.size), &d.label)?.is_some())
        })?;
        let missing: Vec<&Download> = unique
            .iter()
            .zip(&present)
            .filter(|(_, p)| !**p)
            .map(|(d, _)| *d)
            .collect();
        let cached = unique.len() - missing.len();
        let total_bytes: u64 = missing.iter().map(|d| d.size).sum();
        let progress = Progress::for_batch(missing.len(), total_bytes, cached);
        let result = par_each(&missing, jobs, |d| {
            progress.file_started(&d.label);
            let r = self.download(d, &progress);
            progress.file_done(&d.label);
            r
        });
        progress.finish();
        result?;
        downloads
            .iter()
            .map(|d| self.blob_path(&d.sha256))
            .collect()
    }
}

/// Runs `f` on every item with up to `jobs` threads; results in input order. After the
/// first error no new item is started, and that error is returned.
fn par_each<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new(std::iter::repeat_with(|| None).take(items.len()).collect());
    let jobs = jobs.clamp(1, 64).min(items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                while !failed.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { return };
                    let r = f(item);
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
                    slots[i] = Some(r);
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    // The first error in input order among those that ran.
    let mut out = Vec::with_capacity(items.len());
    for slot in slots {
        match slot {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if out.len() != items.len() {
        return Err(Error::Invalid {
            what: "parallel run",
            msg: "stopped before finishing without an error".into(),
        });
    }
    Ok(out)
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("root", &self.root).finish()
    }
}

/// Writes `data` to `dest` atomically (temporary file in the same directory, fsync,
/// rename), creating the parent directory.
pub(crate) fn write_atomic(dest: &Path, data: &[u8]) -> Result<()> {
    let dir = dest.parent().ok_or_else(|| Error::Invalid {
        what: "path",
        msg: format!("{} has no parent directory", dest.display()),
    })?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = TempFile::create(dir, name)?;
    {
        let mut f = &tmp.file;
        f.write_all(data)
            .map_err(|e| Error::io("writing", &tmp.path, e))?;
    }
    tmp.commit(dest)
}

/// A temporary file beside the cache entries; removed on drop unless committed.
struct TempFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    fn create(dir: &Path, sha: &str) -> Result<TempFile> {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::SeqCst);
        let path = dir.join(format!("{TEMP_PREFIX}{sha}-{}-{seq}", std::process::id()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("creating temporary file", &path, e))?;
        Ok(TempFile {
            path,
            file,
            committed: false,
        })
    }

    /// fsyncs and renames the file to `dest`.
    fn commit(mut self, dest: &Path) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io("syncing cache entry", &self.path, e))?;
        std::fs::rename(&self.path, dest).map_err(|e| Error::io("renaming into cache", dest, e))?;
        self.committed = true;
        if let Some(dir) = dest.parent()
            && let Ok(d) = File::open(dir)
        {
            // Best effort: persist the rename itself.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_removed_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let blobs = cache.blobs.clone();
        let old = blobs.join(".partial-old");
        let fresh = blobs.join(".partial-fresh");
        let other = blobs.join("not-a-temp");
        for p in [&old, &fresh, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let two_days = std::time::Duration::from_secs(2 * 24 * 3600);
        for p in [&old, &other] {
            let f = File::options().write(true).open(p).unwrap();
            f.set_modified(std::time::SystemTime::now() - two_days)
                .unwrap();
        }
        Cache::open(dir.path()).unwrap();
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }

    #[test]
    fn sha256_normalisation_table() {
        let good = "AB".repeat(32);
        assert_eq!(normalise_sha256(&good).unwrap(), "ab".repeat(32));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            assert!(normalise_sha256(bad).is_err(), "{bad}");
        }
    }
}
