//! The on-disk layout of ld.so.cache, "new" format version 1.1, as defined
//! in glibc's `sysdeps/generic/dl-cache.h` (all fields little-endian on
//! x86-64; the header records that in its flags).
//!
//! ```text
//! 0    struct cache_file_new      48 bytes
//! 48   struct file_entry_new[n]   24 bytes each
//! ..   string table               len_strings bytes (NUL-terminated strings)
//! ..   zero padding to a multiple of 4
//! ext  struct cache_extension     magic, count, then count sections
//! ..   section data               (the generator string, no NUL)
//! ```
//!
//! String table indices in the entries and extension are offsets from the
//! start of the file.

/// `CACHEMAGIC_NEW`.
pub const MAGIC: &[u8; 17] = b"glibc-ld.so.cache";
/// `CACHE_VERSION`.
pub const VERSION: &[u8; 3] = b"1.1";
/// `sizeof (struct cache_file_new)` (asserted by glibc).
pub const HEADER_SIZE: usize = 48;
/// `sizeof (struct file_entry_new)`.
pub const ENTRY_SIZE: usize = 24;

/// Header field offsets in `struct cache_file_new`.
pub const OFF_NLIBS: usize = 20;
pub const OFF_LEN_STRINGS: usize = 24;
pub const OFF_FLAGS: usize = 28;
pub const OFF_EXTENSION_OFFSET: usize = 32;

/// `cache_file_new_flags_endian_little`: the value of the header's flags
/// byte ldconfig writes on a little-endian machine.
pub const HEADER_FLAGS_ENDIAN_LITTLE: u8 = 2;

/// `FLAG_ELF_LIBC6` (sysdeps/generic/ldconfig.h): an ELF library for glibc.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `FLAG_X8664_LIB64`: an x86-64 64-bit library.
pub const FLAG_X8664_LIB64: i32 = 0x0300;
/// `FLAG_X8664_LIBX32`: an x32 library.
pub const FLAG_X8664_LIBX32: i32 = 0x0800;

/// `cache_extension_magic`, `(uint32_t) -358342284`.
pub const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
/// `cache_extension_tag_generator`: the text naming the writing ldconfig.
pub const EXTENSION_TAG_GENERATOR: u32 = 0;
/// `sizeof (struct cache_extension)` without its sections: magic, count.
pub const EXTENSION_HEADER_SIZE: usize = 8;
/// `sizeof (struct cache_extension_section)`: tag, flags, offset, size.
pub const EXTENSION_SECTION_SIZE: usize = 16;
/// The extension directory is 4-byte aligned.
pub const EXTENSION_ALIGN: usize = 4;

/// `struct cache_file_new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub nlibs: u32,
    pub len_strings: u32,
    pub flags: u8,
    pub extension_offset: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..MAGIC.len()].copy_from_slice(MAGIC);
        b[MAGIC.len()..OFF_NLIBS].copy_from_slice(VERSION);
        b[OFF_NLIBS..OFF_NLIBS + 4].copy_from_slice(&self.nlibs.to_le_bytes());
        b[OFF_LEN_STRINGS..OFF_LEN_STRINGS + 4].copy_from_slice(&self.len_strings.to_le_bytes());
        b[OFF_FLAGS] = self.flags;
        // padding_unsed[3] stays zero.
        b[OFF_EXTENSION_OFFSET..OFF_EXTENSION_OFFSET + 4]
            .copy_from_slice(&self.extension_offset.to_le_bytes());
        // unused[3] stays zero.
        b
    }
}

/// `struct file_entry_new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    pub flags: i32,
    /// File offset of the library name (the soname).
    pub key: u32,
    /// File offset of the path.
    pub value: u32,
    /// `osversion_unused`: always written as 0.
    pub osversion: u32,
    /// 0 outside glibc-hwcaps subdirectories.
    pub hwcap: u64,
}

impl FileEntry {
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.key.to_le_bytes());
        b[8..12].copy_from_slice(&self.value.to_le_bytes());
        b[12..16].copy_from_slice(&self.osversion.to_le_bytes());
        b[16..24].copy_from_slice(&self.hwcap.to_le_bytes());
        b
    }
}

/// One `struct cache_extension_section`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionSection {
    pub tag: u32,
    pub flags: u32,
    pub offset: u32,
    pub size: u32,
}

impl ExtensionSection {
    pub fn encode(&self) -> [u8; EXTENSION_SECTION_SIZE] {
        let mut b = [0u8; EXTENSION_SECTION_SIZE];
        for (i, v) in [self.tag, self.flags, self.offset, self.size]
            .into_iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

const _: () = assert!(MAGIC.len() + VERSION.len() == OFF_NLIBS);
const _: () = assert!(OFF_EXTENSION_OFFSET + 4 + 12 == HEADER_SIZE);
const _: () = assert!(ENTRY_SIZE == 4 + 4 + 4 + 4 + 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = Header {
            nlibs: 0x0102_0304,
            len_strings: 0x0a0b_0c0d,
            flags: HEADER_FLAGS_ENDIAN_LITTLE,
            extension_offset: 0x1122_3344,
        };
        let b = h.encode();
        let cases: &[(usize, &[u8])] = &[
            (0, b"glibc-ld.so.cache1.1"),
            (20, &[4, 3, 2, 1]),
            (24, &[0x0d, 0x0c, 0x0b, 0x0a]),
            (28, &[2, 0, 0, 0]),
            (32, &[0x44, 0x33, 0x22, 0x11]),
            (36, &[0; 12]),
        ];
        for (off, want) in cases {
            assert_eq!(&b[*off..*off + want.len()], *want, "offset {off}");
        }
    }

    #[test]
    fn entry_and_section_layout() {
        let e = FileEntry {
            flags: FLAG_ELF_LIBC6 | FLAG_X8664_LIB64,
            key: 0x100,
            value: 0x200,
            osversion: 0,
            hwcap: 1 << 62,
        };
        assert_eq!(
            e.encode(),
            [
                3, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40
            ]
        );
        let s = ExtensionSection {
            tag: EXTENSION_TAG_GENERATOR,
            flags: 0,
            offset: 0xb3b0,
            size: 0x43,
        };
        assert_eq!(
            s.encode(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0xb0, 0xb3, 0, 0, 0x43, 0, 0, 0]
        );
        assert_eq!(EXTENSION_MAGIC, (-358_342_284i32) as u32);
    }
}
