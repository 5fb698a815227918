//! Group metadata bytes: bitmaps, group descriptors, superblocks.

use crate::crc::crc32c_raw;
use crate::format::features::{CompatFeatures, GroupFlags, IncompatFeatures, RoCompatFeatures};
use crate::format::group_desc::{BG_CHECKSUM_OFFSET, GroupDesc};
use crate::format::inode::EXTRA_ISIZE;
use crate::format::superblock::{
    DEFAULT_MOUNT_OPTS, EXT2_CRC32C_CHKSUM, EXT2_DYNAMIC_REV, EXT2_ERRORS_CONTINUE,
    EXT2_FLAGS_SIGNED_HASH, EXT2_HASH_HALF_MD4, EXT2_OS_LINUX, EXT2_SUPER_MAGIC, EXT2_VALID_FS,
    EXT3_JNL_BACKUP_BLOCKS, S_CHECKSUM_OFFSET, Superblock,
};
use crate::format::{
    BLOCK_SIZE, BLOCKS_PER_GROUP, DESC_SIZE, FIRST_INO, INODE_SIZE, JOURNAL_INO, LOG_BLOCK_SIZE,
};
use crate::geometry::Geometry;

const BS: usize = BLOCK_SIZE as usize;
/// mke2fs' flex_bg size: 2^4 groups.
const LOG_GROUPS_PER_FLEX: u8 = 4;

/// Set bits `[start, start + len)` of `bits`.
pub fn set_bits(bits: &mut [u8], start: u64, len: u64) {
    let (mut i, end) = (start, start + len);
    while i < end && i % 8 != 0 {
        bits[(i / 8) as usize] |= 1 << (i % 8);
        i += 1;
    }
    while i + 8 <= end {
        bits[(i / 8) as usize] = 0xFF;
        i += 8;
    }
    while i < end {
        bits[(i / 8) as usize] |= 1 << (i % 8);
        i += 1;
    }
}

fn count_bits(bits: &[u8]) -> u64 {
    bits.iter().map(|b| u64::from(b.count_ones())).sum()
}

/// Everything the group metadata depends on.
pub struct GroupInputs<'a> {
    pub geo: &'a Geometry,
    pub block_bitmaps: &'a [u64],
    pub inode_bitmaps: &'a [u64],
    pub inode_tables: &'a [u64],
    /// Used block ranges (fixed copies and allocations).
    pub used: &'a [(u64, u64)],
    /// Inodes 1..=last_ino are in use.
    pub last_ino: u32,
    /// Directory count per group.
    pub dirs_per_group: &'a [u32],
    pub fs_seed: u32,
}

/// Computed group metadata: bitmap blocks and descriptors.
pub struct Groups {
    pub block_bitmaps: Vec<Vec<u8>>,
    pub inode_bitmaps: Vec<Vec<u8>>,
    pub descs: Vec<GroupDesc>,
    pub free_blocks: u64,
    pub free_inodes: u64,
}

fn lo32(v: u64) -> u32 {
    u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0)
}
fn hi32(v: u64) -> u32 {
    u32::try_from(v >> 32).unwrap_or(0)
}
fn lo16(v: u32) -> u16 {
    u16::try_from(v & 0xFFFF).unwrap_or(0)
}
fn hi16(v: u32) -> u16 {
    u16::try_from(v >> 16).unwrap_or(0)
}

