//! Boot time under TCG (issue 5's benchmark), both sides in the same run and
//! on the same QEMU machine (q35, `-cpu max`, 2 vCPUs, 2 GiB):
//!
//! - ours: `basalt boot IMAGE --snapshot --firmware bios --config CFG`, the
//!   real path (SeaBIOS, GRUB, our initramfs, verity /usr, first-boot
//!   provisioning from fw_cfg), timed from QEMU's start to the console line
//!   `basalt-init: provisioned from`, to sshd accepting (its SSH-2.0 banner
//!   on the forwarded port) and to the first ssh login as core;
//! - the usual way: the same package set installed by debootstrap + apt (so
//!   Debian's kernel postinst built an initramfs-tools initrd), written to an
//!   ext4 disk with `mke2fs -d`, and booted with the same kernel by QEMU's
//!   direct kernel boot (no boot loader, which favours the baseline), timed to
//!   sshd accepting and to the first ssh login as root.
//!
//! Both milestones are timed as they happen, not sampled (see `watch.rs`):
//! the console is stamped line by line as QEMU writes it, and sshd is probed
//! by a new connection every 250 ms.
//!
//! `--runs N` boots each side N times, alternating (ours, then the baseline),
//! and reports medians with every run's figure in the note: single TCG boots
//! on a 2-core host vary by several seconds.
//!
//! The target (issue 5) is on sshd accepting; the login, which also waits for
//! PAM, logind and the user's systemd instance, is reported beside it.
//!
//! After each timed login, `systemd-analyze` (summary, critical chain to
//! ssh.service, blame) is saved untimed as `WORK/boot-{ours,conventional}.analyze`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::report::{Entry, TargetOn};
use crate::watch::Watch;

/// Bound for one boot to an ssh login (TCG on a loaded 2-core machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);
/// Console line our initramfs prints once the first-boot config is applied.
const PROVISIONED: &str = "basalt-init: provisioned from";
/// QEMU options both sides share (`basalt boot`'s TCG defaults).
const MACHINE: &[&str] = &[
    "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2",
];

/// A guest TCP port where nothing listens in either image (discard, RFC
/// 863): the guest's kernel resets a connection to it once the guest has its
/// address, which is how the watcher sees the network come up.
const CLOSED_GUEST_PORT: u16 = 9;

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn keypair(dir: &Path) -> Result<(PathBuf, String)> {
    let key = dir.join("id_ed25519");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .context("running ssh-keygen")?;
    if !st.success() {
        bail!("ssh-keygen failed");
    }
    let public =
        std::fs::read_to_string(key.with_extension("pub")).context("reading the public key")?;
    Ok((key, public.trim().to_string()))
}

/// Where the boot went, recorded after the timed login (untimed): the guest's
/// `systemd-analyze` summary, the chain to sshd and the slowest units.
const ANALYZE: &str = "timeout 600 systemctl is-system-running --wait; systemd-analyze; \
    systemd-analyze critical-chain ssh.service; systemd-analyze blame | head -n 30";

/// Runs [`ANALYZE`] in the guest and writes its output to `out`; a failure
/// is logged, never fatal (the timing is already taken).
fn record_analysis(key: &Path, port: u16, user: &str, out: &Path) {
    let o = ssh_cmd(key, port, user)
        .arg(ANALYZE)
        .stdin(Stdio::null())
        .output();
    match o {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            if let Some(l) = text.lines().find(|l| l.starts_with("Startup finished")) {
                eprintln!("bench:   guest: {l}");
            }
            if let Err(e) = std::fs::write(out, text.as_bytes()) {
                eprintln!("bench:   writing {}: {e}", out.display());
            } else {
                eprintln!("bench:   systemd-analyze output in {}", out.display());
            }
        }
        Err(e) => eprintln!("bench:   systemd-analyze over ssh failed: {e}"),
    }
}

