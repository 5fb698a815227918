//! The strongest oracle: the Linux kernel itself. Mounts images through a
//! loop device (needs root and loop support; skipped loudly otherwise),
//! compares with the model, then modifies a writable image and checks it
//! with e2fsck.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_ext4::Mode;
use basalt_tree::{Kind, Tree};
use common::*;

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn try_mount(img: &Path, mnt: &Path, opts: &str) -> Option<Mounted> {
    let out = Command::new("mount")
        .arg("-o")
        .arg(opts)
        .arg(img)
        .arg(mnt)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "!!!!! SKIPPING kernel mount test: mount -o {opts} failed: {} !!!!!",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(Mounted(mnt.to_path_buf()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn compare(tree: &Tree, mnt: &Path) {
    for (k, e) in tree.iter() {
        let p = mnt.join(k.trim_start_matches('/'));
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|err| panic!("{k}: {err}"));
        let te = match &e.kind {
            Kind::HardLink(t) => tree.get(t).expect("target"),
            _ => e,
        };
        assert_eq!(md.mode() & 0o7777, te.mode, "{k}: mode");
        assert_eq!((md.uid(), md.gid()), (te.uid, te.gid), "{k}: owner");
        assert_eq!(md.mtime(), te.mtime, "{k}: mtime");
        assert_eq!(md.mtime_nsec(), 0, "{k}: mtime nsec");
        match &te.kind {
            Kind::File(c) => assert!(
                std::fs::read(&p).expect("read") == c.read_all().expect("model"),
                "{k}: bytes"
            ),
            Kind::Symlink(t) => assert_eq!(
                std::fs::read_link(&p).expect("readlink").to_str(),
                Some(t.as_str()),
                "{k}"
            ),
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                assert!(
                    md.file_type().is_char_device() || md.file_type().is_block_device(),
                    "{k}"
                );
                let rdev = md.rdev();
                let (maj, min) = (
                    (rdev >> 8) & 0xfff,
                    (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
                );
                assert_eq!(
                    (maj, min),
                    (u64::from(*major), u64::from(*minor)),
                    "{k}: device"
                );
            }
            Kind::Fifo => assert!(md.file_type().is_fifo(), "{k}"),
            Kind::Dir => assert!(md.is_dir(), "{k}"),
            Kind::HardLink(_) => unreachable!(),
        }
    }
}

#[test]
fn kernel_reads_and_writes_our_images() {
    if !is_root() {
        eprintln!("!!!!! SKIPPING kernel mount test: not running as root !!!!!");
        return;
    }
    let mut tree = sample_tree();
    // An indexed (dir_index) directory: the kernel finds names by hash.
    tree.insert("/big", basalt_tree::Entry::dir(0o755))
        .expect("insert");
    for i in 0..800 {
        let name = format!(
            "/big/{}-entry-{i}",
            ["plain", "ünïcode", "日本語", "😀"][i % 4]
        );
        tree.insert(
            &name,
            basalt_tree::Entry::file(0o644, basalt_tree::Content::from_bytes(vec![])),
        )
        .expect("insert");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");

    let ro = dir.path().join("ro.img");
    write_image(&tree, &opts(Mode::ReadOnly { slack_percent: 1 }), &ro);
    {
        let Some(_m) = try_mount(&ro, &mnt, "loop,ro") else {
            return;
        };
        compare(&tree, &mnt);
    }

    let rw = dir.path().join("rw.img");
    write_image(
        &tree,
        &opts(Mode::Writable {
            size_bytes: 128 << 20,
        }),
        &rw,
    );
    {
        let Some(_m) = try_mount(&rw, &mnt, "loop") else {
            return;
        };
        compare(&tree, &mnt);
        std::fs::write(mnt.join("new-file"), vec![7u8; 3 << 20]).expect("write through the kernel");
        std::fs::create_dir(mnt.join("new-dir")).expect("mkdir through the kernel");
        std::fs::remove_file(mnt.join("usr/bin/hard")).expect("unlink through the kernel");
        assert!(Command::new("sync").status().expect("sync").success());
    }
    e2fsck(&rw);
}
