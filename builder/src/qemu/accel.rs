//! Choosing the accelerator: KVM only when it really runs guest code, else TCG.
//!
//! On some hosts /dev/kvm exists but KVM hangs, asserts or crawls (nested
//! virtualisation without hardware support). The probe boots QEMU's own
//! SeaBIOS with no disks under the accelerator and waits, with a bound, for
//! the firmware's debug console (I/O port 0x402) to report that POST finished
//! ("No bootable device"). TCG gets there in well under a second; a KVM that
//! cannot within the bound is not worth using. Nothing is cached: every run
//! probes again.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM when the probe shows it works, else TCG.
    Auto,
    /// KVM without probing.
    Kvm,
    /// TCG (software emulation).
    Tcg,
}

/// The device file KVM is reached through.
pub const KVM_DEVICE: &str = "/dev/kvm";
/// How long the KVM probe may take before KVM counts as unusable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// SeaBIOS debug port (QEMU's `isa-debugcon` default address for it).
const SEABIOS_DEBUG_PORT: &str = "0x402";
/// SeaBIOS prints this on its debug port once POST found nothing to boot.
const POST_DONE: &str = "No bootable device";

/// Picks the accelerator; the string says why, for the user.
pub fn choose(choice: AccelChoice, qemu: &Path) -> (Accel, String) {
    match choice {
        AccelChoice::Kvm => (Accel::Kvm, "requested".into()),
        AccelChoice::Tcg => (Accel::Tcg, "requested".into()),
        AccelChoice::Auto => {
            if let Err(e) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(KVM_DEVICE)
            {
                return (
                    Accel::Tcg,
                    format!("KVM unusable: opening {KVM_DEVICE}: {e}"),
                );
            }
            match probe(qemu, Accel::Kvm, PROBE_TIMEOUT) {
                Ok(t) => (
                    Accel::Kvm,
                    format!("KVM probe passed in {} ms", t.as_millis()),
                ),
                Err(why) => (Accel::Tcg, format!("KVM unusable: {why}")),
            }
        }
    }
}

/// Boots SeaBIOS without disks under `accel` and waits up to `timeout` for
/// POST to finish. Returns how long it took, or why the accelerator failed.
/// The QEMU process is always killed and reaped before returning.
pub fn probe(qemu: &Path, accel: Accel, timeout: Duration) -> Result<Duration, String> {
    let start = std::time::Instant::now();
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            accel.name(),
            "-machine",
            "q35",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-monitor", "none", "-serial", "none", "-m", "64"])
        // The CPU model and count the real run uses under this accelerator:
        // some hosts pass a bare KVM probe, then assert on `-cpu host` MSRs.
        .args(match accel {
            Accel::Kvm => &["-cpu", "host", "-smp", "2"][..],
            Accel::Tcg => &["-cpu", "max", "-smp", "2"][..],
        })
        .args(["-chardev", "stdio,id=probe,signal=off"])
        .args([
            "-device",
            &format!("isa-debugcon,iobase={SEABIOS_DEBUG_PORT},chardev=probe"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", qemu.display()))?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let Some(out) = stdout else { return };
        for line in BufReader::new(out).lines() {
            match line {
                Ok(l) if l.contains(POST_DONE) => {
                    let _ = tx.send(());
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let outcome = rx.recv_timeout(timeout);
    let elapsed = start.elapsed();
    // Ends the probe either way; an error here means it has already exited.
    let _ = child.kill();
    let status = child.wait();
    let _ = reader.join();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    match outcome {
        Ok(()) => Ok(elapsed),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "firmware did not finish POST within {} s under {}",
            timeout.as_secs(),
            accel.name()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!(
            "QEMU exited ({}) before the firmware finished POST{}{}",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
            if stderr.is_empty() { "" } else { ": " },
            stderr
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &str = "qemu-system-x86_64";

    fn have_qemu() -> bool {
        let ok = Command::new(QEMU)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "SKIPPED accel probe tests: {QEMU} is not installed (apt install qemu-system-x86)"
            );
        }
        ok
    }

    #[test]
    fn tcg_probe_sees_post_finish_quickly() {
        if !have_qemu() {
            return;
        }
        let t = probe(Path::new(QEMU), Accel::Tcg, Duration::from_secs(20)).expect("TCG probe");
        assert!(t < Duration::from_secs(20));
    }

    #[test]
    fn probe_reports_a_qemu_that_cannot_start() {
        let e = probe(
            Path::new("/nonexistent/qemu-system-x86_64"),
            Accel::Tcg,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            e.contains("starting /nonexistent/qemu-system-x86_64"),
            "{e}"
        );
    }

    #[test]
    fn probe_reports_a_qemu_that_exits_early() {
        // `false` exits at once without printing the POST marker.
        let e = probe(Path::new("false"), Accel::Kvm, Duration::from_secs(5)).unwrap_err();
        assert!(
            e.contains("exited") && e.contains("before the firmware finished POST"),
            "{e}"
        );
    }

    #[test]
    fn probe_times_out_on_a_hang() {
        // A program that never prints the marker and never exits stands in
        // for a KVM_RUN that hangs.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("hang");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let start = std::time::Instant::now();
        let e = probe(&fake, Accel::Kvm, Duration::from_millis(500)).unwrap_err();
        assert!(e.contains("did not finish POST within"), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the probe waited for the hung process"
        );
    }

    #[test]
    fn auto_choice_is_bounded_and_explained() {
        if !have_qemu() {
            return;
        }
        let start = std::time::Instant::now();
        let (accel, why) = choose(AccelChoice::Auto, Path::new(QEMU));
        assert!(
            start.elapsed() < PROBE_TIMEOUT + Duration::from_secs(5),
            "probe took {:?}",
            start.elapsed()
        );
        match accel {
            Accel::Kvm => assert!(why.contains("KVM probe passed"), "{why}"),
            Accel::Tcg => assert!(why.starts_with("KVM unusable: "), "{why}"),
        }
        eprintln!("auto accelerator on this host: {} ({why})", accel.name());
        assert_eq!(choose(AccelChoice::Tcg, Path::new(QEMU)).0, Accel::Tcg);
        assert_eq!(choose(AccelChoice::Kvm, Path::new(QEMU)).0, Accel::Kvm);
    }
}
