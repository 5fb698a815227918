//! Shared helpers of the integration tests: writing images and running the
//! e2fsprogs oracles.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_ext4::{Mode, Options};
use basalt_tree::Tree;

/// Whether an external tool is installed; prints a loud message if not.
pub fn have(tool: &str) -> bool {
    let ok = Command::new("sh").arg("-c").arg(format!("command -v {tool} || test -x /usr/sbin/{tool} || test -x /sbin/{tool}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("!!!!! SKIPPING oracle check: {tool} is not installed (apt-get install e2fsprogs) !!!!!");
    }
    ok
}

pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

pub fn opts(mode: Mode) -> Options {
    let mut o = Options::new(mode);
    o.uuid = *b"basalt-ext4-test";
    o.hash_seed = *b"hash-seed-000001";
    o.timestamp = 1_700_000_000;
    o.label = "test".into();
    o
}

/// Plan and write `tree` to `path`; returns the image size.
pub fn write_image(tree: &Tree, o: &Options, path: &Path) -> u64 {
    let plan = basalt_ext4::plan(tree, o).expect("plan");
    let mut f = std::fs::File::create(path).expect("create image");
    plan.write_to(&mut f).expect("write image");
    plan.size_bytes()
}

/// `e2fsck -fn`: panics with its output unless it exits 0.
pub fn e2fsck(path: &Path) {
    if !have("e2fsck") {
        return;
    }
    let out = Command::new(tool("e2fsck")).arg("-fn").arg(path).output().expect("run e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn {} failed ({}):\n{}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run debugfs commands (one per line) against the image; returns stdout.
pub fn debugfs(path: &Path, script: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = dir.path().join("cmds");
    std::fs::write(&cmd, script).expect("write script");
    let out = Command::new(tool("debugfs")).arg("-f").arg(&cmd).arg(path).output().expect("run debugfs");
    assert!(out.status.success(), "debugfs failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
