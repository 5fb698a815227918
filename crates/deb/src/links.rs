//! Path resolution through symlinked directories, and keeping hard links
//! valid when the file they point to goes away.

use std::collections::{BTreeMap, BTreeSet};

use basalt_tree::{Entry, Kind, Tree, parent};

/// Maximum number of symlinks followed while resolving one path (Linux's
/// MAXSYMLINKS).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Join a symlink target onto the directory holding the link, staying inside
/// the root (`..` at `/` stays at `/`, as the kernel does).
pub fn join_clamped(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(dir.split('/').filter(|c| !c.is_empty()));
    }
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        "/".to_string()
    } else {
        parts.iter().map(|c| format!("/{c}")).collect()
    }
}

/// Resolve every symlinked component of the normalised key `key` (but not
/// the last one when `follow_last` is false), the way the kernel resolves a
/// path. Components that do not exist are kept as they are. Returns `None`
/// when more than [`MAX_SYMLINK_HOPS`] links are followed.
pub fn resolve(tree: &Tree, key: &str, follow_last: bool) -> Option<String> {
    let mut todo: Vec<String> = key
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    todo.reverse();
    let mut cur = "/".to_string();
    let mut hops = 0;
    while let Some(comp) = todo.pop() {
        let next = if cur == "/" {
            format!("/{comp}")
        } else {
            format!("{cur}/{comp}")
        };
        let is_last = todo.is_empty();
        match tree.get(&next).map(|e| &e.kind) {
            Some(Kind::Symlink(t)) if follow_last || !is_last => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                let target = join_clamped(&cur, t);
                // Restart from the root with the target's components.
                let mut comps: Vec<String> = target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                comps.reverse();
                todo.extend(comps);
                cur = "/".to_string();
            }
            _ => cur = next,
        }
    }
    Some(cur)
}

/// Before the entries in `doomed` are removed or replaced, turn hard links
/// that survive (are not in `doomed`) but point into `doomed` into regular
/// files: the first such link (by path) takes the content and metadata of the
/// file, the others are pointed at it. Returns how many links were rewritten.
pub fn preserve_hard_links(tree: &mut Tree, doomed: &BTreeSet<String>) -> usize {
    if doomed.is_empty() {
        return 0;
    }
    let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, e) in tree.iter() {
        if let Kind::HardLink(t) = &e.kind
            && doomed.contains(t)
            && !doomed.contains(k)
            && !is_under_any(k, doomed)
        {
            by_target.entry(t.clone()).or_default().push(k.to_string());
        }
    }
    let mut changed = 0;
    for (target, links) in by_target {
        let Some(orig) = tree.get(&target).cloned() else {
            continue;
        };
        let Some((first, rest)) = links.split_first() else {
            continue;
        };
        let promoted = Entry { ..orig };
        if let Some(e) = tree.get_mut(first) {
            *e = promoted;
            changed += 1;
        }
        for l in rest {
            if let Some(e) = tree.get_mut(l) {
                e.kind = Kind::HardLink(first.clone());
                changed += 1;
            }
        }
    }
    changed
}

fn is_under_any(key: &str, doomed: &BTreeSet<String>) -> bool {
    let mut p = parent(key);
    while let Some(d) = p {
        if doomed.contains(d) {
            return true;
        }
        p = parent(d);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    #[test]
    fn join_table() {
        let cases = [
            ("/usr/lib", "x", "/usr/lib/x"),
            ("/usr/lib", "../bin", "/usr/bin"),
            ("/", "usr/bin", "/usr/bin"),
            ("/a", "../../../etc", "/etc"),
            ("/a/b", "/abs/./p", "/abs/p"),
        ];
        for (d, t, want) in cases {
            assert_eq!(join_clamped(d, t), want, "{d} + {t}");
        }
    }

    #[test]
    fn resolve_table() {
        let mut t = Tree::new();
        t.mkdir_p("/usr/bin", 0).unwrap();
        t.mkdir_p("/usr/lib/x86_64-linux-gnu", 0).unwrap();
        t.insert("/bin", Entry::symlink("usr/bin")).unwrap();
        t.insert("/lib64", Entry::symlink("/usr/lib")).unwrap();
        t.insert("/usr/lib/cur", Entry::symlink("x86_64-linux-gnu"))
            .unwrap();
        t.insert("/loop", Entry::symlink("loop")).unwrap();
        let cases = [
            ("/bin/ls", false, Some("/usr/bin/ls")),
            ("/bin", false, Some("/bin")),
            ("/bin", true, Some("/usr/bin")),
            (
                "/lib64/cur/libc.so",
                false,
                Some("/usr/lib/x86_64-linux-gnu/libc.so"),
            ),
            ("/nope/a/b", false, Some("/nope/a/b")),
            ("/loop/x", false, None),
        ];
        for (k, last, want) in cases {
            assert_eq!(resolve(&t, k, last).as_deref(), want, "{k}");
        }
    }

    #[test]
    fn hard_links_survive_removal() {
        let mut t = Tree::new();
        t.mkdir_p("/d", 0).unwrap();
        t.insert(
            "/d/a",
            Entry::file(0o755, Content::from_bytes(b"A".to_vec())).at(7),
        )
        .unwrap();
        let link = |to: &str| Entry {
            kind: Kind::HardLink(to.into()),
            ..Entry::dir(0o755)
        };
        t.insert("/d/b", link("/d/a")).unwrap();
        t.insert("/d/c", link("/d/a")).unwrap();
        let doomed: BTreeSet<String> = ["/d/a".to_string()].into();
        assert_eq!(preserve_hard_links(&mut t, &doomed), 2);
        t.remove("/d/a");
        assert_eq!(
            t.get("/d/b").unwrap().kind,
            Kind::File(Content::from_bytes(b"A".to_vec()))
        );
        assert_eq!(t.get("/d/b").unwrap().mtime, 7);
        assert_eq!(t.get("/d/c").unwrap().kind, Kind::HardLink("/d/b".into()));
        assert_eq!(t.validate(), Ok(()));
    }
}
