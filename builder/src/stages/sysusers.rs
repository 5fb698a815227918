//! The packages' system users and groups (sysusers.d) created at build time.
//! Debian's systemd, dbus, polkit, ... declare their accounts in
//! `/usr/lib/sysusers.d/*.conf` instead of running adduser in a postinst, so
//! the factory passwd/group that `assemble::users` writes from base-passwd
//! lack them (messagebus, systemd-network, systemd-journal, ...). Without
//! this stage `systemd-sysusers.service` would have to create them at the
//! first boot, on the way to sshd.
//!
//! The tree's own `systemd-sysusers --root=<staged root>` runs rootless
//! through the tree's loader (`basalt_treeexec`, as hwdb.rs does) over a
//! staged copy of the factory passwd, group, shadow, gshadow and login.defs
//! and the sysusers.d files (override by name: `/etc` over
//! `/usr/local/lib` over `/usr/lib`; a link to /dev/null masks). The four
//! files come back normalised for reproducibility: sorted by id like
//! `assemble::users` writes them, and the shadow last-change day of every
//! new account set to SOURCE_DATE_EPOCH / 86400 (sysusers also gets
//! `SOURCE_DATE_EPOCH` in its environment). The stage then checks, with
//! [`pending`], that nothing is left for the boot-time sysusers, whose unit
//! the factory `/etc/.updated` (ldcache.rs) skips until /usr changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Kind, Tree};
use basalt_treeexec::{Staged, closure, treefs};

use crate::assemble::factory_etc::FACTORY_ETC;

/// The program (package systemd).
pub const TOOL: &str = "/usr/bin/systemd-sysusers";
/// The unit that runs it at boot (`ConditionNeedsUpdate=|/etc`).
pub const UNIT: &str = "/usr/lib/systemd/system/systemd-sysusers.service";
/// Configuration directories below /usr, lowest priority first; the
/// `<etc>/sysusers.d` of the image overrides both (sysusers.d(5)).
const USR_DIRS: &[&str] = &["/usr/lib/sysusers.d", "/usr/local/lib/sysusers.d"];
/// The account files sysusers edits, with their fields per line.
const DB_FILES: &[(&str, usize)] = &[("passwd", 7), ("group", 4), ("shadow", 9), ("gshadow", 4)];
/// Read by sysusers for the system id range when present.
const LOGIN_DEFS: &str = "login.defs";

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing done; why.
    Skipped(String),
    Applied {
        /// Where the account files are (`/etc` or the factory copy).
        etc: String,
        /// sysusers.d files applied.
        files: usize,
        /// Users and groups that were added, as `user NAME` / `group NAME`.
        added: Vec<String>,
    },
}

/// The directory holding passwd: `/etc`, or the factory copy once the
/// assembly has moved /etc there.
pub fn etc_dir(tree: &Tree) -> Option<&'static str> {
    ["/etc", FACTORY_ETC]
        .into_iter()
        .find(|d| tree.contains(&format!("{d}/passwd")))
}

