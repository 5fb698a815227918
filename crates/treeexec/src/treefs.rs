//! Reading files out of a [`Tree`] the way the kernel would see them once the
//! tree is a root filesystem: symlinks (absolute or relative, in any component)
//! and hard links are followed.

use basalt_tree::{Entry, Kind, Tree, normalize, parent};

use crate::error::{ExecError, Result};

/// Most symlinks followed while resolving one path (Linux uses 40).
const MAX_SYMLINKS: usize = 40;

fn tree_err(path: &str, why: impl Into<String>) -> ExecError {
    ExecError::Tree {
        path: path.to_string(),
        why: why.into(),
    }
}

/// Resolves `path` to the key of a non-symlink entry.
pub fn resolve(tree: &Tree, path: &str) -> Result<String> {
    let start = normalize(path).map_err(|e| tree_err(path, e.to_string()))?;
    let mut pending: Vec<String> = start
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(String::from)
        .collect();
    let mut cur = String::from("/");
    let mut hops = 0;
    while let Some(comp) = pending.pop() {
        let next = if cur == "/" {
            format!("/{comp}")
        } else {
            format!("{cur}/{comp}")
        };
        let entry = tree
            .get(&next)
            .ok_or_else(|| tree_err(path, format!("{next} does not exist")))?;
        match &entry.kind {
            Kind::Symlink(target) => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(tree_err(path, "too many levels of symbolic links"));
                }
                let joined = if target.starts_with('/') {
                    target.clone()
                } else {
                    format!("{}/{target}", parent(&next).unwrap_or("/"))
                };
                let joined = normalize(&joined).map_err(|e| tree_err(path, e.to_string()))?;
                pending.extend(
                    joined
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(String::from),
                );
                cur = String::from("/");
            }
            _ => cur = next,
        }
        if !pending.is_empty() && !tree.get(&cur).is_some_and(Entry::is_dir) {
            return Err(tree_err(path, format!("{cur} is not a directory")));
        }
    }
    Ok(cur)
}

/// Contents of the regular file at `path` (after resolving links).
pub fn read_file(tree: &Tree, path: &str) -> Result<Vec<u8>> {
    let key = resolve(tree, path)?;
    let entry = tree.get(&key).ok_or_else(|| tree_err(path, "vanished"))?;
    let content = match &entry.kind {
        Kind::File(c) => c,
        Kind::HardLink(target) => match tree.get(target).map(|e| &e.kind) {
            Some(Kind::File(c)) => c,
            _ => {
                return Err(tree_err(
                    path,
                    format!("hard link to {target}, which is not a file"),
                ));
            }
        },
        other => {
            return Err(tree_err(
                path,
                format!("{key} is a {}, not a file", other.name()),
            ));
        }
    };
    content
        .read_all()
        .map_err(|e| tree_err(path, format!("reading content: {e}")))
}

/// Regular files directly inside directory `dir` (resolved), by name, sorted.
pub fn list_files(tree: &Tree, dir: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let key = resolve(tree, dir)?;
    if !tree.get(&key).is_some_and(Entry::is_dir) {
        return Err(tree_err(dir, "not a directory"));
    }
    let mut out = Vec::new();
    let prefix = if key == "/" {
        String::from("/")
    } else {
        format!("{key}/")
    };
    for (p, e) in tree.descendants(&key) {
        let Some(name) = p.strip_prefix(&prefix) else {
            continue;
        };
        if name.is_empty() || name.contains('/') {
            continue;
        }
        if matches!(e.kind, Kind::File(_) | Kind::HardLink(_)) {
            out.push((name.to_string(), read_file(tree, p)?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    fn tree() -> Tree {
        let mut t = Tree::new();
        let f = |s: &str| Entry::file(0o644, Content::from_bytes(s.as_bytes().to_vec()));
        t.insert_p("/usr/lib/x86_64-linux-gnu/libc.so.6", f("libc"))
            .unwrap();
        t.insert_p("/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.5", f("lzma"))
            .unwrap();
        t.insert_p(
            "/usr/lib/x86_64-linux-gnu/liblzma.so.5",
            Entry::symlink("liblzma.so.5.4.5"),
        )
        .unwrap();
        t.insert_p("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", f("ld"))
            .unwrap();
        t.insert("/lib", Entry::symlink("usr/lib")).unwrap();
        t.insert_p(
            "/usr/lib64/ld-linux-x86-64.so.2",
            Entry::symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        t.insert("/lib64", Entry::symlink("usr/lib64")).unwrap();
        t.insert_p("/loop1", Entry::symlink("loop2")).unwrap();
        t.insert_p("/loop2", Entry::symlink("loop1")).unwrap();
        let mut hl = f("");
        hl.kind = Kind::HardLink("/usr/lib/x86_64-linux-gnu/libc.so.6".into());
        t.insert_p("/usr/bin/hl", hl).unwrap();
        t
    }

    #[test]
    fn resolves_links() {
        let t = tree();
        let cases: &[(&str, std::result::Result<&str, &str>)] = &[
            (
                "/lib64/ld-linux-x86-64.so.2",
                Ok("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            ),
            (
                "/lib/x86_64-linux-gnu/liblzma.so.5",
                Ok("/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.5"),
            ),
            ("/usr/lib", Ok("/usr/lib")),
            ("/loop1", Err("too many levels")),
            ("/nope/x", Err("/nope does not exist")),
            (
                "/usr/lib/x86_64-linux-gnu/libc.so.6/x",
                Err("is not a directory"),
            ),
        ];
        for (p, want) in cases {
            match (resolve(&t, p), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{p}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{p}: {e}"),
                (got, _) => panic!("{p}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            read_file(&t, "/lib/x86_64-linux-gnu/liblzma.so.5").unwrap(),
            b"lzma"
        );
        assert_eq!(read_file(&t, "/usr/bin/hl").unwrap(), b"libc");
        assert!(
            read_file(&t, "/usr/lib")
                .unwrap_err()
                .to_string()
                .contains("is a directory")
        );
        let names: Vec<_> = list_files(&t, "/lib/x86_64-linux-gnu")
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            ["ld-linux-x86-64.so.2", "libc.so.6", "liblzma.so.5.4.5"]
        );
    }
}
