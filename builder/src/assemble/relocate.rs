//! Moving a subtree to another place of the tree, merging with what is
//! already there (used for merged /usr and for /etc → factory defaults).

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use basalt_deb::{join_clamped, preserve_hard_links};
use basalt_tree::{Entry, Kind, Tree, parent};

/// Which copy survives when both locations hold a non-directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    Source,
    Destination,
}

/// What a move did.
#[derive(Debug, Default)]
pub struct Moved {
    pub moved: usize,
    /// Source paths dropped because the destination won and differed.
    pub dropped: Vec<String>,
}

fn under(key: &str, dir: &str) -> Option<String> {
    if key == dir {
        return Some(String::new());
    }
    key.strip_prefix(dir)
        .filter(|rest| rest.starts_with('/'))
        .map(str::to_string)
}

/// Move `from` and everything under it to `to`, merging directories.
/// Hard links into the moved subtree follow it. With `fix_relative_links`,
/// relative symlinks whose meaning would change at the new place are made
/// absolute (paths under `from` counted as under `to`).
pub fn merge_move(
    tree: &mut Tree,
    from: &str,
    to: &str,
    winner: Winner,
    fix_relative_links: bool,
) -> Result<Moved> {
    let mut out = Moved::default();
    if !tree.contains(from) {
        return Ok(out);
    }
    let map = |k: &str| under(k, from).map(|rest| format!("{to}{rest}"));
    let srcs: Vec<String> = std::iter::once(from.to_string())
        .chain(tree.descendants(from).map(|(k, _)| k.to_string()))
        .collect();
    let mut moves: Vec<(String, String)> = Vec::new();
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    let mut replaced: BTreeSet<String> = BTreeSet::new();
    for src in &srcs {
        if parent(src).is_some_and(|p| dropped.contains(p)) {
            dropped.insert(src.clone());
            continue;
        }
        let Some(dst) = map(src) else { continue };
        let Some(e) = tree.get(src) else { continue };
        match tree.get(&dst) {
            None => moves.push((src.clone(), dst)),
            Some(d) if d.is_dir() && e.is_dir() => {}
            Some(d) => {
                let dst_has_children = d.is_dir() && tree.descendants(&dst).next().is_some();
                match winner {
                    Winner::Source if dst_has_children => {
                        bail!(
                            "cannot move {src} ({}) onto the non-empty directory {dst}",
                            e.kind.name()
                        )
                    }
                    Winner::Source => {
                        replaced.insert(dst.clone());
                        moves.push((src.clone(), dst));
                    }
                    Winner::Destination if e.is_dir() => {
                        bail!(
                            "cannot merge directory {src} into {dst}, which is a {}",
                            d.kind.name()
                        )
                    }
                    Winner::Destination => {
                        if !same(e, d) {
                            out.dropped.push(src.clone());
                        }
                        dropped.insert(src.clone());
                    }
                }
            }
        }
    }
    preserve_hard_links(tree, &dropped);
    preserve_hard_links(tree, &replaced);
    if let Some(p) = parent(to) {
        tree.mkdir_p(p, tree.get(from).map_or(0, |e| e.mtime))?;
    }
    for (src, dst) in &moves {
        let Some(mut e) = tree.get(src).cloned() else {
            continue;
        };
        if fix_relative_links
            && let Kind::Symlink(t) = &e.kind
            && !t.starts_with('/')
        {
            let old = join_clamped(parent(src).unwrap_or("/"), t);
            let meant = map(&old).unwrap_or(old);
            if join_clamped(parent(dst).unwrap_or("/"), t) != meant {
                e.kind = Kind::Symlink(meant);
            }
        }
        tree.insert(dst, e)?;
        out.moved += 1;
    }
    tree.remove(from);
    let relink: Vec<(String, String)> = tree
        .iter()
        .filter_map(|(k, e)| match &e.kind {
            Kind::HardLink(t) => map(t).map(|n| (k.to_string(), n)),
            _ => None,
        })
        .collect();
    for (k, n) in relink {
        if let Some(e) = tree.get_mut(&k) {
            e.kind = Kind::HardLink(n);
        }
    }
    Ok(out)
}

fn same(a: &Entry, b: &Entry) -> bool {
    a.kind == b.kind && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    fn file(s: &str) -> Entry {
        Entry::file(0o755, Content::from_bytes(s.as_bytes().to_vec()))
    }

    #[test]
    fn merge_into_usr() {
        let mut t = Tree::new();
        t.insert_p("/bin/sh", file("dash")).unwrap();
        t.insert_p("/bin/same", file("x")).unwrap();
        t.insert_p("/bin/differs", file("old")).unwrap();
        t.insert("/bin/rel", Entry::symlink("../lib/y")).unwrap();
        t.insert("/bin/local", Entry::symlink("sh")).unwrap();
        t.insert_p("/usr/bin/same", file("x")).unwrap();
        t.insert_p("/usr/bin/differs", file("new")).unwrap();
        t.insert(
            "/usr/bin/hl",
            Entry {
                kind: Kind::HardLink("/bin/sh".into()),
                ..file("")
            },
        )
        .unwrap();
        let m = merge_move(&mut t, "/bin", "/usr/bin", Winner::Destination, true).unwrap();
        assert_eq!(m.dropped, ["/bin/differs"]);
        assert!(!t.contains("/bin"));
        assert_eq!(t.get("/usr/bin/sh").unwrap().kind, file("dash").kind);
        assert_eq!(t.get("/usr/bin/differs").unwrap().kind, file("new").kind);
        assert_eq!(
            t.get("/usr/bin/hl").unwrap().kind,
            Kind::HardLink("/usr/bin/sh".into())
        );
        // ../lib/y meant /lib/y: made absolute to keep that meaning.
        assert_eq!(
            t.get("/usr/bin/rel").unwrap().kind,
            Kind::Symlink("/lib/y".into())
        );
        assert_eq!(
            t.get("/usr/bin/local").unwrap().kind,
            Kind::Symlink("sh".into())
        );
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn source_wins_and_errors() {
        let mut t = Tree::new();
        t.insert_p("/etc/a", file("pkg")).unwrap();
        t.insert_p("/etc/d/x", file("pkg")).unwrap();
        t.insert_p("/f/etc/a", file("factory")).unwrap();
        t.insert_p("/f/etc/b", file("factory")).unwrap();
        merge_move(&mut t, "/etc", "/f/etc", Winner::Source, false).unwrap();
        assert_eq!(t.get("/f/etc/a").unwrap().kind, file("pkg").kind);
        assert!(t.contains("/f/etc/b") && t.contains("/f/etc/d/x") && !t.contains("/etc"));

        let mut t = Tree::new();
        t.insert_p("/a/x", file("1")).unwrap();
        t.insert_p("/b/x/y", file("2")).unwrap();
        let err = merge_move(&mut t, "/a", "/b", Winner::Source, false).unwrap_err();
        assert!(
            err.to_string().contains("non-empty directory /b/x"),
            "{err}"
        );
    }
}
