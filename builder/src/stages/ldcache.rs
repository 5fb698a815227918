//! The dynamic linker's cache, `/etc/ld.so.cache`, made at build time.
//! Debian images get it from dpkg's triggers; without it systemd's
//! `ldconfig.service` (`ConditionNeedsUpdate=|/etc`,
//! `ConditionFileNotEmpty=|!/etc/ld.so.cache`, before sysinit.target)
//! rebuilds it at the first boot, over a minute under QEMU TCG.
//!
//! `basalt_ldcache` scans the tree as the image's ldconfig would (its
//! ld.so.conf, includes, the trusted directories) and writes the cache byte
//! for byte as that ldconfig does, naming the generator the tree's ldconfig
//! names. Beside it goes `/etc/.updated` as `systemd-update-done` writes it
//! (a comment and `TIMESTAMP_NSEC=`, mtime = /usr's mtime, which is set to
//! SOURCE_DATE_EPOCH so that every newer image bumps it), which makes
//! `ConditionNeedsUpdate=/etc` false until an update brings a newer /usr,
//! when ldconfig then rightly refreshes the cache.
//!
//! `/etc/.updated` also turns off `systemd-sysusers.service`
//! (`ConditionNeedsUpdate=|/etc`), which would create the packages' system
//! users (sysusers.d) at the first boot. The sysusers stage (sysusers.rs)
//! has created them in the factory passwd/group by now; should a user, group
//! or membership the tree's sysusers.d declares still be missing there, this
//! stage fails rather than ship an image whose boot skips creating it.
//!
//! By now the assembly has moved /etc to the factory copy
//! (`/usr/share/factory/etc`, seeded into the machine's /etc by the
//! initramfs, mtimes kept); both files go where ld.so.conf is. While
//! scanning, `/etc` is a temporary symlink to the factory copy, so the
//! configuration's absolute `/etc/...` includes resolve as on the machine.

use anyhow::{Context, Result, bail};
use basalt_ldcache::scan::{LD_SO_CONF, generator};
use basalt_ldcache::{scan, write_cache};
use basalt_tree::{Content, ContentStore, Entry, Tree};

use crate::assemble::factory_etc::FACTORY_ETC;

/// Where the image's ldconfig may live (trixie: /usr/sbin, merged /usr).
const LDCONFIG: &[&str] = &["/usr/sbin/ldconfig", "/sbin/ldconfig"];
const CACHE_NAME: &str = "ld.so.cache";
const UPDATED_NAME: &str = ".updated";
/// What [`write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing written; why.
    Skipped(String),
    Written {
        /// The directory the files went to (`/etc` or the factory copy).
        etc: String,
        entries: usize,
        bytes: usize,
        dirs: Vec<String>,
        /// mtime of /usr recorded in `.updated`.
        usr_mtime: i64,
    },
}

/// The directory holding ld.so.conf: `/etc`, or the factory copy once the
/// assembly has moved /etc there.
fn etc_dir(tree: &Tree) -> Option<&'static str> {
    ["/etc", FACTORY_ETC]
        .into_iter()
        .find(|d| tree.contains(&format!("{d}/ld.so.conf")))
}

/// `<dir>.updated` as systemd-update-done writes it for `dir` (`/etc/` or
/// `/var/`).
fn updated_text(dir: &str, usr_mtime: i64) -> Result<String> {
    let nsec = i128::from(usr_mtime) * 1_000_000_000;
    if nsec < 0 {
        bail!("/usr has a negative mtime ({usr_mtime})");
    }
    Ok(format!(
        "# This file was created by systemd-update-done. The timestamp below is the\n\
         # modification time of /usr/ for which the most recent updates of {dir} have\n\
         # been applied. See man:systemd-update-done.service(8) for details.\n\
         TIMESTAMP_NSEC={nsec}\n"
    ))
}

