//! cloud-config keys → plan entries.

use super::yaml::{Kind, Node};
use super::{Ctx, join};
use crate::check;
use crate::intent;
use crate::plan::*;
use base64::Engine;
use std::collections::HashSet;
use std::io::Read;

/// The default user that top-level `ssh_authorized_keys` belong to.
pub const DEFAULT_USER: &str = "core";

/// coreos-cloudinit features Basalt does not ship: rejected, never ignored.
const UNSUPPORTED_COREOS: &[&str] = &["etcd", "fleet", "flannel", "locksmith", "oem"];

pub(crate) fn top(entries: &[(Node, Node)], plan: &mut Plan, ctx: &mut Ctx) {
    let mut hostname: Option<String> = None;
    let mut hosts: Option<&Node> = None;
    let mut top_keys: Vec<String> = Vec::new();
    let mut users: Vec<UserPlan> = Vec::new();
    for (key, kn, v) in ctx.entries(entries, "") {
        match key.as_str() {
            "hostname" => {
                if let Some(h) = ctx.string(v, "hostname") {
                    if valid_hostname(&h) {
                        intent::hostname(plan, &h);
                        hostname = Some(h);
                    } else {
                        ctx.err(
                            v,
                            "hostname",
                            format!("hostname {h:?} is not a valid host name"),
                        );
                    }
                }
            }
            "ssh_authorized_keys" => top_keys = keys_list(v, "ssh_authorized_keys", ctx),
            "users" => users = users_list(v, ctx),
            "write_files" => write_files(v, plan, ctx),
            "manage_etc_hosts" => hosts = Some(v),
            "coreos" => coreos(v, plan, ctx),
            "runcmd" => {
                if let Some(s) = commands(v, "runcmd", ctx) {
                    intent::firstboot_script(plan, 20, "runcmd", s.into_bytes());
                }
            }
            "bootcmd" => {
                if let Some(s) = commands(v, "bootcmd", ctx) {
                    intent::bootcmd(plan, s);
                }
            }
            "mounts" => mounts(v, plan, ctx),
            _ => ctx.warn(kn, &key, format!("unknown key {key:?}; it is ignored")),
        }
    }
    if let Some(v) = hosts {
        let mode = match (v.as_bool(), v.as_str()) {
            (Some(b), _) => b,
            (None, Some("localhost")) => true,
            _ => {
                ctx.err(
                    v,
                    "manage_etc_hosts",
                    "manage_etc_hosts must be \"localhost\" or a boolean",
                );
                false
            }
        };
        if mode {
            match &hostname {
                Some(h) => intent::etc_hosts(plan, h),
                None => ctx.err(
                    v,
                    "manage_etc_hosts",
                    "manage_etc_hosts needs `hostname` in the same config (the provisioner runs before the host name is known)",
                ),
            }
        }
    }
    if !top_keys.is_empty() {
        match users.iter_mut().find(|u| u.name == DEFAULT_USER) {
            Some(u) => {
                let mut keys = top_keys;
                keys.extend(std::mem::take(&mut u.ssh_keys));
                u.ssh_keys = keys;
            }
            None => users.insert(
                0,
                UserPlan {
                    name: DEFAULT_USER.into(),
                    ssh_keys: top_keys,
                    ..Default::default()
                },
            ),
        }
    }
    plan.users = users;
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn keys_list(v: &Node, path: &str, ctx: &mut Ctx) -> Vec<String> {
    let keys = ctx.strings(v, path, false);
    for k in &keys {
        if k.contains('\n') || k.trim().is_empty() {
            ctx.err(v, path, "SSH key is empty or spans several lines");
        }
    }
    keys.into_iter().map(|k| k.trim().to_string()).collect()
}

fn users_list(v: &Node, ctx: &mut Ctx) -> Vec<UserPlan> {
    let Some(items) = ctx.seq(v, "users") else {
        return Vec::new();
    };
    let mut out: Vec<UserPlan> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("users[{i}]");
        let Some(m) = ctx.map(it, &p) else { continue };
        let mut u = UserPlan::default();
        let mut have_name = false;
        for (key, kn, v) in ctx.entries(m, &p) {
            let kp = join(&p, &key);
            match key.as_str() {
                "name" => {
                    if let Some(n) = ctx.string(v, &kp) {
                        match check::account_name("user", &n) {
                            Ok(()) => {
                                u.name = n;
                                have_name = true;
                            }
                            Err(e) => ctx.err(v, &kp, e),
                        }
                    }
                }
                "passwd" => u.password_hash = field(v, &kp, "password hash", ctx),
                "gecos" => u.gecos = field(v, &kp, "gecos", ctx),
                "primary_group" => u.primary_group = field(v, &kp, "primary group", ctx),
                "groups" => {
                    u.groups = ctx.strings(v, &kp, true);
                    for g in &u.groups {
                        if let Err(e) = check::account_name("group", g) {
                            ctx.err(v, &kp, e);
                        }
                    }
                }
                "ssh_authorized_keys" => u.ssh_keys = keys_list(v, &kp, ctx),
                "homedir" => u.home_dir = abs(v, &kp, ctx),
                "shell" => u.shell = abs(v, &kp, ctx),
                "system" => u.system = ctx.boolean(v, &kp).unwrap_or(false),
                "no_create_home" => u.no_create_home = ctx.boolean(v, &kp).unwrap_or(false),
                "uid" => {
                    if let Some(s) = ctx.string(v, &kp) {
                        match s.parse::<u32>() {
                            Ok(n) if n != 65534 && n != u32::MAX => u.uid = Some(n),
                            _ => ctx.err(v, &kp, format!("uid {s:?} is not a valid user id")),
                        }
                    }
                }
                "no_user_group"
                | "lock_passwd"
                | "no_log_init"
                | "ssh_import_github"
                | "ssh_import_github_users"
                | "ssh_import_url"
                | "sudo" => ctx.err(kn, &kp, format!("{key} is not supported by Basalt")),
                _ => ctx.warn(
                    kn,
                    &kp,
                    format!("unknown key {key:?} in a user; it is ignored"),
                ),
            }
        }
        if !have_name {
            ctx.err(it, &p, "user has no name");
            continue;
        }
        if !names.insert(u.name.clone()) {
            ctx.err(it, &p, format!("duplicate user {:?}", u.name));
            continue;
        }
        out.push(u);
    }
    out
}

