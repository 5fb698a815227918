//! Building extent trees: up to 4 extents live in the inode; more go to
//! leaf blocks of 340 entries under index levels as deep as needed.

use crate::crc::crc32c_raw;
use crate::format::BLOCK_SIZE;
use crate::format::extent::{
    BLOCK_MAX_ENTRIES, ENTRY_SIZE, EXT3_EXT_MAGIC, Extent, ExtentHeader, ExtentIdx,
    ROOT_MAX_ENTRIES, TAIL_OFFSET, split48,
};
use crate::format::inode::I_BLOCK_SIZE;

/// One extent: `len` blocks of the file from `logical` at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext {
    pub logical: u32,
    pub start: u64,
    pub len: u16,
}

/// Node counts per level below the root, leaves first (empty when the
/// extents fit in the inode).
pub fn shape(n_extents: usize) -> Vec<usize> {
    let mut levels = Vec::new();
    let mut n = n_extents;
    while n > usize::from(ROOT_MAX_ENTRIES) {
        n = n.div_ceil(usize::from(BLOCK_MAX_ENTRIES));
        levels.push(n);
    }
    levels
}

/// Blocks the tree needs beyond the inode.
pub fn tree_blocks(n_extents: usize) -> usize {
    shape(n_extents).iter().sum()
}

/// An encoded tree: the inode's `i_block` and the tree blocks.
pub struct Encoded {
    pub i_block: [u8; I_BLOCK_SIZE],
    pub blocks: Vec<(u64, Vec<u8>)>,
}

fn header(entries: usize, max: u16, depth: u16) -> ExtentHeader {
    ExtentHeader {
        eh_magic: EXT3_EXT_MAGIC,
        eh_entries: u16::try_from(entries).unwrap_or(0),
        eh_max: max,
        eh_depth: depth,
        eh_generation: 0,
    }
}

/// Encode the tree for `extents` using `blocks` (exactly
/// `tree_blocks(extents.len())` of them, leaves first) and the inode's
/// checksum seed for the block tails.
pub fn encode(extents: &[Ext], blocks: &[u64], inode_seed: u32) -> Encoded {
    debug_assert_eq!(blocks.len(), tree_blocks(extents.len()));
    // Entries of the current level: (first logical block, encoded entry).
    let mut level: Vec<(u32, [u8; ENTRY_SIZE])> = extents
        .iter()
        .map(|e| {
            let (hi, lo) = split48(e.start);
            let mut b = [0u8; ENTRY_SIZE];
            Extent {
                ee_block: e.logical,
                ee_len: e.len,
                ee_start_hi: hi,
                ee_start_lo: lo,
            }
            .encode(&mut b);
            (e.logical, b)
        })
        .collect();
    let mut depth: u16 = 0;
    let mut next_block = blocks.iter();
    let mut out_blocks = Vec::new();
    while level.len() > usize::from(ROOT_MAX_ENTRIES) {
        let mut upper = Vec::new();
        for chunk in level.chunks(usize::from(BLOCK_MAX_ENTRIES)) {
            let Some(&blk) = next_block.next() else { break };
            let mut b = vec![0u8; BLOCK_SIZE as usize];
            header(chunk.len(), BLOCK_MAX_ENTRIES, depth).encode(&mut b);
            for (i, (_, ent)) in chunk.iter().enumerate() {
                let off = ENTRY_SIZE * (i + 1);
                b[off..off + ENTRY_SIZE].copy_from_slice(ent);
            }
            let csum = crc32c_raw(inode_seed, &b[..TAIL_OFFSET]);
            b[TAIL_OFFSET..TAIL_OFFSET + 4].copy_from_slice(&csum.to_le_bytes());
            let (hi, lo) = split48(blk);
            let mut idx = [0u8; ENTRY_SIZE];
            ExtentIdx {
                ei_block: chunk[0].0,
                ei_leaf_lo: lo,
                ei_leaf_hi: hi,
                ei_unused: 0,
            }
            .encode(&mut idx);
            upper.push((chunk[0].0, idx));
            out_blocks.push((blk, b));
        }
        level = upper;
        depth += 1;
    }
    let mut i_block = [0u8; I_BLOCK_SIZE];
    header(level.len(), ROOT_MAX_ENTRIES, depth).encode(&mut i_block);
    for (i, (_, ent)) in level.iter().enumerate() {
        let off = ENTRY_SIZE * (i + 1);
        i_block[off..off + ENTRY_SIZE].copy_from_slice(ent);
    }
    Encoded {
        i_block,
        blocks: out_blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_table() {
        let cases: [(usize, Vec<usize>); 6] = [
            (0, vec![]),
            (4, vec![]),
            (5, vec![1]),
            (1360, vec![4]),
            (1361, vec![5, 1]),
            (340 * 340 * 4 + 1, vec![1361, 5, 1]),
        ];
        for (n, want) in cases {
            assert_eq!(shape(n), want, "{n}");
        }
    }

    #[test]
    fn depth_one_tree() {
        let exts: Vec<Ext> = (0..6)
            .map(|i| Ext {
                logical: i * 2,
                start: 1000 + u64::from(i) * 2,
                len: 1,
            })
            .collect();
        let enc = encode(&exts, &[77], 0xABCD);
        let root = ExtentHeader::decode(&enc.i_block);
        assert_eq!((root.eh_entries, root.eh_max, root.eh_depth), (1, 4, 1));
        let idx = ExtentIdx::decode(&enc.i_block[12..]);
        assert_eq!((idx.ei_block, idx.ei_leaf_lo), (0, 77));
        assert_eq!(enc.blocks.len(), 1);
        let (blk, b) = &enc.blocks[0];
        assert_eq!(*blk, 77);
        let h = ExtentHeader::decode(b);
        assert_eq!((h.eh_entries, h.eh_max, h.eh_depth), (6, 340, 0));
        let last = Extent::decode(&b[12 * 6..]);
        assert_eq!(
            (last.ee_block, last.ee_start_lo, last.ee_len),
            (10, 1010, 1)
        );
        assert_eq!(
            &b[TAIL_OFFSET..TAIL_OFFSET + 4],
            &crc32c_raw(0xABCD, &b[..TAIL_OFFSET]).to_le_bytes()
        );
    }
}
