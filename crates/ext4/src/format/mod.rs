//! ext4 on-disk format definitions, kept apart from the writer.
//!
//! Field names follow e2fsprogs' `lib/ext2fs/ext2_fs.h`; offsets and
//! semantics follow the kernel's `Documentation/filesystems/ext4/`.

pub mod dirent;
pub mod extent;
pub mod features;
pub mod group_desc;
pub mod htree;
pub mod inode;
pub mod journal;
pub mod superblock;
pub mod xattr;

/// The only block size this writer supports (bytes).
pub const BLOCK_SIZE: u64 = 4096;
/// log2(BLOCK_SIZE) - 10, the value of `s_log_block_size`.
pub const LOG_BLOCK_SIZE: u32 = 2;
/// Blocks per group: one bitmap block covers 8 * BLOCK_SIZE blocks.
pub const BLOCKS_PER_GROUP: u64 = 8 * BLOCK_SIZE;
/// Maximum inodes per group: one inode bitmap block.
pub const MAX_INODES_PER_GROUP: u32 = 8 * BLOCK_SIZE as u32;
/// On-disk inode size (`s_inode_size`).
pub const INODE_SIZE: u64 = 256;
/// Size of the 64-bit group descriptor (`s_desc_size`).
pub const DESC_SIZE: u64 = 64;
/// Byte offset of the primary superblock.
pub const SUPERBLOCK_OFFSET: u64 = 1024;

/// Reserved inode numbers (ext2_fs.h `EXT2_*_INO`).
pub const BAD_INO: u32 = 1;
pub const ROOT_INO: u32 = 2;
pub const JOURNAL_INO: u32 = 8;
/// First non-reserved inode (`s_first_ino`), used for lost+found like mke2fs.
pub const FIRST_INO: u32 = 11;

/// `EXT4_LINK_MAX`: beyond this a directory's link count becomes 1
/// (dir_nlink) and a file cannot have more links.
pub const LINK_MAX: u32 = 65000;

/// Maximum length of a file name in a directory entry.
pub const NAME_LEN_MAX: usize = 255;
