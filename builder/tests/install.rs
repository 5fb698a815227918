//! `basalt install` onto file-backed disks, checked with sgdisk -v,
//! e2fsck -fn and debugfs on the OEM partition.
//!
//! The offline tests make a small GPT image with an empty OEM ext4 (as
//! `basalt build` lays it out) by code. With BASALT_BOOT_TESTS=1 (and
//! BASALT_NETWORK_TESTS=1 unless BASALT_BOOT_IMAGE_DIR names a finished
//! build) the default image is installed onto a larger file disk with an
//! Ignition config, booted under QEMU, and must provision from OEM.
//!
//! Needs gdisk (sgdisk), e2fsprogs (e2fsck, debugfs); the boot test also
//! qemu-system-x86, openssh-client.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use basalt_gpt::{DiskLayout, Guid, PartSize, PartSpec, types};
use basalt_tree::{Content, Entry, Tree};

const OEM_SIZE: u64 = 8 << 20;
const ROOT_SIZE: u64 = 4 << 20;
const EPOCH: i64 = 1_767_225_600;

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("install-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the test dir");
    d
}

fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "!!! SKIPPING install oracle checks: {tool} is not installed (apt install gdisk e2fsprogs)"
        );
    }
    ok
}

/// A GPT disk with an OEM partition (number 6) holding an ext4 made from
/// `oem` and a ROOT partition (number 9) filled with a byte pattern.
fn tiny_image(path: &Path, oem: &Tree) -> (u64, u64) {
    let g = |n: u8| Guid([n; 16]);
    let specs = [
        PartSpec::new(6, "OEM", types::LINUX_DATA, g(6), PartSize::Bytes(OEM_SIZE)),
        PartSpec::new(
            9,
            "ROOT",
            types::ROOT_X86_64,
            g(9),
            PartSize::Bytes(ROOT_SIZE),
        ),
    ];
    let layout = DiskLayout::plan(g(1), &specs, None).expect("planning the test disk");
    let mut f = std::fs::File::create(path).expect("creating the test image");
    f.set_len(layout.disk_size).expect("sizing");
    layout.write_headers(&mut f).expect("writing the GPT");
    let oem_part = layout.partition(6).expect("OEM");
    let mut o = basalt_ext4::Options::new(basalt_ext4::Mode::Writable {
        size_bytes: OEM_SIZE,
    });
    o.label = "OEM".into();
    o.uuid = [0x0e; 16];
    o.hash_seed = [0x5e; 16];
    o.timestamp = EPOCH;
    let plan = basalt_ext4::plan(oem, &o).expect("planning OEM");
    let fs = plan
        .write(std::io::Cursor::new(vec![0u8; OEM_SIZE as usize]))
        .expect("writing OEM")
        .into_inner();
    f.write_all_at(&fs, oem_part.offset()).expect("placing OEM");
    let root = layout.partition(9).expect("ROOT");
    let pattern: Vec<u8> = (0..ROOT_SIZE).map(|i| (i % 251) as u8).collect();
    f.write_all_at(&pattern, root.offset())
        .expect("filling ROOT");
    (layout.disk_size, oem_part.offset())
}

fn basalt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .output()
        .expect("running basalt")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "basalt failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn failed(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "basalt succeeded, expected: {want}");
    assert!(err.contains(want), "expected {want:?} in:\n{err}");
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The OEM partition of `disk` copied out to its own file.
fn oem_fs(disk: &Path, offset: u64, dir: &Path) -> PathBuf {
    let f = std::fs::File::open(disk).expect("opening the disk");
    let mut b = vec![0u8; OEM_SIZE as usize];
    f.read_exact_at(&mut b, offset).expect("reading OEM");
    let out = dir.join("oem.ext4");
    std::fs::write(&out, b).expect("writing OEM copy");
    out
}

