//! Factory passwd/group/shadow/gshadow and a sysusers.d file, replacing
//! what packages' postinst scripts (adduser, useradd) would have done.
//!
//! The start is base-passwd's /usr/share/base-passwd/{passwd,group}.master
//! when present (the static Debian ids); the profile's groups and users are
//! added, and everything is written sorted by id. A profile entry that names
//! an existing user or group must agree on the id (the profile's group
//! members are added). Shadow entries are locked: `*` for base-passwd's
//! accounts (Debian's convention), `!*` for the profile's (systemd-sysusers'
//! convention); the last-change day is SOURCE_DATE_EPOCH / 86400. The same
//! profile users and groups go to /usr/lib/sysusers.d/basalt.conf with
//! explicit ids, so systemd-sysusers recreates them if /etc is reset.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Tree};

use super::config::{SysGroup, SysUser};

pub const PASSWD_MASTER: &str = "/usr/share/base-passwd/passwd.master";
pub const GROUP_MASTER: &str = "/usr/share/base-passwd/group.master";
pub const SYSUSERS_FILE: &str = "/usr/lib/sysusers.d/basalt.conf";

#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    u: SysUser,
    from_profile: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    g: SysGroup,
    from_profile: bool,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && n.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_field(what: &str, v: &str) -> Result<()> {
    if v.contains([':', '\n', '"']) {
        bail!("{what} {v:?} contains ':', '\"' or a newline");
    }
    Ok(())
}

