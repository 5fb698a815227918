//! Helpers shared by the FAT oracle tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_tree::{Kind, Tree};

pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-fat-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("scratch");
    d
}

/// Deterministic bytes (xorshift64) of length `n`.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn files_of(t: &Tree) -> BTreeMap<String, Vec<u8>> {
    t.iter()
        .filter_map(|(k, e)| match &e.kind {
            Kind::File(c) => Some((k.to_string(), c.read_all().expect("read content"))),
            _ => None,
        })
        .collect()
}

pub fn tool(name: &str) -> bool {
    let ok = Command::new("which")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPING {name} oracle: not installed (apt-get install dosfstools mtools)");
    }
    ok
}

pub fn fsck_clean(img: &Path) {
    if !tool("fsck.fat") {
        return;
    }
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(img)
        .output()
        .expect("fsck.fat");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fsck.fat -n failed:\n{text}");
    assert_eq!(
        text.lines().count(),
        2,
        "fsck.fat -n reported something:\n{text}"
    );
}

/// Copy everything out with mcopy and compare with the tree.
pub fn mtools_match(img_spec: &str, want: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    if !tool("mcopy") {
        return;
    }
    let out_dir = dir.join("mcopy-out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let out = Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-n", "-i", img_spec, "::/*"])
        .arg(&out_dir)
        .output()
        .expect("mcopy");
    assert!(
        out.status.success(),
        "mcopy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = BTreeMap::new();
    let mut stack = vec![out_dir.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(&out_dir)
                    .expect("prefix")
                    .to_string_lossy()
                    .to_string();
                got.insert(format!("/{rel}"), fs::read(e.path()).expect("read"));
            }
        }
    }
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(want), "mtools sees other names");
    for (k, v) in want {
        assert!(got[k] == *v, "mtools reads different bytes for {k}");
    }
    let _ = fs::remove_dir_all(&out_dir);
}
