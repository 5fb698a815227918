//! Preparing and running one VM: checks the inputs, picks the accelerator,
//! the port and the firmware files, then spawns QEMU tied to our lifetime.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use super::accel::{self, AccelChoice};
use super::command::{Console, DiskFormat, FirmwareSetup, Network, VmSpec, qemu_args};
use super::error::QemuError;
use super::firmware::{Firmware, Ovmf, find_ovmf};
use super::forward::Forward;
use super::port::{check_forwards, check_port, free_port};
use super::sys::die_with_parent;

/// The QEMU program, looked up on PATH.
pub const QEMU: &str = "qemu-system-x86_64";
/// Where distributions install firmware images.
pub const SHARE: &str = "/usr/share";
const MIN_MEMORY_MIB: u32 = 256;

/// Where the console goes when there is no terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleChoice {
    Terminal,
    /// Log file; `None` = next to the image, `<stem>.console.log`.
    Log(Option<PathBuf>),
}

/// What `basalt boot` was asked to do.
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub image: PathBuf,
    pub firmware: Firmware,
    pub config: Option<PathBuf>,
    pub ssh_port: Option<u16>,
    /// Extra host ports forwarded to the guest.
    pub forwards: Vec<Forward>,
    pub memory_mib: u32,
    pub cpus: u32,
    pub snapshot: bool,
    pub accel: AccelChoice,
    pub console: ConsoleChoice,
    /// Extra read-only raw disks (datasource media).
    pub extra_drives: Vec<PathBuf>,
    pub network: Network,
    pub smbios: Vec<String>,
}

/// A VM ready to start. Owns the scratch directory holding this run's OVMF
/// variable store; it is removed when the `Vm` is dropped.
#[derive(Debug)]
pub struct Vm {
    pub spec: VmSpec,
    /// Why this accelerator, for the user.
    pub accel_reason: String,
    _scratch: Option<tempfile::TempDir>,
}

/// `out/basalt-qemu.img` → `out/basalt-qemu.console.log`.
pub fn default_console_log(image: &Path) -> PathBuf {
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".img")
        .or_else(|| name.strip_suffix(".qcow2"))
        .unwrap_or(&name);
    image.with_file_name(format!("{stem}.console.log"))
}

