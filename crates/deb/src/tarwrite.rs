//! A deterministic POSIX (pax) tar writer for a [`Tree`].
//!
//! Conventions (documented for users of the output):
//! - entries in tree order (path bytes, parents first), starting with the
//!   root as `./`; member names are `./`-relative (`./usr/bin/ls`, the form
//!   Debian's data.tar uses), directories end with `/`;
//! - owners are numeric only (uname/gname empty), mode is the entry's
//!   permission bits, mtime its mtime, devices carry major/minor;
//! - hard links name their target as `./<key>`;
//! - a pax extended header (`x`) precedes an entry when its name or link
//!   target does not fit the 100-byte ustar fields, when a number does not fit
//!   its octal field (size, uid, gid, negative or huge mtime), and for every
//!   xattr (`SCHILY.xattr.<name>`); its own name is `./PaxHeaders/<name>`;
//! - no host-dependent field (no pid, no atime/ctime, no user names); the
//!   archive ends with two zero blocks, padded to a 10240-byte record.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use basalt_tree::{Entry, Kind, Tree, file_name};

use crate::error::{DebError, Result};
use crate::pax::{self, XATTR_PREFIX};

/// Tar block size.
pub const BLOCK: usize = 512;
/// Output is padded to a multiple of this (GNU tar's default blocking factor 20).
pub const RECORD: u64 = 20 * BLOCK as u64;

// ustar header field offsets (POSIX.1-1988 ustar / pax "ustar Interchange Format").
mod field {
    use std::ops::Range;
    pub const NAME: Range<usize> = 0..100;
    pub const MODE: Range<usize> = 100..108;
    pub const UID: Range<usize> = 108..116;
    pub const GID: Range<usize> = 116..124;
    pub const SIZE: Range<usize> = 124..136;
    pub const MTIME: Range<usize> = 136..148;
    pub const CHKSUM: Range<usize> = 148..156;
    pub const TYPEFLAG: usize = 156;
    pub const LINKNAME: Range<usize> = 157..257;
    pub const MAGIC: Range<usize> = 257..263;
    pub const VERSION: Range<usize> = 263..265;
    pub const DEVMAJOR: Range<usize> = 329..337;
    pub const DEVMINOR: Range<usize> = 337..345;
    const _: () = assert!(DEVMINOR.end + 155 + 12 == super::BLOCK);
}

/// ustar type flags.
mod typeflag {
    pub const FILE: u8 = b'0';
    pub const HARDLINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const PAX: u8 = b'x';
}