/// Scans with `/etc` pointing at `etc` when that is the factory copy.
fn scan_at(tree: &mut Tree, etc: &str) -> Result<basalt_ldcache::Scan> {
    if etc == "/etc" {
        return scan(tree, LD_SO_CONF).context("scanning the tree like ldconfig");
    }
    if tree.contains("/etc") {
        bail!("both /etc and {etc} exist, but only {etc} has ld.so.conf");
    }
    let rel = etc.trim_start_matches('/');
    tree.insert("/etc", Entry::symlink(rel))
        .context("linking /etc to the factory copy for the scan")?;
    let r = scan(tree, LD_SO_CONF);
    tree.remove("/etc");
    r.context("scanning the tree like ldconfig")
}

/// Writes `<etc>/ld.so.cache` and `<etc>/.updated` (0644, root), or says
/// why not.
pub fn write(tree: &mut Tree, content: &ContentStore, epoch: i64) -> Result<Outcome> {
    let Some(etc) = etc_dir(tree) else {
        return Ok(Outcome::Skipped(format!(
            "no ld.so.conf in /etc or {FACTORY_ETC} (no glibc)"
        )));
    };
    let Some(gen_text) = generator(tree, LDCONFIG).context("reading the tree's ldconfig")? else {
        return Ok(Outcome::Skipped(format!(
            "no ldconfig in the tree ({})",
            LDCONFIG.join(", ")
        )));
    };
    let found = scan_at(tree, etc)?;
    for p in &found.missing_links {
        crate::log::warn(&format!(
            "ld.so.cache: {p} does not exist (ldconfig would create this soname link)"
        ));
    }
    if !found.skipped.is_empty() {
        crate::log::detail(&format!(
            "ld.so.cache: {} library-named files are not libraries ldconfig caches (e.g. {})",
            found.skipped.len(),
            found.skipped[0].0
        ));
    }
    let bytes = write_cache(&found.entries, &gen_text).context("writing ld.so.cache")?;
    let cache_path = format!("{etc}/{CACHE_NAME}");
    if tree.contains(&cache_path) {
        crate::log::detail(&format!("ld.so.cache: replacing {cache_path}"));
    }
    let stored = content
        .put_bytes(&bytes)
        .context("storing ld.so.cache in the content store")?;
    tree.insert_p(&cache_path, Entry::file(0o644, stored).at(epoch))
        .with_context(|| format!("inserting {cache_path}"))?;
    let pending = super::sysusers::pending(tree, etc)?;
    if !pending.is_empty() {
        if tree.contains(super::sysusers::UNIT) {
            bail!(
                "{etc}/{UPDATED_NAME} would skip systemd-sysusers at the first boot, but \
                 sysusers.d declares accounts missing from {etc}/passwd and group: {}",
                pending.join(", ")
            );
        }
        crate::log::warn(&format!(
            "sysusers.d declares accounts missing from {etc}/passwd and group, and no unit \
             creates them: {}",
            pending.join(", ")
        ));
    }
    let usr_mtime = write_updated(tree, &format!("{etc}/{UPDATED_NAME}"), "/etc/", epoch)?;
    Ok(Outcome::Written {
        etc: etc.to_string(),
        entries: found.entries.len(),
        bytes: bytes.len(),
        dirs: found.dirs,
        usr_mtime,
    })
}

