//! Ignition 3.6 structs → `Plan`, with the semantic validation Ignition itself
//! performs (paths, duplicates, modes, unit and drop-in names, hashes, URLs,
//! filesystem and partition fields). Every problem carries a config path that
//! the location map turns into a line and column.

use crate::check;
use crate::diag::{Diagnostic, Report};
use crate::jsonloc::LocationMap;
use crate::plan::*;
use ignition_config::v3_6 as ign;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;

pub(crate) struct Ctx<'a> {
    pub locs: &'a LocationMap<'a>,
    pub report: Report,
}

impl Ctx<'_> {
    /// An error at config path `path` (formatted only here, so callers on
    /// the hot path pass `format_args!` and pay nothing when all is well).
    pub fn err(&mut self, path: impl Display, msg: impl Into<String>) {
        let path = path.to_string();
        let (l, c) = self.locs.value_pos(&path);
        self.report.push(Diagnostic::error(l, c, Some(path), msg));
    }
}

/// Convert a parsed config; errors are collected in `ctx.report`.
pub(crate) fn to_plan(cfg: &ign::Config, ctx: &mut Ctx) -> Plan {
    let mut plan = Plan::default();
    ignition_section(&cfg.ignition, &mut plan, ctx);
    if let Some(st) = &cfg.storage {
        storage(st, &mut plan, ctx);
    }
    if let Some(sd) = &cfg.systemd {
        for (i, u) in sd.units.iter().flatten().enumerate() {
            if let Some(p) = unit(u, &format!("systemd.units[{i}]"), ctx) {
                plan.units.push(p);
            }
        }
        let mut seen = BTreeSet::new();
        for (i, u) in plan.units.iter().enumerate() {
            if !seen.insert(u.name.clone()) {
                ctx.err(
                    &format!("systemd.units[{i}].name"),
                    format!("duplicate unit {:?}", u.name),
                );
            }
        }
    }
    if let Some(pw) = &cfg.passwd {
        passwd(pw, &mut plan, ctx);
    }
    if let Some(ka) = &cfg.kernel_arguments {
        let ex: Vec<String> = ka.should_exist.iter().flatten().cloned().collect();
        let nex: Vec<String> = ka.should_not_exist.iter().flatten().cloned().collect();
        for (i, a) in nex.iter().enumerate() {
            if ex.contains(a) {
                ctx.err(
                    &format!("kernelArguments.shouldNotExist[{i}]"),
                    format!(
                        "kernel argument {a:?} is listed in both shouldExist and shouldNotExist"
                    ),
                );
            }
        }
        plan.kernel_args = KernelArgs {
            should_exist: ex,
            should_not_exist: nex,
        };
    }
    plan
}

fn ignition_section(ig: &ign::Ignition, plan: &mut Plan, ctx: &mut Ctx) {
    // ignition.config.merge/replace are validated by the caller (ignition::from_config).
    if let Some(t) = &ig.timeouts {
        plan.timeouts.http_response_headers_s = non_negative(
            t.http_response_headers,
            "ignition.timeouts.httpResponseHeaders",
            ctx,
        );
        plan.timeouts.http_total_s = non_negative(t.http_total, "ignition.timeouts.httpTotal", ctx);
    }
    if let Some(s) = ig.security.as_ref().and_then(|s| s.tls.as_ref()) {
        for (i, r) in s.certificate_authorities.iter().flatten().enumerate() {
            if let Some(src) = resource(
                r,
                &format!("ignition.security.tls.certificateAuthorities[{i}]"),
                true,
                ctx,
            ) {
                plan.tls_cas.push(src);
            }
        }
    }
    if let Some(p) = &ig.proxy {
        for (v, key) in [(&p.http_proxy, "httpProxy"), (&p.https_proxy, "httpsProxy")] {
            if let Some(u) = v {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    ctx.err(
                        &format!("ignition.proxy.{key}"),
                        format!("proxy URL {u:?} must start with http:// or https://"),
                    );
                }
            }
        }
        plan.proxy = Proxy {
            http: p.http_proxy.clone(),
            https: p.https_proxy.clone(),
            no_proxy: p.no_proxy.iter().flatten().cloned().collect(),
        };
    }
}

