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
