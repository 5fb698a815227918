//! File contents: small ones inline, large ones in an on-disk content store.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Contents up to this size stay in memory; larger ones go to the store.
pub const INLINE_LIMIT: usize = 256 * 1024;

/// The bytes of a regular file. Cloning is cheap (reference counted).
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    Inline(Arc<[u8]>),
    /// A blob in a [`ContentStore`], named by its SHA-256.
    Stored {
        path: Arc<Path>,
        len: u64,
    },
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Inline(b) => write!(f, "Inline({} bytes)", b.len()),
            Content::Stored { path, len } => write!(f, "Stored({}, {len} bytes)", path.display()),
        }
    }
}

impl Content {
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Content {
        Content::Inline(Arc::from(bytes.into().into_boxed_slice()))
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Inline(b) => b.len() as u64,
            Content::Stored { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader over the bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        match self {
            Content::Inline(b) => Ok(Box::new(&b[..])),
            Content::Stored { path, .. } => Ok(Box::new(io::BufReader::new(File::open(path)?))),
        }
    }

    /// All the bytes in memory (for small files, or where a writer needs them).
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        match self {
            Content::Inline(b) => Ok(b.to_vec()),
            Content::Stored { path, .. } => fs::read(path),
        }
    }

    /// Read `buf.len()` bytes starting at `offset` (short only at end of file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::Inline(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let n = buf.len().min(b.len() - start);
                buf[..n].copy_from_slice(&b[start..start + n]);
                Ok(n)
            }
            Content::Stored { path, .. } => {
                use std::os::unix::fs::FileExt;
                let f = File::open(path)?;
                let mut done = 0;
                while done < buf.len() {
                    let n = f.read_at(&mut buf[done..], offset + done as u64)?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                Ok(done)
            }
        }
    }
}

/// A directory of blobs named by SHA-256, holding contents too large to keep
/// in memory. Identical contents are stored once.
#[derive(Debug)]
pub struct ContentStore {
    dir: PathBuf,
    tmp_seq: AtomicU64,
}

impl ContentStore {
    /// Use (and create) `dir` as the store.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<ContentStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(ContentStore {
            dir,
            tmp_seq: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Read `r` to the end, keeping it inline when small and storing it
    /// otherwise. `size_hint` (the size the archive declares) decides early.
    pub fn ingest(&self, r: &mut dyn Read, size_hint: u64) -> io::Result<Content> {
        if size_hint <= INLINE_LIMIT as u64 {
            let mut buf = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
            r.read_to_end(&mut buf)?;
            if buf.len() <= INLINE_LIMIT {
                return Ok(Content::from_bytes(buf));
            }
            return self.put_bytes(&buf);
        }
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".tmp-{}-{seq}", std::process::id()));
        let mut f = io::BufWriter::new(File::create(&tmp)?);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut len = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            f.write_all(&buf[..n])?;
            len += n as u64;
        }
        f.flush()?;
        drop(f);
        let path = self.dir.join(hex::encode(hasher.finalize()));
        fs::rename(&tmp, &path)?;
        Ok(Content::Stored {
            path: Arc::from(path.as_path()),
            len,
        })
    }

    /// Store bytes already in memory.
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<Content> {
        if bytes.len() <= INLINE_LIMIT {
            return Ok(Content::from_bytes(bytes.to_vec()));
        }
        let path = self.dir.join(hex::encode(Sha256::digest(bytes)));
        if !path.exists() {
            let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
            let tmp = self.dir.join(format!(".tmp-{}-{seq}", std::process::id()));
            fs::write(&tmp, bytes)?;
            fs::rename(&tmp, &path)?;
        }
        Ok(Content::Stored {
            path: Arc::from(path.as_path()),
            len: bytes.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_inline_and_stored() {
        let dir = std::env::temp_dir().join(format!("basalt-tree-test-{}", std::process::id()));
        let store = ContentStore::new(&dir).expect("store");
        let small = store.ingest(&mut &b"hello"[..], 5).expect("small");
        assert!(matches!(small, Content::Inline(_)));
        assert_eq!(small.read_all().expect("read"), b"hello");
        let big: Vec<u8> = (0..INLINE_LIMIT * 2).map(|i| (i % 251) as u8).collect();
        let stored = store.ingest(&mut &big[..], big.len() as u64).expect("big");
        assert!(matches!(stored, Content::Stored { .. }));
        assert_eq!(stored.len(), big.len() as u64);
        assert_eq!(stored.read_all().expect("read"), big);
        let mut part = [0u8; 10];
        assert_eq!(stored.read_at(1000, &mut part).expect("read_at"), 10);
        assert_eq!(&part[..], &big[1000..1010]);
        let again = store.put_bytes(&big).expect("dedup");
        assert_eq!(again, stored);
        fs::remove_dir_all(&dir).ok();
    }
}
