//! Overlay directories, copied into the tree after everything the packages
//! and the earlier steps made, so their files win.
//!
//! - Regular files, directories and symlinks are copied (other file types
//!   are an error). Names must be UTF-8.
//! - A file ending in `.j2` is a minijinja template: it is rendered with the
//!   profile's template variables in strict mode (an undefined variable is an
//!   error naming the file) and stored without the suffix.
//! - Ownership is root:root. Modes do not come from the host (a checkout's
//!   umask would make builds differ): files are 0755 when any execute bit is
//!   set on the host and 0644 otherwise, directories 0755, symlinks 0777.
//! - An optional `.basalt-meta` file at the overlay's top (not copied)
//!   overrides that, one entry a line: `<image path> <mode> <uid> <gid>`,
//!   mode in octal and `-` for "unchanged"; `#` starts a comment. Each line
//!   must name a path the overlay provides.
//! - Paths below symlinked directories of the tree (/lib → usr/lib) land at
//!   the resolved place; a directory over an existing directory (or a
//!   symlink to one) keeps the existing entry.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use basalt_deb::{preserve_hard_links, resolve};
use basalt_tree::{ContentStore, Entry, Kind, Tree, normalize, parent};
use minijinja::{Environment, UndefinedBehavior};

pub const META_FILE: &str = ".basalt-meta";
pub const TEMPLATE_SUFFIX: &str = ".j2";

#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn parse_meta(path: &Path) -> Result<BTreeMap<String, Meta>> {
    let mut out = BTreeMap::new();
    if !path.exists() {
        return Ok(out);
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let [p, mode, uid, gid] = f[..] else {
            bail!(
                "{}: expected '<path> <mode> <uid> <gid>', found {line:?}",
                at()
            )
        };
        let num = |s: &str, radix: u32, what: &str| -> Result<Option<u32>> {
            if s == "-" {
                return Ok(None);
            }
            u32::from_str_radix(s, radix)
                .map(Some)
                .with_context(|| format!("{}: {what} {s:?} is not a number", at()))
        };
        let mode = num(mode, 8, "mode")?;
        if mode.is_some_and(|m| m > 0o7777) {
            bail!("{}: mode {mode:?} has more than permission bits", at());
        }
        let key = normalize(p).with_context(at)?;
        out.insert(
            key,
            Meta {
                mode,
                uid: num(uid, 10, "uid")?,
                gid: num(gid, 10, "gid")?,
            },
        );
    }
    Ok(out)
}

