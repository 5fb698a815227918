//! Plans and writes an ld.so.cache from its entries, laid out as glibc's
//! ldconfig lays it out (elf/cache.c, `save_cache` with the new format):
//! header, entries sorted for ld.so's binary search, string table, padding
//! to 4 bytes, and an extension directory holding one section, the
//! generator text.

use std::cmp::Ordering;

use crate::error::{LdCacheError, Result};
use crate::format::{
    ENTRY_SIZE, EXTENSION_ALIGN, EXTENSION_HEADER_SIZE, EXTENSION_MAGIC, EXTENSION_SECTION_SIZE,
    EXTENSION_TAG_GENERATOR, ExtensionSection, FileEntry, HEADER_FLAGS_ENDIAN_LITTLE, HEADER_SIZE,
    Header,
};
use crate::libcmp::libcmp;
use crate::strtab;

/// One library in the cache: `key` is the name ld.so looks up (the
/// soname), `value` the path it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub flags: i32,
}

/// ldconfig's entry order (elf/cache.c `compare`): names by
/// `_dl_cache_libcmp`, descending; on equal names the larger flags first.
/// Entries that still compare equal keep the order they were added in.
fn entry_order(a: &CacheEntry, b: &CacheEntry) -> Ordering {
    libcmp(&b.key, &a.key).then(b.flags.cmp(&a.flags))
}

fn u32_of(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| LdCacheError::TooLarge(format!("{what} is {n}")))
}

/// Where everything goes, computed before any byte is written.
struct Plan {
    header: Header,
    entries: Vec<FileEntry>,
    strings: Vec<u8>,
    section: ExtensionSection,
    total: usize,
}

