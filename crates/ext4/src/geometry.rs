//! Block group geometry: group count, inodes per group, where the fixed
//! metadata (superblock and descriptor table copies) lives.

use crate::error::Error;
use crate::format::{BLOCK_SIZE, BLOCKS_PER_GROUP, DESC_SIZE, INODE_SIZE, MAX_INODES_PER_GROUP};

/// Inodes per inode-table block.
const INODES_PER_BLOCK: u64 = BLOCK_SIZE / INODE_SIZE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub blocks: u64,
    pub groups: u32,
    pub inodes_per_group: u32,
    /// Blocks of the group descriptor table (each copy).
    pub gdt_blocks: u64,
}

/// With sparse_super, groups 0, 1 and powers of 3, 5 and 7 carry a
/// superblock and descriptor table copy.
pub fn group_has_super(g: u64) -> bool {
    if g <= 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&b| {
        let mut p = b;
        while p < g {
            p *= b;
        }
        p == g
    })
}

impl Geometry {
    /// Geometry for `blocks` blocks and at least `min_inodes` inodes.
    pub fn new(blocks: u64, min_inodes: u64) -> Result<Geometry, Error> {
        if blocks < 64 {
            return Err(Error::TooSmall { blocks });
        }
        let groups64 = blocks.div_ceil(BLOCKS_PER_GROUP);
        let groups = u32::try_from(groups64).map_err(|_| Error::TooLarge { blocks })?;
        let per_group = min_inodes.div_ceil(groups64).max(INODES_PER_BLOCK);
        let per_group = per_group.div_ceil(INODES_PER_BLOCK) * INODES_PER_BLOCK;
        if per_group > u64::from(MAX_INODES_PER_GROUP) {
            return Err(Error::TooManyInodes {
                inodes: min_inodes,
                blocks,
            });
        }
        let inodes_per_group = u32::try_from(per_group).map_err(|_| Error::TooManyInodes {
            inodes: min_inodes,
            blocks,
        })?;
        if u64::from(inodes_per_group) * groups64 > u64::from(u32::MAX) {
            return Err(Error::TooManyInodes {
                inodes: min_inodes,
                blocks,
            });
        }
        let gdt_blocks = (groups64 * DESC_SIZE).div_ceil(BLOCK_SIZE);
        Ok(Geometry {
            blocks,
            groups,
            inodes_per_group,
            gdt_blocks,
        })
    }

    pub fn inodes_count(&self) -> u32 {
        // Checked in `new`.
        self.inodes_per_group.saturating_mul(self.groups)
    }

    pub fn inode_table_blocks(&self) -> u64 {
        u64::from(self.inodes_per_group) / INODES_PER_BLOCK
    }

    pub fn group_start(&self, g: u32) -> u64 {
        u64::from(g) * BLOCKS_PER_GROUP
    }

    /// Blocks in group `g` (the last one may be short).
    pub fn group_len(&self, g: u32) -> u64 {
        (self.blocks - self.group_start(g)).min(BLOCKS_PER_GROUP)
    }

    /// Blocks of the superblock + descriptor copy at the start of a group
    /// that has one.
    pub fn super_len(&self) -> u64 {
        1 + self.gdt_blocks
    }

    /// The fixed ranges `[start, end)` of superblock and descriptor copies,
    /// for groups up to `upto_groups` (may exceed `groups` while sizing).
    pub fn fixed_ranges(&self, upto_groups: u64) -> Vec<(u64, u64)> {
        (0..upto_groups)
            .filter(|&g| group_has_super(g))
            .map(|g| {
                (
                    g * BLOCKS_PER_GROUP,
                    g * BLOCKS_PER_GROUP + self.super_len(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_table() {
        let with: Vec<u64> = (0..100).filter(|&g| group_has_super(g)).collect();
        assert_eq!(with, vec![0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn geometry_table() {
        // (blocks, min inodes) -> (groups, inodes per group, gdt blocks)
        let cases = [
            (100u64, 1u64, (1u32, 16u32, 1u64)),
            (32768, 100, (1, 112, 1)),
            (32769, 100, (2, 64, 1)),
            (262144, 65536, (8, 8192, 1)),
            (64 * 32768 + 1, 1, (65, 16, 2)),
        ];
        for (blocks, inodes, want) in cases {
            let g = Geometry::new(blocks, inodes).expect("geometry");
            assert_eq!(
                (g.groups, g.inodes_per_group, g.gdt_blocks),
                want,
                "{blocks} {inodes}"
            );
        }
        assert!(Geometry::new(32768, 40000).is_err());
        assert!(Geometry::new(10, 1).is_err());
    }
}
