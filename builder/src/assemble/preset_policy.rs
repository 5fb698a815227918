//! The tree's preset policy applied at build time: what `systemctl
//! preset-all` does on a first boot (systemd's "enable only" mode), done
//! while building instead.
//!
//! Every unit file of the tree with something to install is matched against
//! the preset files (systemd.preset(5)): files from
//! /etc/systemd/system-preset, /usr/local/lib/systemd/system-preset and
//! /usr/lib/systemd/system-preset, ordered by file name (a name in an
//! earlier directory hides the same name in a later one), their lines read
//! in order, and the first line whose glob matches the unit decides. Only
//! `enable` lines act; `disable` and `ignore` leave the unit as it is, as
//! on a first boot.
//!
//! systemd does this itself only when it finds no /etc/machine-id. Doing it
//! here puts the enabled set in the verified /usr and in the build report,
//! and /init writes the machine ID (provisioner/src/init/machineid.rs), so
//! PID 1 skips the scan of every unit file at the first boot (1.3 s under
//! QEMU TCG, before the first unit starts).

use anyhow::{Context, Result};
use basalt_tree::{Entry, Kind, Tree};

use super::presets::{UNIT_SEARCH, parse_install};

/// Preset directories in systemd's order of precedence (systemd.preset(5)).
pub const PRESET_DIRS: &[&str] = &[
    "/etc/systemd/system-preset",
    "/usr/local/lib/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
];

/// Unit types a preset can apply to (systemd.unit(5)).
const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".mount",
    ".automount",
    ".swap",
    ".path",
    ".timer",
    ".slice",
];

/// What a preset line says about the units its glob matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enable; for a template, these instances (none: its DefaultInstance=).
    Enable(Vec<String>),
    Disable,
    Ignore,
}

/// One preset line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub pattern: String,
    pub action: Action,
    /// `file:line`, for the build report and warnings.
    pub origin: String,
}

/// The rules of one preset file. Lines systemd would skip (an unknown verb,
/// no unit name, instances after `disable`) are returned as warnings, with
/// file and line, and skipped the same way.
pub fn parse(text: &str, file: &str) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let origin = format!("{file}:{}", n + 1);
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let Some(pattern) = words.next() else {
            warnings.push(format!("{origin}: {verb:?} names no unit; line skipped"));
            continue;
        };
        let rest: Vec<String> = words.map(str::to_string).collect();
        let action = match verb {
            "enable" => Action::Enable(rest),
            "disable" | "ignore" if !rest.is_empty() => {
                warnings.push(format!(
                    "{origin}: {verb} takes one unit name, not instances; line skipped"
                ));
                continue;
            }
            "disable" => Action::Disable,
            "ignore" => Action::Ignore,
            other => {
                warnings.push(format!(
                    "{origin}: unknown verb {other:?} (expected enable, disable or ignore); line skipped"
                ));
                continue;
            }
        };
        rules.push(Rule {
            pattern: pattern.to_string(),
            action,
            origin,
        });
    }
    (rules, warnings)
}

/// Every rule of the tree's preset files, in the order systemd reads them.
pub fn rules(tree: &Tree) -> Result<(Vec<Rule>, Vec<String>)> {
    // File name -> path of the copy that wins.
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for dir in PRESET_DIRS {
        for (path, e) in tree.descendants(dir) {
            let name = basalt_tree::file_name(path);
            if basalt_tree::parent(path) != Some(dir) || !name.ends_with(".preset") {
                continue;
            }
            if matches!(e.kind, Kind::File(_)) || is_null_link(e) {
                files
                    .entry(name.to_string())
                    .or_insert_with(|| path.to_string());
            }
        }
    }
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for path in files.values() {
        let Some(Entry {
            kind: Kind::File(c),
            ..
        }) = tree.get(path)
        else {
            continue; // a link to /dev/null hides the file of that name
        };
        let bytes = c.read_all().with_context(|| format!("reading {path}"))?;
        let text = String::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))?;
        let (r, w) = parse(&text, path);
        rules.extend(r);
        warnings.extend(w);
    }
    Ok((rules, warnings))
}

fn is_null_link(e: &Entry) -> bool {
    matches!(&e.kind, Kind::Symlink(t) if t == "/dev/null")
}

/// The first rule whose glob matches `unit`.
pub fn decide<'a>(rules: &'a [Rule], unit: &str) -> Option<&'a Rule> {
    rules
        .iter()
        .find(|r| basalt_fnmatch::matches(&r.pattern, unit))
}

/// The unit files of the tree, by name: the regular file that wins in the
/// unit search path. Names whose winning entry is a link (an alias, or a
/// mask to /dev/null) are left out, as are names with no unit suffix.
fn unit_files(tree: &Tree) -> Result<std::collections::BTreeMap<String, String>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = std::collections::BTreeMap::new();
    for dir in UNIT_SEARCH {
        for (path, e) in tree.descendants(dir) {
            let name = basalt_tree::file_name(path);
            if basalt_tree::parent(path) != Some(dir)
                || !UNIT_SUFFIXES.iter().any(|s| name.ends_with(s))
                || !seen.insert(name.to_string())
            {
                continue;
            }
            if let Kind::File(c) = &e.kind {
                let bytes = c.read_all().with_context(|| format!("reading {path}"))?;
                out.insert(
                    name.to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                );
            }
        }
    }
    Ok(out)
}