fn non_negative(v: Option<i64>, path: &str, ctx: &mut Ctx) -> Option<u64> {
    let v = v?;
    match u64::try_from(v) {
        Ok(x) => Some(x),
        Err(_) => {
            ctx.err(path, format!("value {v} must not be negative"));
            None
        }
    }
}

/// Validate a resource. `need_source`: a missing source is an error.
pub(crate) fn resource(
    r: &ign::Resource,
    path: &dyn Display,
    need_source: bool,
    ctx: &mut Ctx,
) -> Option<Source> {
    let mut ok = true;
    let gzip = match r.compression.as_deref() {
        None | Some("") => false,
        Some("gzip") => true,
        Some(other) => {
            ctx.err(
                &format!("{path}.compression"),
                format!("compression {other:?} is not supported (only \"gzip\")"),
            );
            ok = false;
            false
        }
    };
    let hash = match r.verification.as_ref().and_then(|v| v.hash.as_ref()) {
        None => None,
        Some(h) => match check::hash(h) {
            Ok(h) => Some(h),
            Err(e) => {
                ctx.err(&format!("{path}.verification.hash"), e);
                ok = false;
                None
            }
        },
    };
    let mut headers = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, h) in r.http_headers.iter().flatten().enumerate() {
        let hp = format!("{path}.httpHeaders[{i}]");
        if h.name.is_empty() {
            ctx.err(&format!("{hp}.name"), "HTTP header name is empty");
            ok = false;
        } else if !seen.insert(h.name.to_ascii_lowercase()) {
            ctx.err(
                &format!("{hp}.name"),
                format!("duplicate HTTP header {:?}", h.name),
            );
            ok = false;
        }
        headers.push((h.name.clone(), h.value.clone().unwrap_or_default()));
    }
    let Some(url) = &r.source else {
        if need_source {
            ctx.err(path, "resource has no source");
        } else if hash.is_some() || gzip {
            ctx.err(path, "compression or verification given without a source");
        }
        return None;
    };
    if let Err(e) = check::url(url) {
        ctx.err(&format!("{path}.source"), e);
        return None;
    }
    if !headers.is_empty() && url.starts_with("data:") {
        ctx.err(
            &format!("{path}.httpHeaders"),
            "HTTP headers given for a data: URL",
        );
        ok = false;
    }
    ok.then(|| {
        Source::Remote(Resource {
            url: url.clone(),
            gzip,
            hash,
            headers,
        })
    })
}

fn mode(m: Option<i64>, path: &dyn Display, ctx: &mut Ctx) -> Option<u32> {
    let m = m?;
    match u32::try_from(m) {
        Ok(v) if v <= 0o7777 => Some(v),
        _ => {
            ctx.err(
                path,
                format!("mode {m} (octal {m:o}) is not between 0 and 0o7777"),
            );
            None
        }
    }
}

fn owner_user(u: &Option<ign::NodeUser>, path: &dyn Display, ctx: &mut Ctx) -> Option<Owner> {
    let u = u.as_ref()?;
    owner(u.id, u.name.as_ref(), path, ctx)
}

fn owner_group(g: &Option<ign::NodeGroup>, path: &dyn Display, ctx: &mut Ctx) -> Option<Owner> {
    let g = g.as_ref()?;
    owner(g.id, g.name.as_ref(), path, ctx)
}

fn owner(
    id: Option<i64>,
    name: Option<&String>,
    path: &dyn Display,
    ctx: &mut Ctx,
) -> Option<Owner> {
    match (id, name) {
        (Some(_), Some(n)) if !n.is_empty() => {
            ctx.err(path, "both id and name are set; give only one");
            None
        }
        (Some(i), _) => match u32::try_from(i) {
            Ok(v) if v != u32::MAX => Some(Owner::Id(v)),
            _ => {
                ctx.err(&format!("{path}.id"), format!("id {i} is out of range"));
                None
            }
        },
        (None, Some(n)) if !n.is_empty() => Some(Owner::Name(n.clone())),
        _ => None,
    }
}

fn node_path(p: &str, path: &dyn Display, ctx: &mut Ctx) -> Option<String> {
    match check::abs_path(p) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.err(&format!("{path}.path"), e);
            None
        }
    }
}

