//! Deterministic image tests: each image passes `e2fsck -fn` and reads back
//! equal to the model.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use basalt_ext4::{Error, Mode};
use basalt_tree::{Content, Entry, Kind, Tree};
use common::*;

fn check(tree: &Tree, mode: Mode) -> (tempfile::TempDir, std::path::PathBuf, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("t.img");
    let t0 = std::time::Instant::now();
    let size = write_image(tree, &opts(mode), &img);
    let t1 = std::time::Instant::now();
    e2fsck(&img);
    let t2 = std::time::Instant::now();
    verify(tree, &img);
    eprintln!(
        "write {:?} e2fsck {:?} verify {:?}",
        t1 - t0,
        t2 - t1,
        t2.elapsed()
    );
    (dir, img, size)
}

#[test]
fn sample_tree_read_only_and_writable() {
    let t = sample_tree();
    check(&t, Mode::ReadOnly { slack_percent: 5 });
    let (_d, img, size) = check(
        &t,
        Mode::Writable {
            size_bytes: 256 << 20,
        },
    );
    assert_eq!(size, 256 << 20);
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 256 << 20);
    if have("dumpe2fs") {
        let out = Command::new(tool("dumpe2fs"))
            .arg("-h")
            .arg(&img)
            .output()
            .expect("dumpe2fs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .any(|l| l.starts_with("Filesystem features:") && l.contains("has_journal")),
            "{text}"
        );
        assert!(text.contains("Journal checksum type:    crc32c"), "{text}");
        assert!(text.contains("Total journal blocks:     4096"), "{text}");
    }
    // Holes stay holes: the 16 MiB journal and free space are not written.
    let used = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&img).unwrap()) * 512;
    assert!(used < 4 << 20, "image occupies {used} bytes on disk");
}

#[test]
fn extent_trees_and_sparse_files() {
    let mut t = Tree::new();
    // Every other block zero: 1400 data extents need a depth-2 tree.
    let mut v = vec![0u8; 2800 * 4096 + 123];
    for b in (0..2801).step_by(2) {
        let end = ((b + 1) * 4096).min(v.len());
        v[b * 4096..end].fill((b % 251 + 1) as u8);
    }
    t.insert(
        "/depth2",
        Entry::file(0o644, Content::from_bytes(v.clone())),
    )
    .unwrap();
    t.insert(
        "/depth1",
        Entry::file(0o644, Content::from_bytes(v[..40 * 4096].to_vec())),
    )
    .unwrap();
    t.insert(
        "/holes-only",
        Entry::file(0o644, Content::from_bytes(vec![0; 100_000])),
    )
    .unwrap();
    let mut tail = vec![0u8; 9 * 4096];
    tail.push(1);
    t.insert("/tail", Entry::file(0o644, Content::from_bytes(tail)))
        .unwrap();
    let (_d, img, _) = check(&t, Mode::ReadOnly { slack_percent: 0 });
    if have("debugfs") {
        let out = debugfs(&img, "ex /depth2\nex /depth1\nstat /holes-only\n");
        assert!(
            out.contains(" 2/ 2 "),
            "depth2 should have a depth-2 tree:\n{}",
            &out[..out.len().min(2000)]
        );
        assert!(out.contains(" 1/ 1 "), "depth1 should have a depth-1 tree");
        assert!(out.contains("Blockcount: 0"), "holes-only takes no blocks");
    }
}

