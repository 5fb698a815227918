//! Extended attributes: name-index prefixes, POSIX ACL conversion to the
//! ext4 disk format, placement in the inode or the xattr block, encoding.

use std::collections::BTreeMap;

use crate::crc::crc32c_raw;
use crate::error::Error;
use crate::format::BLOCK_SIZE;
use crate::format::inode::IN_INODE_XATTR_OFFSET;
use crate::format::xattr::{
    EXT2_EXT_ATTR_MAGIC, H_CHECKSUM_OFFSET, HEADER_SIZE, NAME_INDEX_POSIX_ACL_ACCESS,
    NAME_INDEX_POSIX_ACL_DEFAULT, NAME_INDEX_SECURITY, NAME_INDEX_TRUSTED, NAME_INDEX_USER,
    XattrEntry, XattrHeader, block_hash, entry_hash, entry_size, pad4,
};

const BS: usize = BLOCK_SIZE as usize;
/// Bytes of the in-inode area (after i_extra_isize) in a 256-byte inode.
pub const IN_INODE_SPACE: usize = 256 - IN_INODE_XATTR_OFFSET;

/// One attribute as stored: name index, name suffix, disk-format value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Attr {
    fn entry_bytes(&self) -> usize {
        entry_size(self.name.len())
    }
    fn value_bytes(&self) -> usize {
        pad4(self.value.len())
    }
    fn hash(&self) -> u32 {
        entry_hash(&self.name, &self.value)
    }
}

/// Where an inode's attributes go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub inline: Vec<Attr>,
    pub block: Vec<Attr>,
}

const PREFIXES: [(&str, u8); 3] = [
    ("user.", NAME_INDEX_USER),
    ("trusted.", NAME_INDEX_TRUSTED),
    ("security.", NAME_INDEX_SECURITY),
];

// POSIX ACL formats: the xattr (VFS) format, version 2, with 8-byte entries;
// the ext4 disk format, version 1, with 4-byte entries for tags without an id.
const ACL_XATTR_VERSION: u32 = 2;
const EXT4_ACL_VERSION: u32 = 1;
const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

/// Convert a POSIX ACL from the xattr format to the ext4 disk format.
fn acl_to_disk(v: &[u8]) -> Result<Vec<u8>, String> {
    if v.len() < 4 || !(v.len() - 4).is_multiple_of(8) {
        return Err(format!(
            "POSIX ACL of {} bytes is not a version-2 ACL (4 + 8n bytes)",
            v.len()
        ));
    }
    let version = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    if version != ACL_XATTR_VERSION {
        return Err(format!(
            "POSIX ACL version {version}, expected {ACL_XATTR_VERSION}"
        ));
    }
    let mut out = EXT4_ACL_VERSION.to_le_bytes().to_vec();
    for e in v[4..].chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        out.extend_from_slice(&e[0..4]);
        match tag {
            ACL_USER | ACL_GROUP => out.extend_from_slice(&e[4..8]),
            ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_MASK | ACL_OTHER => {}
            t => return Err(format!("POSIX ACL has unknown tag {t:#x}")),
        }
    }
    Ok(out)
}

/// Map a full attribute name and value to its stored form.
fn to_attr(name: &str, value: &[u8]) -> Result<Attr, String> {
    let acl = [
        ("system.posix_acl_access", NAME_INDEX_POSIX_ACL_ACCESS),
        ("system.posix_acl_default", NAME_INDEX_POSIX_ACL_DEFAULT),
    ];
    for (full, index) in acl {
        if name == full {
            return Ok(Attr {
                index,
                name: Vec::new(),
                value: acl_to_disk(value)?,
            });
        }
    }
    for (prefix, index) in PREFIXES {
        if let Some(suffix) = name.strip_prefix(prefix) {
            if suffix.is_empty() {
                return Err("empty name after the prefix".into());
            }
            if suffix.len() > 255 {
                return Err("name is longer than 255 bytes after the prefix".into());
            }
            return Ok(Attr {
                index,
                name: suffix.as_bytes().to_vec(),
                value: value.to_vec(),
            });
        }
    }
    Err("unsupported namespace (supported: user., trusted., security., system.posix_acl_access/default)".into())
}

fn inline_fits(attrs: &[Attr]) -> bool {
    let used: usize = 4
        + attrs
            .iter()
            .map(|a| a.entry_bytes() + a.value_bytes())
            .sum::<usize>()
        + 4;
    used <= IN_INODE_SPACE
}

fn block_bytes(attrs: &[Attr]) -> usize {
    HEADER_SIZE
        + attrs
            .iter()
            .map(|a| a.entry_bytes() + a.value_bytes())
            .sum::<usize>()
        + 4
}

