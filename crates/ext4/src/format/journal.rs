//! The jbd2 journal superblock (`journal_superblock_t`, big-endian), as in
//! e2fsprogs' `lib/ext2fs/kernel-jbd.h`.

/// `JBD2_MAGIC_NUMBER`.
pub const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;
/// `JBD2_SUPERBLOCK_V2`.
pub const JBD2_SUPERBLOCK_V2: u32 = 4;
/// `JBD2_FEATURE_INCOMPAT_64BIT`.
pub const JBD2_FEATURE_INCOMPAT_64BIT: u32 = 0x2;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V3`.
pub const JBD2_FEATURE_INCOMPAT_CSUM_V3: u32 = 0x10;
/// `JBD2_CRC32C_CHKSUM`.
pub const JBD2_CRC32C_CHKSUM: u8 = 4;
/// Size of the on-disk journal superblock (the checksum covers all of it).
pub const JSB_SIZE: usize = 1024;

/// Field offsets.
pub const H_MAGIC: usize = 0x00;
pub const H_BLOCKTYPE: usize = 0x04;
pub const H_SEQUENCE: usize = 0x08;
pub const S_BLOCKSIZE: usize = 0x0C;
pub const S_MAXLEN: usize = 0x10;
pub const S_FIRST: usize = 0x14;
pub const S_SEQUENCE: usize = 0x18;
pub const S_START: usize = 0x1C;
pub const S_FEATURE_INCOMPAT: usize = 0x28;
pub const S_UUID: usize = 0x30;
pub const S_NR_USERS: usize = 0x40;
pub const S_CHECKSUM_TYPE: usize = 0x50;
pub const S_CHECKSUM: usize = 0xFC;
pub const S_USERS: usize = 0x100;

const _: () = assert!(
    S_UUID + 16 == S_NR_USERS && S_CHECKSUM + 4 == S_USERS && S_USERS + 16 * 48 == JSB_SIZE
);

/// The values of an empty (clean) journal superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSuperblock {
    pub blocksize: u32,
    pub maxlen: u32,
    pub incompat: u32,
    pub uuid: [u8; 16],
}

impl JournalSuperblock {
    /// Encode with `s_checksum` = `csum(bytes with the field zeroed)` when
    /// CSUM_V3 is set.
    pub fn encode(&self, csum: impl Fn(&[u8]) -> u32) -> [u8; JSB_SIZE] {
        let mut b = [0u8; JSB_SIZE];
        let mut put = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_be_bytes());
        put(H_MAGIC, JBD2_MAGIC_NUMBER);
        put(H_BLOCKTYPE, JBD2_SUPERBLOCK_V2);
        put(H_SEQUENCE, 0);
        put(S_BLOCKSIZE, self.blocksize);
        put(S_MAXLEN, self.maxlen);
        put(S_FIRST, 1);
        put(S_SEQUENCE, 1);
        put(S_START, 0);
        put(S_FEATURE_INCOMPAT, self.incompat);
        put(S_NR_USERS, 1);
        b[S_UUID..S_UUID + 16].copy_from_slice(&self.uuid);
        if self.incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0 {
            b[S_CHECKSUM_TYPE] = JBD2_CRC32C_CHKSUM;
            let c = csum(&b);
            b[S_CHECKSUM..S_CHECKSUM + 4].copy_from_slice(&c.to_be_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_table() {
        let j = JournalSuperblock {
            blocksize: 4096,
            maxlen: 8192,
            incompat: 0,
            uuid: [7; 16],
        };
        let b = j.encode(|_| 0xFFFF_FFFF);
        let cases: [(usize, [u8; 4]); 6] = [
            (H_MAGIC, [0xC0, 0x3B, 0x39, 0x98]),
            (H_BLOCKTYPE, [0, 0, 0, 4]),
            (S_BLOCKSIZE, [0, 0, 0x10, 0]),
            (S_MAXLEN, [0, 0, 0x20, 0]),
            (S_NR_USERS, [0, 0, 0, 1]),
            (S_CHECKSUM, [0, 0, 0, 0]),
        ];
        for (off, want) in cases {
            assert_eq!(b[off..off + 4], want, "offset {off:#x}");
        }
        let j = JournalSuperblock {
            incompat: JBD2_FEATURE_INCOMPAT_CSUM_V3,
            ..j
        };
        let b = j.encode(|_| 0x0102_0304);
        assert_eq!(b[S_CHECKSUM..S_CHECKSUM + 4], [1, 2, 3, 4]);
        assert_eq!(b[S_CHECKSUM_TYPE], JBD2_CRC32C_CHKSUM);
    }
}
