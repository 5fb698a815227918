//! What the image's ldconfig finds in a tree (glibc elf/ldconfig.c): the
//! directories of `/etc/ld.so.conf` and then the built-in trusted ones, each
//! directory once (by identity after symlinks, the first name kept), and
//! in each the files that look like libraries.
//!
//! Per directory, as `search_dir` does: consider regular files, symlinks
//! and directories whose name matches `lib*.so*`, `ld-*.so*`, `ld.so.*` or
//! `ld64.so.*` (minus prelink, rpm and dpkg temporaries); a symlink must
//! resolve; the file must be a library ([`crate::elf::classify`]). Its
//! soname is DT_SONAME, or the file name without one. A symlink keeps its
//! own name as the soname when that is the soname or a `.so` prefix of it
//! (the `libfoo.so` development link), otherwise it counts like the file it
//! points to. Of several files with one soname, a regular file beats a
//! symlink, then the name that sorts last by `_dl_cache_libcmp`. Each
//! soname gives one entry: key the soname, value `<dir as configured>/<soname>`.

use std::cmp::Ordering;

use basalt_tree::{Entry, Kind, Tree};
use basalt_treeexec::treefs;

use crate::conf::{self, ConfDir};
use crate::elf;
use crate::error::{LdCacheError, Result};
use crate::libcmp::libcmp;
use crate::writer::CacheEntry;

/// ldconfig's configuration file.
pub const LD_SO_CONF: &str = "/etc/ld.so.conf";
/// The directories ldconfig always adds after its configuration: Debian
/// amd64's `SLIBDIR` and `LIBDIR` (x86-64's `add_system_dir` adds no
/// `lib64` variants for them, as neither ends in `/lib` or `/lib64`).
pub const SYSTEM_DIRS: &[&str] = &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];
/// `GLIBC_HWCAPS_SUBDIRECTORY`.
const GLIBC_HWCAPS: &str = "glibc-hwcaps";

/// The result of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Cache entries in the order ldconfig adds them.
    pub entries: Vec<CacheEntry>,
    /// The directories searched (as configured), in order.
    pub dirs: Vec<String>,
    /// Candidate files that are not libraries (path, why), for logging.
    pub skipped: Vec<(String, String)>,
    /// `<dir>/<soname>` paths that do not exist: ldconfig (without `-X`)
    /// would create these symlinks on the machine.
    pub missing_links: Vec<String>,
}

