//! Booting `--format pxe` artifacts with no disk: either QEMU's direct
//! kernel boot (`-kernel`/`-initrd`/`-append`, the command line taken from
//! the iPXE script), or a real network boot: QEMU's user-network TFTP
//! server serves the artifact directory, its DHCP names the iPXE script as
//! the boot file, and the virtio-net option ROM (iPXE, Debian package
//! `ipxe-qemu`) runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::accel::{self, Accel, AccelChoice};
use super::command::{CONFIG_FW_CFG_KEY, Console, GUEST_SSH_PORT};
use super::error::QemuError;
use super::forward::{Forward, hostfwd_options};
use super::port::{check_forwards, check_port, free_port};
use super::sys::die_with_parent;

/// Guest memory for diskless boots when none is asked for: the initrd
/// (with /usr) sits in memory twice while the kernel unpacks it.
pub const PXE_DEFAULT_MEMORY_MIB: u32 = 3072;

/// The artifacts of one `--format pxe` build, as its iPXE script names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxeArtifacts {
    pub dir: PathBuf,
    /// File name of the script in `dir`.
    pub script: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel command line (without `initrd=`, which only EFI stubs need).
    pub append: String,
}

fn bad(dir: &Path, why: String) -> QemuError {
    QemuError::BadImage {
        path: dir.to_path_buf(),
        why,
    }
}

/// The `kernel` and `initrd` lines of an iPXE script written by
/// `basalt build --format pxe`: (kernel, initrd, kernel arguments).
pub fn parse_script(text: &str) -> Result<(String, String, String), String> {
    if !text.starts_with("#!ipxe") {
        return Err("not an iPXE script (no #!ipxe first line)".into());
    }
    let mut kernel = None;
    let mut initrd = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("kernel") => {
                let k = words.next().ok_or("a kernel line without a file")?;
                let args: Vec<&str> = words.filter(|w| !w.starts_with("initrd=")).collect();
                kernel = Some((k.to_string(), args.join(" ")));
            }
            Some("initrd") => {
                if initrd.is_some() {
                    return Err("more than one initrd line; basalt boot --pxe loads one".into());
                }
                initrd = Some(
                    words
                        .next()
                        .ok_or("an initrd line without a file")?
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    let (k, args) = kernel.ok_or("no kernel line")?;
    let i = initrd.ok_or("no initrd line")?;
    for f in [&k, &i] {
        if f.contains('/') || f.contains(':') {
            return Err(format!(
                "{f:?}: expected a file name next to the script, not a path or URL"
            ));
        }
    }
    Ok((k, i, args))
}

impl PxeArtifacts {
    /// Find the one `*.ipxe` script in `dir` and the files it names.
    pub fn find(dir: &Path) -> Result<PxeArtifacts, QemuError> {
        let rd = std::fs::read_dir(dir).map_err(|e| {
            bad(
                dir,
                format!("{e} (build one with `basalt build --format pxe`)"),
            )
        })?;
        let mut scripts: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".ipxe"))
            .collect();
        scripts.sort();
        let script = match scripts.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(bad(
                    dir,
                    "no *.ipxe script (not a `--format pxe` output)".into(),
                ));
            }
            many => {
                return Err(bad(
                    dir,
                    format!("several iPXE scripts ({}); keep one", many.join(", ")),
                ));
            }
        };
        let text = std::fs::read_to_string(dir.join(&script))
            .map_err(|e| bad(dir, format!("reading {script}: {e}")))?;
        let (k, i, append) =
            parse_script(&text).map_err(|why| bad(dir, format!("{script}: {why}")))?;
        let art = PxeArtifacts {
            dir: dir.to_path_buf(),
            script,
            kernel: dir.join(k),
            initrd: dir.join(i),
            append,
        };
        for f in [&art.kernel, &art.initrd] {
            std::fs::File::open(f).map_err(|e| bad(dir, format!("{}: {e}", f.display())))?;
        }
        Ok(art)
    }
}

/// How the VM gets its kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PxeBoot {
    Direct,
    /// QEMU's TFTP serves the directory; DHCP's boot file is the script.
    Network,
}

/// Everything that decides the command line of a diskless VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxeSpec {
    pub artifacts: PxeArtifacts,
    pub boot: PxeBoot,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub config: Option<PathBuf>,
    pub ssh_port: u16,
    /// Extra host ports forwarded to the guest.
    pub forwards: Vec<Forward>,
    pub console: Console,
}

