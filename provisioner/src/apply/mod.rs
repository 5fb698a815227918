//! Apply a resolved plan to a root directory.
//!
//! Order: stamp check → preflight (account database, owners, path conflicts;
//! nothing written) → accounts → home directories and SSH keys → directories,
//! files, links → units (with generated storage/mount units) → kernel
//! arguments → result file → first-boot stamp. Any failure rolls every change
//! back and leaves only a failure record.

pub mod rootfs;
pub mod storage;
pub mod units;
pub mod users;

use crate::plan::*;
use rootfs::{FsError, Node, Root};
use serde::Serialize;
use std::path::Path;
use users::{Db, UserError};

/// What was applied, from where and when.
pub const RESULT_FILE: &str = "/etc/.basalt-provision.json";
/// Present after a successful run: a second run is a no-op.
pub const STAMP_FILE: &str = "/etc/.basalt-first-boot-done";
/// Written (alone) when a run fails.
pub const FAILURE_FILE: &str = "/etc/.basalt-provision-failed.json";
/// Kernel arguments for the boot chain to apply.
pub const KARGS_FILE: &str = "/etc/basalt/kernel-args.json";
/// Name of the per-user key file in ~/.ssh/authorized_keys.d/.
pub const SSH_KEYS_NAME: &str = "ignition";

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Seconds since the epoch, recorded in the result file and shadow (None: omitted).
    pub now: Option<i64>,
    /// Where the config came from (e.g. "file:/x", "fw_cfg").
    pub source: String,
    /// "ignition", "cloud-config", "script".
    pub format: String,
    /// Parse warnings to record.
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The stamp existed: nothing was done.
    pub skipped: bool,
    pub warnings: Vec<String>,
    pub storage_commands: Vec<storage::Command>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("accounts: {0}")]
    Users(#[from] UserError),
    #[error("{path}: {msg}")]
    Conflict { path: String, msg: String },
    #[error("{0} has contents that were not fetched (call fetch::resolve_plan first)")]
    Unresolved(String),
    #[error("unit {0} is generated from storage.filesystems but also given in the config")]
    UnitClash(String),
}

#[derive(Serialize)]
struct ResultRecord<'a> {
    version: u32,
    source: &'a str,
    format: &'a str,
    time: Option<i64>,
    applied: std::collections::BTreeMap<&'static str, usize>,
    files: Vec<&'a str>,
    units: Vec<&'a str>,
    users: Vec<&'a str>,
    kernel_arguments: &'a KernelArgs,
    storage_commands: &'a [storage::Command],
    warnings: &'a [String],
}

fn inline(s: &Source, path: &str) -> Result<Vec<u8>, ApplyError> {
    match s {
        Source::Inline(b) => Ok(b.clone()),
        Source::Remote(_) => Err(ApplyError::Unresolved(path.to_string())),
    }
}

/// Apply `plan` under `root`. On failure the root is restored and a failure
/// record is written at [`FAILURE_FILE`].
pub fn apply(plan: &Plan, root: &Path, opts: &Options) -> Result<Outcome, ApplyError> {
    let mut r = Root::open(root)?;
    if r.node(STAMP_FILE)?.is_some() {
        return Ok(Outcome {
            skipped: true,
            ..Default::default()
        });
    }
    let result = run(plan, &mut r, opts).and_then(|out| {
        r.flush()?;
        Ok(out)
    });
    match result {
        Ok(out) => {
            r.commit()?;
            Ok(out)
        }
        Err(e) => {
            let _ = r.rollback();
            let mut r2 = Root::open(root)?;
            let rec = serde_json::json!({
                "version": 1,
                "source": opts.source,
                "format": opts.format,
                "time": opts.now,
                "error": e.to_string(),
            });
            let body = serde_json::to_vec_pretty(&rec).unwrap_or_default();
            if r2.mkdir_p("/etc", 0o755, 0, 0).is_ok() {
                let _ = r2.write_file(FAILURE_FILE, &body, 0o600, 0, 0);
            }
            let _ = r2.commit();
            Err(e)
        }
    }
}

