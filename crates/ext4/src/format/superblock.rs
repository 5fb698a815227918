//! The superblock (`struct ext2_super_block`), 1024 bytes at byte 1024 and
//! at the start of every backup group.

use crate::le::le_struct;

pub const SUPERBLOCK_SIZE: usize = 1024;
/// `EXT2_SUPER_MAGIC`.
pub const EXT2_SUPER_MAGIC: u16 = 0xEF53;
/// `EXT2_VALID_FS` in `s_state`.
pub const EXT2_VALID_FS: u16 = 1;
/// `EXT2_ERRORS_CONTINUE`.
pub const EXT2_ERRORS_CONTINUE: u16 = 1;
/// `EXT2_DYNAMIC_REV`.
pub const EXT2_DYNAMIC_REV: u32 = 1;
/// `EXT2_OS_LINUX`.
pub const EXT2_OS_LINUX: u32 = 0;
/// `EXT2_HASH_HALF_MD4`, mke2fs' default directory hash.
pub const EXT2_HASH_HALF_MD4: u8 = 1;
/// `EXT2_FLAGS_SIGNED_HASH` (what mke2fs sets on x86).
pub const EXT2_FLAGS_SIGNED_HASH: u32 = 0x0001;
/// `EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL`.
pub const DEFAULT_MOUNT_OPTS: u32 = 0x0004 | 0x0008;
/// `EXT3_JNL_BACKUP_BLOCKS`: `s_jnl_blocks` holds a copy of the journal's i_block.
pub const EXT3_JNL_BACKUP_BLOCKS: u8 = 1;
/// `EXT2_CRC32C_CHKSUM`.
pub const EXT2_CRC32C_CHKSUM: u8 = 1;
/// Offset of `s_checksum`; the checksum covers the bytes before it.
pub const S_CHECKSUM_OFFSET: usize = 0x3FC;

le_struct! {
    /// The fields of `struct ext2_super_block` this writer sets; the rest
    /// stay zero.
    pub struct Superblock [SUPERBLOCK_SIZE] {
        s_inodes_count: u32 = 0x00,
        s_blocks_count_lo: u32 = 0x04,
        s_r_blocks_count_lo: u32 = 0x08,
        s_free_blocks_count_lo: u32 = 0x0C,
        s_free_inodes_count: u32 = 0x10,
        s_first_data_block: u32 = 0x14,
        s_log_block_size: u32 = 0x18,
        s_log_cluster_size: u32 = 0x1C,
        s_blocks_per_group: u32 = 0x20,
        s_clusters_per_group: u32 = 0x24,
        s_inodes_per_group: u32 = 0x28,
        s_mtime: u32 = 0x2C,
        s_wtime: u32 = 0x30,
        s_mnt_count: u16 = 0x34,
        s_max_mnt_count: u16 = 0x36,
        s_magic: u16 = 0x38,
        s_state: u16 = 0x3A,
        s_errors: u16 = 0x3C,
        s_minor_rev_level: u16 = 0x3E,
        s_lastcheck: u32 = 0x40,
        s_checkinterval: u32 = 0x44,
        s_creator_os: u32 = 0x48,
        s_rev_level: u32 = 0x4C,
        s_def_resuid: u16 = 0x50,
        s_def_resgid: u16 = 0x52,
        s_first_ino: u32 = 0x54,
        s_inode_size: u16 = 0x58,
        s_block_group_nr: u16 = 0x5A,
        s_feature_compat: u32 = 0x5C,
        s_feature_incompat: u32 = 0x60,
        s_feature_ro_compat: u32 = 0x64,
        s_uuid: [u8; 16] = 0x68,
        s_volume_name: [u8; 16] = 0x78,
        s_reserved_gdt_blocks: u16 = 0xCE,
        s_journal_uuid: [u8; 16] = 0xD0,
        s_journal_inum: u32 = 0xE0,
        s_hash_seed: [u8; 16] = 0xEC,
        s_def_hash_version: u8 = 0xFC,
        s_jnl_backup_type: u8 = 0xFD,
        s_desc_size: u16 = 0xFE,
        s_default_mount_opts: u32 = 0x100,
        s_first_meta_bg: u32 = 0x104,
        s_mkfs_time: u32 = 0x108,
        s_jnl_blocks: [u32; 17] = 0x10C,
        s_blocks_count_hi: u32 = 0x150,
        s_r_blocks_count_hi: u32 = 0x154,
        s_free_blocks_hi: u32 = 0x158,
        s_min_extra_isize: u16 = 0x15C,
        s_want_extra_isize: u16 = 0x15E,
        s_flags: u32 = 0x160,
        s_log_groups_per_flex: u8 = 0x174,
        s_checksum_type: u8 = 0x175,
        s_wtime_hi: u8 = 0x274,
        s_mkfs_time_hi: u8 = 0x276,
        s_lastcheck_hi: u8 = 0x277,
        s_checksum: u32 = S_CHECKSUM_OFFSET,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_spec() {
        let cases = [
            ("s_magic", 0x38),
            ("s_uuid", 0x68),
            ("s_desc_size", 0xFE),
            ("s_jnl_blocks", 0x10C),
            ("s_blocks_count_hi", 0x150),
            ("s_checksum_type", 0x175),
            ("s_checksum", 0x3FC),
        ];
        for (f, off) in cases {
            assert_eq!(Superblock::offset_of(f), Some(off), "{f}");
        }
        let sb = Superblock {
            s_magic: EXT2_SUPER_MAGIC,
            s_checksum: 0xAABBCCDD,
            ..Default::default()
        };
        let b = sb.to_bytes();
        assert_eq!(b.len(), 1024);
        assert_eq!(&b[0x38..0x3A], &[0x53, 0xEF]);
        assert_eq!(&b[0x3FC..], &[0xDD, 0xCC, 0xBB, 0xAA]);
    }
}