/// The sysusers.d configuration files by name, as systemd-sysusers picks
/// them: `*.conf` directly in `/usr/lib/sysusers.d`,
/// `/usr/local/lib/sysusers.d` and `<etc>/sysusers.d`, a later directory
/// overriding a file of the same name, a link to /dev/null masking it.
pub fn config_files(tree: &Tree, etc: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let etc_dir = format!("{etc}/sysusers.d");
    for dir in USR_DIRS.iter().copied().chain([etc_dir.as_str()]) {
        let prefix = format!("{dir}/");
        for (k, _) in tree.descendants(dir) {
            if let Some(name) = k.strip_prefix(&prefix)
                && !name.contains('/')
                && name.ends_with(".conf")
            {
                by_name.insert(name.to_string(), k.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for (name, path) in by_name {
        if let Some(Entry {
            kind: Kind::Symlink(t),
            ..
        }) = tree.get(&path)
            && t == "/dev/null"
        {
            continue;
        }
        let bytes = treefs::read_file(tree, &path).with_context(|| format!("reading {path}"))?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// `name` → the colon-separated fields of a passwd/group file.
fn colon_db(tree: &Tree, path: &str) -> BTreeMap<String, Vec<String>> {
    let text = treefs::read_file(tree, path).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let f: Vec<String> = l.split(':').map(String::from).collect();
            (f.len() >= 3).then(|| (f[0].clone(), f))
        })
        .collect()
}

/// What systemd-sysusers would still create at boot: `u` users (and their
/// same-named groups, unless the ID field names a group), `g` groups and
/// `m` memberships absent from `<etc>/passwd` and `<etc>/group`. A name with
/// a `%` specifier counts as pending (it cannot be checked here).
pub fn pending(tree: &Tree, etc: &str) -> Result<Vec<String>> {
    let passwd = colon_db(tree, &format!("{etc}/passwd"));
    let group = colon_db(tree, &format!("{etc}/group"));
    let member = |user: &str, grp: &str| {
        let Some(g) = group.get(grp) else {
            return false;
        };
        let primary = passwd.get(user).and_then(|p| p.get(3)) == g.get(2);
        primary || g.get(3).is_some_and(|m| m.split(',').any(|u| u == user))
    };
    let mut out = Vec::new();
    for (file, bytes) in config_files(tree, etc)? {
        for line in String::from_utf8_lossy(&bytes).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(&ty), Some(&name)) = (f.first(), f.get(1)) else {
                continue;
            };
            if ty.starts_with('#') {
                continue;
            }
            let id = f.get(2).copied().unwrap_or("-");
            let missing = match ty {
                "u" | "u!" => {
                    name.contains('%')
                        || !passwd.contains_key(name)
                        || (!id.contains(':') && !group.contains_key(name))
                }
                "g" => name.contains('%') || !group.contains_key(name),
                "m" => name.contains('%') || !member(name, id),
                _ => false,
            };
            if missing {
                out.push(format!("{ty} {name} ({file})"));
            }
        }
    }
    Ok(out)
}

/// The account files by name (`passwd`, ...): their text, or None when the
/// tree has none.
type Db = BTreeMap<&'static str, Option<String>>;

fn read_db(tree: &Tree, etc: &str) -> Result<Db> {
    let mut db = Db::new();
    for (name, _) in DB_FILES {
        let path = format!("{etc}/{name}");
        let text = match tree.get(&path) {
            None => None,
            Some(_) => {
                let b =
                    treefs::read_file(tree, &path).with_context(|| format!("reading {path}"))?;
                Some(String::from_utf8(b).with_context(|| format!("{path} is not UTF-8"))?)
            }
        };
        db.insert(name, text);
    }
    Ok(db)
}

/// Lines of an account file split into fields; `what` names it in errors.
fn parse(what: &str, text: &str, fields: usize) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if line.starts_with(['+', '-']) {
            bail!("{what}:{}: NIS compat entries are not supported", i + 1);
        }
        let f: Vec<String> = line.split(':').map(String::from).collect();
        if f.len() != fields {
            bail!(
                "{what}:{}: expected {fields} ':'-separated fields, found {}",
                i + 1,
                f.len()
            );
        }
        out.push(f);
    }
    Ok(out)
}

fn numeric_id(what: &str, f: &[String]) -> Result<u32> {
    f[2].parse()
        .with_context(|| format!("{what}: {}: id {:?} is not a number", f[0], f[2]))
}

fn join(lines: &[Vec<String>]) -> String {
    lines.iter().map(|f| f.join(":") + "\n").collect()
}

/// Orders `rows` like `order` (names), any others after them by name.
fn ordered_like(rows: Vec<Vec<String>>, order: &[Vec<String>]) -> Vec<Vec<String>> {
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, f)| (f[0].as_str(), i))
        .collect();
    let mut rows = rows;
    rows.sort_by(|a, b| {
        let ka = (
            rank.get(a[0].as_str()).copied().unwrap_or(usize::MAX),
            &a[0],
        );
        let kb = (
            rank.get(b[0].as_str()).copied().unwrap_or(usize::MAX),
            &b[0],
        );
        ka.cmp(&kb)
    });
    rows
}

/// The files sysusers wrote, made reproducible: passwd and group sorted by
/// (id, name), shadow and gshadow in the same order, and every shadow entry
/// that `before` lacked dated SOURCE_DATE_EPOCH's day.
fn normalize(before: &Db, after: &BTreeMap<&'static str, String>, epoch: i64) -> Result<Db> {
    let get = |n: &str| {
        after
            .get(n)
            .with_context(|| format!("systemd-sysusers left no {n}"))
    };
    let mut passwd = parse("passwd", get("passwd")?, 7)?;
    let mut group = parse("group", get("group")?, 4)?;
    let mut keyed = Vec::new();
    for f in passwd.drain(..) {
        keyed.push((numeric_id("passwd", &f)?, f));
    }
    keyed.sort_by(|a, b| (a.0, &a.1[0]).cmp(&(b.0, &b.1[0])));
    let passwd: Vec<_> = keyed.into_iter().map(|(_, f)| f).collect();
    let mut keyed = Vec::new();
    for f in group.drain(..) {
        keyed.push((numeric_id("group", &f)?, f));
    }
    keyed.sort_by(|a, b| (a.0, &a.1[0]).cmp(&(b.0, &b.1[0])));
    let group: Vec<_> = keyed.into_iter().map(|(_, f)| f).collect();

    let old_shadow: BTreeSet<String> = match before.get("shadow").cloned().flatten() {
        Some(t) => parse("shadow (before)", &t, 9)?
            .into_iter()
            .map(|f| f[0].clone())
            .collect(),
        None => BTreeSet::new(),
    };
    let day = epoch.div_euclid(86_400).to_string();
    let mut shadow = parse("shadow", get("shadow")?, 9)?;
    for f in &mut shadow {
        if !old_shadow.contains(&f[0]) {
            f[2] = day.clone();
        }
    }
    let shadow = ordered_like(shadow, &passwd);
    let gshadow = ordered_like(parse("gshadow", get("gshadow")?, 4)?, &group);
    Ok([
        ("passwd", join(&passwd)),
        ("group", join(&group)),
        ("shadow", join(&shadow)),
        ("gshadow", join(&gshadow)),
    ]
    .into_iter()
    .map(|(n, t)| (n, Some(t)))
    .collect())
}

