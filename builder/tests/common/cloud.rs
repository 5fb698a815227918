//! Helpers for the datasource and toolbox suites: a BIOS guest under
//! `basalt boot` with any extra arguments (a `--datasource`; driven by
//! common/guest.rs), and the ROOT filesystem read offline after the VM is
//! stopped (journal replayed by e2fsck, files pulled out with debugfs), so
//! a test can stop at the initramfs line "provisioned from" instead of
//! booting to sshd.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::guest::{self, Guest};

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tools a QEMU suite needs; prints a loud SKIPPED line naming the
/// first one missing.
pub fn tools_present(suite: &str, tools: &[(&str, &str)]) -> bool {
    for (tool, package) in tools {
        if !have(tool) {
            eprintln!("SKIPPED {suite}: {tool} is not installed (apt install {package})");
            return false;
        }
    }
    true
}

/// `basalt boot IMAGE --firmware bios --memory 2048 --cpus 2` plus `extra`
/// (e.g. `--datasource ec2 --config FILE`), console and stderr in
/// `work/<tag>.*`.
pub fn boot(image: &Path, extra: &[&OsStr], work: &Path, tag: &str) -> Guest {
    let mut args = guest::args(&[
        OsStr::new("boot"),
        image.as_os_str(),
        OsStr::new("--firmware"),
        OsStr::new("bios"),
        OsStr::new("--memory"),
        OsStr::new("2048"),
        OsStr::new("--cpus"),
        OsStr::new("2"),
    ]);
    args.extend(guest::args(extra));
    guest::start(&args, work, tag)
}

/// The ROOT filesystem of a stopped guest's disk, copied out of the image
/// (sparse), its journal replayed, checked clean by e2fsck, and selected
/// directories dumped with debugfs into `dir/tree`.
pub struct RootFs {
    pub tree: PathBuf,
    file: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    out
}

impl RootFs {
    /// `offset` is ROOT's start in `image`; ROOT runs to the end of the disk
    /// or `size` bytes, whichever the guest left (it may have grown it).
    pub fn open(image: &Path, offset: u64, dir: &Path, dirs: &[&str]) -> RootFs {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("creating the ROOT scratch dir");
        let file = dir.join("root.ext4");
        let out = run(
            Command::new("dd")
                .arg(format!("if={}", image.display()))
                .arg(format!("of={}", file.display()))
                .args(["bs=4M", "iflag=skip_bytes", "conv=sparse", "status=none"])
                .arg(format!("skip={offset}")),
            "dd",
        );
        assert!(
            out.status.success(),
            "copying ROOT out of {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The VM was killed: replay the journal (e2fsck exits 1 when it
        // changed something, e.g. replayed), then demand a clean check.
        let out = run(Command::new("e2fsck").args(["-fy"]).arg(&file), "e2fsck");
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 1,
            "e2fsck -fy on ROOT exited {code}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = run(Command::new("e2fsck").args(["-fn"]).arg(&file), "e2fsck");
        assert!(
            out.status.success(),
            "ROOT is not clean after the journal replay:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree).expect("creating the dump dir");
        for d in dirs {
            let dest = tree.join(d.trim_start_matches('/'));
            let parent = dest.parent().expect("dump parent");
            std::fs::create_dir_all(parent).expect("creating the dump parent");
            let out = run(
                Command::new("debugfs")
                    .arg("-R")
                    .arg(format!("rdump {d} {}", parent.display()))
                    .arg(&file),
                "debugfs",
            );
            assert!(
                out.status.success(),
                "debugfs rdump {d}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        RootFs { tree, file }
    }

    /// A path under the dumped directories (absolute, as on the machine).
    pub fn path(&self, p: &str) -> PathBuf {
        self.tree.join(p.trim_start_matches('/'))
    }

    /// The text of a dumped file; panics with the path if it is missing.
    pub fn text(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p))
            .unwrap_or_else(|e| panic!("{p} on ROOT: {e} (dumped into {})", self.tree.display()))
    }

    pub fn exists(&self, p: &str) -> bool {
        std::fs::symlink_metadata(self.path(p)).is_ok()
    }

    /// A symlink's target; panics if `p` is not a symlink.
    pub fn link(&self, p: &str) -> String {
        std::fs::read_link(self.path(p))
            .unwrap_or_else(|e| panic!("{p} on ROOT is not a symlink: {e}"))
            .display()
            .to_string()
    }

    /// `debugfs -R "stat P"` output (mode, owner), for what rdump may not keep.
    pub fn stat(&self, p: &str) -> String {
        let out = run(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("stat {p}"))
                .arg(&self.file),
            "debugfs",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RootFs {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