fn field(v: &Node, path: &str, what: &str, ctx: &mut Ctx) -> Option<String> {
    let s = ctx.string(v, path)?;
    match check::passwd_field(what, &s) {
        Ok(()) => Some(s),
        Err(e) => {
            ctx.err(v, path, e);
            None
        }
    }
}

fn abs(v: &Node, path: &str, ctx: &mut Ctx) -> Option<String> {
    let s = ctx.string(v, path)?;
    match check::abs_path(&s).and_then(|p| check::passwd_field(path, &p).map(|_| p)) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.err(v, path, e);
            None
        }
    }
}

/// Octal permissions as coreos-cloudinit reads them ("0644", 0644, "644").
fn permissions(v: &Node, path: &str, ctx: &mut Ctx) -> Option<u32> {
    let s = ctx.string(v, path)?;
    let digits = s.strip_prefix("0o").unwrap_or(&s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Some(m),
        _ => {
            ctx.err(
                v,
                path,
                format!("permissions {s:?} is not an octal mode up to 07777"),
            );
            None
        }
    }
}

fn write_files(v: &Node, plan: &mut Plan, ctx: &mut Ctx) {
    let Some(items) = ctx.seq(v, "write_files") else {
        return;
    };
    // Paths already in the plan (from keys handled earlier, then these files).
    let mut taken: HashSet<String> = plan.files.iter().map(|f| f.path.clone()).collect();
    for (i, it) in items.iter().enumerate() {
        let p = format!("write_files[{i}]");
        let Some(m) = ctx.map(it, &p) else { continue };
        let (mut path, mut content, mut mode, mut owner, mut encoding) =
            (None, None, None, None, None);
        let mut content_node = it;
        for (key, kn, v) in ctx.entries(m, &p) {
            let kp = join(&p, &key);
            match key.as_str() {
                "path" => {
                    if let Some(s) = ctx.string(v, &kp) {
                        match check::abs_path(&s) {
                            Ok(p) => path = Some(p),
                            Err(e) => ctx.err(v, &kp, e),
                        }
                    }
                }
                "content" => {
                    content_node = v;
                    content = if v.is_null() {
                        Some(String::new())
                    } else {
                        ctx.string(v, &kp)
                    };
                }
                "permissions" => mode = permissions(v, &kp, ctx),
                "owner" => owner = ctx.string(v, &kp).map(|s| (s, v, kp.clone())),
                "encoding" => encoding = ctx.string(v, &kp).map(|s| (s, v, kp.clone())),
                "append" | "defer" => ctx.err(kn, &kp, format!("{key} is not supported by Basalt")),
                _ => ctx.warn(
                    kn,
                    &kp,
                    format!("unknown key {key:?} in write_files; it is ignored"),
                ),
            }
        }
        let Some(path) = path else {
            ctx.err(it, &p, "write_files entry has no path");
            continue;
        };
        if taken.contains(&path) {
            ctx.err(it, &join(&p, "path"), format!("duplicate path {path:?}"));
            continue;
        }
        let raw = content.unwrap_or_default().into_bytes();
        let bytes = match &encoding {
            None => Some(raw),
            Some((e, en, ep)) => match decode(e, &raw) {
                Ok(b) => Some(b),
                Err(msg) => {
                    let n = if msg.starts_with("unknown") {
                        *en
                    } else {
                        content_node
                    };
                    let cp = join(&p, "content");
                    ctx.err(n, if msg.starts_with("unknown") { ep } else { &cp }, msg);
                    None
                }
            },
        };
        let (user, group) = match &owner {
            None => (Some(Owner::Id(0)), Some(Owner::Id(0))),
            Some((s, on, op)) => {
                let (u, g) = s.split_once(':').unwrap_or((s.as_str(), ""));
                let mk = |x: &str| match x.parse::<u32>() {
                    Ok(n) => Owner::Id(n),
                    Err(_) => Owner::Name(x.to_string()),
                };
                if u.is_empty()
                    || u.contains(char::is_whitespace)
                    || g.contains(char::is_whitespace)
                {
                    ctx.err(
                        on,
                        op,
                        format!("owner {s:?} must be \"user\" or \"user:group\""),
                    );
                    continue;
                }
                // "user" alone leaves the group root, as `chown user` did.
                let group = if g.is_empty() { Owner::Id(0) } else { mk(g) };
                (Some(mk(u)), Some(group))
            }
        };
        let Some(bytes) = bytes else { continue };
        taken.insert(path.clone());
        plan.files.push(FilePlan {
            path,
            contents: Some(Source::Inline(bytes)),
            append: Vec::new(),
            mode: Some(mode.unwrap_or(0o644)),
            user,
            group,
            overwrite: true,
        });
    }
}

