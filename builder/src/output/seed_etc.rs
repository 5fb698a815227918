//! ROOT's /etc, written at build time from the factory defaults.
//!
//! /init copies every factory entry that is missing from /etc at each boot
//! (`provisioner/src/init/etc.rs`). Writing the same entries into ROOT when
//! the disk is built leaves that copy nothing to do on the first boot: under
//! QEMU TCG it took about half a second of /init (262 files read through
//! dm-verity, written, synced and renamed). The later boots, and a new
//! slot's new factory files after an update, still go through /init.
//!
//! The entries are what /init would have copied: directories, regular files
//! and symbolic links with their owner, mode and mtime. A hard link becomes
//! a copy of its target's contents (/init copies files one by one), and
//! device nodes and fifos are left out (/init skips them with a warning).

use anyhow::{Context, Result};
use basalt_tree::{Entry, Kind, Tree};

/// Where the factory defaults live, relative to /usr (the /usr tree's root).
pub const FACTORY_ETC_IN_USR: &str = "/share/factory/etc";

/// `root` with /etc filled from `usr`'s factory defaults (unchanged when
/// the /usr tree has none).
pub fn seed(root: &Tree, usr: &Tree) -> Result<Tree> {
    let factory = usr
        .subtree(FACTORY_ETC_IN_USR)
        .context("reading /usr/share/factory/etc")?;
    let mut out = root.clone();
    if factory.get("/").is_none() {
        return Ok(out);
    }
    for (k, e) in factory.iter() {
        let kind = match &e.kind {
            Kind::Dir | Kind::File(_) | Kind::Symlink(_) => e.kind.clone(),
            Kind::HardLink(target) => match factory.get(target).map(|t| &t.kind) {
                Some(Kind::File(c)) => Kind::File(c.clone()),
                _ => anyhow::bail!(
                    "/usr{FACTORY_ETC_IN_USR}{k} is a hard link to {target}, which is not a file there"
                ),
            },
            Kind::CharDevice { .. } | Kind::BlockDevice { .. } | Kind::Fifo => continue,
        };
        let path = if k == "/" {
            "/etc".to_string()
        } else {
            format!("/etc{k}")
        };
        out.insert(&path, Entry { kind, ..e.clone() })
            .with_context(|| format!("putting {path} on ROOT"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    fn file(data: &[u8]) -> Kind {
        Kind::File(Content::Inline(data.into()))
    }

    fn usr_with_factory() -> Tree {
        let mut usr = Tree::new();
        let dir = |t: &mut Tree, p: &str, mode| {
            t.insert_p(p, Entry::dir(mode).at(7)).unwrap();
        };
        dir(&mut usr, "/share/factory/etc", 0o755);
        dir(&mut usr, "/share/factory/etc/ssh", 0o700);
        let put = |t: &mut Tree, p: &str, kind: Kind, mode: u32, uid: u32| {
            let mut e = Entry::dir(mode).at(9);
            e.kind = kind;
            e.uid = uid;
            t.insert(p, e).unwrap();
        };
        put(
            &mut usr,
            "/share/factory/etc/passwd",
            file(b"root:x:0:0"),
            0o644,
            0,
        );
        put(&mut usr, "/share/factory/etc/ssh/key", file(b"k"), 0o600, 5);
        put(
            &mut usr,
            "/share/factory/etc/mtab",
            Kind::Symlink("../proc/self/mounts".into()),
            0o777,
            0,
        );
        put(
            &mut usr,
            "/share/factory/etc/alias",
            Kind::HardLink("/share/factory/etc/passwd".into()),
            0o644,
            0,
        );
        put(&mut usr, "/share/factory/etc/pipe", Kind::Fifo, 0o600, 0);
        usr
    }

    fn root_skeleton() -> Tree {
        let mut root = Tree::new();
        root.insert("/etc", Entry::dir(0o755).at(1)).unwrap();
        root.insert("/var", Entry::dir(0o755).at(1)).unwrap();
        root
    }

    #[test]
    fn etc_gets_what_init_would_copy() {
        let out = seed(&root_skeleton(), &usr_with_factory()).unwrap();
        for (path, want) in [
            ("/etc/passwd", Some(file(b"root:x:0:0"))),
            ("/etc/ssh/key", Some(file(b"k"))),
            (
                "/etc/mtab",
                Some(Kind::Symlink("../proc/self/mounts".into())),
            ),
            ("/etc/alias", Some(file(b"root:x:0:0"))),
            ("/etc/pipe", None),
            ("/var", Some(Kind::Dir)),
        ] {
            assert_eq!(out.get(path).map(|e| e.kind.clone()), want, "{path}");
        }
        let key = out.get("/etc/ssh/key").unwrap();
        assert_eq!((key.mode, key.uid, key.mtime), (0o600, 5, 9));
        let ssh = out.get("/etc/ssh").unwrap();
        assert_eq!((ssh.mode, ssh.mtime), (0o700, 7));
        assert_eq!(
            out.get("/etc").unwrap().mtime,
            7,
            "/etc takes the factory's metadata"
        );
        out.validate().unwrap();
    }

    #[test]
    fn no_factory_leaves_root_alone() {
        let root = root_skeleton();
        let out = seed(&root, &Tree::new()).unwrap();
        assert_eq!(out.len(), root.len());
    }
}
