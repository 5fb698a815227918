//! Oracle: the host's own `ldconfig` and this crate build the cache of the
//! same staged tree; the files must be byte-identical, and `ldconfig -p`
//! must list ours. Needs root (ldconfig -r chroots) and the `libc-bin`
//! package; skips loudly without them.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_ldcache::fixture::synth_lib;
use basalt_ldcache::{scan, write_cache};
use basalt_tree::{Content, Entry, Tree};

const HOST_LIBS: &str = "/usr/lib/x86_64-linux-gnu";

fn ldconfig() -> Option<PathBuf> {
    ["/usr/sbin/ldconfig", "/sbin/ldconfig"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Copies the host library `soname` (its link and the file behind it) into
/// `dir`.
fn copy_lib(dir: &Path, soname: &str) {
    let src = Path::new(HOST_LIBS).join(soname);
    let meta = std::fs::symlink_metadata(&src).unwrap();
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&src).unwrap();
        let real = Path::new(HOST_LIBS).join(&target);
        std::fs::copy(&real, dir.join(real.file_name().unwrap())).unwrap();
        symlink(&target, dir.join(soname)).unwrap();
    } else {
        std::fs::copy(&src, dir.join(soname)).unwrap();
    }
}

fn write(p: &Path, body: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// The staged root: merged /usr, libraries in the multiarch directory and
/// in two configured directories.
fn stage(root: &Path) {
    let multi = root.join("usr/lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&multi).unwrap();
    symlink("usr/lib", root.join("lib")).unwrap();
    symlink("usr/lib", root.join("lib64")).unwrap();
    std::fs::create_dir_all(root.join("var/cache/ldconfig")).unwrap();
    for l in [
        "libc.so.6",
        "libm.so.6",
        "libz.so.1",
        "libzstd.so.1",
        "libacl.so.1",
    ] {
        copy_lib(&multi, l);
    }
    std::fs::copy(
        Path::new(HOST_LIBS).join("ld-linux-x86-64.so.2"),
        multi.join("ld-linux-x86-64.so.2"),
    )
    .unwrap();
    // The development link, absolute (through the /lib symlink).
    symlink("/lib/x86_64-linux-gnu/libz.so.1", multi.join("libz.so")).unwrap();
    // A linker script and a non-ELF file named like libraries.
    write(
        &multi.join("libc.so"),
        b"/* GNU ld script */\nGROUP ( libc.so.6 )\n",
    );
    write(&multi.join("libjunk.so.1"), &[b'x'; 200]);
    write(&multi.join("libtiny.so.1"), b"\x7fELF");
    // A directory with a library's name is ignored. (dpkg and rpm
    // temporaries are skipped since glibc 2.37, so not by a bookworm host's
    // ldconfig: `scan`'s unit tests cover that rule.)
    std::fs::create_dir_all(multi.join("libdir.so.1")).unwrap();
    // A dangling link.
    symlink("libgone.so.1.0", multi.join("libgone.so.1")).unwrap();

    let one = root.join("opt/one/lib");
    std::fs::create_dir_all(&one).unwrap();
    // Present in two directories: both get entries, this one first.
    copy_lib(&one, "libz.so.1");
    // A symlink chain: libchain.so -> libchain.so.2 -> real.
    write(
        &one.join("libchain-impl.so.2.0"),
        &synth_lib(Some("libchain.so.2")),
    );
    symlink("libchain-impl.so.2.0", one.join("libchain.so.2")).unwrap();
    symlink("libchain.so.2", one.join("libchain.so")).unwrap();
    // A link whose name is neither the soname nor a .so prefix of it.
    symlink("libchain-impl.so.2.0", one.join("libchain-alias.so.9")).unwrap();
    // No SONAME: the file's own name is the key.
    write(&one.join("libnosoname.so.3"), &synth_lib(None));
    std::fs::copy(
        Path::new(HOST_LIBS).join("gconv/UTF-16.so"),
        one.join("libutf16-plugin.so"),
    )
    .unwrap();
    // Two versions of one soname: the later name wins.
    write(&one.join("libver.so.1.2"), &synth_lib(Some("libver.so.1")));
    write(&one.join("libver.so.1.10"), &synth_lib(Some("libver.so.1")));

    let two = root.join("opt/two");
    std::fs::create_dir_all(&two).unwrap();
    write(
        &two.join("libnumbered.so.10"),
        &synth_lib(Some("libnumbered.so.10")),
    );
    write(
        &two.join("libnumbered.so.9"),
        &synth_lib(Some("libnumbered.so.9")),
    );
    // The soname link is missing here (ldconfig -X does not create it).
    write(
        &two.join("libnolink.so.4.5"),
        &synth_lib(Some("libnolink.so.4")),
    );

    write(
        &root.join("etc/ld.so.conf"),
        b"include /etc/ld.so.conf.d/*.conf\n# comment\n/opt/two/   \n",
    );
    write(
        &root.join("etc/ld.so.conf.d/a.conf"),
        b"/opt/one/lib\n/usr/lib/x86_64-linux-gnu\n",
    );
    write(
        &root.join("etc/ld.so.conf.d/b.conf.disabled"),
        b"/nowhere\n",
    );
}

/// Loads a host directory into a tree (files, directories, symlinks).
fn load(root: &Path, t: &mut Tree, rel: &str) {
    let dir = root.join(rel.trim_start_matches('/'));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for n in names {
        let key = if rel == "/" {
            format!("/{n}")
        } else {
            format!("{rel}/{n}")
        };
        let p = dir.join(&n);
        let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&p).unwrap();
            t.insert(&key, Entry::symlink(target.to_str().unwrap()))
                .unwrap();
        } else if ft.is_dir() {
            t.insert(&key, Entry::dir(0o755)).unwrap();
            load(root, t, &key);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            t.insert(&key, Entry::file(0o644, Content::from_bytes(bytes)))
                .unwrap();
        }
    }
}

