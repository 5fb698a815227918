//! The account database (/etc/passwd, group, shadow, gshadow), edited
//! directly: there is no useradd in the initramfs. Allocation follows
//! Debian's login.defs defaults: users from 1000 up (UID_MIN..UID_MAX),
//! system accounts from 999 down (SYS_UID_MAX..SYS_UID_MIN).

use crate::plan::{GroupPlan, UserPlan};

pub const UID_MIN: u32 = 1000;
pub const UID_MAX: u32 = 59999;
pub const SYS_MIN: u32 = 100;
pub const SYS_MAX: u32 = 999;
pub const DEFAULT_SHELL: &str = "/bin/bash";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PwEnt {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrEnt {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The four files, parsed; unknown shadow fields are kept verbatim.
#[derive(Clone, Debug, Default)]
pub struct Db {
    pub passwd: Vec<PwEnt>,
    pub group: Vec<GrEnt>,
    /// shadow lines split on ':'.
    pub shadow: Vec<Vec<String>>,
    pub gshadow: Vec<Vec<String>>,
    /// Users and groups created by this run (home directories etc.).
    pub new_users: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{file} line {line}: {msg}")]
    Parse {
        file: &'static str,
        line: usize,
        msg: String,
    },
    #[error("{0}")]
    Conflict(String),
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
}

fn num(file: &'static str, line: usize, s: &str) -> Result<u32, UserError> {
    s.parse().map_err(|_| UserError::Parse {
        file,
        line,
        msg: format!("{s:?} is not a number"),
    })
}

impl Db {
    pub fn parse(passwd: &str, group: &str, shadow: &str, gshadow: &str) -> Result<Db, UserError> {
        let mut db = Db::default();
        for (n, l) in lines(passwd) {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 7 {
                return Err(UserError::Parse {
                    file: "/etc/passwd",
                    line: n,
                    msg: "expected 7 fields".into(),
                });
            }
            db.passwd.push(PwEnt {
                name: f[0].into(),
                uid: num("/etc/passwd", n, f[2])?,
                gid: num("/etc/passwd", n, f[3])?,
                gecos: f[4].into(),
                home: f[5].into(),
                shell: f[6].into(),
            });
        }
        for (n, l) in lines(group) {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 4 {
                return Err(UserError::Parse {
                    file: "/etc/group",
                    line: n,
                    msg: "expected 4 fields".into(),
                });
            }
            db.group.push(GrEnt {
                name: f[0].into(),
                gid: num("/etc/group", n, f[2])?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            });
        }
        db.shadow = lines(shadow)
            .map(|(_, l)| l.split(':').map(str::to_string).collect())
            .collect();
        db.gshadow = lines(gshadow)
            .map(|(_, l)| l.split(':').map(str::to_string).collect())
            .collect();
        Ok(db)
    }

    pub fn render(&self) -> [String; 4] {
        let mut p = String::new();
        for e in &self.passwd {
            p.push_str(&format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                e.name, e.uid, e.gid, e.gecos, e.home, e.shell
            ));
        }
        let mut g = String::new();
        for e in &self.group {
            g.push_str(&format!("{}:x:{}:{}\n", e.name, e.gid, e.members.join(",")));
        }
        let join = |v: &Vec<Vec<String>>| v.iter().map(|f| f.join(":") + "\n").collect::<String>();
        [p, g, join(&self.shadow), join(&self.gshadow)]
    }

    pub fn user(&self, name: &str) -> Option<&PwEnt> {
        self.passwd.iter().find(|u| u.name == name)
    }

    pub fn group_gid(&self, name: &str) -> Option<u32> {
        self.group.iter().find(|g| g.name == name).map(|g| g.gid)
    }

    /// Next free id: users above the highest used id in UID_MIN..=UID_MAX
    /// (or the lowest gap when that is full), system accounts downwards.
    fn free_id(&self, system: bool, ids: impl Iterator<Item = u32>) -> Result<u32, UserError> {
        let used: std::collections::BTreeSet<u32> = ids.collect();
        if system {
            (SYS_MIN..=SYS_MAX).rev().find(|i| !used.contains(i))
        } else {
            match used.range(UID_MIN..=UID_MAX).next_back() {
                Some(&m) if m < UID_MAX => Some(m + 1),
                Some(_) => (UID_MIN..=UID_MAX).find(|i| !used.contains(i)),
                None => Some(UID_MIN),
            }
        }
        .ok_or_else(|| UserError::Conflict("no free id left in the range".into()))
    }

    fn gid_used(&self, g: u32) -> bool {
        self.group.iter().any(|e| e.gid == g)
    }

    fn uid_used(&self, u: u32) -> bool {
        self.passwd.iter().any(|e| e.uid == u)
    }

    fn add_group(&mut self, name: &str, gid: u32, hash: Option<&str>) {
        self.group.push(GrEnt {
            name: name.into(),
            gid,
            members: vec![],
        });
        self.gshadow.push(vec![
            name.into(),
            hash.unwrap_or("!").into(),
            String::new(),
            String::new(),
        ]);
    }

    pub fn apply_group(&mut self, g: &GroupPlan) -> Result<(), UserError> {
        if let Some(e) = self.group.iter().find(|e| e.name == g.name) {
            if let Some(want) = g.gid {
                if want != e.gid {
                    return Err(UserError::Conflict(format!(
                        "group {:?} already exists with gid {}, not {want}",
                        g.name, e.gid
                    )));
                }
            }
            if let Some(h) = &g.password_hash {
                if let Some(s) = self.gshadow.iter_mut().find(|s| s[0] == g.name) {
                    s[1] = h.clone();
                }
            }
            return Ok(());
        }
        let gid = match g.gid {
            Some(x) if self.gid_used(x) => {
                return Err(UserError::Conflict(format!(
                    "gid {x} for group {:?} is already used",
                    g.name
                )));
            }
            Some(x) => x,
            None => self.free_id(g.system, self.group.iter().map(|e| e.gid))?,
        };
        self.add_group(&g.name, gid, g.password_hash.as_deref());
        Ok(())
    }

    /// Create or update a user. `lastchg`: days since the epoch for shadow.
    pub fn apply_user(&mut self, u: &UserPlan, lastchg: Option<i64>) -> Result<(), UserError> {
        for g in &u.groups {
            if self.group_gid(g).is_none() {
                return Err(UserError::Conflict(format!(
                    "user {:?}: supplementary group {g:?} does not exist",
                    u.name
                )));
            }
        }
        let primary = match &u.primary_group {
            Some(pg) => Some(
                self.group_gid(pg)
                    .or_else(|| pg.parse().ok().filter(|g| self.gid_used(*g)))
                    .ok_or_else(|| {
                        UserError::Conflict(format!(
                            "user {:?}: primary group {pg:?} does not exist",
                            u.name
                        ))
                    })?,
            ),
            None => None,
        };
        if let Some(idx) = self.passwd.iter().position(|e| e.name == u.name) {
            let e = &mut self.passwd[idx];
            if let Some(want) = u.uid {
                if want != e.uid {
                    return Err(UserError::Conflict(format!(
                        "user {:?} already exists with uid {}, not {want}",
                        u.name, e.uid
                    )));
                }
            }
            if let Some(g) = primary {
                e.gid = g;
            }
            if let Some(h) = &u.home_dir {
                e.home = h.clone();
            }
            if let Some(s) = &u.shell {
                e.shell = s.clone();
            }
            if let Some(g) = &u.gecos {
                e.gecos = g.clone();
            }
            if let Some(h) = &u.password_hash {
                match self.shadow.iter_mut().find(|s| s[0] == u.name) {
                    Some(s) if s.len() > 1 => s[1] = h.clone(),
                    _ => self.shadow.push(shadow_line(&u.name, h, lastchg)),
                }
            }
        } else {
            let uid = match u.uid {
                Some(x) if self.uid_used(x) => {
                    return Err(UserError::Conflict(format!(
                        "uid {x} for user {:?} is already used",
                        u.name
                    )));
                }
                Some(x) => x,
                None => self.free_id(u.system, self.passwd.iter().map(|e| e.uid))?,
            };
            let gid = match primary {
                Some(g) => g,
                None => {
                    if self.group_gid(&u.name).is_some() {
                        return Err(UserError::Conflict(format!(
                            "user {:?}: a group of that name already exists; set primaryGroup to use it",
                            u.name
                        )));
                    }
                    let gid = if self.gid_used(uid) {
                        self.free_id(u.system, self.group.iter().map(|e| e.gid))?
                    } else {
                        uid
                    };
                    self.add_group(&u.name, gid, None);
                    gid
                }
            };
            self.passwd.push(PwEnt {
                name: u.name.clone(),
                uid,
                gid,
                gecos: u.gecos.clone().unwrap_or_default(),
                home: u
                    .home_dir
                    .clone()
                    .unwrap_or_else(|| format!("/home/{}", u.name)),
                shell: u.shell.clone().unwrap_or_else(|| DEFAULT_SHELL.into()),
            });
            // "*": no password login, but not locked, so sshd accepts keys.
            self.shadow.push(shadow_line(
                &u.name,
                u.password_hash.as_deref().unwrap_or("*"),
                lastchg,
            ));
            self.new_users.push(u.name.clone());
        }
        for g in &u.groups {
            if let Some(e) = self.group.iter_mut().find(|e| &e.name == g) {
                if !e.members.contains(&u.name) {
                    e.members.push(u.name.clone());
                }
            }
            if let Some(s) = self.gshadow.iter_mut().find(|s| &s[0] == g) {
                while s.len() < 4 {
                    s.push(String::new());
                }
                let mut m: Vec<String> = s[3]
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect();
                if !m.contains(&u.name) {
                    m.push(u.name.clone());
                }
                s[3] = m.join(",");
            }
        }
        Ok(())
    }
}

fn shadow_line(name: &str, hash: &str, lastchg: Option<i64>) -> Vec<String> {
    let lc = lastchg.map(|d| d.to_string()).unwrap_or_default();
    [name, hash, &lc, "0", "99999", "7", "", "", ""]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Db {
        Db::parse(
            "root:x:0:0:root:/root:/bin/bash\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n",
            "root:x:0:\nsudo:x:27:\nusers:x:100:\n",
            "root:*:19000:0:99999:7:::\n",
            "root:*::\nsudo:*::\nusers:*::\n",
        )
        .unwrap()
    }

    #[test]
    fn creates_users_and_groups() {
        let mut db = base();
        db.apply_group(&GroupPlan {
            name: "ops".into(),
            ..Default::default()
        })
        .unwrap();
        db.apply_user(
            &UserPlan {
                name: "core".into(),
                groups: vec!["sudo".into(), "ops".into()],
                ..Default::default()
            },
            Some(20000),
        )
        .unwrap();
        db.apply_user(
            &UserPlan {
                name: "svc".into(),
                system: true,
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let [p, g, s, gs] = db.render();
        assert!(
            p.contains("core:x:1000:1001::/home/core:/bin/bash\n"),
            "{p}"
        );
        assert!(p.contains("svc:x:999:999::/home/svc:/bin/bash\n"), "{p}");
        assert!(
            g.contains("sudo:x:27:core\n")
                && g.contains("ops:x:1000:core\n")
                && g.contains("core:x:1001:\n"),
            "{g}"
        );
        assert!(s.contains("core:*:20000:0:99999:7:::\n"), "{s}");
        assert!(gs.contains("sudo:*::core\n"), "{gs}");
    }

    #[test]
    fn conflicts() {
        let cases: Vec<(UserPlan, &str)> = vec![
            (
                UserPlan {
                    name: "x".into(),
                    uid: Some(0),
                    ..Default::default()
                },
                "already used",
            ),
            (
                UserPlan {
                    name: "root".into(),
                    uid: Some(5),
                    ..Default::default()
                },
                "already exists with uid 0",
            ),
            (
                UserPlan {
                    name: "x".into(),
                    groups: vec!["nope".into()],
                    ..Default::default()
                },
                "does not exist",
            ),
            (
                UserPlan {
                    name: "users".into(),
                    ..Default::default()
                },
                "group of that name",
            ),
        ];
        for (u, want) in cases {
            let e = base().apply_user(&u, None).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
