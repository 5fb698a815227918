//! End-to-end boot tests: the default image under QEMU (TCG unless KVM really
//! works), driven through the real `basalt boot`.
//!
//! - BASALT_NETWORK_TESTS=1 (ci/test sets it): builds the default image once;
//!   a /usr slot with one flipped byte is refused by verity (fatal error,
//!   reboot within the same QEMU).
//! - BASALT_BOOT_TESTS=1 in addition (ci/test sets it too): first boots under
//!   SeaBIOS with an Ignition config and under OVMF with a cloud-config, both
//!   through fw_cfg: the boot chain on the serial console (GRUB, kernel with
//!   the usr root hash, /init handing over to systemd), then over ssh the
//!   services, everything provisioned, verity /usr, ROOT growth, and a second
//!   boot that does not provision again; and a broken config that stops the
//!   first boot.
//!
//! Needs qemu-system-x86, ovmf, openssh-client (ssh, ssh-keygen).
//! `BASALT_BOOT_IMAGE_DIR=DIR` reuses an existing build (see common/image.rs).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::configs;
use common::guest::{self, Guest};
use common::image::{self, built};

/// GRUB's config prints this on the serial console before choosing a slot.
const GRUB_MARKER: &str = "basalt: slot state";
/// The kernel's first printk line.
const KERNEL_MARKER: &str = "Linux version";
/// basalt-init's last line before exec'ing systemd.
const SYSTEMD_MARKER: &str = "basalt-init: switching root";
/// Bound for a console milestone under TCG.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound for sshd to accept a login after QEMU starts (TCG first boot).
const SSH_TIMEOUT: Duration = Duration::from_secs(600);

fn enabled(var: &str, what: &str) -> bool {
    let on = std::env::var(var).as_deref() == Ok("1");
    if !on {
        eprintln!("SKIPPED {what}: set {var}=1");
    }
    on
}

fn tools_present() -> bool {
    for tool in ["qemu-system-x86_64", "ssh", "ssh-keygen"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!(
                "SKIPPED boot tests: {tool} is not installed (apt install qemu-system-x86 ovmf openssh-client)"
            );
            return false;
        }
    }
    true
}

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("boot-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the test dir");
    d
}

/// The boot chain on the serial console: GRUB's slot choice, the kernel with
/// the manifest's usr root hash on its command line, then /init handing over
/// to systemd. Logs the time to each milestone.
fn check_console_chain(g: &mut Guest, b: &image::Built, firmware: &str) {
    for (what, marker) in [
        ("GRUB", GRUB_MARKER),
        ("kernel", KERNEL_MARKER),
        ("systemd", SYSTEMD_MARKER),
    ] {
        let t = g
            .wait_console(marker, 1, CONSOLE_TIMEOUT)
            .unwrap_or_else(|e| panic!("{firmware}: {e}"));
        eprintln!("boot tests: {firmware}: {what} on serial after {t:.1?}");
    }
    let text = g.console_text();
    assert!(
        text.contains(&format!("basalt.usrhash={}", b.usr_root_hash())),
        "{firmware}: the kernel command line on the console lacks the manifest's usr root hash"
    );
}