pub fn build_groups(inp: &GroupInputs<'_>) -> Groups {
    let geo = inp.geo;
    let groups = geo.groups as usize;
    let mut all = vec![0u8; groups * BS];
    for &(s, l) in inp.used {
        let e = (s + l).min(geo.blocks);
        if s < e {
            set_bits(&mut all, s, e - s);
        }
    }
    let ipg = geo.inodes_per_group;
    let mut out = Groups {
        block_bitmaps: Vec::new(),
        inode_bitmaps: Vec::new(),
        descs: Vec::new(),
        free_blocks: 0,
        free_inodes: 0,
    };
    for g in 0..geo.groups {
        let gi = g as usize;
        let len = geo.group_len(g);
        let mut bb = all[gi * BS..(gi + 1) * BS].to_vec();
        let used_blocks = count_bits(&bb);
        let free_blocks = len - used_blocks;
        // Padding past the end of a short last group is marked in use.
        set_bits(&mut bb, len, BLOCKS_PER_GROUP - len);
        let mut ib = vec![0u8; BS];
        let first = u64::from(g) * u64::from(ipg);
        let used_inodes = u64::from(inp.last_ino)
            .saturating_sub(first)
            .min(u64::from(ipg));
        set_bits(&mut ib, 0, used_inodes);
        set_bits(&mut ib, u64::from(ipg), (8 * BS) as u64 - u64::from(ipg));
        let free_inodes = u64::from(ipg) - used_inodes;
        let bcs = crc32c_raw(inp.fs_seed, &bb[..(BLOCKS_PER_GROUP / 8) as usize]);
        let ics = crc32c_raw(inp.fs_seed, &ib[..(ipg / 8) as usize]);
        let free_b = u32::try_from(free_blocks).unwrap_or(0);
        let free_i = u32::try_from(free_inodes).unwrap_or(0);
        let unused = u32::try_from(u64::from(ipg) - used_inodes).unwrap_or(0);
        let dirs = inp.dirs_per_group[gi];
        let mut d = GroupDesc {
            bg_block_bitmap_lo: lo32(inp.block_bitmaps[gi]),
            bg_inode_bitmap_lo: lo32(inp.inode_bitmaps[gi]),
            bg_inode_table_lo: lo32(inp.inode_tables[gi]),
            bg_free_blocks_count_lo: lo16(free_b),
            bg_free_inodes_count_lo: lo16(free_i),
            bg_used_dirs_count_lo: lo16(dirs),
            bg_flags: GroupFlags::INODE_ZEROED.0,
            bg_block_bitmap_csum_lo: lo16(bcs),
            bg_inode_bitmap_csum_lo: lo16(ics),
            bg_itable_unused_lo: lo16(unused),
            bg_block_bitmap_hi: hi32(inp.block_bitmaps[gi]),
            bg_inode_bitmap_hi: hi32(inp.inode_bitmaps[gi]),
            bg_inode_table_hi: hi32(inp.inode_tables[gi]),
            bg_free_blocks_count_hi: hi16(free_b),
            bg_free_inodes_count_hi: hi16(free_i),
            bg_used_dirs_count_hi: hi16(dirs),
            bg_itable_unused_hi: hi16(unused),
            bg_block_bitmap_csum_hi: hi16(bcs),
            bg_inode_bitmap_csum_hi: hi16(ics),
            ..Default::default()
        };
        d.bg_checksum = desc_checksum(&d, g, inp.fs_seed);
        out.free_blocks += free_blocks;
        out.free_inodes += free_inodes;
        out.block_bitmaps.push(bb);
        out.inode_bitmaps.push(ib);
        out.descs.push(d);
    }
    out
}

/// crc32c(seed, le32 group, descriptor with bg_checksum excluded), low 16 bits.
fn desc_checksum(d: &GroupDesc, g: u32, seed: u32) -> u16 {
    let b = d.to_bytes();
    let c = crc32c_raw(seed, &g.to_le_bytes());
    let c = crc32c_raw(c, &b[..BG_CHECKSUM_OFFSET]);
    let c = crc32c_raw(c, &[0, 0]);
    let c = crc32c_raw(c, &b[BG_CHECKSUM_OFFSET + 2..DESC_SIZE as usize]);
    lo16(c)
}

/// The descriptor table as bytes (whole blocks).
pub fn gdt_bytes(descs: &[GroupDesc], gdt_blocks: u64) -> Vec<u8> {
    let mut v = vec![0u8; gdt_blocks as usize * BS];
    for (i, d) in descs.iter().enumerate() {
        d.encode(&mut v[i * DESC_SIZE as usize..]);
    }
    v
}

/// Superblock inputs that are not in the geometry.
pub struct SuperInputs<'a> {
    pub geo: &'a Geometry,
    pub free_blocks: u64,
    pub free_inodes: u64,
    pub reserved_blocks: u64,
    pub uuid: [u8; 16],
    pub label: &'a str,
    pub hash_seed: [u8; 16],
    pub timestamp: i64,
    /// The journal inode's `i_block` and size when there is a journal.
    pub journal: Option<([u8; 60], u64)>,
    /// Set the dir_index feature.
    pub dir_index: bool,
}

