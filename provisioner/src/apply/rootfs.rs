//! Contained filesystem operations under a root directory, with an undo log.
//!
//! Containment: every parent directory is opened with `openat2(...,
//! RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so symlinks (absolute or with
//! `..`) in existing components, or ones the config created, resolve inside
//! the root, as if the root were `/`. The last component is then handled
//! relative to that directory fd with no-follow semantics (O_NOFOLLOW, rename,
//! AT_SYMLINK_NOFOLLOW), so a symlink there is replaced, never followed.
//!
//! Atomicity: files are written to temp files next to their targets; `flush`
//! makes them durable with one syncfs (the batched form of fsync-per-file),
//! renames them into place and syncs again.
//! Every change is logged; `rollback` undoes them in reverse order and `commit`
//! drops the backups.

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Stat, chmodat, chownat, fchmod,
    fchown, fstat, linkat, mkdirat, openat, openat2, readlinkat, renameat, renameat_with, statat,
    symlinkat, syncfs, unlinkat,
};
use rustix::fs::{Gid, Uid};
use rustix::io::Errno;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    pub op: &'static str,
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

fn fe<'a>(op: &'static str, path: &'a str) -> impl FnOnce(Errno) -> FsError + 'a {
    move |e| FsError {
        op,
        path: path.to_string(),
        source: e.into(),
    }
}

/// What exists at a path (not following a final symlink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File { mode: u32, uid: u32, gid: u32 },
    Dir { mode: u32, uid: u32, gid: u32 },
    Symlink(String),
    Other,
}

enum Undo {
    Created {
        parent: String,
        name: String,
        dir: bool,
    },
    Replaced {
        parent: String,
        name: String,
        backup: String,
    },
    Attr {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// A file written to its temp name, renamed into place by `flush`.
struct Pending {
    path: String,
    tmp: String,
    mode: u32,
    uid: u32,
    gid: u32,
    live: bool,
}

pub struct Root {
    fd: OwnedFd,
    pub path: PathBuf,
    undo: Vec<Undo>,
    pending: Vec<Pending>,
    pending_idx: HashMap<String, usize>,
    /// Directories known to exist (created or checked in this run).
    known_dirs: HashSet<String>,
    /// Open (O_PATH) directories by path, so that a thousand files in one
    /// directory resolve it once. Cleared whenever a node is moved aside or
    /// restored, the only operations that can change what a path names.
    dir_cache: RefCell<HashMap<String, Rc<OwnedFd>>>,
    /// Directory paths that failed to resolve (ENOENT/ENOTDIR), so that a
    /// thousand planned files under a directory not created yet cost one
    /// lookup. Cleared whenever anything is created, moved or restored.
    missing_dirs: RefCell<HashMap<String, Errno>>,
}

/// Beyond this many cached directory fds the cache starts over (fd limits).
const DIR_CACHE_MAX: usize = 256;

/// Split "/a/b/c" into ("/a/b", "c").
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

fn mode(m: u32) -> Mode {
    Mode::from_raw_mode(m)
}

/// Whether a node just created (without special mode bits) still needs a
/// chown and a chmod to end up with `m`, `uid` and `gid`. Each is a
/// journaled inode update, so they are skipped when they would change
/// nothing (the umask left `m` intact, the owner is already right). The
/// chown comes first: it may clear set-id bits the chmod then sets.
fn fixups(st: &Stat, m: u32, uid: u32, gid: u32) -> (bool, bool) {
    needs(st.st_mode & 0o7777, st.st_uid, st.st_gid, m, uid, gid)
}

fn needs(have_mode: u32, have_uid: u32, have_gid: u32, m: u32, uid: u32, gid: u32) -> (bool, bool) {
    (have_uid != uid || have_gid != gid, have_mode != m & 0o7777)
}

fn ids(uid: u32, gid: u32) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, FsError> {
        let p = path.display().to_string();
        let fd = openat(
            rustix::fs::CWD,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(fe("opening root", &p))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            undo: Vec::new(),
            pending: Vec::new(),
            pending_idx: HashMap::new(),
            known_dirs: HashSet::new(),
            dir_cache: RefCell::new(HashMap::new()),
            missing_dirs: RefCell::new(HashMap::new()),
        })
    }