/// Copy every overlay into the tree; returns the number of files copied.
pub fn apply(
    tree: &mut Tree,
    overlays: &[std::path::PathBuf],
    vars: &serde_json::Value,
    store: &ContentStore,
    epoch: i64,
) -> Result<usize> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let mut files = 0;
    for root in overlays {
        if !root.is_dir() {
            bail!("overlay {} is not a directory", root.display());
        }
        let mut meta = parse_meta(&root.join(META_FILE))?;
        let mut items: Vec<(String, std::path::PathBuf)> = Vec::new();
        walk(root, root, &mut items)?;
        for (rel, host) in items {
            let ft = fs::symlink_metadata(&host)
                .with_context(|| format!("reading {}", host.display()))?;
            let mut key = normalize(&format!("/{rel}"))?;
            let kind = if ft.file_type().is_symlink() {
                let t = fs::read_link(&host)
                    .with_context(|| format!("reading link {}", host.display()))?;
                let t = t
                    .to_str()
                    .with_context(|| format!("link target of {} is not UTF-8", host.display()))?;
                Kind::Symlink(t.to_string())
            } else if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                if let Some(stripped) = key.strip_suffix(TEMPLATE_SUFFIX) {
                    let src = fs::read_to_string(&host)
                        .with_context(|| format!("reading template {}", host.display()))?;
                    let name = host.display().to_string();
                    let out = env.render_named_str(&name, &src, vars).map_err(|e| {
                        let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
                        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
                        anyhow::anyhow!("rendering template {name}{line}: {}{detail}", e.kind())
                    })?;
                    key = stripped.to_string();
                    Kind::File(
                        store
                            .put_bytes(out.as_bytes())
                            .context("storing a rendered template")?,
                    )
                } else {
                    let mut f = fs::File::open(&host)
                        .with_context(|| format!("reading {}", host.display()))?;
                    Kind::File(
                        store
                            .ingest(&mut f, ft.len())
                            .with_context(|| format!("reading {}", host.display()))?,
                    )
                }
            } else {
                bail!(
                    "overlay file {} is not a regular file, directory or symlink",
                    host.display()
                );
            };
            let mode = match &kind {
                Kind::Symlink(_) => 0o777,
                Kind::File(_) if ft.permissions().mode() & 0o111 != 0 => 0o755,
                Kind::File(_) => 0o644,
                _ => 0o755,
            };
            let mut entry = Entry {
                kind,
                mode,
                uid: 0,
                gid: 0,
                mtime: epoch,
                xattrs: BTreeMap::new(),
            };
            let m = meta.remove(&key).unwrap_or_default();
            entry.mode = m.mode.unwrap_or(entry.mode);
            entry.uid = m.uid.unwrap_or(entry.uid);
            entry.gid = m.gid.unwrap_or(entry.gid);
            if matches!(entry.kind, Kind::File(_)) {
                files += 1;
            }
            place(tree, &key, entry, m)
                .with_context(|| format!("copying overlay file {}", host.display()))?;
        }
        if let Some(p) = meta.keys().next() {
            bail!(
                "{}: {p} names nothing in the overlay",
                root.join(META_FILE).display()
            );
        }
    }
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) -> Result<()> {
    let mut names: Vec<(String, std::path::PathBuf)> = Vec::new();
    for ent in
        fs::read_dir(dir).with_context(|| format!("reading overlay directory {}", dir.display()))?
    {
        let ent = ent.with_context(|| format!("reading overlay directory {}", dir.display()))?;
        let name = ent
            .file_name()
            .into_string()
            .map_err(|n| anyhow::anyhow!("overlay name {n:?} in {} is not UTF-8", dir.display()))?;
        if dir == root && name == META_FILE {
            continue;
        }
        names.push((name, ent.path()));
    }
    names.sort();
    for (_, p) in names {
        let rel = p
            .strip_prefix(root)
            .context("overlay path outside its root")?
            .to_str()
            .context("overlay path is not UTF-8")?
            .to_string();
        out.push((rel, p.clone()));
        if fs::symlink_metadata(&p)?.is_dir() {
            walk(root, &p, out)?;
        }
    }
    Ok(())
}

fn place(tree: &mut Tree, key: &str, entry: Entry, meta: Meta) -> Result<()> {
    let real = resolve(tree, key, false).context("too many levels of symlinks")?;
    if entry.is_dir() {
        let target = resolve(tree, &real, true).unwrap_or(real.clone());
        if let Some(existing) = tree.get_mut(&target)
            && existing.is_dir()
        {
            // An existing directory keeps its metadata unless .basalt-meta says otherwise.
            existing.mode = meta.mode.unwrap_or(existing.mode);
            existing.uid = meta.uid.unwrap_or(existing.uid);
            existing.gid = meta.gid.unwrap_or(existing.gid);
            return Ok(());
        }
    }
    if let Some(old) = tree.get(&real) {
        if old.is_dir() && !entry.is_dir() && tree.descendants(&real).next().is_some() {
            bail!(
                "{real} is a non-empty directory in the tree; an overlay cannot replace it with a {}",
                entry.kind.name()
            );
        }
        if matches!(old.kind, Kind::File(_)) {
            preserve_hard_links(tree, &[real.clone()].into());
        }
    }
    if let Some(p) = parent(&real) {
        tree.mkdir_p(p, entry.mtime)?;
    }
    tree.insert(&real, entry)?;
    Ok(())
}