fn plan(entries: &[CacheEntry], generator: &[u8]) -> Result<Plan> {
    let mut sorted: Vec<&CacheEntry> = entries.iter().collect();
    // Stable: equal entries stay in the order they were added (ldconfig
    // inserts each after the ones that compare equal to it).
    sorted.sort_by(|a, b| entry_order(a, b));
    let table = strtab::build(
        sorted
            .iter()
            .flat_map(|e| [e.key.as_slice(), e.value.as_slice()]),
    )?;
    let str_offset = HEADER_SIZE + ENTRY_SIZE * sorted.len();
    let at = |s: &[u8]| -> Result<u32> {
        let off = table.offset(s).ok_or_else(|| {
            LdCacheError::TooLarge("string missing from the table (internal)".into())
        })?;
        u32_of(
            str_offset + usize::try_from(off).unwrap_or(usize::MAX),
            "a string offset",
        )
    };
    let file_entries = sorted
        .iter()
        .map(|e| {
            Ok(FileEntry {
                flags: e.flags,
                key: at(&e.key)?,
                value: at(&e.value)?,
                osversion: 0,
                hwcap: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let ext_off = (str_offset + table.bytes.len()).next_multiple_of(EXTENSION_ALIGN);
    let data_off = ext_off + EXTENSION_HEADER_SIZE + EXTENSION_SECTION_SIZE;
    let header = Header {
        nlibs: u32_of(sorted.len(), "the number of entries")?,
        len_strings: u32_of(table.bytes.len(), "the string table size")?,
        flags: HEADER_FLAGS_ENDIAN_LITTLE,
        extension_offset: u32_of(ext_off, "the extension offset")?,
    };
    let section = ExtensionSection {
        tag: EXTENSION_TAG_GENERATOR,
        flags: 0,
        offset: u32_of(data_off, "the generator offset")?,
        size: u32_of(generator.len(), "the generator size")?,
    };
    Ok(Plan {
        header,
        entries: file_entries,
        strings: table.bytes,
        section,
        total: data_off + generator.len(),
    })
}

/// The cache file for `entries` (in the order they were found), naming
/// `generator` (e.g. `ldconfig (Debian GLIBC 2.41-12) stable release
/// version 2.41`, as the image's ldconfig records itself).
pub fn write_cache(entries: &[CacheEntry], generator: &[u8]) -> Result<Vec<u8>> {
    let p = plan(entries, generator)?;
    let mut out = Vec::with_capacity(p.total);
    out.extend_from_slice(&p.header.encode());
    for e in &p.entries {
        out.extend_from_slice(&e.encode());
    }
    out.extend_from_slice(&p.strings);
    out.resize(
        usize::try_from(p.header.extension_offset).unwrap_or(usize::MAX),
        0,
    );
    out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&p.section.encode());
    out.extend_from_slice(generator);
    debug_assert_eq!(out.len(), p.total);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{FLAG_ELF_LIBC6, FLAG_X8664_LIB64};

    const X64: i32 = FLAG_ELF_LIBC6 | FLAG_X8664_LIB64;

    fn e(key: &str, value: &str, flags: i32) -> CacheEntry {
        CacheEntry {
            key: key.into(),
            value: value.into(),
            flags,
        }
    }

    #[test]
    fn sorts_like_ldconfig() {
        type Case<'a> = (&'a [(&'a str, &'a str, i32)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &[
                    ("libc.so.6", "/l/libc.so.6", X64),
                    ("libz.so.1", "/l/libz.so.1", X64),
                    ("ld-linux-x86-64.so.2", "/l/ld-linux-x86-64.so.2", X64),
                    ("libz.so", "/l/libz.so", X64),
                ],
                &[
                    "/l/libz.so.1",
                    "/l/libz.so",
                    "/l/libc.so.6",
                    "/l/ld-linux-x86-64.so.2",
                ],
            ),
            // Same name: larger flags first, then the order added.
            (
                &[
                    ("libq.so.1", "/a/libq.so.1", FLAG_ELF_LIBC6),
                    ("libq.so.1", "/b/libq.so.1", X64),
                    ("libq.so.1", "/c/libq.so.1", X64),
                ],
                &["/b/libq.so.1", "/c/libq.so.1", "/a/libq.so.1"],
            ),
            // Numeric comparison: 10 > 9.
            (
                &[("libv.so.9", "/v9", X64), ("libv.so.10", "/v10", X64)],
                &["/v10", "/v9"],
            ),
        ];
        for (input, want) in cases {
            let entries: Vec<_> = input.iter().map(|(k, v, f)| e(k, v, *f)).collect();
            let p = plan(&entries, b"gen").unwrap();
            let values: Vec<String> = p
                .entries
                .iter()
                .map(|fe| {
                    let at = usize::try_from(fe.value).unwrap()
                        - HEADER_SIZE
                        - ENTRY_SIZE * entries.len();
                    let s = &p.strings[at..];
                    String::from_utf8(s[..s.iter().position(|&b| b == 0).unwrap()].to_vec())
                        .unwrap()
                })
                .collect();
            assert_eq!(values, *want);
        }
    }

    #[test]
    fn layout_of_a_small_cache() {
        let b = write_cache(&[e("libz.so.1", "/l/libz.so.1", X64)], b"ldconfig test").unwrap();
        // 48 header + 24 entry, strings "/l/libz.so.1\0" (13, key merged at
        // offset 3), padded to 88, extension 8 + 16, generator 13.
        assert_eq!(b.len(), 88 + 24 + 13);
        assert_eq!(&b[20..24], &1u32.to_le_bytes());
        assert_eq!(&b[24..28], &13u32.to_le_bytes());
        assert_eq!(&b[32..36], &88u32.to_le_bytes());
        assert_eq!(&b[48..52], &X64.to_le_bytes());
        assert_eq!(&b[52..56], &75u32.to_le_bytes());
        assert_eq!(&b[56..60], &72u32.to_le_bytes());
        assert_eq!(&b[72..85], b"/l/libz.so.1\0");
        assert_eq!(&b[85..88], &[0, 0, 0]);
        assert_eq!(&b[88..92], &EXTENSION_MAGIC.to_le_bytes());
        assert_eq!(&b[92..96], &1u32.to_le_bytes());
        assert_eq!(&b[104..108], &112u32.to_le_bytes());
        assert_eq!(&b[108..112], &13u32.to_le_bytes());
        assert_eq!(&b[112..], b"ldconfig test");
    }

    #[test]
    fn empty_cache() {
        let b = write_cache(&[], b"g").unwrap();
        assert_eq!(b.len(), 48 + 24 + 1);
        assert_eq!(&b[32..36], &48u32.to_le_bytes());
    }
}