fn check_image(image: &Path, snapshot: bool) -> Result<DiskFormat, QemuError> {
    let bad = |why: String| QemuError::BadImage {
        path: image.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(image)
        .map_err(|e| bad(format!("{e} (build one with `basalt build`)")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let format = DiskFormat::of(image)?;
    // Without --snapshot QEMU opens the image read-write; say so now, not
    // in QEMU's words after the accelerator probe.
    let opened = if snapshot {
        std::fs::File::open(image)
    } else {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(image)
    };
    opened.map_err(|e| {
        bad(format!(
            "cannot open {}: {e}",
            if snapshot {
                "for reading"
            } else {
                "read-write"
            }
        ))
    })?;
    Ok(format)
}

fn check_config(cfg: &Path) -> Result<(), QemuError> {
    let bad = |why: String| QemuError::BadConfig {
        path: cfg.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(cfg).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    std::fs::File::open(cfg).map_err(|e| bad(format!("cannot read it: {e}")))?;
    Ok(())
}

impl Vm {
    /// Checks everything QEMU would otherwise complain about late, then
    /// fixes the accelerator (probing KVM for `Auto`), port and firmware.
    pub fn prepare(o: &BootOptions, qemu: &Path, share: &Path) -> Result<Vm, QemuError> {
        if o.memory_mib < MIN_MEMORY_MIB {
            return Err(QemuError::TooSmall {
                what: "--memory (MiB)",
                min: MIN_MEMORY_MIB,
                got: o.memory_mib,
            });
        }
        if o.cpus < 1 {
            return Err(QemuError::TooSmall {
                what: "--cpus",
                min: 1,
                got: o.cpus,
            });
        }
        let format = check_image(&o.image, o.snapshot)?;
        if let Some(cfg) = &o.config {
            check_config(cfg)?;
        }
        for d in &o.extra_drives {
            std::fs::File::open(d).map_err(|e| QemuError::BadImage {
                path: d.clone(),
                why: format!("datasource disk: {e}"),
            })?;
        }
        let ssh_port = match o.ssh_port {
            Some(p) => check_port(p)?,
            None => free_port()?,
        };
        check_forwards(&o.forwards, ssh_port)?;
        let mut scratch = None;
        let firmware = match o.firmware {
            Firmware::Bios => FirmwareSetup::SeaBios,
            Firmware::Uefi => match find_ovmf(share)? {
                Ovmf::Combined(p) => FirmwareSetup::Bios(p),
                Ovmf::Split {
                    code,
                    vars: template,
                } => {
                    let dir = tempfile::Builder::new()
                        .prefix("basalt-boot-")
                        .tempdir()
                        .map_err(|source| QemuError::VarsCopy {
                            from: template.clone(),
                            source,
                        })?;
                    let vars = dir.path().join("OVMF_VARS.fd");
                    std::fs::copy(&template, &vars).map_err(|source| QemuError::VarsCopy {
                        from: template.clone(),
                        source,
                    })?;
                    // The template is often read-only; the copy must be writable.
                    std::fs::set_permissions(
                        &vars,
                        std::os::unix::fs::PermissionsExt::from_mode(0o600),
                    )
                    .map_err(|source| QemuError::VarsCopy {
                        from: template.clone(),
                        source,
                    })?;
                    scratch = Some(dir);
                    FirmwareSetup::Pflash { code, vars }
                }
            },
        };
        let console = match &o.console {
            ConsoleChoice::Terminal => Console::Terminal,
            ConsoleChoice::Log(p) => {
                Console::Log(p.clone().unwrap_or_else(|| default_console_log(&o.image)))
            }
        };
        let (accel, accel_reason) = accel::choose(o.accel, qemu);
        let spec = VmSpec {
            image: o.image.clone(),
            format,
            snapshot: o.snapshot,
            firmware,
            accel,
            memory_mib: o.memory_mib,
            cpus: o.cpus,
            config: o.config.clone(),
            ssh_port,
            forwards: o.forwards.clone(),
            console,
            extra_drives: o.extra_drives.clone(),
            network: o.network.clone(),
            smbios: o.smbios.clone(),
        };
        Ok(Vm {
            spec,
            accel_reason,
            _scratch: scratch,
        })
    }

    /// The QEMU process to start; it gets SIGTERM if we die.
    pub fn command(&self, qemu: &Path) -> Result<Command, QemuError> {
        let mut cmd = Command::new(qemu);
        cmd.args(qemu_args(&self.spec)?);
        die_with_parent(&mut cmd);
        Ok(cmd)
    }

    /// Runs QEMU with our stdio and waits for it.
    pub fn run(&self, qemu: &Path) -> Result<ExitStatus, QemuError> {
        let spawn = |source| QemuError::Spawn {
            program: qemu.display().to_string(),
            source,
        };
        let mut child = self.command(qemu)?.spawn().map_err(spawn)?;
        child.wait().map_err(spawn)
    }

    /// How to log in once sshd is up.
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null core@127.0.0.1",
            self.spec.ssh_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(image: &Path) -> BootOptions {
        BootOptions {
            image: image.to_path_buf(),
            firmware: Firmware::Bios,
            config: None,
            ssh_port: None,
            forwards: vec![],
            memory_mib: 1024,
            cpus: 1,
            snapshot: true,
            accel: AccelChoice::Tcg,
            console: ConsoleChoice::Log(None),
            extra_drives: vec![],
            network: Network::Default,
            smbios: vec![],
        }
    }

    #[test]
    fn console_log_names() {
        for (img, log) in [
            ("out/basalt-qemu.img", "out/basalt-qemu.console.log"),
            ("x/disk.qcow2", "x/disk.console.log"),
            ("disk.raw", "disk.raw.console.log"),
        ] {
            assert_eq!(default_console_log(Path::new(img)), PathBuf::from(log));
        }
    }

    #[test]
    fn bad_inputs_fail_before_qemu_starts() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("d.img");
        std::fs::write(&img, [0u8; 512]).unwrap();
        let cfg = dir.path().join("c.ign");
        std::fs::write(&cfg, "{}").unwrap();
        type Edit = fn(&mut BootOptions, &Path);
        let cases: &[(Edit, &str)] = &[
            (
                |o, d| o.image = d.join("missing.img"),
                "missing.img: No such file",
            ),
            (|o, d| o.image = d.to_path_buf(), "not a regular file"),
            (
                |o, d| o.config = Some(d.join("nope.ign")),
                "nope.ign: No such file",
            ),
            (
                |o, d| o.config = Some(d.to_path_buf()),
                "not a regular file",
            ),
            (
                |o, _| o.memory_mib = 16,
                "--memory (MiB) must be at least 256, got 16",
            ),
            (|o, _| o.cpus = 0, "--cpus must be at least 1"),
            (|o, d| o.image = d.join("x.img.xz"), "No such file"),
        ];
        let qemu = Path::new("/nonexistent/qemu");
        for (edit, want) in cases {
            let mut o = opts(&img);
            edit(&mut o, dir.path());
            let e = Vm::prepare(&o, qemu, Path::new(SHARE))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
        // A good one, with a config and a forced port.
        let mut o = opts(&img);
        o.config = Some(cfg.clone());
        let port = free_port().unwrap();
        o.ssh_port = Some(port);
        let vm = Vm::prepare(&o, qemu, Path::new(SHARE)).unwrap();
        assert_eq!(vm.spec.ssh_port, port);
        assert_eq!(
            vm.spec.console,
            Console::Log(dir.path().join("d.console.log"))
        );
        assert!(vm.ssh_command().contains(&format!("-p {port} ")));
    }

    #[test]
    fn uefi_gets_a_private_writable_vars_copy() {
        let share = tempfile::tempdir().unwrap();
        let ovmf = share.path().join("OVMF");
        std::fs::create_dir_all(&ovmf).unwrap();
        std::fs::write(ovmf.join("OVMF_CODE_4M.fd"), b"code").unwrap();
        std::fs::write(ovmf.join("OVMF_VARS_4M.fd"), b"vars-template").unwrap();
        std::fs::set_permissions(
            ovmf.join("OVMF_VARS_4M.fd"),
            std::os::unix::fs::PermissionsExt::from_mode(0o444),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("d.img");
        std::fs::write(&img, [0u8; 512]).unwrap();
        let mut o = opts(&img);
        o.firmware = Firmware::Uefi;
        let a = Vm::prepare(&o, Path::new("/nonexistent/qemu"), share.path()).unwrap();
        let b = Vm::prepare(&o, Path::new("/nonexistent/qemu"), share.path()).unwrap();
        let vars = |vm: &Vm| match &vm.spec.firmware {
            FirmwareSetup::Pflash { code, vars } => {
                assert_eq!(code, &ovmf.join("OVMF_CODE_4M.fd"));
                vars.clone()
            }
            other => panic!("{other:?}"),
        };
        let (va, vb) = (vars(&a), vars(&b));
        assert_ne!(va, vb, "two runs share one variable store");
        assert_eq!(std::fs::read(&va).unwrap(), b"vars-template");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&va)
            .expect("the copy is writable");
        drop(a);
        assert!(!va.exists(), "the per-run copy outlived its run");
    }
}
