//! The qcow2 version 3 header (QEMU's docs/interop/qcow2.txt). All fields
//! are big-endian: 0 magic "QFI\xfb", 4 version, 8 backing file offset,
//! 16 backing file size, 20 cluster bits, 24 virtual size, 32 encryption
//! method, 36 L1 size (entries), 40 L1 table offset, 48 refcount table
//! offset, 56 refcount table clusters, 60 snapshot count, 64 snapshots
//! offset, 72 incompatible features, 80 compatible features, 88 autoclear
//! features, 96 refcount order, 100 header length. An all-zero header
//! extension (end marker) follows at 104.

pub const MAGIC: [u8; 4] = *b"QFI\xfb";
pub const VERSION: u32 = 3;
/// 64 KiB clusters, QEMU's default.
pub const CLUSTER_BITS: u32 = 16;
pub const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;
/// Refcount width is 2^4 = 16 bits.
pub const REFCOUNT_ORDER: u32 = 4;
pub const HEADER_LENGTH: u32 = 104;
/// Set in L1 and L2 entries whose cluster has refcount exactly 1.
pub const OFLAG_COPIED: u64 = 1 << 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
}

impl Header {
    /// The header bytes followed by the end-of-extensions marker.
    pub fn encode(&self) -> [u8; HEADER_LENGTH as usize + 8] {
        let mut b = [0u8; HEADER_LENGTH as usize + 8];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&VERSION.to_be_bytes());
        b[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
        b[24..32].copy_from_slice(&self.size.to_be_bytes());
        b[36..40].copy_from_slice(&self.l1_size.to_be_bytes());
        b[40..48].copy_from_slice(&self.l1_table_offset.to_be_bytes());
        b[48..56].copy_from_slice(&self.refcount_table_offset.to_be_bytes());
        b[56..60].copy_from_slice(&self.refcount_table_clusters.to_be_bytes());
        b[96..100].copy_from_slice(&REFCOUNT_ORDER.to_be_bytes());
        b[100..104].copy_from_slice(&HEADER_LENGTH.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_table() {
        let h = Header {
            size: 0x0000_0002_8000_0000,
            l1_size: 20,
            l1_table_offset: 0x3_0000,
            refcount_table_offset: 0x4_0000,
            refcount_table_clusters: 1,
        };
        let b = h.encode();
        let cases: &[(usize, &[u8])] = &[
            (0, b"QFI\xfb"),
            (4, &[0, 0, 0, 3]),
            (8, &[0; 12]),
            (20, &[0, 0, 0, 16]),
            (24, &[0, 0, 0, 2, 0x80, 0, 0, 0]),
            (32, &[0, 0, 0, 0, 0, 0, 0, 20]),
            (40, &[0, 0, 0, 0, 0, 3, 0, 0]),
            (48, &[0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 1]),
            (60, &[0; 36]),
            (96, &[0, 0, 0, 4, 0, 0, 0, 104]),
            (104, &[0; 8]),
        ];
        for (off, want) in cases {
            assert_eq!(&b[*off..*off + want.len()], *want, "offset {off}");
        }
    }
}