/// Sets /usr's mtime to `epoch` and writes `path` (an `.updated` file for
/// the directory `dir` names, `/etc/` or `/var/`) for it, 0644 root, mtime
/// `epoch`; parent directories must exist.
///
/// systemd's contract (systemd-update-done.service(8)): an update of /usr
/// must also bump /usr's mtime, which is how `ConditionNeedsUpdate=` sees
/// it. Left alone, /usr keeps the time some package's archive gave it,
/// which need not change from one image to the next; SOURCE_DATE_EPOCH
/// (by default the archive's release date) does whenever the packages do.
pub(crate) fn write_updated(tree: &mut Tree, path: &str, dir: &str, epoch: i64) -> Result<i64> {
    let usr = tree
        .get_mut("/usr")
        .filter(|e| e.is_dir())
        .context("the tree has no /usr directory")?;
    usr.mtime = epoch;
    let usr_mtime = epoch;
    let updated = path;
    tree.insert_p(
        updated,
        Entry::file(
            0o644,
            Content::from_bytes(updated_text(dir, usr_mtime)?.into_bytes()),
        )
        .at(usr_mtime),
    )
    .with_context(|| format!("inserting {updated}"))?;
    Ok(usr_mtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_ldcache::fixture::synth_lib;

    fn file(t: &mut Tree, p: &str, body: &[u8]) {
        t.insert_p(p, Entry::file(0o644, Content::from_bytes(body.to_vec())))
            .unwrap();
    }

    /// A factory-/etc tree like the assembly leaves: merged /usr, a library,
    /// the configuration in the factory copy, and an ldconfig program.
    fn image_tree(etc: &str) -> Tree {
        let mut t = Tree::new();
        t.insert("/", Entry::dir(0o755)).unwrap();
        t.insert_p("/usr/lib/x86_64-linux-gnu", Entry::dir(0o755).at(50))
            .unwrap();
        t.get_mut("/usr").unwrap().mtime = 500;
        t.insert("/lib", Entry::symlink("usr/lib")).unwrap();
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/libq.so.1.0",
            &synth_lib(Some("libq.so.1")),
        );
        t.insert(
            "/usr/lib/x86_64-linux-gnu/libq.so.1",
            Entry::symlink("libq.so.1.0"),
        )
        .unwrap();
        file(&mut t, "/opt/x/libo.so.2", &synth_lib(Some("libo.so.2")));
        file(
            &mut t,
            &format!("{etc}/ld.so.conf"),
            b"include /etc/ld.so.conf.d/*.conf\n",
        );
        file(&mut t, &format!("{etc}/ld.so.conf.d/x.conf"), b"/opt/x\n");
        file(
            &mut t,
            "/usr/sbin/ldconfig",
            b"\x7fELF...\0ldconfig (Test GLIBC 9.9) stable release version 9.9\0...",
        );
        t
    }

    fn read(t: &Tree, p: &str) -> Vec<u8> {
        match &t.get(p).unwrap().kind {
            basalt_tree::Kind::File(c) => c.read_all().unwrap(),
            k => panic!("{p}: {k:?}"),
        }
    }

    #[test]
    fn ldcache_written_where_ld_so_conf_is() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::new(tmp.path().join("s")).unwrap();
        for etc in [FACTORY_ETC, "/etc"] {
            let mut t = image_tree(etc);
            let out = write(&mut t, &store, 1000).unwrap();
            let Outcome::Written {
                etc: at,
                entries,
                dirs,
                usr_mtime,
                ..
            } = out
            else {
                panic!("{out:?}");
            };
            assert_eq!(at, etc);
            assert_eq!(entries, 2);
            assert_eq!(dirs, ["/opt/x", "/lib/x86_64-linux-gnu"]);
            assert_eq!(usr_mtime, 1000);
            assert_eq!(t.get("/usr").unwrap().mtime, 1000);
            // The temporary /etc link is gone again.
            assert_eq!(t.contains("/etc"), etc == "/etc");
            let cache = read(&t, &format!("{etc}/ld.so.cache"));
            assert!(cache.starts_with(b"glibc-ld.so.cache1.1"));
            assert!(cache.ends_with(b"ldconfig (Test GLIBC 9.9) stable release version 9.9"));
            let e = t.get(&format!("{etc}/ld.so.cache")).unwrap();
            assert_eq!((e.mode, e.uid, e.gid, e.mtime), (0o644, 0, 0, 1000));
            let u = t.get(&format!("{etc}/.updated")).unwrap();
            assert_eq!(u.mtime, 1000);
            let text = String::from_utf8(read(&t, &format!("{etc}/.updated"))).unwrap();
            assert!(text.ends_with("\nTIMESTAMP_NSEC=1000000000000\n"), "{text}");
        }
    }

    #[test]
    fn ldcache_refuses_when_sysusers_has_work() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::new(tmp.path().join("s")).unwrap();
        let etc = FACTORY_ETC;
        let unit = super::super::sysusers::UNIT;
        let sysusers =
            "u systemd-network - \"systemd Network Management\"\nm alice systemd-network\n";
        let passwd_ok = "root:x:0:0::/root:/bin/sh\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n\
                         alice:x:1000:1000::/home/alice:/bin/sh\n";
        let group_ok = "root:x:0:\nsystemd-network:x:998:alice\n";
        // (what, passwd, has the unit, error wanted)
        let cases: &[(&str, &str, bool, Option<&str>)] = &[
            ("all present", passwd_ok, true, None),
            (
                "user missing",
                "root:x:0:0::/root:/bin/sh\n",
                true,
                Some(
                    "accounts missing from /usr/share/factory/etc/passwd and group: u systemd-network (systemd.conf)",
                ),
            ),
            (
                "user missing, no unit",
                "root:x:0:0::/root:/bin/sh\n",
                false,
                None,
            ),
        ];
        for (what, passwd, has_unit, want) in cases {
            let mut t = image_tree(etc);
            if *has_unit {
                file(&mut t, unit, b"[Unit]\nConditionNeedsUpdate=|/etc\n");
            }
            file(
                &mut t,
                "/usr/lib/sysusers.d/systemd.conf",
                sysusers.as_bytes(),
            );
            file(&mut t, &format!("{etc}/passwd"), passwd.as_bytes());
            file(&mut t, &format!("{etc}/group"), group_ok.as_bytes());
            match (write(&mut t, &store, 1000), want) {
                (Ok(Outcome::Written { usr_mtime, .. }), None) => {
                    assert_eq!(usr_mtime, 1000, "{what}");
                    assert!(t.contains(&format!("{etc}/.updated")), "{what}");
                    assert!(t.contains(&format!("{etc}/ld.so.cache")), "{what}");
                }
                (Err(e), Some(w)) => {
                    assert!(e.to_string().contains(w), "{what}: {e}");
                    assert!(!t.contains(&format!("{etc}/.updated")), "{what}");
                }
                (got, _) => panic!("{what}: {got:?}"),
            }
            assert!(
                !t.contains("/usr/lib/systemd/system/systemd-sysusers.service.d"),
                "{what}: no drop-in"
            );
        }
    }

    #[test]
    fn ldcache_skips_without_glibc() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::new(tmp.path().join("s")).unwrap();
        let mut t = Tree::new();
        t.insert("/", Entry::dir(0o755)).unwrap();
        match write(&mut t, &store, 0).unwrap() {
            Outcome::Skipped(why) => assert!(why.contains("no ld.so.conf"), "{why}"),
            o => panic!("{o:?}"),
        }
        let mut t = image_tree(FACTORY_ETC);
        t.remove("/usr/sbin/ldconfig");
        match write(&mut t, &store, 0).unwrap() {
            Outcome::Skipped(why) => assert!(why.contains("no ldconfig"), "{why}"),
            o => panic!("{o:?}"),
        }
        assert!(!t.contains("/usr/share/factory/etc/ld.so.cache"));
    }

    #[test]
    fn ldcache_corrupt_library_is_skipped_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::new(tmp.path().join("s")).unwrap();
        let mut t = image_tree("/etc");
        let mut bad = synth_lib(Some("libbad.so.1"));
        bad.truncate(130);
        file(&mut t, "/opt/x/libbad.so.1", &bad);
        match write(&mut t, &store, 1000).unwrap() {
            Outcome::Written { entries, .. } => assert_eq!(entries, 2),
            o => panic!("{o:?}"),
        }
    }
}
