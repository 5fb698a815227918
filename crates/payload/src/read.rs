//! Opening a payload: header, signature, metadata, padding and the SHA-256
//! of every section are all checked before a [`Payload`] is returned.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{PayloadError, Result, io};
use crate::header::{HEADER_SIZE, Header, SIGNATURE_SIZE};
use crate::meta::{Metadata, SectionInfo};
use crate::source::CHUNK;

/// The three sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Slot,
    Kernel,
    Initrd,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Slot, Section::Kernel, Section::Initrd];

    pub fn name(self) -> &'static str {
        match self {
            Section::Slot => "slot",
            Section::Kernel => "kernel",
            Section::Initrd => "initrd",
        }
    }
}

/// A verified payload.
#[derive(Debug)]
pub struct Payload {
    file: File,
    header: Header,
    meta: Metadata,
}

fn read_at(file: &File, buf: &mut [u8], at: u64, what: &str) -> Result<()> {
    file.read_exact_at(buf, at)
        .map_err(io(format!("reading {what}")))
}

impl Payload {
    /// Opens and verifies the payload at `path`.
    pub fn open_path(path: &Path, key: &VerifyingKey) -> Result<Payload> {
        let f = File::open(path).map_err(io(format!("opening {}", path.display())))?;
        Payload::open(f, key)
    }

    /// Verifies `file` with `key`: nothing of it is trusted until the
    /// signature over header + metadata holds and every section's SHA-256
    /// matches the metadata.
    pub fn open(file: File, key: &VerifyingKey) -> Result<Payload> {
        let size = file.metadata().map_err(io("stat of payload"))?.len();
        if size < HEADER_SIZE as u64 {
            return Err(PayloadError::Truncated {
                expected: HEADER_SIZE as u64,
                actual: size,
            });
        }
        let mut hb = [0u8; HEADER_SIZE];
        read_at(&file, &mut hb, 0, "payload header")?;
        let header = Header::decode(&hb)?;
        if header.total_len != size {
            return Err(PayloadError::Truncated {
                expected: header.total_len,
                actual: size,
            });
        }
        let meta_len = usize::try_from(header.meta_len)
            .map_err(|_| PayloadError::BadHeader("metadata length does not fit memory".into()))?;
        let mut signed = vec![0u8; HEADER_SIZE + meta_len];
        read_at(&file, &mut signed, 0, "payload metadata")?;
        let mut sig = [0u8; SIGNATURE_SIZE];
        read_at(&file, &mut sig, signed.len() as u64, "payload signature")?;
        key.verify_strict(&signed, &Signature::from_bytes(&sig))
            .map_err(|_| PayloadError::BadSignature)?;
        let meta: Metadata = serde_json::from_slice(&signed[HEADER_SIZE..])
            .map_err(|e| PayloadError::Metadata(format!("JSON: {e}")))?;
        meta.validate()?;
        if meta
            .data_len()
            .and_then(|l| l.checked_add(header.data_offset))
            != Some(header.total_len)
        {
            return Err(PayloadError::BadHeader(
                "total length does not end at the last section".into(),
            ));
        }
        let p = Payload { file, header, meta };
        p.check_padding()?;
        for s in Section::ALL {
            p.check_section(s)?;
        }
        Ok(p)
    }

    fn check_padding(&self) -> Result<()> {
        let mut gaps = vec![(
            (HEADER_SIZE + SIGNATURE_SIZE) as u64 + self.header.meta_len,
            self.header.data_offset,
        )];
        let mut end = self.header.data_offset;
        for (_, s) in self.meta.sections() {
            gaps.push((end, self.header.data_offset + s.offset));
            end = self.header.data_offset + s.offset + s.size;
        }
        for (from, to) in gaps {
            let n = usize::try_from(to - from)
                .map_err(|_| PayloadError::BadHeader("padding too large".into()))?;
            let mut b = vec![0u8; n];
            read_at(&self.file, &mut b, from, "padding")?;
            if b.iter().any(|&x| x != 0) {
                return Err(PayloadError::BadHeader(format!(
                    "padding at bytes {from}..{to} is not zero"
                )));
            }
        }
        Ok(())
    }

    fn check_section(&self, s: Section) -> Result<()> {
        let info = self.info(s);
        let mut r = self.section(s);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = r
                .read(&mut buf)
                .map_err(io(format!("reading {} section", s.name())))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let actual = hex::encode(h.finalize());
        if actual != info.sha256 {
            return Err(PayloadError::HashMismatch {
                section: s.name(),
                expected: info.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    pub fn info(&self, s: Section) -> &SectionInfo {
        match s {
            Section::Slot => &self.meta.slot,
            Section::Kernel => &self.meta.kernel,
            Section::Initrd => &self.meta.initrd,
        }
    }

    /// Absolute byte offset of a section in the payload file.
    pub fn offset(&self, s: Section) -> u64 {
        self.header.data_offset + self.info(s).offset
    }

    /// Streams a section's bytes. The file was verified when opened; a
    /// caller that must not trust the file to stay unchanged (it is not
    /// locked) hashes again while copying and compares with
    /// `info(s).sha256`.
    pub fn section(&self, s: Section) -> SectionReader<'_> {
        let pos = self.offset(s);
        SectionReader {
            file: &self.file,
            pos,
            end: pos + self.info(s).size,
        }
    }

    /// A section read whole into memory (kernel, initrd).
    pub fn read_section(&self, s: Section) -> Result<Vec<u8>> {
        let len = usize::try_from(self.info(s).size)
            .map_err(|_| PayloadError::Metadata(format!("{} too large", s.name())))?;
        let mut v = vec![0u8; len];
        read_at(&self.file, &mut v, self.offset(s), s.name())?;
        Ok(v)
    }
}

/// Reads one section (positional reads; the file offset is not used).
#[derive(Debug)]
pub struct SectionReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for SectionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "payload shorter than its header says",
            ));
        }
        self.pos += got as u64;
        Ok(got)
    }
}
