//! First boot: detection by a stamp file on ROOT, and the boundary to the
//! two jobs /init does only then: growing ROOT to fill the disk and running
//! the provisioner against /sysroot (after loading the config sources'
//! modules, `loadorder::CONFIG_LOAD_ORDER`). Both are hooks ([`Hooks`]) so
//! the provisioner crate's library can be wired in by `src/bin/init.rs`
//! without /init depending on how provisioning works. An unwired hook is
//! reported on the console and the stamp is NOT written, so the next boot
//! tries again; it is never treated as success.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::cmdline::{BootParams, FirstBootMode};
use super::disk::BootDisk;
use super::error::{InitError, Result};
use super::{fatal, loadorder};

/// Written (relative to the real root) after provisioning succeeded.
pub const STAMP: &str = "var/lib/basalt/provisioned";
/// Written when provisioning failed, with the error text.
pub const FAILURE: &str = "var/lib/basalt/provision-failed";

/// What the hooks get to work with.
#[derive(Debug)]
pub struct FirstBootContext<'a> {
    /// The real root, mounted (ROOT read-write, /usr read-only).
    pub sysroot: &'a Path,
    pub disk: &'a BootDisk,
    pub params: &'a BootParams,
    /// The whole kernel command line (config sources may be named on it).
    pub cmdline: &'a str,
}