fn sgdisk_clean(disk: &Path) {
    let o = Command::new("sgdisk")
        .arg("-v")
        .arg(disk)
        .output()
        .expect("sgdisk");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("No problems found"),
        "sgdisk -v {}:\n{text}{}",
        disk.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn e2fsck_clean(fs: &Path) {
    let o = Command::new("e2fsck")
        .arg("-fn")
        .arg(fs)
        .output()
        .expect("e2fsck");
    assert!(
        o.status.success(),
        "e2fsck -fn OEM:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn debugfs(fs: &Path, req: &str) -> String {
    let o = Command::new("debugfs")
        .args(["-R", req])
        .arg(fs)
        .output()
        .expect("debugfs");
    assert!(o.status.success(), "debugfs {req} failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const IGNITION: &str = r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/hostname","mode":420,"contents":{"source":"data:,installed"}}]}}"#;
const CLOUD_CONFIG: &str = "#cloud-config\nhostname: installed\n";

#[test]
fn installs_onto_a_larger_file_with_the_config_on_oem() {
    let w = workdir("larger");
    let img = w.join("tiny.img");
    let (img_size, oem_off) = tiny_image(&img, &Tree::new());
    let tools = have("sgdisk") && have("e2fsck") && have("debugfs");
    for (name, text, other) in [
        ("config.ign", IGNITION, "user-data"),
        ("user-data", CLOUD_CONFIG, "config.ign"),
    ] {
        let cfg = w.join(format!("cfg-{name}"));
        std::fs::write(&cfg, text).expect("writing the config");
        let disk = w.join(format!("disk-{name}"));
        ok(&basalt(&[
            "install",
            "--device",
            s(&disk),
            "--image",
            s(&img),
            "--config",
            s(&cfg),
            "--size",
            "64MiB",
        ]));
        assert_eq!(std::fs::metadata(&disk).expect("disk").len(), 64 << 20);
        // Everything outside OEM and the GPT's backup is the image's.
        let a = std::fs::read(&img).expect("image");
        let b = std::fs::read(&disk).expect("disk");
        let oem = oem_off as usize..(oem_off + OEM_SIZE) as usize;
        let gpt_end = img_size as usize - 33 * 512;
        // (The primary header and protective MBR change with the relocation.)
        assert!(
            a[34 * 512..oem.start] == b[34 * 512..oem.start],
            "image start differs"
        );
        assert!(a[oem.end..gpt_end] == b[oem.end..gpt_end], "ROOT differs");
        assert!(
            b[img_size as usize..(64 << 20) - 33 * 512]
                .iter()
                .all(|&x| x == 0)
        );
        if !tools {
            continue;
        }
        sgdisk_clean(&disk);
        let fs = oem_fs(&disk, oem_off, &w);
        e2fsck_clean(&fs);
        assert_eq!(debugfs(&fs, &format!("cat /{name}")), text);
        let ls = debugfs(&fs, "ls -l /");
        assert!(!ls.contains(other), "{other} on OEM too:\n{ls}");
        let stat = debugfs(&fs, &format!("stat /{name}"));
        assert!(stat.contains("Mode:  0600"), "{stat}");
        // The OEM filesystem keeps its identity.
        let sb = debugfs(&fs, "stats");
        assert!(sb.contains("Filesystem volume name:   OEM"), "{sb}");
        assert!(sb.contains("0e0e0e0e-0e0e-0e0e-0e0e-0e0e0e0e0e0e"), "{sb}");
    }
    let _ = std::fs::remove_dir_all(&w);
}

#[test]
fn installs_without_config_and_onto_an_equal_size_file() {
    let w = workdir("plain");
    let img = w.join("tiny.img");
    let (size, _) = tiny_image(&img, &Tree::new());
    let disk = w.join("disk.img");
    ok(&basalt(&[
        "install",
        "--device",
        s(&disk),
        "--image",
        s(&img),
    ]));
    assert_eq!(
        std::fs::read(&disk).expect("disk"),
        std::fs::read(&img).expect("img")
    );
    // An existing, larger file keeps its size and loses its old content.
    std::fs::write(&disk, vec![0xaa; (size + (1 << 20)) as usize]).expect("old content");
    ok(&basalt(&[
        "install",
        "--device",
        s(&disk),
        "--image",
        s(&img),
    ]));
    let b = std::fs::read(&disk).expect("disk");
    assert_eq!(b.len() as u64, size + (1 << 20));
    assert!(b[size as usize..b.len() - 33 * 512].iter().all(|&x| x == 0));
    if have("sgdisk") {
        sgdisk_clean(&disk);
    }
    let _ = std::fs::remove_dir_all(&w);
}

