//! The tree: a sorted map from normalised path to entry.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::path::{PathError, file_name, normalize, parent};
use crate::{Entry, Kind};

/// Why an operation on the tree failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TreeError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("parent of {path} is a {kind}, not a directory")]
    ParentNotDir { path: String, kind: &'static str },
    #[error("parent directory of {0} does not exist")]
    NoParent(String),
    #[error("hard link {path} points to {target}, which is not a regular file in the tree")]
    BadHardLink { path: String, target: String },
    #[error("cannot replace directory {0} with a non-directory while it has contents")]
    NonEmptyDir(String),
}

/// A filesystem tree held in memory. The root `/` always exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// An empty tree: only a root directory, mode 0755, owned by root.
    pub fn new() -> Tree {
        let mut entries = BTreeMap::new();
        entries.insert("/".to_string(), Entry::dir(0o755));
        Tree { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.len() <= 1
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        let key = normalize(path).ok()?;
        self.entries.get(&key)
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Entry> {
        let key = normalize(path).ok()?;
        self.entries.get_mut(&key)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Insert or replace `path`. The parent must exist and be a directory.
    /// Replacing a directory by a directory keeps its contents; replacing a
    /// non-empty directory by anything else is an error.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), TreeError> {
        let key = normalize(path)?;
        if let Some(p) = parent(&key) {
            match self.entries.get(p) {
                None => return Err(TreeError::NoParent(key)),
                Some(e) if !e.is_dir() => {
                    return Err(TreeError::ParentNotDir {
                        path: key,
                        kind: e.kind.name(),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(old) = self.entries.get(&key)
            && old.is_dir()
            && !entry.is_dir()
            && self.has_children(&key)
        {
            return Err(TreeError::NonEmptyDir(key));
        }
        self.entries.insert(key, entry);
        Ok(())
    }

    /// Insert `entry`, creating missing parent directories (0755, root,
    /// with the entry's mtime) first.
    pub fn insert_p(&mut self, path: &str, entry: Entry) -> Result<(), TreeError> {
        let key = normalize(path)?;
        if let Some(p) = parent(&key) {
            let p = p.to_string();
            self.mkdir_p(&p, entry.mtime)?;
        }
        self.insert(&key, entry)
    }

    /// Create `path` and its missing ancestors as directories (0755, root).
    pub fn mkdir_p(&mut self, path: &str, mtime: i64) -> Result<(), TreeError> {
        let key = normalize(path)?;
        let mut cur = String::new();
        for comp in key.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            match self.entries.get(&cur) {
                Some(e) if e.is_dir() => {}
                Some(e) => {
                    return Err(TreeError::ParentNotDir {
                        path: key.clone(),
                        kind: e.kind.name(),
                    });
                }
                None => {
                    self.entries
                        .insert(cur.clone(), Entry::dir(0o755).at(mtime));
                }
            }
        }
        Ok(())
    }

    /// Remove `path` and, for a directory, everything under it. Returns the
    /// number of entries removed. The root itself is never removed.
    pub fn remove(&mut self, path: &str) -> usize {
        let Ok(key) = normalize(path) else { return 0 };
        let mut doomed: Vec<String> = self.descendants(&key).map(|(k, _)| k.to_string()).collect();
        if key != "/" && self.entries.contains_key(&key) {
            doomed.push(key);
        }
        for k in &doomed {
            self.entries.remove(k);
        }
        doomed.len()
    }

    /// Remove every entry for which `keep` returns false (never the root).
    /// Removing a directory removes its contents too.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Entry) -> bool) {
        let doomed: Vec<String> = self
            .entries
            .iter()
            .filter(|(k, e)| *k != "/" && !keep(k, e))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    /// Move `from` (and everything under it) to `to`. `to`'s parent must
    /// exist; an existing `to` is replaced.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), TreeError> {
        let from = normalize(from)?;
        let to = normalize(to)?;
        let mut moved: Vec<(String, Entry)> = Vec::new();
        if let Some(e) = self.entries.remove(&from) {
            moved.push((to.clone(), e));
        }
        let keys: Vec<String> = self
            .descendants(&from)
            .map(|(k, _)| k.to_string())
            .collect();
        for k in keys {
            if let Some(e) = self.entries.remove(&k) {
                moved.push((format!("{to}{}", &k[from.len()..]), e));
            }
        }
        for (k, e) in moved {
            self.remove(&k);
            self.insert_p(&k, e)?;
        }
        Ok(())
    }

    /// All entries in path order (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Entry)> {
        self.entries.iter_mut().map(|(k, e)| (k.as_str(), e))
    }

    /// Every entry strictly below `dir`.
    pub fn descendants<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let root = dir == "/";
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(move |(k, _)| !(root && k.as_str() == "/"))
            .map(|(k, e)| (k.as_str(), e))
    }

    fn has_children(&self, dir: &str) -> bool {
        self.descendants(dir).next().is_some()
    }

    /// Direct children of every directory, names sorted by bytes. Built in
    /// one pass; writers use it to lay out directories.
    pub fn children_index(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut idx: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, e) in self.iter() {
            if e.is_dir() {
                idx.entry(k).or_default();
            }
            if let Some(p) = parent(k) {
                idx.entry(p).or_default().push(file_name(k));
            }
        }
        for names in idx.values_mut() {
            names.sort_unstable();
        }
        idx
    }

    /// Check the invariants writers rely on: every hard link names a regular
    /// file of the tree.
    pub fn validate(&self) -> Result<(), TreeError> {
        for (k, e) in self.iter() {
            if let Kind::HardLink(t) = &e.kind {
                match self.entries.get(t.as_str()) {
                    Some(Entry {
                        kind: Kind::File(_),
                        ..
                    }) => {}
                    _ => {
                        return Err(TreeError::BadHardLink {
                            path: k.to_string(),
                            target: t.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Set every mtime later than `epoch` to `epoch` (SOURCE_DATE_EPOCH).
    pub fn clamp_mtimes(&mut self, epoch: i64) {
        for e in self.entries.values_mut() {
            if e.mtime > epoch {
                e.mtime = epoch;
            }
        }
    }

    /// A new tree rooted at `dir`: `dir/x` becomes `/x`, hard link targets
    /// are re-keyed, and `dir` itself becomes the root (keeping its mode,
    /// owner and time). Hard links to files outside `dir` are an error.
    pub fn subtree(&self, dir: &str) -> Result<Tree, TreeError> {
        let key = normalize(dir)?;
        let mut out = Tree::new();
        if let Some(root) = self.entries.get(&key) {
            out.entries.insert("/".to_string(), root.clone());
        }
        let strip = if key == "/" { 0 } else { key.len() };
        for (k, e) in self.descendants(&key) {
            let mut e = e.clone();
            if let Kind::HardLink(t) = &e.kind {
                if !t.starts_with(&format!("{key}/")) {
                    return Err(TreeError::BadHardLink {
                        path: k.to_string(),
                        target: t.clone(),
                    });
                }
                e.kind = Kind::HardLink(t[strip..].to_string());
            }
            out.entries.insert(k[strip..].to_string(), e);
        }
        Ok(out)
    }

    /// Sum of regular file sizes (hard links counted once).
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match &e.kind {
                Kind::File(c) => c.len(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Content;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert_p(
            "/usr/bin/ls",
            Entry::file(0o755, Content::from_bytes(b"elf".to_vec())),
        )
        .unwrap();
        t.insert_p(
            "/usr/bin-extra/x",
            Entry::file(0o644, Content::from_bytes(vec![])),
        )
        .unwrap();
        t.insert("/bin", Entry::symlink("usr/bin")).unwrap();
        t.insert("/usr/bin/dir", Entry::symlink("ls")).unwrap();
        t
    }

    #[test]
    fn iteration_puts_parents_first() {
        let t = sample();
        let keys: Vec<&str> = t.iter().map(|(k, _)| k).collect();
        for (i, k) in keys.iter().enumerate() {
            if let Some(p) = parent(k) {
                let pi = keys.iter().position(|x| x == &p).expect("parent present");
                assert!(pi < i, "{p} after {k}");
            }
        }
    }

    #[test]
    fn insert_errors_table() {
        let mut t = sample();
        let cases = [
            ("/nope/x", TreeError::NoParent("/nope/x".into())),
            (
                "/bin/x",
                TreeError::ParentNotDir {
                    path: "/bin/x".into(),
                    kind: "symlink",
                },
            ),
            ("/usr", TreeError::NonEmptyDir("/usr".into())),
        ];
        for (p, want) in cases {
            assert_eq!(t.insert(p, Entry::symlink("y")), Err(want), "{p}");
        }
    }

    #[test]
    fn children_and_descendants() {
        let t = sample();
        let idx = t.children_index();
        assert_eq!(idx["/"], vec!["bin", "usr"]);
        assert_eq!(idx["/usr"], vec!["bin", "bin-extra"]);
        assert_eq!(idx["/usr/bin"], vec!["dir", "ls"]);
        let d: Vec<&str> = t.descendants("/usr/bin").map(|(k, _)| k).collect();
        assert_eq!(d, vec!["/usr/bin/dir", "/usr/bin/ls"]);
        assert_eq!(t.descendants("/").count(), t.len() - 1);
    }

    #[test]
    fn remove_rename_and_validate() {
        let mut t = sample();
        t.insert(
            "/usr/bin/hl",
            Entry {
                kind: Kind::HardLink("/usr/bin/ls".into()),
                ..Entry::dir(0o755)
            },
        )
        .unwrap();
        assert_eq!(t.validate(), Ok(()));
        t.rename("/usr/bin-extra", "/opt/extra").unwrap();
        assert!(t.contains("/opt/extra/x"));
        assert!(!t.contains("/usr/bin-extra"));
        assert_eq!(t.remove("/usr/bin"), 4);
        assert!(t.contains("/usr"));
        t.insert(
            "/hl",
            Entry {
                kind: Kind::HardLink("/usr/bin/ls".into()),
                ..Entry::dir(0o755)
            },
        )
        .unwrap();
        assert!(t.validate().is_err());
    }

    #[test]
    fn subtree_rekeys() {
        let mut t = sample();
        t.insert(
            "/usr/bin/hl",
            Entry {
                kind: Kind::HardLink("/usr/bin/ls".into()),
                ..Entry::dir(0o755)
            },
        )
        .unwrap();
        let s = t.subtree("/usr").unwrap();
        assert!(s.contains("/bin/ls"));
        assert!(!s.contains("/usr"));
        assert_eq!(
            s.get("/bin/hl").unwrap().kind,
            Kind::HardLink("/bin/ls".into())
        );
        assert_eq!(s.validate(), Ok(()));
        t.insert(
            "/outside",
            Entry {
                kind: Kind::HardLink("/usr/bin/ls".into()),
                ..Entry::dir(0o755)
            },
        )
        .unwrap();
        t.insert(
            "/usr/in",
            Entry {
                kind: Kind::HardLink("/outside".into()),
                ..Entry::dir(0o755)
            },
        )
        .unwrap();
        assert!(t.subtree("/usr").is_err());
    }

    #[test]
    fn clamp() {
        let mut t = sample();
        t.get_mut("/usr/bin/ls").unwrap().mtime = 2_000_000_000;
        t.clamp_mtimes(1_700_000_000);
        assert!(t.iter().all(|(_, e)| e.mtime <= 1_700_000_000));
    }
}
