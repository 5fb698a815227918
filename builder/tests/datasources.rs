//! Cloud datasources end to end: `basalt boot --datasource
//! ec2|ec2-imdsv1|openstack|nocloud` provisions the default image from each
//! datasource with each config kind (Ignition, cloud-config, `#!` script):
//! nine boots.
//!
//! Eight of them stop at the initramfs line "basalt-init: provisioned from
//! <source>": QEMU is killed there and the ROOT partition is read offline
//! (journal replayed and checked clean by e2fsck, files pulled out with
//! debugfs) for what the config wrote: the files, users, groups, keys and
//! units, or, for a script, the script installed as a first-boot job. One
//! boot (EC2 with a script) goes all the way: the script runs in the real
//! system and installs the ssh key the test then logs in with, over the
//! network the real root brought up again after the initramfs let go of
//! its DHCP lease. EC2 is tried both ways: IMDSv2 (token) and a v1-only
//! service (`ec2-imdsv1`, no token API) for the fallback.
//!
//! Gated by BASALT_DATASOURCE_TESTS=1. Needs qemu-system-x86, ovmf,
//! openssh-client, e2fsprogs (debugfs, e2fsck). The image must carry this
//! tree's /init: leave BASALT_BOOT_IMAGE_DIR unset to build it, or point it
//! at a build of this tree.

#[path = "common/cloud.rs"]
mod cloud;
mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloud::RootFs;
use common::configs;
use common::guest::{Guest, keypair, tail};
use common::image::{built, copy_image};

/// From QEMU's start to the initramfs' "provisioned from" line (TCG, BIOS).
const PROVISION_TIMEOUT: Duration = Duration::from_secs(300);
const SSH_TIMEOUT: Duration = Duration::from_secs(600);
const SWITCHING_ROOT: &str = "basalt-init: switching root to /sysroot";
/// Console lines after which waiting is pointless.
const FATAL: &[&str] = &["basalt-init: FATAL", "Kernel panic"];

fn enabled() -> bool {
    if std::env::var("BASALT_DATASOURCE_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIPPED datasource boot tests: set BASALT_DATASOURCE_TESTS=1");
        return false;
    }
    cloud::tools_present(
        "datasource boot tests",
        &[
            ("qemu-system-x86_64", "qemu-system-x86"),
            ("ssh", "openssh-client"),
            ("ssh-keygen", "openssh-client"),
            ("debugfs", "e2fsprogs"),
            ("e2fsck", "e2fsprogs"),
        ],
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ignition,
    CloudConfig,
    Script,
}

/// A `#!` user-data script: installs a login key and leaves a mark, as
/// user-data scripts typically do.
fn script(pubkey: &str, mark: &str) -> String {
    format!(
        "#!/bin/sh\nset -e\nmkdir -p /home/core/.ssh /var/lib/basalt-ds\n\
         echo '{pubkey}' > /home/core/.ssh/authorized_keys\n\
         chmod 700 /home/core/.ssh && chmod 600 /home/core/.ssh/authorized_keys\n\
         chown -R core: /home/core\n\
         echo \"{mark} ran as $(id -un)\" > /var/lib/basalt-ds/mark\n"
    )
}

fn config(kind: Kind, pubkey: &str, host: &str) -> String {
    match kind {
        Kind::Ignition => configs::ignition(pubkey, host),
        Kind::CloudConfig => configs::cloud_config(pubkey, host),
        Kind::Script => script(pubkey, host),
    }
}