fn storage(st: &ign::Storage, plan: &mut Plan, ctx: &mut Ctx) {
    if let Some(l) = st.luks.as_ref().filter(|l| !l.is_empty()) {
        let _ = l;
        ctx.err("storage.luks", "storage.luks is not supported by Basalt");
    }
    if st.raid.as_ref().is_some_and(|r| !r.is_empty()) {
        ctx.err("storage.raid", "storage.raid is not supported by Basalt");
    }
    // Every node path, to detect duplicates across files, directories and
    // links, with where it is: `storage.<section>[<index>]`.
    let mut nodes: BTreeMap<String, (&'static str, usize)> = BTreeMap::new();
    let mut claim = |p: &str, at: (&'static str, usize), ctx: &mut Ctx| {
        if let Some((s, j)) = nodes.get(p) {
            ctx.err(
                format_args!("storage.{}[{}].path", at.0, at.1),
                format!("duplicate path {p:?} (also at storage.{s}[{j}])"),
            );
        } else {
            nodes.insert(p.to_string(), at);
        }
    };
    for (i, f) in st.files.iter().flatten().enumerate() {
        let cp = format_args!("storage.files[{i}]");
        let Some(path) = node_path(&f.path, &cp, ctx) else {
            continue;
        };
        claim(&path, ("files", i), ctx);
        let contents = f
            .contents
            .as_ref()
            .and_then(|r| resource(r, &format_args!("{cp}.contents"), false, ctx));
        let append: Vec<Source> = f
            .append
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(j, r)| resource(r, &format_args!("{cp}.append[{j}]"), true, ctx))
            .collect();
        let overwrite = f.overwrite.unwrap_or(false);
        if overwrite
            && f.contents
                .as_ref()
                .and_then(|c| c.source.as_ref())
                .is_none()
        {
            ctx.err(
                format_args!("{cp}.overwrite"),
                "overwrite is true but contents.source is not set",
            );
        }
        plan.files.push(FilePlan {
            path,
            contents,
            append,
            mode: mode(f.mode, &format_args!("{cp}.mode"), ctx),
            user: owner_user(&f.user, &format_args!("{cp}.user"), ctx),
            group: owner_group(&f.group, &format_args!("{cp}.group"), ctx),
            overwrite,
        });
    }
    for (i, d) in st.directories.iter().flatten().enumerate() {
        let cp = format_args!("storage.directories[{i}]");
        let Some(path) = node_path(&d.path, &cp, ctx) else {
            continue;
        };
        claim(&path, ("directories", i), ctx);
        plan.directories.push(DirPlan {
            path,
            mode: mode(d.mode, &format_args!("{cp}.mode"), ctx),
            user: owner_user(&d.user, &format_args!("{cp}.user"), ctx),
            group: owner_group(&d.group, &format_args!("{cp}.group"), ctx),
            overwrite: d.overwrite.unwrap_or(false),
        });
    }
    for (i, l) in st.links.iter().flatten().enumerate() {
        let cp = format_args!("storage.links[{i}]");
        let Some(path) = node_path(&l.path, &cp, ctx) else {
            continue;
        };
        claim(&path, ("links", i), ctx);
        let hard = l.hard.unwrap_or(false);
        let target = match l.target.as_deref() {
            None | Some("") => {
                ctx.err(format_args!("{cp}.target"), "link has no target");
                continue;
            }
            Some(t) if hard => match check::abs_path(t) {
                Ok(t) => t,
                Err(e) => {
                    ctx.err(
                        format_args!("{cp}.target"),
                        format!("hard link target: {e}"),
                    );
                    continue;
                }
            },
            Some(t) => t.to_string(),
        };
        plan.links.push(LinkPlan {
            path,
            target,
            hard,
            user: owner_user(&l.user, &format_args!("{cp}.user"), ctx),
            group: owner_group(&l.group, &format_args!("{cp}.group"), ctx),
            overwrite: l.overwrite.unwrap_or(false),
        });
    }
    // Ignition refuses nodes whose parent is a symlink the config creates.
    // Symbolic link path → its positions in `plan.links` order (a path may
    // repeat); each node looks up its own ancestors.
    let mut symlinks: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, l) in plan.links.iter().filter(|l| !l.hard).enumerate() {
        symlinks.entry(l.path.as_str()).or_default().push(k);
    }
    if !symlinks.is_empty() {
        for (p, (s, j)) in &nodes {
            // Every proper ancestor `lp` of `p`: `p` is `lp` + "/" + more.
            let mut through: Vec<(usize, &str)> = p
                .match_indices('/')
                .filter(|(at, _)| *at > 0)
                .flat_map(|(at, _)| {
                    let lp = &p[..at];
                    symlinks
                        .get(lp)
                        .into_iter()
                        .flatten()
                        .map(move |k| (*k, lp))
                })
                .collect();
            // Report in the links' order.
            through.sort_by_key(|(k, _)| *k);
            for (_, lp) in through {
                ctx.err(
                    format_args!("storage.{s}[{j}].path"),
                    format!("path {p:?} goes through the symlink {lp:?} that this config creates"),
                );
            }
        }
    }
    for (i, fs) in st.filesystems.iter().flatten().enumerate() {
        if let Some(f) = filesystem(fs, &format!("storage.filesystems[{i}]"), ctx) {
            plan.filesystems.push(f);
        }
    }
    for (i, d) in st.disks.iter().flatten().enumerate() {
        if let Some(d) = disk(d, &format!("storage.disks[{i}]"), ctx) {
            plan.disks.push(d);
        }
    }
}

