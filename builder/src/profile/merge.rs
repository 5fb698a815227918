//! Reading an `extends:` chain and merging it into one [`Profile`].

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::locate::locate;
use super::schema::ProfileFile;
use super::size::parse_size;
use super::source::Location;
use super::{DiskSizes, Distribution, Profile, ProfileError};

/// How deep `extends:` may nest before we call it a loop.
const MAX_DEPTH: usize = 16;

/// One parsed file of the chain, with its text for error locations.
pub struct ChainFile {
    pub loc: Location,
    pub text: String,
    pub file: ProfileFile,
}

impl ChainFile {
    fn error(&self, path: &[&str], message: impl Into<String>) -> ProfileError {
        let at = locate(&self.text, path);
        ProfileError {
            file: self.loc.display(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            key: path.join("."),
            message: message.into(),
        }
    }
}

/// Parse `loc` and its ancestors; the result is leaf first.
pub fn read_chain(loc: &Location) -> Result<Vec<ChainFile>> {
    let mut chain: Vec<ChainFile> = Vec::new();
    let mut next = Some(loc.clone());
    while let Some(loc) = next.take() {
        if chain.iter().any(|c| c.loc == loc) || chain.len() >= MAX_DEPTH {
            let last = &chain[chain.len() - 1];
            return Err(last
                .error(
                    &["extends"],
                    format!("inheritance loop or chain deeper than {MAX_DEPTH}"),
                )
                .into());
        }
        let text = loc.read_to_string()?;
        let file: ProfileFile = parse(&loc, &text)?;
        next = file.extends.as_deref().map(|e| loc.join(e));
        chain.push(ChainFile { loc, text, file });
    }
    Ok(chain)
}

fn parse(loc: &Location, text: &str) -> Result<ProfileFile, ProfileError> {
    if text.trim().is_empty() {
        return Ok(ProfileFile::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        let (key, message) = match msg.split_once(": ") {
            Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
            _ => ("(document)".to_string(), msg),
        };
        ProfileError {
            file: loc.display(),
            line: e.location().map(|l| l.line()),
            column: e.location().map(|l| l.column()),
            key,
            message,
        }
    })
}

/// Merge a leaf-first chain into a validated profile.
pub fn merge(chain: &[ChainFile]) -> Result<Profile> {
    let mut name = None;
    let mut version = None;
    let (mut suite, mut components, mut arch, mut mirror, mut keyring) =
        (None, None, None, None, None);
    let mut packages: BTreeSet<String> = BTreeSet::new();
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    let (mut recommends, mut essential) = (false, true);
    let (mut path_excludes, mut path_keep) = (Vec::new(), Vec::new());
    let (mut modules, mut cmdline) = (None, Vec::new());
    let mut users: BTreeMap<String, super::User> = BTreeMap::new();
    let mut groups: BTreeMap<String, super::Group> = BTreeMap::new();
    let mut alternatives = BTreeMap::new();
    let (mut enable, mut disable): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let mut overlays = Vec::new();
    let mut os_release = BTreeMap::new();
    let mut variables = BTreeMap::new();
    let mut sizes: BTreeMap<&'static str, (u64, usize)> = BTreeMap::new();
    let mut seed = None;
    let mut signing_key = None;

    // Root ancestor first, so children override.
    for (idx, cf) in chain.iter().enumerate().rev() {
        let f = &cf.file;
        set(&mut name, &f.name);
        set(&mut version, &f.version);
        set(&mut suite, &f.distribution.suite);
        set(&mut components, &f.distribution.components);
        set(&mut arch, &f.distribution.architecture);
        set(&mut mirror, &f.distribution.mirror);
        if let Some(k) = &f.distribution.keyring {
            keyring = Some(match &cf.loc {
                Location::Disk(_) if !k.starts_with('/') => match cf.loc.join(k) {
                    Location::Disk(p) => p,
                    Location::Embedded(p) => p,
                },
                _ => k.into(),
            });
        }
        for p in &f.packages.exclude {
            packages.remove(p);
            excluded.insert(p.clone());
        }
        for (i, p) in f.packages.include.iter().enumerate() {
            if p.trim().is_empty() || p.contains(char::is_whitespace) && !p.contains('(') {
                return Err(cf
                    .error(
                        &["packages", "include"],
                        format!("entry {i} ({p:?}) is not a package name"),
                    )
                    .into());
            }
            excluded.remove(p);
            packages.insert(p.clone());
        }
        set(&mut recommends, &f.packages.recommends);
        set(&mut essential, &f.packages.essential);
        path_excludes.extend(f.paths.exclude.iter().cloned());
        path_keep.extend(f.paths.keep.iter().cloned());
        if let Some(m) = &f.kernel.modules {
            modules = Some(m.clone());
        }
        if let Some(c) = &f.kernel.cmdline {
            cmdline = c.clone();
        }
        for u in &f.users {
            users.insert(u.name.clone(), u.clone());
        }
        for g in &f.groups {
            groups.insert(g.name.clone(), g.clone());
        }
        for (k, v) in &f.alternatives {
            if !k.starts_with('/') || !v.starts_with('/') {
                return Err(cf
                    .error(
                        &["alternatives", k],
                        "link and target must be absolute paths",
                    )
                    .into());
            }
            alternatives.insert(k.clone(), v.clone());
        }
        for u in &f.services.disable {
            enable.retain(|e| e != u);
            disable.push(u.clone());
        }
        for u in &f.services.enable {
            disable.retain(|e| e != u);
            if !enable.contains(u) {
                enable.push(u.clone());
            }
        }
        for o in &f.overlays {
            overlays.push(cf.loc.join(o));
        }
        os_release.extend(f.os_release.clone());
        for (k, v) in &f.variables {
            let json = serde_json::to_value(v).map_err(|e| {
                cf.error(
                    &["variables", k],
                    format!("cannot be used as a template value: {e}"),
                )
            })?;
            variables.insert(k.clone(), json);
        }
        set(&mut seed, &f.disk.seed);
        if let Some(k) = &f.update.signing_key {
            signing_key = Some(match cf.loc.join(k) {
                Location::Disk(p) => p,
                Location::Embedded(_) => {
                    return Err(cf
                        .error(
                            &["update", "signing_key"],
                            "an embedded profile cannot name a key file",
                        )
                        .into());
                }
            });
        }
        let d = &f.disk;
        for (key, val) in [
            ("esp", &d.esp),
            ("bios_boot", &d.bios_boot),
            ("usr", &d.usr),
            ("oem", &d.oem),
            ("root", &d.root),
        ] {
            if let Some(s) = val {
                let bytes = parse_size(s).map_err(|e| cf.error(&["disk", key], e.to_string()))?;
                sizes.insert(key, (bytes, idx));
            }
        }
    }

    let leaf = &chain[0];
    let need = |v: Option<String>, key: &str| -> Result<String, ProfileError> {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| leaf.error(&[key], "is required (set it here or in a parent)"))
    };
    let name = need(name, "name")?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(leaf
            .error(&["name"], "may only hold letters, digits, '.', '_' and '-'")
            .into());
    }
    let version = need(version, "version")?;
    let arch = arch.unwrap_or_else(|| "amd64".into());
    if arch != "amd64" {
        return Err(leaf
            .error(
                &["distribution", "architecture"],
                format!("{arch:?} is not supported (only amd64)"),
            )
            .into());
    }
    if packages.is_empty() {
        return Err(leaf
            .error(&["packages", "include"], "no packages to install")
            .into());
    }

    // Ids must be unique: two users (or groups) on one id is a profile bug.
    let mut seen = BTreeMap::new();
    for u in users.values() {
        if let Some(other) = seen.insert(u.uid, &u.name) {
            return Err(leaf
                .error(
                    &["users"],
                    format!("users {other} and {} share uid {}", u.name, u.uid),
                )
                .into());
        }
    }
    let mut seen = BTreeMap::new();
    for g in groups.values() {
        if let Some(other) = seen.insert(g.gid, &g.name) {
            return Err(leaf
                .error(
                    &["groups"],
                    format!("groups {other} and {} share gid {}", g.name, g.gid),
                )
                .into());
        }
    }

    let size = |key: &'static str, default: u64, min: u64| -> Result<u64, ProfileError> {
        let (v, idx) = sizes.get(key).copied().unwrap_or((default, 0));
        if v < min || v % (1 << 20) != 0 {
            return Err(chain[idx].error(
                &["disk", key],
                format!(
                    "{} is impossible: it must be a whole number of MiB and at least {}",
                    super::size::human(v),
                    super::size::human(min)
                ),
            ));
        }
        Ok(v)
    };
    let disk = DiskSizes {
        seed: seed.unwrap_or_else(|| name.clone()),
        esp: size("esp", 1 << 30, 64 << 20)?,
        bios_boot: size("bios_boot", 2 << 20, 1 << 20)?,
        usr: size("usr", 2 << 30, 64 << 20)?,
        oem: size("oem", 128 << 20, 16 << 20)?,
        root: size("root", 1 << 30, 64 << 20)?,
    };

    Ok(Profile {
        files: chain.iter().map(|c| c.loc.clone()).collect(),
        name,
        version,
        distribution: Distribution {
            suite: suite.unwrap_or_else(|| "trixie".into()),
            components: components.unwrap_or_else(|| vec!["main".into()]),
            architecture: arch,
            mirror,
            keyring: keyring
                .unwrap_or_else(|| "/usr/share/keyrings/debian-archive-keyring.gpg".into()),
        },
        packages: packages.into_iter().collect(),
        excluded_packages: excluded.into_iter().collect(),
        recommends,
        essential,
        path_excludes,
        path_keep,
        kernel_modules: modules.filter(|m| m.iter().all(|p| p != "**")),
        kernel_cmdline: cmdline,
        users: users.into_values().collect(),
        groups: groups.into_values().collect(),
        alternatives,
        enable,
        disable,
        overlays,
        os_release,
        variables,
        disk,
        signing_key,
    })
}

fn set<T: Clone>(slot: &mut T, v: &Option<impl Clone + Into<T>>) {
    if let Some(v) = v {
        *slot = v.clone().into();
    }
}