fn ssh_cmd(key: &Path, port: u16, user: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args([
        "-q",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        // Only tried once sshd has sent its banner: a slow first login under
        // TCG is waited for, not abandoned and restarted.
        "ConnectTimeout=60",
        "-p",
    ])
    .arg(port.to_string())
    .arg("-i")
    .arg(key)
    .arg(format!("{user}@127.0.0.1"));
    c
}

fn ssh_ok(key: &Path, port: u16, user: &str) -> bool {
    ssh_cmd(key, port, user)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Seconds from QEMU's start to each milestone of one boot.
struct Times {
    /// The console marker, when one was asked for.
    marker: Option<f64>,
    /// The guest first answered on the network (its address is up).
    reachable: f64,
    /// sshd's banner on the forwarded port.
    accepting: f64,
    /// The first ssh login that ran a command.
    login: f64,
}

/// A running boot: its process group is killed on drop.
struct Vm {
    child: Child,
    console: PathBuf,
    watch: Watch,
    t0: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

impl Vm {
    /// Starts `cmd` with its output copied to `console`, watched for
    /// `marker` and for sshd on `port` (see [`Watch`]), timed from now.
    fn spawn(
        mut cmd: Command,
        console: PathBuf,
        marker: Option<&str>,
        closed_port: u16,
        port: u16,
    ) -> Result<Vm> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(&console)
            .with_context(|| format!("creating {}", console.display()))?;
        let (reader, writer) = std::io::pipe().context("creating the console pipe")?;
        cmd.stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0);
        let t0 = Instant::now();
        let child = cmd.spawn().context("starting the VM")?;
        // The parent's copies of the pipe's write end went with `cmd`'s
        // stdio when it was spawned; drop `cmd` so the reader sees EOF.
        drop(cmd);
        let watch = Watch::start(t0, reader, log, marker, closed_port, port);
        Ok(Vm {
            child,
            console,
            watch,
            t0,
        })
    }

    /// Seconds from the start to the console marker (if one was watched),
    /// to sshd's banner and to an ssh login.
    fn wait(&mut self, marker: Option<&str>, key: &Path, port: u16, user: &str) -> Result<Times> {
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "the VM exited ({st}) before an ssh login; console: {}",
                    self.console.display()
                );
            }
            if let Some(accepting) = self.watch.banner()
                && ssh_ok(key, port, user)
            {
                let login = self.t0.elapsed().as_secs_f64();
                let marked = match marker {
                    None => None,
                    Some(m) => Some(self.watch.marker().with_context(|| {
                        format!("ssh answered but {m:?} never reached the console")
                    })?),
                };
                return Ok(Times {
                    marker: marked,
                    reachable: self.watch.reachable().unwrap_or(accepting),
                    accepting,
                    login,
                });
            }
            if self.t0.elapsed() > BOOT_TIMEOUT {
                bail!(
                    "no ssh login within {BOOT_TIMEOUT:?}; console: {}",
                    self.console.display()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn ours(basalt: &Path, image: &Path, work: &Path, key: &Path, public: &str) -> Result<Times> {
    let cfg = work.join("boot-bench.ign");
    let ign = serde_json::json!({
        "ignition": {"version": "3.4.0"},
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [public]}]}
    });
    std::fs::write(&cfg, ign.to_string()).context("writing the Ignition config")?;
    let (port, closed) = (free_port()?, free_port()?);
    let mut cmd = Command::new(basalt);
    cmd.arg("boot")
        .arg(image)
        .args(["--snapshot", "--firmware", "bios", "--config"])
        .arg(&cfg)
        .args([
            "--ssh-port",
            &port.to_string(),
            "--forward",
            &format!("{closed}:{CLOSED_GUEST_PORT}"),
            "--memory",
            "2048",
            "--cpus",
            "2",
        ]);
    eprintln!("bench: booting our image under TCG ({})", image.display());
    let mut vm = Vm::spawn(
        cmd,
        work.join("boot-ours.console"),
        Some(PROVISIONED),
        closed,
        port,
    )?;
    let t = vm.wait(Some(PROVISIONED), key, port, "core")?;
    eprintln!(
        "bench:   provisioned after {:.1} s, network up after {:.1} s, sshd accepting after {:.1} s, ssh login after {:.1} s",
        t.marker.unwrap_or_default(),
        t.reachable,
        t.accepting,
        t.login
    );
    record_analysis(key, port, "core", &work.join("boot-ours.analyze"));
    Ok(t)
}

