//! `basalt profile show`: the merged profile, as the build sees it.

use anyhow::Result;

use crate::cli::ProfileArgs;
use crate::profile::{Overrides, Profile};

pub fn show(p: &ProfileArgs, image_version: Option<String>) -> Result<()> {
    let profile = Profile::load(
        p.profile.as_deref(),
        &Overrides {
            version: image_version,
            mirror: p.mirror.clone(),
        },
    )?;
    println!("{}", serde_json::to_string_pretty(&profile)?);
    Ok(())
}