fn filesystem(fs: &ign::Filesystem, cp: &str, ctx: &mut Ctx) -> Option<FsPlan> {
    let device = match check::abs_path(&fs.device) {
        Ok(d) => d,
        Err(e) => {
            ctx.err(&format!("{cp}.device"), format!("device: {e}"));
            return None;
        }
    };
    let format = match fs.format.as_deref() {
        None | Some("") | Some("none") => None,
        Some("ext4") => Some(FsFormat::Ext4),
        Some("xfs") => Some(FsFormat::Xfs),
        Some("vfat") => Some(FsFormat::Vfat),
        Some("swap") => Some(FsFormat::Swap),
        Some("btrfs") => {
            ctx.err(
                &format!("{cp}.format"),
                "format \"btrfs\" is not supported by Basalt (ext4, xfs, vfat, swap)",
            );
            return None;
        }
        Some(o) => {
            ctx.err(
                &format!("{cp}.format"),
                format!("unknown format {o:?} (ext4, xfs, vfat, swap)"),
            );
            return None;
        }
    };
    let path = match fs.path.as_deref() {
        None | Some("") => None,
        Some(p) => match check::abs_path(p) {
            Ok(p) => Some(p),
            Err(e) => {
                ctx.err(&format!("{cp}.path"), e);
                return None;
            }
        },
    };
    if path.is_some() && format.is_none() {
        ctx.err(
            &format!("{cp}.format"),
            "path is set but format is not; a mount needs a filesystem type",
        );
        return None;
    }
    if path.is_some() && format == Some(FsFormat::Swap) {
        ctx.err(&format!("{cp}.path"), "swap cannot have a mount path");
        return None;
    }
    if let (Some(l), Some(f)) = (&fs.label, &format) {
        let max = match f {
            FsFormat::Ext4 => 16,
            FsFormat::Xfs => 12,
            FsFormat::Vfat => 11,
            _ => 15,
        };
        if l.len() > max {
            ctx.err(
                &format!("{cp}.label"),
                format!(
                    "label {l:?} is longer than {max} bytes, the limit for {}",
                    f.name()
                ),
            );
            return None;
        }
    }
    if let Some(u) = &fs.uuid {
        if let Err(e) = check::uuid(u) {
            ctx.err(&format!("{cp}.uuid"), e);
            return None;
        }
    }
    Some(FsPlan {
        device,
        format,
        mount_type: None,
        wipe: fs.wipe_filesystem.unwrap_or(false),
        label: fs.label.clone(),
        uuid: fs.uuid.clone(),
        options: fs.options.iter().flatten().cloned().collect(),
        mount_options: fs.mount_options.iter().flatten().cloned().collect(),
        path,
    })
}