/// Make the debootstrapped root bootable the conventional way and write it
/// to an ext4 disk; returns (disk, kernel, initrd).
fn conventional_disk(
    root: &Path,
    work: &Path,
    public: &str,
) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let ssh = root.join("root/.ssh");
    std::fs::create_dir_all(&ssh)?;
    std::fs::write(ssh.join("authorized_keys"), format!("{public}\n"))?;
    let net = root.join("etc/systemd/network");
    std::fs::create_dir_all(&net)?;
    std::fs::write(
        net.join("20-dhcp.network"),
        "[Match]\nType=ether\n\n[Network]\nDHCP=yes\n",
    )?;
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants)?;
    let link = wants.join("systemd-networkd.service");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("/usr/lib/systemd/system/systemd-networkd.service", &link)?;
    }
    let pick = |prefix: &str| -> Result<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("boot"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        found.sort();
        found
            .pop()
            .with_context(|| format!("no /boot/{prefix}* in the debootstrapped root"))
    };
    let (kernel, initrd) = (pick("vmlinuz-")?, pick("initrd.img-")?);
    let disk = work.join("boot-conventional.img");
    let _ = std::fs::remove_file(&disk);
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(root)
        .arg(&disk)
        .arg("6G")
        .status()
        .context("running mke2fs")?;
    if !st.success() {
        bail!("mke2fs -d failed");
    }
    Ok((disk, kernel, initrd))
}

fn conventional(root: &Path, work: &Path, key: &Path, public: &str) -> Result<Times> {
    let (disk, kernel, initrd) = conventional_disk(root, work, public)?;
    let (port, closed) = (free_port()?, free_port()?);
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(MACHINE)
        .args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
        ])
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args([
            "-append",
            "root=/dev/vda rw console=ttyS0,115200n8 panic=10",
            "-drive",
        ])
        // A scratch disk, deleted after the boot: like `basalt boot
        // --snapshot`'s overlay, its flushes need not reach the host disk.
        .arg(format!(
            "file={},if=virtio,format=raw,cache=unsafe",
            disk.display()
        ))
        .args([
            "-netdev",
            &format!(
                "user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22,\
                 hostfwd=tcp:127.0.0.1:{closed}-:{CLOSED_GUEST_PORT}"
            ),
            "-device",
            "virtio-net-pci,netdev=n0",
        ]);
    eprintln!("bench: booting the debootstrap + initramfs-tools disk under TCG");
    let mut vm = Vm::spawn(
        cmd,
        work.join("boot-conventional.console"),
        None,
        closed,
        port,
    )?;
    let t = vm.wait(None, key, port, "root")?;
    eprintln!(
        "bench:   network up after {:.1} s, sshd accepting after {:.1} s, ssh login after {:.1} s",
        t.reachable, t.accepting, t.login
    );
    record_analysis(key, port, "root", &work.join("boot-conventional.analyze"));
    let _ = std::fs::remove_file(&disk);
    Ok(t)
}