fn decode(enc: &str, raw: &[u8]) -> Result<Vec<u8>, String> {
    let b64 = |d: &[u8]| {
        let clean: Vec<u8> = d
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| format!("content is not valid base64: {e}"))
    };
    let gunzip = |d: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(d)
            .read_to_end(&mut out)
            .map(|_| out)
            .map_err(|e| format!("content is not valid gzip: {e}"))
    };
    match enc {
        "b64" | "base64" => b64(raw),
        "gzip" | "gz" => gunzip(raw),
        "gz+b64" | "gzip+base64" | "gz+base64" | "gzip+b64" => gunzip(&b64(raw)?),
        other => Err(format!(
            "unknown encoding {other:?} (b64, base64, gzip, gz, gz+b64)"
        )),
    }
}

/// runcmd/bootcmd: strings run by the shell, lists are argv.
fn commands(v: &Node, path: &str, ctx: &mut Ctx) -> Option<String> {
    let items = ctx.seq(v, path)?;
    let mut s = String::from("#!/bin/sh\nset -e\n");
    for (i, it) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        match &it.kind {
            Kind::Seq(_) => {
                let argv = ctx.strings(it, &ip, false);
                if argv.is_empty() {
                    ctx.err(it, &ip, "command list is empty");
                    continue;
                }
                let words: Vec<String> = argv.iter().map(|a| intent::sh_quote(a)).collect();
                s.push_str(&words.join(" "));
            }
            _ => {
                let Some(c) = ctx.string(it, &ip) else {
                    continue;
                };
                s.push_str(&c);
            }
        }
        s.push('\n');
    }
    Some(s)
}

fn mounts(v: &Node, plan: &mut Plan, ctx: &mut Ctx) {
    let Some(items) = ctx.seq(v, "mounts") else {
        return;
    };
    for (i, it) in items.iter().enumerate() {
        let p = format!("mounts[{i}]");
        let f = ctx.strings(it, &p, false);
        if f.len() < 2 || f.len() > 6 {
            ctx.err(it, &p, "a mounts entry is [device, mountpoint, type, options, dump, pass] with at least device and mountpoint");
            continue;
        }
        let device = if let Some(l) = f[0].strip_prefix("LABEL=") {
            format!("/dev/disk/by-label/{l}")
        } else if let Some(u) = f[0].strip_prefix("UUID=") {
            format!("/dev/disk/by-uuid/{u}")
        } else if f[0].starts_with('/') {
            f[0].clone()
        } else {
            format!("/dev/{}", f[0])
        };
        let device = match check::abs_path(&device) {
            Ok(d) => d,
            Err(e) => {
                ctx.err(it, &p, format!("device: {e}"));
                continue;
            }
        };
        let fstype = f.get(2).cloned().unwrap_or_else(|| "auto".into());
        let swap = fstype == "swap" || f[1] == "swap" || f[1] == "none";
        let path = if swap {
            None
        } else {
            match check::abs_path(&f[1]) {
                Ok(p) => Some(p),
                Err(e) => {
                    ctx.err(it, &p, format!("mount point: {e}"));
                    continue;
                }
            }
        };
        let opts: Vec<String> = f
            .get(3)
            .map(|o| {
                o.split(',')
                    .map(str::to_string)
                    .filter(|o| o != "defaults")
                    .collect()
            })
            .unwrap_or_else(|| vec!["nofail".into()]);
        plan.filesystems.push(FsPlan {
            device,
            format: None,
            mount_type: Some(if swap { "swap".into() } else { fstype }),
            wipe: false,
            label: None,
            uuid: None,
            options: Vec::new(),
            mount_options: opts,
            path,
        });
    }
}

