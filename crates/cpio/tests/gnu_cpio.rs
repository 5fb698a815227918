//! Oracle tests: GNU cpio must list and extract exactly our members, and
//! `xz -t` / `zstd -t` must accept the compressed archives.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use basalt_cpio::{Archive, Compression, Compressor};
use basalt_tree::{Content, Entry, Kind, Tree};

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: `{tool}` is not installed (apt-get install -y {tool}); oracle check not run"
        );
    }
    found
}

/// A content-store directory removed when dropped.
struct StoreDir(std::path::PathBuf);

impl Drop for StoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn sample_tree() -> (Tree, StoreDir) {
    let mut t = Tree::new();
    t.insert_p(
        "/usr/bin/tool",
        Entry::file(0o755, Content::from_bytes(b"#!/bin/sh\necho hi\n".to_vec())).at(1_700_000_000),
    )
    .unwrap();
    // A file larger than the inline limit, from the content store.
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("basalt-cpio-store-{}-{seq}", std::process::id()));
    let store = basalt_tree::ContentStore::new(&dir).unwrap();
    let big: Vec<u8> = (0..300_001u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let c = store.put_bytes(&big).unwrap();
    assert!(matches!(c, Content::Stored { .. }));
    t.insert_p(
        "/lib/modules/big.ko",
        Entry::file(0o644, c).owned(1000, 1001).at(1_600_000_000),
    )
    .unwrap();
    t.insert("/bin", Entry::symlink("usr/bin")).unwrap();
    t.insert(
        "/usr/bin/tool2",
        Entry {
            kind: Kind::HardLink("/usr/bin/tool".into()),
            ..Entry::dir(0o755)
        },
    )
    .unwrap();
    t.insert_p(
        "/etc/empty",
        Entry::file(0o600, Content::from_bytes(vec![])),
    )
    .unwrap();
    t.insert(
        "/init",
        Entry::file(0o755, Content::from_bytes(b"x".to_vec())),
    )
    .unwrap();
    (t, StoreDir(dir))
}

fn cpio_list(archive: &[u8], verbose: bool) -> String {
    let mut child = Command::new("cpio")
        .args(if verbose {
            &["-itvn", "--quiet"][..]
        } else {
            &["-it", "--quiet"][..]
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cpio");
    child.stdin.take().unwrap().write_all(archive).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cpio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gnu_cpio_lists_exactly_our_members() {
    if !have("cpio") {
        return;
    }
    let (t, _store) = sample_tree();
    let a = Archive::from_tree(&t).unwrap();
    let bytes = a.to_vec().unwrap();
    let names: Vec<String> = cpio_list(&bytes, false)
        .lines()
        .map(str::to_string)
        .collect();
    let want: Vec<String> = t
        .iter()
        .map(|(k, _)| {
            if k == "/" {
                ".".into()
            } else {
                k[1..].to_string()
            }
        })
        .collect();
    assert_eq!(names, want);
    let verbose = cpio_list(&bytes, true);
    let line = |name: &str| {
        verbose
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {verbose}"))
            .to_string()
    };
    let tool = line(" usr/bin/tool");
    assert!(tool.starts_with("-rwxr-xr-x   2 0        0 "), "{tool}");
    let big = line(" lib/modules/big.ko");
    assert!(
        big.starts_with("-rw-r--r--   1 1000     1001       300001 "),
        "{big}"
    );
    assert!(line(" bin -> usr/bin").starts_with("lrwxrwxrwx   1 0 "));
    assert!(line(" lib").starts_with("drwxr-xr-x   3 0 "));
}

#[test]
fn gnu_cpio_extracts_contents_and_hard_links() {
    if !have("cpio") {
        return;
    }
    let (t, _store) = sample_tree();
    let bytes = Archive::from_tree(&t).unwrap().to_vec().unwrap();
    let dir = std::env::temp_dir().join(format!("basalt-cpio-x-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
    assert_eq!(read("usr/bin/tool"), b"#!/bin/sh\necho hi\n");
    assert_eq!(read("usr/bin/tool2"), b"#!/bin/sh\necho hi\n");
    if let Some(Entry {
        kind: Kind::File(c),
        ..
    }) = t.get("/lib/modules/big.ko")
    {
        assert_eq!(read("lib/modules/big.ko"), c.read_all().unwrap());
    }
    use std::os::unix::fs::MetadataExt;
    let m1 = std::fs::metadata(dir.join("usr/bin/tool")).unwrap();
    let m2 = std::fs::metadata(dir.join("usr/bin/tool2")).unwrap();
    assert_eq!(m1.ino(), m2.ino(), "hard link extracted as a link");
    assert_eq!(m1.mtime(), 1_700_000_000);
    assert_eq!(
        std::fs::read_link(dir.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn compressed(c: Compression) -> Vec<u8> {
    let (t, _store) = sample_tree();
    let a = Archive::from_tree(&t).unwrap();
    let mut enc = Compressor::new(Vec::new(), c).unwrap();
    a.write_to(&mut enc).unwrap();
    enc.finish().unwrap()
}

#[test]
fn compressed_archives_pass_reference_tools() {
    for (tool, c) in [("xz", Compression::xz()), ("zstd", Compression::zstd())] {
        if !have(tool) {
            continue;
        }
        let data = compressed(c);
        let mut child = Command::new(tool)
            .args(["-t", "-q"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} -t: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if tool == "xz" {
            // Stream flags byte 2 is the check type; 0x01 = CRC32 (xz spec 2.1.1.2).
            assert_eq!(data[7], 0x01, "xz check must be CRC32");
        }
    }
}

#[test]
fn output_is_deterministic() {
    for c in [Compression::None, Compression::xz(), Compression::zstd()] {
        assert_eq!(compressed(c), compressed(c), "{c:?}");
    }
}
