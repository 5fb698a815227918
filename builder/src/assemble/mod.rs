//! The assembly step: Debian packages in, an immutable-OS tree out.
//!
//! [`assemble`] runs these steps, in this order, on an in-memory
//! [`Tree`] (nothing is written to the host, nothing runs as root, no
//! maintainer script runs):
//!
//! 1. [`packages`]: unpack every .deb in install order (later files win).
//! 2. [`merged_usr`]: /bin, /sbin, /lib, /lib64... become symlinks into /usr.
//! 3. [`ca_certificates`]: the CA bundle, when ca-certificates is installed
//!    (the only trigger needed; see there for ld.so.cache).
//! 4. [`excludes`]: path excludes with keep exceptions, then kernel modules.
//! 5. [`users`]: passwd/group/shadow/gshadow and sysusers.d.
//! 6. [`os_release`]: /usr/lib/os-release from the profile.
//! 7. [`overlays`]: overlay files (templates rendered), overriding package
//!    files and the files of steps 3–6.
//! 8. [`alternatives`]: update-alternatives links from the profile.
//! 9. [`presets`]: the preset file and the enablement links (after the
//!    overlays, so overlay units can be enabled).
//! 10. [`factory_etc`]: /etc becomes /usr/share/factory/etc plus tmpfiles.d
//!     `C` lines; /var is dropped.
//! 11. Every mtime is clamped to SOURCE_DATE_EPOCH; files made by these steps
//!     carry it. The tree is validated (hard links name regular files).
//!
//! The same inputs always give the same tree: every step iterates in sorted
//! order and nothing reads the clock or the host's users.

pub mod alternatives;
pub mod ca_certificates;
pub mod config;
pub mod excludes;
pub mod factory_etc;
pub mod merged_usr;
pub mod os_release;
pub mod overlays;
pub mod packages;
pub mod preset_policy;
pub mod presets;
pub mod relocate;
pub mod report;
pub mod users;

#[cfg(test)]
mod tests;

use anyhow::{Context, Result};
use basalt_tree::Tree;

pub use config::{AssemblyConfig, Presets, SysGroup, SysUser};
pub use report::AssemblyReport;

/// Assemble the tree described by `cfg`.
pub fn assemble(cfg: &AssemblyConfig) -> Result<(Tree, AssemblyReport)> {
    let epoch = cfg.source_date_epoch;
    let mut tree = Tree::new();
    tree.get_mut("/").context("tree without a root")?.mtime = epoch;
    let mut report = AssemblyReport::default();

    packages::unpack_all(cfg, &mut tree, &mut report)?;
    merged_usr::apply(&mut tree, epoch, &mut report)
        .context("merging /bin, /sbin and /lib into /usr")?;
    if cfg.debs.iter().any(|(n, _)| n == "ca-certificates") {
        report.ca_certificates = ca_certificates::apply(&mut tree, cfg.store, epoch)
            .context("generating the CA certificate bundle")?;
    }
    report.excluded = excludes::apply_excludes(&mut tree, &cfg.excludes, &cfg.keep)
        .context("applying path excludes")?;
    if let Some(patterns) = &cfg.kernel_modules {
        let (n, unmatched) =
            excludes::filter_modules(&mut tree, patterns).context("filtering kernel modules")?;
        report.modules_removed = n;
        report.module_patterns_unmatched = unmatched;
    }
    users::apply(&mut tree, &cfg.users, &cfg.groups, epoch)
        .context("writing system users and groups")?;
    os_release::apply(&mut tree, &cfg.os_release, epoch).context("writing os-release")?;
    report.overlay_files = overlays::apply(
        &mut tree,
        &cfg.overlays,
        &cfg.template_vars,
        cfg.store,
        epoch,
    )
    .context("applying overlays")?;
    alternatives::apply(&mut tree, &cfg.alternatives, epoch)
        .context("creating alternatives links")?;
    let applied = presets::apply(&mut tree, &cfg.presets, epoch).context("enabling units")?;
    report.enabled_units = applied.enabled;
    report.unit_links = applied.links;
    report.preset_warnings = applied.warnings;
    report.factory_etc =
        factory_etc::relocate_etc(&mut tree, epoch).context("moving /etc to factory defaults")?;
    report.var_dropped = factory_etc::drop_var(&mut tree);

    tree.clamp_mtimes(epoch);
    tree.validate().context("checking the assembled tree")?;
    report.entries = tree.len();
    report.content_bytes = tree.content_bytes();
    Ok((tree, report))
}
