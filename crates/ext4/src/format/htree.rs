//! Hash-tree directory index (`struct ext2_dx_root_info`,
//! `ext2_dx_countlimit`, `ext2_dx_entry`, `ext2_dx_tail`). Block 0 of an
//! indexed directory holds fake "." and ".." entries, the root info and the
//! index entries; the leaves are ordinary directory blocks.

use crate::le::le_struct;

/// `EXT2_INDEX_FL` in `i_flags`.
pub const EXT2_INDEX_FL: u32 = 0x0000_1000;
/// Where the root info starts (after the 12-byte "." and "..").
pub const DX_ROOT_INFO_OFFSET: usize = 24;
/// Where the count/limit header and the entries start in the root.
pub const DX_ROOT_ENTRIES_OFFSET: usize = 32;
/// Size of an index entry and of the tail.
pub const DX_ENTRY_SIZE: usize = 8;
pub const DX_TAIL_SIZE: usize = 8;
/// Entries that fit in the root of a 4 KiB block with the checksum tail:
/// (4096 - 32 - 8) / 8.
pub const DX_ROOT_LIMIT: u16 = 507;

const _: () =
    assert!(DX_ROOT_ENTRIES_OFFSET + DX_ROOT_LIMIT as usize * DX_ENTRY_SIZE + DX_TAIL_SIZE == 4096);

le_struct! {
    pub struct DxRootInfo [8] {
        reserved_zero: u32 = 0,
        hash_version: u8 = 4,
        info_length: u8 = 5,
        indirect_levels: u8 = 6,
        unused_flags: u8 = 7,
    }
}

le_struct! {
    /// Overlays the first entry: its `block` is the leaf for hashes below
    /// the second entry's hash.
    pub struct DxCountLimit [8] {
        limit: u16 = 0,
        count: u16 = 2,
        block: u32 = 4,
    }
}

le_struct! {
    pub struct DxEntry [8] {
        hash: u32 = 0,
        block: u32 = 4,
    }
}

le_struct! {
    pub struct DxTail [8] {
        dt_reserved: u32 = 0,
        dt_checksum: u32 = 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_table() {
        let i = DxRootInfo {
            reserved_zero: 0,
            hash_version: 1,
            info_length: 8,
            indirect_levels: 0,
            unused_flags: 0,
        };
        assert_eq!(i.to_bytes(), vec![0, 0, 0, 0, 1, 8, 0, 0]);
        let c = DxCountLimit {
            limit: 507,
            count: 3,
            block: 1,
        };
        assert_eq!(c.to_bytes(), vec![0xFB, 1, 3, 0, 1, 0, 0, 0]);
        let e = DxEntry {
            hash: 0x1234_5678,
            block: 2,
        };
        assert_eq!(e.to_bytes(), vec![0x78, 0x56, 0x34, 0x12, 2, 0, 0, 0]);
    }
}
