//! The fixed 64-byte payload header (all integers little-endian).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `BASALTUP` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | header size (64) |
//! | 16 | 8 | metadata length (bytes of JSON after the header) |
//! | 24 | 4 | signature length (64, Ed25519) |
//! | 28 | 4 | reserved, zero |
//! | 32 | 8 | data offset: start of the sections, a multiple of 4096 |
//! | 40 | 8 | total payload length in bytes |
//! | 48 | 16 | reserved, zero |

use crate::error::{PayloadError, Result};

pub const MAGIC: [u8; 8] = *b"BASALTUP";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 64;
/// Ed25519 signature size (RFC 8032, section 5.1.6).
pub const SIGNATURE_SIZE: usize = 64;
/// Section alignment.
pub const ALIGN: u64 = 4096;
/// Upper bound on the metadata block, so a hostile header cannot make the
/// reader allocate without limit before the signature is checked.
pub const MAX_METADATA: u64 = 1 << 20;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_HEADER_SIZE: usize = 12;
const OFF_META_LEN: usize = 16;
const OFF_SIG_LEN: usize = 24;
const OFF_RESERVED1: usize = 28;
const OFF_DATA_OFFSET: usize = 32;
const OFF_TOTAL_LEN: usize = 40;
const OFF_RESERVED2: usize = 48;
const _: () = assert!(OFF_RESERVED2 + 16 == HEADER_SIZE);

/// Decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub meta_len: u64,
    pub data_offset: u64,
    pub total_len: u64,
}

/// Rounds `v` up to a multiple of [`ALIGN`].
pub fn align_up(v: u64) -> Option<u64> {
    v.checked_add(ALIGN - 1).map(|x| x / ALIGN * ALIGN)
}

/// Where the sections start for a metadata block of `meta_len` bytes.
pub fn data_offset_for(meta_len: u64) -> Option<u64> {
    align_up(
        meta_len
            .checked_add(HEADER_SIZE as u64)?
            .checked_add(SIGNATURE_SIZE as u64)?,
    )
}

fn le32(b: &[u8; HEADER_SIZE], o: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[o..o + 4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8; HEADER_SIZE], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
        b[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[OFF_HEADER_SIZE..OFF_HEADER_SIZE + 4]
            .copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[OFF_META_LEN..OFF_META_LEN + 8].copy_from_slice(&self.meta_len.to_le_bytes());
        b[OFF_SIG_LEN..OFF_SIG_LEN + 4].copy_from_slice(&(SIGNATURE_SIZE as u32).to_le_bytes());
        b[OFF_DATA_OFFSET..OFF_DATA_OFFSET + 8].copy_from_slice(&self.data_offset.to_le_bytes());
        b[OFF_TOTAL_LEN..OFF_TOTAL_LEN + 8].copy_from_slice(&self.total_len.to_le_bytes());
        b
    }

    /// Decodes and checks the header's own consistency.
    pub fn decode(b: &[u8; HEADER_SIZE]) -> Result<Header> {
        if b[OFF_MAGIC..OFF_MAGIC + 8] != MAGIC {
            return Err(PayloadError::BadMagic {
                found: String::from_utf8_lossy(&b[OFF_MAGIC..OFF_MAGIC + 8]).into_owned(),
            });
        }
        let version = le32(b, OFF_VERSION);
        if version != FORMAT_VERSION {
            return Err(PayloadError::UnsupportedVersion(version, FORMAT_VERSION));
        }
        let bad = |s: String| Err(PayloadError::BadHeader(s));
        let hs = le32(b, OFF_HEADER_SIZE);
        if hs as usize != HEADER_SIZE {
            return bad(format!("header size {hs}, expected {HEADER_SIZE}"));
        }
        let sl = le32(b, OFF_SIG_LEN);
        if sl as usize != SIGNATURE_SIZE {
            return bad(format!("signature length {sl}, expected {SIGNATURE_SIZE}"));
        }
        if le32(b, OFF_RESERVED1) != 0 || b[OFF_RESERVED2..].iter().any(|&x| x != 0) {
            return bad("reserved bytes are not zero".into());
        }
        let h = Header {
            meta_len: le64(b, OFF_META_LEN),
            data_offset: le64(b, OFF_DATA_OFFSET),
            total_len: le64(b, OFF_TOTAL_LEN),
        };
        if h.meta_len == 0 || h.meta_len > MAX_METADATA {
            return bad(format!(
                "metadata length {} is not within 1..={MAX_METADATA}",
                h.meta_len
            ));
        }
        if data_offset_for(h.meta_len) != Some(h.data_offset) {
            return bad(format!(
                "data offset {} does not follow the metadata and signature",
                h.data_offset
            ));
        }
        if h.total_len < h.data_offset {
            return bad(format!(
                "total length {} is smaller than the data offset {}",
                h.total_len, h.data_offset
            ));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let h = Header {
            meta_len: 300,
            data_offset: 4096,
            total_len: 4096 * 3,
        };
        let b = h.encode();
        assert_eq!(&b[..8], b"BASALTUP");
        assert_eq!(Header::decode(&b).unwrap(), h);
        let cases: &[(usize, u8, &str)] = &[
            (0, b'X', "magic"),
            (8, 2, "version 2"),
            (12, 65, "header size"),
            (24, 1, "signature length"),
            (30, 1, "reserved"),
            (63, 1, "reserved"),
            (33, 0x20, "data offset"),
            (41, 0, "total length"),
        ];
        for &(at, v, want) in cases {
            let mut c = b;
            c[at] = v;
            let e = Header::decode(&c).unwrap_err().to_string();
            assert!(e.contains(want), "byte {at}: {e}");
        }
        let mut big = h;
        big.meta_len = MAX_METADATA + 1;
        big.data_offset = data_offset_for(big.meta_len).unwrap();
        big.total_len = big.data_offset;
        let e = Header::decode(&big.encode()).unwrap_err().to_string();
        assert!(e.contains("metadata length"), "{e}");
    }

    #[test]
    fn data_offsets() {
        for (meta, want) in [(1u64, 4096u64), (4096 - 128, 4096), (4096 - 127, 8192)] {
            assert_eq!(data_offset_for(meta), Some(want), "meta {meta}");
        }
        assert_eq!(data_offset_for(u64::MAX), None);
    }
}
