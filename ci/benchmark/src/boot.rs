//! Boot time under TCG (issue 5's benchmark), all sides in the same run and
//! on the same QEMU machine (q35, `-cpu max`, 2 vCPUs, 2 GiB):
//!
//! - ours: `basalt boot IMAGE --snapshot --firmware bios --config CFG`, the
//!   real path (SeaBIOS, GRUB, our initramfs, verity /usr, first-boot
//!   provisioning from fw_cfg), timed from QEMU's start to the console line
//!   `basalt-init: provisioned from`, to sshd accepting (its SSH-2.0 banner
//!   on the forwarded port) and to the first ssh login as core;
//! - the usual way, two baselines (`conventional.rs`): the same package set
//!   installed by debootstrap + apt (so Debian's kernel postinst built an
//!   initramfs-tools initrd) on an ext4 disk, with the same kernel, timed to
//!   sshd accepting and to the first ssh login as root:
//!   - booted by QEMU's direct kernel boot (`-kernel`/`-initrd`, no boot
//!     loader, which favours the baseline: no real disk boots that way);
//!   - booted the conventional way, by Debian's own GRUB (i386-pc) installed
//!     on an MBR disk, with a 1 s menu timeout like our GRUB's wait: SeaBIOS,
//!     GRUB, kernel and initrd read from the disk (`grubdisk.rs`).
//!
//! All milestones are timed as they happen, not sampled (see `watch.rs`):
//! the console is stamped line by line as QEMU writes it, and sshd is probed
//! by a new connection every 250 ms.
//!
//! `--runs N` boots each side N times, alternating (ours, the direct-kernel
//! baseline, the GRUB baseline), and reports medians with every run's figure
//! in the note: single TCG boots on a 2-core host vary by several seconds.
//!
//! The target (issue 5) is on sshd accepting, against each baseline; the
//! login, which also waits for PAM, logind and the user's systemd instance,
//! is reported beside it.
//!
//! After each timed login, `systemd-analyze` (summary, critical chain to
//! ssh.service, blame) is saved untimed as
//! `WORK/boot-{ours,conventional,conventional-grub}-RUN.analyze`, next to
//! each side's console log of that run (`.console`), so an outlier can be
//! looked into.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::conventional::{self, Baseline};
use crate::report::{Entry, TargetOn};
use crate::vm::{CLOSED_GUEST_PORT, Times, Vm, free_port, keypair, record_analysis};

/// Console line our initramfs prints once the first-boot config is applied.
const PROVISIONED: &str = "basalt-init: provisioned from";

