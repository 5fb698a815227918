//! Planning a FAT32 volume from a tree: names, directory sizes and cluster
//! runs, all decided (and all errors found) before anything is written.

use std::collections::BTreeMap;

use basalt_tree::{Content, Kind, Tree};

use crate::bpb::ROOT_CLUSTER;
use crate::dirent::{DIRENT_SIZE, FatTime, fat_time};
use crate::error::{FatError, Result};
use crate::geometry::Geometry;
use crate::names::{ShortName, assign, check_long, lfn_entries};

/// Most entries a FAT directory may hold (its size is limited to 2 MiB).
pub const MAX_DIR_ENTRIES: u64 = 65_536;
const NO_LABEL: &[u8; 11] = b"NO NAME    ";

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// Volume size in bytes (multiple of 512).
    pub size: u64,
    /// Volume label, up to 11 ASCII characters (stored uppercase).
    pub label: String,
    /// Volume serial number (derive it from the build seed).
    pub volume_id: u32,
    /// If set, every entry gets this time (SOURCE_DATE_EPOCH); otherwise
    /// each entry's own mtime.
    pub timestamp: Option<i64>,
    /// Sectors before the volume on its disk (the partition's start LBA).
    pub hidden_sectors: u32,
    /// Cluster size in bytes; `None` follows Microsoft's table.
    pub cluster_size: Option<u32>,
}

impl FatOptions {
    /// A 1 GiB ESP, the Basalt default.
    pub fn esp(label: &str, volume_id: u32) -> FatOptions {
        FatOptions {
            size: 1 << 30,
            label: label.to_string(),
            volume_id,
            timestamp: None,
            hidden_sectors: 0,
            cluster_size: None,
        }
    }
}

/// One name in a directory.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub short: ShortName,
    /// UTF-16 long name, when one is needed.
    pub long: Option<Vec<u16>>,
    pub node: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Dir { children: Vec<Child> },
    File(Content),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub path: String,
    pub kind: NodeKind,
    pub time: FatTime,
    /// Bytes of content (files) or of directory entries (directories).
    pub bytes: u64,
    pub first_cluster: u32,
    pub clusters: u32,
}

/// A planned volume; [`FatPlan::write`] puts it on disk.
#[derive(Debug, Clone)]
pub struct FatPlan {
    pub geometry: Geometry,
    pub(crate) label: [u8; 11],
    pub(crate) volume_id: u32,
    pub(crate) hidden_sectors: u32,
    pub(crate) label_time: FatTime,
    /// Nodes in tree order; node 0 is the root.
    pub(crate) nodes: Vec<Node>,
    /// Clusters in use (including the root directory's).
    pub used_clusters: u32,
}

fn label_bytes(label: &str) -> Result<[u8; 11]> {
    if label.is_empty() {
        return Ok(*NO_LABEL);
    }
    let bad = |why: &str| FatError::BadLabel(label.to_string(), why.to_string());
    if label.len() > 11 {
        return Err(bad("longer than 11 characters"));
    }
    let mut out = [b' '; 11];
    for (i, c) in label.chars().enumerate() {
        let u = c.to_ascii_uppercase();
        if !(u.is_ascii_uppercase() || u.is_ascii_digit() || " !#$%&'()-@^_`{}~".contains(u)) {
            return Err(bad(&format!("character {c:?} is not allowed")));
        }
        out[i] = u as u8;
    }
    Ok(out)
}