/// The member name of a tree key (`/` → `./`, `/usr` → `./usr`).
pub fn member_name(key: &str, is_dir: bool) -> String {
    let mut s = if key == "/" {
        "./".to_string()
    } else {
        format!(".{key}")
    };
    if is_dir && !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// Write `tree` as a tar archive to `w`. Two calls on equal trees produce
/// identical bytes.
pub fn write_tar<W: Write>(tree: &Tree, w: W) -> Result<()> {
    let mut w = CountingWriter { inner: w, count: 0 };
    for (key, entry) in tree.iter() {
        write_entry(&mut w, key, entry)?;
    }
    let end = [0u8; 2 * BLOCK];
    w.write_all(&end).map_err(DebError::TarWriteIo)?;
    let pad = (RECORD - w.count % RECORD) % RECORD;
    io::copy(&mut io::repeat(0).take(pad), &mut w).map_err(DebError::TarWriteIo)?;
    w.flush().map_err(DebError::TarWriteIo)
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write `value` as zero-padded octal filling `buf` but its last byte (NUL).
/// Returns false when it does not fit.
fn put_octal(buf: &mut [u8], value: u64) -> bool {
    let digits = buf.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return false;
    }
    buf[..digits].copy_from_slice(s.as_bytes());
    buf[digits] = 0;
    true
}

/// Copy `s` into a name field; false when it does not fit.
fn put_name(buf: &mut [u8], s: &str) -> bool {
    if s.len() > buf.len() {
        // Keep a truncated (char-boundary) prefix for readers without pax.
        let mut end = buf.len();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        buf[..end].copy_from_slice(&s.as_bytes()[..end]);
        return false;
    }
    buf[..s.len()].copy_from_slice(s.as_bytes());
    true
}

fn finish_checksum(h: &mut [u8; BLOCK]) {
    h[field::CHKSUM].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    // Six octal digits, NUL, space (the traditional layout).
    let s = format!("{sum:06o}\0 ");
    h[field::CHKSUM].copy_from_slice(s.as_bytes());
}

fn write_entry<W: Write>(w: &mut W, key: &str, e: &Entry) -> Result<()> {
    let werr = |what: String| DebError::TarWrite {
        entry: key.to_string(),
        what,
    };
    let name = member_name(key, e.is_dir());
    let mut h = [0u8; BLOCK];
    let mut ext: BTreeMap<String, Vec<u8>> = BTreeMap::new();

    let (flag, link, size, dev) = match &e.kind {
        Kind::Dir => (typeflag::DIR, None, 0, None),
        Kind::File(c) => (typeflag::FILE, None, c.len(), None),
        Kind::Symlink(t) => (typeflag::SYMLINK, Some(t.clone()), 0, None),
        Kind::HardLink(t) => (typeflag::HARDLINK, Some(member_name(t, false)), 0, None),
        Kind::CharDevice { major, minor } => (typeflag::CHAR, None, 0, Some((*major, *minor))),
        Kind::BlockDevice { major, minor } => (typeflag::BLOCK, None, 0, Some((*major, *minor))),
        Kind::Fifo => (typeflag::FIFO, None, 0, None),
    };
    if !put_name(&mut h[field::NAME], &name) {
        ext.insert("path".into(), name.clone().into_bytes());
    }
    if let Some(l) = &link
        && !put_name(&mut h[field::LINKNAME], l)
    {
        ext.insert("linkpath".into(), l.clone().into_bytes());
    }
    put_octal(&mut h[field::MODE], u64::from(e.mode & 0o7777));
    if !put_octal(&mut h[field::UID], u64::from(e.uid)) {
        put_octal(&mut h[field::UID], 0);
        ext.insert("uid".into(), e.uid.to_string().into_bytes());
    }
    if !put_octal(&mut h[field::GID], u64::from(e.gid)) {
        put_octal(&mut h[field::GID], 0);
        ext.insert("gid".into(), e.gid.to_string().into_bytes());
    }
    if !put_octal(&mut h[field::SIZE], size) {
        put_octal(&mut h[field::SIZE], 0);
        ext.insert("size".into(), size.to_string().into_bytes());
    }
    let mtime_ok = u64::try_from(e.mtime).is_ok_and(|m| put_octal(&mut h[field::MTIME], m));
    if !mtime_ok {
        put_octal(&mut h[field::MTIME], 0);
        ext.insert("mtime".into(), e.mtime.to_string().into_bytes());
    }
    h[field::TYPEFLAG] = flag;
    h[field::MAGIC].copy_from_slice(b"ustar\0");
    h[field::VERSION].copy_from_slice(b"00");
    let (major, minor) = dev.unwrap_or((0, 0));
    if !put_octal(&mut h[field::DEVMAJOR], u64::from(major))
        || !put_octal(&mut h[field::DEVMINOR], u64::from(minor))
    {
        return Err(werr(format!(
            "device number {major}:{minor} does not fit the tar header"
        )));
    }
    for (xname, value) in &e.xattrs {
        if xname.is_empty() || xname.contains(['=', '\n', '\0']) {
            return Err(werr(format!(
                "xattr name {xname:?} cannot be stored in a pax record"
            )));
        }
        ext.insert(format!("{XATTR_PREFIX}{xname}"), value.clone());
    }
    finish_checksum(&mut h);

    if !ext.is_empty() {
        write_pax_header(w, key, e.mtime, &ext).map_err(DebError::TarWriteIo)?;
    }
    w.write_all(&h).map_err(DebError::TarWriteIo)?;
    if let Kind::File(c) = &e.kind {
        let mut r = c
            .open()
            .map_err(|err| werr(format!("reading content: {err}")))?;
        let copied = io::copy(&mut (&mut r).take(size), w).map_err(DebError::TarWriteIo)?;
        if copied != size {
            return Err(werr(format!("content has {copied} bytes, expected {size}")));
        }
        pad_block(w, size).map_err(DebError::TarWriteIo)?;
    }
    Ok(())
}

fn pad_block<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    let pad = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
    io::copy(&mut io::repeat(0).take(pad), w).map(|_| ())
}

fn write_pax_header<W: Write>(
    w: &mut W,
    key: &str,
    mtime: i64,
    ext: &BTreeMap<String, Vec<u8>>,
) -> io::Result<()> {
    let body = pax::records(ext);
    let mut h = [0u8; BLOCK];
    let base = file_name(key);
    let mut name = format!(
        "./PaxHeaders/{}",
        if base.is_empty() { "root" } else { base }
    );
    if name.len() > 100 {
        let mut end = 100;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    put_name(&mut h[field::NAME], &name);
    put_octal(&mut h[field::MODE], 0o644);
    put_octal(&mut h[field::UID], 0);
    put_octal(&mut h[field::GID], 0);
    put_octal(&mut h[field::SIZE], body.len() as u64);
    put_octal(&mut h[field::MTIME], u64::try_from(mtime).unwrap_or(0));
    h[field::TYPEFLAG] = typeflag::PAX;
    h[field::MAGIC].copy_from_slice(b"ustar\0");
    h[field::VERSION].copy_from_slice(b"00");
    put_octal(&mut h[field::DEVMAJOR], 0);
    put_octal(&mut h[field::DEVMINOR], 0);
    finish_checksum(&mut h);
    w.write_all(&h)?;
    w.write_all(&body)?;
    pad_block(w, body.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_table() {
        let cases: &[(usize, u64, Option<&[u8]>)] = &[
            (8, 0o755, Some(b"0000755\0")),
            (8, 0o7777777, Some(b"7777777\0")),
            (8, 0o10000000, None),
            (12, 5, Some(b"00000000005\0")),
        ];
        for (width, v, want) in cases {
            let mut buf = vec![0u8; *width];
            let ok = put_octal(&mut buf, *v);
            assert_eq!(ok, want.is_some(), "{v:o}");
            if let Some(w) = want {
                assert_eq!(&buf[..], *w);
            }
        }
    }

    #[test]
    fn member_names_table() {
        let cases = [
            ("/", true, "./"),
            ("/usr", true, "./usr/"),
            ("/usr/bin/ls", false, "./usr/bin/ls"),
        ];
        for (k, d, want) in cases {
            assert_eq!(member_name(k, d), want);
        }
    }
}
