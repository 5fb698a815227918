//! The newc (SVR4, no CRC) header: the magic `070701` followed by thirteen
//! 8-digit hexadecimal fields, 110 bytes in all, then the NUL-terminated name
//! padded to a multiple of four, then the data padded to a multiple of four.
//! Layout as documented by cpio(5) and the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst.

/// The magic of a newc header without checksums.
pub const MAGIC_NEWC: &[u8; 6] = b"070701";
/// Bytes in a newc header (6 magic + 13 fields of 8 hex digits).
pub const HEADER_LEN: usize = 110;
/// Name of the member that ends every archive.
pub const TRAILER_NAME: &str = "TRAILER!!!";
/// Header, name and data are each aligned to this many bytes.
pub const ALIGN: usize = 4;

const _: () = assert!(MAGIC_NEWC.len() + 13 * 8 == HEADER_LEN);

/// One header, field for field (all 32-bit, written as 8 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewcHeader {
    pub ino: u32,
    /// `st_mode`: file type bits and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    /// Device holding the file (always 0 here).
    pub devmajor: u32,
    pub devminor: u32,
    /// For character and block devices, the device they name.
    pub rdevmajor: u32,
    pub rdevminor: u32,
    /// Length of the name including its terminating NUL.
    pub namesize: u32,
    /// Always 0 for `070701`.
    pub check: u32,
}

impl NewcHeader {
    /// The 110 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..6].copy_from_slice(MAGIC_NEWC);
        let fields = [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            self.rdevmajor,
            self.rdevminor,
            self.namesize,
            self.check,
        ];
        for (i, v) in fields.iter().enumerate() {
            let hex = format!("{v:08X}");
            let at = 6 + i * 8;
            out[at..at + 8].copy_from_slice(hex.as_bytes());
        }
        out
    }
}

/// Bytes of padding after `len` bytes to reach the next multiple of [`ALIGN`].
pub fn pad_len(len: u64) -> usize {
    // The remainder is below ALIGN (4), so the narrowing cannot lose bits.
    let rem = (len % ALIGN as u64) as usize;
    (ALIGN - rem) % ALIGN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_layout() {
        let h = NewcHeader {
            ino: 1,
            mode: 0o100644,
            uid: 0x10,
            gid: 0xABCDEF01,
            nlink: 1,
            mtime: 0x5F5E1000,
            filesize: 5,
            namesize: 6,
            ..Default::default()
        };
        let b = h.encode();
        let s = std::str::from_utf8(&b).expect("ascii");
        assert_eq!(
            s,
            "070701\
             00000001\
             000081A4\
             00000010\
             ABCDEF01\
             00000001\
             5F5E1000\
             00000005\
             00000000\
             00000000\
             00000000\
             00000000\
             00000006\
             00000000"
        );
    }

    #[test]
    fn pad_table() {
        let cases = [
            (0u64, 0usize),
            (1, 3),
            (2, 2),
            (3, 1),
            (4, 0),
            (110 + 6, 0),
            (110 + 11, 3),
        ];
        for (len, want) in cases {
            assert_eq!(pad_len(len), want, "{len}");
        }
    }
}