fn utf8<'a>(what: &'static str, p: &'a Path) -> Result<&'a str, QemuError> {
    p.to_str().ok_or_else(|| QemuError::NonUtf8Path {
        what,
        path: p.to_path_buf(),
    })
}

/// QEMU's option values double a literal `,`.
fn opt(what: &'static str, p: &Path) -> Result<String, QemuError> {
    Ok(utf8(what, p)?.replace(',', ",,"))
}

/// The arguments after the program name.
pub fn pxe_args(s: &PxeSpec) -> Result<Vec<String>, QemuError> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|x| x.to_string()));
    let cpu = if s.accel == Accel::Kvm { "host" } else { "max" };
    push(&[
        "-name",
        "basalt-pxe",
        "-machine",
        "q35",
        "-accel",
        s.accel.name(),
    ]);
    push(&[
        "-cpu",
        cpu,
        "-m",
        &s.memory_mib.to_string(),
        "-smp",
        &s.cpus.to_string(),
    ]);
    let fwd = format!(
        "hostfwd=tcp:127.0.0.1:{}-:{GUEST_SSH_PORT}{}",
        s.ssh_port,
        hostfwd_options(&s.forwards)
    );
    match s.boot {
        PxeBoot::Direct => {
            push(&["-kernel", utf8("kernel", &s.artifacts.kernel)?]);
            push(&["-initrd", utf8("initrd", &s.artifacts.initrd)?]);
            push(&["-append", &s.artifacts.append]);
            push(&["-netdev", &format!("user,id=net0,{fwd}")]);
            push(&["-device", "virtio-net-pci,netdev=net0,romfile="]);
        }
        PxeBoot::Network => {
            if s.artifacts.script.contains(',') {
                return Err(bad(
                    &s.artifacts.dir,
                    "the script's name contains a comma".into(),
                ));
            }
            let dir = opt("TFTP directory", &s.artifacts.dir)?;
            push(&[
                "-netdev",
                &format!(
                    "user,id=net0,tftp={dir},bootfile={},{fwd}",
                    s.artifacts.script
                ),
            ]);
            // QEMU's default option ROM for virtio-net is iPXE.
            push(&["-device", "virtio-net-pci,netdev=net0", "-boot", "order=n"]);
        }
    }
    push(&["-device", "virtio-rng-pci"]);
    if let Some(cfg) = &s.config {
        let cfg = opt("config", cfg)?;
        push(&["-fw_cfg", &format!("name={CONFIG_FW_CFG_KEY},file={cfg}")]);
    }
    match &s.console {
        Console::Terminal => push(&["-nographic", "-serial", "mon:stdio"]),
        Console::Log(log) => {
            let log = opt("console log", log)?;
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

/// What `basalt boot --pxe` was asked to do.
#[derive(Debug, Clone)]
pub struct PxeOptions {
    pub dir: PathBuf,
    pub boot: PxeBoot,
    pub config: Option<PathBuf>,
    pub ssh_port: Option<u16>,
    /// Extra host ports forwarded to the guest.
    pub forwards: Vec<Forward>,
    pub memory_mib: u32,
    pub cpus: u32,
    pub accel: AccelChoice,
    /// `None`: the terminal; `Some(None)`: `DIR/pxe.console.log`.
    pub console_log: Option<Option<PathBuf>>,
}

/// A diskless VM ready to start.
#[derive(Debug)]
pub struct PxeVm {
    pub spec: PxeSpec,
    pub accel_reason: String,
}

impl PxeVm {
    pub fn prepare(o: &PxeOptions, qemu: &Path) -> Result<PxeVm, QemuError> {
        if o.memory_mib < 1024 {
            return Err(QemuError::TooSmall {
                what: "--memory (MiB) for a diskless boot",
                min: 1024,
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
        let artifacts = PxeArtifacts::find(&o.dir)?;
        if let Some(cfg) = &o.config {
            std::fs::File::open(cfg).map_err(|e| QemuError::BadConfig {
                path: cfg.clone(),
                why: e.to_string(),
            })?;
        }
        let ssh_port = match o.ssh_port {
            Some(p) => check_port(p)?,
            None => free_port()?,
        };
        check_forwards(&o.forwards, ssh_port)?;
        let console = match &o.console_log {
            None => Console::Terminal,
            Some(p) => Console::Log(p.clone().unwrap_or_else(|| o.dir.join("pxe.console.log"))),
        };
        let (accel, accel_reason) = accel::choose(o.accel, qemu);
        Ok(PxeVm {
            spec: PxeSpec {
                artifacts,
                boot: o.boot.clone(),
                accel,
                memory_mib: o.memory_mib,
                cpus: o.cpus,
                config: o.config.clone(),
                ssh_port,
                forwards: o.forwards.clone(),
                console,
            },
            accel_reason,
        })
    }

    /// The QEMU process to start; it gets SIGTERM if we die.
    pub fn command(&self, qemu: &Path) -> Result<Command, QemuError> {
        let mut cmd = Command::new(qemu);
        cmd.args(pxe_args(&self.spec)?);
        die_with_parent(&mut cmd);
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "#!ipxe\n# x\nkernel b-vmlinuz initrd=b-initrd.img basalt.usr=initrd:/usr.img console=ttyS0\ninitrd b-initrd.img\nboot\n";

    #[test]
    fn script_table() {
        assert_eq!(
            parse_script(SCRIPT).unwrap(),
            (
                "b-vmlinuz".into(),
                "b-initrd.img".into(),
                "basalt.usr=initrd:/usr.img console=ttyS0".into()
            )
        );
        let cases = [
            ("kernel a\ninitrd b\n", "not an iPXE script"),
            ("#!ipxe\ninitrd b\n", "no kernel line"),
            ("#!ipxe\nkernel a\n", "no initrd line"),
            (
                "#!ipxe\nkernel a\ninitrd b\ninitrd c\n",
                "more than one initrd",
            ),
            ("#!ipxe\nkernel http://h/a\ninitrd b\n", "not a path or URL"),
            ("#!ipxe\nkernel a\ninitrd ../b\n", "not a path or URL"),
        ];
        for (text, want) in cases {
            let e = parse_script(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    fn spec(dir: &Path, boot: PxeBoot) -> PxeSpec {
        PxeSpec {
            artifacts: PxeArtifacts {
                dir: dir.to_path_buf(),
                script: "b.ipxe".into(),
                kernel: dir.join("b-vmlinuz"),
                initrd: dir.join("b-initrd.img"),
                append: "console=ttyS0 panic=10".into(),
            },
            boot,
            accel: Accel::Tcg,
            memory_mib: 3072,
            cpus: 2,
            config: Some("/c/x.ign".into()),
            ssh_port: 2222,
            forwards: vec![],
            console: Console::Log("/l/c.log".into()),
        }
    }

    #[test]
    fn command_lines() {
        let d = Path::new("/p");
        let direct = pxe_args(&spec(d, PxeBoot::Direct)).unwrap();
        let i = direct.iter().position(|a| a == "-append").unwrap();
        assert_eq!(direct[i + 1], "console=ttyS0 panic=10");
        let line = direct.join(" ");
        for want in [
            "-kernel /p/b-vmlinuz -initrd /p/b-initrd.img",
            "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci,netdev=net0,romfile= ",
            "-fw_cfg name=opt/org.basalt/config,file=/c/x.ign",
            "-m 3072 ",
        ] {
            assert!(line.contains(want), "{line} lacks {want}");
        }
        assert!(!line.contains("-drive"), "no disk: {line}");
        let net = pxe_args(&spec(Path::new("/p,q"), PxeBoot::Network))
            .unwrap()
            .join(" ");
        assert!(
            net.contains("-netdev user,id=net0,tftp=/p,,q,bootfile=b.ipxe,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci,netdev=net0 -boot order=n"),
            "{net}"
        );
        assert!(
            !net.contains("-kernel") && !net.contains("romfile="),
            "{net}"
        );
    }

    #[test]
    fn finds_artifacts() {
        let d = tempfile::tempdir().unwrap();
        let e = PxeArtifacts::find(d.path()).unwrap_err().to_string();
        assert!(e.contains("no *.ipxe script"), "{e}");
        std::fs::write(d.path().join("b.ipxe"), SCRIPT).unwrap();
        let e = PxeArtifacts::find(d.path()).unwrap_err().to_string();
        assert!(e.contains("b-vmlinuz"), "{e}");
        std::fs::write(d.path().join("b-vmlinuz"), "k").unwrap();
        std::fs::write(d.path().join("b-initrd.img"), "i").unwrap();
        let a = PxeArtifacts::find(d.path()).unwrap();
        assert_eq!(a.initrd, d.path().join("b-initrd.img"));
        std::fs::write(d.path().join("c.ipxe"), SCRIPT).unwrap();
        let e = PxeArtifacts::find(d.path()).unwrap_err().to_string();
        assert!(e.contains("several iPXE scripts"), "{e}");
    }
}
