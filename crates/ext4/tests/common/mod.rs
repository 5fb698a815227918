//! Shared helpers of the integration tests: writing images and running the
//! e2fsprogs oracles.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_ext4::{Mode, Options};
use basalt_tree::Tree;

/// Whether an external tool is installed; prints a loud message if not.
pub fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "command -v {tool} || test -x /usr/sbin/{tool} || test -x /sbin/{tool}"
        ))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "!!!!! SKIPPING oracle check: {tool} is not installed (apt-get install e2fsprogs) !!!!!"
        );
    }
    ok
}

pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

pub fn opts(mode: Mode) -> Options {
    let mut o = Options::new(mode);
    o.uuid = *b"basalt-ext4-test";
    o.hash_seed = *b"hash-seed-000001";
    o.timestamp = 1_700_000_000;
    o.label = "test".into();
    o
}

/// Plan and write `tree` to `path`; returns the image size.
pub fn write_image(tree: &Tree, o: &Options, path: &Path) -> u64 {
    let plan = basalt_ext4::plan(tree, o).expect("plan");
    let mut f = std::fs::File::create(path).expect("create image");
    plan.write_to(&mut f).expect("write image");
    plan.size_bytes()
}

/// `e2fsck -fn`: panics with its output unless it exits 0.
pub fn e2fsck(path: &Path) {
    if !have("e2fsck") {
        return;
    }
    let out = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(path)
        .output()
        .expect("run e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn {} failed ({}):\n{}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run debugfs commands (one per line) against the image; returns stdout.
pub fn debugfs(path: &Path, script: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = dir.path().join("cmds");
    std::fs::write(&cmd, script).expect("write script");
    let out = Command::new(tool("debugfs"))
        .arg("-f")
        .arg(&cmd)
        .arg(path)
        .output()
        .expect("run debugfs");
    assert!(
        out.status.success(),
        "debugfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

use basalt_tree::{Content, Entry, Kind};
use std::collections::{BTreeMap, BTreeSet};

/// Decode "0xBASE:EXTRA" from a debugfs time line into seconds.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim().strip_prefix("0x")?;
    let (base, extra) = s.split_once(':')?;
    let base = u32::from_str_radix(base.trim(), 16).ok()?;
    let extra = u32::from_str_radix(extra.get(..8)?, 16).ok()?;
    Some(i64::from(base as i32) + (i64::from(extra & 3) << 32))
}

/// Read the image back and compare every entry with the model: kinds,
/// bytes, symlink targets, modes, owners (ext4-view); link counts, device
/// numbers, mtimes and xattrs (debugfs).
pub fn verify(tree: &Tree, img: &Path) {
    let fs = ext4_view::Ext4::load_from_path(img).expect("ext4-view load");
    let children = tree.children_index();
    // Expected link counts.
    let mut links: BTreeMap<&str, u64> = BTreeMap::new();
    for (k, e) in tree.iter() {
        match &e.kind {
            Kind::HardLink(t) => *links.entry(t.as_str()).or_insert(1) += 1,
            Kind::Dir => {
                let subdirs = children[k].iter().filter(|n| {
                    let c = if k == "/" {
                        format!("/{n}")
                    } else {
                        format!("{k}/{n}")
                    };
                    tree.get(&c).is_some_and(Entry::is_dir)
                });
                let lf = u64::from(k == "/" && !tree.contains("/lost+found"));
                let n = 2 + subdirs.count() as u64 + lf;
                links.insert(k, if n > 65000 { 1 } else { n });
            }
            _ => {
                links.entry(k).or_insert(1);
            }
        }
    }
    // Metadata of every entry from one read_dir per directory.
    let mut meta: BTreeMap<String, ext4_view::Metadata> = BTreeMap::new();
    meta.insert("/".into(), fs.symlink_metadata("/").expect("root metadata"));
    let mut listing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (k, e) in tree.iter() {
        if !e.is_dir() {
            continue;
        }
        let mut names = BTreeSet::new();
        for d in fs
            .read_dir(k)
            .unwrap_or_else(|err| panic!("{k}: read_dir: {err}"))
        {
            let d = d.expect("dir entry");
            let name = d.file_name().as_str().expect("utf8").to_string();
            if name == "." || name == ".." {
                continue;
            }
            let child = if k == "/" {
                format!("/{name}")
            } else {
                format!("{k}/{name}")
            };
            meta.insert(child, d.metadata().expect("metadata"));
            names.insert(name);
        }
        listing.insert(k, names);
    }
    for (k, e) in tree.iter() {
        let md = meta
            .get(k)
            .unwrap_or_else(|| panic!("{k}: missing from the image"));
        let te = match &e.kind {
            Kind::HardLink(t) => tree.get(t).expect("link target"),
            _ => e,
        };
        assert_eq!(md.mode(), (te.mode & 0o7777) as u16, "{k}: mode");
        assert_eq!((md.uid(), md.gid()), (te.uid, te.gid), "{k}: owner");
        let ft = md.file_type();
        match &te.kind {
            Kind::Dir => {
                assert!(ft.is_dir(), "{k}: not a dir");
                let mut want: BTreeSet<String> =
                    children[k].iter().map(|s| s.to_string()).collect();
                if k == "/" {
                    want.insert("lost+found".into());
                }
                assert_eq!(listing[k], want, "{k}: directory entries");
            }
            Kind::File(c) => {
                assert!(ft.is_regular_file(), "{k}: not a file");
                assert_eq!(md.len(), c.len(), "{k}: size");
                if !c.is_empty() {
                    let got = fs.read(k).expect("read");
                    assert!(
                        got == c.read_all().expect("model bytes"),
                        "{k}: bytes differ"
                    );
                }
            }
            Kind::Symlink(t) => {
                assert!(ft.is_symlink(), "{k}: not a symlink");
                let got = fs.read_link(k).expect("read_link");
                assert_eq!(got.as_ref(), t.as_bytes(), "{k}: symlink target");
            }
            Kind::CharDevice { .. } => assert!(ft.is_char_dev(), "{k}"),
            Kind::BlockDevice { .. } => assert!(ft.is_block_dev(), "{k}"),
            Kind::Fifo => assert!(ft.is_fifo(), "{k}"),
            Kind::HardLink(_) => unreachable!(),
        }
    }
    if !have("debugfs") {
        return;
    }
    // One debugfs run: stat every entry, dump every xattr value.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut script = String::new();
    let mut xattr_files = Vec::new();
    let keys: Vec<(&str, &Entry)> = tree
        .iter()
        .filter(|(_, e)| !matches!(e.kind, Kind::HardLink(_)))
        .collect();
    for (i, (k, e)) in keys.iter().enumerate() {
        script.push_str(&format!("stat {k}\n"));
        for (j, (name, value)) in e.xattrs.iter().enumerate() {
            let f = dir.path().join(format!("x{i}_{j}"));
            script.push_str(&format!("ea_get -f {} {k} {name}\n", f.display()));
            xattr_files.push((k.to_string(), name.clone(), value.clone(), f));
        }
    }
    let out = debugfs(img, &script);
    let sections: Vec<&str> = out.split("debugfs: stat ").skip(1).collect();
    assert_eq!(sections.len(), keys.len(), "one stat section per entry");
    for ((k, e), sec) in keys.iter().zip(&sections) {
        let line_val = |label: &str| -> Option<&str> {
            sec.split(label)
                .nth(1)
                .map(|r| r.split_whitespace().next().unwrap_or(""))
        };
        let got_links: u64 = line_val("Links: ")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k}: no Links in {sec}"));
        assert_eq!(got_links, links[k], "{k}: link count");
        let mtime = sec
            .split("mtime: ")
            .nth(1)
            .and_then(parse_time)
            .unwrap_or_else(|| panic!("{k}: no mtime"));
        assert_eq!(mtime, e.mtime, "{k}: mtime");
        if let Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } = e.kind {
            let v =
                line_val("Device major/minor number: ").unwrap_or_else(|| panic!("{k}: no device"));
            assert_eq!(v, format!("{major:02}:{minor:02}"), "{k}: device number");
        }
        let stat = sec.split("debugfs: ").next().unwrap_or("");
        let listed = match stat.split_once("Extended attributes:\n") {
            Some((_, rest)) => rest.lines().take_while(|l| l.starts_with("  ")).count(),
            None => 0,
        };
        assert_eq!(listed, e.xattrs.len(), "{k}: xattr count in {sec}");
    }
    for (k, name, value, f) in xattr_files {
        let mut got =
            std::fs::read(&f).unwrap_or_else(|err| panic!("{k}: xattr {name} not readable: {err}"));
        let mut value = value;
        if name.starts_with("system.posix_acl_") {
            // The ext4 format has no id for USER_OBJ/GROUP_OBJ/MASK/OTHER;
            // debugfs reports 0 where the kernel reports ACL_UNDEFINED_ID.
            for v in [&mut got, &mut value] {
                for e in v[4..].chunks_exact_mut(8) {
                    if !matches!(u16::from_le_bytes([e[0], e[1]]), 2 | 8) {
                        e[4..8].fill(0);
                    }
                }
            }
        }
        assert_eq!(got, value, "{k}: xattr {name}");
    }
}

/// A small tree with one of everything: fast/slow symlinks, hard link,
/// devices, fifo, big uid/gid, capabilities, a big xattr, ACLs.
pub fn sample_tree() -> Tree {
    let mut t = Tree::new();
    t.insert_p(
        "/usr/bin/hello",
        Entry::file(0o755, Content::from_bytes(b"hello world\n".to_vec()))
            .at(1_600_000_000)
            .owned(70000, 80000),
    )
    .unwrap();
    t.insert_p(
        "/usr/lib/empty",
        Entry::file(0o644, Content::from_bytes(vec![])),
    )
    .unwrap();
    t.insert("/usr/bin/fast", Entry::symlink("hello")).unwrap();
    t.insert("/usr/bin/slow", Entry::symlink("x/".repeat(40)))
        .unwrap();
    t.insert(
        "/usr/bin/hard",
        Entry {
            kind: Kind::HardLink("/usr/bin/hello".into()),
            ..Entry::dir(0o755)
        },
    )
    .unwrap();
    t.insert_p(
        "/dev/null",
        Entry {
            kind: Kind::CharDevice { major: 1, minor: 3 },
            ..Entry::dir(0o666)
        },
    )
    .unwrap();
    t.insert(
        "/dev/big",
        Entry {
            kind: Kind::BlockDevice {
                major: 4095,
                minor: (1 << 20) - 1,
            },
            ..Entry::dir(0o660)
        },
    )
    .unwrap();
    t.insert(
        "/dev/fifo",
        Entry {
            kind: Kind::Fifo,
            ..Entry::dir(0o600)
        },
    )
    .unwrap();
    let mut ping = Entry::file(0o755, Content::from_bytes(vec![0x7f; 5000]));
    // vfs_cap_data revision 2: magic_etc, then permitted/inheritable x2.
    let cap: Vec<u8> = [0x0200_0001u32, 0x2000, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    ping.xattrs.insert("security.capability".into(), cap);
    ping.xattrs.insert("user.big".into(), vec![b'q'; 2000]);
    ping.xattrs.insert("trusted.small".into(), b"1".to_vec());
    // Non-ASCII names hash differently with signed and unsigned chars.
    ping.xattrs.insert("user.ünïcödé".into(), b"value".to_vec());
    t.insert("/usr/bin/ping", ping).unwrap();
    let mut acl = Entry::dir(0o750);
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 7u16, u32::MAX),
        (2, 5, 1000),
        (4, 5, u32::MAX),
        (0x10, 5, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        v.extend(tag.to_le_bytes());
        v.extend(perm.to_le_bytes());
        v.extend(id.to_le_bytes());
    }
    acl.xattrs
        .insert("system.posix_acl_access".into(), v.clone());
    acl.xattrs.insert("system.posix_acl_default".into(), v);
    t.insert("/srv", acl).unwrap();
    t
}