fn listing(ldconfig: &Path, cache: &Path) -> String {
    let out = Command::new(ldconfig)
        .arg("-p")
        .arg("-C")
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldconfig -p failed on {}",
        cache.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn byte_identical_to_ldconfig() {
    let Some(ldconfig) = ldconfig() else {
        eprintln!("SKIPPED ldcache oracle: no ldconfig on this host (install libc-bin)");
        return;
    };
    if !is_root() {
        eprintln!("SKIPPED ldcache oracle: ldconfig -r needs root (chroot)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    stage(&root);
    let status = Command::new(&ldconfig)
        .args(["-X", "-r"])
        .arg(&root)
        .args(["-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf"])
        .status()
        .unwrap();
    assert!(status.success(), "host ldconfig failed");
    let want = std::fs::read(root.join("etc/ld.so.cache")).unwrap();

    let mut tree = Tree::new();
    load(&root, &mut tree, "/");
    tree.remove("/etc/ld.so.cache");
    // The generator text comes from the program in the tree.
    tree.insert_p(
        "/usr/sbin/ldconfig",
        Entry::file(
            0o755,
            Content::from_bytes(std::fs::read(&ldconfig).unwrap()),
        ),
    )
    .unwrap();
    let generator = scan::generator(&tree, &["/usr/sbin/ldconfig"])
        .unwrap()
        .expect("generator string");
    let s = scan(&tree, "/etc/ld.so.conf").unwrap();
    assert_eq!(
        s.dirs,
        [
            "/opt/one/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/opt/two",
            "/lib/x86_64-linux-gnu"
        ][..3],
        "the builtin /lib/x86_64-linux-gnu is the same directory as /usr/lib/..."
    );
    assert_eq!(
        s.missing_links,
        ["/opt/one/lib/libver.so.1", "/opt/two/libnolink.so.4"]
    );
    let got = write_cache(&s.entries, &generator).unwrap();

    let ours = tmp.path().join("ours.cache");
    std::fs::write(&ours, &got).unwrap();
    let theirs = root.join("etc/ld.so.cache");
    if got != want {
        panic!(
            "caches differ ({} vs {} bytes)\n--- ldconfig:\n{}\n--- ours:\n{}",
            want.len(),
            got.len(),
            listing(&ldconfig, &theirs),
            listing(&ldconfig, &ours)
        );
    }
    let list = listing(&ldconfig, &ours);
    for line in [
        "libz.so.1 (libc6,x86-64) => /opt/one/lib/libz.so.1",
        "libz.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libz.so.1",
        "libz.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libz.so",
        "libnosoname.so.3 (libc6,x86-64) => /opt/one/lib/libnosoname.so.3",
        "libchain.so (libc6,x86-64) => /opt/one/lib/libchain.so",
        "libnumbered.so.10 (libc6,x86-64) => /opt/two/libnumbered.so.10",
    ] {
        assert!(list.contains(line), "missing {line:?} in\n{list}");
    }
    assert!(!list.contains("libjunk"), "{list}");
}

/// Loads `dir` of the host shallowly: symlinks, and regular files whose
/// names ldconfig considers (with content), plus the directory chain.
fn load_shallow(t: &mut Tree, dir: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names {
        let key = format!("{}/{n}", dir.trim_end_matches('/'));
        let Ok(meta) = std::fs::symlink_metadata(&key) else {
            continue;
        };
        if t.contains(&key) {
            continue;
        }
        let e = if meta.file_type().is_symlink() {
            Entry::symlink(std::fs::read_link(&key).unwrap().to_str().unwrap())
        } else if meta.is_dir() {
            Entry::dir(0o755)
        } else if meta.is_file() && basalt_ldcache::scan::is_dso_name(&n) {
            Entry::file(0o644, Content::from_bytes(std::fs::read(&key).unwrap()))
        } else {
            continue;
        };
        t.insert_p(&key, e).unwrap();
    }
}

/// The host's whole configuration and library directories against the
/// host's ldconfig (`ldconfig -X -C tmp`, no chroot). Slow-ish (reads every
/// library of the host), so not in the default run:
/// `cargo test -p basalt-ldcache --test oracle -- --ignored`.
#[test]
#[ignore]
fn host_system_matches_ldconfig() {
    let Some(ldconfig) = ldconfig() else {
        eprintln!("SKIPPED: no ldconfig");
        return;
    };
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let want_path = tmp.path().join("host.cache");
    let st = Command::new(&ldconfig)
        .arg("-X")
        .arg("-C")
        .arg(&want_path)
        .status()
        .unwrap();
    assert!(st.success());
    let want = std::fs::read(&want_path).unwrap();
    let mut t = Tree::new();
    t.insert("/", Entry::dir(0o755)).unwrap();
    load_shallow(&mut t, "/");
    let mut confs = vec![PathBuf::from("/etc/ld.so.conf")];
    if let Ok(rd) = std::fs::read_dir("/etc/ld.so.conf.d") {
        confs.extend(rd.map(|e| e.unwrap().path()));
    }
    for f in confs {
        let bytes = std::fs::read(&f).unwrap_or_default();
        t.insert_p(
            f.to_str().unwrap(),
            Entry::file(0o644, Content::from_bytes(bytes)),
        )
        .unwrap();
    }
    // Alternatives and other targets outside the library directories.
    load_shallow(&mut t, "/etc/alternatives");
    let dirs = basalt_ldcache::conf::directories(&t, "/etc/ld.so.conf").unwrap();
    let mut all: Vec<String> = dirs.into_iter().map(|d| d.path).collect();
    all.extend(
        basalt_ldcache::scan::SYSTEM_DIRS
            .iter()
            .map(|s| s.to_string()),
    );
    for d in &all {
        let canon = std::fs::canonicalize(d);
        if let Ok(c) = canon {
            load_shallow(&mut t, c.to_str().unwrap());
        }
    }
    // Directories that links leave to (alternatives, llvm), each hop.
    let links: Vec<PathBuf> = t
        .iter()
        .filter(|(_, e)| matches!(e.kind, basalt_tree::Kind::Symlink(_)))
        .map(|(k, _)| PathBuf::from(k))
        .collect();
    for mut p in links {
        for _ in 0..8 {
            let Ok(target) = std::fs::read_link(&p) else {
                break;
            };
            let next = p.parent().unwrap().join(target);
            let Some(dir) = next.parent().and_then(|d| std::fs::canonicalize(d).ok()) else {
                break;
            };
            load_shallow(&mut t, dir.to_str().unwrap());
            p = dir.join(next.file_name().unwrap());
        }
    }
    t.insert_p(
        "/usr/sbin/ldconfig",
        Entry::file(
            0o755,
            Content::from_bytes(std::fs::read(&ldconfig).unwrap()),
        ),
    )
    .unwrap();
    let generator = scan::generator(&t, &["/usr/sbin/ldconfig"])
        .unwrap()
        .unwrap();
    let s = scan(&t, "/etc/ld.so.conf").unwrap();
    let got = write_cache(&s.entries, &generator).unwrap();
    let ours = tmp.path().join("ours.cache");
    std::fs::write(&ours, &got).unwrap();
    if got != want {
        let a = listing(&ldconfig, &want_path);
        let b = listing(&ldconfig, &ours);
        let la: Vec<&str> = a.lines().collect();
        let lb: Vec<&str> = b.lines().collect();
        let only_a: Vec<_> = la.iter().filter(|l| !lb.contains(l)).collect();
        let only_b: Vec<_> = lb.iter().filter(|l| !la.contains(l)).collect();
        panic!(
            "differ: {} vs {} bytes; only ldconfig: {only_a:#?}; only ours: {only_b:#?}",
            want.len(),
            got.len()
        );
    }
    eprintln!(
        "host cache: {} entries, {} bytes, identical",
        s.entries.len(),
        got.len()
    );
}

/// A root prepared by hand (e.g. an image's /usr/lib and factory /etc
/// extracted with debugfs, its own ldconfig at usr/sbin/ldconfig), named by
/// LDCACHE_ORACLE_ROOT: that ldconfig's `-X -r ROOT` output against ours.
/// `LDCACHE_ORACLE_ROOT=/tmp/r cargo test -p basalt-ldcache --test oracle
/// -- --ignored staged_root`.
#[test]
#[ignore]
fn staged_root_from_env() {
    let Ok(root) = std::env::var("LDCACHE_ORACLE_ROOT") else {
        eprintln!("SKIPPED: set LDCACHE_ORACLE_ROOT");
        return;
    };
    let root = PathBuf::from(root);
    let ldconfig = root.join("usr/sbin/ldconfig");
    let _ = std::fs::remove_file(root.join("etc/ld.so.cache"));
    let st = Command::new(&ldconfig)
        .args(["-X", "-r"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success(), "the root's ldconfig failed");
    let want = std::fs::read(root.join("etc/ld.so.cache")).unwrap();
    let mut t = Tree::new();
    load(&root, &mut t, "/");
    t.remove("/etc/ld.so.cache");
    t.remove("/var");
    let generator = scan::generator(&t, &["/usr/sbin/ldconfig"])
        .unwrap()
        .unwrap();
    let s = scan(&t, "/etc/ld.so.conf").unwrap();
    let got = write_cache(&s.entries, &generator).unwrap();
    assert!(
        got == want,
        "differ: {} vs {} bytes (ours written to /tmp/ldcache-ours)",
        want.len(),
        {
            std::fs::write("/tmp/ldcache-ours", &got).unwrap();
            got.len()
        }
    );
    eprintln!(
        "{}: {} entries, {} bytes, identical; generator {:?}",
        root.display(),
        s.entries.len(),
        got.len(),
        String::from_utf8_lossy(&generator)
    );
}
