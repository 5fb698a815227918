//! The 64-byte group descriptor (`struct ext4_group_desc`).

use crate::le::le_struct;

/// Offset of `bg_checksum`, excluded from its own checksum.
pub const BG_CHECKSUM_OFFSET: usize = 0x1E;

le_struct! {
    pub struct GroupDesc [64] {
        bg_block_bitmap_lo: u32 = 0x00,
        bg_inode_bitmap_lo: u32 = 0x04,
        bg_inode_table_lo: u32 = 0x08,
        bg_free_blocks_count_lo: u16 = 0x0C,
        bg_free_inodes_count_lo: u16 = 0x0E,
        bg_used_dirs_count_lo: u16 = 0x10,
        bg_flags: u16 = 0x12,
        bg_exclude_bitmap_lo: u32 = 0x14,
        bg_block_bitmap_csum_lo: u16 = 0x18,
        bg_inode_bitmap_csum_lo: u16 = 0x1A,
        bg_itable_unused_lo: u16 = 0x1C,
        bg_checksum: u16 = BG_CHECKSUM_OFFSET,
        bg_block_bitmap_hi: u32 = 0x20,
        bg_inode_bitmap_hi: u32 = 0x24,
        bg_inode_table_hi: u32 = 0x28,
        bg_free_blocks_count_hi: u16 = 0x2C,
        bg_free_inodes_count_hi: u16 = 0x2E,
        bg_used_dirs_count_hi: u16 = 0x30,
        bg_itable_unused_hi: u16 = 0x32,
        bg_exclude_bitmap_hi: u32 = 0x34,
        bg_block_bitmap_csum_hi: u16 = 0x38,
        bg_inode_bitmap_csum_hi: u16 = 0x3A,
        bg_reserved: u32 = 0x3C,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_table() {
        let cases = [
            ("bg_flags", 0x12),
            ("bg_checksum", 0x1E),
            ("bg_block_bitmap_hi", 0x20),
            ("bg_inode_bitmap_csum_hi", 0x3A),
        ];
        for (f, off) in cases {
            assert_eq!(GroupDesc::offset_of(f), Some(off), "{f}");
        }
        let d = GroupDesc {
            bg_inode_table_lo: 0x11223344,
            bg_inode_table_hi: 5,
            ..Default::default()
        };
        let b = d.to_bytes();
        assert_eq!(&b[8..12], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&b[0x28..0x2C], &[5, 0, 0, 0]);
        assert_eq!(GroupDesc::decode(&b), d);
    }
}