/// Writes `db` and `login.defs` (when given) under `root/etc` and the
/// configuration under `root/usr/lib/sysusers.d`.
fn stage_root(
    root: &Path,
    db: &Db,
    login_defs: Option<&[u8]>,
    confs: &[(String, Vec<u8>)],
) -> Result<()> {
    let etc = root.join("etc");
    let conf_dir = root.join("usr/lib/sysusers.d");
    for d in [&etc, &conf_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let files = db
        .iter()
        .filter_map(|(n, t)| t.as_ref().map(|t| (etc.join(n), t.as_bytes())))
        .chain(login_defs.map(|b| (etc.join(LOGIN_DEFS), b)))
        .chain(confs.iter().map(|(n, b)| (conf_dir.join(n), b.as_slice())));
    for (p, bytes) in files {
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// Runs `cmd` (a systemd-sysusers) on the staged `root` and reads the four
/// files back.
fn execute(mut cmd: Command, root: &Path, epoch: i64) -> Result<BTreeMap<&'static str, String>> {
    super::rooted::run(
        cmd.env("SOURCE_DATE_EPOCH", epoch.to_string()),
        root,
        "systemd-sysusers",
    )?;
    let mut files = BTreeMap::new();
    for (name, _) in DB_FILES {
        let p = root.join("etc").join(name);
        let b = std::fs::read(&p)
            .with_context(|| format!("systemd-sysusers succeeded but left no {}", p.display()))?;
        let t = String::from_utf8(b).with_context(|| format!("{} is not UTF-8", p.display()))?;
        files.insert(*name, t);
    }
    Ok(files)
}

/// Names in passwd / group of `db`.
fn names(db: &Db, file: &str) -> BTreeSet<String> {
    db.get(file)
        .cloned()
        .flatten()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect()
}

/// Applies the tree's sysusers.d to its account files with the tree's own
/// systemd-sysusers, then checks nothing is left pending.
pub fn apply(tree: &mut Tree, epoch: i64) -> Result<Outcome> {
    if treefs::resolve(tree, TOOL).is_err() {
        return Ok(Outcome::Skipped(format!("no {TOOL} in the tree")));
    }
    let Some(etc) = etc_dir(tree) else {
        return Ok(Outcome::Skipped(format!(
            "no passwd in /etc or {FACTORY_ETC}"
        )));
    };
    let confs = config_files(tree, etc)?;
    if confs.is_empty() {
        return Ok(Outcome::Skipped("no sysusers.d files".into()));
    }
    let before = read_db(tree, etc)?;
    let login_path = format!("{etc}/{LOGIN_DEFS}");
    let login_defs = match tree.get(&login_path) {
        Some(_) => Some(
            treefs::read_file(tree, &login_path)
                .with_context(|| format!("reading {login_path}"))?,
        ),
        None => None,
    };
    let tool = closure(tree, TOOL).context("finding systemd-sysusers' libraries in the tree")?;
    let staged = Staged::stage(&tool, "basalt-sysusers-").context("staging systemd-sysusers")?;
    let root = staged.dir().join("root");
    stage_root(&root, &before, login_defs.as_deref(), &confs)?;
    let after = execute(staged.command(), &root, epoch)
        .context("applying sysusers.d with the tree's systemd-sysusers")?;
    let db = normalize(&before, &after, epoch)?;
    let mut added: Vec<String> = Vec::new();
    for (file, kind) in [("passwd", "user"), ("group", "group")] {
        let old = names(&before, file);
        added.extend(
            names(&db, file)
                .difference(&old)
                .map(|n| format!("{kind} {n}")),
        );
    }
    let shadow_gid = colon_gid(db.get("group").cloned().flatten().as_deref(), "shadow");
    for (name, text) in &db {
        let Some(text) = text else { continue };
        let path = format!("{etc}/{name}");
        let (mode, uid, gid) = match tree.get(&path) {
            Some(e) => (e.mode, e.uid, e.gid),
            None if name.ends_with("shadow") => (0o640, 0, shadow_gid),
            None => (0o644, 0, 0),
        };
        let body = Content::from_bytes(text.clone().into_bytes());
        tree.insert_p(&path, Entry::file(mode, body).owned(uid, gid).at(epoch))
            .with_context(|| format!("writing {path}"))?;
    }
    let left = pending(tree, etc)?;
    if !left.is_empty() {
        bail!(
            "systemd-sysusers ran, but sysusers.d still declares accounts missing from {etc}/passwd \
             and group: {}",
            left.join(", ")
        );
    }
    Ok(Outcome::Applied {
        etc: etc.to_string(),
        files: confs.len(),
        added,
    })
}

/// The gid of group `name` in a group file's text (0 when absent).
fn colon_gid(group: Option<&str>, name: &str) -> u32 {
    group
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "sysusers_tests.rs"]
mod tests;
