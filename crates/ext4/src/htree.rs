//! Single-level hash-tree (dir_index) directories: children sorted by
//! hash into ordinary leaf blocks, indexed from a root in block 0.

use crate::crc::crc32c_raw;
use crate::dir::{self, DirEntry};
use crate::dx_hash::dx_hash;
use crate::format::BLOCK_SIZE;
use crate::format::dirent::{DirEntryHeader, FT_DIR};
use crate::format::htree::{
    DX_ENTRY_SIZE, DX_ROOT_ENTRIES_OFFSET, DX_ROOT_INFO_OFFSET, DX_ROOT_LIMIT, DX_TAIL_SIZE,
    DxCountLimit, DxEntry, DxRootInfo, DxTail,
};
use crate::format::superblock::EXT2_HASH_HALF_MD4;

const BS: usize = BLOCK_SIZE as usize;

/// Children in hash order, split into leaves, with each leaf's lowest
/// hash (low bit set when the leaf continues a run of equal hashes).
#[derive(Debug)]
pub struct HtreeLayout<'a> {
    pub entries: Vec<DirEntry<'a>>,
    pub leaf_starts: Vec<usize>,
    pub leaf_hashes: Vec<u32>,
}

/// Lay out `children` (without "." and ".."); `None` when they need more
/// leaves than one index level holds.
pub fn layout<'a>(children: &[DirEntry<'a>], seed: &[u8; 16]) -> Option<HtreeLayout<'a>> {
    let mut hashed: Vec<(u32, DirEntry<'a>)> = children
        .iter()
        .map(|e| (dx_hash(e.name, seed), e.clone()))
        .collect();
    hashed.sort_by(|a, b| (a.0, a.1.name).cmp(&(b.0, b.1.name)));
    let entries: Vec<DirEntry<'a>> = hashed.iter().map(|(_, e)| e.clone()).collect();
    let leaf_starts = dir::pack(&entries, 1);
    if entries.is_empty() || leaf_starts.len() > usize::from(DX_ROOT_LIMIT) {
        return None;
    }
    let leaf_hashes = leaf_starts
        .iter()
        .map(|&s| {
            let h = hashed[s].0;
            if s > 0 && hashed[s - 1].0 == h {
                h | 1
            } else {
                h
            }
        })
        .collect();
    Some(HtreeLayout {
        entries,
        leaf_starts,
        leaf_hashes,
    })
}

/// Encode the root block: fake "." and "..", root info, one index entry per
/// leaf (leaf `i` in logical block `i + 1`) and the checksum tail.
pub fn encode_root(
    self_ino: u32,
    parent_ino: u32,
    leaf_hashes: &[u32],
    inode_seed: u32,
    out: &mut [u8],
) {
    let out = &mut out[..BS];
    out.fill(0);
    DirEntryHeader {
        inode: self_ino,
        rec_len: 12,
        name_len: 1,
        file_type: FT_DIR,
    }
    .encode(out);
    out[8] = b'.';
    DirEntryHeader {
        inode: parent_ino,
        rec_len: (BS - 12) as u16,
        name_len: 2,
        file_type: FT_DIR,
    }
    .encode(&mut out[12..]);
    out[20..22].copy_from_slice(b"..");
    let info = DxRootInfo {
        reserved_zero: 0,
        hash_version: EXT2_HASH_HALF_MD4,
        info_length: 8,
        indirect_levels: 0,
        unused_flags: 0,
    };
    info.encode(&mut out[DX_ROOT_INFO_OFFSET..]);
    // At most DX_ROOT_LIMIT leaves (checked by `layout`).
    let count = u16::try_from(leaf_hashes.len()).unwrap_or(DX_ROOT_LIMIT);
    DxCountLimit {
        limit: DX_ROOT_LIMIT,
        count,
        block: 1,
    }
    .encode(&mut out[DX_ROOT_ENTRIES_OFFSET..]);
    for (i, &hash) in leaf_hashes.iter().enumerate().skip(1) {
        let block = u32::try_from(i + 1).unwrap_or(0);
        DxEntry { hash, block }.encode(&mut out[DX_ROOT_ENTRIES_OFFSET + i * DX_ENTRY_SIZE..]);
    }
    let used = DX_ROOT_ENTRIES_OFFSET + leaf_hashes.len() * DX_ENTRY_SIZE;
    let tail_at = BS - DX_TAIL_SIZE;
    // The checksum covers the used entries, then the whole tail with
    // dt_checksum still zero.
    let c = crc32c_raw(inode_seed, &out[..used]);
    let c = crc32c_raw(c, &out[tail_at..tail_at + DX_TAIL_SIZE]);
    DxTail {
        dt_reserved: 0,
        dt_checksum: c,
    }
    .encode(&mut out[tail_at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sorts_by_hash_and_marks_leaves() {
        let names: Vec<String> = (0..600)
            .map(|i| format!("some-longer-file-name-{i:04}"))
            .collect();
        let children: Vec<DirEntry<'_>> = names
            .iter()
            .map(|n| DirEntry {
                name: n.as_bytes(),
                ino: 12,
                file_type: 1,
            })
            .collect();
        let seed = [3u8; 16];
        let l = layout(&children, &seed).expect("layout");
        assert!(l.leaf_starts.len() > 1);
        let hashes: Vec<u32> = l.entries.iter().map(|e| dx_hash(e.name, &seed)).collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
        for (i, &s) in l.leaf_starts.iter().enumerate() {
            assert_eq!(l.leaf_hashes[i] & !1, hashes[s]);
        }
        assert!(layout(&[], &seed).is_none());
    }

    #[test]
    fn root_encoding() {
        let mut b = vec![0u8; BS];
        encode_root(12, 2, &[0x10, 0x2000, 0x4001], 0x55, &mut b);
        assert_eq!(&b[12..22], &[2, 0, 0, 0, 0xF4, 0x0F, 2, 2, b'.', b'.']);
        assert_eq!(&b[24..32], &[0, 0, 0, 0, 1, 8, 0, 0]);
        assert_eq!(
            DxCountLimit::decode(&b[32..]),
            DxCountLimit {
                limit: 507,
                count: 3,
                block: 1
            }
        );
        assert_eq!(
            DxEntry::decode(&b[40..]),
            DxEntry {
                hash: 0x2000,
                block: 2
            }
        );
        assert_eq!(
            DxEntry::decode(&b[48..]),
            DxEntry {
                hash: 0x4001,
                block: 3
            }
        );
        let c = crc32c_raw(crc32c_raw(0x55, &b[..56]), &[0; 8]);
        assert_eq!(&b[BS - 4..], &c.to_le_bytes());
    }
}
