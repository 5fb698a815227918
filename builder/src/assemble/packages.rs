//! Unpacking every package, in install order, into one tree.
//!
//! A later package's file replaces an earlier one's (recorded as a
//! conflict); directories keep the metadata of the first package that
//! shipped them; paths below symlinked directories land at the resolved
//! place (dpkg's behaviour). Maintainer scripts are never run: packages that
//! have a postinst are listed in the report.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use basalt_deb::{DebPackage, DirPolicy, UnpackOptions, unpack_data};
use basalt_tree::Tree;

use super::config::AssemblyConfig;
use super::report::{AssemblyReport, Conflict};

pub fn unpack_all(
    cfg: &AssemblyConfig,
    tree: &mut Tree,
    report: &mut AssemblyReport,
) -> Result<()> {
    let mut owner: HashMap<String, String> = HashMap::new();
    for (name, path) in &cfg.debs {
        let pkg = DebPackage::open(path).with_context(|| format!("reading package {name}"))?;
        let declared = pkg.name().unwrap_or_default();
        if declared != *name {
            bail!(
                "{} is package {declared:?}, but the install list calls it {name:?}",
                path.display()
            );
        }
        if pkg.has_script("postinst") {
            report.postinst_packages.push(name.clone());
        }
        let opts = UnpackOptions {
            package: name.clone(),
            dirs: DirPolicy::KeepExisting,
        };
        let rep = unpack_data(path, tree, cfg.store, &opts)
            .with_context(|| format!("unpacking package {name}"))?;
        for p in &rep.replaced {
            if let Some(prev) = owner.get(p)
                && prev != name
            {
                report.conflicts.push(Conflict {
                    path: p.clone(),
                    earlier: prev.clone(),
                    later: name.clone(),
                });
            }
        }
        for p in &rep.paths {
            if tree.get(p).is_some_and(|e| !e.is_dir()) {
                owner.insert(p.clone(), name.clone());
            }
        }
        if report
            .package_files
            .insert(name.clone(), rep.paths)
            .is_some()
        {
            bail!("package {name} is listed twice in the install list");
        }
    }
    Ok(())
}
