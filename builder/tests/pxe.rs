//! Diskless boots of `basalt build --format pxe` (issue 7 §1), built from
//! the same profile, lock and epoch as the shared default image.
//!
//! - BASALT_NETWORK_TESTS=1: the pxe build; its script carries the disk
//!   image's /usr root hash; the initrd is the disk initramfs followed by
//!   a newc archive holding usr.img, byte-identical to the disk's slot A
//!   (filesystem + hash area).
//! - BASALT_PXE_TESTS=1 in addition (opt in: two boots): (a) a direct
//!   kernel boot (`basalt boot --pxe`) with an Ignition config through
//!   fw_cfg, checked over ssh: / is a tmpfs, /usr a dm-verity device
//!   over a loop device with the command line's root hash, the config
//!   applied; (b) a real network boot:
//!   QEMU's TFTP serves the artifacts, the virtio-net iPXE ROM runs the
//!   script, and /init fetches the config over HTTP from a server on the
//!   host's loopback (10.0.2.2 in the guest), up to "provisioned from".
//!
//! Needs qemu-system-x86, ipxe-qemu (the virtio-net option ROM),
//! openssh-client.

mod common;
#[path = "common/pxe.rs"]
mod pxe_common;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::configs;
use common::guest;
use common::image;

const CONSOLE_TIMEOUT: Duration = Duration::from_secs(600);
const SSH_TIMEOUT: Duration = Duration::from_secs(900);
/// QEMU's virtio-net option ROM (Debian ipxe-qemu).
const IPXE_ROM: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";

fn enabled(var: &str, what: &str) -> bool {
    let on = std::env::var(var).as_deref() == Ok("1");
    if !on {
        eprintln!("SKIPPED {what}: set {var}=1");
    }
    on
}

fn tool(name: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("pxe-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the test dir");
    d
}

fn script(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("basalt-qemu.ipxe")).expect("reading the iPXE script")
}

fn word<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key))
}

/// Finds `usr.img`'s newc header in the initrd: (data offset, size).
fn usr_member(initrd: &Path) -> (u64, u64) {
    let mut f = std::fs::File::open(initrd).expect("opening the initrd");
    let len = f.metadata().unwrap().len();
    // The uncompressed archive starts after the compressed part; scan for the
    // member name from the start of the archive part (headers are ASCII).
    let mut buf = vec![0u8; 64 << 20];
    let n = f.read(&mut buf).unwrap();
    let needle = b"usr.img\0";
    let at = buf[..n]
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("usr.img member in the first 64 MiB of the initrd");
    let h = at - 110;
    assert_eq!(&buf[h..h + 6], b"070701", "newc magic before usr.img");
    let field = |i: usize| {
        u64::from_str_radix(
            std::str::from_utf8(&buf[h + 6 + 8 * i..h + 14 + 8 * i]).unwrap(),
            16,
        )
        .unwrap()
    };
    let size = field(6);
    let namesize = field(11);
    let data = (h as u64 + 110 + namesize).next_multiple_of(4);
    assert!(data + size <= len, "usr.img runs past the initrd");
    assert_eq!(h % 4, 0, "the uncompressed archive is 4-byte aligned");
    (data, size)
}

fn same_bytes(a: &Path, a_off: u64, b: &Path, b_off: u64, len: u64) -> bool {
    let mut fa = std::fs::File::open(a).unwrap();
    let mut fb = std::fs::File::open(b).unwrap();
    fa.seek(SeekFrom::Start(a_off)).unwrap();
    fb.seek(SeekFrom::Start(b_off)).unwrap();
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(1 << 20)).unwrap();
        fa.read_exact(&mut ba[..n]).unwrap();
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
        left -= n as u64;
    }
    true
}

