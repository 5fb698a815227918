//! libkmod's binary index (`modules.*.bin`): a Patricia trie of ASCII keys,
//! each key holding values ordered by priority. Format as described in
//! kmod's libkmod/libkmod-index.c: big-endian u32 magic 0xB007F457, version
//! 0x00020001, root node offset; each node offset carries flags in its top
//! nibble (prefix / values / children present) and the file offset below.
//! A node is: [prefix\0] [first last child_offset*(last-first+1)]
//! [value_count (priority value\0)*]. Children are written before their
//! parent, so every offset points backwards and the root comes last.

use std::collections::BTreeMap;

use crate::error::KmodError;

pub const INDEX_MAGIC: u32 = 0xB007_F457;
pub const INDEX_VERSION: u32 = 0x0002_0001;
const NODE_PREFIX: u32 = 0x8000_0000;
const NODE_VALUES: u32 = 0x4000_0000;
const NODE_CHILDS: u32 = 0x2000_0000;
const NODE_MASK: u32 = 0x0FFF_FFFF;
/// Keys are 7-bit ASCII: children arrays are indexed by byte below this.
const CHILD_MAX: u8 = 128;
const HEADER_LEN: usize = 12;

/// The values of one key: (priority, value), lowest priority first.
pub type Values = Vec<(u32, String)>;
type Item<'a> = (&'a [u8], &'a Values);

/// Keys with their values, built up and then serialised.
#[derive(Debug, Default, Clone)]
pub struct IndexBuilder {
    /// key -> values in priority order (ties: latest insertion first, as
    /// depmod's list insertion does).
    entries: BTreeMap<Vec<u8>, Vec<(u32, String)>>,
}

#[derive(Default)]
struct Node {
    prefix: Vec<u8>,
    children: BTreeMap<u8, Node>,
    values: Vec<(u32, String)>,
}

impl IndexBuilder {
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add `value` under `key` with `priority` (lower sorts first).
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<(), KmodError> {
        if key.bytes().any(|c| c >= CHILD_MAX || c == 0) {
            return Err(KmodError::NonAsciiKey {
                key: key.to_string(),
            });
        }
        let values = self.entries.entry(key.as_bytes().to_vec()).or_default();
        let at = values
            .iter()
            .position(|(p, _)| *p >= priority)
            .unwrap_or(values.len());
        values.insert(at, (priority, value.to_string()));
        Ok(())
    }

    fn build(items: &[Item<'_>], depth: usize, is_root: bool) -> Node {
        let mut node = Node::default();
        if items.is_empty() {
            return node;
        }
        // Longest common continuation of all keys past `depth` (the root
        // keeps an empty prefix, like depmod's).
        let mut end = depth;
        if !is_root {
            let first = items[0].0;
            'grow: while end < first.len() {
                for (k, _) in items {
                    if k.len() <= end || k[end] != first[end] {
                        break 'grow;
                    }
                }
                end += 1;
            }
            node.prefix = first[depth..end].to_vec();
        }
        let mut rest = items;
        if let Some((k, v)) = rest.first()
            && k.len() == end
        {
            node.values = (*v).clone();
            rest = &rest[1..];
        }
        while let Some((k, _)) = rest.first() {
            let ch = k[end];
            let n = rest.iter().take_while(|(k2, _)| k2[end] == ch).count();
            node.children
                .insert(ch, IndexBuilder::build(&rest[..n], end + 1, false));
            rest = &rest[n..];
        }
        node
    }

    /// The index file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, KmodError> {
        let items: Vec<Item<'_>> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v))
            .collect();
        let root = IndexBuilder::build(&items, 0, true);
        let mut out = Vec::with_capacity(64 + items.len() * 32);
        out.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
        out.extend_from_slice(&INDEX_VERSION.to_be_bytes());
        out.extend_from_slice(&[0u8; 4]);
        let root_off = write_node(&root, &mut out)?;
        out[8..12].copy_from_slice(&root_off.to_be_bytes());
        Ok(out)
    }
}

fn write_node(node: &Node, out: &mut Vec<u8>) -> Result<u32, KmodError> {
    let mut child_offs: Vec<u32> = Vec::new();
    let (first, last) = match (
        node.children.keys().next(),
        node.children.keys().next_back(),
    ) {
        (Some(&f), Some(&l)) => (f, l),
        _ => (CHILD_MAX, 0),
    };
    if first < CHILD_MAX {
        child_offs = vec![0; usize::from(last - first) + 1];
        for (&ch, child) in &node.children {
            child_offs[usize::from(ch - first)] = write_node(child, out)?;
        }
    }
    let pos = u64::try_from(out.len()).unwrap_or(u64::MAX);
    let mut off = u32::try_from(pos)
        .ok()
        .filter(|o| o & !NODE_MASK == 0)
        .ok_or(KmodError::IndexTooLarge(pos))?;
    if !node.prefix.is_empty() {
        out.extend_from_slice(&node.prefix);
        out.push(0);
        off |= NODE_PREFIX;
    }
    if first < CHILD_MAX {
        out.push(first);
        out.push(last);
        for c in child_offs {
            out.extend_from_slice(&c.to_be_bytes());
        }
        off |= NODE_CHILDS;
    }
    if !node.values.is_empty() {
        let n = u32::try_from(node.values.len()).map_err(|_| KmodError::IndexTooLarge(pos))?;
        out.extend_from_slice(&n.to_be_bytes());
        for (prio, v) in &node.values {
            out.extend_from_slice(&prio.to_be_bytes());
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        off |= NODE_VALUES;
    }
    Ok(off)
}

/// A reader for exact-key lookups and full dumps (used by tests and by
/// callers that want to inspect an index).
pub struct IndexReader<'a> {
    data: &'a [u8],
}

