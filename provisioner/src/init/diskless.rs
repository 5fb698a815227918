//! Diskless (network) boots: `basalt.usr=initrd:/usr.img` on the kernel
//! command line says /usr is an image the initramfs carries (the PXE
//! initrd of `basalt build --format pxe`), laid out like a /usr slot:
//! ext4 from byte 0, the verity superblock at `basalt.usr_hash_offset`,
//! then the hash tree. /init then:
//!
//! 1. loads the extra modules the PXE initrd lists in
//!    [`EXTRA_LOAD_ORDER`] (the loop driver), before the disk list of
//!    every boot (`loadorder.rs`);
//! 2. attaches the image read-only to a loop device (`loopdev.rs`) and
//!    sets up dm-verity on it with the root hash from the command line
//!    (the same `verity.rs`/`devmapper.rs` code as disk boots);
//! 3. mounts ROOT: a tmpfs, or with `root=/dev/NAME` that ext4 device;
//!    copies the root skeleton (merged-/usr links, mount points) the
//!    initrd carries in [`ROOT_SKELETON`] where entries are missing;
//! 4. mounts the verity device read-only on /sysroot/usr;
//! 5. (the caller) seeds /etc from the factory defaults;
//! 6. first boot: on a tmpfs ROOT every boot is a first boot. When the
//!    config comes from `basalt.config.url=http(s)://...`, the network is
//!    brought up for the fetch (`net.rs`: NIC driver from the verified
//!    /usr, DHCP) and released before switch_root. ROOT is never grown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::mount::MountFlags;

use super::cmdline::{BootParams, split_words};
use super::disk::{BootDisk, Part};
use super::error::{InitError, Result};
use super::firstboot::{self, FirstBootContext, Hooks};
use super::{etc, fatal, loadorder, loopdev, mounts, net, verity};

/// Extra module list of the PXE initrd (same format as
/// `/lib/modules/load-order`): the loop driver, when it is a module.
pub const EXTRA_LOAD_ORDER: &str = "/lib/modules/load-order.diskless";
/// The ROOT skeleton the PXE initrd carries (what a disk's ROOT starts with).
pub const ROOT_SKELETON: &str = "/basalt/root";
/// Mount options of a tmpfs ROOT.
const TMPFS_ROOT_OPTIONS: &str = "mode=0755";
/// `Part::dev` of a tmpfs ROOT in the [`BootDisk`] the hooks get.
pub const TMPFS_ROOT: &str = "tmpfs";

/// Where ROOT comes from on this diskless boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKind {
    Tmpfs,
    Device(PathBuf),
}

impl RootKind {
    pub fn of(p: &BootParams) -> RootKind {
        match &p.root {
            Some(d) => RootKind::Device(d.clone()),
            None => RootKind::Tmpfs,
        }
    }
}

/// Whether the first-boot config is fetched over the network: a
/// `basalt.config.url=` with an http or https URL.
pub fn needs_network(cmdline: &str) -> bool {
    split_words(cmdline).iter().any(|w| {
        w.strip_prefix("basalt.config.url=")
            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
    })
}

/// Step 1: load the modules of [`EXTRA_LOAD_ORDER`]; absent means the
/// kernel has them built in. Called before the disk list
/// (`loadorder::load_disk_modules`): a synchronous load after it would
/// wait for the disk controllers' background probes. The list is the
/// closure of its own modules, so it needs nothing from the disk list.
pub fn load_extra_modules() -> Result<()> {
    loadorder::load_all_or_fail(EXTRA_LOAD_ORDER).map(|_| ())
}

