//! Streaming a tar archive (a .deb's data.tar, or any tar) into a [`Tree`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use basalt_tree::{ContentStore, Entry, Kind, Tree, normalize, parent};
use tar::EntryType;

use crate::ar::member_reader;
use crate::compression::Integrity;
use crate::error::{DebError, Result};
use crate::links::{preserve_hard_links, resolve};
use crate::package::DebPackage;
use crate::pax::XATTR_PREFIX;

/// What to do with the metadata of a directory that already exists when an
/// archive lists it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirPolicy {
    /// Keep the existing directory's mode, owner and mtime (what dpkg does).
    #[default]
    KeepExisting,
    /// Take the archive's metadata (for reading back a whole-tree tar).
    Replace,
}

/// Options of [`unpack_data`] and [`read_tar`].
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Name recorded in the report (the package name).
    pub package: String,
    pub dirs: DirPolicy,
}

/// What one archive put into the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    pub package: String,
    /// Every path the archive listed, as tree keys after resolving symlinked
    /// directories (`./bin/sh` under a `/bin → usr/bin` link is `/usr/bin/sh`),
    /// in archive order.
    pub paths: Vec<String>,
    /// Non-directory paths that existed before and were replaced.
    pub replaced: Vec<String>,
    /// Symlinks the archive lists where the tree already has a directory:
    /// the directory is kept (as dpkg does) and the symlink is not made.
    pub kept_directories: Vec<String>,
    pub files: usize,
    pub bytes: u64,
}

/// Unpack the data.tar of the .deb at `path` into `tree`. Later packages'
/// files replace earlier ones; existing directories are kept per
/// `opts.dirs`; directories listed over a symlink to a directory keep the
/// symlink (as dpkg does), and paths below such links are stored at their
/// resolved location.
pub fn unpack_data(
    path: &Path,
    tree: &mut Tree,
    store: &ContentStore,
    opts: &UnpackOptions,
) -> Result<UnpackReport> {
    unpack_data_with(path, tree, store, opts, Integrity::Check)
}

/// [`unpack_data`], with the data member's decoder verifying its stream
/// check or not (see [`Integrity`]).
pub fn unpack_data_with(
    path: &Path,
    tree: &mut Tree,
    store: &ContentStore,
    opts: &UnpackOptions,
    integrity: Integrity,
) -> Result<UnpackReport> {
    let pkg = DebPackage::open(path)?;
    let io_err = |source| DebError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = BufReader::new(File::open(path).map_err(io_err)?);
    let (member, compression) = (pkg.data_member.clone(), pkg.data_compression);
    let raw = member_reader(path, &mut f, &member)?;
    let r = compression.decoder_with(raw, integrity).map_err(io_err)?;
    read_tar_named(path, &member.name, r, tree, store, opts)
}

/// Read any tar stream into `tree` (same rules as [`unpack_data`]).
pub fn read_tar<R: Read>(
    r: R,
    tree: &mut Tree,
    store: &ContentStore,
    opts: &UnpackOptions,
) -> Result<UnpackReport> {
    read_tar_named(Path::new("<tar>"), "tar", r, tree, store, opts)
}

/// The pax keys this reader understands. `atime`, `ctime`, `uname`,
/// `gname`, `charset` and `comment` carry nothing the tree keeps (owners are
/// numeric, times are mtime only) and are deliberately dropped.
const PAX_KNOWN: &[&str] = &[
    "path", "linkpath", "size", "uid", "gid", "mtime", "atime", "ctime", "uname", "gname",
    "charset", "comment",
];

