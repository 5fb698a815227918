//! The baselines of the boot benchmark: the debootstrapped root of the same
//! package set (Debian trixie; its kernel postinst built an initramfs-tools
//! initrd) made bootable the usual way, on an ext4 disk, booted on the same
//! QEMU machine as ours (q35, `-cpu max`, 2 vCPUs, 2 GiB, TCG), two ways:
//!
//! - [`Baseline::Direct`]: the root as a whole-disk ext4 (`mke2fs -d`, no
//!   partition table), booted by QEMU's direct kernel boot (`-kernel`,
//!   `-initrd`: QEMU hands both over by fw_cfg DMA, no boot loader). This
//!   favours the baseline: no real disk boots that way.
//! - [`Baseline::Grub`]: the root on an MBR-partitioned disk with Debian's
//!   own GRUB (i386-pc) installed on it, booted the conventional way:
//!   SeaBIOS, GRUB's menu (1 s timeout, as long as our GRUB waits), then
//!   GRUB reads the kernel and the initrd from the ext4 partition through
//!   the firmware's disk calls (see `grubdisk.rs`).
//!
//! Both log in as root with the benchmark's key; systemd-networkd brings the
//! network up by DHCP, as on ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::grubdisk;
use crate::vm::{CLOSED_GUEST_PORT, Times, Vm, free_port};

/// QEMU options both baselines share (`basalt boot`'s TCG defaults, which
/// ours runs with).
const MACHINE: &[&str] = &[
    "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2",
];

/// The kernel's first console line (watched for the log, not a figure).
const KERNEL_FIRST_LINE: &str = "] Linux version ";

/// Kernel arguments after `root=`, the same for both baselines.
const CMDLINE: &str = "rw console=ttyS0,115200n8 panic=10";

/// How the conventional disk is booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Whole-disk ext4, QEMU's `-kernel`/`-initrd`/`-append`.
    Direct,
    /// MBR disk, Debian's GRUB in the MBR and the post-MBR gap.
    Grub,
}

impl Baseline {
    /// Both, in the order each run boots them (after ours).
    pub const ALL: [Baseline; 2] = [Baseline::Direct, Baseline::Grub];

    /// `WORK/boot-{tag}.img`, `WORK/boot-{tag}-RUN.{console,analyze}`.
    fn tag(self) -> &'static str {
        match self {
            Baseline::Direct => "conventional",
            Baseline::Grub => "conventional-grub",
        }
    }

    /// For the log.
    fn what(self) -> &'static str {
        match self {
            Baseline::Direct => "the debootstrap + initramfs-tools disk (direct kernel boot)",
            Baseline::Grub => "the debootstrap + initramfs-tools disk through its own GRUB",
        }
    }

    /// What the benchmark rows are "vs".
    pub fn row_suffix(self) -> &'static str {
        match self {
            Baseline::Direct => "debootstrap+initramfs-tools",
            Baseline::Grub => "debootstrap+initramfs-tools booted by its GRUB",
        }
    }

    /// What the baseline is, for the rows' notes.
    pub fn describe(self) -> &'static str {
        match self {
            Baseline::Direct => {
                "Debian trixie by debootstrap + apt with the same package set and kernel \
                 (initramfs-tools initrd), on a whole-disk ext4 (mke2fs -d), booted by QEMU's \
                 direct kernel boot (-kernel/-initrd handed over by fw_cfg DMA, no firmware \
                 disk reads, no boot loader), which favours it: no real disk boots that way"
            }
            Baseline::Grub => {
                "the same Debian trixie root (initramfs-tools initrd, same kernel) on an MBR \
                 disk with one ext4 partition and Debian's own GRUB (i386-pc: boot.img in the \
                 MBR, core.img in the post-MBR gap), booted the conventional way: SeaBIOS, \
                 GRUB menu with a 1 s timeout (ours waits 1 s in its GRUB too), GRUB reading \
                 the kernel and initrd from the disk through the BIOS"
            }
        }
    }

    /// The root device the kernel is told.
    fn root_dev(self) -> &'static str {
        match self {
            Baseline::Direct => "/dev/vda",
            Baseline::Grub => "/dev/vda1",
        }
    }
}

/// Makes the debootstrapped root reachable the way ours is: the benchmark's
/// key for root, and systemd-networkd with DHCP on the NIC. Idempotent.
fn prepare_root(root: &Path, public: &str) -> Result<()> {
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
    Ok(())
}

/// The newest `/boot/vmlinuz-*` and `/boot/initrd.img-*` of the root.
fn kernel_files(root: &Path) -> Result<(PathBuf, PathBuf)> {
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
    Ok((pick("vmlinuz-")?, pick("initrd.img-")?))
}

/// The root as a whole-disk ext4 image at `disk`.
fn direct_disk(root: &Path, disk: &Path) -> Result<()> {
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(root)
        .arg(disk)
        .arg("6G")
        .status()
        .context("running mke2fs")?;
    if !st.success() {
        bail!("mke2fs -d failed");
    }
    Ok(())
}

/// Builds the disk for `b` from `root`, boots it and times it to an ssh
/// login as root; the disk is a scratch file, deleted afterwards.
pub fn boot(
    b: Baseline,
    root: &Path,
    work: &Path,
    key: &Path,
    public: &str,
    run_no: usize,
) -> Result<Times> {
    prepare_root(root, public)?;
    let (kernel, initrd) = kernel_files(root)?;
    let cmdline = format!("root={} {CMDLINE}", b.root_dev());
    let disk = work.join(format!("boot-{}.img", b.tag()));
    let _ = std::fs::remove_file(&disk);
    let t = (|| {
        match b {
            Baseline::Direct => direct_disk(root, &disk)?,
            Baseline::Grub => grubdisk::build(root, &kernel, &initrd, &cmdline, &disk)
                .context("building the GRUB disk")?,
        }
        let logs = work.join(format!("boot-{}-{run_no}", b.tag()));
        run(b, &kernel, &initrd, &cmdline, &disk, &logs, key)
    })();
    let _ = std::fs::remove_file(&disk);
    t
}

fn run(
    b: Baseline,
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    disk: &Path,
    logs: &Path,
    key: &Path,
) -> Result<Times> {
    let (port, closed) = (free_port()?, free_port()?);
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(MACHINE)
        .args(["-display", "none", "-serial", "stdio", "-no-reboot"]);
    if b == Baseline::Direct {
        cmd.arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", cmdline]);
    }
    // Without -kernel, SeaBIOS boots the virtio disk: boot.img, core.img,
    // then GRUB's normal mode with grub.cfg from the ext4 partition.
    cmd.arg("-drive")
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
    eprintln!("bench: booting {} under TCG", b.what());
    let mut vm = Vm::spawn(
        cmd,
        logs.with_extension("console"),
        Some(KERNEL_FIRST_LINE),
        closed,
        port,
    )?;
    let t = vm.wait(None, key, port, "root")?;
    let kernel_at = t
        .marker
        .map_or("never seen".to_string(), |s| format!("{s:.1} s"));
    eprintln!(
        "bench:   kernel's first console line after {kernel_at}, network up after {:.1} s, sshd accepting after {:.1} s, ssh login after {:.1} s",
        t.reachable, t.accepting, t.login
    );
    crate::vm::record_analysis(
        key,
        port,
        "root",
        &logs.with_extension("analyze"),
    );
    Ok(t)
}
