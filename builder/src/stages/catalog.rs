//! The journal's message catalog compiled at build time, and `/var/.updated`.
//! Debian's systemd ships the catalog sources
//! (`/usr/lib/systemd/catalog/*.catalog`) but no database, and the image
//! ships no /var, so at the first boot `ConditionNeedsUpdate=/var` is true
//! and `systemd-journal-catalog-update.service` (compiling the database) and
//! `systemd-update-done.service` run on the way to sshd. Here the tree's own
//! `journalctl --root=<staged root> --update-catalog` (rootless through the
//! tree's loader, `basalt_treeexec`) compiles the tree's sources into
//! `/var/lib/systemd/catalog/database`, and `/var/.updated` is written as
//! `systemd-update-done` does (ldcache.rs's format: `TIMESTAMP_NSEC=` of
//! /usr's mtime, which is SOURCE_DATE_EPOCH). Both go into the tree's /var,
//! which the disk and PXE outputs put on ROOT (output/split.rs). An A/B
//! update brings a /usr with a newer mtime, so the units rightly run again
//! after it.
//!
//! The compiler is fast (well under a second) and its output depends only
//! on the sources, so no cache is kept.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Kind, Tree};
use basalt_treeexec::{Staged, closure, treefs};

/// The compiler (package systemd).
pub const TOOL: &str = "/usr/bin/journalctl";
/// Source directories journalctl reads, lowest priority first.
const SOURCE_DIRS: &[&str] = &["/usr/lib/systemd/catalog", "/usr/local/lib/systemd/catalog"];
/// Where `journalctl --update-catalog` writes the database.
pub const DATABASE: &str = "/var/lib/systemd/catalog/database";
/// `/var/.updated`, for `ConditionNeedsUpdate=/var`.
pub const VAR_UPDATED: &str = "/var/.updated";

/// Catalog database header (systemd's `CatalogHeader`, little-endian):
/// signature[8], compatible_flags u32, incompatible_flags u32,
/// header_size u64, n_items u64, catalog_item_size u64.
pub const MAGIC: &[u8; 8] = b"RHHHKSLP";
const HEADER_SIZE_OFF: usize = 16;
const N_ITEMS_OFF: usize = 24;
const ITEM_SIZE_OFF: usize = 32;
const HEADER_LEN: usize = 40;

/// What [`compile`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing compiled; why.
    Skipped(String),
    Compiled {
        sources: usize,
        items: u64,
        bytes: usize,
    },
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Checks that `bytes` is a whole catalog database; returns its item count.
pub fn check_header(bytes: &[u8]) -> Result<u64> {
    if bytes.len() < HEADER_LEN {
        bail!(
            "the catalog database is {} bytes, shorter than its {HEADER_LEN}-byte header",
            bytes.len()
        );
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        bail!("the catalog database does not start with the signature {MAGIC:?}");
    }
    let header = le64(bytes, HEADER_SIZE_OFF);
    let items = le64(bytes, N_ITEMS_OFF);
    let item = le64(bytes, ITEM_SIZE_OFF);
    let need = items
        .checked_mul(item)
        .and_then(|n| n.checked_add(header))
        .context("the catalog database header's sizes overflow")?;
    let len = u64::try_from(bytes.len()).context("catalog database length")?;
    if header < u64::try_from(HEADER_LEN).unwrap_or(u64::MAX) || need > len {
        bail!(
            "the catalog database header says {items} items of {item} bytes after {header} \
             header bytes, but the file has {len} bytes"
        );
    }
    if items == 0 {
        bail!("the catalog database holds no entries");
    }
    Ok(items)
}

