//! Units the profile enables or disables: a preset file
//! (/usr/lib/systemd/system-preset/10-basalt.preset) for `systemctl
//! preset-all`, and, because the first boot must already come up with them
//! enabled, the links `systemctl enable` would make, created now from each
//! unit's [Install] section (WantedBy=, RequiredBy=, UpheldBy=, Alias=,
//! Also=, DefaultInstance=).
//!
//! The links go under /usr/lib/systemd/system (`<target>.wants/<unit>`,
//! `<target>.requires/`, `<target>.upholds/`, and alias links), which
//! systemd reads like /etc/systemd/system but which stays on the read-only,
//! verified /usr; `systemctl disable` on the machine cannot remove them, a
//! mask in /etc can. A unit that the profile enables must exist in
//! /etc/systemd/system or /usr/lib/systemd/system of the tree.

use anyhow::{Context, Result, bail};
use basalt_deb::resolve;
use basalt_tree::{Content, Entry, Kind, Tree};

use super::config::Presets;

pub const PRESET_FILE: &str = "/usr/lib/systemd/system-preset/10-basalt.preset";
pub const UNIT_DIR: &str = "/usr/lib/systemd/system";
/// Where unit files are looked up, in systemd's order of precedence.
pub const UNIT_SEARCH: &[&str] = &["/etc/systemd/system", "/usr/lib/systemd/system"];

/// The [Install] section of a unit.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Install {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub upheld_by: Vec<String>,
    pub alias: Vec<String>,
    pub also: Vec<String>,
    pub default_instance: Option<String>,
}

impl Install {
    /// Whether enabling the unit would make no link at all (a static unit).
    pub fn is_empty(&self) -> bool {
        self.wanted_by.is_empty()
            && self.required_by.is_empty()
            && self.upheld_by.is_empty()
            && self.alias.is_empty()
            && self.also.is_empty()
    }
}

/// Parse the [Install] section (systemd.unit(5)): list settings accumulate
/// over lines, an empty assignment resets the list.
pub fn parse_install(text: &str) -> Install {
    let mut out = Install::default();
    let mut in_install = false;
    let mut logical = String::new();
    for raw in text.lines() {
        // Backslash-newline continues a line.
        if let Some(stripped) = raw.strip_suffix('\\') {
            logical.push_str(stripped);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let list = match k.trim() {
            "WantedBy" => &mut out.wanted_by,
            "RequiredBy" => &mut out.required_by,
            "UpheldBy" => &mut out.upheld_by,
            "Alias" => &mut out.alias,
            "Also" => &mut out.also,
            "DefaultInstance" => {
                let v = v.trim();
                out.default_instance = (!v.is_empty()).then(|| v.to_string());
                continue;
            }
            _ => continue,
        };
        if v.trim().is_empty() {
            list.clear();
        } else {
            list.extend(v.split_whitespace().map(str::to_string));
        }
    }
    out
}

/// Find the file of `unit` (for `foo@bar.service`, the template
/// `foo@.service`); returns (directory, file name, text).
fn find_unit(tree: &Tree, unit: &str) -> Result<Option<(String, String, String)>> {
    let file = match unit.split_once('@') {
        Some((prefix, rest)) if !rest.starts_with('.') => {
            let suffix = rest.rsplit_once('.').map(|(_, s)| s).unwrap_or("");
            format!("{prefix}@.{suffix}")
        }
        _ => unit.to_string(),
    };
    for dir in UNIT_SEARCH {
        let key = format!("{dir}/{file}");
        let Some(real) = resolve(tree, &key, true) else {
            bail!("unit {unit}: too many levels of symlinks at {key}")
        };
        if let Some(Entry {
            kind: Kind::File(c),
            ..
        }) = tree.get(&real)
        {
            let text = String::from_utf8(c.read_all().with_context(|| format!("reading {real}"))?)
                .with_context(|| format!("unit file {real} is not UTF-8"))?;
            return Ok(Some((dir.to_string(), file, text)));
        }
    }
    Ok(None)
}

/// Units whose [Install] Alias= names `unit` (for a helpful error).
fn aliased_by(tree: &Tree, unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    for dir in UNIT_SEARCH {
        for (k, e) in tree.descendants(dir) {
            if let Kind::File(c) = &e.kind
                && basalt_tree::parent(k) == Some(dir)
                && let Ok(bytes) = c.read_all()
                && parse_install(&String::from_utf8_lossy(&bytes))
                    .alias
                    .iter()
                    .any(|a| a == unit)
            {
                out.push(basalt_tree::file_name(k).to_string());
            }
        }
    }
    out
}

/// What [`apply`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Units enabled, the profile's first, then those the tree's preset
    /// files enable (`preset_policy.rs`), in that order.
    pub enabled: Vec<String>,
    /// The wants/requires/upholds/alias links made for them.
    pub links: Vec<String>,
    /// Preset lines systemd would skip, with file and line.
    pub warnings: Vec<String>,
}

