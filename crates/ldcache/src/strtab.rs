//! The cache's string table as ldconfig builds it (glibc elf/stringtable.c):
//! each distinct string once, sorted so that strings which end alike are
//! adjacent, and a string that is a suffix of the one before it shares that
//! one's bytes (tail merging).
//!
//! The order: compare the strings from their last byte backwards, as
//! unsigned bytes, larger first; when one is a suffix of the other, the
//! longer comes first. Offsets: the first string at 0; each next string at
//! the previous one's end minus its own length when it is a suffix of the
//! previous string, else right after the previous string's NUL.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{LdCacheError, Result};

/// A finished string table: the bytes and each string's offset in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringTable {
    pub bytes: Vec<u8>,
    offsets: BTreeMap<Vec<u8>, u32>,
}

impl StringTable {
    /// The offset of `s` in the table (it must have been given to
    /// [`StringTable::build`]).
    pub fn offset(&self, s: &[u8]) -> Option<u32> {
        self.offsets.get(s).copied()
    }
}

/// The finalize order: backwards byte comparison, larger first, longer
/// first on a common suffix.
fn order(l: &[u8], r: &[u8]) -> Ordering {
    r.iter().rev().cmp(l.iter().rev())
}

/// Builds the table of `strings` (duplicates are merged). Strings must not
/// contain NUL.
pub fn build<'a>(strings: impl IntoIterator<Item = &'a [u8]>) -> Result<StringTable> {
    let set: BTreeSet<&[u8]> = strings.into_iter().collect();
    let mut sorted: Vec<&[u8]> = set.into_iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let mut offsets = BTreeMap::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut prev: Option<(&[u8], usize)> = None;
    for s in sorted {
        let off = match prev {
            None => 0,
            Some((p, poff)) if p.len() >= s.len() && p.ends_with(s) => poff + p.len() - s.len(),
            Some((p, poff)) => poff + p.len() + 1,
        };
        let end = off + s.len() + 1;
        if end > bytes.len() {
            bytes.resize(end, 0);
            bytes[off..off + s.len()].copy_from_slice(s);
        }
        let off32 = u32::try_from(off)
            .map_err(|_| LdCacheError::TooLarge(format!("string table offset {off}")))?;
        offsets.insert(s.to_vec(), off32);
        prev = Some((s, off));
    }
    Ok(StringTable { bytes, offsets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_orders() {
        type Case<'a> = (&'a [&'a str], &'a [u8], &'a [(&'a str, u32)]);
        let cases: &[Case] = &[
            (&[], b"", &[]),
            (&["a"], b"a\0", &[("a", 0)]),
            (&["a", "a"], b"a\0", &[("a", 0)]),
            // "libz.so.1" is a suffix of the path: shares its bytes.
            (
                &["libz.so.1", "/lib/libz.so.1"],
                b"/lib/libz.so.1\0",
                &[("/lib/libz.so.1", 0), ("libz.so.1", 5)],
            ),
            // Last bytes '2' > '1': "x.2" first.
            (&["x.1", "x.2"], b"x.2\0x.1\0", &[("x.2", 0), ("x.1", 4)]),
            // Only the immediately preceding string is merged into.
            (
                &["/a/libq.so", "libq.so", "/b/libq.so"],
                b"/b/libq.so\0/a/libq.so\0",
                &[("/b/libq.so", 0), ("/a/libq.so", 11), ("libq.so", 14)],
            ),
        ];
        for (input, bytes, offs) in cases {
            let t = build(input.iter().map(|s| s.as_bytes())).unwrap();
            assert_eq!(t.bytes, bytes.to_vec(), "{input:?}");
            for (s, o) in *offs {
                assert_eq!(t.offset(s.as_bytes()), Some(*o), "{input:?}: {s}");
            }
        }
    }
}