/// A first-boot job: `Err` carries the message shown on the console.
pub type Hook = Box<dyn Fn(&FirstBootContext<'_>) -> std::result::Result<(), String>>;

/// The first-boot jobs. `None` means "not wired into this /init".
#[derive(Default)]
pub struct Hooks {
    /// Grow the ROOT partition to the end of the disk and its ext4 to the
    /// partition (runs before `provision`).
    pub grow_root: Option<Hook>,
    /// Apply the machine's configuration to `sysroot`.
    pub provision: Option<Hook>,
}

/// Whether this boot is the first one.
pub fn is_first_boot(sysroot: &Path, mode: FirstBootMode) -> bool {
    match mode {
        FirstBootMode::Force => true,
        FirstBootMode::Skip => false,
        FirstBootMode::Auto => fs::symlink_metadata(sysroot.join(STAMP)).is_err(),
    }
}

/// Write `text` to `sysroot/rel` via a temporary file, synced.
fn write_atomic(sysroot: &Path, rel: &str, text: &str) -> std::io::Result<()> {
    let path = sysroot.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What the first-boot step concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotFirstBoot,
    Provisioned,
    /// No provisioner is wired in: boot continues unprovisioned, no stamp.
    NotWired,
}

/// Run the first-boot jobs if this is the first boot. A failing job is an
/// error: the failure is recorded on ROOT and the boot must stop.
pub fn run(hooks: &Hooks, ctx: &FirstBootContext<'_>) -> Result<Outcome> {
    if !is_first_boot(ctx.sysroot, ctx.params.first_boot) {
        return Ok(Outcome::NotFirstBoot);
    }
    fatal::info("first boot");
    match &hooks.grow_root {
        Some(grow) => grow(ctx).map_err(|e| InitError::FirstBoot(format!("growing ROOT: {e}")))?,
        None => fatal::warn(
            "growing ROOT to fill the disk is not wired into this /init yet; ROOT keeps its size",
        ),
    }
    let Some(provision) = &hooks.provision else {
        fatal::warn(format!(
            "provisioning is not wired into this /init yet; the system boots unconfigured and {STAMP} is not written"
        ));
        return Ok(Outcome::NotWired);
    };
    // The config sources' filesystems and fw_cfg need their modules; only
    // the first boot reads them. Loading them here also waits for the disk
    // controllers' background probes (see loadorder.rs), so a config
    // drive behind one of them is there when `provision` looks.
    loadorder::load_config_source_modules()?;
    if let Err(msg) = provision(ctx) {
        let record = format!("{msg}\n");
        if let Err(e) = write_atomic(ctx.sysroot, FAILURE, &record) {
            fatal::warn(format!("could not record the failure in {FAILURE}: {e}"));
        }
        return Err(InitError::FirstBoot(format!("configuration failed: {msg}")));
    }
    let _ = fs::remove_file(ctx.sysroot.join(FAILURE));
    write_atomic(ctx.sysroot, STAMP, "provisioned by basalt-init\n")
        .map_err(|e| InitError::FirstBoot(format!("writing {STAMP}: {e}")))?;
    Ok(Outcome::Provisioned)
}

/// The stamp path under a sysroot (for tools and tests).
pub fn stamp_path(sysroot: &Path) -> PathBuf {
    sysroot.join(STAMP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::cmdline::BootParams;
    use crate::init::disk::{BootDisk, Part};
    use std::cell::Cell;
    use std::rc::Rc;

    fn part(n: u32) -> Part {
        Part {
            number: n,
            dev: PathBuf::from(format!("/dev/vda{n}")),
            devno: format!("254:{n}"),
            size: 1 << 20,
        }
    }

    fn setup(tag: &str, extra: &str) -> (PathBuf, BootDisk, BootParams) {
        let root =
            std::env::temp_dir().join(format!("basalt-init-fb-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let disk = BootDisk {
            disk: "/dev/vda".into(),
            usr_a: part(3),
            usr_b: part(4),
            root: part(9),
            oem: None,
        };
        let h = "ab".repeat(32);
        let p = BootParams::parse(&format!(
            "basalt.slot=a basalt.usrhash={h} basalt.usr_hash_offset=8192 basalt.usr_data_blocks=2 {extra}"
        ))
        .unwrap();
        (root, disk, p)
    }

    #[test]
    fn provisions_once_and_stamps() {
        let (root, disk, p) = setup("ok", "");
        let calls = Rc::new(Cell::new(0));
        let c2 = calls.clone();
        let hooks = Hooks {
            grow_root: None,
            provision: Some(Box::new(move |ctx| {
                c2.set(c2.get() + 1);
                fs::write(ctx.sysroot.join("configured"), "yes").map_err(|e| e.to_string())
            })),
        };
        let ctx = FirstBootContext {
            sysroot: &root,
            disk: &disk,
            params: &p,
            cmdline: "",
        };
        assert_eq!(run(&hooks, &ctx).unwrap(), Outcome::Provisioned);
        assert!(stamp_path(&root).exists());
        assert_eq!(run(&hooks, &ctx).unwrap(), Outcome::NotFirstBoot);
        assert_eq!(calls.get(), 1);
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn failure_is_recorded_and_not_stamped() {
        let (root, disk, p) = setup("fail", "");
        let hooks = Hooks {
            grow_root: None,
            provision: Some(Box::new(
                |_| Err("ignition: unknown key \"stroage\"".into()),
            )),
        };
        let ctx = FirstBootContext {
            sysroot: &root,
            disk: &disk,
            params: &p,
            cmdline: "",
        };
        let err = run(&hooks, &ctx).unwrap_err().to_string();
        assert!(
            err.contains("configuration failed: ignition: unknown key"),
            "{err}"
        );
        assert!(!stamp_path(&root).exists());
        assert!(
            fs::read_to_string(root.join(FAILURE))
                .unwrap()
                .contains("stroage")
        );
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn unwired_and_overrides() {
        let (root, disk, p) = setup("unwired", "");
        let ctx = FirstBootContext {
            sysroot: &root,
            disk: &disk,
            params: &p,
            cmdline: "",
        };
        assert_eq!(run(&Hooks::default(), &ctx).unwrap(), Outcome::NotWired);
        assert!(
            !stamp_path(&root).exists(),
            "an unwired provisioner must not look like success"
        );
        let (root2, disk2, skip) = setup("skip", "basalt.first_boot=0");
        let ctx = FirstBootContext {
            sysroot: &root2,
            disk: &disk2,
            params: &skip,
            cmdline: "",
        };
        assert_eq!(run(&Hooks::default(), &ctx).unwrap(), Outcome::NotFirstBoot);
        fs::create_dir_all(root.join("var/lib/basalt")).unwrap();
        fs::write(stamp_path(&root), "").unwrap();
        assert!(is_first_boot(&root, FirstBootMode::Force));
        assert!(!is_first_boot(&root, FirstBootMode::Auto));
        fs::remove_dir_all(&root).ok();
        fs::remove_dir_all(&root2).ok();
    }
}
