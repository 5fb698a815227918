//! The shape of a dm-verity hash area for a given data size.
//!
//! The hash area starts with the superblock (padded to one hash block);
//! the tree follows, its top level first and the level hashing the data
//! last, as veritysetup lays it out.

use crate::error::{Result, VerityError};

/// Data and hash block size used by Basalt (veritysetup's default).
pub const BLOCK_SIZE: u32 = 4096;
pub const BLOCK: u64 = BLOCK_SIZE as u64;
/// SHA-256 digest size; a power of two, so format 1 adds no padding.
pub const DIGEST_SIZE: usize = 32;
/// Digests per hash block: 4096 / 32.
pub const HASHES_PER_BLOCK: u64 = BLOCK / DIGEST_SIZE as u64;

/// One level of the hash tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// First hash block of this level, counted from the start of the tree.
    pub start: u64,
    /// Number of hash blocks in this level.
    pub blocks: u64,
}

/// Where everything goes in the hash area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityPlan {
    pub data_blocks: u64,
    /// `levels[0]` hashes the data blocks; the last level is one block.
    /// Empty when there is a single data block (its digest is the root).
    pub levels: Vec<Level>,
    /// Hash blocks of all levels together.
    pub tree_blocks: u64,
    /// Bytes of the whole hash area: superblock block plus tree.
    pub hash_size: u64,
}

impl VerityPlan {
    /// Plan the hash area for `data_bytes` of data (a non-zero multiple of
    /// the 4096-byte block size).
    pub fn new(data_bytes: u64) -> Result<VerityPlan> {
        if data_bytes == 0 {
            return Err(VerityError::EmptyData);
        }
        if data_bytes % BLOCK != 0 {
            return Err(VerityError::UnalignedData(data_bytes, BLOCK_SIZE));
        }
        let n = data_bytes / BLOCK;
        // Level i holds ceil(n / 128^(i+1)) blocks; stop at the first level
        // of a single block.
        let mut sizes = Vec::new();
        let mut below = n;
        while below > 1 {
            below = below.div_ceil(HASHES_PER_BLOCK);
            sizes.push(below);
        }
        let mut levels = vec![
            Level {
                start: 0,
                blocks: 0
            };
            sizes.len()
        ];
        let mut pos = 0u64;
        for i in (0..sizes.len()).rev() {
            levels[i] = Level {
                start: pos,
                blocks: sizes[i],
            };
            pos += sizes[i];
        }
        let hash_size = pos
            .checked_add(1)
            .and_then(|b| b.checked_mul(BLOCK))
            .ok_or(VerityError::Overflow(data_bytes))?;
        Ok(VerityPlan {
            data_blocks: n,
            levels,
            tree_blocks: pos,
            hash_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_table() {
        // (data blocks, level sizes from level 0 up, tree blocks)
        let cases: &[(u64, &[u64], u64)] = &[
            (1, &[], 0),
            (2, &[1], 1),
            (128, &[1], 1),
            (129, &[2, 1], 3),
            (128 * 128, &[128, 1], 129),
            (128 * 128 + 1, &[129, 2, 1], 132),
            (262_144, &[2048, 16, 1], 2065),
        ];
        for &(n, sizes, tree) in cases {
            let p = VerityPlan::new(n * BLOCK).expect("plan");
            let got: Vec<u64> = p.levels.iter().map(|l| l.blocks).collect();
            assert_eq!(got, sizes, "{n} blocks");
            assert_eq!(p.tree_blocks, tree, "{n} blocks");
            assert_eq!(p.hash_size, (tree + 1) * BLOCK);
            // Top level first, contiguous.
            let mut pos = 0;
            for l in p.levels.iter().rev() {
                assert_eq!(l.start, pos);
                pos += l.blocks;
            }
        }
    }

    #[test]
    fn plan_rejects() {
        assert!(matches!(VerityPlan::new(0), Err(VerityError::EmptyData)));
        assert!(matches!(
            VerityPlan::new(4097),
            Err(VerityError::UnalignedData(4097, 4096))
        ));
    }
}
