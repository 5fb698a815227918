//! Collecting the tree: number the inodes, check every entry, build the
//! directories (linear or hash-indexed) and scan file contents for holes.

use std::collections::HashMap;

use basalt_tree::{Kind, Tree, parent};

use crate::dir::{self, DirEntry};
use crate::error::Error;
use crate::format::dirent::{FT_BLKDEV, FT_CHRDEV, FT_DIR, FT_FIFO, FT_REG_FILE, FT_SYMLINK};
use crate::format::inode::{I_BLOCK_SIZE, S_IFDIR, Timestamp};
use crate::format::{BLOCK_SIZE, FIRST_INO, LINK_MAX, NAME_LEN_MAX, ROOT_INO};
use crate::htree;
use crate::options::Options;
use crate::plan::{Body, DirPlan, DxRoot, InodePlan};
use crate::scan;
use crate::xattrs::{self, Placement};

/// lost+found gets this many blocks, like mke2fs (16 KiB).
const LOST_FOUND_BLOCKS: usize = 4;
const LOST_FOUND: &str = "/lost+found";

/// A directory's link count: 2 plus its subdirectories, or 1 past
/// `EXT4_LINK_MAX` (the dir_nlink feature's "many links").
fn dir_link_count(subdirs: u64) -> u16 {
    let n = 2 + subdirs;
    if n > u64::from(LINK_MAX) {
        1
    } else {
        u16::try_from(n).unwrap_or(1)
    }
}

fn time_ok(what: &str, secs: i64) -> Result<(), Error> {
    match Timestamp::encode(secs) {
        Some(_) => Ok(()),
        None => Err(Error::TimeOutOfRange {
            what: what.to_string(),
            secs,
        }),
    }
}

fn file_type(kind: &Kind) -> u8 {
    match kind {
        Kind::Dir => FT_DIR,
        Kind::File(_) | Kind::HardLink(_) => FT_REG_FILE,
        Kind::Symlink(_) => FT_SYMLINK,
        Kind::CharDevice { .. } => FT_CHRDEV,
        Kind::BlockDevice { .. } => FT_BLKDEV,
        Kind::Fifo => FT_FIFO,
    }
}

