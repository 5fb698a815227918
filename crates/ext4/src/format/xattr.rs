//! Extended attribute structures (`struct ext2_ext_attr_header`,
//! `struct ext2_ext_attr_entry`) and their hashes.

use crate::le::le_struct;

/// `EXT2_EXT_ATTR_MAGIC`, both for blocks and the in-inode area.
pub const EXT2_EXT_ATTR_MAGIC: u32 = 0xEA02_0000;
/// Size of the block header.
pub const HEADER_SIZE: usize = 32;
/// Fixed part of an entry before its name.
pub const ENTRY_FIXED: usize = 16;
/// Offset of `h_checksum` in the block header.
pub const H_CHECKSUM_OFFSET: usize = 0x10;

le_struct! {
    pub struct XattrHeader [HEADER_SIZE] {
        h_magic: u32 = 0x00,
        h_refcount: u32 = 0x04,
        h_blocks: u32 = 0x08,
        h_hash: u32 = 0x0C,
        h_checksum: u32 = H_CHECKSUM_OFFSET,
    }
}

le_struct! {
    pub struct XattrEntry [ENTRY_FIXED] {
        e_name_len: u8 = 0,
        e_name_index: u8 = 1,
        e_value_offs: u16 = 2,
        e_value_inum: u32 = 4,
        e_value_size: u32 = 8,
        e_hash: u32 = 12,
    }
}

/// Attribute name prefixes and their `e_name_index` (ext4 `xattr.h`).
/// The two ACL names are complete names with an empty suffix.
pub const NAME_INDEX_USER: u8 = 1;
pub const NAME_INDEX_POSIX_ACL_ACCESS: u8 = 2;
pub const NAME_INDEX_POSIX_ACL_DEFAULT: u8 = 3;
pub const NAME_INDEX_TRUSTED: u8 = 4;
pub const NAME_INDEX_SECURITY: u8 = 6;

/// Round up to the 4-byte xattr alignment (`EXT2_EXT_ATTR_PAD`).
pub const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Bytes an entry with a name of `name_len` takes in the entry table.
pub const fn entry_size(name_len: usize) -> usize {
    pad4(ENTRY_FIXED + name_len)
}

const NAME_HASH_SHIFT: u32 = 5;
const VALUE_HASH_SHIFT: u32 = 16;
const BLOCK_HASH_SHIFT: u32 = 16;

/// `e_hash` of an entry: the name bytes, then the value as little-endian
/// 32-bit words (zero padded).
pub fn entry_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut hash: u32 = 0;
    for &c in name {
        hash = (hash << NAME_HASH_SHIFT) ^ (hash >> (32 - NAME_HASH_SHIFT)) ^ u32::from(c);
    }
    for chunk in value.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        hash =
            (hash << VALUE_HASH_SHIFT) ^ (hash >> (32 - VALUE_HASH_SHIFT)) ^ u32::from_le_bytes(w);
    }
    hash
}

/// `h_hash` of a block from its entries' hashes (0 if any entry hash is 0).
pub fn block_hash(entry_hashes: &[u32]) -> u32 {
    let mut hash: u32 = 0;
    for &h in entry_hashes {
        if h == 0 {
            return 0;
        }
        hash = (hash << BLOCK_HASH_SHIFT) ^ (hash >> (32 - BLOCK_HASH_SHIFT)) ^ h;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_table() {
        // Worked by hand from the definition.
        let a = u32::from(b'a');
        let ab = (a << 5) ^ u32::from(b'b');
        let cases: [(&[u8], &[u8], u32); 4] = [
            (b"", b"", 0),
            (b"a", b"", a),
            (b"ab", b"", ab),
            (b"a", b"\x01", (a << 16) ^ 1),
        ];
        for (n, v, want) in cases {
            assert_eq!(entry_hash(n, v), want, "{n:?} {v:?}");
        }
        assert_eq!(block_hash(&[1, 2]), (1 << 16) ^ 2);
        assert_eq!(block_hash(&[1, 0, 2]), 0);
    }

    #[test]
    fn layout_table() {
        assert_eq!(XattrEntry::offset_of("e_hash"), Some(12));
        assert_eq!(XattrHeader::offset_of("h_checksum"), Some(16));
        assert_eq!(entry_size(1), 20);
        assert_eq!(entry_size(4), 20);
        assert_eq!(entry_size(5), 24);
    }
}
