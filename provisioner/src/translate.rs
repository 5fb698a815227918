//! Plan → Ignition JSON (spec 3.4.0), for `basalt-provision translate`
//! (cloud-config in, Ignition out). Inline contents become `data:` URLs;
//! networkd units become files under /etc/systemd/network (Ignition has no
//! networkd section); mounts without a format become mount units.

use crate::plan::*;
use base64::Engine;
use serde_json::{Map, Value, json};

pub const VERSION: &str = "3.4.0";

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("{0} has remote contents; translate only handles inline contents")]
    Remote(String),
}

fn data_url(b: &[u8]) -> String {
    format!(
        "data:;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

fn owner(o: &Option<Owner>) -> Option<Value> {
    match o {
        None => None,
        Some(Owner::Id(i)) => Some(json!({ "id": i })),
        Some(Owner::Name(n)) => Some(json!({ "name": n })),
    }
}

fn source(s: &Source, path: &str) -> Result<Value, TranslateError> {
    match s {
        Source::Inline(b) => Ok(json!({ "source": data_url(b) })),
        Source::Remote(r) => {
            let _ = r;
            Err(TranslateError::Remote(path.to_string()))
        }
    }
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v);
    }
}

pub fn to_ignition(plan: &Plan) -> Result<Value, TranslateError> {
    let mut files = Vec::new();
    let mut file = |path: &str,
                    contents: Option<Value>,
                    append: Vec<Value>,
                    mode: Option<u32>,
                    user: Option<Value>,
                    group: Option<Value>,
                    overwrite: bool| {
        let mut m = Map::new();
        m.insert("path".into(), json!(path));
        put(&mut m, "contents", contents);
        if !append.is_empty() {
            m.insert("append".into(), Value::Array(append));
        }
        put(&mut m, "mode", mode.map(|x| json!(x)));
        put(&mut m, "user", user);
        put(&mut m, "group", group);
        if overwrite {
            m.insert("overwrite".into(), json!(true));
        }
        files.push(Value::Object(m));
    };
    for f in &plan.files {
        let contents = f
            .contents
            .as_ref()
            .map(|c| source(c, &f.path))
            .transpose()?;
        let append = f
            .append
            .iter()
            .map(|a| source(a, &f.path))
            .collect::<Result<Vec<_>, _>>()?;
        file(
            &f.path,
            contents,
            append,
            f.mode,
            owner(&f.user),
            owner(&f.group),
            f.overwrite,
        );
    }
    let mut units = Vec::new();
    let mut extra_units: Vec<UnitPlan> = Vec::new();
    // Mount-only filesystems (cloud-config `mounts`) have no Ignition form: emit their units.
    let mount_only = Plan {
        filesystems: plan
            .filesystems
            .iter()
            .filter(|f| f.format.is_none())
            .cloned()
            .collect(),
        ..Default::default()
    };
    extra_units.extend(crate::apply::storage::lower(&mount_only).1);
    for u in plan.units.iter().chain(&extra_units) {
        if u.kind == UnitKind::Networkd {
            if let Some(c) = &u.contents {
                let p = format!("/etc/systemd/network/{}", u.name);
                file(
                    &p,
                    Some(json!({ "source": data_url(c.as_bytes()) })),
                    vec![],
                    Some(0o644),
                    None,
                    None,
                    true,
                );
            }
            for d in &u.dropins {
                let p = format!("/etc/systemd/network/{}.d/{}", u.name, d.name);
                file(
                    &p,
                    Some(json!({ "source": data_url(d.contents.as_bytes()) })),
                    vec![],
                    Some(0o644),
                    None,
                    None,
                    true,
                );
            }
            continue;
        }
        let mut m = Map::new();
        m.insert("name".into(), json!(u.name));
        put(&mut m, "contents", u.contents.as_ref().map(|c| json!(c)));
        put(&mut m, "enabled", u.enabled.map(|e| json!(e)));
        if u.mask {
            m.insert("mask".into(), json!(true));
        }
        if !u.dropins.is_empty() {
            m.insert(
                "dropins".into(),
                Value::Array(
                    u.dropins
                        .iter()
                        .map(|d| json!({"name": d.name, "contents": d.contents}))
                        .collect(),
                ),
            );
        }
        units.push(Value::Object(m));
    }
    let users: Vec<Value> = plan
        .users
        .iter()
        .map(|u| {
            let mut m = Map::new();
            m.insert("name".into(), json!(u.name));
            put(&mut m, "uid", u.uid.map(|x| json!(x)));
            put(
                &mut m,
                "passwordHash",
                u.password_hash.as_ref().map(|x| json!(x)),
            );
            if !u.ssh_keys.is_empty() {
                m.insert("sshAuthorizedKeys".into(), json!(u.ssh_keys));
            }
            if !u.groups.is_empty() {
                m.insert("groups".into(), json!(u.groups));
            }
            put(
                &mut m,
                "primaryGroup",
                u.primary_group.as_ref().map(|x| json!(x)),
            );
            put(&mut m, "homeDir", u.home_dir.as_ref().map(|x| json!(x)));
            if u.no_create_home {
                m.insert("noCreateHome".into(), json!(true));
            }
            put(&mut m, "shell", u.shell.as_ref().map(|x| json!(x)));
            if u.system {
                m.insert("system".into(), json!(true));
            }
            put(&mut m, "gecos", u.gecos.as_ref().map(|x| json!(x)));
            Value::Object(m)
        })
        .collect();
    let groups: Vec<Value> = plan
        .groups
        .iter()
        .map(|g| {
            let mut m = Map::new();
            m.insert("name".into(), json!(g.name));
            put(&mut m, "gid", g.gid.map(|x| json!(x)));
            put(
                &mut m,
                "passwordHash",
                g.password_hash.as_ref().map(|x| json!(x)),
            );
            if g.system {
                m.insert("system".into(), json!(true));
            }
            Value::Object(m)
        })
        .collect();
    let dirs: Vec<Value> = plan
        .directories
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("path".into(), json!(d.path));
            put(&mut m, "mode", d.mode.map(|x| json!(x)));
            put(&mut m, "user", owner(&d.user));
            put(&mut m, "group", owner(&d.group));
            Value::Object(m)
        })
        .collect();
    let links: Vec<Value> = plan
        .links
        .iter()
        .map(|l| {
            let mut m = Map::new();
            m.insert("path".into(), json!(l.path));
            m.insert("target".into(), json!(l.target));
            if l.hard {
                m.insert("hard".into(), json!(true));
            }
            if l.overwrite {
                m.insert("overwrite".into(), json!(true));
            }
            Value::Object(m)
        })
        .collect();
    let filesystems: Vec<Value> = plan
        .filesystems
        .iter()
        .filter(|f| f.format.is_some())
        .map(|f| {
            let mut m = Map::new();
            m.insert("device".into(), json!(f.device));
            put(&mut m, "format", f.format.as_ref().map(|x| json!(x.name())));
            put(&mut m, "path", f.path.as_ref().map(|x| json!(x)));
            put(&mut m, "label", f.label.as_ref().map(|x| json!(x)));
            if !f.mount_options.is_empty() {
                m.insert("mountOptions".into(), json!(f.mount_options));
            }
            Value::Object(m)
        })
        .collect();
    let mut root = Map::new();
    root.insert("ignition".into(), json!({ "version": VERSION }));
    let mut storage = Map::new();
    for (k, v) in [
        ("files", files),
        ("directories", dirs),
        ("links", links),
        ("filesystems", filesystems),
    ] {
        if !v.is_empty() {
            storage.insert(k.into(), Value::Array(v));
        }
    }
    if !storage.is_empty() {
        root.insert("storage".into(), Value::Object(storage));
    }
    if !units.is_empty() {
        root.insert("systemd".into(), json!({ "units": units }));
    }
    let mut passwd = Map::new();
    if !users.is_empty() {
        passwd.insert("users".into(), Value::Array(users));
    }
    if !groups.is_empty() {
        passwd.insert("groups".into(), Value::Array(groups));
    }
    if !passwd.is_empty() {
        root.insert("passwd".into(), Value::Object(passwd));
    }
    Ok(Value::Object(root))
}
