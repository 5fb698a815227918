//! Crate-level tests: synthetic packages through the reader, and tars
//! through the writer and back.

use std::collections::BTreeMap;
use std::process::Command;

use basalt_tree::{Content, ContentStore, Entry, Kind, Tree};

use crate::fixture::{DebBuilder, Item, scratch_dir};
use crate::{Compression, DebPackage, DirPolicy, UnpackOptions, read_tar, unpack_data, write_tar};

fn opts(p: &str) -> UnpackOptions {
    UnpackOptions {
        package: p.into(),
        dirs: DirPolicy::KeepExisting,
    }
}

fn long_name() -> String {
    format!("usr/share/{}/{}", "d".repeat(120), "f".repeat(90))
}

fn all_kinds(name: &str) -> DebBuilder {
    DebBuilder::new(name)
        .field("Depends", "libc6 (>= 2.36)")
        .conffile("/etc/foo.conf")
        .script("postinst", "#!/bin/sh\nexit 0\n")
        .file("etc/foo.conf", 0o644, b"k=v\n")
        .file("usr/bin/foo", 0o4755, b"\x7fELF")
        .hardlink("usr/bin/foo-alias", "usr/bin/foo")
        .symlink("usr/bin/bar", "foo")
        .symlink("usr/lib/long-link", &"t".repeat(150))
        .entry("usr/lib/dev/null", Item::CharDevice(1, 3), 0o666, 0, 0)
        .entry("usr/lib/dev/sda", Item::BlockDevice(8, 0), 0o660, 0, 6)
        .entry("usr/lib/fifo", Item::Fifo, 0o600, 0, 0)
        .entry("var/mail", Item::Dir, 0o2775, 0, 8)
        .file(&long_name(), 0o644, b"long")
        .file("usr/share/big", 0o644, &vec![7u8; 300_000])
}