/// What the config of `kind` must have left on ROOT.
fn check_root(root: &RootFs, kind: Kind, pubkey: &str, host: &str, text: &str) {
    assert!(
        root.exists("/var/lib/basalt/provisioned"),
        "no first-boot stamp on ROOT"
    );
    let units = "/etc/systemd/system";
    let wants = format!("{units}/multi-user.target.wants");
    match kind {
        Kind::Script => {
            assert_eq!(
                root.text("/var/lib/basalt/firstboot/late/30-user-data"),
                text,
                "the script is not installed as the first-boot job"
            );
            assert!(
                root.text(&format!("{units}/basalt-firstboot.service"))
                    .contains("/var/lib/basalt/firstboot/run-late"),
                "no first-boot unit"
            );
            assert!(
                root.exists(&format!("{wants}/basalt-firstboot.service")),
                "the first-boot unit is not enabled"
            );
        }
        Kind::Ignition | Kind::CloudConfig => {
            assert_eq!(root.text("/etc/hostname").trim(), host);
            // cloud-config block literals end with a newline, data: URLs need not.
            assert_eq!(
                root.text("/etc/basalt-test/hello.txt").trim_end(),
                configs::HELLO
            );
            assert!(root.text("/opt/bin/greet").contains("greetings"));
            assert!(
                root.text("/home/core/.ssh/authorized_keys")
                    .contains(pubkey),
                "core's ssh key is not installed"
            );
            let passwd = root.text("/etc/passwd");
            assert!(
                passwd.lines().any(|l| l.starts_with("tester:")),
                "no user tester in /etc/passwd"
            );
            assert!(
                root.text(&format!("{units}/basalt-test.service"))
                    .contains("GREETING")
            );
            assert!(
                root.text(&format!("{units}/basalt-test.service.d/10-greeting.conf"))
                    .contains("from-dropin")
            );
            assert!(root.exists(&format!("{wants}/basalt-test.service")));
            assert_eq!(
                root.link(&format!("{units}/basalt-masked.service")),
                "/dev/null"
            );
            let group = root.text("/etc/group");
            if kind == Kind::Ignition {
                assert!(
                    group.lines().any(|l| l.starts_with("testers:x:4242:")),
                    "no group testers (gid 4242)"
                );
                assert_eq!(
                    root.link("/etc/basalt-test/link"),
                    "/etc/basalt-test/hello.txt"
                );
            } else {
                assert!(
                    group
                        .lines()
                        .any(|l| l.starts_with("docker:") && l.contains("tester")),
                    "tester is not in the docker group"
                );
            }
        }
    }
}

struct Run<'a> {
    work: &'a Path,
    key: &'a Path,
    pubkey: &'a str,
}

/// A guest booted with `datasource` serving a config of `kind`, past the
/// initramfs' "provisioned from <source>" line.
struct Booted {
    tag: String,
    host: String,
    text: String,
    img: PathBuf,
    vm: Guest,
}

