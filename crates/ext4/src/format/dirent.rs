//! Directory entries (`struct ext2_dir_entry_2`) and the metadata_csum
//! tail (`struct ext2_dir_entry_tail`).

use crate::le::le_struct;

/// Header bytes before the name.
pub const DIRENT_HEADER: usize = 8;
/// Size of the checksum tail at the end of every directory block.
pub const TAIL_SIZE: usize = 12;
/// `EXT2_DIR_NAME_LEN_CSUM`: the fake name_len/file_type of the tail.
pub const TAIL_FT: u8 = 0xDE;

/// `EXT2_FT_*` file types in `file_type`.
pub const FT_REG_FILE: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_CHRDEV: u8 = 3;
pub const FT_BLKDEV: u8 = 4;
pub const FT_FIFO: u8 = 5;
pub const FT_SYMLINK: u8 = 7;

le_struct! {
    pub struct DirEntryHeader [DIRENT_HEADER] {
        inode: u32 = 0,
        rec_len: u16 = 4,
        name_len: u8 = 6,
        file_type: u8 = 7,
    }
}

le_struct! {
    pub struct DirEntryTail [TAIL_SIZE] {
        det_reserved_zero1: u32 = 0,
        det_rec_len: u16 = 4,
        det_reserved_zero2: u8 = 6,
        det_reserved_ft: u8 = 7,
        det_checksum: u32 = 8,
    }
}

/// Bytes an entry with a name of `name_len` needs (rounded up to 4).
pub const fn rec_len_for(name_len: usize) -> usize {
    (DIRENT_HEADER + name_len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rec_len_table() {
        for (n, want) in [(1, 12), (2, 12), (4, 12), (5, 16), (255, 264)] {
            assert_eq!(rec_len_for(n), want, "{n}");
        }
    }

    #[test]
    fn encodings_table() {
        let d = DirEntryHeader {
            inode: 2,
            rec_len: 12,
            name_len: 1,
            file_type: FT_DIR,
        };
        assert_eq!(d.to_bytes(), vec![2, 0, 0, 0, 12, 0, 1, 2]);
        let t = DirEntryTail {
            det_rec_len: 12,
            det_reserved_ft: TAIL_FT,
            det_checksum: 0x01020304,
            ..Default::default()
        };
        assert_eq!(t.to_bytes(), vec![0, 0, 0, 0, 12, 0, 0, 0xDE, 4, 3, 2, 1]);
    }
}
