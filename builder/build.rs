//! Builds the on-machine programs (the initramfs `/init`, `basalt-provision`,
//! `basalt-update`) from the provisioner crate, statically linked, so that
//! `basalt build` can put them into images. They are embedded in the
//! `basalt` binary: one `cargo build`/`cargo run` of the builder is all a
//! fresh checkout needs.
//!
//! Set BASALT_MACHINE_BINS=DIR to use prebuilt binaries from DIR instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const BINS: [&str; 3] = ["basalt-init", "basalt-provision", "basalt-update"];
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    println!("cargo:rerun-if-env-changed=BASALT_MACHINE_BINS");
    // profiles/ and overlays/ are embedded with include_dir, which cannot track them itself.
    for p in [
        "provisioner",
        "crates",
        "Cargo.lock",
        "Cargo.toml",
        "profiles",
        "overlays",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    let bin_dir = match env::var_os("BASALT_MACHINE_BINS") {
        Some(dir) => PathBuf::from(dir),
        None => build_static(&root, &out),
    };
    for b in BINS {
        let src = bin_dir.join(b);
        let dst = out.join(b);
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
    }
}

fn build_static(root: &Path, out: &Path) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = out.join("machine-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--locked",
            "--profile",
            "machine",
            "-p",
            "basalt-provisioner",
            "--target",
            TARGET,
        ])
        .args(BINS.iter().flat_map(|b| ["--bin", b]))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags must not leak in; ours make the binaries static.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    let status = cmd
        .status()
        .expect("running cargo for the machine binaries");
    assert!(
        status.success(),
        "building the static machine binaries failed"
    );
    target_dir.join(TARGET).join("machine")
}
