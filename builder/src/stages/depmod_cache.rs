//! A cache for the kernel module indexes. depmod reads (and decompresses)
//! every module of the kernel, which costs seconds on every build; its output
//! depends only on the files under the module directory. So the indexes are
//! kept in the download cache, keyed by a digest of everything depmod can
//! read there: every non-directory entry's path, kind, mode, mtime and
//! content. A warm build whose kernel and module selection are unchanged
//! inserts the same bytes depmod would have written.
//!
//! Layout: `<cache>/depmod/<key>/` holds `index.json` (the file names, their
//! mtime and the report figures) and one file per index. A key directory is
//! written under a temporary name and renamed into place, so a reader never
//! sees half an entry.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use basalt_tree::{Content, Entry, Kind, Tree};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bump when the module index output changes for the same input, so that
/// old entries are never used again.
const FORMAT: &str = "basalt depmod cache 1";

/// What a cache entry records besides the index files themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    mtime: i64,
    modules: usize,
    files: Vec<String>,
}

/// The outcome of [`depmod`]: module and file counts, and whether the
/// indexes came from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub modules: usize,
    pub files: usize,
    pub cached: bool,
}

/// The SHA-256 (hex) of a file's content: a stored blob is named by it.
fn content_digest(c: &Content) -> Result<String> {
    if let Content::Stored { path, .. } = c
        && let Some(name) = path.file_name().and_then(|n| n.to_str())
        && name.len() == 64
        && name.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(name.to_string());
    }
    let bytes = c.read_all().context("reading module file")?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The cache key of the module directory `dir` of `tree`.
