//! systemd units: files, drop-ins, masks (links to /dev/null) and
//! enablement without systemctl: a preset file (so `systemctl preset`
//! semantics hold) plus the `.wants`/`.requires` symlinks preset would create.

use super::rootfs::{FsError, Root};
use crate::check;
use crate::plan::{UnitKind, UnitPlan};

pub const SYSTEM_DIR: &str = "/etc/systemd/system";
pub const NETWORK_DIR: &str = "/etc/systemd/network";
pub const PRESET_FILE: &str = "/etc/systemd/system-preset/20-basalt-provision.preset";
/// Where installed unit files are looked up for their [Install] section.
const SEARCH: &[&str] = &[
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

fn dir(u: &UnitPlan) -> &'static str {
    match u.kind {
        UnitKind::Systemd => SYSTEM_DIR,
        UnitKind::Networkd => NETWORK_DIR,
    }
}

/// `foo@bar.service` → `foo@.service`.
fn template(name: &str) -> Option<String> {
    let (pre, rest) = name.split_once('@')?;
    let dot = rest.rfind('.')?;
    (dot > 0).then(|| format!("{pre}@{}", &rest[dot..]))
}

/// Write every unit; returns warnings (e.g. enabled units with no [Install]).
pub fn write(root: &mut Root, units: &[UnitPlan]) -> Result<Vec<String>, FsError> {
    let mut warnings = Vec::new();
    let mut preset = String::new();
    for u in units {
        let d = dir(u);
        root.mkdir_p(d, 0o755, 0, 0)?;
        let path = format!("{d}/{}", u.name);
        if u.mask {
            root.symlink(&path, "/dev/null", 0, 0)?;
        } else if let Some(c) = &u.contents {
            root.write_file(&path, c.as_bytes(), 0o644, 0, 0)?;
        }
        if !u.dropins.is_empty() {
            let dd = format!("{path}.d");
            root.mkdir_p(&dd, 0o755, 0, 0)?;
            for di in &u.dropins {
                root.write_file(
                    &format!("{dd}/{}", di.name),
                    di.contents.as_bytes(),
                    0o644,
                    0,
                    0,
                )?;
            }
        }
        let Some(enable) = u.enabled else { continue };
        if u.mask {
            continue;
        }
        preset.push_str(&format!(
            "{} {}\n",
            if enable { "enable" } else { "disable" },
            u.name
        ));
        // Find the unit file and its [Install] section.
        let mut found: Option<(String, String)> =
            u.contents.as_ref().map(|c| (path.clone(), c.clone()));
        if found.is_none() {
            let mut names = vec![u.name.clone()];
            names.extend(template(&u.name));
            'search: for n in &names {
                for s in SEARCH {
                    let p = format!("{s}/{n}");
                    if let Some(b) = root.read(&p)? {
                        found = Some((p, String::from_utf8_lossy(&b).into_owned()));
                        break 'search;
                    }
                }
            }
        }
        let Some((unit_path, contents)) = found else {
            if enable {
                warnings.push(format!("unit {} is enabled but no unit file was found; only the preset entry was written", u.name));
            }
            continue;
        };
        let targets = check::install_targets(&contents);
        if targets.is_empty() && enable {
            warnings.push(format!("unit {} has no WantedBy=/RequiredBy= in [Install]; only the preset entry was written", u.name));
        }
        for (t, kind) in targets {
            let wd = format!("{SYSTEM_DIR}/{t}{kind}");
            let link = format!("{wd}/{}", u.name);
            if enable {
                root.mkdir_p(&wd, 0o755, 0, 0)?;
                root.symlink(&link, &unit_path, 0, 0)?;
            } else if root.node(&link)?.is_some() {
                root.remove(&link)?;
            }
        }
    }
    if !preset.is_empty() {
        root.mkdir_p("/etc/systemd/system-preset", 0o755, 0, 0)?;
        root.write_file(PRESET_FILE, preset.as_bytes(), 0o644, 0, 0)?;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates() {
        assert_eq!(
            super::template("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(super::template("sshd.service"), None);
    }
}
