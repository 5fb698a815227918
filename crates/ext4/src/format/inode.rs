//! The 256-byte inode (`struct ext2_inode_large`) with 32 bytes of extra
//! fields (`i_extra_isize = 32`), and the in-inode xattr area after them.

use crate::le::le_struct;

/// Bytes of the classic inode.
pub const GOOD_OLD_INODE_SIZE: usize = 128;
/// `i_extra_isize` we write: covers up to and including `i_projid`.
pub const EXTRA_ISIZE: u16 = 32;
/// `l_i_checksum_lo` (in osd2) and `i_checksum_hi`.
pub const I_CHECKSUM_LO_OFFSET: usize = 0x7C;
pub const I_CHECKSUM_HI_OFFSET: usize = 0x82;
/// Size of `i_block` (15 u32).
pub const I_BLOCK_SIZE: usize = 60;
/// Where the in-inode xattr area starts.
pub const IN_INODE_XATTR_OFFSET: usize = GOOD_OLD_INODE_SIZE + EXTRA_ISIZE as usize;

/// File type bits of `i_mode` (`S_IF*`).
pub const S_IFIFO: u16 = 0o010000;
pub const S_IFCHR: u16 = 0o020000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFBLK: u16 = 0o060000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFLNK: u16 = 0o120000;

le_struct! {
    pub struct Inode [256] {
        i_mode: u16 = 0x00,
        i_uid: u16 = 0x02,
        i_size_lo: u32 = 0x04,
        i_atime: u32 = 0x08,
        i_ctime: u32 = 0x0C,
        i_mtime: u32 = 0x10,
        i_dtime: u32 = 0x14,
        i_gid: u16 = 0x18,
        i_links_count: u16 = 0x1A,
        i_blocks_lo: u32 = 0x1C,
        i_flags: u32 = 0x20,
        l_i_version: u32 = 0x24,
        i_block: [u8; I_BLOCK_SIZE] = 0x28,
        i_generation: u32 = 0x64,
        i_file_acl_lo: u32 = 0x68,
        i_size_high: u32 = 0x6C,
        i_faddr: u32 = 0x70,
        l_i_blocks_hi: u16 = 0x74,
        l_i_file_acl_high: u16 = 0x76,
        l_i_uid_high: u16 = 0x78,
        l_i_gid_high: u16 = 0x7A,
        l_i_checksum_lo: u16 = I_CHECKSUM_LO_OFFSET,
        l_i_reserved: u16 = 0x7E,
        i_extra_isize: u16 = 0x80,
        i_checksum_hi: u16 = I_CHECKSUM_HI_OFFSET,
        i_ctime_extra: u32 = 0x84,
        i_mtime_extra: u32 = 0x88,
        i_atime_extra: u32 = 0x8C,
        i_crtime: u32 = 0x90,
        i_crtime_extra: u32 = 0x94,
        i_version_hi: u32 = 0x98,
        i_projid: u32 = 0x9C,
    }
}

/// An ext4 timestamp: the low 32 bits of the seconds in the base field, and
/// in the `_extra` field two epoch bits (bits 32-33 of the seconds) below 30
/// bits of nanoseconds (always zero here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub base: u32,
    pub extra: u32,
}

/// Earliest and latest encodable times: a signed 32-bit base plus up to
/// three epochs of 2^32 seconds (1901-12-13 .. 2446-05-10).
pub const TIME_MIN: i64 = -(1 << 31);
pub const TIME_MAX: i64 = 3 * (1 << 32) + (1 << 31) - 1;

impl Timestamp {
    /// Encode `secs`, or `None` when out of the representable range.
    pub fn encode(secs: i64) -> Option<Timestamp> {
        if !(TIME_MIN..=TIME_MAX).contains(&secs) {
            return None;
        }
        let low = u32::try_from(secs.rem_euclid(1 << 32)).ok()?;
        let signed_low = i64::from(i32::from_le_bytes(low.to_le_bytes()));
        let epoch = (secs - signed_low) >> 32;
        let epoch = u32::try_from(epoch).ok()?;
        Some(Timestamp {
            base: low,
            extra: epoch & 3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_table() {
        let cases = [
            ("i_block", 0x28),
            ("i_generation", 0x64),
            ("l_i_uid_high", 0x78),
            ("l_i_checksum_lo", 0x7C),
            ("i_extra_isize", 0x80),
            ("i_crtime", 0x90),
            ("i_projid", 0x9C),
        ];
        for (f, off) in cases {
            assert_eq!(Inode::offset_of(f), Some(off), "{f}");
        }
        assert_eq!(IN_INODE_XATTR_OFFSET, 0xA0);
    }

    #[test]
    fn timestamp_table() {
        let cases: [(i64, Option<(u32, u32)>); 7] = [
            (0, Some((0, 0))),
            (1_700_000_000, Some((1_700_000_000, 0))),
            (-1, Some((0xFFFF_FFFF, 0))),
            (i64::from(i32::MIN), Some((0x8000_0000, 0))),
            (1 << 31, Some((0x8000_0000, 1))),
            (TIME_MAX, Some((0x7FFF_FFFF, 3))),
            (TIME_MAX + 1, None),
        ];
        for (secs, want) in cases {
            assert_eq!(
                Timestamp::encode(secs).map(|t| (t.base, t.extra)),
                want,
                "{secs}"
            );
        }
        assert_eq!(Timestamp::encode(TIME_MIN - 1), None);
    }
}
