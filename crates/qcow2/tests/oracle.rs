//! qemu-img as the oracle: `check` must be clean and `compare` must find
//! the qcow2 identical to the raw image.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_qcow2::{CLUSTER_SIZE, Qcow2Error, convert, write_qcow2};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-qcow2-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("scratch");
    d
}

fn have_qemu_img() -> bool {
    let ok = Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPING qemu-img oracle: qemu-img not installed (apt-get install qemu-utils)");
    }
    ok
}

fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("running qemu-img");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// A raw image of `size` bytes with `writes` (offset, bytes) applied.
fn raw_image(dir: &Path, name: &str, size: u64, writes: &[(u64, Vec<u8>)]) -> PathBuf {
    let path = dir.join(name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create");
    f.set_len(size).expect("size");
    for (at, b) in writes {
        f.write_all_at(b, *at).expect("write");
    }
    path
}

fn check_against_qemu(raw: &Path, qcow: &Path) {
    if !have_qemu_img() {
        return;
    }
    let (ok, text) = qemu_img(&["check", "-f", "qcow2", p(qcow)]);
    assert!(
        ok && text.contains("No errors were found"),
        "qemu-img check {}: {text}",
        qcow.display()
    );
    let (ok, text) = qemu_img(&["compare", "-f", "raw", "-F", "qcow2", p(raw), p(qcow)]);
    assert!(
        ok && text.contains("Images are identical"),
        "qemu-img compare {}: {text}",
        qcow.display()
    );
}

#[test]
fn small_images_table() {
    let dir = scratch("small");
    let c = CLUSTER_SIZE;
    // (name, size, writes, expected data clusters)
    type Case = (&'static str, u64, Vec<(u64, Vec<u8>)>, u64);
    let cases: Vec<Case> = vec![
        ("tiny", 512, vec![(0, pattern(512, 1))], 1),
        ("empty-sparse", 4 * MIB, vec![], 0),
        (
            "explicit-zeros",
            4 * MIB,
            vec![(0, vec![0; 4 * MIB as usize])],
            0,
        ),
        (
            "partial-tail",
            MIB + 512,
            vec![(MIB, pattern(512, 2)), (0, pattern(10, 3))],
            2,
        ),
        (
            "mixed",
            8 * MIB,
            vec![
                (c - 1, vec![7, 7]),
                (3 * c, vec![0; 2 * c as usize]),
                (5 * c + 100, pattern(c as usize, 4)),
            ],
            4,
        ),
        (
            "dense",
            2 * MIB,
            vec![(0, pattern(2 * MIB as usize, 5))],
            32,
        ),
    ];
    for (name, size, writes, want_data) in cases {
        let raw = raw_image(&dir, name, size, &writes);
        let qcow = dir.join(format!("{name}.qcow2"));
        let stats = convert(&raw, &qcow).expect("convert");
        assert_eq!(stats.data_clusters, want_data, "{name}");
        assert_eq!(stats.virtual_size, size);
        assert_eq!(
            fs::metadata(&qcow).expect("stat").len(),
            stats.file_size(),
            "{name}"
        );
        check_against_qemu(&raw, &qcow);
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn ten_gib_sparse_raw() {
    let dir = scratch("big");
    let writes = vec![
        (0, pattern(MIB as usize, 1)),
        (600 * MIB + 12_345, pattern(3 * MIB as usize, 2)),
        (5 * GIB, pattern(32 * MIB as usize, 3)),
        (10 * GIB - 4096, pattern(4096, 4)),
    ];
    let raw = raw_image(&dir, "disk.img", 10 * GIB, &writes);
    let qcow = dir.join("disk.qcow2");
    let stats = convert(&raw, &qcow).expect("convert");
    // 16 + 49 + 512 + 1 clusters of data.
    assert_eq!(stats.data_clusters, 16 + 49 + 512 + 1);
    check_against_qemu(&raw, &qcow);
    if have_qemu_img() {
        let (ok, text) = qemu_img(&["info", "--output=json", p(&qcow)]);
        assert!(
            ok && text.contains(&format!("\"virtual-size\": {}", 10 * GIB)),
            "{text}"
        );
    }
    // Deterministic.
    let again = dir.join("again.qcow2");
    convert(&raw, &again).expect("convert again");
    assert!(
        fs::read(&qcow).expect("read") == fs::read(&again).expect("read"),
        "not reproducible"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn refusals_and_no_partial_output() {
    let dir = scratch("bad");
    let empty = raw_image(&dir, "empty", 0, &[]);
    let odd = raw_image(&dir, "odd", 1000, &[]);
    let out = dir.join("out.qcow2");
    assert!(matches!(convert(&empty, &out), Err(Qcow2Error::Empty)));
    assert!(matches!(
        convert(&odd, &out),
        Err(Qcow2Error::UnalignedSize(1000))
    ));
    assert!(!out.exists(), "partial output left behind");
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // write_qcow2 into an existing longer file truncates it.
    let raw = raw_image(&dir, "r", MIB, &[(0, pattern(100, 9))]);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&out)
        .expect("create");
    f.set_len(100 * MIB).expect("size");
    let stats = write_qcow2(&File::open(&raw).expect("open"), &f).expect("write");
    assert_eq!(f.metadata().expect("stat").len(), stats.file_size());
    drop(f);
    check_against_qemu(&raw, &out);
    let _ = fs::remove_dir_all(&dir);
}