pub fn superblock(inp: &SuperInputs<'_>) -> Superblock {
    let geo = inp.geo;
    let mut compat = CompatFeatures::EXT_ATTR;
    if inp.journal.is_some() {
        compat = compat.union(CompatFeatures::HAS_JOURNAL);
    }
    if inp.dir_index {
        compat = compat.union(CompatFeatures::DIR_INDEX);
    }
    let incompat = IncompatFeatures::FILETYPE
        .union(IncompatFeatures::EXTENTS)
        .union(IncompatFeatures::BIT64)
        .union(IncompatFeatures::FLEX_BG);
    let ro = RoCompatFeatures::SPARSE_SUPER
        .union(RoCompatFeatures::LARGE_FILE)
        .union(RoCompatFeatures::HUGE_FILE)
        .union(RoCompatFeatures::DIR_NLINK)
        .union(RoCompatFeatures::EXTRA_ISIZE)
        .union(RoCompatFeatures::METADATA_CSUM);
    let ts = u64::try_from(inp.timestamp).unwrap_or(0);
    let mut label = [0u8; 16];
    label[..inp.label.len()].copy_from_slice(inp.label.as_bytes());
    let mut sb = Superblock {
        s_inodes_count: geo.inodes_count(),
        s_blocks_count_lo: lo32(geo.blocks),
        s_r_blocks_count_lo: lo32(inp.reserved_blocks),
        s_free_blocks_count_lo: lo32(inp.free_blocks),
        s_free_inodes_count: lo32(inp.free_inodes),
        s_first_data_block: 0,
        s_log_block_size: LOG_BLOCK_SIZE,
        s_log_cluster_size: LOG_BLOCK_SIZE,
        s_blocks_per_group: lo32(BLOCKS_PER_GROUP),
        s_clusters_per_group: lo32(BLOCKS_PER_GROUP),
        s_inodes_per_group: geo.inodes_per_group,
        s_wtime: lo32(ts),
        s_wtime_hi: u8::try_from(hi32(ts) & 0xFF).unwrap_or(0),
        s_max_mnt_count: 0xFFFF,
        s_magic: EXT2_SUPER_MAGIC,
        s_state: EXT2_VALID_FS,
        s_errors: EXT2_ERRORS_CONTINUE,
        s_lastcheck: lo32(ts),
        s_lastcheck_hi: u8::try_from(hi32(ts) & 0xFF).unwrap_or(0),
        s_creator_os: EXT2_OS_LINUX,
        s_rev_level: EXT2_DYNAMIC_REV,
        s_first_ino: FIRST_INO,
        s_inode_size: INODE_SIZE as u16,
        s_feature_compat: compat.0,
        s_feature_incompat: incompat.0,
        s_feature_ro_compat: ro.0,
        s_uuid: inp.uuid,
        s_volume_name: label,
        s_hash_seed: inp.hash_seed,
        s_def_hash_version: EXT2_HASH_HALF_MD4,
        s_desc_size: DESC_SIZE as u16,
        s_default_mount_opts: DEFAULT_MOUNT_OPTS,
        s_mkfs_time: lo32(ts),
        s_mkfs_time_hi: u8::try_from(hi32(ts) & 0xFF).unwrap_or(0),
        s_blocks_count_hi: hi32(geo.blocks),
        s_r_blocks_count_hi: hi32(inp.reserved_blocks),
        s_free_blocks_hi: hi32(inp.free_blocks),
        s_min_extra_isize: EXTRA_ISIZE,
        s_want_extra_isize: EXTRA_ISIZE,
        s_flags: EXT2_FLAGS_SIGNED_HASH,
        s_log_groups_per_flex: LOG_GROUPS_PER_FLEX,
        s_checksum_type: EXT2_CRC32C_CHKSUM,
        ..Default::default()
    };
    if let Some((i_block, size)) = inp.journal {
        sb.s_journal_inum = JOURNAL_INO;
        sb.s_jnl_backup_type = EXT3_JNL_BACKUP_BLOCKS;
        for (i, w) in i_block.chunks_exact(4).enumerate() {
            sb.s_jnl_blocks[i] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        sb.s_jnl_blocks[15] = hi32(size);
        sb.s_jnl_blocks[16] = lo32(size);
    }
    sb
}

/// Encode a superblock copy for group `g` with its checksum.
pub fn superblock_bytes(sb: &Superblock, g: u32) -> Vec<u8> {
    let mut sb = sb.clone();
    sb.s_block_group_nr = lo16(g); // mke2fs stores the group number modulo 2^16
    let mut b = sb.to_bytes();
    let c = crc32c_raw(!0, &b[..S_CHECKSUM_OFFSET]);
    b[S_CHECKSUM_OFFSET..].copy_from_slice(&c.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bits_table() {
        let cases: [(u64, u64, [u8; 3]); 5] = [
            (0, 0, [0, 0, 0]),
            (0, 1, [1, 0, 0]),
            (3, 2, [0b11000, 0, 0]),
            (6, 12, [0xC0, 0xFF, 0x03]),
            (0, 24, [0xFF; 3]),
        ];
        for (s, l, want) in cases {
            let mut b = [0u8; 3];
            set_bits(&mut b, s, l);
            assert_eq!(b, want, "{s} {l}");
        }
    }
}