/// Write the preset file, enable the profile's units, then every unit the
/// tree's preset files enable (what systemd would otherwise do at the first
/// boot, see `preset_policy.rs`).
pub fn apply(tree: &mut Tree, presets: &Presets, epoch: i64) -> Result<Applied> {
    let mut text = String::from("# Generated by basalt from the profile.\n");
    for u in &presets.enable {
        text.push_str(&format!("enable {u}\n"));
    }
    for u in &presets.disable {
        text.push_str(&format!("disable {u}\n"));
    }
    tree.insert_p(
        PRESET_FILE,
        Entry::file(0o644, Content::from_bytes(text.into_bytes())).at(epoch),
    )?;

    let mut out = Applied::default();
    enable(tree, &presets.enable, epoch, &mut out)?;
    let (policy, warnings) =
        super::preset_policy::units_to_enable(tree).context("reading the preset files")?;
    out.warnings = warnings;
    enable(tree, &policy, epoch, &mut out).context("enabling the units of the preset files")?;
    Ok(out)
}

/// Enable `units` (and their Also= units) by making the links of their
/// [Install] sections under /usr/lib/systemd/system; units already in
/// `out.enabled` are skipped.
fn enable(tree: &mut Tree, units: &[String], epoch: i64, out: &mut Applied) -> Result<()> {
    let Applied { enabled, links, .. } = out;
    let mut todo: Vec<(String, Option<String>)> =
        units.iter().rev().map(|u| (u.clone(), None)).collect();
    while let Some((unit, via)) = todo.pop() {
        if enabled.contains(&unit) {
            continue;
        }
        let Some((dir, file, body)) = find_unit(tree, &unit)? else {
            let via = via
                .map(|v| format!(" (listed in Also= of {v})"))
                .unwrap_or_default();
            let hint = match aliased_by(tree, &unit).as_slice() {
                [] => String::new(),
                names => format!(
                    "; it is an Alias= of {}: enable that instead",
                    names.join(", ")
                ),
            };
            bail!(
                "cannot enable unit {unit}{via}: no unit file in {} of the tree{hint}",
                UNIT_SEARCH.join(" or ")
            );
        };
        let install = parse_install(&body);
        let is_template = unit.contains("@.");
        let instance_name = if is_template {
            match &install.default_instance {
                Some(i) => unit.replacen("@.", &format!("@{i}."), 1),
                None => bail!(
                    "cannot enable template unit {unit}: it has no DefaultInstance=; name an instance (e.g. {})",
                    unit.replacen("@.", "@x.", 1)
                ),
            }
        } else {
            unit.clone()
        };
        let target = if dir == UNIT_DIR {
            format!("../{file}")
        } else {
            format!("{dir}/{file}")
        };
        let mut add = |tree: &mut Tree, path: String, to: String| -> Result<()> {
            tree.mkdir_p(basalt_tree::parent(&path).unwrap_or("/"), epoch)?;
            tree.insert(&path, Entry::symlink(to).at(epoch))
                .with_context(|| format!("creating {path}"))?;
            links.push(path);
            Ok(())
        };
        for (list, suffix) in [
            (&install.wanted_by, "wants"),
            (&install.required_by, "requires"),
            (&install.upheld_by, "upholds"),
        ] {
            for t in list {
                add(
                    tree,
                    format!("{UNIT_DIR}/{t}.{suffix}/{instance_name}"),
                    target.clone(),
                )?;
            }
        }
        for a in &install.alias {
            let own = format!("{UNIT_DIR}/{a}");
            if a != &instance_name {
                add(
                    tree,
                    own,
                    if dir == UNIT_DIR {
                        file.clone()
                    } else {
                        format!("{dir}/{file}")
                    },
                )?;
            }
        }
        if install.is_empty() {
            bail!(
                "cannot enable unit {unit}: its [Install] section has no WantedBy=, RequiredBy=, UpheldBy=, Alias= or Also="
            );
        }
        enabled.push(unit.clone());
        for a in install.also.iter().rev() {
            todo.push((a.clone(), Some(unit.clone())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_install_table() {
        let cases = [
            (
                "[Unit]\nWantedBy=no.target\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
                vec!["multi-user.target"],
                vec!["sshd.service"],
            ),
            (
                "[Install]\nWantedBy=a.target b.target\nWantedBy=\nWantedBy=c.target\n",
                vec!["c.target"],
                vec![],
            ),
            (
                "[Install]\nWantedBy=a.target \\\n  b.target\n# WantedBy=x\n",
                vec!["a.target", "b.target"],
                vec![],
            ),
        ];
        for (text, wanted, alias) in cases {
            let i = parse_install(text);
            assert_eq!(i.wanted_by, wanted, "{text}");
            assert_eq!(i.alias, alias, "{text}");
        }
        assert_eq!(
            parse_install("[Install]\nDefaultInstance=tty1\n")
                .default_instance
                .as_deref(),
            Some("tty1")
        );
    }
}