fn key(tree: &Tree, dir: &str, kver: &str) -> Result<String> {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update(u64::try_from(b.len()).unwrap_or(u64::MAX).to_le_bytes());
        h.update(b);
    };
    field(FORMAT.as_bytes());
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(kver.as_bytes());
    for (path, e) in tree.descendants(dir) {
        let (tag, detail) = match &e.kind {
            Kind::Dir => continue,
            Kind::File(c) => ("f", content_digest(c)?),
            Kind::Symlink(t) => ("l", t.clone()),
            Kind::HardLink(t) => ("h", t.clone()),
            other => ("o", format!("{other:?}")),
        };
        field(path.as_bytes());
        field(tag.as_bytes());
        field(detail.as_bytes());
        field(&e.mode.to_le_bytes());
        field(&e.mtime.to_le_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Insert a cached entry's files into `dir`; None when the entry is absent
/// or unreadable (then depmod runs and rewrites it).
fn load(tree: &mut Tree, dir: &str, entry: &Path) -> Option<Outcome> {
    let index: Index =
        serde_json::from_slice(&std::fs::read(entry.join("index.json")).ok()?).ok()?;
    let mut files = Vec::new();
    for name in &index.files {
        if name.contains('/') || name.starts_with('.') {
            return None;
        }
        files.push((name, std::fs::read(entry.join(name)).ok()?));
    }
    for (name, bytes) in files {
        let e = Entry::file(0o644, Content::from_bytes(bytes)).at(index.mtime);
        tree.insert(&format!("{dir}/{name}"), e).ok()?;
    }
    Some(Outcome {
        modules: index.modules,
        files: index.files.len(),
        cached: true,
    })
}

/// Write the indexes depmod just put into `dir` as a cache entry.
fn store(tree: &Tree, dir: &str, entry: &Path, index: &Index) -> Result<()> {
    let parent = entry.parent().context("cache entry has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".depmod-")
        .tempdir_in(parent)
        .context("creating a cache entry")?;
    for name in &index.files {
        let path = format!("{dir}/{name}");
        let bytes = match tree.get(&path).map(|e| &e.kind) {
            Some(Kind::File(c)) => c.read_all().with_context(|| format!("reading {path}"))?,
            _ => anyhow::bail!("depmod reported {path}, which is not a file"),
        };
        std::fs::write(tmp.path().join(name), bytes).context("writing a cache entry")?;
    }
    std::fs::write(tmp.path().join("index.json"), serde_json::to_vec(index)?)
        .context("writing a cache entry")?;
    let kept = tmp.keep();
    if let Err(e) = std::fs::rename(&kept, entry) {
        let _ = std::fs::remove_dir_all(&kept);
        // Another build stored the same entry first: theirs is as good.
        if !entry.join("index.json").exists() {
            return Err(e).with_context(|| format!("storing {}", entry.display()));
        }
    }
    Ok(())
}

/// Regenerate the module indexes of `kver` in `tree`, from the cache in
/// `cache_dir` when it holds them for exactly these modules.
pub fn depmod(tree: &mut Tree, kver: &str, cache_dir: Option<&Path>) -> Result<Outcome> {
    let dir = basalt_kmod::module_dir(tree, kver)?;
    let entry: Option<PathBuf> = match cache_dir {
        Some(c) => Some(c.join(key(tree, &dir, kver)?)),
        None => None,
    };
    if let Some(hit) = entry.as_deref().and_then(|e| load(tree, &dir, e)) {
        return Ok(hit);
    }
    let report = basalt_kmod::depmod(tree, kver)?;
    let mtime = report
        .files
        .first()
        .and_then(|n| tree.get(&format!("{dir}/{n}")))
        .map_or(0, |e| e.mtime);
    let index = Index {
        mtime,
        modules: report.modules,
        files: report.files.clone(),
    };
    if let Some(e) = &entry {
        // A cache that cannot be written only costs the next build time.
        if let Err(err) = store(tree, &dir, e, &index) {
            crate::log::detail(&format!("not caching the module indexes: {err:#}"));
        }
    }
    Ok(Outcome {
        modules: report.modules,
        files: report.files.len(),
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KVER: &str = "6.12.0-test";

    /// A module directory with one (not a real ELF) module and no indexes:
    /// enough to exercise the key, which never parses modules.
    fn tree_with(module: &[u8], mtime: i64) -> Tree {
        let mut t = Tree::new();
        let dir = format!("/usr/lib/modules/{KVER}/kernel");
        t.insert_p(
            &format!("{dir}/a.ko"),
            Entry::file(0o644, Content::from_bytes(module.to_vec())).at(mtime),
        )
        .expect("insert");
        t
    }

    #[test]
    fn key_follows_every_input() {
        let dir = format!("/usr/lib/modules/{KVER}");
        let base = key(&tree_with(b"one", 5), &dir, KVER).expect("key");
        let cases = [
            ("same input", tree_with(b"one", 5), KVER, true),
            ("content", tree_with(b"two", 5), KVER, false),
            ("mtime", tree_with(b"one", 6), KVER, false),
            ("kernel version", tree_with(b"one", 5), "6.12.1-test", false),
        ];
        for (what, t, kver, same) in cases {
            let k = key(&t, &dir, kver).expect("key");
            assert_eq!(k == base, same, "{what}");
        }
    }

    #[test]
    fn stored_entry_loads_the_same_files() {
        let cache = tempfile::tempdir().expect("tmp");
        let dir = format!("/usr/lib/modules/{KVER}");
        let mut src = tree_with(b"one", 5);
        for (name, body) in [("modules.dep", "a\n"), ("modules.alias", "x\n")] {
            src.insert(
                &format!("{dir}/{name}"),
                Entry::file(0o644, Content::from_bytes(body.as_bytes().to_vec())).at(9),
            )
            .expect("insert");
        }
        let index = Index {
            mtime: 9,
            modules: 1,
            files: vec!["modules.alias".into(), "modules.dep".into()],
        };
        let entry = cache.path().join("k");
        store(&src, &dir, &entry, &index).expect("store");
        let mut dst = tree_with(b"one", 5);
        let got = load(&mut dst, &dir, &entry).expect("hit");
        assert_eq!((got.modules, got.files, got.cached), (1, 2, true));
        for name in &index.files {
            let p = format!("{dir}/{name}");
            let (a, b) = (src.get(&p).expect("src"), dst.get(&p).expect("dst"));
            assert_eq!(a.mtime, b.mtime, "{name}");
            match (&a.kind, &b.kind) {
                (Kind::File(x), Kind::File(y)) => {
                    assert_eq!(x.read_all().ok(), y.read_all().ok(), "{name}")
                }
                _ => panic!("{name} is not a file"),
            }
        }
        // A damaged entry is a miss, never an error or a partial insert.
        std::fs::remove_file(entry.join("modules.dep")).expect("rm");
        let mut again = tree_with(b"one", 5);
        assert!(load(&mut again, &dir, &entry).is_none());
        assert!(again.get(&format!("{dir}/modules.alias")).is_none());
    }
}