fn ours(
    basalt: &Path,
    image: &Path,
    work: &Path,
    key: &Path,
    public: &str,
    run: usize,
) -> Result<Times> {
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
        work.join(format!("boot-ours-{run}.console")),
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
    record_analysis(key, port, "core", &work.join(format!("boot-ours-{run}.analyze")));
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

/// The three rows (network up, sshd accepting, first login) of baseline
/// `b`, ours against it: `base` is its boots, or why it has none.
fn rows(ours: &[Times], b: Baseline, base: &Result<Vec<Times>, String>) -> [Entry; 3] {
    let pick = |ts: &[Times], f: fn(&Times) -> f64| ts.iter().map(f).collect::<Vec<f64>>();
    let reach = pick(ours, |t| t.reachable);
    let acc = pick(ours, |t| t.accepting);
    let log = pick(ours, |t| t.login);
    let n = ours.len();
    let vs = b.row_suffix();
    let mut network = Entry::new(
        format!("boot to guest network up (TCG) vs {vs}"),
        Some(median(&reach)),
        "s",
    );
    let mut accepting = Entry::new(
        format!("boot to sshd accepting (TCG) vs {vs}"),
        Some(median(&acc)),
        "s",
    )
    .target(TargetOn::Ratio, 0.7);
    let mut login = Entry::new(
        format!("boot to first ssh login (TCG) vs {vs}"),
        Some(median(&log)),
        "s",
    );
    let net_note = "QEMU start to the guest's kernel first resetting a connection to a closed forwarded port (its address is configured)";
    let (acc_note, log_note) = (
        "QEMU start to sshd's SSH-2.0 banner on the forwarded port",
        "QEMU start to an ssh login running `true` (core on ours, root on the baseline)",
    );
    let what = format!("Baseline: {}", b.describe());
    match base {
        Ok(base_t) => {
            let breach = pick(base_t, |t| t.reachable);
            let bacc = pick(base_t, |t| t.accepting);
            let blog = pick(base_t, |t| t.login);
            let kernel: Vec<String> = base_t
                .iter()
                .map(|t| t.marker.map_or("-".to_string(), |s| format!("{s:.1}")))
                .collect();
            network = network.baseline(Some(median(&breach))).note(format!(
                "{net_note}; median of {n} each: ours {}; baseline {}. {what}",
                list(&reach),
                list(&breach)
            ));
            accepting = accepting.baseline(Some(median(&bacc))).note(format!(
                "{acc_note}; median of {n} alternating boots each: ours {}; baseline {} \
                 (its kernel's first console line at {} s). {what}",
                list(&acc),
                list(&bacc),
                kernel.join(", ")
            ));
            login = login.baseline(Some(median(&blog))).note(format!(
                "{log_note}; median of {n} each: ours {}; baseline {}. {what}",
                list(&log),
                list(&blog)
            ));
        }
        Err(err) => {
            eprintln!("bench: conventional boot baseline ({b:?}) unavailable: {err}");
            let why = format!("baseline unavailable: {}", err.replace('\n', " | "));
            network = network.note(format!("{net_note}; ours {}; {why}. {what}", list(&reach)));
            accepting = accepting.note(format!("{acc_note}; ours {}; {why}. {what}", list(&acc)));
            login = login.note(format!("{log_note}; ours {}; {why}. {what}", list(&log)));
        }
    }
    [network, accepting, login]
}

/// The boot entries; `root` is the debootstrapped root of the same package
/// set (an error when it could not be built: the baselines' rows then have
/// no ratio and say why). Each of the `runs` runs boots ours, then the
/// direct-kernel baseline, then the GRUB baseline, so that a slow patch of
/// the host hits all three; each figure is the median. A baseline that fails
/// is dropped for the remaining runs; its rows say why.
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
    // Each baseline's boots so far, or why it cannot run.
    let mut bases: Vec<(Baseline, Result<Vec<Times>, String>)> = Baseline::ALL
        .iter()
        .map(|&b| {
            (
                b,
                root.as_ref()
                    .map(|_| Vec::new())
                    .map_err(|e| format!("{e:#}")),
            )
        })
        .collect();
    for run in 1..=runs.max(1) {
        eprintln!("bench: boot run {run} of {}", runs.max(1));
        ours_t.push(ours(basalt, &image, work, &key, &public, run)?);
        let Ok(r) = &root else { continue };
        for (b, state) in &mut bases {
            if let Ok(ts) = state {
                match conventional::boot(*b, r, work, &key, &public, run) {
                    Ok(t) => ts.push(t),
                    Err(e) => *state = Err(format!("{e:#}")),
                }
            }
        }
    }
    std::fs::remove_dir_all(&out_dir).ok();
    let provs = ours_t
        .iter()
        .map(|t| t.marker.context("no provisioning time"))
        .collect::<Result<Vec<f64>>>()?;
    let mut out = vec![
        Entry::new("boot to provisioning done (TCG)", Some(median(&provs)), "s").note(format!(
            "QEMU start to `basalt-init: provisioned` on the console; median of {}: {}",
            ours_t.len(),
            list(&provs)
        )),
    ];
    for (b, base) in &bases {
        out.extend(rows(&ours_t, *b, base));
    }
    Ok(out)
}