/// Everything a provisioned guest must show, for either config format.
fn check_provisioned(g: &Guest, key: &Path, hostname: &str, ignition: bool, root_before: u64) {
    let sh = |s: &str| g.must(key, s);
    // System health: multi-user reached, nothing failed.
    let (_, state, _) = g.ssh(key, "timeout 300 systemctl is-system-running --wait");
    if state != "running" {
        let failed = g.ssh(key, "systemctl --failed --no-legend --plain").1;
        panic!("system state {state:?}, failed units:\n{failed}");
    }
    assert_eq!(sh("systemctl is-active multi-user.target"), "active");
    assert_eq!(sh("hostname"), hostname);
    // Services.
    assert_eq!(
        sh("systemctl is-active ssh.service || systemctl is-active sshd.service"),
        "active"
    );
    assert_eq!(
        sh(
            "etcdctl put basalt-e2e-key round-trip >/dev/null && etcdctl get basalt-e2e-key --print-value-only"
        ),
        "round-trip"
    );
    assert!(
        sh("etcdctl member list").contains(configs::ETCD_NAME),
        "etcd does not use the config's name"
    );
    // The QEMU profile exempts the user-network host address from sshd's
    // per-source penalties (all forwarded connections come from it), and
    // logins get a logind session (pam_systemd).
    assert!(
        sh("sudo sshd -T | grep -i '^persourcepenaltyexemptlist'").contains("10.0.2.2"),
        "sshd does not exempt 10.0.2.2 from per-source penalties"
    );
    assert!(
        !sh("echo $XDG_SESSION_ID").is_empty(),
        "the ssh login has no logind session (pam_systemd)"
    );
    // First-boot jobs done at build time (ld.so.cache, sysusers.d accounts,
    // the journal catalog, /etc/.updated and /var/.updated) are skipped by
    // their ConditionNeedsUpdate=/ConditionResult at the first boot.
    for unit in [
        "ldconfig.service",
        "systemd-sysusers.service",
        "systemd-journal-catalog-update.service",
        "systemd-update-done.service",
    ] {
        assert_eq!(
            sh(&format!("systemctl show -P ConditionResult {unit}")),
            "no",
            "{unit} ran at the first boot although the build did its work"
        );
    }
    // /init wrote the machine ID, so systemd saw no first boot (no
    // preset-all, no transient ID); the build enabled what the preset files
    // enable, e.g. systemd's own getty@tty1 and resolved.
    let id = sh("cat /etc/machine-id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "bad machine ID {id:?}"
    );
    assert!(
        sh("sudo dmesg | grep 'basalt-init: machine ID' || true").contains(&id),
        "/init did not write the machine ID"
    );
    assert_eq!(
        sh("test -e /run/systemd/first-boot && echo yes || echo no"),
        "no"
    );
    assert_eq!(
        sh("systemctl is-active getty@tty1.service systemd-resolved.service"),
        "active\nactive"
    );
    assert_eq!(
        sh("sudo journalctl -b _PID=1 -q -o cat | grep -c 'Populated /etc with preset' || true"),
        "0",
        "systemd applied presets at boot"
    );
    // The static device nodes come from the list the builder wrote
    // (builder/src/stages/static_nodes.rs), not from kmod at boot, and
    // tmpfiles' second /dev pass (for accounts sysusers would create at
    // boot; they are built in) is skipped.
    assert_eq!(
        sh("for u in kmod-static-nodes systemd-tmpfiles-setup-dev; do \
             systemctl show -p ConditionResult --value $u.service; done; \
             test -c /dev/net/tun && test -c /dev/loop-control && echo nodes"),
        "no\nno\nnodes",
        "static device nodes"
    );
    assert!(
        !sh("journalctl --list-catalog | head -3").is_empty(),
        "the journal catalog database is empty"
    );
    let listed = sh("/usr/sbin/ldconfig -p | head -1");
    let count: usize = listed
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(count > 100, "ld.so.cache lists too little: {listed:?}");
    assert!(
        sh("/usr/sbin/ldconfig -p")
            .contains("libc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6"),
        "ld.so.cache has no libc.so.6"
    );
    assert_eq!(
        sh("getent passwd messagebus systemd-network systemd-timesync | cut -d: -f1"),
        "messagebus\nsystemd-network\nsystemd-timesync"
    );
    assert_eq!(
        sh("getent group systemd-journal | cut -d: -f1"),
        "systemd-journal"
    );
    // The factory slot's record on the ESP names the image's version.
    let version = built().manifest["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let status = sh("sudo basalt-update status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("slot A") && l.contains(&format!("version {version},"))),
        "basalt-update status does not name slot A's version {version}:\n{status}"
    );
    // Docker is socket-activated: the first client starts the daemon.
    assert_eq!(sh("systemctl is-active docker.socket"), "active");
    assert!(
        !sh("docker info --format '{{.ServerVersion}}'").is_empty(),
        "docker info as core"
    );
    assert_eq!(
        sh("systemctl is-active docker.service containerd.service"),
        "active\nactive"
    );
    // Provisioning.
    assert_eq!(sh("cat /etc/basalt-test/hello.txt"), configs::HELLO);
    assert_eq!(
        sh("stat -c %a /opt/bin/greet && /opt/bin/greet"),
        "755\ngreetings"
    );
    assert_eq!(
        sh("systemctl is-enabled basalt-test.service; systemctl is-active basalt-test.service"),
        "enabled\nactive"
    );
    assert_eq!(
        sh("sudo cat /var/lib/basalt-test/ran"),
        "from-dropin",
        "drop-in environment not applied"
    );
    assert_eq!(
        sh("systemctl is-enabled basalt-masked.service || true"),
        "masked"
    );
    assert_eq!(sh("findmnt -n -o FSTYPE /mnt/scratch"), "tmpfs");
    assert!(
        sh("ip -br addr show dummy0").contains(configs::DUMMY_ADDR),
        "networkd did not apply the .netdev/.network files"
    );
    check_nic_name(g, key, ignition);
    assert!(
        sh("id -nG tester")
            .split_whitespace()
            .any(|g| g == if ignition { "testers" } else { "docker" })
    );
    if ignition {
        assert_eq!(sh("getent group testers | cut -d: -f3"), "4242");
        assert_eq!(
            sh("readlink /etc/basalt-test/link"),
            "/etc/basalt-test/hello.txt"
        );
        assert_eq!(sh("sudo stat -c %U:%a /var/lib/basalt-test"), "tester:750");
    }
    assert!(
        sh("sudo test -f /etc/.basalt-provision.json && echo yes") == "yes",
        "no provisioning record"
    );
    // Storage: /usr read-only on dm-verity with the manifest's root hash.
    let usr = sh("findmnt -n -o SOURCE,OPTIONS /usr");
    assert!(
        usr.contains("/dev/mapper/") || usr.contains("/dev/dm-"),
        "/usr is not on a dm device: {usr}"
    );
    assert!(
        usr.split([' ', ',']).any(|o| o == "ro"),
        "/usr is not read-only: {usr}"
    );
    let table = sh(
        "sudo dmsetup table 2>/dev/null || for d in /sys/block/dm-*/dm/name; do sudo veritysetup status $(cat $d); done",
    );
    assert!(
        table.contains(&built().usr_root_hash()),
        "no verity device with the root hash {}:\n{table}",
        built().usr_root_hash()
    );
    let root = sh("df -B1 --output=size / | tail -1");
    let root: u64 = root.trim().parse().unwrap_or_else(|_| panic!("df: {root}"));
    assert!(
        root > root_before + (1 << 30),
        "ROOT did not grow: {root} bytes, partition was {root_before}"
    );
}

