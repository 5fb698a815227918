//! Unpacking packages in parallel: each package goes into a tree of its
//! own ([`unpack_data_alone`], which can run on any thread), and the trees
//! are then merged into the image tree in install order
//! ([`merge_unpacked`]), replaying each archive's entries with the same
//! rules as [`crate::unpack_data`]: paths are resolved through the image
//! tree's symlinked directories at merge time, later files replace earlier
//! ones, existing directories follow the [`DirPolicy`].

use std::collections::HashMap;
use std::path::Path;

use basalt_tree::{ContentStore, Kind, Tree};

use crate::compression::Integrity;
use crate::error::{DebError, Result};
use crate::links::resolve;
use crate::unpack::{DirPolicy, PlaceError, UnpackOptions, UnpackReport, place, unpack_data_with};

/// Unpack the .deb at `path` into a fresh tree of its own.
pub fn unpack_data_alone(
    path: &Path,
    store: &ContentStore,
    opts: &UnpackOptions,
) -> Result<(Tree, UnpackReport)> {
    unpack_data_alone_with(path, store, opts, Integrity::Check)
}

/// [`unpack_data_alone`] with a choice of [`Integrity`]: the builder passes
/// [`Integrity::Prehashed`] for .debs whose SHA-256 it has checked against
/// the signed index.
pub fn unpack_data_alone_with(
    path: &Path,
    store: &ContentStore,
    opts: &UnpackOptions,
    integrity: Integrity,
) -> Result<(Tree, UnpackReport)> {
    let mut tree = Tree::new();
    let report = unpack_data_with(path, &mut tree, store, opts, integrity)?;
    Ok((tree, report))
}

/// Merge a package tree made by [`unpack_data_alone`] into `dst`. The
/// result equals unpacking the package straight into `dst`. `path` names
/// the package in errors.
pub fn merge_unpacked(
    dst: &mut Tree,
    src: &Tree,
    src_report: &UnpackReport,
    dirs: DirPolicy,
    path: &Path,
) -> Result<UnpackReport> {
    let mut report = UnpackReport {
        package: src_report.package.clone(),
        files: src_report.files,
        bytes: src_report.bytes,
        ..Default::default()
    };
    let mut moved: HashMap<&str, String> = HashMap::new();
    for key in &src_report.paths {
        let bad = |what: String| DebError::BadEntry {
            path: path.to_path_buf(),
            member: "data.tar".into(),
            entry: key.clone(),
            what,
        };
        let Some(entry) = src.get(key) else { continue };
        let mut entry = entry.clone();
        let dkey = resolve(dst, key, false)
            .ok_or_else(|| bad("too many levels of symbolic links".into()))?;
        if let Kind::HardLink(t) = &entry.kind {
            let dt = match moved.get(t.as_str()) {
                Some(d) => d.clone(),
                None => resolve(dst, t, false)
                    .ok_or_else(|| bad("too many levels of symbolic links".into()))?,
            };
            entry.kind = match dst.get(&dt).map(|e| &e.kind) {
                Some(Kind::File(_)) => Kind::HardLink(dt),
                Some(Kind::HardLink(first)) => Kind::HardLink(first.clone()),
                _ => {
                    return Err(bad(format!(
                        "hard link target {dt} is not a regular file listed earlier"
                    )));
                }
            };
        }
        place(dst, &dkey, entry, dirs, &mut report).map_err(|e| match e {
            PlaceError::Tree(source) => DebError::Tree {
                path: path.to_path_buf(),
                entry: key.clone(),
                source,
            },
            PlaceError::Root(kind) => {
                bad(format!("the root can only be a directory, not a {kind}"))
            }
        })?;
        moved.insert(key.as_str(), dkey.clone());
        report.paths.push(dkey);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{DebBuilder, Item, scratch_dir};

    #[test]
    fn merging_equals_sequential_unpacking() {
        let dir = scratch_dir("deb-merge");
        let store = ContentStore::new(dir.join("store")).expect("store");
        let debs = [
            DebBuilder::new("a")
                .entry("usr", Item::Dir, 0o755, 0, 0)
                .symlink("bin", "usr/bin")
                .file("usr/bin/sh", 0o755, b"one")
                .hardlink("usr/bin/sh2", "usr/bin/sh"),
            DebBuilder::new("b")
                .entry("bin", Item::Dir, 0o700, 0, 0)
                .file("bin/sh", 0o755, b"two")
                .hardlink("bin/sh3", "bin/sh")
                .entry("usr", Item::Dir, 0o700, 5, 5),
            DebBuilder::new("c")
                .file("usr/bin/sh", 0o755, b"three")
                .file("etc/x", 0o644, b"x"),
        ]
        .map(|b| b.write_to(&dir).expect("deb"));
        let opts = |p: &str| UnpackOptions {
            package: p.into(),
            dirs: DirPolicy::KeepExisting,
        };
        let mut seq = Tree::new();
        let mut seq_reports = Vec::new();
        for (i, d) in debs.iter().enumerate() {
            seq_reports.push(
                crate::unpack::unpack_data(d, &mut seq, &store, &opts(&i.to_string()))
                    .expect("seq"),
            );
        }
        let mut par = Tree::new();
        for (i, d) in debs.iter().enumerate() {
            let (t, r) = unpack_data_alone(d, &store, &opts(&i.to_string())).expect("alone");
            let merged =
                merge_unpacked(&mut par, &t, &r, DirPolicy::KeepExisting, d).expect("merge");
            assert_eq!(merged, seq_reports[i], "report of package {i}");
        }
        assert_eq!(par, seq);
        // sh3 linked b's sh; c replaced sh, so sh3 keeps b's contents.
        assert_eq!(
            par.get("/usr/bin/sh3").unwrap().kind,
            Kind::File(basalt_tree::Content::from_bytes(b"two".to_vec()))
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