fn read_tar_named<R: Read>(
    path: &Path,
    member: &str,
    r: R,
    tree: &mut Tree,
    store: &ContentStore,
    opts: &UnpackOptions,
) -> Result<UnpackReport> {
    let tar_err = |what: String| DebError::Tar {
        path: path.to_path_buf(),
        member: member.to_string(),
        what,
    };
    let mut archive = tar::Archive::new(r);
    let mut report = UnpackReport {
        package: opts.package.clone(),
        ..Default::default()
    };
    let entries = archive.entries().map_err(|e| tar_err(e.to_string()))?;
    for item in entries {
        let mut entry = item.map_err(|e| tar_err(format!("reading entry header: {e}")))?;
        let raw_path = entry
            .path()
            .map_err(|e| tar_err(format!("entry name: {e}")))?;
        let name = raw_path
            .to_str()
            .ok_or_else(|| tar_err(format!("entry name {raw_path:?} is not UTF-8")))?
            .to_string();
        let bad = |what: String| DebError::BadEntry {
            path: path.to_path_buf(),
            member: member.to_string(),
            entry: name.clone(),
            what,
        };
        let etype = entry.header().entry_type();
        if etype == EntryType::XGlobalHeader {
            let mut body = Vec::new();
            entry
                .read_to_end(&mut body)
                .map_err(|e| bad(e.to_string()))?;
            let recs = crate::pax::parse(&body).map_err(bad)?;
            if let Some(k) = recs.keys().find(|k| k.as_str() != "comment") {
                return Err(bad(format!("global pax header key {k:?} is not supported")));
            }
            continue;
        }
        // Metadata, with pax overrides.
        let h = entry.header();
        let mut mode = h.mode().map_err(|e| bad(format!("mode: {e}")))? & 0o7777;
        let mut uid = u32::try_from(h.uid().map_err(|e| bad(format!("uid: {e}")))?)
            .map_err(|_| bad("uid does not fit 32 bits".into()))?;
        let mut gid = u32::try_from(h.gid().map_err(|e| bad(format!("gid: {e}")))?)
            .map_err(|_| bad("gid does not fit 32 bits".into()))?;
        let mut mtime = i64::try_from(h.mtime().map_err(|e| bad(format!("mtime: {e}")))?)
            .map_err(|_| bad("mtime out of range".into()))?;
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| bad(format!("pax header: {e}")))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| bad(format!("pax record: {e}")))?;
                let key = ext
                    .key()
                    .map_err(|_| bad("pax key is not UTF-8".into()))?
                    .to_string();
                let num = || -> Result<&str> {
                    ext.value()
                        .map_err(|_| bad(format!("pax {key} is not UTF-8")))
                };
                if let Some(x) = key.strip_prefix(XATTR_PREFIX) {
                    xattrs.insert(x.to_string(), ext.value_bytes().to_vec());
                } else if key == "uid" || key == "gid" {
                    let v: u32 = num()?
                        .parse()
                        .map_err(|_| bad(format!("pax {key} is not a 32-bit id")))?;
                    if key == "uid" { uid = v } else { gid = v }
                } else if key == "mtime" {
                    mtime = parse_pax_time(num()?).ok_or_else(|| {
                        bad(format!("pax mtime {:?} is not a time", num().unwrap_or("")))
                    })?;
                } else if !PAX_KNOWN.contains(&key.as_str()) {
                    return Err(bad(format!(
                        "pax key {key:?} is not supported (sparse files, ACLs and non-SCHILY xattrs cannot be represented)"
                    )));
                }
            }
        }
        let key = normalize(&name).map_err(|source| DebError::Path {
            path: path.to_path_buf(),
            entry: name.clone(),
            source,
        })?;
        let key = resolve(tree, &key, false)
            .ok_or_else(|| bad("too many levels of symbolic links".into()))?;
        if mode == 0 && etype == EntryType::Symlink {
            mode = 0o777;
        }
        let size = entry.size();
        let kind = match etype {
            EntryType::Regular | EntryType::Continuous => {
                let c = store
                    .ingest(&mut entry, size)
                    .map_err(|e| bad(format!("reading contents: {e}")))?;
                if c.len() != size {
                    return Err(bad(format!(
                        "archive ends inside the file ({} of {size} bytes)",
                        c.len()
                    )));
                }
                report.files += 1;
                report.bytes += size;
                Kind::File(c)
            }
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => {
                let t = entry
                    .link_name()
                    .map_err(|e| bad(format!("link name: {e}")))?
                    .ok_or_else(|| bad("symlink without a target".into()))?;
                Kind::Symlink(
                    t.to_str()
                        .ok_or_else(|| bad("symlink target is not UTF-8".into()))?
                        .to_string(),
                )
            }
            EntryType::Link => {
                let t = entry
                    .link_name()
                    .map_err(|e| bad(format!("link name: {e}")))?
                    .ok_or_else(|| bad("hard link without a target".into()))?;
                let t = t
                    .to_str()
                    .ok_or_else(|| bad("hard link target is not UTF-8".into()))?;
                let tkey = normalize(t).map_err(|source| DebError::Path {
                    path: path.to_path_buf(),
                    entry: name.clone(),
                    source,
                })?;
                let tkey = resolve(tree, &tkey, false)
                    .ok_or_else(|| bad("too many levels of symbolic links".into()))?;
                match tree.get(&tkey).map(|e| &e.kind) {
                    Some(Kind::File(_)) => Kind::HardLink(tkey),
                    Some(Kind::HardLink(first)) => Kind::HardLink(first.clone()),
                    _ => {
                        return Err(bad(format!(
                            "hard link target {tkey} is not a regular file listed earlier"
                        )));
                    }
                }
            }
            EntryType::Char | EntryType::Block => {
                let major = entry
                    .header()
                    .device_major()
                    .map_err(|e| bad(format!("device major: {e}")))?
                    .ok_or_else(|| bad("device without a major number".into()))?;
                let minor = entry
                    .header()
                    .device_minor()
                    .map_err(|e| bad(format!("device minor: {e}")))?
                    .ok_or_else(|| bad("device without a minor number".into()))?;
                if etype == EntryType::Char {
                    Kind::CharDevice { major, minor }
                } else {
                    Kind::BlockDevice { major, minor }
                }
            }
            EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(bad(format!(
                    "tar entry type {:?} ({}) is not supported",
                    other,
                    char::from(other.as_byte())
                )));
            }
        };
        let new = Entry {
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        };
        place(tree, &key, new, opts.dirs, &mut report).map_err(|source| match source {
            PlaceError::Tree(source) => DebError::Tree {
                path: path.to_path_buf(),
                entry: name.clone(),
                source,
            },
            PlaceError::Root(kind) => {
                bad(format!("the root can only be a directory, not a {kind}"))
            }
        })?;
        report.paths.push(key);
    }
    Ok(report)
}