#[test]
fn unpack_every_compression_and_kind() {
    let dir = scratch_dir("deb-kinds");
    let store = ContentStore::new(dir.join("store")).expect("store");
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let deb = all_kinds("foo")
            .compression(c)
            .write_to(&dir)
            .expect("write deb");
        let pkg = DebPackage::open(&deb).expect("open");
        assert_eq!(pkg.name().as_deref(), Some("foo"));
        assert_eq!(pkg.field("depends").as_deref(), Some("libc6 (>= 2.36)"));
        assert_eq!(pkg.conffiles, ["/etc/foo.conf"]);
        assert!(pkg.has_script("postinst") && !pkg.has_script("preinst"));
        assert_eq!(pkg.data_compression, c);

        let mut t = Tree::new();
        let rep = unpack_data(&deb, &mut t, &store, &opts("foo")).expect("unpack");
        assert_eq!(rep.package, "foo");
        assert_eq!(rep.files, 4, "{c:?}");
        assert!(rep.paths.contains(&"/usr/bin/foo".to_string()));
        let get = |p: &str| {
            t.get(p)
                .unwrap_or_else(|| panic!("{p} missing ({c:?})"))
                .clone()
        };
        let foo = get("/usr/bin/foo");
        assert_eq!((foo.mode, foo.uid, foo.mtime), (0o4755, 0, 1_600_000_000));
        assert_eq!(
            foo.kind,
            Kind::File(Content::from_bytes(b"\x7fELF".to_vec()))
        );
        assert_eq!(
            get("/usr/bin/foo-alias").kind,
            Kind::HardLink("/usr/bin/foo".into())
        );
        assert_eq!(get("/usr/bin/bar").kind, Kind::Symlink("foo".into()));
        assert_eq!(
            get("/usr/lib/long-link").kind,
            Kind::Symlink("t".repeat(150))
        );
        assert_eq!(
            get("/usr/lib/dev/null").kind,
            Kind::CharDevice { major: 1, minor: 3 }
        );
        let sda = get("/usr/lib/dev/sda");
        assert_eq!(
            (sda.kind, sda.mode, sda.gid),
            (Kind::BlockDevice { major: 8, minor: 0 }, 0o660, 6)
        );
        assert_eq!(get("/usr/lib/fifo").kind, Kind::Fifo);
        assert_eq!((get("/var/mail").mode, get("/var/mail").gid), (0o2775, 8));
        assert_eq!(
            get(&format!("/{}", long_name())).kind,
            Kind::File(Content::from_bytes(b"long".to_vec()))
        );
        let big = get("/usr/share/big");
        assert!(matches!(
            big.kind,
            Kind::File(Content::Stored { len: 300_000, .. })
        ));
        assert_eq!(t.validate(), Ok(()));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn later_package_wins_and_links_follow_dpkg() {
    let dir = scratch_dir("deb-order");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let base = DebBuilder::new("base")
        .entry("usr", Item::Dir, 0o755, 0, 0)
        .symlink("bin", "usr/bin")
        .file("usr/bin/sh", 0o755, b"one")
        .hardlink("usr/bin/sh2", "usr/bin/sh")
        .write_to(&dir)
        .expect("deb");
    let over = DebBuilder::new("over")
        .entry("bin", Item::Dir, 0o700, 0, 0)
        .file("bin/sh", 0o755, b"two")
        .file("bin/extra", 0o755, b"x")
        .entry("usr", Item::Dir, 0o700, 5, 5)
        .write_to(&dir)
        .expect("deb");
    let mut t = Tree::new();
    unpack_data(&base, &mut t, &store, &opts("base")).expect("base");
    let rep = unpack_data(&over, &mut t, &store, &opts("over")).expect("over");
    // ./bin/ over the /bin symlink keeps the symlink; ./bin/x lands in /usr/bin.
    assert_eq!(t.get("/bin").unwrap().kind, Kind::Symlink("usr/bin".into()));
    assert_eq!(
        t.get("/usr/bin/sh").unwrap().kind,
        Kind::File(Content::from_bytes(b"two".to_vec()))
    );
    assert!(t.contains("/usr/bin/extra"));
    assert_eq!(rep.replaced, ["/usr/bin/sh"]);
    assert!(rep.paths.contains(&"/usr/bin/extra".to_string()));
    // The old hard link keeps the old contents, as on a real filesystem.
    assert_eq!(
        t.get("/usr/bin/sh2").unwrap().kind,
        Kind::File(Content::from_bytes(b"one".to_vec()))
    );
    // An existing directory keeps its metadata.
    assert_eq!(t.get("/usr").unwrap().mode, 0o755);
    // A symlink listed over an existing directory leaves the directory.
    let late = DebBuilder::new("late")
        .symlink("usr", "opt")
        .write_to(&dir)
        .expect("deb");
    let rep = unpack_data(&late, &mut t, &store, &opts("late")).expect("late");
    assert_eq!(rep.kept_directories, ["/usr"]);
    assert!(t.get("/usr").is_some_and(Entry::is_dir));
    assert_eq!(t.validate(), Ok(()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_packages_give_clear_errors() {
    let dir = scratch_dir("deb-bad");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let good = all_kinds("good").build().expect("deb");
    let mut corrupt = good.clone();
    let n = corrupt.len();
    for b in &mut corrupt[n - 400..n - 100] {
        *b ^= 0x55;
    }
    let escape = DebBuilder::new("esc").file("../../etc/passwd", 0o644, b"x");
    // The builder strips leading "./" and "/", not "..": the entry stays "./../../etc/passwd".
    let escape = escape.build().expect("deb");
    let mut bad_version = good.clone();
    let at = 8 + 60;
    bad_version[at..at + 3].copy_from_slice(b"3.0");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "truncated .deb?",
        ),
        ("corrupt data", corrupt, "data.tar.xz"),
        ("escape", escape, "escapes the root"),
        (
            "version",
            bad_version,
            "unsupported .deb format version \"3.0\"",
        ),
        ("not ar", b"PK\x03\x04 zip".to_vec(), "not an ar archive"),
    ];
    for (what, bytes, want) in cases {
        let p = dir.join(format!("{what}.deb"));
        std::fs::write(&p, bytes).expect("write");
        let mut t = Tree::new();
        let err = unpack_data(&p, &mut t, &store, &opts(what)).expect_err(what);
        let msg = err.to_string();
        assert!(msg.contains(want), "{what}: {msg}");
        assert!(
            msg.contains(&p.display().to_string()),
            "{what}: message names the file: {msg}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A tree with every kind, xattrs, long names, big ids and odd times.
fn rich_tree(store: &ContentStore) -> Tree {
    let mut t = Tree::new();
    t.get_mut("/").unwrap().mode = 0o755;
    let mut caps = BTreeMap::new();
    caps.insert(
        "security.capability".to_string(),
        vec![
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    caps.insert("user.comment".to_string(), b"hello world".to_vec());
    t.insert_p(
        "/usr/bin/ping",
        Entry {
            xattrs: caps,
            ..Entry::file(0o755, Content::from_bytes(b"ping".to_vec())).at(1_700_000_000)
        },
    )
    .unwrap();
    t.insert(
        "/usr/bin/ping6",
        Entry {
            kind: Kind::HardLink("/usr/bin/ping".into()),
            ..Entry::file(0o755, Content::from_bytes(vec![])).at(1_700_000_000)
        },
    )
    .unwrap();
    t.insert("/usr/bin/sh", Entry::symlink("dash").at(5))
        .unwrap();
    t.insert_p(
        &format!("/usr/share/{}/{}", "a".repeat(200), "b".repeat(200)),
        Entry::file(0o600, Content::from_bytes(b"deep".to_vec())).owned(3_000_000, 4_000_000),
    )
    .unwrap();
    t.insert("/usr/long", Entry::symlink("x/".repeat(80)).at(-20))
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
        "/dev/loop0",
        Entry {
            kind: Kind::BlockDevice {
                major: 7,
                minor: 1_000_000,
            },
            ..Entry::dir(0o660)
        }
        .owned(0, 6),
    )
    .unwrap();
    t.insert(
        "/dev/fifo",
        Entry {
            kind: Kind::Fifo,
            ..Entry::dir(0o644)
        },
    )
    .unwrap();
    t.insert("/dev/shm", Entry::dir(0o1777).at(3)).unwrap();
    let big: Vec<u8> = (0..400_000u32).map(|i| (i % 241) as u8).collect();
    t.insert_p(
        "/usr/lib/big.bin",
        Entry::file(0o644, store.put_bytes(&big).unwrap()),
    )
    .unwrap();
    t.insert(
        "/usr/lib/ünïcode-ñame",
        Entry::file(0o644, Content::from_bytes(vec![])),
    )
    .unwrap();
    t
}

#[test]
fn tar_round_trip_and_determinism() {
    let dir = scratch_dir("tar-rt");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let t = rich_tree(&store);
    let mut a = Vec::new();
    write_tar(&t, &mut a).expect("write");
    let mut b = Vec::new();
    write_tar(&t.clone(), &mut b).expect("write again");
    assert_eq!(a, b, "two writes are identical");
    assert_eq!(a.len() % 10240, 0);
    let mut back = Tree::new();
    read_tar(
        &a[..],
        &mut back,
        &store,
        &UnpackOptions {
            package: "rt".into(),
            dirs: DirPolicy::Replace,
        },
    )
    .expect("read back");
    for ((ka, ea), (kb, eb)) in t.iter().zip(back.iter()) {
        assert_eq!(ka, kb);
        assert_eq!(ea, eb, "{ka}");
    }
    assert_eq!(t, back);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gnu_tar_reads_our_tars() {
    if Command::new("tar").arg("--version").output().is_err() {
        eprintln!("SKIPPED gnu_tar_reads_our_tars: GNU tar is not installed (apt-get install tar)");
        return;
    }
    let dir = scratch_dir("tar-gnu");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let t = rich_tree(&store);
    let path = dir.join("t.tar");
    let mut f = std::fs::File::create(&path).expect("create");
    write_tar(&t, &mut f).expect("write");
    drop(f);
    let out = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-tvvf"])
        .arg(&path)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .output()
        .expect("run tar");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.trim_start().starts_with("x:"))
        .collect();
    assert_eq!(lines.len(), t.len(), "{stdout}");
    // (member name, start of the line, owner column)
    let want: &[(&str, &str, &str)] = &[
        ("./usr/bin/ping", "-rwxr-xr-x*", "0/0"),
        (
            "./usr/bin/ping6 link to ./usr/bin/ping",
            "hrwxr-xr-x",
            "0/0",
        ),
        ("./usr/bin/sh -> dash", "lrwxrwxrwx", "0/0"),
        ("./dev/null", "crw-rw-rw-", "1,3"),
        ("./dev/loop0", "brw-rw----", "7,1000000"),
        ("./dev/fifo", "prw-r--r--", "0/0"),
        ("./dev/shm/", "drwxrwxrwt", "0/0"),
        ("bbbb", "-rw-------", "3000000/4000000"),
    ];
    for (name, start, col) in want {
        let line = lines
            .iter()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("tar -tvv lists no {name}:\n{stdout}"));
        assert!(
            line.starts_with(start) && line.contains(col),
            "{name}: {line}"
        );
    }
    for x in ["x:  20 security.capability", "x:  11 user.comment"] {
        assert!(
            stdout.contains(x) || stdout.contains(&x.replace("  ", " ")),
            "no {x:?} in\n{stdout}"
        );
    }
    assert!(stdout.contains(&format!(
        "./usr/share/{}/{}",
        "a".repeat(200),
        "b".repeat(200)
    )));
    std::fs::remove_dir_all(&dir).ok();
}

/// `ls -l` style mode string of an entry, as GNU tar prints it.
fn mode_string(kind: &Kind, mode: u32) -> String {
    let t = match kind {
        Kind::Dir => 'd',
        Kind::File(_) => '-',
        Kind::HardLink(_) => 'h',
        Kind::Symlink(_) => 'l',
        Kind::CharDevice { .. } => 'c',
        Kind::BlockDevice { .. } => 'b',
        Kind::Fifo => 'p',
    };
    let mut s = String::from(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o40, 'r'),
        (0o20, 'w'),
        (0o10, 'x'),
        (0o4, 'r'),
        (0o2, 'w'),
        (0o1, 'x'),
    ];
    for (i, (b, c)) in bits.iter().enumerate() {
        let mut ch = if mode & b != 0 { *c } else { '-' };
        let special = [(2, 0o4000, 's'), (5, 0o2000, 's'), (8, 0o1000, 't')];
        for (at, bit, letter) in special {
            if i == at && mode & bit != 0 {
                ch = if mode & b != 0 {
                    letter
                } else {
                    letter.to_ascii_uppercase()
                };
            }
        }
        s.push(ch);
    }
    s
}

#[test]
fn dpkg_deb_agrees_with_our_reader() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED dpkg_deb_agrees_with_our_reader: dpkg-deb is not installed (apt-get install dpkg)"
        );
        return;
    }
    let dir = scratch_dir("deb-oracle");
    let store = ContentStore::new(dir.join("store")).expect("store");
    for c in [Compression::Gzip, Compression::Xz, Compression::Zstd] {
        let deb = all_kinds("oracle")
            .compression(c)
            .write_to(&dir)
            .expect("deb");
        let mut t = Tree::new();
        unpack_data(&deb, &mut t, &store, &opts("oracle")).expect("unpack");
        let info = Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&deb)
            .arg("Package")
            .output()
            .expect("dpkg-deb --field");
        assert_eq!(
            String::from_utf8_lossy(&info.stdout).trim(),
            "oracle",
            "{c:?}: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "dpkg-deb --fsys-tarfile '{}' | tar --numeric-owner -tvf -",
                deb.display()
            ))
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .output()
            .expect("dpkg-deb --fsys-tarfile");
        assert!(
            out.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for line in listing.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (mode, owner, size) = (f[0], f[1], f[2]);
            let rest = f[5..].join(" ");
            let name = rest
                .split(" -> ")
                .next()
                .unwrap_or("")
                .split(" link to ")
                .next()
                .unwrap_or("");
            let key = basalt_tree::normalize(name).expect("name");
            let e = t
                .get(&key)
                .unwrap_or_else(|| panic!("{c:?}: dpkg lists {key}, we do not"));
            assert_eq!(mode_string(&e.kind, e.mode), mode, "{c:?} {key}");
            assert_eq!(format!("{}/{}", e.uid, e.gid), owner, "{c:?} {key}");
            if let Kind::File(content) = &e.kind {
                assert_eq!(content.len().to_string(), size, "{c:?} {key}");
            }
            n += 1;
        }
        assert_eq!(
            n,
            t.len(),
            "{c:?}: dpkg lists {n} entries, our tree has {}",
            t.len()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