fn disk(d: &ign::Disk, cp: &str, ctx: &mut Ctx) -> Option<DiskPlan> {
    let device = match check::abs_path(&d.device) {
        Ok(p) => p,
        Err(e) => {
            ctx.err(&format!("{cp}.device"), format!("device: {e}"));
            return None;
        }
    };
    let mut parts = Vec::new();
    let mut numbers = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for (i, p) in d.partitions.iter().flatten().enumerate() {
        let pp = format!("{cp}.partitions[{i}]");
        let number = match u32::try_from(p.number.unwrap_or(0)) {
            Ok(n) if n <= 128 => n,
            _ => {
                ctx.err(
                    &format!("{pp}.number"),
                    "partition number must be between 0 and 128",
                );
                continue;
            }
        };
        if number != 0 && !numbers.insert(number) {
            ctx.err(
                &format!("{pp}.number"),
                format!("duplicate partition number {number}"),
            );
        }
        if let Some(l) = &p.label {
            if l.chars().count() > 36 {
                ctx.err(
                    &format!("{pp}.label"),
                    "GPT partition labels are at most 36 characters",
                );
            }
            if !labels.insert(l.clone()) {
                ctx.err(
                    &format!("{pp}.label"),
                    format!("duplicate partition label {l:?}"),
                );
            }
        }
        for (g, key) in [(&p.type_guid, "typeGuid"), (&p.guid, "guid")] {
            if let Some(g) = g {
                if let Err(e) = check::uuid(g) {
                    ctx.err(&format!("{pp}.{key}"), e);
                }
            }
        }
        let size = non_negative(p.size_mib, &format!("{pp}.sizeMiB"), ctx);
        let start = non_negative(p.start_mib, &format!("{pp}.startMiB"), ctx);
        if p.resize == Some(true) {
            ctx.err(
                &format!("{pp}.resize"),
                "resizing existing partitions is not supported by Basalt",
            );
        }
        parts.push(PartitionPlan {
            number,
            label: p.label.clone(),
            size_mib: size,
            start_mib: start,
            type_guid: p.type_guid.clone(),
            guid: p.guid.clone(),
            wipe_entry: p.wipe_partition_entry.unwrap_or(false),
            should_exist: p.should_exist.unwrap_or(true),
        });
    }
    Some(DiskPlan {
        device,
        wipe_table: d.wipe_table.unwrap_or(false),
        partitions: parts,
    })
}

fn unit(u: &ign::Unit, cp: &str, ctx: &mut Ctx) -> Option<UnitPlan> {
    if let Err(e) = check::unit_name(&u.name) {
        ctx.err(&format!("{cp}.name"), e);
        return None;
    }
    if let Some(c) = &u.contents {
        if let Err(e) = check::unit_syntax(c) {
            ctx.err(&format!("{cp}.contents"), e);
        }
    }
    let mut dropins = Vec::new();
    let mut seen = BTreeSet::new();
    for (j, d) in u.dropins.iter().flatten().enumerate() {
        let dp = format!("{cp}.dropins[{j}]");
        if let Err(e) = check::dropin_name(&d.name) {
            ctx.err(&format!("{dp}.name"), e);
            continue;
        }
        if !seen.insert(d.name.clone()) {
            ctx.err(
                &format!("{dp}.name"),
                format!("duplicate drop-in {:?}", d.name),
            );
        }
        let contents = d.contents.clone().unwrap_or_default();
        if let Err(e) = check::unit_syntax(&contents) {
            ctx.err(&format!("{dp}.contents"), e);
        }
        dropins.push(DropinPlan {
            name: d.name.clone(),
            contents,
        });
    }
    let kind = if check::is_network_unit(&u.name) {
        UnitKind::Networkd
    } else {
        UnitKind::Systemd
    };
    if kind == UnitKind::Networkd && (u.enabled.is_some() || u.mask == Some(true)) {
        ctx.err(cp, "networkd files cannot be enabled or masked");
    }
    Some(UnitPlan {
        name: u.name.clone(),
        kind,
        contents: u.contents.clone(),
        enabled: u.enabled,
        mask: u.mask.unwrap_or(false),
        dropins,
    })
}

