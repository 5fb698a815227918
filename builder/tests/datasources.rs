//! Cloud datasources end to end: `basalt boot --datasource ec2|openstack|nocloud`
//! provisions the default image, one boot per datasource with the config
//! kinds rotated (EC2 metadata service + `#!` script, OpenStack config
//! drive + Ignition, NoCloud seed + cloud-config), so the three boots cover
//! each datasource and each config kind once.
//!
//! Gated by BASALT_DATASOURCE_TESTS=1 (each boot is 1-3 min under TCG; not
//! yet run in CI: these boots have not been seen to pass). Needs
//! qemu-system-x86, ovmf, openssh-client. The image must carry this tree's
//! /init (labelled media, DHCP for EC2): leave BASALT_BOOT_IMAGE_DIR unset
//! to build it, or point it at a build of this tree.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::configs;
use common::guest::{keypair, tail};
use common::image::{built, copy_image};

const SSH_TIMEOUT: Duration = Duration::from_secs(600);

fn enabled() -> bool {
    if std::env::var("BASALT_DATASOURCE_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIPPED datasource boot tests: set BASALT_DATASOURCE_TESTS=1");
        return false;
    }
    for tool in ["qemu-system-x86_64", "ssh", "ssh-keygen"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!(
                "SKIPPED datasource boot tests: {tool} is not installed (apt install qemu-system-x86 ovmf openssh-client)"
            );
            return false;
        }
    }
    true
}

/// `basalt boot --datasource KIND --config FILE`, console in a log file.
struct DsGuest {
    child: Child,
    port: u16,
    console: PathBuf,
    stderr: PathBuf,
    started: Instant,
}

impl DsGuest {
    fn boot(image: &Path, kind: &str, config: &Path, work: &Path) -> DsGuest {
        let console = work.join(format!("{kind}.console.log"));
        let stderr = work.join(format!("{kind}.stderr"));
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .arg("boot")
            .arg(image)
            .args(["--firmware", "bios", "--datasource", kind, "--ssh-port"])
            .arg(port.to_string())
            .arg("--config")
            .arg(config)
            .arg("--console-log")
            .arg(&console)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("creating the stderr file"))
            .spawn()
            .expect("starting basalt boot");
        eprintln!(
            "datasource tests: {kind}: ssh port {port}, console {}",
            console.display()
        );
        DsGuest {
            child,
            port,
            console,
            stderr,
            started: Instant::now(),
        }
    }

    fn console_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn ssh(&self, key: &Path, script: &str, connect_timeout: u32) -> (bool, String, String) {
        let out = Command::new("ssh")
            .args(["-p", &self.port.to_string(), "-i"])
            .arg(key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                &format!("ConnectTimeout={connect_timeout}"),
                "core@127.0.0.1",
                "--",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("running ssh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// Waits for an ssh login; panics with the console tail if none comes.
    fn wait_ssh(&mut self, key: &Path) -> Duration {
        let start = Instant::now();
        loop {
            let (ok, _, err) = self.ssh(key, "true", 20);
            if ok {
                return self.started.elapsed();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "basalt boot exited ({st}): {}\nconsole tail:\n{}",
                    self.stderr_text(),
                    tail(&self.console_text(), 3000)
                );
            }
            assert!(
                start.elapsed() < SSH_TIMEOUT,
                "no ssh login within {SSH_TIMEOUT:?} (last: {err})\nstderr:\n{}\nconsole tail:\n{}",
                self.stderr_text(),
                tail(&self.console_text(), 3000)
            );
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    fn must(&self, key: &Path, script: &str) -> String {
        let (ok, out, err) = self.ssh(key, script, 30);
        assert!(
            ok,
            "guest command failed: {script}\nstdout: {out}\nstderr: {err}"
        );
        out
    }
}

impl Drop for DsGuest {
    fn drop(&mut self) {
        // Killing basalt boot makes the kernel SIGTERM its QEMU (parent-death signal).
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline
            && std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err()
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A `#!` script that does what a user-data script typically does: installs
/// a login key and leaves a mark.
fn script(pubkey: &str) -> String {
    format!(
        "#!/bin/sh\nset -e\nmkdir -p /home/core/.ssh /var/lib/basalt-ds\n\
         echo '{pubkey}' > /home/core/.ssh/authorized_keys\n\
         chmod 700 /home/core/.ssh && chmod 600 /home/core/.ssh/authorized_keys\n\
         chown -R core: /home/core\n\
         echo \"script ran as $(id -un)\" > /var/lib/basalt-ds/ec2\n"
    )
}

/// One datasource boot: (datasource, config kind, config text, source
/// name on the console, the check over ssh).
fn run_one(
    kind: &str,
    config_kind: &str,
    text: String,
    source: &str,
    work: &Path,
    key: &Path,
    check: &dyn Fn(&DsGuest),
) {
    let b = built();
    let img = work.join(format!("{kind}.img"));
    copy_image(&b.image, &img, 0);
    let cfg = work.join(format!("{kind}.user-data"));
    std::fs::write(&cfg, text).expect("writing the config");
    let mut g = DsGuest::boot(&img, kind, &cfg, work);
    let t = g.wait_ssh(key);
    let console = g.console_text();
    assert!(
        console.contains(&format!("provisioned from {source}")),
        "{kind}: the console does not say 'provisioned from {source}':\n{}",
        tail(&console, 3000)
    );
    check(&g);
    eprintln!("datasource tests: {kind} with {config_kind}: ssh after {t:.0?}, checks passed");
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
    let start = Instant::now();

    run_one(
        "openstack",
        "Ignition",
        configs::ignition(&pubkey, "ds-openstack"),
        "config-drive",
        &work,
        &key,
        &|g| {
            assert_eq!(g.must(&key, "cat /etc/hostname"), "ds-openstack");
            assert_eq!(
                g.must(&key, "cat /etc/basalt-test/hello.txt"),
                configs::HELLO
            );
            assert!(g.console_text().contains("datasource config-2: "));
        },
    );

    run_one(
        "nocloud",
        "cloud-config",
        configs::cloud_config(&pubkey, "ds-nocloud"),
        "nocloud",
        &work,
        &key,
        &|g| {
            assert_eq!(g.must(&key, "hostname"), "ds-nocloud");
            assert_eq!(
                g.must(&key, "cat /etc/basalt-test/hello.txt"),
                configs::HELLO
            );
            assert!(g.console_text().contains("datasource cidata: "));
        },
    );

    run_one(
        "ec2",
        "#! script",
        script(&pubkey),
        "imds-v2",
        &work,
        &key,
        &|g| {
            assert_eq!(
                g.must(&key, "cat /var/lib/basalt-ds/ec2"),
                "script ran as root"
            );
            let err = g.stderr_text();
            assert!(
                err.contains("PUT /latest/api/token -> 200")
                    && err.contains("GET /latest/user-data -> 200 (IMDSv2 token)"),
                "the metadata service did not see an IMDSv2 exchange:\n{err}"
            );
            assert!(
                g.console_text().contains("network: "),
                "no DHCP lease on the console"
            );
            // The initramfs let go of its lease: the real root's networkd
            // configured the interface again from the same DHCP server.
            let addrs = g.must(&key, "ip -4 -o addr show");
            assert!(
                addrs.contains("169.254.169."),
                "no address from the guest network in the real root:\n{addrs}"
            );
        },
    );

    eprintln!("datasource tests: three boots in {:.0?}", start.elapsed());
}
