//! Intents that have no Ignition section of their own (hostname, /etc/hosts,
//! etcd settings, update settings, first-boot scripts) lowered into plain plan
//! entries: files and units. An Ignition user writes the very same files, so
//! both formats end in the same plan for the same intent.

use crate::plan::*;

/// Directory of first-boot scripts and their stamps.
pub const FIRSTBOOT_DIR: &str = "/var/lib/basalt/firstboot";
/// Unit that runs the once-only scripts after the network is online.
pub const FIRSTBOOT_UNIT: &str = "basalt-firstboot.service";
/// Unit that runs cloud-config `bootcmd` early on every boot.
pub const BOOTCMD_UNIT: &str = "basalt-bootcmd.service";
/// Update agent settings (read by the update agent; see README).
pub const UPDATE_CONF: &str = "/etc/basalt/update.conf";
/// Read by Debian's etcd unit (`EnvironmentFile=-/etc/default/%p`).
pub const ETCD_DEFAULTS: &str = "/etc/default/etcd";

pub fn text_file(path: &str, contents: String, mode: u32) -> FilePlan {
    FilePlan {
        path: path.to_string(),
        contents: Some(Source::Inline(contents.into_bytes())),
        append: Vec::new(),
        mode: Some(mode),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
        overwrite: true,
    }
}

pub fn hostname(plan: &mut Plan, name: &str) {
    plan.files
        .push(text_file("/etc/hostname", format!("{name}\n"), 0o644));
}

/// /etc/hosts as coreos-cloudinit's `manage_etc_hosts: localhost` wrote it.
pub fn etc_hosts(plan: &mut Plan, hostname: &str) {
    let short = hostname.split('.').next().unwrap_or(hostname);
    let names = if short == hostname {
        hostname.to_string()
    } else {
        format!("{hostname} {short}")
    };
    plan.files.push(text_file(
        "/etc/hosts",
        format!(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 {names}\n"
        ),
        0o644,
    ));
}

/// `KEY="value"` lines, shell- and systemd-EnvironmentFile-safe.
pub fn env_file(vars: &[(String, String)]) -> String {
    let mut s = String::from("# Written by basalt-provision.\n");
    for (k, v) in vars {
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        s.push_str(&format!("{k}=\"{escaped}\"\n"));
    }
    s
}

/// etcd settings: `advertise-client-urls` → `ETCD_ADVERTISE_CLIENT_URLS`.
pub fn etcd(plan: &mut Plan, settings: &[(String, String)]) {
    let vars: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (etcd_var(k), v.clone()))
        .collect();
    plan.files
        .push(text_file(ETCD_DEFAULTS, env_file(&vars), 0o644));
}

pub fn etcd_var(key: &str) -> String {
    format!("ETCD_{}", key.replace(['-', '.'], "_").to_ascii_uppercase())
}

/// Update agent settings. Format: see `provisioner/README.md`.
pub fn update_conf(plan: &mut Plan, vars: &[(String, String)]) {
    plan.files
        .push(text_file(UPDATE_CONF, env_file(vars), 0o644));
}

/// Quote one word for /bin/sh.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%_+=:,./-".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Add a script run once after network-online, in `order` (two digits).
pub fn firstboot_script(plan: &mut Plan, order: u8, name: &str, script: Vec<u8>) {
    plan.files.push(FilePlan {
        path: format!("{FIRSTBOOT_DIR}/late/{order:02}-{name}"),
        contents: Some(Source::Inline(script)),
        append: Vec::new(),
        mode: Some(0o700),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
        overwrite: true,
    });
    if plan.units.iter().any(|u| u.name == FIRSTBOOT_UNIT) {
        return;
    }
    let runner = format!(
        "#!/bin/sh\n# Runs first-boot scripts once, in name order; stops at the first failure.\nset -e\nfor s in {FIRSTBOOT_DIR}/late/*; do\n  [ -f \"$s\" ] || continue\n  echo \"basalt-firstboot: running $s\"\n  \"$s\"\ndone\ntouch {FIRSTBOOT_DIR}/late.done\n"
    );
    plan.files.push(text_file(
        &format!("{FIRSTBOOT_DIR}/run-late"),
        runner,
        0o700,
    ));
    plan.units.push(UnitPlan {
        name: FIRSTBOOT_UNIT.into(),
        kind: UnitKind::Systemd,
        contents: Some(format!(
            "[Unit]\nDescription=Basalt first-boot scripts (user-data, runcmd, unit commands)\nWants=network-online.target\nAfter=network-online.target multi-user.target\nConditionPathExists=!{FIRSTBOOT_DIR}/late.done\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={FIRSTBOOT_DIR}/run-late\n\n[Install]\nWantedBy=multi-user.target\n"
        )),
        enabled: Some(true),
        mask: false,
        dropins: Vec::new(),
    });
}

/// cloud-init `bootcmd`: early, on every boot, before the network.
pub fn bootcmd(plan: &mut Plan, script: String) {
    plan.files.push(text_file(
        &format!("{FIRSTBOOT_DIR}/bootcmd"),
        script,
        0o700,
    ));
    plan.units.push(UnitPlan {
        name: BOOTCMD_UNIT.into(),
        kind: UnitKind::Systemd,
        contents: Some(format!(
            "[Unit]\nDescription=Basalt bootcmd (cloud-config), every boot\nDefaultDependencies=no\nAfter=local-fs.target\nBefore=network-pre.target sysinit.target\nWants=network-pre.target\n\n[Service]\nType=oneshot\nExecStart={FIRSTBOOT_DIR}/bootcmd\n\n[Install]\nWantedBy=sysinit.target\n"
        )),
        enabled: Some(true),
        mask: false,
        dropins: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_vars() {
        for (i, o) in [
            ("abc", "abc"),
            ("a b", "'a b'"),
            ("it's", "'it'\\''s'"),
            ("", "''"),
        ] {
            assert_eq!(sh_quote(i), o);
        }
        assert_eq!(
            etcd_var("advertise-client-urls"),
            "ETCD_ADVERTISE_CLIENT_URLS"
        );
        assert_eq!(
            env_file(&[("A".into(), "x\"y".into())]),
            "# Written by basalt-provision.\nA=\"x\\\"y\"\n"
        );
    }
}