fn owner_uid(o: &Option<Owner>, db: &Db, path: &str) -> Result<u32, ApplyError> {
    match o {
        None => Ok(0),
        Some(Owner::Id(i)) => Ok(*i),
        Some(Owner::Name(n)) => db
            .user(n)
            .map(|u| u.uid)
            .ok_or_else(|| ApplyError::Conflict {
                path: path.into(),
                msg: format!("owner user {n:?} does not exist"),
            }),
    }
}

fn owner_gid(o: &Option<Owner>, db: &Db, path: &str) -> Result<u32, ApplyError> {
    match o {
        None => Ok(0),
        Some(Owner::Id(i)) => Ok(*i),
        Some(Owner::Name(n)) => db.group_gid(n).ok_or_else(|| ApplyError::Conflict {
            path: path.into(),
            msg: format!("owner group {n:?} does not exist"),
        }),
    }
}

fn text(r: &Root, p: &str) -> Result<String, FsError> {
    Ok(r.read(p)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

fn run(plan: &Plan, r: &mut Root, opts: &Options) -> Result<Outcome, ApplyError> {
    // ---- preflight: compute everything, write nothing ----
    let (sfiles, sunits, cmds) = storage::lower(plan);
    let mut all_units: Vec<UnitPlan> = plan.units.clone();
    for u in sunits {
        if all_units.iter().any(|x| x.name == u.name) {
            return Err(ApplyError::UnitClash(u.name));
        }
        all_units.push(u);
    }
    let mut files: Vec<&FilePlan> = plan.files.iter().collect();
    files.extend(sfiles.iter());
    let mut db = Db::parse(
        &text(r, "/etc/passwd")?,
        &text(r, "/etc/group")?,
        &text(r, "/etc/shadow")?,
        &text(r, "/etc/gshadow")?,
    )?;
    for g in &plan.groups {
        db.apply_group(g)?;
    }
    let lastchg = opts.now.map(|t| t.div_euclid(86400));
    for u in &plan.users {
        db.apply_user(u, lastchg)?;
    }
    let mut dirs: Vec<&DirPlan> = plan.directories.iter().collect();
    dirs.sort_by(|a, b| a.path.cmp(&b.path));
    let mut links: Vec<&LinkPlan> = plan.links.iter().collect();
    links.sort_by(|a, b| a.path.cmp(&b.path));
    for d in &dirs {
        owner_uid(&d.user, &db, &d.path)?;
        owner_gid(&d.group, &db, &d.path)?;
        match r.node(&d.path)? {
            None | Some(Node::Dir { .. }) => {}
            Some(_) if d.overwrite => {}
            Some(_) => {
                return Err(conflict(
                    &d.path,
                    "exists and is not a directory (overwrite is false)",
                ));
            }
        }
    }
    for f in &files {
        owner_uid(&f.user, &db, &f.path)?;
        owner_gid(&f.group, &db, &f.path)?;
        match r.node(&f.path)? {
            None => {}
            Some(_) if f.overwrite => {}
            Some(Node::File { .. }) if f.contents.is_none() => {}
            Some(Node::File { .. }) => {
                return Err(conflict(&f.path, "file exists and overwrite is false"));
            }
            Some(_) => {
                return Err(conflict(
                    &f.path,
                    "exists and is not a regular file (overwrite is false)",
                ));
            }
        }
    }
    for l in &links {
        owner_uid(&l.user, &db, &l.path)?;
        owner_gid(&l.group, &db, &l.path)?;
        match r.node(&l.path)? {
            None => {}
            Some(Node::Symlink(t)) if !l.hard && t == l.target => {}
            Some(_) if l.overwrite => {}
            Some(_) => {
                return Err(conflict(
                    &l.path,
                    "a node exists there and overwrite is false",
                ));
            }
        }
    }

    // ---- accounts ----
    let [p, g, s, gs] = db.render();
    r.mkdir_p("/etc", 0o755, 0, 0)?;
    if !plan.users.is_empty() || !plan.groups.is_empty() {
        r.write_file("/etc/passwd", p.as_bytes(), 0o644, 0, 0)?;
        r.write_file("/etc/group", g.as_bytes(), 0o644, 0, 0)?;
        let shadow_gid = db.group_gid("shadow").unwrap_or(0);
        r.write_file("/etc/shadow", s.as_bytes(), 0o640, 0, shadow_gid)?;
        r.write_file("/etc/gshadow", gs.as_bytes(), 0o640, 0, shadow_gid)?;
    }
    for u in &plan.users {
        let Some(e) = db.user(&u.name).cloned() else {
            continue;
        };
        let is_new = db.new_users.contains(&u.name);
        // New users get a home, and so does an existing account that is
        // given SSH keys (an image's default user, whose home lives on ROOT
        // and does not exist before the first boot).
        let wants_home = is_new || !u.ssh_keys.is_empty();
        if wants_home && !u.no_create_home && r.node(&e.home)?.is_none() {
            let (parent, _) = rootfs::split(&e.home);
            r.mkdir_p(parent, 0o755, 0, 0)?;
            r.mkdir_p(&e.home, 0o700, e.uid, e.gid)?;
            copy_skel(r, "/etc/skel", &e.home, e.uid, e.gid)?;
        }
        if !u.ssh_keys.is_empty() {
            let ssh = format!("{}/.ssh", e.home);
            if r.node(&e.home)?.is_none() {
                return Err(conflict(
                    &e.home,
                    "home directory does not exist, cannot install SSH keys",
                ));
            }
            r.mkdir_p(&ssh, 0o700, e.uid, e.gid)?;
            r.mkdir_p(&format!("{ssh}/authorized_keys.d"), 0o700, e.uid, e.gid)?;
            let mut list = String::new();
            for k in &u.ssh_keys {
                list.push_str(k.trim());
                list.push('\n');
            }
            r.write_file(
                &format!("{ssh}/authorized_keys.d/{SSH_KEYS_NAME}"),
                list.as_bytes(),
                0o600,
                e.uid,
                e.gid,
            )?;
            // sshd reads ~/.ssh/authorized_keys by default: add missing keys there.
            let ak = format!("{ssh}/authorized_keys");
            let mut cur = text(r, &ak)?;
            for k in &u.ssh_keys {
                if !cur.lines().any(|l| l.trim() == k.trim()) {
                    if !cur.is_empty() && !cur.ends_with('\n') {
                        cur.push('\n');
                    }
                    cur.push_str(k.trim());
                    cur.push('\n');
                }
            }
            r.write_file(&ak, cur.as_bytes(), 0o600, e.uid, e.gid)?;
        }
    }

    // ---- directories, files, links ----
    for d in &dirs {
        let (uid, gid) = (
            owner_uid(&d.user, &db, &d.path)?,
            owner_gid(&d.group, &db, &d.path)?,
        );
        let (parent, _) = rootfs::split(&d.path);
        r.mkdir_p(parent, 0o755, 0, 0)?;
        match r.node(&d.path)? {
            Some(Node::Dir { mode, .. }) => {
                r.set_attr(&d.path, d.mode.unwrap_or(mode), uid, gid)?
            }
            Some(_) => {
                r.remove(&d.path)?;
                r.mkdir_p(&d.path, d.mode.unwrap_or(0o755), uid, gid)?;
            }
            None => r.mkdir_p(&d.path, d.mode.unwrap_or(0o755), uid, gid)?,
        }
    }
    for f in &files {
        let (uid, gid) = (
            owner_uid(&f.user, &db, &f.path)?,
            owner_gid(&f.group, &db, &f.path)?,
        );
        let (parent, _) = rootfs::split(&f.path);
        r.mkdir_p(parent, 0o755, 0, 0)?;
        let existing = r.node(&f.path)?;
        let (mut data, mode) = match (&f.contents, &existing) {
            (Some(c), _) => (inline(c, &f.path)?, f.mode.unwrap_or(0o644)),
            (None, Some(Node::File { mode, .. })) if !f.overwrite => (
                r.read(&f.path)?.unwrap_or_default(),
                f.mode.unwrap_or(*mode),
            ),
            (None, _) => (Vec::new(), f.mode.unwrap_or(0o644)),
        };
        for a in &f.append {
            data.extend(inline(a, &f.path)?);
        }
        r.write_file(&f.path, &data, mode, uid, gid)?;
    }
    for l in &links {
        let (uid, gid) = (
            owner_uid(&l.user, &db, &l.path)?,
            owner_gid(&l.group, &db, &l.path)?,
        );
        let (parent, _) = rootfs::split(&l.path);
        r.mkdir_p(parent, 0o755, 0, 0)?;
        if l.hard {
            if r.node(&l.target)?.is_none() {
                return Err(conflict(
                    &l.path,
                    &format!("hard link target {} does not exist", l.target),
                ));
            }
            r.hardlink(&l.path, &l.target)?;
        } else {
            r.symlink(&l.path, &l.target, uid, gid)?;
        }
    }

    // ---- units ----
    let mut warnings = opts.warnings.clone();
    warnings.extend(units::write(r, &all_units)?);

    // ---- records ----
    if plan.kernel_args != KernelArgs::default() {
        r.mkdir_p("/etc/basalt", 0o755, 0, 0)?;
        let body = serde_json::to_vec_pretty(&serde_json::json!({
            "shouldExist": plan.kernel_args.should_exist,
            "shouldNotExist": plan.kernel_args.should_not_exist,
        }))
        .unwrap_or_default();
        r.write_file(KARGS_FILE, &body, 0o644, 0, 0)?;
    }
    let rec = ResultRecord {
        version: 1,
        source: &opts.source,
        format: &opts.format,
        time: opts.now,
        applied: plan.summary(),
        files: files.iter().map(|f| f.path.as_str()).collect(),
        units: all_units.iter().map(|u| u.name.as_str()).collect(),
        users: plan.users.iter().map(|u| u.name.as_str()).collect(),
        kernel_arguments: &plan.kernel_args,
        storage_commands: &cmds,
        warnings: &warnings,
    };
    let mut body = serde_json::to_vec_pretty(&rec).unwrap_or_default();
    body.push(b'\n');
    r.write_file(RESULT_FILE, &body, 0o600, 0, 0)?;
    r.write_file(STAMP_FILE, b"", 0o644, 0, 0)?;
    Ok(Outcome {
        skipped: false,
        warnings,
        storage_commands: cmds,
    })
}

fn conflict(path: &str, msg: &str) -> ApplyError {
    ApplyError::Conflict {
        path: path.to_string(),
        msg: msg.to_string(),
    }
}

/// Copy /etc/skel (files, directories, symlinks) into a new home.
fn copy_skel(r: &mut Root, from: &str, to: &str, uid: u32, gid: u32) -> Result<(), FsError> {
    for n in r.list(from)? {
        let src = format!("{from}/{n}");
        let dst = format!("{to}/{n}");
        match r.node(&src)? {
            Some(Node::File { mode, .. }) => {
                let data = r.read(&src)?.unwrap_or_default();
                r.write_file(&dst, &data, mode, uid, gid)?;
            }
            Some(Node::Dir { mode, .. }) => {
                r.mkdir_p(&dst, mode, uid, gid)?;
                copy_skel(r, &src, &dst, uid, gid)?;
            }
            Some(Node::Symlink(t)) => r.symlink(&dst, &t, uid, gid)?,
            _ => {}
        }
    }
    Ok(())
}
