//! `basalt lock`: resolve and write `<profile>.lock`.

use anyhow::Result;

use crate::cli::LockArgs;
use crate::lock::default_lock_path;
use crate::profile::{Overrides, Profile};
use crate::stages::resolve;

pub fn run(args: &LockArgs) -> Result<()> {
    let p = &args.profile;
    let profile = Profile::load(
        p.profile.as_deref(),
        &Overrides {
            version: None,
            mirror: p.mirror.clone(),
        },
    )?;
    let cache = resolve::open_cache()?;
    let repo = resolve::open_repo(&profile, p, &cache)?;
    let index = resolve::load_index(&profile, &repo)?;
    let res = resolve::resolve(&profile, &index)?;
    let lock = resolve::lock_from(&profile, &repo, &res)?;
    let path = p
        .lock
        .clone()
        .unwrap_or_else(|| default_lock_path(&profile));
    lock.write(&path)?;
    println!("{}", path.display());
    crate::log::step(&format!(
        "locked {} packages in {}",
        lock.packages.len(),
        path.display()
    ));
    Ok(())
}
