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
//! (`ConditionNeedsUpdate=|/etc`), which creates the packages' system users
//! (sysusers.d) at the first boot. So it is written only when every user,
//! group and membership the tree's sysusers.d files declare is already in
//! the factory passwd/group; otherwise the cache is still written (ld.so
//! uses it) but ldconfig.service will run, and a warning names what is
//! missing.
//!
//! By now the assembly has moved /etc to the factory copy
//! (`/usr/share/factory/etc`, seeded into the machine's /etc by the
//! initramfs, mtimes kept); both files go where ld.so.conf is. While
//! scanning, `/etc` is a temporary symlink to the factory copy, so the
//! configuration's absolute `/etc/...` includes resolve as on the machine.

use anyhow::{Context, Result, bail};
use basalt_ldcache::scan::{LD_SO_CONF, generator};
use basalt_ldcache::{scan, write_cache};
use basalt_tree::{Content, ContentStore, Entry, Kind, Tree};
use basalt_treeexec::treefs;

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
        /// mtime of /usr recorded in `.updated`, or None when `.updated`
        /// was not written (sysusers work pending, listed).
        usr_mtime: Option<i64>,
        sysusers_pending: Vec<String>,
    },
}

/// The directory holding ld.so.conf: `/etc`, or the factory copy once the
/// assembly has moved /etc there.
fn etc_dir(tree: &Tree) -> Option<&'static str> {
    ["/etc", FACTORY_ETC]
        .into_iter()
        .find(|d| tree.contains(&format!("{d}/ld.so.conf")))
}

