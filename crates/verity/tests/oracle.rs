//! veritysetup as the oracle: it must accept our hash areas, and its own
//! `format` with the same salt and UUID must produce the same bytes.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_verity::{VerityError, compute, format, verify};

const SALT: [u8; 32] = [
    0x5a, 0x17, 0x01, 0xfe, 0x33, 0x90, 0x4c, 0x2b, 0xee, 0x10, 0x07, 0x6d, 0x88, 0x41, 0x9a, 0xc3,
    0x02, 0x7f, 0x55, 0x61, 0xb0, 0x0b, 0xd4, 0x3e, 0x19, 0x24, 0x8c, 0x6a, 0xf1, 0x5e, 0x70, 0x3d,
];
const UUID: [u8; 16] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
];

fn uuid_str(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn have_veritysetup() -> bool {
    let ok = Command::new("veritysetup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIPPING veritysetup oracle: veritysetup not installed (apt-get install cryptsetup-bin)"
        );
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-verity-{}-{name}", std::process::id()));
    fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Deterministic pseudo-random bytes (xorshift64), with some all-zero blocks.
fn data(blocks: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ blocks;
    let mut v = Vec::with_capacity((blocks * 4096) as usize);
    for b in 0..blocks {
        for _ in 0..512 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let w = if b % 7 == 3 { 0 } else { x };
            v.extend_from_slice(&w.to_le_bytes());
        }
    }
    v
}

fn run(args: &[&str]) -> String {
    let out = Command::new("veritysetup")
        .args(args)
        .output()
        .expect("running veritysetup");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "veritysetup {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn root_from(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|s| s.trim().to_string())
        .expect("veritysetup printed a root hash")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

const SIZES: &[u64] = &[1, 2, 128, 129, 16385];

#[test]
fn separate_hash_file_matches_veritysetup() {
    if !have_veritysetup() {
        return;
    }
    let dir = scratch("separate");
    for &blocks in SIZES {
        let (img, ours, theirs) = (dir.join("data"), dir.join("ours"), dir.join("theirs"));
        fs::write(&img, data(blocks)).expect("write data");
        let dataf = File::open(&img).expect("open data");
        let hashf = File::create(&ours).expect("create hash");
        let v = format(&dataf, 0, blocks * 4096, &SALT, UUID, &hashf, 0).expect("format");
        drop(hashf);
        assert_eq!(fs::metadata(&ours).expect("stat").len(), v.plan.hash_size);
        run(&["verify", p(&img), p(&ours), &v.root_hex()]);
        let text = run(&[
            "format",
            &format!("--salt={}", hex::encode(SALT)),
            &format!("--uuid={}", uuid_str(&UUID)),
            p(&img),
            p(&theirs),
        ]);
        assert_eq!(root_from(&text), v.root_hex(), "{blocks} blocks");
        let theirs_bytes = fs::read(&theirs).expect("read theirs");
        assert_eq!(
            theirs_bytes.len() as u64,
            v.plan.hash_size,
            "{blocks} blocks: size"
        );
        assert!(
            theirs_bytes == fs::read(&ours).expect("read ours"),
            "{blocks} blocks: hash bytes differ"
        );
        let hashf = File::open(&ours).expect("open hash");
        verify(&dataf, 0, blocks * 4096, &hashf, 0, &v.root_hash).expect("own verify");
        let _ = fs::remove_file(&theirs);
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn hash_offset_layout_matches_veritysetup() {
    if !have_veritysetup() {
        return;
    }
    let dir = scratch("offset");
    for &blocks in SIZES {
        let len = blocks * 4096;
        // Data after a 1 MiB prefix (like a partition inside a disk image),
        // hash area right after the data, as in the /usr slot.
        let prefix = 1 << 20;
        let (ours, theirs) = (dir.join("ours.img"), dir.join("theirs.img"));
        let mut bytes = vec![0u8; prefix as usize];
        bytes.extend_from_slice(&data(blocks));
        fs::write(&ours, &bytes).expect("write image");
        fs::write(&theirs, &bytes[prefix as usize..]).expect("write image");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&ours)
            .expect("open image");
        let v = format(&f, prefix, len, &SALT, UUID, &f, prefix + len).expect("format");
        verify(&f, prefix, len, &f, prefix + len, &v.root_hash).expect("own verify");
        let text = run(&[
            "format",
            &format!("--salt={}", hex::encode(SALT)),
            &format!("--uuid={}", uuid_str(&UUID)),
            &format!("--data-blocks={blocks}"),
            &format!("--hash-offset={len}"),
            p(&theirs),
            p(&theirs),
        ]);
        assert_eq!(root_from(&text), v.root_hex(), "{blocks} blocks");
        let ours_bytes = fs::read(&ours).expect("read ours");
        let theirs_bytes = fs::read(&theirs).expect("read theirs");
        assert!(
            ours_bytes[prefix as usize..] == theirs_bytes[..],
            "{blocks} blocks: image bytes differ"
        );
        // veritysetup verifies our in-slot layout too.
        run(&[
            "verify",
            &format!("--data-blocks={blocks}"),
            &format!("--hash-offset={len}"),
            p(&theirs),
            p(&theirs),
            &v.root_hex(),
        ]);
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn own_verify_detects_corruption() {
    let dir = scratch("corrupt");
    let blocks = 300;
    let len = blocks * 4096;
    let img = dir.join("img");
    fs::write(&img, data(blocks)).expect("write");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .expect("open");
    let v = format(&f, 0, len, &SALT, UUID, &f, len).expect("format");
    verify(&f, 0, len, &f, len, &v.root_hash).expect("clean verify");
    // Wrong expected root.
    let mut wrong = v.root_hash;
    wrong[0] ^= 1;
    assert!(matches!(
        verify(&f, 0, len, &f, len, &wrong),
        Err(VerityError::RootMismatch { .. })
    ));
    // One flipped data byte in block 200 -> level 0, hash block 1.
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 200 * 4096 + 5).expect("read");
    f.write_all_at(&[b[0] ^ 0x80], 200 * 4096 + 5)
        .expect("write");
    match verify(&f, 0, len, &f, len, &v.root_hash) {
        Err(VerityError::HashMismatch { level: 0, block: 1 }) => {}
        other => panic!("expected a level-0 mismatch in block 1, got {other:?}"),
    }
    // Superblock for another size is refused.
    assert!(matches!(
        verify(&f, 0, len - 4096, &f, len, &v.root_hash),
        Err(VerityError::BadSuperblock { .. })
    ));
    // compute is deterministic.
    let again = compute(&f, 0, len, &SALT, UUID).expect("compute");
    assert_eq!(
        compute(&f, 0, len, &SALT, UUID).expect("compute").hash_area,
        again.hash_area
    );
    fs::remove_dir_all(&dir).ok();
}
