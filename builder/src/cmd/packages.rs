//! `basalt packages`: the resolved set and why each package is in it.

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::PackagesArgs;
use crate::profile::{Overrides, Profile};
use crate::stages::resolve;

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    version: String,
    size: u64,
    reasons: Vec<String>,
}

pub fn run(args: &PackagesArgs) -> Result<()> {
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
    if let Some(name) = &args.why {
        if res.get(name).is_none() {
            bail!(
                "{name} is not in the resolved set of {} packages",
                res.packages.len()
            );
        }
        for line in res.explain(name) {
            println!("{line}");
        }
        return Ok(());
    }
    let rows: Vec<Row> = res
        .packages
        .iter()
        .map(|r| Row {
            name: &r.package.name,
            version: r.package.version.to_string(),
            size: r.package.size,
            reasons: r.reasons.iter().map(|x| x.to_string()).collect(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|r| r.version.len()).max().unwrap_or(0);
    for r in &rows {
        println!(
            "{:width$}  {:vwidth$}  {}",
            r.name,
            r.version,
            r.reasons.join("; ")
        );
    }
    let total: u64 = rows.iter().map(|r| r.size).sum();
    crate::log::step(&format!(
        "{} packages, {} to download",
        rows.len(),
        crate::profile::size::human(total)
    ));
    Ok(())
}