/// `/etc/.updated` as systemd-update-done writes it for `/etc/`.
fn updated_text(usr_mtime: i64) -> Result<String> {
    let nsec = i128::from(usr_mtime) * 1_000_000_000;
    if nsec < 0 {
        bail!("/usr has a negative mtime ({usr_mtime})");
    }
    Ok(format!(
        "# This file was created by systemd-update-done. The timestamp below is the\n\
         # modification time of /usr/ for which the most recent updates of /etc/ have\n\
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
    let pending = sysusers_pending(tree, etc)?;
    let usr_mtime = if pending.is_empty() {
        Some(write_updated(tree, etc, epoch)?)
    } else {
        crate::log::warn(&format!(
            "not writing {etc}/{UPDATED_NAME}: systemd-sysusers must still run at first boot \
             (so ldconfig.service will too) to create: {}",
            pending.join(", ")
        ));
        None
    };
    Ok(Outcome::Written {
        etc: etc.to_string(),
        entries: found.entries.len(),
        bytes: bytes.len(),
        dirs: found.dirs,
        usr_mtime,
        sysusers_pending: pending,
    })
}

/// Sets /usr's mtime to `epoch` and writes `<etc>/.updated` for it.
///
/// systemd's contract (systemd-update-done.service(8)): an update of /usr
/// must also bump /usr's mtime, which is how `ConditionNeedsUpdate=` sees
/// it. Left alone, /usr keeps the time some package's archive gave it,
/// which need not change from one image to the next; SOURCE_DATE_EPOCH
/// (by default the archive's release date) does whenever the packages do.
fn write_updated(tree: &mut Tree, etc: &str, epoch: i64) -> Result<i64> {
    let usr = tree
        .get_mut("/usr")
        .filter(|e| e.is_dir())
        .context("the tree has no /usr directory")?;
    usr.mtime = epoch;
    let usr_mtime = epoch;
    let updated = format!("{etc}/{UPDATED_NAME}");
    tree.insert_p(
        &updated,
        Entry::file(
            0o644,
            Content::from_bytes(updated_text(usr_mtime)?.into_bytes()),
        )
        .at(usr_mtime),
    )
    .with_context(|| format!("inserting {updated}"))?;
    Ok(usr_mtime)
}

/// The sysusers.d configuration files by name: `/usr/lib/sysusers.d` and
/// `<etc>/sysusers.d` (which overrides a file of the same name; a link to
/// /dev/null masks it), `*.conf` only.
fn sysusers_files(tree: &Tree, etc: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut by_name: std::collections::BTreeMap<String, String> = Default::default();
    for dir in [
        "/usr/lib/sysusers.d".to_string(),
        format!("{etc}/sysusers.d"),
    ] {
        let prefix = format!("{dir}/");
        for (k, _) in tree.descendants(&dir) {
            if let Some(name) = k.strip_prefix(&prefix)
                && !name.contains('/')
                && name.ends_with(".conf")
            {
                by_name.insert(name.to_string(), k.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for (name, path) in by_name {
        if let Some(Entry {
            kind: Kind::Symlink(t),
            ..
        }) = tree.get(&path)
            && t == "/dev/null"
        {
            continue;
        }
        let bytes = treefs::read_file(tree, &path).with_context(|| format!("reading {path}"))?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// `name` → the colon-separated fields of a passwd/group file.
fn colon_db(tree: &Tree, path: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let text = treefs::read_file(tree, path).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let f: Vec<String> = l.split(':').map(String::from).collect();
            (f.len() >= 3).then(|| (f[0].clone(), f))
        })
        .collect()
}

/// What systemd-sysusers would still create at first boot: `u` users (and
/// their same-named groups, unless the ID field names a group), `g` groups
/// and `m` memberships absent from `<etc>/passwd` and `<etc>/group`. A
/// name with a `%` specifier counts as pending (it cannot be checked here).
fn sysusers_pending(tree: &Tree, etc: &str) -> Result<Vec<String>> {
    let passwd = colon_db(tree, &format!("{etc}/passwd"));
    let group = colon_db(tree, &format!("{etc}/group"));
    let member = |user: &str, grp: &str| {
        let Some(g) = group.get(grp) else {
            return false;
        };
        let primary = passwd.get(user).and_then(|p| p.get(3)) == g.get(2);
        primary || g.get(3).is_some_and(|m| m.split(',').any(|u| u == user))
    };
    let mut pending = Vec::new();
    for (file, bytes) in sysusers_files(tree, etc)? {
        for line in String::from_utf8_lossy(&bytes).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(&ty), Some(&name)) = (f.first(), f.get(1)) else {
                continue;
            };
            if ty.starts_with('#') {
                continue;
            }
            let id = f.get(2).copied().unwrap_or("-");
            let missing = match ty {
                "u" | "u!" => {
                    name.contains('%')
                        || !passwd.contains_key(name)
                        || (!id.contains(':') && !group.contains_key(name))
                }
                "g" => name.contains('%') || !group.contains_key(name),
                "m" => name.contains('%') || !member(name, id),
                _ => false,
            };
            if missing {
                pending.push(format!("{ty} {name} ({file})"));
            }
        }
    }
    Ok(pending)
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
            assert_eq!(usr_mtime, Some(1000));
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
    fn ldcache_updated_only_when_sysusers_has_nothing_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::new(tmp.path().join("s")).unwrap();
        let etc = FACTORY_ETC;
        let sysusers = "#comment\nu systemd-network - \"systemd Network Management\"\n\
                        g systemd-journal - -\nu sshd 100:nogroup\nm alice systemd-journal\n";
        let passwd_ok = "root:x:0:0::/root:/bin/sh\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n\
                         sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        let group_ok =
            "root:x:0:\nsystemd-network:x:998:\nsystemd-journal:x:999:alice\nnogroup:x:65534:\n";
        type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str]);
        let cases: &[Case] = &[
            ("all present", passwd_ok, group_ok, &[]),
            (
                "user and membership missing",
                "root:x:0:0::/root:/bin/sh\nsshd:x:100:65534::/:/bin/false\n",
                "root:x:0:\nsystemd-network:x:998:\nsystemd-journal:x:999:\n",
                &["u systemd-network (systemd.conf)", "m alice (systemd.conf)"],
            ),
            (
                "same-named group missing",
                passwd_ok,
                "systemd-journal:x:999:alice\n",
                &["u systemd-network (systemd.conf)"],
            ),
        ];
        for (what, passwd, group, want) in cases {
            let mut t = image_tree(etc);
            file(
                &mut t,
                "/usr/lib/sysusers.d/systemd.conf",
                sysusers.as_bytes(),
            );
            file(
                &mut t,
                "/usr/lib/sysusers.d/masked.conf",
                b"u nobody-here -\n",
            );
            t.insert_p(
                &format!("{etc}/sysusers.d/masked.conf"),
                Entry::symlink("/dev/null"),
            )
            .unwrap();
            file(&mut t, &format!("{etc}/passwd"), passwd.as_bytes());
            file(&mut t, &format!("{etc}/group"), group.as_bytes());
            let Outcome::Written {
                usr_mtime,
                sysusers_pending,
                ..
            } = write(&mut t, &store, 1000).unwrap()
            else {
                panic!("{what}: skipped");
            };
            assert_eq!(sysusers_pending, *want, "{what}");
            assert_eq!(usr_mtime.is_some(), want.is_empty(), "{what}");
            assert_eq!(
                t.contains(&format!("{etc}/.updated")),
                want.is_empty(),
                "{what}"
            );
            assert!(t.contains(&format!("{etc}/ld.so.cache")), "{what}");
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