/// Validate and place the attributes of the entry at `path`: each goes in
/// the inode if it still fits there, otherwise in the block (sorted by
/// index, name length and name, the order the kernel searches).
pub fn place(path: &str, xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Placement, Error> {
    let mut attrs = Vec::with_capacity(xattrs.len());
    for (name, value) in xattrs {
        let a = to_attr(name, value).map_err(|reason| Error::Xattr {
            path: path.to_string(),
            name: name.clone(),
            reason,
        })?;
        attrs.push(a);
    }
    attrs.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
    let mut p = Placement::default();
    for a in attrs {
        p.inline.push(a);
        if !inline_fits(&p.inline)
            && let Some(a) = p.inline.pop()
        {
            p.block.push(a);
        }
    }
    let bytes = block_bytes(&p.block);
    if !p.block.is_empty() && bytes > BS {
        return Err(Error::XattrsTooLarge {
            path: path.to_string(),
            bytes,
        });
    }
    Ok(p)
}

/// Write entries at `entries_at` and values downward from `values_end`
/// into `area`; value offsets are relative to `base`.
fn encode_entries(
    attrs: &[Attr],
    area: &mut [u8],
    entries_at: usize,
    values_end: usize,
    base: usize,
) -> Vec<u32> {
    let mut off = entries_at;
    let mut vend = values_end;
    let mut hashes = Vec::with_capacity(attrs.len());
    for a in attrs {
        let vlen = a.value_bytes();
        let value_offs = if a.value.is_empty() {
            0
        } else {
            vend -= vlen;
            area[vend..vend + a.value.len()].copy_from_slice(&a.value);
            vend - base
        };
        let h = a.hash();
        hashes.push(h);
        // Sizes were checked by `place`: names <= 255, offsets < 4096.
        XattrEntry {
            e_name_len: u8::try_from(a.name.len()).unwrap_or(0),
            e_name_index: a.index,
            e_value_offs: u16::try_from(value_offs).unwrap_or(0),
            e_value_inum: 0,
            e_value_size: u32::try_from(a.value.len()).unwrap_or(0),
            e_hash: h,
        }
        .encode(&mut area[off..]);
        let n = XattrEntry::SIZE;
        area[off + n..off + n + a.name.len()].copy_from_slice(&a.name);
        off += a.entry_bytes();
    }
    hashes
}

/// Encode the in-inode area (`inode[160..256]`); nothing when empty.
pub fn encode_inline(attrs: &[Attr], area: &mut [u8]) {
    if attrs.is_empty() {
        return;
    }
    area[..4].copy_from_slice(&EXT2_EXT_ATTR_MAGIC.to_le_bytes());
    encode_entries(attrs, area, 4, IN_INODE_SPACE, 4);
}

/// Encode an xattr block at block number `blk`.
pub fn encode_block(attrs: &[Attr], blk: u64, fs_seed: u32) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    let hashes = encode_entries(attrs, &mut b, HEADER_SIZE, BS, 0);
    let mut h = XattrHeader {
        h_magic: EXT2_EXT_ATTR_MAGIC,
        h_refcount: 1,
        h_blocks: 1,
        h_hash: block_hash(&hashes),
        h_checksum: 0,
    };
    h.encode(&mut b);
    let c = crc32c_raw(fs_seed, &blk.to_le_bytes());
    h.h_checksum = crc32c_raw(c, &b);
    debug_assert_eq!(
        XattrHeader::offset_of("h_checksum"),
        Some(H_CHECKSUM_OFFSET)
    );
    h.encode(&mut b);
    b
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    fn map(items: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn name_table() {
        let cases: [(&str, Result<(u8, &[u8]), ()>); 7] = [
            ("user.mime", Ok((1, b"mime"))),
            ("trusted.overlay.opaque", Ok((4, b"overlay.opaque"))),
            ("security.capability", Ok((6, b"capability"))),
            ("user.", Err(())),
            ("system.data", Err(())),
            ("other.x", Err(())),
            ("security.selinux", Ok((6, b"selinux"))),
        ];
        for (name, want) in cases {
            let got = to_attr(name, b"v").map(|a| (a.index, a.name));
            match want {
                Ok((i, n)) => assert_eq!(got, Ok((i, n.to_vec())), "{name}"),
                Err(()) => assert!(got.is_err(), "{name}"),
            }
        }
    }

    #[test]
    fn acl_conversion() {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 7u16, u32::MAX),
            (2, 5, 1000),
            (4, 5, u32::MAX),
            (0x10, 5, u32::MAX),
            (0x20, 4, u32::MAX),
        ] {
            v.extend(tag.to_le_bytes());
            v.extend(perm.to_le_bytes());
            v.extend(id.to_le_bytes());
        }
        let d = acl_to_disk(&v).expect("acl");
        assert_eq!(d.len(), 4 + 4 + 8 + 4 + 4 + 4);
        assert_eq!(&d[..4], &[1, 0, 0, 0]);
        assert_eq!(&d[8..16], &[2, 0, 5, 0, 0xE8, 3, 0, 0]);
        assert!(acl_to_disk(&[1, 0, 0, 0]).is_err());
        assert!(acl_to_disk(&[2, 0, 0]).is_err());
    }

    #[test]
    fn placement_table() {
        let cap = [1u8; 20];
        let big = [2u8; 200];
        let huge = [3u8; 5000];
        let p = place("/f", &map(&[("security.capability", &cap)])).expect("place");
        assert_eq!((p.inline.len(), p.block.len()), (1, 0));
        let p = place(
            "/f",
            &map(&[("security.capability", &cap), ("user.big", &big)]),
        )
        .expect("place");
        assert_eq!((p.inline.len(), p.block.len()), (1, 1));
        assert!(matches!(
            place("/f", &map(&[("user.huge", &huge)])),
            Err(Error::XattrsTooLarge { .. })
        ));
        assert!(matches!(
            place("/f", &map(&[("bogus", b"")])),
            Err(Error::Xattr { .. })
        ));
    }

    #[test]
    fn inline_encoding() {
        let attrs = vec![Attr {
            index: 1,
            name: b"ab".to_vec(),
            value: b"xyz".to_vec(),
        }];
        let mut area = [0u8; IN_INODE_SPACE];
        encode_inline(&attrs, &mut area);
        assert_eq!(&area[..4], &EXT2_EXT_ATTR_MAGIC.to_le_bytes());
        let e = XattrEntry::decode(&area[4..]);
        assert_eq!((e.e_name_len, e.e_name_index, e.e_value_size), (2, 1, 3));
        let voff = usize::from(e.e_value_offs) + 4;
        assert_eq!(voff, IN_INODE_SPACE - 4);
        assert_eq!(&area[voff..voff + 3], b"xyz");
        assert_eq!(e.e_hash, entry_hash(b"ab", b"xyz"));
    }
}
