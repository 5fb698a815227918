//! The QEMU command line for one VM, built from a plain description so that it
//! can be checked without running anything.

use std::path::{Path, PathBuf};

use super::accel::Accel;
use super::error::QemuError;
use super::forward::{Forward, hostfwd_options};

/// fw_cfg key the provisioner reads the first-boot config from
/// (provisioner/README.md, "Sources").
pub const CONFIG_FW_CFG_KEY: &str = "opt/org.basalt/config";
/// Guest port sshd listens on.
pub const GUEST_SSH_PORT: u16 = 22;

/// How the disk image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }

    /// From the file name, as `basalt build` names its outputs.
    pub fn of(image: &Path) -> Result<DiskFormat, QemuError> {
        let name = image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".qcow2") {
            Ok(DiskFormat::Qcow2)
        } else if name.ends_with(".xz") || name.ends_with(".tar") {
            Err(QemuError::BadImage {
                path: image.to_path_buf(),
                why:
                    "not a disk image (decompress a .img.xz with `xz -dk` first; a .tar is no disk)"
                        .into(),
            })
        } else {
            Ok(DiskFormat::Raw)
        }
    }
}

/// Firmware as attached to the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareSetup {
    /// QEMU's default SeaBIOS.
    SeaBios,
    /// OVMF as two pflash devices: read-only code, this run's writable VARS copy.
    Pflash { code: PathBuf, vars: PathBuf },
    /// A combined OVMF image given to `-bios`.
    Bios(PathBuf),
}

/// Where the serial console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// The terminal: serial and monitor multiplexed on stdio (Ctrl-A X quits).
    Terminal,
    /// QEMU's stdout and, at the same time, this log file (truncated first).
    Log(PathBuf),
}

/// Everything that decides the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub image: PathBuf,
    pub format: DiskFormat,
    /// Write nothing to the image (`snapshot=on`: writes go to a temp overlay).
    /// The overlay is thrown away, so the guest's flushes of it are not
    /// passed on to the host disk (`cache=unsafe`).
    pub snapshot: bool,
    pub firmware: FirmwareSetup,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// First-boot config passed through fw_cfg.
    pub config: Option<PathBuf>,
    /// Host port on 127.0.0.1 forwarded to the guest's sshd.
    pub ssh_port: u16,
    /// Extra host ports forwarded to the guest.
    pub forwards: Vec<Forward>,
    pub console: Console,
    /// Extra read-only raw disks (datasource media).
    pub extra_drives: Vec<PathBuf>,
    /// Network layout of QEMU's user networking.
    pub network: Network,
    /// `-smbios` options (e.g. the EC2 system vendor).
    pub smbios: Vec<String>,
}

/// The guest network (QEMU user networking, always with the ssh forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// QEMU's default 10.0.2.0/24.
    Default,
    /// 169.254.169.0/24, so that the EC2 metadata address 169.254.169.254
    /// is inside the guest network, where QEMU allows a `guestfwd`:
    /// every connection to it runs `command` with the connection on its
    /// stdin/stdout.
    Metadata { guest: String, command: String },
}

/// Guest network for [`Network::Metadata`] (QEMU -netdev user options).
pub const METADATA_NET: &str =
    "net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,dhcpstart=169.254.169.15";

/// A path as a QEMU option value: UTF-8, with each `,` doubled (QEMU's
/// escape inside `key=value,...` lists).
fn opt_path(what: &'static str, p: &Path) -> Result<String, QemuError> {
    let s = p.to_str().ok_or_else(|| QemuError::NonUtf8Path {
        what,
        path: p.to_path_buf(),
    })?;
    Ok(s.replace(',', ",,"))
}