#[test]
fn pxe_artifacts_match_the_disk_image() {
    if !enabled("BASALT_NETWORK_TESTS", "pxe build test (needs the mirror)") {
        return;
    }
    let disk = image::built();
    let dir = pxe_common::built();
    let s = script(&dir);
    assert!(s.starts_with("#!ipxe\n"), "{s}");
    let kernel_line = s
        .lines()
        .find(|l| l.starts_with("kernel "))
        .expect("kernel line");
    assert_eq!(
        word(kernel_line, "basalt.usrhash="),
        Some(disk.usr_root_hash().as_str()),
        "the PXE /usr is the disk image's: {kernel_line}"
    );
    assert_eq!(word(kernel_line, "basalt.usr="), Some("initrd:/usr.img"));
    assert_eq!(word(kernel_line, "basalt.slot="), None);
    for f in ["basalt-qemu-vmlinuz", "basalt-qemu-initrd.img"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // usr.img is slot A byte for byte (filesystem, superblock, hash tree).
    let initrd = dir.join("basalt-qemu-initrd.img");
    let (data, size) = usr_member(&initrd);
    let hash_offset = disk.manifest["usr"]["hash_offset"].as_u64().unwrap();
    let hash_size = disk.manifest["usr"]["hash_size"].as_u64().unwrap();
    assert_eq!(size, hash_offset + hash_size);
    let (slot_off, _) = disk.partition("USR-A");
    assert!(
        same_bytes(&initrd, data, &disk.image, slot_off, size),
        "usr.img differs from the disk's USR-A"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["format"].as_str().unwrap_or("?"))
        .collect();
    eprintln!("pxe tests: manifest artifacts {kinds:?}");
}

#[test]
fn pxe_direct_kernel_boot_with_ignition() {
    if !enabled("BASALT_NETWORK_TESTS", "pxe boot test (needs the mirror)")
        || !enabled("BASALT_PXE_TESTS", "pxe direct kernel boot to sshd")
    {
        return;
    }
    for t in ["qemu-system-x86_64", "ssh", "ssh-keygen"] {
        if !tool(t) {
            eprintln!(
                "SKIPPED pxe direct boot: {t} is not installed (apt install qemu-system-x86 openssh-client)"
            );
            return;
        }
    }
    let dir = pxe_common::built();
    let work = workdir("direct");
    let (key, pubkey) = guest::keypair(&work);
    let cfg = work.join("config.ign");
    std::fs::write(&cfg, configs::ignition(&pubkey, "pxe-direct")).unwrap();
    let hash = word(
        script(&dir)
            .lines()
            .find(|l| l.starts_with("kernel "))
            .unwrap(),
        "basalt.usrhash=",
    )
    .unwrap()
    .to_string();
    let mut g = pxe_common::boot(&dir, &["--config", cfg.to_str().unwrap()], &work, "direct");
    let t = g
        .wait_console_unless(
            "basalt-init: provisioned from fw_cfg:",
            1,
            pxe_common::FATAL,
            CONSOLE_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("pxe tests: direct: provisioned after {t:.0?}");
    let t = g
        .wait_ssh(&key, SSH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("pxe tests: direct: ssh after {t:.0?}");
    assert_eq!(g.must(&key, "findmnt -n -o FSTYPE /"), "tmpfs");
    let usr = g.must(&key, "findmnt -n -o SOURCE,FSTYPE,OPTIONS /usr");
    assert!(usr.contains("ext4") && usr.contains("ro"), "/usr: {usr}");
    // The verity table: data and hash on the loop device, the root hash
    // from the command line.
    let table = g.must(&key, "sudo dmsetup table usr");
    assert!(table.contains(" verity 1 7:"), "{table}");
    assert!(table.contains(&hash), "root hash {hash} not in {table}");
    let backing = g.must(&key, "cat /sys/block/loop*/loop/backing_file");
    assert!(backing.contains("usr.img"), "{backing}");
    assert_eq!(g.must(&key, "hostname"), "pxe-direct");
    assert_eq!(
        g.must(&key, "cat /etc/basalt-test/hello.txt"),
        configs::HELLO
    );
    assert_eq!(g.must(&key, "readlink /bin"), "usr/bin");
    eprintln!(
        "pxe tests: direct: checks passed after {:.0?}",
        g.started.elapsed()
    );
}

#[test]
fn pxe_network_boot_tftp_ipxe_http_config() {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "pxe network boot test (needs the mirror)",
    ) || !enabled("BASALT_PXE_TESTS", "pxe network boot (TFTP + iPXE ROM)")
    {
        return;
    }
    if !tool("qemu-system-x86_64") || !Path::new(IPXE_ROM).is_file() {
        eprintln!(
            "SKIPPED pxe network boot: needs qemu-system-x86_64 and {IPXE_ROM} (apt install qemu-system-x86 ipxe-qemu)"
        );
        return;
    }
    let dir = pxe_common::built();
    let work = workdir("network");
    // The config on the host's loopback; the guest reaches it at 10.0.2.2.
    let marker = format!("pxe-net-{}", std::process::id());
    let cfg = serde_json::json!({
        "ignition": {"version": "3.4.0"},
        "storage": {"files": [{"path": "/etc/basalt-pxe-marker", "mode": 420,
            "contents": {"source": format!("data:,{marker}")}}]}
    })
    .to_string();
    let path = format!("/{marker}.ign");
    let server = pxe_common::ConfigServer::start(&path, cfg.into_bytes());
    let url = format!("http://10.0.2.2:{}{path}", server.port);
    // The TFTP root: the artifacts, and the script with the config URL.
    let tftp = work.join("tftp");
    std::fs::create_dir_all(&tftp).unwrap();
    for f in ["basalt-qemu-vmlinuz", "basalt-qemu-initrd.img"] {
        std::os::unix::fs::symlink(dir.join(f), tftp.join(f)).unwrap();
    }
    let s = script(&dir).replace(" console=", &format!(" basalt.config.url={url} console="));
    assert!(s.contains(&url), "{s}");
    std::fs::write(tftp.join("basalt-qemu.ipxe"), s).unwrap();
    let mut g = pxe_common::boot(&tftp, &["--pxe-tftp"], &work, "network");
    let t = g
        .wait_console_unless("Linux version", 1, pxe_common::FATAL, CONSOLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("pxe tests: network: kernel (fetched over TFTP by iPXE) after {t:.0?}");
    let t = g
        .wait_console_unless(
            &format!("provisioned from cmdline:{url}"),
            1,
            pxe_common::FATAL,
            CONSOLE_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("pxe tests: network: provisioned over HTTP after {t:.0?}");
    let seen = server.seen();
    assert!(
        seen.iter().any(|l| l.starts_with(&format!("GET {path} "))),
        "the guest never fetched {path}: {seen:?}"
    );
    let console = g.console_text();
    assert!(
        console.contains("diskless: /usr verified by dm-verity"),
        "{}",
        guest::tail(&console, 3000)
    );
}
