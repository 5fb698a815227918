//! What the caller chooses: mode, identity and sizing.

/// The two kinds of filesystem this writer makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No journal; sized to the content plus `slack_percent` (of blocks
    /// and inodes). The resulting size is [`crate::Plan::size_bytes`].
    ReadOnly { slack_percent: u32 },
    /// An empty jbd2 journal; exactly `size_bytes` (a multiple of 4096).
    Writable { size_bytes: u64 },
}

/// Options of [`crate::plan`]. Everything "random" in ext4 (uuid, hash
/// seed, times) comes from here so output is reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// Must be 4096.
    pub block_size: u32,
    /// Volume label, at most 16 bytes.
    pub label: String,
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
    /// Creation/write time of the filesystem (SOURCE_DATE_EPOCH); also the
    /// times of lost+found when the tree has none. Must be >= 0.
    pub timestamp: i64,
    /// Writable mode: one inode per this many bytes (mke2fs' ext4 default
    /// is 16384); never fewer inodes than the tree needs. ReadOnly mode
    /// ignores it unless set, then it is a lower bound as well.
    pub inode_ratio: Option<u64>,
    /// Percentage of blocks reserved for root (mke2fs `-m`); 0..=50.
    pub reserved_percent: u32,
    /// Index directories of more than one block with a hash tree
    /// (`dir_index`, one level: up to 507 leaf blocks; bigger ones stay
    /// linear). Default true, like mke2fs.
    pub dir_index: bool,
}

impl Options {
    /// Defaults: 4096-byte blocks, empty label, zero uuid/seed/time.
    pub fn new(mode: Mode) -> Options {
        Options {
            mode,
            block_size: 4096,
            label: String::new(),
            uuid: [0; 16],
            hash_seed: [0; 16],
            timestamp: 0,
            inode_ratio: None,
            reserved_percent: 0,
            dir_index: true,
        }
    }
}
