//! `basalt-init`: the initramfs /init. Built statically:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p basalt-provisioner --bin basalt-init --target x86_64-unknown-linux-gnu`.

use basalt_provisioner::firstboot::{self, ConfigInput};
use basalt_provisioner::init::disk::Roots;
use basalt_provisioner::init::firstboot::FirstBootContext;
use basalt_provisioner::init::{Hooks, fatal, grow, label, mounts, net, run};
use basalt_provisioner::sources;
use rustix::mount::MountFlags;
use std::path::{Path, PathBuf};

fn main() {
    let hooks = Hooks {
        // A ROOT that cannot grow still boots (loudly): the system is correct,
        // only smaller than the disk.
        grow_root: Some(Box::new(|ctx| {
            match grow::grow_root(ctx.disk, ctx.sysroot) {
                Ok(grow::Grown::AlreadyFull { bytes }) => {
                    fatal::info(format!("ROOT already fills the disk ({bytes} bytes)"))
                }
                Ok(grow::Grown::Grew {
                    from_bytes,
                    to_bytes,
                    fs_blocks,
                }) => fatal::info(format!(
                    "ROOT grown from {from_bytes} to {to_bytes} bytes (ext4 now {fs_blocks} blocks)"
                )),
                Err(e) => fatal::warn(format!(
                    "could not grow ROOT: {e}; continuing with its current size"
                )),
            }
            Ok(())
        })),
        // The machine config: local sources are read here, in the
        // initramfs (fw_cfg, kernel command line, OEM partition); an error
        // stops the first boot (/init records it and reboots).
        provision: Some(Box::new(provision)),
    };
    run(hooks)
}

/// Where /init mounts OEM (read-only) while it looks for a config there.
const OEM_MOUNT: &str = "/run/basalt/oem";
/// Labelled datasource filesystems: (label, mount point).
const CONFIG_DRIVE: (&str, &str) = ("config-2", "/run/basalt/config-2");
const NOCLOUD: (&str, &str) = ("cidata", "/run/basalt/cidata");

/// Mount a labelled datasource filesystem read-only, if one is attached.
fn mount_labelled((label, mnt): (&str, &str)) -> Option<PathBuf> {
    let (dev, fs) = label::find(&Roots::default(), label)?;
    let target = Path::new(mnt);
    match mounts::mount_fs(
        &dev.to_string_lossy(),
        target,
        fs.mount_name(),
        MountFlags::RDONLY,
        "",
    ) {
        Ok(()) => {
            fatal::info(format!(
                "datasource {label}: {} ({}) mounted on {mnt}",
                dev.display(),
                fs.mount_name()
            ));
            Some(target.to_path_buf())
        }
        Err(e) => {
            fatal::warn(format!("datasource {label} not searched: {e}"));
            None
        }
    }
}

/// SMBIOS strings the kernel exports.
const DMI_ID: &str = "/sys/class/dmi/id";

/// The platform the firmware names, when it is one with its own datasource
/// (EC2 sets the SMBIOS system vendor to "Amazon EC2").
fn dmi_platform(dmi: &Path) -> Option<String> {
    let vendor = std::fs::read_to_string(dmi.join("sys_vendor")).ok()?;
    (vendor.trim() == "Amazon EC2").then(|| "ec2".to_string())
}

fn provision(ctx: &FirstBootContext<'_>) -> Result<(), String> {
    let oem = ctx.disk.oem.as_ref().and_then(|p| {
        let dev = p.dev.to_string_lossy().into_owned();
        let target = std::path::Path::new(OEM_MOUNT);
        match mounts::mount_fs(&dev, target, "ext4", MountFlags::RDONLY, "") {
            Ok(()) => Some(target.to_path_buf()),
            Err(e) => {
                fatal::warn(format!("OEM partition not searched for a config: {e}"));
                None
            }
        }
    });
    let config_drive = mount_labelled(CONFIG_DRIVE);
    let nocloud = mount_labelled(NOCLOUD);
    // EC2: user-data is only on the metadata service, so bring up a
    // network for the duration of the search (net.rs).
    let platform = ctx
        .params
        .platform
        .clone()
        .or_else(|| dmi_platform(Path::new(DMI_ID)));
    let mut cmdline = ctx.cmdline.to_string();
    if ctx.params.platform.is_none() {
        if let Some(p) = &platform {
            fatal::info(format!("platform {p} (from the SMBIOS system vendor)"));
            cmdline.push_str(&format!(" {}={p}", sources::PLATFORM_KEY));
        }
    }
    let lease = match platform.as_deref() {
        Some("ec2" | "aws") => Some(
            net::bring_up(ctx.sysroot)
                .map_err(|e| format!("network for the EC2 metadata service: {e}"))?,
        ),
        _ => None,
    };
    let env = sources::Env {
        sysfs: "/sys".into(),
        cmdline,
        config_drive: config_drive.clone(),
        nocloud: nocloud.clone(),
        imds_base: None,
        oem: oem.clone(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let res = firstboot::provision(ctx.sysroot, ConfigInput::Discover(&env), now);
    if let Some(l) = lease {
        l.release();
    }
    for m in [&oem, &config_drive, &nocloud].into_iter().flatten() {
        let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::empty());
    }
    match res {
        Ok(Some(run)) => {
            for w in &run.warnings {
                fatal::warn(w);
            }
            fatal::info(format!("provisioned from {}", run.source));
            Ok(())
        }
        Ok(None) => {
            fatal::info(
                "no machine config found (kernel command line, fw_cfg, config drive, NoCloud, EC2 metadata, OEM); booting with the image defaults",
            );
            Ok(())
        }
        Err(e) => Err(format!("machine config: {e:#}")),
    }
}