/// `_dl_is_dso` (elf/dl-is_dso.h).
pub fn is_dso_name(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

/// `skip_dso_based_on_name`: prelink, rpm and dpkg temporaries.
fn skip_by_name(name: &str) -> bool {
    let b = name.as_bytes();
    let prelink_tmp = b.len() >= 17 && b[b.len() - 17..].starts_with(b".#prelink#.");
    name.ends_with(".#prelink#")
        || prelink_tmp
        || name.contains(';')
        || name.ends_with(".dpkg-new")
        || name.ends_with(".dpkg-tmp")
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The regular file's entry behind `e` (itself, or a hard link's target).
fn file_content<'a>(tree: &'a Tree, e: &'a Entry) -> Option<&'a basalt_tree::Content> {
    match &e.kind {
        Kind::File(c) => Some(c),
        Kind::HardLink(t) => match tree.get(t).map(|e| &e.kind) {
            Some(Kind::File(c)) => Some(c),
            _ => None,
        },
        _ => None,
    }
}

/// One soname found in a directory (`struct dlib_entry`).
struct Dlib {
    name: String,
    soname: Vec<u8>,
    flags: i32,
    is_link: bool,
}

/// The directories ldconfig would search: configured ones, then
/// [`SYSTEM_DIRS`]; each existing one once, keyed by where it resolves.
fn search_list(tree: &Tree, conf: &str) -> Result<Vec<(String, String)>> {
    let mut dirs = conf::directories(tree, conf)?;
    dirs.extend(SYSTEM_DIRS.iter().map(|d| ConfDir {
        path: d.to_string(),
        from: "<builtin>".into(),
    }));
    let mut out: Vec<(String, String)> = Vec::new();
    for d in dirs {
        let abs = if d.path.starts_with('/') {
            d.path.clone()
        } else {
            format!("/{}", d.path)
        };
        let Ok(canon) = treefs::resolve(tree, &abs) else {
            continue;
        };
        if out.iter().any(|(_, c)| *c == canon) {
            continue;
        }
        check_no_hwcaps(tree, &canon)?;
        out.push((d.path, canon));
    }
    Ok(out)
}

/// glibc-hwcaps subdirectories get entries of their own (hwcap extension
/// indices, ISA levels) that this writer does not produce: refuse them.
fn check_no_hwcaps(tree: &Tree, canon: &str) -> Result<()> {
    let Ok(hw) = treefs::resolve(tree, &join(canon, GLIBC_HWCAPS)) else {
        return Ok(());
    };
    if !tree.get(&hw).is_some_and(Entry::is_dir) {
        return Ok(());
    }
    let prefix = format!("{hw}/");
    for (key, e) in tree.descendants(&hw) {
        let Some(name) = key.strip_prefix(&prefix) else {
            continue;
        };
        if name.contains('/') || name.starts_with('.') || name.contains(':') {
            continue;
        }
        if file_content(tree, e).is_some() {
            continue;
        }
        let sub = treefs::resolve(tree, key).ok();
        if sub.and_then(|s| tree.get(&s)).is_some_and(Entry::is_dir) {
            return Err(LdCacheError::Unsupported {
                path: key.to_string(),
                why: "glibc-hwcaps subdirectories are not supported by Basalt's ld.so.cache writer"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Scans `tree` as its ldconfig would with configuration file `conf`.
pub fn scan(tree: &Tree, conf: &str) -> Result<Scan> {
    let mut out = Scan::default();
    let children = tree.children_index();
    for (path, canon) in search_list(tree, conf)? {
        if !tree.get(&canon).is_some_and(Entry::is_dir) {
            continue;
        }
        out.dirs.push(path.clone());
        let names = children.get(canon.as_str()).cloned().unwrap_or_default();
        let mut dlibs: Vec<Dlib> = Vec::new();
        for name in names {
            let key = join(&canon, name);
            let Some(entry) = tree.get(&key) else {
                continue;
            };
            let (is_symlink, candidate) = match &entry.kind {
                Kind::Symlink(_) => (true, true),
                Kind::File(_) | Kind::HardLink(_) | Kind::Dir => (false, true),
                _ => (false, false),
            };
            if !candidate || !is_dso_name(name) || skip_by_name(name) {
                continue;
            }
            let shown = join(&path, name);
            let target = if is_symlink {
                match treefs::resolve(tree, &key).ok().and_then(|t| tree.get(&t)) {
                    Some(t) => t,
                    None => continue, // a dangling link: ldconfig skips it silently
                }
            } else {
                entry
            };
            let Some(content) = file_content(tree, target) else {
                continue;
            };
            let data = content.read_all().map_err(|source| LdCacheError::Read {
                path: key.clone(),
                source,
            })?;
            let Some(lib) = elf::classify(&data, name.as_bytes()) else {
                out.skipped
                    .push((shown, "not a library ldconfig accepts".into()));
                continue;
            };
            let soname = lib.soname.unwrap_or_else(|| name.as_bytes().to_vec());
            let mut is_link = is_symlink;
            if is_link && name.as_bytes() != soname.as_slice() {
                let dev_link = name.ends_with(".so") && soname.starts_with(name.as_bytes());
                if !dev_link {
                    is_link = false;
                }
            }
            let soname = if is_link {
                name.as_bytes().to_vec()
            } else {
                soname
            };
            if let Some(d) = dlibs.iter_mut().find(|d| d.soname == soname) {
                let newer = (!is_link && d.is_link)
                    || (is_link == d.is_link
                        && libcmp(d.name.as_bytes(), name.as_bytes()) == Ordering::Less);
                if newer {
                    d.name = name.to_string();
                    d.is_link = is_link;
                }
            } else {
                dlibs.push(Dlib {
                    name: name.to_string(),
                    soname,
                    flags: lib.flags,
                    is_link,
                });
            }
        }
        // ldconfig keeps its list newest-first.
        for d in dlibs.into_iter().rev() {
            let soname = String::from_utf8_lossy(&d.soname).into_owned();
            if !tree.contains(&join(&canon, &soname)) {
                out.missing_links.push(join(&path, &soname));
            }
            let mut value = path.as_bytes().to_vec();
            value.push(b'/');
            value.extend_from_slice(&d.soname);
            out.entries.push(CacheEntry {
                key: d.soname,
                value,
                flags: d.flags,
            });
        }
    }
    Ok(out)
}

/// The generator text the tree's ldconfig records in the caches it writes
/// (`"ldconfig " PKGVERSION RELEASE " release version " VERSION`, one
/// string in the program), found in the first of `candidates` that exists.
pub fn generator(tree: &Tree, candidates: &[&str]) -> Result<Option<Vec<u8>>> {
    const MARK: &[u8] = b" release version ";
    for c in candidates {
        let Ok(bytes) = treefs::read_file(tree, c) else {
            continue;
        };
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while let Some(p) = bytes[i..].windows(MARK.len()).position(|w| w == MARK) {
            let at = i + p;
            let start = bytes[..at]
                .iter()
                .rposition(|&b| b == 0)
                .map_or(0, |s| s + 1);
            let end = bytes[at..]
                .iter()
                .position(|&b| b == 0)
                .map_or(bytes.len(), |e| at + e);
            let s = &bytes[start..end];
            if s.starts_with(b"ldconfig ") && !found.iter().any(|f| f == s) {
                found.push(s.to_vec());
            }
            i = at + MARK.len();
        }
        return match found.len() {
            1 => Ok(found.pop()),
            n => Err(LdCacheError::Unsupported {
                path: c.to_string(),
                why: format!("found {n} ldconfig generator strings in the program, want exactly 1"),
            }),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_names() {
        let cases: &[(&str, bool, bool)] = &[
            // name, is_dso_name, skipped as a temporary
            ("libc.so.6", true, false),
            ("libz.so", true, false),
            ("ld-linux-x86-64.so.2", true, false),
            ("ld.so.1", true, false),
            ("ld64.so.2", true, false),
            ("libfoo.a", false, false),
            ("UTF-16.so", false, false),
            ("liba.so.1.dpkg-new", true, true),
            ("liba.so.1.dpkg-tmp", true, true),
            ("liba.so.1;5f3a", true, true),
            ("liba.so.1.#prelink#", true, true),
            ("liba.so.1.#prelink#.Ab12Cd", true, true),
            ("liba.so.1.#prelink#.x", true, false),
        ];
        for (name, dso, skip) in cases {
            assert_eq!(is_dso_name(name), *dso, "{name}");
            assert_eq!(skip_by_name(name), *skip, "{name}");
        }
    }
}