    /// Open a directory inside the root, resolving symlinks as if chrooted.
    /// Cached: see `dir_cache`; of the failures, only "not there" ones are
    /// remembered (`missing_dirs`) until the next change.
    fn dir(&self, path: &str) -> Result<Rc<OwnedFd>, FsError> {
        if let Some(fd) = self.dir_cache.borrow().get(path) {
            return Ok(Rc::clone(fd));
        }
        if let Some(e) = self.missing_dirs.borrow().get(path) {
            return Err(fe("opening directory", path)(*e));
        }
        let opened = openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        );
        let fd = match opened {
            Ok(fd) => Rc::new(fd),
            Err(e) => {
                if matches!(e, Errno::NOENT | Errno::NOTDIR) {
                    self.missing_dirs.borrow_mut().insert(path.to_string(), e);
                }
                return Err(fe("opening directory", path)(e));
            }
        };
        let mut cache = self.dir_cache.borrow_mut();
        if cache.len() >= DIR_CACHE_MAX {
            cache.clear();
        }
        cache.insert(path.to_string(), Rc::clone(&fd));
        Ok(fd)
    }

    /// Forget every cached directory (a path may now name something else).
    fn forget_dirs(&self) {
        self.dir_cache.borrow_mut().clear();
        self.created();
    }

    /// Something was created: a path that did not resolve may now.
    fn created(&self) {
        self.missing_dirs.borrow_mut().clear();
    }

    fn pending(&self, path: &str) -> Option<&Pending> {
        self.pending_idx
            .get(path)
            .map(|i| &self.pending[*i])
            .filter(|p| p.live)
    }

    /// Forget a pending write to `path` (its temp file is removed).
    fn drop_pending(&mut self, path: &str) -> Result<(), FsError> {
        if let Some(i) = self.pending_idx.remove(path) {
            if self.pending[i].live {
                self.pending[i].live = false;
                let (parent, _) = split(path);
                let d = self.dir(parent)?;
                let _ = unlinkat(&d, self.pending[i].tmp.as_str(), AtFlags::empty());
            }
        }
        Ok(())
    }

    /// lstat of `path`; None when absent. Parent components resolve in root.
    pub fn node(&self, path: &str) -> Result<Option<Node>, FsError> {
        if let Some(p) = self.pending(path) {
            return Ok(Some(Node::File {
                mode: p.mode,
                uid: p.uid,
                gid: p.gid,
            }));
        }
        let (parent, name) = split(path);
        let d = match self.dir(parent) {
            Ok(d) => d,
            Err(e) if matches!(e.source.raw_os_error(), Some(2 | 20)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match statat(&d, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(self.describe(&d, name, &st)?)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(fe("stat", path)(e)),
        }
    }

    fn describe(&self, d: &OwnedFd, name: &str, st: &Stat) -> Result<Node, FsError> {
        let m = st.st_mode & 0o7777;
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Node::File {
                mode: m,
                uid: st.st_uid,
                gid: st.st_gid,
            },
            FileType::Directory => Node::Dir {
                mode: m,
                uid: st.st_uid,
                gid: st.st_gid,
            },
            FileType::Symlink => {
                let t = readlinkat(d, name, Vec::new()).map_err(fe("readlink", name))?;
                Node::Symlink(t.to_string_lossy().into_owned())
            }
            _ => Node::Other,
        })
    }

    /// Sorted names in a directory (resolved inside the root); empty when absent.
    pub fn list(&self, path: &str) -> Result<Vec<String>, FsError> {
        let fd = match openat2(
            &self.fd,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Vec::new()),
            Err(e) => return Err(fe("opening directory", path)(e)),
        };
        let mut names = Vec::new();
        for ent in rustix::fs::Dir::read_from(&fd).map_err(fe("listing", path))? {
            let ent = ent.map_err(fe("listing", path))?;
            let n = ent.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Read a file (following symlinks inside the root); None when absent.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        let fd = if let Some(p) = self.pending(path) {
            let (parent, _) = split(path);
            let d = self.dir(parent)?;
            openat(
                &d,
                p.tmp.as_str(),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(fe("opening", path))?
        } else {
            match openat2(
                &self.fd,
                path,
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(fe("opening", path)(e)),
            }
        };
        let mut f = std::fs::File::from(fd);
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|source| FsError {
            op: "reading",
            path: path.to_string(),
            source,
        })?;
        Ok(Some(buf))
    }

    /// Create missing directories of `path` (itself included) with `mode`
    /// and owner; existing ones are left as they are.
    pub fn mkdir_p(&mut self, path: &str, m: u32, uid: u32, gid: u32) -> Result<(), FsError> {
        let mut cur = String::new();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let parent = if cur.is_empty() {
                "/".to_string()
            } else {
                cur.clone()
            };
            cur.push('/');
            cur.push_str(comp);
            if self.known_dirs.contains(&cur) {
                continue;
            }
            // Already a directory (symlinks resolved inside the root)?
            match self.dir(&cur) {
                Ok(_) => {
                    self.known_dirs.insert(cur.clone());
                    continue;
                }
                Err(e) if matches!(e.source.raw_os_error(), Some(2 | 20)) => {}
                Err(e) => return Err(e),
            }
            let d = self.dir(&parent)?;
            match statat(&d, comp, AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) => {}
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    return Err(FsError {
                        op: "creating directory",
                        path: cur,
                        source: std::io::Error::other(
                            "is a symlink whose target (inside the root) does not exist",
                        ),
                    });
                }
                Ok(_) => {
                    return Err(FsError {
                        op: "creating directory",
                        path: cur,
                        source: std::io::Error::other("exists and is not a directory"),
                    });
                }
                Err(e) => return Err(fe("stat", &cur)(e)),
            }
            mkdirat(&d, comp, mode(m & 0o777)).map_err(fe("creating directory", &cur))?;
            self.created();
            self.undo.push(Undo::Created {
                parent: parent.clone(),
                name: comp.to_string(),
                dir: true,
            });
            let st = statat(&d, comp, AtFlags::SYMLINK_NOFOLLOW).map_err(fe("stat", &cur))?;
            let (chown, chmod) = fixups(&st, m, uid, gid);
            if chown {
                let (u, g) = ids(uid, gid);
                chownat(&d, comp, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(fe("chown", &cur))?;
            }
            if chmod {
                chmodat(&d, comp, mode(m), AtFlags::empty()).map_err(fe("chmod", &cur))?;
            }
            self.known_dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Move an existing node at parent/name aside (for rollback).
    fn backup(&mut self, d: &OwnedFd, parent: &str, name: &str) -> Result<bool, FsError> {
        let backup = format!(".{name}.basalt-old");
        let full = format!("{parent}/{name}");
        match statat(d, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(fe("stat", &full)(e)),
            Ok(_) => {}
        }
        let full_norm = if parent == "/" {
            format!("/{name}")
        } else {
            full.clone()
        };
        self.known_dirs
            .retain(|k| !(k == &full_norm || k.starts_with(&format!("{full_norm}/"))));
        self.forget_dirs();
        remove_tree(d, &backup).map_err(fe("removing stale backup", &full))?;
        renameat(d, name, d, &backup).map_err(fe("moving aside", &full))?;
        self.undo.push(Undo::Replaced {
            parent: parent.to_string(),
            name: name.to_string(),
            backup,
        });
        Ok(true)
    }

    /// Write a regular file atomically: the data goes to a temp file next to
    /// `path` now; `flush` makes all temp files durable (syncfs) and renames
    /// them into place, replacing whatever node is at `path` (never following it).
    /// Until then `read` and `node` see the pending file.
    pub fn write_file(
        &mut self,
        path: &str,
        data: &[u8],
        m: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), FsError> {
        self.drop_pending(path)?;
        let (parent, name) = split(path);
        let d = self.dir(parent)?;
        let tmp = format!(".{name}.basalt-tmp");
        let create = || {
            openat(
                &d,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode(m & 0o777),
            )
        };
        // A temp file left by an interrupted run is replaced.
        let fd = match create() {
            Err(Errno::EXIST) => {
                unlinkat(&d, tmp.as_str(), AtFlags::empty())
                    .map_err(fe("removing stale temp file for", path))?;
                create()
            }
            r => r,
        }
        .map_err(fe("creating temp file for", path))?;
        let res = (|| {
            let st = fstat(&fd).map_err(fe("stat", path))?;
            let (chown, chmod) = fixups(&st, m, uid, gid);
            if chown {
                let (u, g) = ids(uid, gid);
                fchown(&fd, u, g).map_err(fe("chown", path))?;
            }
            if chmod {
                fchmod(&fd, mode(m)).map_err(fe("chmod", path))?;
            }
            let mut f = std::fs::File::from(fd);
            f.write_all(data).map_err(|source| FsError {
                op: "writing",
                path: path.to_string(),
                source,
            })?;
            Ok(())
        })();
        if let Err(e) = res {
            let _ = unlinkat(&d, tmp.as_str(), AtFlags::empty());
            return Err(e);
        }
        self.pending_idx
            .insert(path.to_string(), self.pending.len());
        self.pending.push(Pending {
            path: path.to_string(),
            tmp,
            mode: m,
            uid,
            gid,
            live: true,
        });
        Ok(())
    }

    /// Make every pending file durable (one syncfs), rename them into place in
    /// write order, and sync again. On error, call `rollback`.
    pub fn flush(&mut self) -> Result<(), FsError> {
        if self.pending.iter().all(|p| !p.live) {
            self.pending.clear();
            self.pending_idx.clear();
            return Ok(());
        }
        let rootp = self.path.display().to_string();
        let rw = openat(
            rustix::fs::CWD,
            &self.path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(fe("opening root", &rootp))?;
        syncfs(&rw).map_err(fe("syncing filesystem of", &rootp))?;
        self.created();
        let pending = std::mem::take(&mut self.pending);
        self.pending_idx.clear();
        let mut iter = pending.into_iter();
        while let Some(p) = iter.next() {
            if !p.live {
                continue;
            }
            let r = (|| {
                let (parent, name) = split(&p.path);
                let d = self.dir(parent)?;
                // Most targets are new: one rename that refuses to replace
                // anything both places the file and proves nothing was there.
                match renameat_with(&d, p.tmp.as_str(), &d, name, RenameFlags::NOREPLACE) {
                    Ok(()) => {
                        self.undo.push(Undo::Created {
                            parent: parent.to_string(),
                            name: name.to_string(),
                            dir: false,
                        });
                        return Ok(());
                    }
                    // Something is there (or the file system cannot say so
                    // atomically): move it aside for rollback, then replace.
                    Err(Errno::EXIST | Errno::INVAL) => {}
                    Err(e) => return Err(fe("renaming into place", &p.path)(e)),
                }
                let existed = self.backup(&d, parent, name)?;
                renameat(&d, p.tmp.as_str(), &d, name)
                    .map_err(fe("renaming into place", &p.path))?;
                if !existed {
                    self.undo.push(Undo::Created {
                        parent: parent.to_string(),
                        name: name.to_string(),
                        dir: false,
                    });
                }
                Ok(())
            })();
            if let Err(e) = r {
                // Put the rest back so rollback removes their temp files.
                self.pending.push(p);
                self.pending.extend(iter);
                return Err(e);
            }
        }
        syncfs(&rw).map_err(fe("syncing filesystem of", &rootp))?;
        Ok(())
    }

    /// Create (or replace) a symlink; the target is stored as given.
    pub fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        self.drop_pending(path)?;
        let (parent, name) = split(path);
        let d = self.dir(parent)?;
        let existed = self.backup(&d, parent, name)?;
        symlinkat(target, &d, name).map_err(fe("creating symlink", path))?;
        self.created();
        if !existed {
            self.undo.push(Undo::Created {
                parent: parent.to_string(),
                name: name.to_string(),
                dir: false,
            });
        }
        let (u, g) = ids(uid, gid);
        chownat(&d, name, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(fe("chown", path))?;
        Ok(())
    }

    /// Create (or replace) a hard link to `target` (a path inside the root).
    pub fn hardlink(&mut self, path: &str, target: &str) -> Result<(), FsError> {
        self.drop_pending(path)?;
        let (tp, tn) = split(target);
        let tn = self
            .pending(target)
            .map_or(tn.to_string(), |p| p.tmp.clone());
        let tn = tn.as_str();
        let td = self.dir(tp)?;
        let (parent, name) = split(path);
        let d = self.dir(parent)?;
        let existed = self.backup(&d, parent, name)?;
        linkat(&td, tn, &d, name, AtFlags::empty()).map_err(fe("creating hard link", path))?;
        self.created();
        if !existed {
            self.undo.push(Undo::Created {
                parent: parent.to_string(),
                name: name.to_string(),
                dir: false,
            });
        }
        Ok(())
    }

    /// Remove whatever is at `path` (moved aside until commit).
    pub fn remove(&mut self, path: &str) -> Result<(), FsError> {
        self.drop_pending(path)?;
        let (parent, name) = split(path);
        let d = self.dir(parent)?;
        self.backup(&d, parent, name)?;
        Ok(())
    }

    /// Set mode and owner of an existing node without following a final symlink.
    pub fn set_attr(&mut self, path: &str, m: u32, uid: u32, gid: u32) -> Result<(), FsError> {
        let (parent, name) = split(path);
        let d = self.dir(parent)?;
        let st = statat(&d, name, AtFlags::SYMLINK_NOFOLLOW).map_err(fe("stat", path))?;
        self.undo.push(Undo::Attr {
            path: path.to_string(),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        });
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            chmodat(&d, name, mode(m), AtFlags::empty()).map_err(fe("chmod", path))?;
        }
        let (u, g) = ids(uid, gid);
        chownat(&d, name, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(fe("chown", path))?;
        Ok(())
    }

    /// Keep every change: delete the backups.
    pub fn commit(mut self) -> Result<(), FsError> {
        self.flush()?;
        for u in std::mem::take(&mut self.undo) {
            if let Undo::Replaced { parent, backup, .. } = u {
                let d = self.dir(&parent)?;
                remove_tree(&d, &backup).map_err(fe("removing backup", &backup))?;
            }
        }
        Ok(())
    }

    /// Undo every change, newest first. Best effort; returns the first error.
    pub fn rollback(mut self) -> Result<(), FsError> {
        self.forget_dirs();
        let mut first = None;
        for p in std::mem::take(&mut self.pending) {
            if p.live {
                let (parent, _) = split(&p.path);
                if let Ok(d) = self.dir(parent) {
                    let _ = unlinkat(&d, p.tmp.as_str(), AtFlags::empty());
                }
            }
        }
        self.pending_idx.clear();
        for u in std::mem::take(&mut self.undo).into_iter().rev() {
            let r = (|| -> Result<(), FsError> {
                match u {
                    Undo::Created { parent, name, dir } => {
                        let d = self.dir(&parent)?;
                        let flags = if dir {
                            AtFlags::REMOVEDIR
                        } else {
                            AtFlags::empty()
                        };
                        unlinkat(&d, name.as_str(), flags).map_err(fe("undoing", &name))
                    }
                    Undo::Replaced {
                        parent,
                        name,
                        backup,
                    } => {
                        let d = self.dir(&parent)?;
                        remove_tree(&d, &name).map_err(fe("undoing", &name))?;
                        renameat(&d, backup.as_str(), &d, name.as_str())
                            .map_err(fe("restoring", &name))
                    }
                    Undo::Attr {
                        path,
                        mode: m,
                        uid,
                        gid,
                    } => {
                        let (parent, name) = split(&path);
                        let d = self.dir(parent)?;
                        let st = statat(&d, name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(fe("stat", &path))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                            chmodat(&d, name, mode(m), AtFlags::empty())
                                .map_err(fe("chmod", &path))?;
                        }
                        let (u, g) = ids(uid, gid);
                        chownat(&d, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(fe("chown", &path))
                    }
                }
            })();
            // Undoing moves and removes nodes: no cached directory is trusted.
            self.forget_dirs();
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Remove `name` under `d` recursively without following symlinks. Absent is fine.
fn remove_tree(d: &OwnedFd, name: &str) -> Result<(), Errno> {
    let st = match statat(d, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return unlinkat(d, name, AtFlags::empty());
    }
    let sub = openat(
        d,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for ent in rustix::fs::Dir::read_from(&sub)? {
        let ent = ent?;
        let n = ent.file_name().to_string_lossy().into_owned();
        if n != "." && n != ".." {
            names.push(n);
        }
    }
    for n in names {
        remove_tree(&sub, &n)?;
    }
    unlinkat(d, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
#[path = "rootfs_tests.rs"]
mod tests;
