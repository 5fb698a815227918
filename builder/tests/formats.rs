//! The cloud formats (vmdk, vhd, gce) of a real image, checked against the
//! raw image with qemu-img and tar, written the way `basalt build` writes
//! them (basalt-vdisk over the raw file, streamed).
//!
//! Needs a built image: BASALT_BOOT_IMAGE_DIR=DIR (a finished build), or
//! BASALT_NETWORK_TESTS=1 to build the default one (see common/image.rs).
//! Needs qemu-utils, tar, gzip. The CLI path (`--format vmdk,vhd,gce`) is
//! covered by the default image build in default_image.rs.

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use basalt_vdisk::{RawDisk, VhdOptions, VmdkOptions};

fn enabled() -> bool {
    let on = std::env::var_os("BASALT_BOOT_IMAGE_DIR").is_some()
        || std::env::var("BASALT_NETWORK_TESTS").as_deref() == Ok("1");
    if !on {
        eprintln!(
            "SKIPPED cloud format tests: set BASALT_BOOT_IMAGE_DIR or BASALT_NETWORK_TESTS=1"
        );
    }
    on && ["qemu-img", "tar"].iter().all(|t| {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "!!! SKIPPING cloud format tests: {t} is not installed (apt install qemu-utils tar)"
            );
        }
        ok
    })
}

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("format-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the test dir");
    d
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("spawn");
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn info(args: &[&str]) -> serde_json::Value {
    let out = run(Command::new("qemu-img")
        .arg("info")
        .arg("--output=json")
        .args(args));
    serde_json::from_str(&out).expect("qemu-img info JSON")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn vmdk_of_the_default_image() {
    if !enabled() {
        return;
    }
    let raw = &common::image::built().image;
    let w = workdir("vmdk");
    let out = w.join("disk.vmdk");
    let t = Instant::now();
    let disk = RawDisk::open(raw).expect("raw");
    let opts = VmdkOptions {
        cid: 7,
        file_name: "disk.vmdk".into(),
        level: 6,
    };
    let mut f = BufWriter::new(File::create(&out).expect("create"));
    basalt_vdisk::write_vmdk(&disk, &opts, &mut f).expect("vmdk");
    f.flush().expect("flush");
    eprintln!("format tests: vmdk written in {:.1?}", t.elapsed());
    let i = info(&[s(&out)]);
    assert_eq!(i["format"], "vmdk");
    assert_eq!(
        i["format-specific"]["data"]["create-type"],
        "streamOptimized"
    );
    assert_eq!(i["virtual-size"], disk.len());
    run(Command::new("qemu-img").args(["check", "-f", "vmdk", s(&out)]));
    run(Command::new("qemu-img").args(["compare", "-f", "raw", "-F", "vmdk", s(raw), s(&out)]));
    let _ = std::fs::remove_dir_all(&w);
}

#[test]
fn vhd_of_the_default_image() {
    if !enabled() {
        return;
    }
    let raw = &common::image::built().image;
    let w = workdir("vhd");
    let out = w.join("disk.vhd");
    let disk = RawDisk::open(raw).expect("raw");
    let f = File::create(&out).expect("create");
    let opts = VhdOptions {
        unique_id: [1; 16],
        timestamp: 1_767_225_600,
    };
    let st = basalt_vdisk::write_vhd_fixed(&disk, &opts, &f).expect("vhd");
    assert_eq!(st.virtual_size % (1 << 20), 0);
    let vhd = format!(
        "driver=vpc,force_size_calc=current_size,file.filename={}",
        s(&out)
    );
    let i = info(&["--image-opts", &vhd]);
    assert_eq!(i["format"], "vpc");
    assert_eq!(i["virtual-size"], st.virtual_size);
    let raw_opts = format!("driver=raw,file.filename={}", s(raw));
    run(Command::new("qemu-img").args(["compare", "--image-opts", &raw_opts, &vhd]));
    let _ = std::fs::remove_dir_all(&w);
}

#[test]
fn gce_of_the_default_image() {
    if !enabled() {
        return;
    }
    let raw = &common::image::built().image;
    let w = workdir("gce");
    let out = w.join("disk.tar.gz");
    let disk = RawDisk::open(raw).expect("raw");
    let f = BufWriter::new(File::create(&out).expect("create"));
    let t = Instant::now();
    basalt_vdisk::write_gce(&disk, 1_767_225_600, 6, f)
        .expect("gce")
        .flush()
        .expect("flush");
    eprintln!("format tests: gce archive written in {:.1?}", t.elapsed());
    let list = run(Command::new("tar").args(["-tzf", s(&out)]));
    assert_eq!(list, "disk.raw\n");
    // GNU tar writes every zero of a plain member; keep the copy sparse.
    run(Command::new("sh").args([
        "-c",
        "tar -xzOf \"$1\" disk.raw | dd of=\"$2\" bs=1M iflag=fullblock conv=sparse status=none",
        "sh",
        s(&out),
        s(&w.join("disk.raw")),
    ]));
    run(Command::new("qemu-img").args([
        "compare",
        "-f",
        "raw",
        "-F",
        "raw",
        s(raw),
        s(&w.join("disk.raw")),
    ]));
    assert_eq!(
        std::fs::metadata(w.join("disk.raw"))
            .expect("disk.raw")
            .len(),
        disk.len()
    );
    let _ = std::fs::remove_dir_all(&w);
}