/// The catalog sources by directory: (directory, file name, content), the
/// `*.catalog` files directly in each directory of [`SOURCE_DIRS`]. A link
/// to /dev/null (a mask) becomes an empty file, which masks the same way.
fn sources(tree: &Tree) -> Result<Vec<(&'static str, String, Vec<u8>)>> {
    let idx = tree.children_index();
    let mut out = Vec::new();
    for dir in SOURCE_DIRS {
        let Some(names) = idx.get(*dir) else { continue };
        for name in names.iter().filter(|n| n.ends_with(".catalog")) {
            let path = format!("{dir}/{name}");
            let bytes = match tree.get(&path).map(|e| &e.kind) {
                Some(Kind::Symlink(t)) if t == "/dev/null" => Vec::new(),
                Some(Kind::Dir) => continue,
                _ => treefs::read_file(tree, &path).with_context(|| format!("reading {path}"))?,
            };
            out.push((*dir, name.to_string(), bytes));
        }
    }
    Ok(out)
}

/// Stages `sources` under `root`, runs `cmd` (a journalctl) there and
/// returns the database it wrote.
fn execute(mut cmd: Command, root: &Path, sources: &[(&str, String, Vec<u8>)]) -> Result<Vec<u8>> {
    let rel = |p: &str| root.join(p.trim_start_matches('/'));
    for (dir, name, bytes) in sources {
        let d = rel(dir);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let p = d.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    }
    super::rooted::run(
        cmd.arg("--update-catalog"),
        root,
        "journalctl --update-catalog",
    )?;
    let db = rel(DATABASE);
    let bytes = std::fs::read(&db)
        .with_context(|| format!("journalctl succeeded but wrote no {}", db.display()))?;
    check_header(&bytes).context("checking the catalog database journalctl wrote")?;
    Ok(bytes)
}

/// Compiles the tree's catalog into [`DATABASE`] and writes
/// [`VAR_UPDATED`] (both 0644 root, directories 0755, mtime `epoch`; /usr's
/// mtime becomes `epoch` as in ldcache.rs).
pub fn compile(tree: &mut Tree, epoch: i64) -> Result<Outcome> {
    if treefs::resolve(tree, TOOL).is_err() {
        return Ok(Outcome::Skipped(format!("no {TOOL} in the tree")));
    }
    let sources = sources(tree)?;
    if sources.iter().all(|(_, _, b)| b.is_empty()) {
        return Ok(Outcome::Skipped(format!(
            "no *.catalog files in {}",
            SOURCE_DIRS.join(" or ")
        )));
    }
    let tool = closure(tree, TOOL).context("finding journalctl's libraries in the tree")?;
    let staged = Staged::stage(&tool, "basalt-catalog-").context("staging journalctl")?;
    let root = staged.dir().join("root");
    let bytes = execute(staged.command(), &root, &sources)
        .context("compiling the journal catalog with the tree's journalctl")?;
    let items = check_header(&bytes)?;
    insert(tree, DATABASE, bytes.clone(), epoch)?;
    super::ldcache::write_updated(tree, VAR_UPDATED, "/var/", epoch)?;
    Ok(Outcome::Compiled {
        sources: sources.len(),
        items,
        bytes: bytes.len(),
    })
}

/// Inserts a 0644 root file at `path`, creating missing parents (0755).
fn insert(tree: &mut Tree, path: &str, bytes: Vec<u8>, epoch: i64) -> Result<()> {
    if tree.contains(path) {
        bail!("{path} already exists in the tree");
    }
    let mut cur = String::new();
    for part in path
        .trim_start_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .split_last()
        .map_or(&[][..], |(_, p)| p)
    {
        cur = format!("{cur}/{part}");
        match tree.get(&cur) {
            Some(e) if e.is_dir() => {}
            Some(e) => bail!("{cur} is a {}, not a directory", e.kind.name()),
            None => tree
                .insert(&cur, Entry::dir(0o755).at(epoch))
                .with_context(|| format!("creating {cur}"))?,
        }
    }
    tree.insert(
        path,
        Entry::file(0o644, Content::from_bytes(bytes)).at(epoch),
    )
    .with_context(|| format!("inserting {path}"))?;
    Ok(())
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
