//! Basalt's initramfs `/init` (PID 1 until switch_root). The steps, in
//! order: mount /proc, /sys, /dev, /run; read the kernel command line;
//! load the initramfs's disk modules (the disk controllers probing in the
//! background, `loadorder.rs`); wait for the boot disk (GPT with USR-A,
//! USR-B, ROOT); set up dm-verity for the selected /usr slot; mount ROOT
//! at /sysroot and the verity device read-only at /sysroot/usr; seed /etc
//! from /usr/share/factory/etc; on first boot grow ROOT, load the config
//! sources' modules and provision;
//! switch_root into systemd. With `basalt.usr=initrd:...` the boot is
//! diskless (`diskless.rs`): /usr is an image carried in the initramfs,
//! ROOT a tmpfs. Any error is fatal: a clear console message,
//! then a reboot after the `panic=` delay. See README.md here.

pub mod cmdline;
pub mod devmapper;
pub mod dhcp;
pub mod disk;
pub mod diskless;
pub mod earlynic;
pub mod error;
pub mod etc;
pub mod fatal;
pub mod firstboot;
pub mod grow;
pub mod ifname;
pub mod label;
pub mod loadorder;
pub mod loopdev;
pub mod machineid;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod parload;
pub mod switchroot;
mod sys;
pub mod verity;

use std::path::Path;
use std::time::Duration;

use rustix::mount::MountFlags;

pub use cmdline::BootParams;
pub use error::{InitError, Result};
pub use firstboot::{FirstBootContext, Hook, Hooks};

/// Where the real root is assembled.
pub const SYSROOT: &str = "/sysroot";
/// Factory defaults for /etc inside the real root.
pub const FACTORY_ETC: &str = "usr/share/factory/etc";

/// What [`prepare`] leaves for switch_root.
pub struct Prepared {
    /// The boot parameters (the init to exec).
    pub params: BootParams,
    /// The kernel command line.
    pub cmdline: String,
    /// The NIC drivers being loaded since /usr was mounted.
    pub nics: earlynic::Loading,
}

/// Everything up to (not including) switch_root.
pub fn prepare(hooks: &mut Hooks, delay: &mut Duration) -> Result<Prepared> {
    mounts::mount_early()?;
    let line = std::fs::read_to_string("/proc/cmdline")
        .map_err(InitError::io("reading", "/proc/cmdline"))?;
    *delay = cmdline::panic_delay(&line);
    let params = BootParams::parse(&line)?;
    if params.usr_image.is_some() {
        diskless::load_extra_modules()?;
        loadorder::load_disk_modules()?;
        let sysroot = Path::new(SYSROOT);
        let disk = diskless::assemble(&params, sysroot)?;
        let nics = earlynic::Loading::start(sysroot);
        seed_etc(sysroot)?;
        let ctx = FirstBootContext {
            sysroot,
            disk: &disk,
            params: &params,
            cmdline: &line,
        };
        diskless::first_boot(hooks, &ctx)?;
        machine_id(sysroot, &line)?;
        return Ok(Prepared {
            params,
            cmdline: line,
            nics,
        });
    }
    fatal::info(format!("booting /usr slot {}", params.slot.letter()));

    loadorder::load_disk_modules()?;
    let disk = disk::wait_for_disk(&disk::Roots::default(), params.disk_timeout)?;
    fatal::info(format!(
        "boot disk {}: /usr slot on {}, ROOT on {}",
        disk.disk.display(),
        disk.usr(params.slot).dev.display(),
        disk.root.dev.display()
    ));

    let usr_dev = verity::activate(&disk, &params)?;
    let sysroot = Path::new(SYSROOT);
    let root_dev = disk.root.dev.display().to_string();
    mounts::mount_fs(&root_dev, sysroot, "ext4", MountFlags::empty(), "")?;
    mounts::mount_fs(
        &usr_dev.display().to_string(),
        &sysroot.join("usr"),
        "ext4",
        MountFlags::RDONLY,
        "",
    )?;

    let nics = earlynic::Loading::start(sysroot);
    seed_etc(sysroot)?;

    let ctx = FirstBootContext {
        sysroot,
        disk: &disk,
        params: &params,
        cmdline: &line,
    };
    firstboot::run(hooks, &ctx)?;
    machine_id(sysroot, &line)?;
    Ok(Prepared {
        params,
        cmdline: line,
        nics,
    })
}

/// Write /etc/machine-id if the real root has none (`machineid.rs`).
fn machine_id(sysroot: &Path, cmdline: &str) -> Result<()> {
    if let machineid::Outcome::Written(id) = machineid::ensure(sysroot, cmdline)? {
        fatal::info(format!("machine ID {id} written to /etc/machine-id"));
    }
    Ok(())
}

/// Copy what is missing in /etc from the factory defaults in /usr.
fn seed_etc(sysroot: &Path) -> Result<()> {
    let report = etc::populate(&sysroot.join(FACTORY_ETC), &sysroot.join("etc"))?;
    if !report.created.is_empty() {
        fatal::info(format!(
            "/etc: {} entries copied from the factory defaults",
            report.created.len()
        ));
    }
    for p in &report.skipped_special {
        fatal::warn(format!(
            "/etc: factory entry {} is a device or fifo; not copied",
            p.display()
        ));
    }
    Ok(())
}

/// Run /init. Never returns: it execs the real init or reboots.
pub fn run(hooks: Hooks) -> ! {
    if rustix::process::getpid() != rustix::process::Pid::INIT {
        eprintln!(
            "basalt-init: this is the initramfs /init and must run as PID 1; refusing to run"
        );
        std::process::exit(2);
    }
    std::panic::set_hook(Box::new(|info| {
        fatal::fatal(
            format!("internal error: {info}"),
            cmdline::DEFAULT_PANIC_DELAY,
        );
    }));
    let mut delay = cmdline::DEFAULT_PANIC_DELAY;
    let mut hooks = hooks;
    let Prepared {
        params,
        cmdline: line,
        nics,
    } = match prepare(&mut hooks, &mut delay) {
        Ok(p) => p,
        Err(e) => fatal::fatal(e.to_string(), delay),
    };
    // Joined here: /init is single-threaded again before the fork below.
    let nics = nics.finish();
    if !nics.is_empty() {
        fatal::info(format!("network drivers loaded: {}", nics.join(", ")));
    }
    // The naming (`ifname.rs`) runs `udevadm`, about 0.5 s under QEMU TCG:
    // a child process does it while systemd starts, seconds before the
    // real root's udev looks at the interfaces.
    let name_nics = move || {
        if nics.is_empty() {
            return;
        }
        if let Err(e) = sys::fork_detached(|| {
            ifname::name_present(&line);
        }) {
            fatal::warn(format!("naming interfaces: fork: {e}; udev will name them"));
        }
    };
    match switchroot::switch_root(Path::new(SYSROOT), &params.init, name_nics) {
        Ok(never) => match never {},
        Err(e) => fatal::fatal(e.to_string(), delay),
    }
}
