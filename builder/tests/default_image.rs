//! The real default profile, end to end: lock, build twice, compare bytes,
//! and check every artifact with the reference tools.
//!
//! Needs the host's Debian mirror; runs when BASALT_NETWORK_TESTS=1 (ci/test
//! sets it) and says loudly that it skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const EPOCH: &str = "1767225600"; // 2026-01-01

fn basalt(args: &[&str], cwd: &Path) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        // The update signing key is made on first use; keep it in the test's directory.
        .env("XDG_CONFIG_HOME", cwd.join("config"))
        .output()
        .expect("running basalt");
    assert!(
        out.status.success(),
        "basalt {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tool(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn extract(img: &Path, offset: u64, len: u64, out: &Path) {
    let (ok, text) = tool(
        "dd",
        &[
            &format!("if={}", img.display()),
            &format!("of={}", out.display()),
            "bs=1M",
            &format!("skip={}", offset >> 20),
            &format!("count={}", len.div_ceil(1 << 20)),
            "conv=sparse",
            "status=none",
        ],
    );
    assert!(ok, "dd: {text}");
}

fn sha(p: &Path) -> String {
    tool("sha256sum", &[p.to_str().unwrap()])
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn default_profile_builds_reproducibly_and_passes_oracles() {
    if std::env::var("BASALT_NETWORK_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIPPED default_image: set BASALT_NETWORK_TESTS=1 (needs the Debian mirror)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("default-image");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    basalt(&["lock"], &dir);
    let lock: Value =
        serde_json::from_slice(&std::fs::read(dir.join("qemu.lock")).unwrap()).unwrap();
    let names: Vec<&str> = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in [
        "linux-image-amd64",
        "systemd",
        "udev",
        "openssh-server",
        "etcd-server",
        "etcd-client",
        "docker.io",
        "containerd",
        "runc",
    ] {
        assert!(names.contains(&want), "{want} not in the lock");
    }

    basalt(&["build", "-f", "raw,qcow2,tar", "-o", "a"], &dir);
    // `b` already holds artifacts of an earlier build: a build must replace
    // them (the comparison with `a` below fails if one is kept).
    std::fs::create_dir_all(dir.join("b")).unwrap();
    for f in ["basalt-qemu.img", "basalt-qemu.qcow2", "basalt-qemu.tar"] {
        std::fs::write(dir.join("b").join(f), b"an earlier build's artifact").unwrap();
    }
    basalt(&["build", "-f", "raw,qcow2,tar", "-o", "b"], &dir);
    for f in [
        "basalt-qemu.img",
        "basalt-qemu.qcow2",
        "basalt-qemu.tar",
        "basalt-qemu-0.1.0.update",
        "manifest.json",
    ] {
        assert_eq!(
            sha(&dir.join("a").join(f)),
            sha(&dir.join("b").join(f)),
            "{f} differs between two builds"
        );
    }

    let out = dir.join("a");
    let img = out.join("basalt-qemu.img");
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();

    // The tree holds what the issue names.
    let (ok, listing) = tool(
        "tar",
        &["-tvf", out.join("basalt-qemu.tar").to_str().unwrap()],
    );
    assert!(ok, "tar -t: {listing}");
    for path in [
        "usr/lib/systemd/systemd",
        "usr/lib/systemd/systemd-udevd",
        "usr/sbin/sshd",
        "usr/bin/etcd",
        "usr/bin/etcdctl",
        "usr/sbin/dockerd",
        "usr/bin/containerd",
        "usr/sbin/runc",
        "usr/lib/sysusers.d/basalt.conf",
        "usr/share/factory/etc/passwd",
        "usr/bin/basalt-provision",
        "usr/bin/basalt-update",
        "usr/share/basalt/update.pub",
        "usr/lib/systemd/system-preset/99-basalt-default.preset",
        "usr/lib/udev/hwdb.bin",
        "usr/lib/udev/hwdb.d/20-OUI.hwdb",
        "usr/lib/udev/hwdb.d/20-pci-vendor-model.hwdb",
        "usr/lib/udev/hwdb.d/20-usb-vendor-model.hwdb",
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.ends_with(path) || l.contains(&format!("{path} -> "))),
            "{path} missing from the tar"
        );
    }
    assert!(listing.contains("usr/lib/modules/"), "no kernel modules");
    // hwdb.bin compiled at build time: systemd's header (signature, then
    // tool version and file size, little-endian) describes the whole file.
    let hwdb = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(out.join("basalt-qemu.tar"))
        .arg("./usr/lib/udev/hwdb.bin")
        .output()
        .unwrap();
    let bin = hwdb.stdout;
    assert!(
        bin.len() > 1 << 20 && bin.starts_with(b"KSLPHHRH"),
        "hwdb.bin: {} bytes, {}",
        bin.len(),
        String::from_utf8_lossy(&hwdb.stderr)
    );
    assert_eq!(
        u64::from_le_bytes(bin[16..24].try_into().unwrap()),
        bin.len() as u64
    );

    // Disk oracles.
    let (ok, text) = tool("sgdisk", &["-v", img.to_str().unwrap()]);
    assert!(
        ok && text.contains("No problems found"),
        "sgdisk -v: {text}"
    );
    let (ok, text) = tool(
        "qemu-img",
        &["check", out.join("basalt-qemu.qcow2").to_str().unwrap()],
    );
    assert!(ok, "qemu-img check: {text}");
    let (ok, text) = tool(
        "qemu-img",
        &[
            "compare",
            img.to_str().unwrap(),
            out.join("basalt-qemu.qcow2").to_str().unwrap(),
        ],
    );
    assert!(ok, "qemu-img compare: {text}");

    let part = |name: &str| -> (u64, u64) {
        let p = m["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap())
    };
    let scratch = dir.join("parts");
    std::fs::create_dir_all(&scratch).unwrap();
    for name in ["USR-A", "OEM", "ROOT"] {
        let (off, len) = part(name);
        let p = scratch.join(name);
        extract(&img, off, len, &p);
        let (ok, text) = tool("e2fsck", &["-fn", p.to_str().unwrap()]);
        assert!(ok, "e2fsck -fn {name}: {text}");
    }
    let (off, len) = part("EFI-SYSTEM");
    let esp = scratch.join("ESP");
    extract(&img, off, len, &esp);
    let (ok, text) = tool("fsck.fat", &["-n", esp.to_str().unwrap()]);
    assert!(ok, "fsck.fat -n: {text}");

    let usr = scratch.join("USR-A");
    let root_hash = m["usr"]["root_hash"].as_str().unwrap();
    let hash_offset = m["usr"]["hash_offset"].as_u64().unwrap();
    let (ok, text) = tool(
        "veritysetup",
        &[
            "verify",
            usr.to_str().unwrap(),
            usr.to_str().unwrap(),
            root_hash,
            &format!("--hash-offset={hash_offset}"),
        ],
    );
    assert!(ok, "veritysetup verify: {text}");

    // /usr overhead over file bytes stays within the 10%.
    let fs = m["usr"]["filesystem_size"].as_f64().unwrap();
    let content = m["usr"]["content_bytes"].as_f64().unwrap();
    assert!(
        fs / content < 1.10,
        "/usr filesystem is {:.1}% over its content",
        (fs / content - 1.0) * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