/// The arguments after the program name.
pub fn qemu_args(spec: &VmSpec) -> Result<Vec<String>, QemuError> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&[
        "-name",
        "basalt",
        "-machine",
        "q35",
        "-accel",
        spec.accel.name(),
    ]);
    // KVM: the host's CPU; TCG: every feature QEMU can emulate.
    push(&[
        "-cpu",
        if spec.accel == Accel::Kvm {
            "host"
        } else {
            "max"
        },
    ]);
    push(&[
        "-m",
        &spec.memory_mib.to_string(),
        "-smp",
        &spec.cpus.to_string(),
    ]);
    match &spec.firmware {
        FirmwareSetup::SeaBios => {}
        FirmwareSetup::Pflash { code, vars } => {
            let code = opt_path("OVMF code", code)?;
            let vars = opt_path("OVMF variable store", vars)?;
            push(&[
                "-drive",
                &format!("if=pflash,format=raw,unit=0,readonly=on,file={code}"),
            ]);
            push(&[
                "-drive",
                &format!("if=pflash,format=raw,unit=1,file={vars}"),
            ]);
        }
        FirmwareSetup::Bios(p) => push(&[
            "-bios",
            p.to_str().ok_or_else(|| QemuError::NonUtf8Path {
                what: "OVMF image",
                path: p.clone(),
            })?,
        ]),
    }
    let image = opt_path("image", &spec.image)?;
    let snapshot = if spec.snapshot {
        ",snapshot=on,cache=unsafe"
    } else {
        ""
    };
    push(&[
        "-drive",
        &format!(
            "if=virtio,format={},file={image}{snapshot}",
            spec.format.name()
        ),
    ]);
    for d in &spec.extra_drives {
        let d = opt_path("datasource disk", d)?;
        push(&[
            "-drive",
            &format!("if=virtio,format=raw,readonly=on,file={d}"),
        ]);
    }
    let net = match &spec.network {
        Network::Default => String::new(),
        // QEMU splits options at ',' (a doubled ',,' is a literal comma).
        Network::Metadata { guest, command } => format!(
            ",{METADATA_NET},guestfwd=tcp:{guest}-cmd:{}",
            command.replace(',', ",,")
        ),
    };
    push(&[
        "-netdev",
        &format!(
            "user,id=net0{net},hostfwd=tcp:127.0.0.1:{}-:{GUEST_SSH_PORT}{}",
            spec.ssh_port,
            hostfwd_options(&spec.forwards)
        ),
    ]);
    // No option ROM: the firmware must not fall back to network boot.
    push(&["-device", "virtio-net-pci,netdev=net0,romfile="]);
    // Entropy for early boot (sshd host keys on first boot).
    push(&["-device", "virtio-rng-pci"]);
    if let Some(cfg) = &spec.config {
        let cfg = opt_path("config", cfg)?;
        push(&["-fw_cfg", &format!("name={CONFIG_FW_CFG_KEY},file={cfg}")]);
    }
    for s in &spec.smbios {
        push(&["-smbios", s]);
    }
    match &spec.console {
        Console::Terminal => push(&["-nographic", "-serial", "mon:stdio"]),
        Console::Log(log) => {
            let log = opt_path("console log", log)?;
            push(&["-display", "none", "-monitor", "none"]);
            push(&[
                "-chardev",
                &format!("stdio,id=console,signal=off,logfile={log}"),
            ]);
            push(&["-serial", "chardev:console"]);
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            image: "out/basalt-qemu.img".into(),
            format: DiskFormat::Raw,
            snapshot: false,
            firmware: FirmwareSetup::SeaBios,
            accel: Accel::Tcg,
            memory_mib: 2048,
            cpus: 2,
            config: None,
            ssh_port: 2222,
            forwards: vec![],
            console: Console::Terminal,
            extra_drives: vec![],
            network: Network::Default,
            smbios: vec![],
        }
    }

    fn line(s: &VmSpec) -> String {
        qemu_args(s).unwrap().join(" ")
    }

    #[test]
    fn command_lines() {
        let base = "-name basalt -machine q35 -accel tcg -cpu max -m 2048 -smp 2 \
                    -drive if=virtio,format=raw,file=out/basalt-qemu.img \
                    -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci,netdev=net0,romfile= \
                    -device virtio-rng-pci \
                    -nographic -serial mon:stdio";
        type Edit = fn(&mut VmSpec);
        // (edit, text that must appear, text that must not)
        let cases: &[(Edit, &str, &str)] = &[
            (|_| {}, base, "-no-reboot"),
            (
                |s| s.snapshot = true,
                "file=out/basalt-qemu.img,snapshot=on,cache=unsafe ",
                "-no-reboot",
            ),
            (
                |s| s.accel = Accel::Kvm,
                "-accel kvm -cpu host ",
                "-accel tcg",
            ),
            (
                |s| {
                    s.image = "a.qcow2".into();
                    s.format = DiskFormat::Qcow2
                },
                "-drive if=virtio,format=qcow2,file=a.qcow2 ",
                "format=raw",
            ),
            (
                |s| {
                    s.firmware = FirmwareSetup::Pflash {
                        code: "/c/CODE.fd".into(),
                        vars: "/t/VARS.fd".into(),
                    }
                },
                "-drive if=pflash,format=raw,unit=0,readonly=on,file=/c/CODE.fd \
                 -drive if=pflash,format=raw,unit=1,file=/t/VARS.fd ",
                "-bios",
            ),
            (
                |s| s.firmware = FirmwareSetup::Bios("/o/OVMF.fd".into()),
                "-bios /o/OVMF.fd ",
                "pflash",
            ),
            (
                |s| s.config = Some("/x/cfg.ign".into()),
                "-fw_cfg name=opt/org.basalt/config,file=/x/cfg.ign ",
                "mon:stdio -",
            ),
            (
                |s| s.console = Console::Log("out/c.log".into()),
                "-display none -monitor none -chardev stdio,id=console,signal=off,logfile=out/c.log -serial chardev:console",
                "-nographic",
            ),
            // Commas in paths are doubled so QEMU does not split the option there.
            (
                |s| s.image = "/d/a,b.img".into(),
                "file=/d/a,,b.img ",
                "file=/d/a,b",
            ),
            (
                |s| s.config = Some("/x/c,1.ign".into()),
                "file=/x/c,,1.ign ",
                "file=/x/c,1",
            ),
            (|s| s.memory_mib = 512, "-m 512 -smp 2 ", "-m 2048"),
            (
                |s| s.extra_drives = vec!["/t/config-2.iso".into()],
                "-drive if=virtio,format=raw,file=out/basalt-qemu.img -drive if=virtio,format=raw,readonly=on,file=/t/config-2.iso -netdev ",
                "guestfwd",
            ),
            (
                |s| {
                    s.network = Network::Metadata {
                        guest: "169.254.169.254:80".into(),
                        command: "/b/basalt boot --relay-to 127.0.0.1:9".into(),
                    };
                    s.smbios = vec!["type=1,manufacturer=Amazon EC2".into()];
                },
                "-netdev user,id=net0,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,dhcpstart=169.254.169.15,guestfwd=tcp:169.254.169.254:80-cmd:/b/basalt boot --relay-to 127.0.0.1:9,hostfwd=tcp:127.0.0.1:2222-:22 \
                 -device virtio-net-pci,netdev=net0,romfile= -device virtio-rng-pci -smbios type=1,manufacturer=Amazon EC2 -nographic",
                "readonly=on",
            ),
            (|s| s.cpus = 4, "-smp 4 ", "-smp 2"),
            (
                |s| {
                    s.forwards = vec![Forward {
                        host: 8080,
                        guest: 80,
                    }]
                },
                "hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80 ",
                "-:80,",
            ),
            (
                |s| s.ssh_port = 40022,
                "hostfwd=tcp:127.0.0.1:40022-:22",
                "2222",
            ),
        ];
        for (i, (edit, want, not)) in cases.iter().enumerate() {
            let mut s = spec();
            edit(&mut s);
            let l = line(&s) + " ";
            assert!(l.contains(want), "case {i}: {l:?} lacks {want:?}");
            assert!(!l.contains(not), "case {i}: {l:?} has {not:?}");
        }
    }

    #[test]
    fn non_utf8_paths_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let bad = PathBuf::from(std::ffi::OsStr::from_bytes(b"/d/\xff.img"));
        let mut s = spec();
        s.image = bad;
        let e = qemu_args(&s).unwrap_err().to_string();
        assert!(
            e.contains("image /d/") && e.contains("not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn disk_format_from_name() {
        let cases: &[(&str, Result<DiskFormat, &str>)] = &[
            ("out/basalt-qemu.img", Ok(DiskFormat::Raw)),
            ("disk.raw", Ok(DiskFormat::Raw)),
            ("out/basalt-qemu.qcow2", Ok(DiskFormat::Qcow2)),
            ("out/basalt-qemu.img.xz", Err("xz -dk")),
            ("out/basalt-qemu.tar", Err("not a disk image")),
        ];
        for (name, want) in cases {
            match (DiskFormat::of(Path::new(name)), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{name}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, w) => panic!("{name}: got {got:?}, want {w:?}"),
            }
        }
    }
}
