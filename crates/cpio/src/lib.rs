//! basalt-cpio: a deterministic writer for the SVR4 "newc" cpio format
//! (magic `070701`), the format the Linux kernel unpacks as an initramfs,
//! plus the xz (CRC32 check) and zstd compressors the kernel can decode.
//!
//! Plan first, then write: an [`Archive`] is a list of [`Member`]s; inode
//! numbers and link counts are assigned when the archive is written, so the
//! same members always give the same bytes.
//!
//! ```text
//! let archive = Archive::from_tree(&tree)?;
//! let mut out = Compressor::new(file, Compression::xz())?;
//! archive.write_to(&mut out)?;
//! out.finish()?;
//! ```

mod archive;
mod compress;
mod error;
mod header;

pub use archive::{Archive, Member, MemberKind};
pub use compress::{Compression, Compressor, compress_bytes};
pub use error::CpioError;
pub use header::{HEADER_LEN, MAGIC_NEWC, NewcHeader, TRAILER_NAME};