/// The NIC's name. With the stock naming config (the Ignition boot) /init
/// gives it udev's predictable name before systemd starts, and udev keeps
/// it; with a .link file of the user's (the cloud-config boot) /init leaves
/// it to udev, which applies the file. Either way DHCP configured it.
fn check_nic_name(g: &Guest, key: &Path, ignition: bool) {
    let sh = |s: &str| g.must(key, s);
    let nic = sh("ip -o route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -1");
    let kmsg = sh("sudo dmesg | grep 'basalt-init: ' || true");
    if ignition {
        let ids = sh(&format!("udevadm info -q property /sys/class/net/{nic}"));
        let predictable = [
            "ID_NET_NAME_ONBOARD",
            "ID_NET_NAME_SLOT",
            "ID_NET_NAME_PATH",
        ]
        .iter()
        .find_map(|k| ids.lines().find_map(|l| l.strip_prefix(&format!("{k}="))));
        assert_eq!(
            predictable,
            Some(nic.as_str()),
            "the NIC is not named by udev's policy:\n{ids}"
        );
        assert!(
            kmsg.contains(&format!(" renamed {nic} (udev's predictable name)")),
            "/init did not name {nic}:\n{kmsg}"
        );
    } else {
        assert_eq!(
            nic,
            configs::LAN_NAME,
            "the user's .link file was not applied"
        );
        assert!(
            kmsg.contains(&format!(
                "interface names left to udev: {} may name interfaces",
                configs::LAN_LINK_PATH
            )),
            "/init did not leave naming to udev:\n{kmsg}"
        );
    }
}