#[test]
fn big_directory_and_file_across_groups() {
    let mut t = Tree::new();
    t.insert("/d", Entry::dir(0o755)).unwrap();
    for i in 0..5200 {
        t.insert(
            &format!("/d/file-{i:05}-{}", "n".repeat(i % 40)),
            Entry::file(0o644, Content::from_bytes(vec![])),
        )
        .unwrap();
    }
    for i in 0..50 {
        t.insert(&format!("/d/sub{i}"), Entry::dir(0o755)).unwrap();
    }
    // 140 MiB of data crosses group 1's backup superblock.
    let mut big = vec![0u8; 140 << 20];
    for (i, block) in big.chunks_mut(4096).enumerate() {
        block.fill((i % 255 + 1) as u8);
    }
    t.insert("/big", Entry::file(0o644, Content::from_bytes(big)))
        .unwrap();
    let (_d, img, size) = check(&t, Mode::ReadOnly { slack_percent: 1 });
    assert!(size > 140 << 20 && size < 150 << 20, "size {size}");
    if have("debugfs") {
        let out = debugfs(&img, "stat /d\n");
        assert!(out.contains("Links: 52"), "2 + 50 subdirectories");
    }
}

#[test]
fn output_is_reproducible() {
    let t = sample_tree();
    let dir = tempfile::tempdir().unwrap();
    for mode in [
        Mode::ReadOnly { slack_percent: 3 },
        Mode::Writable {
            size_bytes: 64 << 20,
        },
    ] {
        let a = dir.path().join("a.img");
        let b = dir.path().join("b.img");
        write_image(&t, &opts(mode.clone()), &a);
        write_image(&t, &opts(mode.clone()), &b);
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{mode:?}: images differ"
        );
        // A different uuid changes the bytes (checksums are seeded by it).
        let mut o = opts(mode.clone());
        o.uuid[0] ^= 1;
        write_image(&t, &o, &b);
        assert!(std::fs::read(&a).unwrap() != std::fs::read(&b).unwrap());
    }
}