/// Median of `xs` (not empty).
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// "a, b, c" with one decimal.
fn list(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The boot entries; `root` is the debootstrapped root of the same package
/// set (None when the baseline could not be built: no ratio then). `runs`
/// boots of each side alternate (ours, then the baseline), so that a slow
/// patch of the host hits both; each figure is the median.
pub fn bench(
    basalt: &Path,
    lock: &Path,
    root: Result<PathBuf>,
    work: &Path,
    runs: usize,
) -> Result<Vec<Entry>> {
    let (key, public) = keypair(work)?;
    let out_dir = work.join("boot-image");
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .with_context(|| format!("removing {}", out_dir.display()))?;
    }
    let st = Command::new(basalt)
        .args(["build", "--offline", "-o"])
        .arg(&out_dir)
        .arg("--lock")
        .arg(lock)
        .current_dir(work)
        .stdin(Stdio::null())
        .status()
        .context("running basalt build")?;
    if !st.success() {
        bail!("basalt build for the boot benchmark failed");
    }
    let image = out_dir.join("basalt-qemu.img");
    let mut ours_t: Vec<Times> = Vec::new();
    // The baseline's root and its boots so far, or why it cannot run.
    let mut base: Result<(PathBuf, Vec<Times>)> = root.map(|r| (r, Vec::new()));
    for run in 1..=runs.max(1) {
        eprintln!("bench: boot run {run} of {}", runs.max(1));
        ours_t.push(ours(basalt, &image, work, &key, &public)?);
        if let Ok((r, ts)) = &mut base {
            match conventional(r, work, &key, &public) {
                Ok(t) => ts.push(t),
                Err(e) => base = Err(e),
            }
        }
    }
    std::fs::remove_dir_all(&out_dir).ok();
    let pick = |ts: &[Times], f: fn(&Times) -> f64| ts.iter().map(f).collect::<Vec<f64>>();
    let provs = ours_t
        .iter()
        .map(|t| t.marker.context("no provisioning time"))
        .collect::<Result<Vec<f64>>>()?;
    let reach = pick(&ours_t, |t| t.reachable);
    let acc = pick(&ours_t, |t| t.accepting);
    let log = pick(&ours_t, |t| t.login);
    let n = ours_t.len();
    let mut out = vec![
        Entry::new("boot to provisioning done (TCG)", Some(median(&provs)), "s").note(format!(
            "QEMU start to `basalt-init: provisioned` on the console; median of {n}: {}",
            list(&provs)
        )),
    ];
    let mut network = Entry::new(
        "boot to guest network up (TCG) vs debootstrap+initramfs-tools",
        Some(median(&reach)),
        "s",
    );
    let net_note = "QEMU start to the guest's kernel first resetting a connection to a closed forwarded port (its address is configured)";
    let mut accepting = Entry::new(
        "boot to sshd accepting (TCG) vs debootstrap+initramfs-tools",
        Some(median(&acc)),
        "s",
    )
    .target(TargetOn::Ratio, 0.7);
    let mut login = Entry::new(
        "boot to first ssh login (TCG) vs debootstrap+initramfs-tools",
        Some(median(&log)),
        "s",
    );
    let (acc_note, log_note) = (
        "QEMU start to sshd's SSH-2.0 banner on the forwarded port",
        "QEMU start to an ssh login running `true` (core on ours, root on the baseline)",
    );
    match base {
        Ok((_, base_t)) => {
            let breach = pick(&base_t, |t| t.reachable);
            network = network.baseline(Some(median(&breach))).note(format!(
                "{net_note}; median of {n} each: ours {}; baseline {}",
                list(&reach),
                list(&breach)
            ));
            let bacc = pick(&base_t, |t| t.accepting);
            let blog = pick(&base_t, |t| t.login);
            accepting = accepting.baseline(Some(median(&bacc))).note(format!(
                "{acc_note}; median of {n} alternating boots each: ours {}; baseline {}",
                list(&acc),
                list(&bacc)
            ));
            login = login.baseline(Some(median(&blog))).note(format!(
                "{log_note}; median of {n} each: ours {}; baseline {}",
                list(&log),
                list(&blog)
            ));
        }
        Err(err) => {
            let err = format!("{err:#}");
            eprintln!("bench: conventional boot baseline unavailable: {err}");
            let why = format!("baseline unavailable: {}", err.replace('\n', " | "));
            network = network.note(format!("{net_note}; ours {}; {why}", list(&reach)));
            accepting = accepting.note(format!("{acc_note}; ours {}; {why}", list(&acc)));
            login = login.note(format!("{log_note}; ours {}; {why}", list(&log)));
        }
    }
    out.push(network);
    out.push(accepting);
    out.push(login);
    Ok(out)
}
