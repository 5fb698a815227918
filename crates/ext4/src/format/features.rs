//! Feature flags (ext2_fs.h `EXT2_FEATURE_*` / `EXT4_FEATURE_*`), as
//! newtypes so the three sets cannot be mixed up.

macro_rules! flags {
    ($name:ident { $($flag:ident = $v:expr),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name(pub u32);
        impl $name {
            $(pub const $flag: $name = $name($v);)*
            pub const fn union(self, o: $name) -> $name { $name(self.0 | o.0) }
            pub const fn contains(self, o: $name) -> bool { self.0 & o.0 == o.0 }
        }
    };
}

flags!(CompatFeatures {
    HAS_JOURNAL = 0x0004,
    EXT_ATTR = 0x0008,
    RESIZE_INODE = 0x0010,
    DIR_INDEX = 0x0020,
});

flags!(IncompatFeatures {
    FILETYPE = 0x0002,
    RECOVER = 0x0004,
    EXTENTS = 0x0040,
    BIT64 = 0x0080,
    FLEX_BG = 0x0200,
});

flags!(RoCompatFeatures {
    SPARSE_SUPER = 0x0001,
    LARGE_FILE = 0x0002,
    HUGE_FILE = 0x0008,
    GDT_CSUM = 0x0010,
    DIR_NLINK = 0x0020,
    EXTRA_ISIZE = 0x0040,
    METADATA_CSUM = 0x0400,
});

/// Inode flags (`i_flags`, `EXT4_*_FL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InodeFlags(pub u32);
impl InodeFlags {
    pub const EXTENTS: InodeFlags = InodeFlags(0x0008_0000);
}

/// Block group flags (`bg_flags`, `EXT4_BG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupFlags(pub u16);
impl GroupFlags {
    pub const INODE_UNINIT: GroupFlags = GroupFlags(0x0001);
    pub const BLOCK_UNINIT: GroupFlags = GroupFlags(0x0002);
    pub const INODE_ZEROED: GroupFlags = GroupFlags(0x0004);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_and_contains() {
        let f = IncompatFeatures::FILETYPE.union(IncompatFeatures::EXTENTS);
        assert_eq!(f.0, 0x42);
        assert!(f.contains(IncompatFeatures::EXTENTS));
        assert!(!f.contains(IncompatFeatures::BIT64));
    }
}