#[test]
fn bad_input_is_refused() {
    let base = sample_tree();
    type Case = (
        &'static str,
        Box<dyn Fn(&mut Tree, &mut basalt_ext4::Options)>,
        fn(&Error) -> bool,
    );
    let cases: Vec<Case> = vec![
        ("block size", Box::new(|_, o| o.block_size = 1024), |e| {
            matches!(e, Error::BlockSize(1024))
        }),
        ("label", Box::new(|_, o| o.label = "x".repeat(17)), |e| {
            matches!(e, Error::LabelTooLong(_))
        }),
        ("timestamp", Box::new(|_, o| o.timestamp = -1), |e| {
            matches!(e, Error::TimeOutOfRange { .. })
        }),
        (
            "size not multiple",
            Box::new(|_, o| {
                o.mode = Mode::Writable {
                    size_bytes: 100_000_001,
                }
            }),
            |e| matches!(e, Error::BadSize { .. }),
        ),
        (
            "does not fit",
            Box::new(|t, o| {
                t.insert(
                    "/blob",
                    Entry::file(0o644, Content::from_bytes(vec![1; 20 << 20])),
                )
                .unwrap();
                o.mode = Mode::Writable {
                    size_bytes: 16 << 20,
                };
            }),
            |e| matches!(e, Error::DoesNotFit { .. }),
        ),
        (
            "empty symlink",
            Box::new(|t, _| t.insert("/s", Entry::symlink("")).unwrap()),
            |e| matches!(e, Error::SymlinkTarget { .. }),
        ),
        (
            "long symlink",
            Box::new(|t, _| t.insert("/s", Entry::symlink("a".repeat(4096))).unwrap()),
            |e| matches!(e, Error::SymlinkTarget { .. }),
        ),
        (
            "device",
            Box::new(|t, _| {
                t.insert(
                    "/c",
                    Entry {
                        kind: Kind::CharDevice {
                            major: 4096,
                            minor: 0,
                        },
                        ..Entry::dir(0o600)
                    },
                )
                .unwrap()
            }),
            |e| matches!(e, Error::DeviceNumber { .. }),
        ),
        (
            "mtime",
            Box::new(|t, _| t.insert("/old", Entry::dir(0o755).at(-(1 << 40))).unwrap()),
            |e| matches!(e, Error::TimeOutOfRange { .. }),
        ),
        (
            "xattr namespace",
            Box::new(|t, _| {
                let mut e = Entry::dir(0o755);
                e.xattrs.insert("nonsense".into(), vec![]);
                t.insert("/x", e).unwrap();
            }),
            |e| matches!(e, Error::Xattr { .. }),
        ),
        (
            "xattr too large",
            Box::new(|t, _| {
                let mut e = Entry::dir(0o755);
                e.xattrs = BTreeMap::from([
                    ("user.a".to_string(), vec![0; 3000]),
                    ("user.b".to_string(), vec![0; 3000]),
                ]);
                t.insert("/x", e).unwrap();
            }),
            |e| matches!(e, Error::XattrsTooLarge { .. }),
        ),
        (
            "bad acl",
            Box::new(|t, _| {
                let mut e = Entry::dir(0o755);
                e.xattrs
                    .insert("system.posix_acl_access".into(), vec![1, 2, 3]);
                t.insert("/x", e).unwrap();
            }),
            |e| matches!(e, Error::Xattr { .. }),
        ),
        (
            "lost+found not a dir",
            Box::new(|t, _| t.insert("/lost+found", Entry::symlink("x")).unwrap()),
            |e| matches!(e, Error::NotDir { .. }),
        ),
        (
            "dangling hard link",
            Box::new(|t, _| {
                t.insert(
                    "/h",
                    Entry {
                        kind: Kind::HardLink("/nope".into()),
                        ..Entry::dir(0o644)
                    },
                )
                .unwrap();
            }),
            |e| matches!(e, Error::Tree(_)),
        ),
    ];
    for (name, mutate, want) in cases {
        let mut t = base.clone();
        let mut o = opts(Mode::ReadOnly { slack_percent: 1 });
        mutate(&mut t, &mut o);
        match basalt_ext4::plan(&t, &o) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => {
                assert!(want(&e), "{name}: unexpected error {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn existing_lost_found_is_used() {
    let mut t = Tree::new();
    t.insert("/lost+found", Entry::dir(0o700)).unwrap();
    t.insert(
        "/lost+found/x",
        Entry::file(0o600, Content::from_bytes(b"orphan".to_vec())),
    )
    .unwrap();
    check(&t, Mode::ReadOnly { slack_percent: 0 });
}

#[test]
fn dir_index_on_and_off() {
    let mut t = Tree::new();
    t.insert("/d", Entry::dir(0o755)).unwrap();
    for i in 0..400 {
        t.insert(
            &format!("/d/name-{i}-ünïcode"),
            Entry::file(0o644, Content::from_bytes(vec![])),
        )
        .unwrap();
    }
    for (dir_index, flags) in [(true, "Flags: 0x81000"), (false, "Flags: 0x80000")] {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("t.img");
        let mut o = opts(Mode::ReadOnly { slack_percent: 0 });
        o.dir_index = dir_index;
        write_image(&t, &o, &img);
        e2fsck(&img);
        verify(&t, &img);
        if have("debugfs") {
            let out = debugfs(&img, "stat /d\n");
            assert!(
                out.contains(flags),
                "dir_index {dir_index}: want {flags} in\n{out}"
            );
        }
    }
}

#[test]
fn empty_tree_is_small_and_clean() {
    let (_d, _img, size) = check(&Tree::new(), Mode::ReadOnly { slack_percent: 0 });
    assert!(size <= 64 * 4096, "empty image is {size} bytes");
    check(
        &Tree::new(),
        Mode::Writable {
            size_bytes: 8 << 20,
        },
    );
}

#[test]
fn write_to_any_seekable_writer() {
    let t = sample_tree();
    let o = opts(Mode::ReadOnly { slack_percent: 1 });
    let plan = basalt_ext4::plan(&t, &o).expect("plan");
    let cursor = plan.write(std::io::Cursor::new(Vec::new())).expect("write");
    let bytes = cursor.into_inner();
    assert_eq!(bytes.len() as u64, plan.size_bytes());
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("t.img");
    write_image(&t, &o, &img);
    assert!(
        std::fs::read(&img).unwrap() == bytes,
        "Cursor and File outputs differ"
    );
}