#[test]
fn refuses_bad_input_before_writing() {
    let w = workdir("refuse");
    let img = w.join("tiny.img");
    tiny_image(&img, &Tree::new());
    let mut full = Tree::new();
    full.insert(
        "/keep",
        Entry::file(0o644, Content::from_bytes(b"x".to_vec())),
    )
    .expect("insert");
    let used = w.join("used.img");
    tiny_image(&used, &full);
    let bad_cfg = w.join("bad.ign");
    std::fs::write(
        &bad_cfg,
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"relative"}]}}"#,
    )
    .expect("cfg");
    let junk_cfg = w.join("junk");
    std::fs::write(&junk_cfg, "hello\n").expect("cfg");
    let good_cfg = w.join("good.ign");
    std::fs::write(&good_cfg, IGNITION).expect("cfg");
    let disk = w.join("disk.img");
    let (missing, xz) = (w.join("missing.img"), w.join("x.img.xz"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--image", s(&img), "--config", s(&bad_cfg)],
            "is not a valid config",
        ),
        (
            vec!["--image", s(&img), "--config", s(&junk_cfg)],
            "unrecognised config",
        ),
        (
            vec!["--image", s(&used), "--config", s(&good_cfg)],
            "not the empty one",
        ),
        (
            vec!["--image", s(&img), "--size", "1MiB"],
            "smaller than the image",
        ),
        (vec!["--image", s(&missing)], "missing.img"),
        (vec!["--image", s(&xz)], "xz-compressed"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["install", "--device", s(&disk)];
        args.extend(extra);
        failed(&basalt(&args), want);
        assert!(!disk.exists(), "{want}: the target was written");
    }
    // The image itself as the target.
    failed(
        &basalt(&["install", "--device", s(&img), "--image", s(&img)]),
        "is the image itself",
    );
    // Not a file or a block device.
    failed(
        &basalt(&["install", "--device", "/dev/null", "--image", s(&img)]),
        "neither a block device nor a regular file",
    );
    let _ = std::fs::remove_dir_all(&w);
}

/// The default image installed onto a larger file disk with an Ignition
/// config on OEM and nothing through fw_cfg: first boot provisions from OEM.
#[test]
fn installed_disk_boots_and_provisions_from_oem() {
    if std::env::var("BASALT_BOOT_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIPPED install boot test: set BASALT_BOOT_TESTS=1");
        return;
    }
    if std::env::var_os("BASALT_BOOT_IMAGE_DIR").is_none()
        && std::env::var("BASALT_NETWORK_TESTS").as_deref() != Ok("1")
    {
        eprintln!("SKIPPED install boot test: set BASALT_NETWORK_TESTS=1 or BASALT_BOOT_IMAGE_DIR");
        return;
    }
    for tool in ["qemu-system-x86_64", "ssh", "ssh-keygen"] {
        if !have(tool) {
            return;
        }
    }
    let b = common::image::built();
    let w = workdir("boot");
    let (key, pubkey) = common::guest::keypair(&w);
    let cfg = w.join("config.ign");
    std::fs::write(&cfg, common::configs::ignition(&pubkey, "installed-host")).expect("cfg");
    let disk = w.join("disk.img");
    let size = std::fs::metadata(&b.image).expect("image").len() + (2 << 30);
    ok(&basalt(&[
        "install",
        "--device",
        s(&disk),
        "--image",
        s(&b.image),
        "--config",
        s(&cfg),
        "--size",
        &size.to_string(),
    ]));
    if have("sgdisk") {
        sgdisk_clean(&disk);
    }
    let mut g = common::guest::boot(&disk, "bios", None, &w, "installed");
    g.wait_ssh(&key, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("installed disk: {e}"));
    assert_eq!(g.must(&key, "hostname"), "installed-host");
    let record = g.must(&key, "sudo cat /etc/.basalt-provision.json");
    assert!(
        record.contains("oem:config.ign"),
        "not provisioned from OEM: {record}"
    );
    g.stop();
    let _ = std::fs::remove_dir_all(&w);
}
