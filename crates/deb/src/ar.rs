//! The `ar` container of a .deb (System V / GNU common format).
//!
//! Layout (ar(5), deb(5)): the 8-byte global header `!<arch>\n`, then members,
//! each a 60-byte ASCII header followed by the data, padded with `\n` to an
//! even offset.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{DebError, Result};

/// The global header of every ar archive.
pub const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// Size of a member header.
pub const MEMBER_HEADER_LEN: usize = 60;
/// Terminator of every member header (`ar_fmag`).
pub const MEMBER_FMAG: &[u8; 2] = b"`\n";

// Field ranges inside the 60-byte member header (ar(5)).
const NAME: std::ops::Range<usize> = 0..16;
const SIZE: std::ops::Range<usize> = 48..58;
const FMAG: std::ops::Range<usize> = 58..60;
const _: () = assert!(FMAG.end == MEMBER_HEADER_LEN);

/// One member: its name and where its data lies in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    pub name: String,
    /// Offset of the first data byte from the start of the archive.
    pub offset: u64,
    pub size: u64,
}

/// List the members of the ar archive in `r`, checking that each lies fully
/// inside the file. `path` only names the file in errors.
pub fn list_members<R: Read + Seek>(path: &Path, r: &mut R) -> Result<Vec<ArMember>> {
    let io_err = |source: io::Error| DebError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_len = r.seek(SeekFrom::End(0)).map_err(io_err)?;
    r.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut magic = [0u8; 8];
    if file_len < 8 {
        return Err(DebError::NotAr {
            path: path.to_path_buf(),
        });
    }
    r.read_exact(&mut magic).map_err(io_err)?;
    if &magic != AR_MAGIC {
        return Err(DebError::NotAr {
            path: path.to_path_buf(),
        });
    }
    let mut members = Vec::new();
    let mut pos = 8u64;
    loop {
        // Members start at even offsets; a lone padding byte may end the file.
        if pos % 2 == 1 {
            pos += 1;
        }
        if pos >= file_len {
            break;
        }
        if file_len - pos < MEMBER_HEADER_LEN as u64 {
            return Err(DebError::TruncatedHeader {
                path: path.to_path_buf(),
                offset: pos,
            });
        }
        r.seek(SeekFrom::Start(pos)).map_err(io_err)?;
        let mut hdr = [0u8; MEMBER_HEADER_LEN];
        r.read_exact(&mut hdr).map_err(io_err)?;
        let bad = |why: String| DebError::BadHeader {
            path: path.to_path_buf(),
            offset: pos,
            why,
        };
        if &hdr[FMAG] != MEMBER_FMAG {
            return Err(bad("bad terminator (ar_fmag)".into()));
        }
        let name = std::str::from_utf8(&hdr[NAME])
            .map_err(|_| bad("member name is not ASCII".into()))?
            .trim_end_matches(' ')
            .trim_end_matches('/')
            .to_string();
        if name.is_empty() {
            return Err(bad("empty member name".into()));
        }
        let size_txt = std::str::from_utf8(&hdr[SIZE])
            .map_err(|_| bad("size is not ASCII".into()))?
            .trim_end();
        let size: u64 = size_txt
            .parse()
            .map_err(|_| bad(format!("size field {size_txt:?} is not a decimal number")))?;
        let offset = pos + MEMBER_HEADER_LEN as u64;
        let available = file_len - offset;
        if size > available {
            return Err(DebError::TruncatedMember {
                path: path.to_path_buf(),
                member: name,
                declared: size,
                available,
            });
        }
        members.push(ArMember { name, offset, size });
        pos = offset + size;
    }
    Ok(members)
}

/// A reader limited to one member's bytes.
pub fn member_reader<'a, R: Read + Seek>(
    path: &Path,
    r: &'a mut R,
    m: &ArMember,
) -> Result<io::Take<&'a mut R>> {
    r.seek(SeekFrom::Start(m.offset))
        .map_err(|source| DebError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(r.take(m.size))
}

/// Write an ar archive of `members` (name, data) — used to build test
/// packages and fixtures in code.
pub fn write_ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = AR_MAGIC.to_vec();
    for (name, data) in members {
        let hdr = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}",
            name,
            0,
            0,
            0,
            "100644",
            data.len()
        );
        debug_assert_eq!(hdr.len(), 58);
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(MEMBER_FMAG);
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn round_trip_and_padding() {
        let bytes = write_ar(&[("debian-binary", b"2.0\n"), ("odd", b"abc"), ("x", b"")]);
        let got = list_members(Path::new("t.deb"), &mut Cursor::new(&bytes)).expect("parse");
        let names: Vec<&str> = got.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["debian-binary", "odd", "x"]);
        assert_eq!(got[1].size, 3);
        assert_eq!(&bytes[got[1].offset as usize..][..3], b"abc");
    }

    #[test]
    fn errors_table() {
        let good = write_ar(&[("debian-binary", b"2.0\n"), ("data.tar", b"0123456789")]);
        let mut bad_fmag = good.clone();
        bad_fmag[8 + 58] = b'X';
        let mut bad_size = good.clone();
        bad_size[8 + 48] = b'z';
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "not an ar archive"),
            ("magic", b"!<arxh>\nxxxxxxxx".to_vec(), "not an ar archive"),
            (
                "cut member",
                good[..good.len() - 4].to_vec(),
                "declares 10 bytes but only 6 remain",
            ),
            ("cut header", good[..8 + 64 + 30].to_vec(), "is truncated"),
            ("fmag", bad_fmag, "bad terminator"),
            ("size", bad_size, "not a decimal number"),
        ];
        for (what, bytes, want) in cases {
            let err = list_members(Path::new("p.deb"), &mut Cursor::new(bytes)).expect_err(what);
            let msg = err.to_string();
            assert!(
                msg.contains(want) && msg.starts_with("p.deb"),
                "{what}: {msg}"
            );
        }
    }
}