/// The units the preset files enable, as names to pass to the enabler
/// (`getty@tty1.service` for a template's instance), sorted and without
/// duplicates, plus the warnings of the preset files.
pub fn units_to_enable(tree: &Tree) -> Result<(Vec<String>, Vec<String>)> {
    let (rules, mut warnings) = rules(tree)?;
    let mut out = std::collections::BTreeSet::new();
    for (name, body) in unit_files(tree)? {
        let install = parse_install(&body);
        if install.is_empty() {
            continue;
        }
        let Some(Rule {
            action: Action::Enable(instances),
            origin,
            ..
        }) = decide(&rules, &name)
        else {
            continue;
        };
        if !name.contains("@.") {
            out.insert(name);
            continue;
        }
        let chosen: Vec<String> = if instances.is_empty() {
            install.default_instance.into_iter().collect()
        } else {
            instances.clone()
        };
        if chosen.is_empty() {
            warnings.push(format!(
                "{origin}: enables template {name}, which has no DefaultInstance= and the line names no instance; not enabled"
            ));
        }
        for i in chosen {
            out.insert(name.replacen("@.", &format!("@{i}."), 1));
        }
    }
    Ok((out.into_iter().collect(), warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    #[test]
    fn parse_table() {
        let text = "# c\n; c\n\nenable a.service\ndisable b.*\nignore c.socket\n\
                    enable getty@.service tty1 tty2\nfrobnicate d.service\nenable\n\
                    disable e.service x\n";
        let (rules, warnings) = parse(text, "f.preset");
        let got: Vec<(&str, &Action, &str)> = rules
            .iter()
            .map(|r| (r.pattern.as_str(), &r.action, r.origin.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.service", &Action::Enable(vec![]), "f.preset:4"),
                ("b.*", &Action::Disable, "f.preset:5"),
                ("c.socket", &Action::Ignore, "f.preset:6"),
                (
                    "getty@.service",
                    &Action::Enable(vec!["tty1".into(), "tty2".into()]),
                    "f.preset:7"
                ),
            ]
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("f.preset:8: unknown verb"));
        assert!(warnings[1].starts_with("f.preset:9:"));
        assert!(warnings[2].starts_with("f.preset:10: disable takes one unit"));
    }

    fn file(t: &mut Tree, path: &str, text: &str) {
        t.mkdir_p(basalt_tree::parent(path).unwrap(), 0).unwrap();
        t.insert(
            path,
            Entry::file(0o644, Content::from_bytes(text.as_bytes().to_vec())),
        )
        .unwrap();
    }

    #[test]
    fn first_match_wins_across_files_by_name() {
        let mut t = Tree::new();
        // 10-x sorts before 90-y whatever the directory; the /etc copy of
        // 90-y hides the /usr one.
        file(
            &mut t,
            "/usr/lib/systemd/system-preset/90-y.preset",
            "enable *\n",
        );
        file(
            &mut t,
            "/etc/systemd/system-preset/90-y.preset",
            "enable b.service\ndisable *\n",
        );
        file(
            &mut t,
            "/usr/lib/systemd/system-preset/10-x.preset",
            "disable a.service\n",
        );
        let (rules, w) = rules(&t).unwrap();
        assert!(w.is_empty());
        let cases = [
            ("a.service", Some(Action::Disable)),
            ("b.service", Some(Action::Enable(vec![]))),
            ("c.service", Some(Action::Disable)),
        ];
        for (unit, want) in cases {
            assert_eq!(
                decide(&rules, unit).map(|r| r.action.clone()),
                want,
                "{unit}"
            );
        }
    }

    #[test]
    fn units_to_enable_table() {
        let mut t = Tree::new();
        let u = "/usr/lib/systemd/system";
        file(
            &mut t,
            "/usr/lib/systemd/system-preset/50-p.preset",
            "disable off.service\nenable getty@.service\nenable multi@.service a b\nenable noinst@.service\nenable *.service\n",
        );
        let wanted = "[Install]\nWantedBy=multi-user.target\n";
        file(&mut t, &format!("{u}/on.service"), wanted);
        file(&mut t, &format!("{u}/off.service"), wanted);
        file(
            &mut t,
            &format!("{u}/static.service"),
            "[Service]\nExecStart=/bin/true\n",
        );
        file(
            &mut t,
            &format!("{u}/sock.socket"),
            "[Install]\nWantedBy=sockets.target\n",
        );
        file(
            &mut t,
            &format!("{u}/getty@.service"),
            "[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
        );
        file(&mut t, &format!("{u}/multi@.service"), wanted);
        file(&mut t, &format!("{u}/noinst@.service"), wanted);
        // Masked in /etc: the mask wins over the file in /usr.
        file(&mut t, &format!("{u}/masked.service"), wanted);
        t.mkdir_p("/etc/systemd/system", 0).unwrap();
        t.insert(
            "/etc/systemd/system/masked.service",
            Entry::symlink("/dev/null"),
        )
        .unwrap();
        // Not a direct child: a drop-in or wants link is no unit file.
        file(&mut t, &format!("{u}/on.service.d/x.conf"), wanted);
        let (units, warnings) = units_to_enable(&t).unwrap();
        assert_eq!(
            units,
            vec![
                "getty@tty1.service",
                "multi@a.service",
                "multi@b.service",
                "on.service",
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("noinst@.service"));
    }
}
