//! `--format tar`: the whole tree as a tar archive, owners, modes and
//! xattrs preserved.

use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use basalt_tree::Tree;

use crate::atomic::TempFile;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;

pub fn write(profile: &Profile, tree: &Tree, out: &Path, manifest: &mut Manifest) -> Result<()> {
    let dest = out.join(format!("{}.tar", profile.name));
    crate::log::step(&format!("writing {}", dest.display()));
    let (tmp, f) = TempFile::create(&dest)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    basalt_deb::write_tar(tree, &mut w).context("writing the tar archive")?;
    let f = w.into_inner().context("flushing the tar archive")?;
    f.sync_all().context("syncing the tar archive")?;
    tmp.commit()?;
    manifest.artifacts.push(Artifact::of(&dest, "tar")?);
    Ok(())
}
