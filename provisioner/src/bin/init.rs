//! `basalt-init`: the initramfs /init. Built statically:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p basalt-provisioner --bin basalt-init --target x86_64-unknown-linux-gnu`.

use basalt_provisioner::firstboot::{self, ConfigInput};
use basalt_provisioner::init::firstboot::FirstBootContext;
use basalt_provisioner::init::{Hooks, fatal, grow, mounts, run};
use basalt_provisioner::sources;
use rustix::mount::MountFlags;

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
    let env = sources::Env {
        sysfs: "/sys".into(),
        cmdline: ctx.cmdline.to_string(),
        config_drive: None,
        nocloud: None,
        imds_base: None,
        oem: oem.clone(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let res = firstboot::provision(ctx.sysroot, ConfigInput::Discover(&env), now);
    if let Some(m) = &oem {
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
                "no machine config found (fw_cfg, kernel command line, OEM); booting with the image defaults",
            );
            Ok(())
        }
        Err(e) => Err(format!("machine config: {e:#}")),
    }
}