impl<'a> IndexReader<'a> {
    pub fn new(data: &'a [u8]) -> Result<IndexReader<'a>, String> {
        if data.len() < HEADER_LEN {
            return Err("index shorter than its header".into());
        }
        if be32(data, 0)? != INDEX_MAGIC {
            return Err("bad index magic".into());
        }
        if be32(data, 4)? >> 16 != INDEX_VERSION >> 16 {
            return Err("unsupported index major version".into());
        }
        Ok(IndexReader { data })
    }

    /// Every (key, values) pair in key order.
    pub fn dump(&self) -> Result<Vec<(String, Values)>, String> {
        let mut out = Vec::new();
        self.walk(be32(self.data, 8)?, Vec::new(), &mut out, 0)?;
        Ok(out)
    }

    /// The values of `key`, if present.
    pub fn lookup(&self, key: &str) -> Result<Option<Values>, String> {
        Ok(self
            .dump()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    fn walk(
        &self,
        off: u32,
        mut key: Vec<u8>,
        out: &mut Vec<(String, Values)>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 4096 {
            return Err("index nesting too deep".into());
        }
        let mut p = usize::try_from(off & NODE_MASK).map_err(|_| "offset")?;
        if off & NODE_PREFIX != 0 {
            let s = cstring(self.data, p)?;
            key.extend_from_slice(s);
            p += s.len() + 1;
        }
        let mut children = Vec::new();
        if off & NODE_CHILDS != 0 {
            let (first, last) = (
                *self.data.get(p).ok_or("eof")?,
                *self.data.get(p + 1).ok_or("eof")?,
            );
            if first > last {
                return Err("child range reversed".into());
            }
            p += 2;
            for ch in first..=last {
                children.push((ch, be32(self.data, p)?));
                p += 4;
            }
        }
        if off & NODE_VALUES != 0 {
            let n = be32(self.data, p)?;
            p += 4;
            let mut vals = Vec::new();
            for _ in 0..n {
                let prio = be32(self.data, p)?;
                let s = cstring(self.data, p + 4)?;
                vals.push((prio, String::from_utf8_lossy(s).into_owned()));
                p += 4 + s.len() + 1;
            }
            out.push((String::from_utf8_lossy(&key).into_owned(), vals));
        }
        for (ch, child) in children {
            if child & NODE_MASK != 0 {
                let mut k = key.clone();
                k.push(ch);
                self.walk(child, k, out, depth + 1)?;
            }
        }
        Ok(())
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at {at}"))
}

fn cstring(b: &[u8], at: usize) -> Result<&[u8], String> {
    let rest = b.get(at..).ok_or("string offset past end")?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or("unterminated string")?;
    Ok(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_index_is_a_bare_root() {
        let b = IndexBuilder::new().to_bytes().unwrap();
        assert_eq!(b, [0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1, 0, 0, 0, 12]);
    }

    #[test]
    fn single_key_layout() {
        let mut ix = IndexBuilder::new();
        ix.insert("ab", "v", 7).unwrap();
        let b = ix.to_bytes().unwrap();
        // Child of root for 'a': prefix "b", one value (7, "v"), at offset 12.
        let child = [b'b', 0, 0, 0, 0, 1, 0, 0, 0, 7, b'v', 0];
        assert_eq!(&b[12..24], &child);
        // Root at 24: children 'a'..'a' -> 12 | PREFIX | VALUES.
        assert_eq!(&b[24..26], b"aa");
        assert_eq!(
            &b[26..30],
            &(12u32 | NODE_PREFIX | NODE_VALUES).to_be_bytes()
        );
        assert_eq!(&b[8..12], &(24u32 | NODE_CHILDS).to_be_bytes());
    }

    #[test]
    fn round_trip_table() {
        // The example of libkmod-index.c plus shared prefixes and a key that
        // is a prefix of others.
        let keys = [
            "ask",
            "ate",
            "on",
            "once",
            "one",
            "symbol:a",
            "symbol:ab",
            "o",
        ];
        let mut ix = IndexBuilder::new();
        for (i, k) in keys.iter().enumerate() {
            ix.insert(k, &format!("val{i}"), u32::try_from(i).unwrap())
                .unwrap();
        }
        ix.insert("on", "second", 0).unwrap();
        let b = ix.to_bytes().unwrap();
        let r = IndexReader::new(&b).unwrap();
        let mut want: Vec<&str> = keys.to_vec();
        want.sort();
        let got: Vec<String> = r.dump().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(got, want);
        assert_eq!(
            r.lookup("on").unwrap().unwrap(),
            vec![(0, "second".to_string()), (2, "val2".to_string())]
        );
        assert_eq!(
            r.lookup("symbol:ab").unwrap().unwrap(),
            vec![(6, "val6".to_string())]
        );
        assert!(r.lookup("an").unwrap().is_none());
    }

    #[test]
    fn non_ascii_key_rejected() {
        assert!(IndexBuilder::new().insert("caf\u{e9}", "x", 0).is_err());
    }
}
