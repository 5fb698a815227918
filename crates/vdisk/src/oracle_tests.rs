//! The writers checked with qemu-img, tar and gzip (when installed).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::testutil::{sample_disk, scratch};
use crate::*;

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "!!! SKIPPING oracle check: {tool} is not installed (apt-get install qemu-utils tar gzip)"
        );
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("spawn");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json
        .find(&format!("\"{key}\""))
        .unwrap_or_else(|| panic!("{key} missing from {json}"));
    let rest = json[at + key.len() + 2..].trim_start_matches([':', ' ']);
    let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"')
}

fn vmdk_of(raw: &Path, out: &Path) -> VmdkStats {
    let disk = RawDisk::open(raw).expect("raw");
    let f = File::create(out).expect("create");
    let opts = VmdkOptions {
        cid: 0x1234_5678,
        file_name: "test.vmdk".into(),
        level: 6,
    };
    write_vmdk(&disk, &opts, BufWriter::new(f)).expect("vmdk")
}

fn vhd_of(raw: &Path, out: &Path) -> VhdStats {
    let disk = RawDisk::open(raw).expect("raw");
    let f = File::create(out).expect("create");
    let opts = VhdOptions {
        unique_id: *b"0123456789abcdef",
        timestamp: 1_700_000_000,
    };
    write_vhd_fixed(&disk, &opts, &f).expect("vhd")
}

fn gce_of(raw: &Path, out: &Path) {
    let disk = RawDisk::open(raw).expect("raw");
    let f = File::create(out).expect("create");
    write_gce(&disk, 1_700_000_000, 6, BufWriter::new(f)).expect("gce");
}

struct Cleanup(Vec<PathBuf>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

#[test]
fn vmdk_matches_raw_by_qemu_img() {
    let (raw, _f, len) = sample_disk("vmdk-raw");
    let (out, out2) = (scratch("a.vmdk"), scratch("b.vmdk"));
    let _c = Cleanup(vec![raw.clone(), out.clone(), out2.clone()]);
    let st = vmdk_of(&raw, &out);
    assert_eq!(st.capacity_sectors, len / 512);
    // Grains with data: 0, 1 (70 000 bytes), 15/16 (across 1 MiB), 528, 640.
    assert_eq!(st.grains_written, 6);
    vmdk_of(&raw, &out2);
    assert_eq!(
        std::fs::read(&out).expect("a"),
        std::fs::read(&out2).expect("b")
    );
    if !have("qemu-img") {
        return;
    }
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&out));
    assert_eq!(json_field(&info, "format"), "vmdk", "{info}");
    assert_eq!(
        json_field(&info, "create-type"),
        "streamOptimized",
        "{info}"
    );
    assert_eq!(json_field(&info, "virtual-size"), len.to_string(), "{info}");
    run(Command::new("qemu-img")
        .args(["check", "-f", "vmdk"])
        .arg(&out));
    run(Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "vmdk"])
        .arg(&raw)
        .arg(&out));
}

#[test]
fn vmdk_compare_catches_a_difference() {
    // The oracle itself: a changed raw byte must make compare fail.
    let (raw, f, _) = sample_disk("vmdk-diff");
    let out = scratch("d.vmdk");
    let _c = Cleanup(vec![raw.clone(), out.clone()]);
    vmdk_of(&raw, &out);
    if !have("qemu-img") {
        return;
    }
    std::os::unix::fs::FileExt::write_all_at(&f, b"!", 20 << 20).expect("poke");
    let st = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vmdk"])
        .arg(&raw)
        .arg(&out)
        .status()
        .expect("spawn");
    assert_eq!(st.code(), Some(1));
}

#[test]
fn vhd_matches_raw_by_qemu_img() {
    let (raw, _f, len) = sample_disk("vhd-raw");
    let (out, out2) = (scratch("a.vhd"), scratch("b.vhd"));
    let _c = Cleanup(vec![raw.clone(), out.clone(), out2.clone()]);
    let st = vhd_of(&raw, &out);
    let size = len.next_multiple_of(1 << 20);
    assert_eq!(st.virtual_size, size);
    assert_eq!(std::fs::metadata(&out).expect("meta").len(), size + 512);
    vhd_of(&raw, &out2);
    assert_eq!(
        std::fs::read(&out).expect("a"),
        std::fs::read(&out2).expect("b")
    );
    if !have("qemu-img") {
        return;
    }
    // qemu sizes VHDs from unknown creators by CHS geometry unless told to
    // use the footer's current size, as Azure and Hyper-V do.
    let vhd_opts = format!(
        "driver=vpc,force_size_calc=current_size,file.filename={}",
        out.display()
    );
    let info =
        run(Command::new("qemu-img").args(["info", "--output=json", "--image-opts", &vhd_opts]));
    assert_eq!(json_field(&info, "format"), "vpc", "{info}");
    assert_eq!(
        json_field(&info, "virtual-size"),
        size.to_string(),
        "{info}"
    );
    // qemu probes only dynamic VHDs (a footer copy at byte 0); a fixed
    // one must be named: it still has to open as vpc.
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json", "-f", "vpc"])
        .arg(&out));
    assert_eq!(json_field(&info, "format"), "vpc", "{info}");
    let raw_opts = format!("driver=raw,file.filename={}", raw.display());
    run(Command::new("qemu-img").args(["compare", "--image-opts", &raw_opts, &vhd_opts]));
}

#[test]
fn gce_archive_extracts_to_the_raw_disk() {
    let (raw, _f, len) = sample_disk("gce-raw");
    let (out, out2, dir) = (scratch("a.tar.gz"), scratch("b.tar.gz"), scratch("x"));
    let _c = Cleanup(vec![raw.clone(), out.clone(), out2.clone(), dir.clone()]);
    gce_of(&raw, &out);
    gce_of(&raw, &out2);
    assert_eq!(
        std::fs::read(&out).expect("a"),
        std::fs::read(&out2).expect("b")
    );
    if !have("tar") || !have("gzip") {
        return;
    }
    run(Command::new("gzip").arg("-t").arg(&out));
    let list = run(Command::new("tar").args(["-tvzf"]).arg(&out));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 1, "{list}");
    assert!(lines[0].ends_with(" disk.raw"), "{list}");
    assert!(lines[0].contains(&len.to_string()), "{list}");
    std::fs::create_dir_all(&dir).expect("dir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&out)
        .arg("-C")
        .arg(&dir));
    let got = std::fs::read(dir.join("disk.raw")).expect("extracted");
    assert_eq!(got.len() as u64, len);
    assert!(
        got == std::fs::read(&raw).expect("raw"),
        "extracted disk differs"
    );
}

#[test]
fn gce_archive_restores_a_trailing_hole() {
    let data = crate::testutil::noise(9, 10_000);
    let (raw, _f) = crate::testutil::sparse_file("gce-hole", 8 << 20, &[(4096, &data)]);
    let (out, dir) = (scratch("h.tar.gz"), scratch("h"));
    let _c = Cleanup(vec![raw.clone(), out.clone(), dir.clone()]);
    gce_of(&raw, &out);
    if !have("tar") {
        return;
    }
    std::fs::create_dir_all(&dir).expect("dir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&out)
        .arg("-C")
        .arg(&dir));
    let got = std::fs::read(dir.join("disk.raw")).expect("extracted");
    assert!(
        got == std::fs::read(&raw).expect("raw"),
        "extracted disk differs"
    );
}