fn parse_master<T>(
    tree: &Tree,
    path: &str,
    fields: usize,
    f: impl Fn(&[&str]) -> Result<T>,
) -> Result<Vec<T>> {
    let Some(e) = tree.get(path) else {
        return Ok(Vec::new());
    };
    let basalt_tree::Kind::File(c) = &e.kind else {
        bail!("{path} is a {}, not a file", e.kind.name())
    };
    let text = String::from_utf8(c.read_all().with_context(|| format!("reading {path}"))?)
        .with_context(|| format!("{path} is not UTF-8"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(':').collect();
        if parts.len() != fields {
            bail!(
                "{path}:{}: expected {fields} ':'-separated fields, found {}",
                i + 1,
                parts.len()
            );
        }
        out.push(f(&parts).with_context(|| format!("{path}:{}", i + 1))?);
    }
    Ok(out)
}

fn id(s: &str) -> Result<u32> {
    s.parse()
        .with_context(|| format!("{s:?} is not a numeric id"))
}

/// Write the account files into the tree's /etc (they become factory
/// defaults later) and the sysusers.d file.
pub fn apply(tree: &mut Tree, users: &[SysUser], groups: &[SysGroup], epoch: i64) -> Result<()> {
    let mut us: Vec<User> = parse_master(tree, PASSWD_MASTER, 7, |p| {
        Ok(User {
            u: SysUser {
                name: p[0].into(),
                uid: id(p[2])?,
                gid: id(p[3])?,
                gecos: p[4].into(),
                home: p[5].into(),
                shell: p[6].into(),
            },
            from_profile: false,
        })
    })?;
    let mut gs: Vec<Group> = parse_master(tree, GROUP_MASTER, 4, |p| {
        let members = p[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Group {
            g: SysGroup {
                name: p[0].into(),
                gid: id(p[2])?,
                members,
            },
            from_profile: false,
        })
    })?;
    for g in groups {
        if !valid_name(&g.name) {
            bail!(
                "group name {:?} is not a valid system group name ([a-z_][a-z0-9_-]*, at most 32)",
                g.name
            );
        }
        if let Some(old) = gs.iter_mut().find(|o| o.g.name == g.name) {
            if old.g.gid != g.gid {
                bail!(
                    "group {}: the profile gives gid {} but base-passwd has {}",
                    g.name,
                    g.gid,
                    old.g.gid
                );
            }
            for m in &g.members {
                if !old.g.members.contains(m) {
                    old.g.members.push(m.clone());
                }
            }
        } else if let Some(other) = gs.iter().find(|o| o.g.gid == g.gid) {
            bail!(
                "group {}: gid {} is already used by group {}",
                g.name,
                g.gid,
                other.g.name
            );
        } else {
            gs.push(Group {
                g: g.clone(),
                from_profile: true,
            });
        }
    }
    for u in users {
        if !valid_name(&u.name) {
            bail!(
                "user name {:?} is not a valid system user name ([a-z_][a-z0-9_-]*, at most 32)",
                u.name
            );
        }
        for (what, v) in [("gecos", &u.gecos), ("home", &u.home), ("shell", &u.shell)] {
            check_field(&format!("user {} {what}", u.name), v)?;
        }
        if let Some(old) = us.iter().find(|o| o.u.name == u.name) {
            if old.u.uid != u.uid || old.u.gid != u.gid {
                bail!(
                    "user {}: the profile gives {}:{} but base-passwd has {}:{}",
                    u.name,
                    u.uid,
                    u.gid,
                    old.u.uid,
                    old.u.gid
                );
            }
        } else if let Some(other) = us.iter().find(|o| o.u.uid == u.uid) {
            bail!(
                "user {}: uid {} is already used by user {}",
                u.name,
                u.uid,
                other.u.name
            );
        } else {
            us.push(User {
                u: u.clone(),
                from_profile: true,
            });
        }
        if !gs.iter().any(|g| g.g.gid == u.gid) {
            bail!(
                "user {}: primary gid {} is not a group of base-passwd or of the profile",
                u.name,
                u.gid
            );
        }
    }
    for g in &gs {
        for m in &g.g.members {
            if !us.iter().any(|u| &u.u.name == m) {
                bail!(
                    "group {}: member {m:?} is not a user of base-passwd or of the profile",
                    g.g.name
                );
            }
        }
    }
    us.sort_by(|a, b| (a.u.uid, &a.u.name).cmp(&(b.u.uid, &b.u.name)));
    gs.sort_by(|a, b| (a.g.gid, &a.g.name).cmp(&(b.g.gid, &b.g.name)));

    let day = epoch.div_euclid(86_400);
    let lock = |profile: bool| if profile { "!*" } else { "*" };
    let passwd: String = us
        .iter()
        .map(|u| {
            format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                u.u.name, u.u.uid, u.u.gid, u.u.gecos, u.u.home, u.u.shell
            )
        })
        .collect();
    let shadow: String = us
        .iter()
        .map(|u| format!("{}:{}:{day}:0:99999:7:::\n", u.u.name, lock(u.from_profile)))
        .collect();
    let group: String = gs
        .iter()
        .map(|g| format!("{}:x:{}:{}\n", g.g.name, g.g.gid, g.g.members.join(",")))
        .collect();
    let gshadow: String = gs
        .iter()
        .map(|g| {
            format!(
                "{}:{}::{}\n",
                g.g.name,
                lock(g.from_profile),
                g.g.members.join(",")
            )
        })
        .collect();
    let shadow_gid = gs
        .iter()
        .find(|g| g.g.name == "shadow")
        .map_or(0, |g| g.g.gid);
    let files = [
        ("/etc/passwd", passwd, 0o644, 0),
        ("/etc/group", group, 0o644, 0),
        ("/etc/shadow", shadow, 0o640, shadow_gid),
        ("/etc/gshadow", gshadow, 0o640, shadow_gid),
    ];
    for (path, text, mode, gid) in files {
        tree.insert_p(
            path,
            Entry::file(mode, Content::from_bytes(text.into_bytes()))
                .owned(0, gid)
                .at(epoch),
        )
        .with_context(|| format!("writing {path}"))?;
    }

    if users.is_empty() && groups.is_empty() {
        return Ok(());
    }
    let mut conf = String::from("# Generated by basalt from the profile's users and groups.\n");
    let by_gid: BTreeMap<u32, &SysGroup> = groups.iter().map(|g| (g.gid, g)).collect();
    for g in by_gid.values() {
        conf.push_str(&format!("g {} {}\n", g.name, g.gid));
    }
    let mut sorted: Vec<&SysUser> = users.iter().collect();
    sorted.sort_by_key(|u| (u.uid, u.name.clone()));
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    for u in sorted {
        let gecos = if u.gecos.is_empty() {
            "-".to_string()
        } else {
            format!("\"{}\"", u.gecos)
        };
        conf.push_str(&format!(
            "u {} {}:{} {gecos} {} {}\n",
            u.name,
            u.uid,
            u.gid,
            dash(&u.home),
            dash(&u.shell)
        ));
    }
    for g in by_gid.values() {
        for m in &g.members {
            conf.push_str(&format!("m {m} {}\n", g.name));
        }
    }
    tree.insert_p(
        SYSUSERS_FILE,
        Entry::file(0o644, Content::from_bytes(conf.into_bytes())).at(epoch),
    )
    .with_context(|| format!("writing {SYSUSERS_FILE}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &Tree, p: &str) -> String {
        match &t.get(p).unwrap_or_else(|| panic!("{p} missing")).kind {
            basalt_tree::Kind::File(c) => String::from_utf8(c.read_all().unwrap()).unwrap(),
            k => panic!("{p} is {k:?}"),
        }
    }

    fn base() -> Tree {
        let mut t = Tree::new();
        let pw =
            "root:*:0:0:root:/root:/bin/bash\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
        let gr = "root:*:0:\ndaemon:*:1:\nshadow:*:42:\n";
        t.insert_p(
            PASSWD_MASTER,
            Entry::file(0o644, Content::from_bytes(pw.as_bytes().to_vec())),
        )
        .unwrap();
        t.insert_p(
            GROUP_MASTER,
            Entry::file(0o644, Content::from_bytes(gr.as_bytes().to_vec())),
        )
        .unwrap();
        t
    }

    fn user(name: &str, uid: u32, gid: u32) -> SysUser {
        SysUser {
            name: name.into(),
            uid,
            gid,
            gecos: format!("{name} daemon"),
            home: "/nonexistent".into(),
            shell: "/usr/sbin/nologin".into(),
        }
    }

    fn group(name: &str, gid: u32, members: &[&str]) -> SysGroup {
        SysGroup {
            name: name.into(),
            gid,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn files_are_sorted_and_locked() {
        let mut t = base();
        let users = [user("sshd", 105, 65534), user("etcd", 104, 104)];
        let groups = [
            group("nogroup", 65534, &[]),
            group("etcd", 104, &[]),
            group("docker", 999, &["etcd"]),
        ];
        apply(&mut t, &users, &groups, 86_400 * 20_000 + 5).unwrap();
        assert_eq!(
            text(&t, "/etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             etcd:x:104:104:etcd daemon:/nonexistent:/usr/sbin/nologin\nsshd:x:105:65534:sshd daemon:/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(
            text(&t, "/etc/group"),
            "root:x:0:\ndaemon:x:1:\nshadow:x:42:\netcd:x:104:\ndocker:x:999:etcd\nnogroup:x:65534:\n"
        );
        assert!(text(&t, "/etc/shadow").starts_with("root:*:20000:0:99999:7:::\n"));
        assert!(text(&t, "/etc/shadow").contains("sshd:!*:20000:0:99999:7:::\n"));
        assert!(text(&t, "/etc/gshadow").contains("docker:!*::etcd\n"));
        let sh = t.get("/etc/shadow").unwrap();
        assert_eq!((sh.mode, sh.gid), (0o640, 42));
        assert_eq!(
            text(&t, SYSUSERS_FILE),
            "# Generated by basalt from the profile's users and groups.\ng etcd 104\ng docker 999\ng nogroup 65534\n\
             u etcd 104:104 \"etcd daemon\" /nonexistent /usr/sbin/nologin\nu sshd 105:65534 \"sshd daemon\" /nonexistent /usr/sbin/nologin\n\
             m etcd docker\n"
        );
    }

    #[test]
    fn errors_table() {
        let cases: Vec<(Vec<SysUser>, Vec<SysGroup>, &str)> = vec![
            (
                vec![user("root", 5, 0)],
                vec![],
                "user root: the profile gives 5:0 but base-passwd has 0:0",
            ),
            (
                vec![user("x", 1, 0)],
                vec![],
                "uid 1 is already used by user daemon",
            ),
            (
                vec![user("x", 100, 777)],
                vec![],
                "primary gid 777 is not a group",
            ),
            (
                vec![],
                vec![group("docker", 1, &[])],
                "gid 1 is already used by group daemon",
            ),
            (
                vec![],
                vec![group("docker", 999, &["ghost"])],
                "member \"ghost\" is not a user",
            ),
            (
                vec![user("Bad", 100, 0)],
                vec![],
                "not a valid system user name",
            ),
            (
                vec![SysUser {
                    gecos: "a:b".into(),
                    ..user("x", 100, 0)
                }],
                vec![],
                "gecos \"a:b\"",
            ),
        ];
        for (users, groups, want) in cases {
            let err = apply(&mut base(), &users, &groups, 0).expect_err(want);
            assert!(err.to_string().contains(want), "{err} / {want}");
        }
    }
}
