//! `basalt build`: profile in, artifacts and manifest.json out.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{BuildArgs, Format};
use crate::log;
use crate::manifest::{Manifest, ManifestPackage};
use crate::output;
use crate::profile::{Overrides, Profile};
use crate::stages::{fetch, resolve, tree};

pub fn run(args: &BuildArgs) -> Result<()> {
    let p = &args.profile;
    let profile = Profile::load(
        p.profile.as_deref(),
        &Overrides {
            version: args.image_version.clone(),
            mirror: p.mirror.clone(),
        },
    )?;
    log::step(&format!(
        "building {} {} ({})",
        profile.name,
        profile.version,
        profile.files[0].display()
    ));
    let cache = resolve::open_cache()?;
    let set = resolve::package_set(&profile, p, &cache)?;
    let debs = fetch::fetch(&profile, &set, &cache, p.offline)?;
    let epoch = tree::source_date_epoch(set.lock.release_date)?;

    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let work = WorkDir::new(&args.output)?;
    let store = basalt_tree::ContentStore::new(work.path.join("store"))
        .context("creating the content store")?;
    let signer = crate::stages::signing::signer(
        args.signing_key
            .clone()
            .or_else(|| profile.signing_key.clone()),
    )?;
    let built = tree::build_tree(
        &profile,
        debs,
        &store,
        &work.path.join("overlays"),
        epoch,
        &signer.public_pem,
        Some(&cache.root().join("depmod")),
    )?;

    let disk_formats: Vec<&str> = (args.format.iter())
        .filter(|f| !matches!(f, Format::Tar | Format::Oci))
        .map(|f| f.name())
        .collect();
    if built.kernels.is_empty() && !disk_formats.is_empty() {
        anyhow::bail!(
            "profile {} has no kernel (no /usr/lib/modules/<version>/kernel in its packages), \
             so it cannot make a bootable disk ({}); build it with --format oci or --format tar",
            profile.files[0].display(),
            disk_formats.join(", ")
        );
    }
    let mut manifest = Manifest {
        name: profile.name.clone(),
        version: profile.version.clone(),
        profile: serde_json::to_value(&profile).context("serialising the profile")?,
        source_date_epoch: epoch,
        packages: set
            .lock
            .packages
            .iter()
            .map(|p| ManifestPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                sha256: p.sha256.clone(),
            })
            .collect(),
        kernels: built.kernels.clone(),
        files: built.tree.len(),
        size: built.tree.content_bytes(),
        artifacts: Vec::new(),
        partitions: Vec::new(),
        usr: Default::default(),
    };
    let mut formats = args.format.clone();
    // Raw first: the other disk formats convert the raw image it writes.
    formats.sort_by_key(|f| (*f != Format::Raw, f.name()));
    formats.dedup();
    for f in formats {
        match f {
            Format::Tar => output::tar::write(&profile, &built.tree, &args.output, &mut manifest)?,
            Format::Oci => output::oci::write(
                &profile,
                &built.tree,
                &args.output,
                &work.path,
                epoch,
                &mut manifest,
            )?,
            Format::Pxe => output::pxe::write(
                &profile,
                &built,
                &args.output,
                &work.path,
                epoch,
                &mut manifest,
            )?,
            Format::Raw
            | Format::RawXz
            | Format::Qcow2
            | Format::Vmdk
            | Format::Vhd
            | Format::Gce => output::disk::write(
                &profile,
                &built,
                f,
                &args.output,
                &work.path,
                epoch,
                &signer,
                &mut manifest,
            )?,
        }
    }
    manifest.write(&args.output)?;
    for a in &manifest.artifacts {
        log::step(&format!(
            "wrote {} ({})",
            args.output.join(&a.file).display(),
            crate::profile::size::human(a.size)
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        for a in &manifest.artifacts {
            println!("{}", args.output.join(&a.file).display());
        }
    }
    Ok(())
}

/// Scratch space inside OUTDIR (same filesystem as the artifacts, so
/// renames are atomic), removed when the build ends, successful or not.
struct WorkDir {
    path: std::path::PathBuf,
}

impl WorkDir {
    fn new(out: &Path) -> Result<WorkDir> {
        let path = out.join(format!(".basalt-work-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