fn passwd(pw: &ign::Passwd, plan: &mut Plan, ctx: &mut Ctx) {
    let mut names = BTreeSet::new();
    for (i, g) in pw.groups.iter().flatten().enumerate() {
        let cp = format!("passwd.groups[{i}]");
        if let Err(e) = check::account_name("group", &g.name) {
            ctx.err(&format!("{cp}.name"), e);
            continue;
        }
        if !names.insert(g.name.clone()) {
            ctx.err(
                &format!("{cp}.name"),
                format!("duplicate group {:?}", g.name),
            );
        }
        if g.should_exist == Some(false) {
            ctx.err(
                &format!("{cp}.shouldExist"),
                "removing groups (shouldExist: false) is not supported by Basalt",
            );
        }
        if let Some(h) = &g.password_hash {
            if let Err(e) = check::passwd_field("password hash", h) {
                ctx.err(&format!("{cp}.passwordHash"), e);
            }
        }
        let gid = g.gid.and_then(|v| id(v, &format!("{cp}.gid"), ctx));
        plan.groups.push(GroupPlan {
            name: g.name.clone(),
            gid,
            password_hash: g.password_hash.clone(),
            system: g.system.unwrap_or(false),
        });
    }
    let mut unames = BTreeSet::new();
    for (i, u) in pw.users.iter().flatten().enumerate() {
        let cp = format!("passwd.users[{i}]");
        if let Err(e) = check::account_name("user", &u.name) {
            ctx.err(&format!("{cp}.name"), e);
            continue;
        }
        if !unames.insert(u.name.clone()) {
            ctx.err(
                &format!("{cp}.name"),
                format!("duplicate user {:?}", u.name),
            );
        }
        if u.no_user_group == Some(true) {
            ctx.err(
                &format!("{cp}.noUserGroup"),
                "noUserGroup is not supported by Basalt (set primaryGroup instead)",
            );
        }
        if u.should_exist == Some(false) {
            ctx.err(
                &format!("{cp}.shouldExist"),
                "removing users (shouldExist: false) is not supported by Basalt",
            );
        }
        for (v, key, what) in [
            (&u.password_hash, "passwordHash", "password hash"),
            (&u.gecos, "gecos", "gecos"),
            (&u.primary_group, "primaryGroup", "primary group"),
        ] {
            if let Some(v) = v {
                if let Err(e) = check::passwd_field(what, v) {
                    ctx.err(&format!("{cp}.{key}"), e);
                }
            }
        }
        for (v, key) in [(&u.home_dir, "homeDir"), (&u.shell, "shell")] {
            if let Some(v) = v {
                if let Err(e) = check::abs_path(v).and_then(|_| check::passwd_field(key, v)) {
                    ctx.err(&format!("{cp}.{key}"), e);
                }
            }
        }
        for (j, k) in u.ssh_authorized_keys.iter().flatten().enumerate() {
            if k.contains('\n') || k.trim().is_empty() {
                ctx.err(
                    &format!("{cp}.sshAuthorizedKeys[{j}]"),
                    "SSH key is empty or spans several lines",
                );
            }
        }
        for (j, g) in u.groups.iter().flatten().enumerate() {
            if let Err(e) = check::account_name("group", g) {
                ctx.err(&format!("{cp}.groups[{j}]"), e);
            }
        }
        let uid = u.uid.and_then(|v| id(v, &format!("{cp}.uid"), ctx));
        plan.users.push(UserPlan {
            name: u.name.clone(),
            uid,
            password_hash: u.password_hash.clone(),
            ssh_keys: u.ssh_authorized_keys.iter().flatten().cloned().collect(),
            groups: u.groups.iter().flatten().cloned().collect(),
            primary_group: u.primary_group.clone(),
            home_dir: u.home_dir.as_deref().and_then(|h| check::abs_path(h).ok()),
            no_create_home: u.no_create_home.unwrap_or(false),
            shell: u.shell.clone(),
            system: u.system.unwrap_or(false),
            gecos: u.gecos.clone(),
        });
    }
}

fn id(v: i64, path: &str, ctx: &mut Ctx) -> Option<u32> {
    match u32::try_from(v) {
        Ok(x) if x < 65534 || (x > 65534 && x != u32::MAX) => Some(x),
        _ => {
            ctx.err(
                path,
                format!("id {v} is out of range or reserved (65534 is nobody)"),
            );
            None
        }
    }
}