/// Wait (bounded by `basalt.disk_timeout`) for the `root=` device node.
fn wait_for_device(dev: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while !dev.exists() {
        if start.elapsed() >= timeout {
            return Err(InitError::Disk {
                disk: dev.display().to_string(),
                why: format!(
                    "root= names this device, but it did not appear within {} s",
                    timeout.as_secs()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Steps 2–4 (after [`load_extra_modules`]): /usr verified from the
/// carried image, ROOT mounted at `sysroot` with the skeleton. Returns the
/// [`BootDisk`] the first-boot hooks get: /usr on the loop device, ROOT
/// the tmpfs or the device, no OEM.
pub fn assemble(p: &BootParams, sysroot: &Path) -> Result<BootDisk> {
    let image = p
        .usr_image
        .as_deref()
        .ok_or_else(|| InitError::Cmdline("internal: not a diskless boot".into()))?;
    if !image.is_file() {
        return Err(InitError::Io {
            what: "diskless boot (basalt.usr=initrd:...): no /usr image at",
            path: image.to_path_buf(),
            source: std::io::Error::other(
                "the initrd that carries it was not loaded (the boot loader must load <name>-initrd.img of `basalt build --format pxe`)",
            ),
        });
    }
    let usr = loopdev::attach_read_only(image)?;
    fatal::info(format!(
        "diskless: /usr image {} ({} bytes) on {}",
        image.display(),
        usr.size,
        usr.dev.display()
    ));
    let root = match RootKind::of(p) {
        RootKind::Tmpfs => {
            mounts::mount_fs(
                TMPFS_ROOT,
                sysroot,
                "tmpfs",
                MountFlags::empty(),
                TMPFS_ROOT_OPTIONS,
            )?;
            fatal::info("diskless: ROOT is a tmpfs");
            Part {
                number: 0,
                dev: PathBuf::from(TMPFS_ROOT),
                devno: String::new(),
                size: 0,
            }
        }
        RootKind::Device(dev) => {
            wait_for_device(&dev, p.disk_timeout)?;
            mounts::mount_fs(
                &dev.display().to_string(),
                sysroot,
                "ext4",
                MountFlags::empty(),
                "",
            )?;
            fatal::info(format!("diskless: ROOT is {} (root=)", dev.display()));
            Part {
                number: 0,
                dev,
                devno: String::new(),
                size: 0,
            }
        }
    };
    let skeleton = Path::new(ROOT_SKELETON);
    if !skeleton.is_dir() {
        return Err(InitError::Io {
            what: "diskless boot: no ROOT skeleton at",
            path: skeleton.to_path_buf(),
            source: std::io::Error::other("the PXE initrd is incomplete"),
        });
    }
    etc::populate(skeleton, sysroot)?;
    let disk = BootDisk {
        disk: usr.dev.clone(),
        usr_a: usr.clone(),
        usr_b: usr,
        root,
        oem: None,
    };
    // Slot A of this synthetic disk is the loop device (BootParams::slot
    // is always A on diskless boots).
    let usr_dev = verity::activate(&disk, p)?;
    mounts::mount_fs(
        &usr_dev.display().to_string(),
        &sysroot.join("usr"),
        "ext4",
        MountFlags::RDONLY,
        "",
    )?;
    fatal::info(format!(
        "diskless: /usr verified by dm-verity on {} (root hash {})",
        usr_dev.display(),
        p.usr_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    Ok(disk)
}

/// Step 6: first boot (always, on a tmpfs ROOT), with a network for an
/// http(s) config URL. ROOT is never grown: a tmpfs has no partition, and
/// a `root=` device is used as it is.
pub fn first_boot(hooks: &mut Hooks, ctx: &FirstBootContext<'_>) -> Result<()> {
    let lease = if needs_network(ctx.cmdline) {
        Some(net::bring_up(ctx.sysroot).map_err(|e| {
            InitError::FirstBoot(format!(
                "network for basalt.config.url= (diskless boot): {e}"
            ))
        })?)
    } else {
        None
    };
    let diskless_hooks = Hooks {
        grow_root: Some(Box::new(|_| {
            fatal::info("diskless: ROOT is not grown");
            Ok(())
        })),
        provision: hooks.provision.take(),
    };
    let res = firstboot::run(&diskless_hooks, ctx);
    if let Some(l) = lease {
        l.release();
    }
    res.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_only_for_http_urls() {
        let cases = [
            ("basalt.config.url=http://10.0.2.2:8080/c.ign", true),
            ("x \"basalt.config.url=https://h/c\"", true),
            ("basalt.config.url=data:,hello", false),
            ("console=ttyS0", false),
            ("basalt.config.urlx=http://a", false),
        ];
        for (line, want) in cases {
            assert_eq!(needs_network(line), want, "{line}");
        }
    }

    #[test]
    fn root_kind_from_params() {
        let h = "ab".repeat(32);
        let line = format!(
            "basalt.usr=initrd:/usr.img basalt.usrhash={h} basalt.usr_hash_offset=8192 basalt.usr_data_blocks=2"
        );
        let p = BootParams::parse(&line).unwrap();
        assert_eq!(RootKind::of(&p), RootKind::Tmpfs);
        let p = BootParams::parse(&format!("{line} root=/dev/vdb")).unwrap();
        assert_eq!(RootKind::of(&p), RootKind::Device("/dev/vdb".into()));
    }
}