pub(crate) enum PlaceError {
    Tree(basalt_tree::TreeError),
    Root(&'static str),
}

/// Put `new` at `key`, applying the replacement rules.
pub(crate) fn place(
    tree: &mut Tree,
    key: &str,
    new: Entry,
    dirs: DirPolicy,
    report: &mut UnpackReport,
) -> Result<(), PlaceError> {
    if key == "/" && !new.is_dir() {
        return Err(PlaceError::Root(new.kind.name()));
    }
    let existing = tree.get(key).cloned();
    match (&existing, new.is_dir()) {
        (Some(old), true) if old.is_dir() => {
            if dirs == DirPolicy::Replace
                && let Some(e) = tree.get_mut(key)
            {
                *e = new;
            }
            return Ok(());
        }
        (
            Some(Entry {
                kind: Kind::Symlink(_),
                ..
            }),
            true,
        ) => {
            let target = resolve(tree, key, true);
            if target
                .as_deref()
                .and_then(|t| tree.get(t))
                .is_some_and(Entry::is_dir)
            {
                return Ok(());
            }
        }
        _ => {}
    }
    if existing.as_ref().is_some_and(Entry::is_dir) && matches!(new.kind, Kind::Symlink(_)) {
        report.kept_directories.push(key.to_string());
        return Ok(());
    }
    if let Some(old) = &existing
        && !old.is_dir()
    {
        report.replaced.push(key.to_string());
        if matches!(old.kind, Kind::File(_)) {
            preserve_hard_links(tree, &BTreeSet::from([key.to_string()]));
        }
    }
    if let Some(p) = parent(key)
        && !tree.contains(p)
    {
        tree.mkdir_p(p, new.mtime).map_err(PlaceError::Tree)?;
    }
    tree.insert(key, new).map_err(PlaceError::Tree)
}

/// Parse a pax time (`123`, `-5`, `1700000000.25`) to whole seconds (floor).
fn parse_pax_time(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = int.parse().ok()?;
    let has_frac = frac.bytes().any(|b| b != b'0');
    Some(if v < 0 || int.starts_with('-') {
        if has_frac { v - 1 } else { v }
    } else {
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time_table() {
        let cases = [
            ("0", Some(0)),
            ("1700000000.5", Some(1_700_000_000)),
            ("-5", Some(-5)),
            ("-5.5", Some(-6)),
            ("x", None),
            ("1.x", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_pax_time(s), want, "{s}");
        }
    }
}
