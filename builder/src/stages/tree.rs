//! Stage 3: the fetched packages assembled into the image's tree, with the
//! kernel's module indexes regenerated, udev's hwdb.bin compiled, the
//! sysusers.d accounts created, the dynamic linker's cache written and the
//! journal's message catalog compiled.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use basalt_tree::{ContentStore, Tree};

use super::timings;
use crate::assemble::{self, AssemblyConfig, Presets, SysGroup, SysUser};
use crate::log;
use crate::profile::Profile;

pub struct Assembled {
    pub tree: Tree,
    /// Kernel versions found under /usr/lib/modules.
    pub kernels: Vec<String>,
}

/// Assemble `debs` per the profile. `scratch` receives embedded overlays.
pub fn build_tree(
    profile: &Profile,
    debs: Vec<(String, PathBuf)>,
    store: &ContentStore,
    scratch: &Path,
    epoch: i64,
    public_key_pem: &str,
    depmod_cache: Option<&Path>,
) -> Result<Assembled> {
    let overlays = profile
        .overlays
        .iter()
        .map(|o| o.overlay_dir(scratch))
        .collect::<Result<Vec<_>>>()
        .context("preparing overlays")?;
    let cfg = AssemblyConfig {
        debs,
        excludes: profile.path_excludes.clone(),
        keep: profile.path_keep.clone(),
        kernel_modules: profile.kernel_modules.clone(),
        users: profile
            .users
            .iter()
            .map(|u| SysUser {
                name: u.name.clone(),
                uid: u.uid,
                gid: u.gid,
                gecos: u.gecos.clone(),
                home: u.home.clone(),
                shell: u.shell.clone(),
            })
            .collect(),
        groups: profile
            .groups
            .iter()
            .map(|g| SysGroup {
                name: g.name.clone(),
                gid: g.gid,
                members: g.members.clone(),
            })
            .collect(),
        presets: Presets {
            enable: profile.enable.clone(),
            disable: profile.disable.clone(),
        },
        alternatives: profile
            .alternatives
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        overlays,
        template_vars: profile.template_context(),
        os_release: profile.os_release.clone(),
        source_date_epoch: epoch,
        store,
    };
    log::step(&format!(
        "assembling the tree from {} packages",
        cfg.debs.len()
    ));
    let (mut tree, report) = timings::stage("unpack", || assemble::assemble(&cfg))?;
    let kernels = kernel_versions(&tree);
    timings::stage("depmod", || -> Result<()> {
        for kver in &kernels {
            let r = super::depmod_cache::depmod(&mut tree, kver, depmod_cache)
                .with_context(|| format!("indexing kernel modules of {kver}"))?;
            log::detail(&format!("depmod {kver}: {r:?}"));
        }
        Ok(())
    })?;
    // The booted kernel's (the ESP gets the first one: output/split.rs).
    if let Some(kver) = kernels.first() {
        timings::stage("static-nodes", || -> Result<()> {
            match super::static_nodes::write(&mut tree, kver, epoch)
                .context("listing the kernel's static device nodes")?
            {
                super::static_nodes::Outcome::Skipped(why) => {
                    log::step(&format!("static device nodes not listed: {why}"))
                }
                r => log::detail(&format!("static nodes: {r:?}")),
            }
            Ok(())
        })?;
    }
    // The depmod cache is <cache>/depmod; compiled hwdb.bin files sit beside
    // it in <cache>/hwdb.
    let hwdb_cache = depmod_cache.and_then(Path::parent).map(|c| c.join("hwdb"));
    timings::stage("hwdb", || -> Result<()> {
        match super::hwdb::compile(&mut tree, store, epoch, hwdb_cache.as_deref())
            .context("compiling udev's hardware database")?
        {
            super::hwdb::Outcome::Skipped(why) => {
                log::step(&format!("hwdb.bin not compiled: {why}"))
            }
            r => log::detail(&format!("hwdb: {r:?}")),
        }
        Ok(())
    })?;
    timings::stage("sysusers", || -> Result<()> {
        match super::sysusers::apply(&mut tree, epoch)
            .context("creating the sysusers.d accounts")?
        {
            super::sysusers::Outcome::Skipped(why) => {
                log::step(&format!("sysusers.d not applied: {why}"))
            }
            r => log::detail(&format!("sysusers: {r:?}")),
        }
        Ok(())
    })?;
    timings::stage("ldcache", || -> Result<()> {
        match super::ldcache::write(&mut tree, store, epoch)
            .context("writing the dynamic linker's cache")?
        {
            super::ldcache::Outcome::Skipped(why) => {
                log::step(&format!("ld.so.cache not written: {why}"))
            }
            r => log::detail(&format!("ldcache: {r:?}")),
        }
        Ok(())
    })?;
    timings::stage("catalog", || -> Result<()> {
        match super::catalog::compile(&mut tree, epoch)
            .context("compiling the journal's message catalog")?
        {
            super::catalog::Outcome::Skipped(why) => {
                log::step(&format!("journal catalog not compiled: {why}"))
            }
            r => log::detail(&format!("catalog: {r:?}")),
        }
        Ok(())
    })?;
    add_machine_files(&mut tree, public_key_pem, epoch)?;
    tree.clamp_mtimes(epoch);
    timings::report_since_first("resolve+verify+unpack");
    for w in &report.preset_warnings {
        log::warn(&format!("preset file: {w}"));
    }
    log::detail(&format!(
        "enabled {} units ({} links), the profile's and the preset files'",
        report.enabled_units.len(),
        report.unit_links.len()
    ));
    log::detail(&format!(
        "unpacked {} packages: {} files replaced by a later package, {} postinst scripts not run",
        report.package_files.len(),
        report.conflicts.len(),
        report.postinst_packages.len()
    ));
    Ok(Assembled { tree, kernels })
}

/// Basalt's own programs and the update public key, in /usr.
fn add_machine_files(tree: &mut Tree, public_key_pem: &str, epoch: i64) -> Result<()> {
    use crate::embedded;
    use basalt_tree::{Content, Entry};
    for (path, bytes) in [
        ("/usr/bin/basalt-provision", embedded::PROVISION),
        ("/usr/bin/basalt-update", embedded::UPDATE),
    ] {
        tree.insert_p(
            path,
            Entry::file(0o755, Content::from_bytes(bytes.to_vec())).at(epoch),
        )?;
    }
    tree.insert_p(
        "/usr/share/basalt/update.pub",
        Entry::file(
            0o644,
            Content::from_bytes(public_key_pem.as_bytes().to_vec()),
        )
        .at(epoch),
    )?;
    Ok(())
}

/// The kernel versions that have a modules directory and a kernel image.
pub fn kernel_versions(tree: &Tree) -> Vec<String> {
    let idx = tree.children_index();
    let Some(mods) = idx.get("/usr/lib/modules") else {
        return Vec::new();
    };
    mods.iter()
        .filter(|k| tree.contains(&format!("/usr/lib/modules/{k}/kernel")))
        .map(|k| k.to_string())
        .collect()
}

/// SOURCE_DATE_EPOCH from the environment, or `fallback`.
pub fn source_date_epoch(fallback: i64) -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => bail!("SOURCE_DATE_EPOCH={v:?} is not a non-negative number of seconds"),
        },
        Err(_) => Ok(fallback),
    }
}