/// Number the inodes, check every entry, build the directories and scan
/// file contents for holes.
#[allow(clippy::type_complexity)]
pub(crate) fn collect<'t>(
    tree: &'t Tree,
    opts: &Options,
) -> Result<(Vec<InodePlan<'t>>, Vec<DirPlan<'t>>, u32), Error> {
    let root = tree.get("/").ok_or(Error::NotDir {
        path: "/".into(),
        kind: "missing entry",
    })?;
    if !root.is_dir() {
        return Err(Error::NotDir {
            path: "/".into(),
            kind: root.kind.name(),
        });
    }
    let has_lf = match tree.get(LOST_FOUND) {
        Some(e) if e.is_dir() => true,
        Some(e) => {
            return Err(Error::NotDir {
                path: LOST_FOUND.into(),
                kind: e.kind.name(),
            });
        }
        None => false,
    };

    // Inode numbers, in tree order.
    let mut ino_of: HashMap<&str, u32> = HashMap::with_capacity(tree.len());
    let mut next = FIRST_INO + 1;
    for (path, e) in tree.iter() {
        let ino = match (path, &e.kind) {
            ("/", _) => ROOT_INO,
            (LOST_FOUND, _) => FIRST_INO,
            (_, Kind::HardLink(_)) => continue,
            _ => {
                let n = next;
                next = next.checked_add(1).ok_or(Error::TooManyInodes {
                    inodes: u64::from(u32::MAX),
                    blocks: 0,
                })?;
                n
            }
        };
        ino_of.insert(path, ino);
    }
    let last_ino = next - 1;

    // Link counts.
    let mut extra_links: HashMap<&str, u64> = HashMap::new();
    let mut subdirs: HashMap<&str, u64> = HashMap::new();
    for (path, e) in tree.iter() {
        if let Kind::HardLink(t) = &e.kind {
            *extra_links.entry(t.as_str()).or_default() += 1;
        }
        if e.is_dir()
            && let Some(p) = parent(path)
        {
            *subdirs.entry(p).or_default() += 1;
        }
    }
    if !has_lf {
        *subdirs.entry("/").or_default() += 1;
    }
    let dir_links = |p: &str| dir_link_count(subdirs.get(p).copied().unwrap_or(0));

    // Directories.
    let children = tree.children_index();
    let mut dirs = Vec::new();
    let mut dir_of: HashMap<&str, usize> = HashMap::new();
    for (&path, names) in &children {
        let ino = ino_of[path];
        let parent_ino = parent(path).map_or(ROOT_INO, |p| ino_of[p]);
        let mut entries = vec![
            DirEntry {
                name: b".",
                ino,
                file_type: FT_DIR,
            },
            DirEntry {
                name: b"..",
                ino: parent_ino,
                file_type: FT_DIR,
            },
        ];
        for &name in names {
            if name.len() > NAME_LEN_MAX {
                return Err(Error::NameTooLong {
                    path: format!("{path}/{name}"),
                });
            }
            let child = if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            };
            let (key, e) = tree
                .get(&child)
                .map(|e| (child.as_str(), e))
                .ok_or(Error::NotDir {
                    path: child.clone(),
                    kind: "missing entry",
                })?;
            let target = match &e.kind {
                Kind::HardLink(t) => t.as_str(),
                _ => key,
            };
            let ino = *ino_of.get(target).ok_or_else(|| Error::NotDir {
                path: target.to_string(),
                kind: "missing entry",
            })?;
            entries.push(DirEntry {
                name: name.as_bytes(),
                ino,
                file_type: file_type(&e.kind),
            });
        }
        if path == "/" && !has_lf {
            entries.push(DirEntry {
                name: b"lost+found",
                ino: FIRST_INO,
                file_type: FT_DIR,
            });
        }
        let min = if path == LOST_FOUND {
            LOST_FOUND_BLOCKS
        } else {
            1
        };
        let block_starts = dir::pack(&entries, min);
        let indexed = if opts.dir_index && path != LOST_FOUND && block_starts.len() > 1 {
            htree::layout(&entries[2..], &opts.hash_seed)
        } else {
            None
        };
        dir_of.insert(path, dirs.len());
        match indexed {
            Some(l) => dirs.push(DirPlan {
                entries: l.entries,
                block_starts: l.leaf_starts,
                htree: Some(DxRoot {
                    self_ino: ino,
                    parent_ino,
                    leaf_hashes: l.leaf_hashes,
                }),
            }),
            None => dirs.push(DirPlan {
                entries,
                block_starts,
                htree: None,
            }),
        }
    }
    if !has_lf {
        let entries = vec![
            DirEntry {
                name: b".",
                ino: FIRST_INO,
                file_type: FT_DIR,
            },
            DirEntry {
                name: b"..",
                ino: ROOT_INO,
                file_type: FT_DIR,
            },
        ];
        let block_starts = dir::pack(&entries, LOST_FOUND_BLOCKS);
        dir_of.insert(LOST_FOUND, dirs.len());
        dirs.push(DirPlan {
            entries,
            block_starts,
            htree: None,
        });
    }

    // Holes of every regular file, scanned in parallel, in tree order.
    let files: Vec<(&str, &basalt_tree::Content)> = tree
        .iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::File(c) => Some((p, c)),
            _ => None,
        })
        .collect();
    let mut scanned = scan::data_runs_all(&files)?.into_iter();

    // Inodes.
    let mut inodes: Vec<InodePlan<'t>> = Vec::with_capacity(ino_of.len() + 1);
    for (path, e) in tree.iter() {
        let Some(&ino) = ino_of.get(path) else {
            continue;
        };
        time_ok(path, e.mtime)?;
        let (links, size, body): (u16, u64, Body<'t>) = match &e.kind {
            Kind::Dir => {
                let d = dir_of[path];
                let size = dirs[d].blocks() * BLOCK_SIZE;
                (dir_links(path), size, Body::Dir { dir: d })
            }
            Kind::File(c) => {
                let count = 1 + extra_links.get(path).copied().unwrap_or(0);
                let links = u16::try_from(count)
                    .ok()
                    .filter(|&n| u32::from(n) <= LINK_MAX);
                let links = links.ok_or(Error::TooManyLinks {
                    path: path.to_string(),
                    count,
                })?;
                if c.len().div_ceil(BLOCK_SIZE) > u64::from(u32::MAX) {
                    return Err(Error::FileTooLarge {
                        path: path.to_string(),
                        size: c.len(),
                    });
                }
                let runs = scanned.next().unwrap_or_default();
                (
                    links,
                    c.len(),
                    Body::File {
                        content: c,
                        path,
                        runs,
                    },
                )
            }
            Kind::Symlink(t) => {
                let b = t.as_bytes();
                if b.is_empty() {
                    return Err(Error::SymlinkTarget {
                        path: path.to_string(),
                        reason: "is empty",
                    });
                }
                if b.len() >= BLOCK_SIZE as usize {
                    return Err(Error::SymlinkTarget {
                        path: path.to_string(),
                        reason: "is 4096 bytes or longer",
                    });
                }
                if b.contains(&0) {
                    return Err(Error::SymlinkTarget {
                        path: path.to_string(),
                        reason: "contains a NUL byte",
                    });
                }
                let body = if b.len() < I_BLOCK_SIZE {
                    Body::FastSymlink(b)
                } else {
                    Body::SlowSymlink(b)
                };
                (1, b.len() as u64, body)
            }
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                if *major >= 1 << 12 || *minor >= 1 << 20 {
                    return Err(Error::DeviceNumber {
                        path: path.to_string(),
                        major: *major,
                        minor: *minor,
                    });
                }
                (
                    1,
                    0,
                    Body::Device {
                        major: *major,
                        minor: *minor,
                    },
                )
            }
            Kind::Fifo => (1, 0, Body::Fifo),
            Kind::HardLink(_) => continue,
        };
        let mode = u16::try_from(e.st_mode())
            .map_err(|_| Error::Option(format!("{path}: mode out of range")))?;
        inodes.push(InodePlan {
            ino,
            mode,
            uid: e.uid,
            gid: e.gid,
            time: e.mtime,
            links,
            size,
            body,
            xattrs: xattrs::place(path, &e.xattrs)?,
            extents: Vec::new(),
            tree_blocks: Vec::new(),
            xattr_block: None,
        });
    }
    if !has_lf {
        let d = dir_of[LOST_FOUND];
        inodes.push(InodePlan {
            ino: FIRST_INO,
            mode: S_IFDIR | 0o700,
            uid: 0,
            gid: 0,
            time: opts.timestamp,
            links: 2,
            size: dirs[d].blocks() * BLOCK_SIZE,
            body: Body::Dir { dir: d },
            xattrs: Placement::default(),
            extents: Vec::new(),
            tree_blocks: Vec::new(),
            xattr_block: None,
        });
    }
    inodes.sort_by_key(|i| i.ino);
    Ok((inodes, dirs, last_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_link_count_table() {
        for (subdirs, want) in [
            (0u64, 2u16),
            (1, 3),
            (64998, 65000),
            (64999, 1),
            (1 << 40, 1),
        ] {
            assert_eq!(dir_link_count(subdirs), want, "{subdirs}");
        }
    }
}