fn boot(r: &Run<'_>, datasource: &str, kind: Kind, source: &str) -> Booted {
    let tag = format!("{datasource}-{kind:?}").to_lowercase();
    let host = format!("ds-{tag}");
    let img = r.work.join(format!("{tag}.img"));
    copy_image(&built().image, &img, 0);
    let text = config(kind, r.pubkey, &host);
    let cfg = r.work.join(format!("{tag}.user-data"));
    std::fs::write(&cfg, &text).expect("writing the config");
    let mut vm = cloud::boot(
        &img,
        &[
            OsStr::new("--datasource"),
            OsStr::new(datasource),
            OsStr::new("--config"),
            cfg.as_os_str(),
        ],
        r.work,
        &tag,
    );
    let line = format!("basalt-init: provisioned from {source}\n");
    let t = vm
        .wait_console_unless(&line, 1, FATAL, PROVISION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
    eprintln!("datasource tests: {tag}: provisioned from {source} after {t:.1?}");
    // The first-boot stamp is written after that line; /init switches
    // root only once it is on disk.
    vm.wait_console_unless(SWITCHING_ROOT, 1, FATAL, PROVISION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
    Booted {
        tag,
        host,
        text,
        img,
        vm,
    }
}

/// The console and the `basalt boot` log of a stopped guest.
struct Logs {
    console: String,
    stderr: String,
}

/// Boots, stops at "provisioned from", checks ROOT offline.
fn offline(r: &Run<'_>, datasource: &str, kind: Kind, source: &str) -> Logs {
    let b = boot(r, datasource, kind, source);
    let logs = Logs {
        console: b.vm.console_text(),
        stderr: b.vm.stderr_text(),
    };
    b.vm.stop();
    let t = Instant::now();
    let (offset, _) = built().partition("ROOT");
    let root = RootFs::open(
        &b.img,
        offset,
        &r.work.join(format!("{}.root", b.tag)),
        &["/etc", "/var/lib/basalt", "/home", "/opt"],
    );
    check_root(&root, kind, r.pubkey, &b.host, &b.text);
    drop(root);
    let _ = std::fs::remove_dir_all(r.work.join(format!("{}.root", b.tag)));
    let _ = std::fs::remove_file(&b.img);
    eprintln!(
        "datasource tests: {}: ROOT checked offline in {:.1?}",
        b.tag,
        t.elapsed()
    );
    logs
}

fn media_mounted(logs: &Logs, label: &str) {
    assert!(
        logs.console
            .contains(&format!("basalt-init: datasource {label}: ")),
        "the console does not show the {label} medium mounted:\n{}",
        tail(&logs.console, 3000)
    );
}

/// The metadata service saw an IMDSv2 exchange (token, then user-data with it).
fn imds_v2(logs: &Logs) {
    assert!(
        logs.stderr.contains("PUT /latest/api/token -> 200")
            && logs
                .stderr
                .contains("GET /latest/user-data -> 200 (IMDSv2 token)"),
        "the metadata service did not see an IMDSv2 exchange:\n{}",
        logs.stderr
    );
}

#[test]
fn datasources_provision_each_config_kind() {
    if !enabled() {
        return;
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("datasource-tests");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("creating the test dir");
    let (key, pubkey) = keypair(&work);
    let r = Run {
        work: &work,
        key: &key,
        pubkey: &pubkey,
    };
    let start = Instant::now();

    for kind in [Kind::Ignition, Kind::CloudConfig, Kind::Script] {
        let logs = offline(&r, "openstack", kind, "config-drive");
        media_mounted(&logs, "config-2");
        let logs = offline(&r, "nocloud", kind, "nocloud");
        media_mounted(&logs, "cidata");
    }

    // EC2: IMDSv2 with cloud-config; the v1 fallback with Ignition.
    let logs = offline(&r, "ec2", Kind::CloudConfig, "imds-v2");
    imds_v2(&logs);
    let logs = offline(&r, "ec2-imdsv1", Kind::Ignition, "imds-v1");
    assert!(
        logs.stderr.contains("PUT /latest/api/token -> 404")
            && logs.stderr.contains("GET /latest/user-data -> 200\n"),
        "the v1-only service did not see a token attempt then a tokenless GET:\n{}",
        logs.stderr
    );

    // EC2 with a script, booted to ssh: the script runs in the real
    // system and installs the key this login uses.
    let mut b = boot(&r, "ec2", Kind::Script, "imds-v2");
    let t =
        b.vm.wait_ssh(r.key, SSH_TIMEOUT)
            .unwrap_or_else(|e| panic!("{}: {e}", b.tag));
    eprintln!("datasource tests: {}: ssh after {t:.1?}", b.tag);
    let vm = &b.vm;
    assert_eq!(
        vm.must(r.key, "cat /var/lib/basalt-ds/mark"),
        format!("{} ran as root", b.host)
    );
    let logs = Logs {
        console: vm.console_text(),
        stderr: vm.stderr_text(),
    };
    imds_v2(&logs);
    assert!(
        logs.console.contains("basalt-init: network: "),
        "no DHCP lease on the console"
    );
    // The initramfs let go of its lease: the real root's networkd
    // configured the interface again, and the metadata service answers.
    let addrs = vm.must(r.key, "ip -4 -o addr show");
    assert!(
        addrs.contains("169.254.169."),
        "no address from the guest network in the real root:\n{addrs}"
    );
    assert_eq!(
        vm.must(
            r.key,
            "curl -fsS http://169.254.169.254/latest/meta-data/instance-id"
        ),
        "i-0basalt0local0"
    );
    let (_, state, _) = vm.ssh(r.key, "timeout 120 systemctl is-system-running --wait");
    assert_eq!(
        state,
        "running",
        "failed units:\n{}",
        vm.ssh(r.key, "systemctl --failed --no-legend --plain").1
    );
    b.vm.stop();
    let _ = std::fs::remove_file(&b.img);

    eprintln!("datasource tests: nine boots in {:.0?}", start.elapsed());
}
