//! `basalt boot`: run an image under QEMU with the serial console on the
//! terminal (or in a log file and on stdout when there is no terminal).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::datasource::{self, Datasource};
use crate::qemu::{
    AccelChoice, BootOptions, ConsoleChoice, Firmware, Forward, Network, PXE_DEFAULT_MEMORY_MIB,
    PxeBoot, PxeOptions, PxeVm, QEMU, SHARE, Vm,
};

#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// Disk image to boot (raw or qcow2).
    #[arg(default_value = "out/basalt-qemu.img")]
    pub image: PathBuf,
    /// Firmware: OVMF (UEFI) or SeaBIOS (BIOS).
    #[arg(long, value_enum, default_value = "uefi")]
    pub firmware: Firmware,
    /// First-boot config (Ignition JSON, #cloud-config or a script), passed
    /// through fw_cfg, or through the --datasource.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Deliver --config the way a cloud does: an EC2 metadata service
    /// (IMDSv2, v1 fallback) at 169.254.169.254, an OpenStack config drive
    /// (ISO labelled config-2) or a NoCloud seed (ISO labelled cidata).
    #[arg(long, value_enum, requires = "config")]
    pub datasource: Option<Datasource>,
    /// Internal: relay stdin/stdout to this address (what QEMU runs for
    /// each guest connection to the metadata service).
    #[arg(long = "relay-to", hide = true)]
    pub relay_to: Option<String>,
    /// Host port on 127.0.0.1 forwarded to the guest's sshd (default: a free one).
    #[arg(long = "ssh-port")]
    pub ssh_port: Option<u16>,
    /// Also forward 127.0.0.1:HOST to the guest's TCP port GUEST (repeatable),
    /// e.g. `--forward 2379:2379` for etcd.
    #[arg(long = "forward", value_name = "HOST:GUEST")]
    pub forwards: Vec<Forward>,
    /// Guest memory in MiB (default 2048; 3072 with --pxe).
    #[arg(long)]
    pub memory: Option<u32>,
    /// Boot the artifacts of `basalt build --format pxe` in DIR with no
    /// disk: a direct kernel boot (SeaBIOS), --config through fw_cfg.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["datasource", "snapshot"])]
    pub pxe: Option<PathBuf>,
    /// With --pxe: a real network boot instead, through QEMU's TFTP server
    /// and the NIC's iPXE ROM (package ipxe-qemu), which runs the script.
    #[arg(long = "pxe-tftp", requires = "pxe")]
    pub pxe_tftp: bool,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Leave the image untouched (writes go to a temporary overlay).
    #[arg(long)]
    pub snapshot: bool,
    /// Accelerator: probe KVM and fall back to TCG, or force one.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,
    /// Console log file when stdin/stdout are not a terminal
    /// (default: next to the image, `<name>.console.log`).
    #[arg(long = "console-log")]
    pub console_log: Option<PathBuf>,
}

