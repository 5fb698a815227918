//! Extent tree nodes (`struct ext3_extent_header`, `ext3_extent`,
//! `ext3_extent_idx`, `ext4_extent_tail`).

use crate::le::le_struct;

/// `EXT3_EXT_MAGIC`.
pub const EXT3_EXT_MAGIC: u16 = 0xF30A;
/// Size of a header and of each entry.
pub const ENTRY_SIZE: usize = 12;
/// Entries that fit in `i_block` after the header.
pub const ROOT_MAX_ENTRIES: u16 = 4;
/// Entries that fit in a 4 KiB tree block before the 4-byte tail.
pub const BLOCK_MAX_ENTRIES: u16 = 340;
/// Offset of the tail (`et_checksum`) in a tree block: right after
/// `eh_max` entries.
pub const TAIL_OFFSET: usize = ENTRY_SIZE * (1 + BLOCK_MAX_ENTRIES as usize);
/// Longest initialized extent (`EXT_INIT_MAX_LEN`).
pub const EXT_INIT_MAX_LEN: u32 = 1 << 15;

const _: () = assert!(TAIL_OFFSET + 4 <= 4096);

le_struct! {
    pub struct ExtentHeader [ENTRY_SIZE] {
        eh_magic: u16 = 0,
        eh_entries: u16 = 2,
        eh_max: u16 = 4,
        eh_depth: u16 = 6,
        eh_generation: u32 = 8,
    }
}

le_struct! {
    /// A leaf entry: `ee_len` blocks of the file from `ee_block` on, at
    /// physical block `ee_start_hi:ee_start_lo`.
    pub struct Extent [ENTRY_SIZE] {
        ee_block: u32 = 0,
        ee_len: u16 = 4,
        ee_start_hi: u16 = 6,
        ee_start_lo: u32 = 8,
    }
}

le_struct! {
    /// An index entry: the subtree covering file blocks from `ei_block` on
    /// lives in block `ei_leaf_hi:ei_leaf_lo`.
    pub struct ExtentIdx [ENTRY_SIZE] {
        ei_block: u32 = 0,
        ei_leaf_lo: u32 = 4,
        ei_leaf_hi: u16 = 8,
        ei_unused: u16 = 10,
    }
}

/// Split a 48-bit block number into (hi16, lo32).
pub fn split48(block: u64) -> (u16, u32) {
    let lo = u32::try_from(block & 0xFFFF_FFFF).unwrap_or(0);
    let hi = u16::try_from((block >> 32) & 0xFFFF).unwrap_or(0);
    (hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_table() {
        let h = ExtentHeader {
            eh_magic: EXT3_EXT_MAGIC,
            eh_entries: 1,
            eh_max: 4,
            eh_depth: 0,
            eh_generation: 0,
        };
        assert_eq!(h.to_bytes(), vec![0x0A, 0xF3, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        let (hi, lo) = split48(0x0001_0000_0002);
        assert_eq!((hi, lo), (1, 2));
        let e = Extent {
            ee_block: 7,
            ee_len: 3,
            ee_start_hi: hi,
            ee_start_lo: lo,
        };
        assert_eq!(e.to_bytes(), vec![7, 0, 0, 0, 3, 0, 1, 0, 2, 0, 0, 0]);
        let i = ExtentIdx {
            ei_block: 9,
            ei_leaf_lo: 0x100,
            ei_leaf_hi: 0,
            ei_unused: 0,
        };
        assert_eq!(i.to_bytes(), vec![9, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(TAIL_OFFSET, 4092);
    }
}
