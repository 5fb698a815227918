//! Where the writer takes a section's bytes from: memory or a byte range of
//! a file (the slot partition inside a disk image), read twice (hash, then
//! copy) without loading it whole.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use crate::error::{Result, io};

/// Read size for streaming (large sequential reads).
pub const CHUNK: usize = 1 << 20;

/// A section's bytes.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Bytes(&'a [u8]),
    FileRange {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

impl Source<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Source::Bytes(b) => b.len() as u64,
            Source::FileRange { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds the bytes in order to `sink`, returning their SHA-256.
    pub fn stream(
        &self,
        name: &str,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        match *self {
            Source::Bytes(b) => {
                h.update(b);
                sink(b)?;
            }
            Source::FileRange { file, offset, len } => {
                let mut buf = vec![0u8; CHUNK];
                let mut done = 0u64;
                while done < len {
                    let n = usize::try_from((len - done).min(CHUNK as u64)).unwrap_or(CHUNK);
                    let at = offset.checked_add(done).ok_or_else(|| {
                        crate::PayloadError::Metadata(format!("{name} source range overflows"))
                    })?;
                    file.read_exact_at(&mut buf[..n], at)
                        .map_err(io(format!("reading {name} at byte {at}")))?;
                    h.update(&buf[..n]);
                    sink(&buf[..n])?;
                    done += n as u64;
                }
            }
        }
        Ok(h.finalize().into())
    }

    /// SHA-256 of the bytes.
    pub fn sha256(&self, name: &str) -> Result<[u8; 32]> {
        self.stream(name, |_| Ok(()))
    }

    /// Copies the bytes to `out`, returning their SHA-256.
    pub fn copy_to(&self, name: &str, out: &mut dyn Write) -> Result<[u8; 32]> {
        self.stream(name, |b| {
            out.write_all(b)
                .map_err(io(format!("writing {name} section")))
        })
    }
}
