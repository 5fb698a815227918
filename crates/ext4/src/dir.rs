//! Linear directory blocks: packing entries and encoding blocks with the
//! metadata_csum tail.

use crate::crc::crc32c_raw;
use crate::format::BLOCK_SIZE;
use crate::format::dirent::{
    DIRENT_HEADER, DirEntryHeader, DirEntryTail, TAIL_FT, TAIL_SIZE, rec_len_for,
};

const BS: usize = BLOCK_SIZE as usize;
/// Bytes of a block available to entries.
const USABLE: usize = BS - TAIL_SIZE;

/// One entry of a directory (including "." and "..").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry<'a> {
    pub name: &'a [u8],
    pub ino: u32,
    pub file_type: u8,
}

/// Split entries into blocks: the index of the first entry of each block.
/// At least `min_blocks` blocks; trailing blocks past the entries are
/// empty.
pub fn pack(entries: &[DirEntry<'_>], min_blocks: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut used = 0;
    for (i, e) in entries.iter().enumerate() {
        let need = rec_len_for(e.name.len());
        if used + need > USABLE {
            starts.push(i);
            used = 0;
        }
        used += need;
    }
    while starts.len() < min_blocks {
        starts.push(entries.len());
    }
    starts
}

/// Encode one block holding `entries` (possibly none), with the checksum
/// tail seeded by the directory's inode seed.
pub fn encode_block(entries: &[DirEntry<'_>], inode_seed: u32, out: &mut [u8]) {
    let out = &mut out[..BS];
    out.fill(0);
    let mut off = 0;
    if entries.is_empty() {
        DirEntryHeader {
            inode: 0,
            rec_len: USABLE as u16,
            name_len: 0,
            file_type: 0,
        }
        .encode(out);
    }
    for (i, e) in entries.iter().enumerate() {
        let len = if i + 1 == entries.len() {
            USABLE - off
        } else {
            rec_len_for(e.name.len())
        };
        // Names are at most 255 bytes and records at most one block (checked
        // by the planner), so both fit their fields.
        let h = DirEntryHeader {
            inode: e.ino,
            rec_len: u16::try_from(len).unwrap_or(0),
            name_len: u8::try_from(e.name.len()).unwrap_or(0),
            file_type: e.file_type,
        };
        h.encode(&mut out[off..]);
        out[off + DIRENT_HEADER..off + DIRENT_HEADER + e.name.len()].copy_from_slice(e.name);
        off += len;
    }
    let csum = crc32c_raw(inode_seed, &out[..USABLE]);
    let tail = DirEntryTail {
        det_rec_len: TAIL_SIZE as u16,
        det_reserved_ft: TAIL_FT,
        det_checksum: csum,
        ..Default::default()
    };
    tail.encode(&mut out[USABLE..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &[u8]) -> DirEntry<'_> {
        DirEntry {
            name,
            ino: 12,
            file_type: 1,
        }
    }

    #[test]
    fn pack_table() {
        let n200 = [b'x'; 200];
        // 4084 usable bytes; a 200-byte name takes 208.
        let many: Vec<DirEntry<'_>> = (0..40).map(|_| e(&n200)).collect();
        let cases: Vec<(Vec<DirEntry<'_>>, usize, Vec<usize>)> = vec![
            (vec![e(b"."), e(b"..")], 1, vec![0]),
            (vec![e(b"."), e(b"..")], 4, vec![0, 2, 2, 2]),
            (many.clone(), 1, vec![0, 19, 38]),
        ];
        for (entries, min, want) in cases {
            assert_eq!(pack(&entries, min), want);
        }
    }

    #[test]
    fn encode_layout() {
        let mut b = vec![0u8; BS];
        encode_block(
            &[
                DirEntry {
                    name: b".",
                    ino: 2,
                    file_type: 2,
                },
                DirEntry {
                    name: b"..",
                    ino: 2,
                    file_type: 2,
                },
            ],
            0,
            &mut b,
        );
        assert_eq!(&b[0..9], &[2, 0, 0, 0, 12, 0, 1, 2, b'.']);
        assert_eq!(&b[12..20], &[2, 0, 0, 0, 0xE8, 0x0F, 2, 2]); // rec_len 4072
        assert_eq!(&b[USABLE..USABLE + 8], &[0, 0, 0, 0, 12, 0, 0, 0xDE]);
        let csum = crc32c_raw(0, &b[..USABLE]);
        assert_eq!(&b[BS - 4..], &csum.to_le_bytes());
        encode_block(&[], 5, &mut b);
        assert_eq!(&b[0..8], &[0, 0, 0, 0, 0xF4, 0x0F, 0, 0]);
    }
}