impl FatPlan {
    pub fn new(tree: &Tree, opts: &FatOptions) -> Result<FatPlan> {
        let label = label_bytes(&opts.label)?;
        let geometry = Geometry::new(opts.size, opts.cluster_size)?;
        let time_of = |mtime: i64| fat_time(opts.timestamp.unwrap_or(mtime));
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut nodes: Vec<Node> = Vec::with_capacity(tree.len());
        for (path, e) in tree.iter() {
            let kind = match &e.kind {
                Kind::Dir => NodeKind::Dir {
                    children: Vec::new(),
                },
                Kind::File(c) => {
                    if c.len() > u64::from(u32::MAX) {
                        return Err(FatError::FileTooLarge {
                            path: path.to_string(),
                            size: c.len(),
                        });
                    }
                    NodeKind::File(c.clone())
                }
                other => {
                    return Err(FatError::UnsupportedKind {
                        path: path.to_string(),
                        kind: other.name(),
                    });
                }
            };
            let bytes = if let NodeKind::File(c) = &kind {
                c.len()
            } else {
                0
            };
            index.insert(path, nodes.len());
            nodes.push(Node {
                path: path.to_string(),
                kind,
                time: time_of(e.mtime),
                bytes,
                first_cluster: 0,
                clusters: 0,
            });
        }
        for (dir, names) in tree.children_index() {
            let Some(&d) = index.get(dir) else { continue };
            let children = name_children(dir, &names, &index)?;
            let mut entries: u64 = if dir == "/" { 1 } else { 2 };
            entries += children
                .iter()
                .map(|c| 1 + c.long.as_ref().map_or(0, |l| lfn_entries(l.len()) as u64))
                .sum::<u64>();
            if entries > MAX_DIR_ENTRIES {
                return Err(FatError::DirectoryTooLarge {
                    path: dir.to_string(),
                    entries,
                });
            }
            nodes[d].bytes = entries * DIRENT_SIZE as u64;
            nodes[d].kind = NodeKind::Dir { children };
        }
        // Cluster runs, contiguous, in tree order starting with the root.
        let cb = geometry.cluster_bytes();
        let mut next = u64::from(ROOT_CLUSTER);
        for n in nodes.iter_mut() {
            let is_dir = matches!(n.kind, NodeKind::Dir { .. });
            let count = if is_dir {
                n.bytes.div_ceil(cb).max(1)
            } else {
                n.bytes.div_ceil(cb)
            };
            if count == 0 {
                continue;
            }
            n.first_cluster = u32::try_from(next).unwrap_or(u32::MAX);
            n.clusters = u32::try_from(count).unwrap_or(u32::MAX);
            next += count;
        }
        let used = next - u64::from(ROOT_CLUSTER);
        if used > u64::from(geometry.clusters) {
            return Err(FatError::NoSpace {
                need: used,
                have: u64::from(geometry.clusters),
                cluster_size: cb as u32,
            });
        }
        let label_time = fat_time(
            opts.timestamp
                .unwrap_or(tree.get("/").map_or(0, |e| e.mtime)),
        );
        Ok(FatPlan {
            geometry,
            label,
            volume_id: opts.volume_id,
            hidden_sectors: opts.hidden_sectors,
            label_time,
            nodes,
            used_clusters: u32::try_from(used).unwrap_or(u32::MAX),
        })
    }

    /// Bytes of data clusters in use.
    pub fn used_bytes(&self) -> u64 {
        u64::from(self.used_clusters) * self.geometry.cluster_bytes()
    }
}

/// Short and long names for the children of `dir`, checked.
fn name_children(dir: &str, names: &[&str], index: &BTreeMap<&str, usize>) -> Result<Vec<Child>> {
    let mut folded: BTreeMap<String, &str> = BTreeMap::new();
    let mut longs = Vec::with_capacity(names.len());
    for &name in names {
        let path = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        let units = check_long(name).map_err(|why| FatError::BadName {
            path: path.clone(),
            why,
        })?;
        if let Some(prev) = folded.insert(name.to_lowercase(), name) {
            return Err(FatError::CaseClash {
                dir: dir.to_string(),
                a: prev.to_string(),
                b: name.to_string(),
            });
        }
        let node = *index
            .get(path.as_str())
            .ok_or_else(|| FatError::NotFound { path: path.clone() })?;
        longs.push((units, node));
    }
    let shorts = assign(names).ok_or_else(|| FatError::ShortNamesExhausted {
        dir: dir.to_string(),
        name: names.last().map_or(String::new(), |n| n.to_string()),
    })?;
    Ok(shorts
        .into_iter()
        .zip(longs)
        .map(|((short, needs_long), (units, node))| Child {
            short,
            long: needs_long.then_some(units),
            node,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Entry;

    #[test]
    fn directory_entry_limit() {
        // 22 000 names of 14..26 UTF-16 units need 3 entries each: over 65 536.
        let mut t = Tree::new();
        t.mkdir_p("/d", 0).expect("mkdir");
        for i in 0..22_000 {
            t.insert(
                &format!("/d/a-long-file-name-{i}"),
                Entry::file(0o644, Content::from_bytes(vec![])),
            )
            .expect("insert");
        }
        let opts = FatOptions {
            size: 64 << 20,
            ..FatOptions::esp("X", 1)
        };
        match FatPlan::new(&t, &opts) {
            Err(FatError::DirectoryTooLarge { path, entries }) => {
                assert_eq!((path.as_str(), entries), ("/d", 66_002))
            }
            other => panic!("expected DirectoryTooLarge, got {other:?}"),
        }
    }

    #[test]
    fn labels_table() {
        let cases = [
            ("", Some(*b"NO NAME    ")),
            ("esp", Some(*b"ESP        ")),
            ("BASALT-ESP", Some(*b"BASALT-ESP ")),
            ("a/b", None),
            ("twelve chars", None),
        ];
        for (label, want) in cases {
            assert_eq!(label_bytes(label).ok(), want, "{label:?}");
        }
    }
}