/// Extra bytes the disk copy gets before its first boot.
const GROW: u64 = 4 << 30;

fn full(firmware: &str, ignition: bool) {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "boot e2e test (needs the Debian mirror)",
    ) || !enabled("BASALT_BOOT_TESTS", "boot e2e test (full boot to sshd)")
        || !tools_present()
    {
        return;
    }
    let b = built();
    let work = workdir(&format!("e2e-{firmware}"));
    let (key, pubkey) = guest::keypair(&work);
    let hostname = format!("basalt-e2e-{firmware}");
    let (text, cfg) = if ignition {
        (
            configs::ignition(&pubkey, &hostname),
            work.join("config.ign"),
        )
    } else {
        (
            configs::cloud_config(&pubkey, &hostname),
            work.join("user-data"),
        )
    };
    std::fs::write(&cfg, text).unwrap();
    let img = work.join("disk.img");
    image::copy_image(&b.image, &img, GROW);
    let (_, root_before) = b.partition("ROOT");

    let mut g = guest::boot(&img, firmware, Some(&cfg), &work, "first");
    check_console_chain(&mut g, b, firmware);
    let up = g
        .wait_ssh(&key, SSH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{firmware} first boot: {e}"));
    eprintln!("boot tests: {firmware}: sshd accepted a login {up:.1?} after QEMU started");
    check_provisioned(&g, &key, &hostname, ignition, root_before);

    // A second boot (a guest reboot, in the same QEMU) must not provision again:
    // a local change survives and the record is unchanged.
    let record = g.must(&key, "sudo sha256sum /etc/.basalt-provision.json");
    g.must(
        &key,
        "echo changed-locally | sudo tee /etc/basalt-test/hello.txt >/dev/null && sync",
    );
    let _ = g.ssh(&key, "sudo systemctl reboot");
    g.wait_console(KERNEL_MARKER, 2, CONSOLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{firmware} reboot: {e}"));
    g.wait_ssh(&key, SSH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{firmware} second boot: {e}"));
    assert_eq!(
        g.must(&key, "cat /etc/basalt-test/hello.txt"),
        "changed-locally",
        "the second boot provisioned again"
    );
    assert_eq!(
        g.must(&key, "sudo sha256sum /etc/.basalt-provision.json"),
        record
    );
    g.stop();
    // Kept on failure for the console logs; removed when the test passes.
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn e2e_bios_ignition() {
    full("bios", true);
}

#[test]
fn e2e_uefi_cloud_config() {
    full("uefi", false);
}

/// Needs only BASALT_NETWORK_TESTS: the verity check is in the boot chain itself.
#[test]
fn corrupted_usr_slot_is_never_served() {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "corrupted /usr test (needs the Debian mirror)",
    ) || !tools_present()
    {
        return;
    }
    let b = built();
    let work = workdir("corrupt-usr");
    let img = work.join("disk.img");
    image::copy_image(&b.image, &img, 0);
    // One byte inside the ext4 superblock of USR-A (data block 0): mounting
    // /usr must read it, and verity must refuse it.
    let (usr_a, _) = b.partition("USR-A");
    image::flip_byte(&img, usr_a + 1024 + 0x60);
    let mut g = guest::boot(&img, "bios", None, &work, "corrupt");
    g.wait_console("data block 0 is corrupted", 1, CONSOLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("verity did not report the flipped byte: {e}"));
    // A fatal boot error, on the console, then a reboot (panic=) that stays
    // inside the same QEMU process: GRUB runs a second time.
    g.wait_console("basalt-init: FATAL", 1, CONSOLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("no fatal boot error: {e}"));
    g.wait_console(GRUB_MARKER, 2, CONSOLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("no reboot into GRUB after the fatal error: {e}"));
    let text = g.console_text();
    assert!(
        !text.contains(SYSTEMD_MARKER),
        "a corrupted /usr was handed to systemd"
    );
    g.stop();
    // Kept on failure for the console logs; removed when the test passes.
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn broken_config_stops_first_boot() {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "broken config test (needs the Debian mirror)",
    ) || !enabled("BASALT_BOOT_TESTS", "broken config test (full boot chain)")
        || !tools_present()
    {
        return;
    }
    let b = built();
    let work = workdir("broken-config");
    let cfg = work.join("broken.ign");
    std::fs::write(&cfg, configs::broken_ignition()).unwrap();
    let img = work.join("disk.img");
    image::copy_image(&b.image, &img, 0);
    let mut g = guest::boot(&img, "bios", Some(&cfg), &work, "broken");
    g.wait_console(configs::BROKEN_PATH, 1, CONSOLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("the console does not name the broken config entry: {e}"));
    // Give a half-configured system the chance to come up; it must not.
    std::thread::sleep(Duration::from_secs(30));
    let text = g.console_text();
    assert!(
        !text.contains("Reached target multi-user.target"),
        "the system booted with a broken config"
    );
    g.stop();
    // Kept on failure for the console logs; removed when the test passes.
    let _ = std::fs::remove_dir_all(&work);
}

/// The test configs are well formed (offline, always runs); with
/// BASALT_PROVISION_BIN=path/to/basalt-provision they are also validated by
/// the provisioner itself.
#[test]
fn test_configs_are_well_formed() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBasaltBootTestKeyBasaltBootTestKey00 test";
    let ign: serde_json::Value =
        serde_json::from_str(&configs::ignition(key, "h1")).expect("Ignition JSON");
    assert_eq!(ign["ignition"]["version"], "3.4.0");
    assert_eq!(ign["passwd"]["users"][0]["sshAuthorizedKeys"][0], key);
    assert_eq!(ign["storage"]["directories"][0]["mode"], 0o750);
    let files = ign["storage"]["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "/etc/basalt-test/hello.txt"
                && f["contents"]["source"] == "data:,hello%20basalt")
    );

    let cc_text = configs::cloud_config(key, "h2");
    assert!(cc_text.starts_with("#cloud-config\n"));
    let cc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&cc_text).expect("cloud-config YAML");
    assert_eq!(cc["hostname"].as_str(), Some("h2"));
    assert_eq!(cc["ssh_authorized_keys"][0].as_str(), Some(key));
    let wf = cc["write_files"].as_sequence().unwrap();
    let hello = wf
        .iter()
        .find(|f| f["path"].as_str() == Some("/etc/basalt-test/hello.txt"))
        .unwrap();
    assert_eq!(hello["content"].as_str(), Some("hello basalt\n"));
    let units = cc["coreos"]["units"].as_sequence().unwrap();
    assert_eq!(units.len(), 3);
    assert!(
        units[0]["content"]
            .as_str()
            .unwrap()
            .contains("WantedBy=multi-user.target")
    );
    assert!(
        units[0]["drop_ins"][0]["content"]
            .as_str()
            .unwrap()
            .contains("GREETING=from-dropin")
    );
    assert_eq!(
        cc["coreos"]["etcd2"]["name"].as_str(),
        Some(configs::ETCD_NAME)
    );

    let Some(bin) = std::env::var_os("BASALT_PROVISION_BIN") else {
        eprintln!(
            "NOTE test configs not checked by the provisioner: set BASALT_PROVISION_BIN=path/to/basalt-provision"
        );
        return;
    };
    let dir = workdir("configs");
    for (name, text, ok) in [
        ("good.ign", configs::ignition(key, "h1"), true),
        ("user-data", cc_text.clone(), true),
        ("broken.ign", configs::broken_ignition(), false),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let out = std::process::Command::new(&bin)
            .arg("validate")
            .arg(&p)
            .output()
            .expect("running basalt-provision");
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.success(),
            ok,
            "basalt-provision validate {name}:\n{msg}"
        );
        if !ok {
            assert!(
                msg.contains(configs::BROKEN_PATH),
                "the error does not name the entry: {msg}"
            );
        }
    }
}