pub fn run(args: &BootArgs) -> anyhow::Result<()> {
    if let Some(to) = &args.relay_to {
        return datasource::relay(to);
    }
    if let Some(dir) = &args.pxe {
        return run_pxe(args, dir);
    }
    let attached = match (args.datasource, &args.config) {
        (Some(kind), Some(cfg)) => {
            let user_data =
                std::fs::read(cfg).with_context(|| format!("reading {}", cfg.display()))?;
            let me = std::env::current_exe().context("locating the basalt program")?;
            Some(
                datasource::attach(kind, &user_data, &me)
                    .with_context(|| format!("preparing the {kind:?} datasource"))?,
            )
        }
        (Some(_), None) => bail!("--datasource needs --config FILE (the user-data to serve)"),
        (None, _) => None,
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let console = if terminal && args.console_log.is_none() {
        ConsoleChoice::Terminal
    } else {
        ConsoleChoice::Log(args.console_log.clone())
    };
    let opts = BootOptions {
        image: args.image.clone(),
        firmware: args.firmware,
        // With a datasource the config travels through it, not fw_cfg.
        config: if attached.is_some() {
            None
        } else {
            args.config.clone()
        },
        extra_drives: attached
            .as_ref()
            .map(|a| a.drives.clone())
            .unwrap_or_default(),
        network: match attached.as_ref().and_then(|a| a.guestfwd.clone()) {
            Some((guest, command)) => Network::Metadata { guest, command },
            None => Network::Default,
        },
        smbios: attached
            .as_ref()
            .map(|a| a.smbios.clone())
            .unwrap_or_default(),
        ssh_port: args.ssh_port,
        forwards: args.forwards.clone(),
        memory_mib: args.memory.unwrap_or(2048),
        cpus: args.cpus,
        snapshot: args.snapshot,
        accel: args.accel,
        console,
    };
    let qemu = Path::new(QEMU);
    let vm = Vm::prepare(&opts, qemu, Path::new(SHARE)).context("preparing the VM")?;
    // Our notes go to stderr: stdout carries the guest console.
    eprintln!(
        "basalt boot: {} ({}, {})",
        args.image.display(),
        args.firmware.name(),
        if args.snapshot {
            "snapshot"
        } else {
            "writable"
        }
    );
    eprintln!(
        "basalt boot: accelerator {} ({})",
        vm.spec.accel.name(),
        vm.accel_reason
    );
    match &vm.spec.console {
        crate::qemu::Console::Terminal => {
            eprintln!("basalt boot: serial console on this terminal; Ctrl-A X quits")
        }
        crate::qemu::Console::Log(p) => eprintln!("basalt boot: console log {}", p.display()),
    }
    for f in &vm.spec.forwards {
        eprintln!(
            "basalt boot: 127.0.0.1:{} forwarded to the guest's port {}",
            f.host, f.guest
        );
    }
    eprintln!(
        "basalt boot: ssh forwarded from 127.0.0.1:{}",
        vm.spec.ssh_port
    );
    if let (Some(kind), Some(a)) = (args.datasource, &attached) {
        match &a.imds {
            Some(s) => eprintln!(
                "basalt boot: {kind:?} datasource: metadata service on {} (guest: http://{}/latest/user-data)",
                s.addr,
                datasource::IMDS_ADDR
            ),
            None => eprintln!(
                "basalt boot: {kind:?} datasource: {}",
                a.drives
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    eprintln!("basalt boot: log in with: {}", vm.ssh_command());
    let status = vm.run(qemu).context("running QEMU")?;
    if !status.success() {
        bail!("{QEMU} exited with {status}");
    }
    Ok(())
}

/// `basalt boot --pxe DIR`: the artifacts of `--format pxe`, no disk.
fn run_pxe(args: &BootArgs, dir: &Path) -> anyhow::Result<()> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let opts = PxeOptions {
        dir: dir.to_path_buf(),
        boot: if args.pxe_tftp {
            PxeBoot::Network
        } else {
            PxeBoot::Direct
        },
        config: args.config.clone(),
        ssh_port: args.ssh_port,
        forwards: args.forwards.clone(),
        memory_mib: args.memory.unwrap_or(PXE_DEFAULT_MEMORY_MIB),
        cpus: args.cpus,
        accel: args.accel,
        console_log: if terminal && args.console_log.is_none() {
            None
        } else {
            Some(args.console_log.clone())
        },
    };
    let qemu = Path::new(QEMU);
    let vm = PxeVm::prepare(&opts, qemu).context("preparing the diskless VM")?;
    let a = &vm.spec.artifacts;
    eprintln!(
        "basalt boot: diskless, {} ({})",
        a.dir.join(&a.script).display(),
        if args.pxe_tftp {
            "network boot: QEMU TFTP + iPXE ROM"
        } else {
            "direct kernel boot"
        }
    );
    eprintln!(
        "basalt boot: accelerator {} ({})",
        vm.spec.accel.name(),
        vm.accel_reason
    );
    if let crate::qemu::Console::Log(p) = &vm.spec.console {
        eprintln!("basalt boot: console log {}", p.display());
    }
    for f in &vm.spec.forwards {
        eprintln!(
            "basalt boot: 127.0.0.1:{} forwarded to the guest's port {}",
            f.host, f.guest
        );
    }
    eprintln!(
        "basalt boot: ssh forwarded from 127.0.0.1:{}",
        vm.spec.ssh_port
    );
    let status = vm
        .command(qemu)?
        .status()
        .with_context(|| format!("starting {QEMU}"))?;
    if !status.success() {
        bail!("{QEMU} exited with {status}");
    }
    Ok(())
}