const ETCD2_KEYS: &[&str] = &[
    "name",
    "data-dir",
    "wal-dir",
    "snapshot-count",
    "heartbeat-interval",
    "election-timeout",
    "listen-peer-urls",
    "listen-client-urls",
    "max-snapshots",
    "max-wals",
    "cors",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "advertise-client-urls",
    "discovery",
    "discovery-srv",
    "discovery-fallback",
    "discovery-proxy",
    "strict-reconfig-check",
    "proxy",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
    "ca-file",
    "cert-file",
    "key-file",
    "client-cert-auth",
    "trusted-ca-file",
    "peer-ca-file",
    "peer-cert-file",
    "peer-key-file",
    "peer-client-cert-auth",
    "peer-trusted-ca-file",
    "debug",
    "log-package-levels",
    "force-new-cluster",
    "auto-tls",
    "peer-auto-tls",
    "quota-backend-bytes",
];

fn coreos(v: &Node, plan: &mut Plan, ctx: &mut Ctx) {
    let Some(m) = ctx.map(v, "coreos") else {
        return;
    };
    for (key, kn, v) in ctx.entries(m, "coreos") {
        let kp = join("coreos", &key);
        match key.as_str() {
            "units" => super::units::units(v, plan, ctx),
            "etcd2" => {
                let Some(m) = ctx.map(v, &kp) else { continue };
                let mut vars = Vec::new();
                for (k, kn2, val) in ctx.entries(m, &kp) {
                    let ep = join(&kp, &k);
                    let norm = k.replace('_', "-");
                    if !ETCD2_KEYS.contains(&norm.as_str()) {
                        ctx.warn(
                            kn2,
                            &ep,
                            format!(
                                "unknown etcd2 key {k:?}; written as {} anyway",
                                intent::etcd_var(&norm)
                            ),
                        );
                    }
                    let Some(s) = ctx.string(val, &ep) else {
                        continue;
                    };
                    if s.contains('\n') {
                        ctx.err(val, &ep, "etcd2 values must be on one line");
                        continue;
                    }
                    vars.push((norm, s));
                }
                intent::etcd(plan, &vars);
            }
            "update" => {
                let Some(m) = ctx.map(v, &kp) else { continue };
                let mut vars = Vec::new();
                for (k, kn2, val) in ctx.entries(m, &kp) {
                    let ep = join(&kp, &k);
                    let var = match k.as_str() {
                        "reboot_strategy" | "reboot-strategy" => "REBOOT_STRATEGY",
                        "group" => "GROUP",
                        "server" => "SERVER",
                        _ => {
                            ctx.warn(
                                kn2,
                                &ep,
                                format!("unknown key {k:?} in coreos.update; it is ignored"),
                            );
                            continue;
                        }
                    };
                    let Some(s) = ctx.string(val, &ep) else {
                        continue;
                    };
                    if var == "REBOOT_STRATEGY"
                        && !["reboot", "etcd-lock", "best-effort", "off"].contains(&s.as_str())
                    {
                        ctx.err(val, &ep, format!("reboot_strategy {s:?} is not one of reboot, etcd-lock, best-effort, off"));
                        continue;
                    }
                    if var == "SERVER" && check::url(&s).is_err() {
                        ctx.err(
                            val,
                            &ep,
                            format!("update server {s:?} is not an http(s) URL"),
                        );
                        continue;
                    }
                    if s.contains('\n') {
                        ctx.err(val, &ep, "values must be on one line");
                        continue;
                    }
                    vars.push((var.to_string(), s));
                }
                vars.sort();
                intent::update_conf(plan, &vars);
            }
            k if UNSUPPORTED_COREOS.contains(&k) => {
                ctx.err(kn, &kp, format!("coreos.{k} is not supported by Basalt"))
            }
            _ => ctx.warn(
                kn,
                &kp,
                format!("unknown key {key:?} in coreos; it is ignored"),
            ),
        }
    }
}
