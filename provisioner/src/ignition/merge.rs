//! Ignition config merging (`ignition.config.merge`), following the spec's
//! rules: the child overrides the parent field by field; lists of keyed
//! objects are merged item by item on their key (files, directories and
//! links share one key space, the path); other lists are unions.
//!
//! Merging works on the JSON form of two 3.6 configs, where `null` means unset.

use ignition_config::v3_6 as ign;
use serde_json::{Map, Value};

/// Key field of each keyed list, by the list's path (array indices removed).
fn list_key(path: &str) -> Option<&'static str> {
    Some(match path {
        "ignition.config.merge" | "ignition.security.tls.certificateAuthorities" => "source",
        "storage.files" | "storage.directories" | "storage.links" => "path",
        "storage.filesystems" | "storage.disks" => "device",
        "storage.disks.partitions" => "number",
        "systemd.units" | "systemd.units.dropins" | "passwd.users" | "passwd.groups" => "name",
        "ignition.config.merge.httpHeaders"
        | "storage.files.contents.httpHeaders"
        | "storage.files.append.httpHeaders" => "name",
        _ => return None,
    })
}

/// Lists whose items are appended rather than merged.
fn appended(path: &str) -> bool {
    path == "storage.files.append"
}

/// Merge `child` into `parent`.
pub fn merge(parent: &ign::Config, child: &ign::Config) -> Result<ign::Config, serde_json::Error> {
    let mut p = serde_json::to_value(parent)?;
    let mut c = serde_json::to_value(child)?;
    // The merged config keeps the parent's own version and config references.
    if let Some(ig) = c.get_mut("ignition").and_then(Value::as_object_mut) {
        ig.remove("version");
        ig.remove("config");
    }
    // A node in the child replaces a node of another kind at the same path.
    let child_paths: Vec<String> = ["files", "directories", "links"]
        .iter()
        .flat_map(|k| {
            c.pointer(&format!("/storage/{k}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| n.get("path").and_then(Value::as_str).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    for (k, ck) in [
        ("files", "files"),
        ("directories", "directories"),
        ("links", "links"),
    ] {
        let child_same: Vec<String> = c
            .pointer(&format!("/storage/{ck}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| n.get("path").and_then(Value::as_str).map(str::to_string))
            .collect();
        if let Some(arr) = p
            .pointer_mut(&format!("/storage/{k}"))
            .and_then(Value::as_array_mut)
        {
            arr.retain(|n| {
                let np = n.get("path").and_then(Value::as_str).unwrap_or("");
                !child_paths.iter().any(|cp| cp == np) || child_same.iter().any(|cp| cp == np)
            });
        }
    }
    merge_value(&mut p, c, "");
    // A kernel argument the child says must not exist leaves shouldExist.
    if let Some(nex) = p.pointer("/kernelArguments/shouldNotExist").cloned() {
        if let Some(ex) = p
            .pointer_mut("/kernelArguments/shouldExist")
            .and_then(Value::as_array_mut)
        {
            if let Some(nex) = nex.as_array() {
                ex.retain(|a| !nex.contains(a));
            }
        }
    }
    serde_json::from_value(p)
}

fn merge_value(parent: &mut Value, child: Value, path: &str) {
    match (parent, child) {
        (_, Value::Null) => {}
        (Value::Object(p), Value::Object(c)) => merge_object(p, c, path),
        (Value::Array(p), Value::Array(c)) => {
            if appended(path) {
                p.extend(c);
            } else if let Some(key) = list_key(path) {
                for item in c {
                    let k = item.get(key).cloned();
                    let existing = k
                        .as_ref()
                        .filter(|k| !k.is_null())
                        .and_then(|k| p.iter_mut().find(|e| e.get(key) == Some(k)));
                    match existing {
                        Some(e) => merge_value(e, item, path),
                        None => p.push(item),
                    }
                }
            } else {
                for item in c {
                    if !p.contains(&item) {
                        p.push(item);
                    }
                }
            }
        }
        (p, c) => *p = c,
    }
}

fn merge_object(p: &mut Map<String, Value>, c: Map<String, Value>, path: &str) {
    for (k, v) in c {
        let sub = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match p.get_mut(&k) {
            Some(pv) if !pv.is_null() => merge_value(pv, v, &sub),
            _ => {
                if !v.is_null() {
                    p.insert(k, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> ign::Config {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn merges_by_key() {
        let parent = cfg(r#"{"ignition":{"version":"3.6.0"},
            "storage":{"files":[{"path":"/a","mode":420},{"path":"/b"}]},
            "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1"]}]}}"#);
        let child = cfg(r#"{"ignition":{"version":"3.6.0"},
            "storage":{"files":[{"path":"/a","mode":384}],"links":[{"path":"/b","target":"/x"}]},
            "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k2"]}]}}"#);
        let m = merge(&parent, &child).unwrap();
        let st = m.storage.unwrap();
        let files = st.files.unwrap();
        assert_eq!(files.len(), 1, "file /b replaced by the child's link");
        assert_eq!(files[0].mode, Some(384));
        assert_eq!(st.links.unwrap()[0].path, "/b");
        let users = m.passwd.unwrap().users.unwrap();
        assert_eq!(
            users[0].ssh_authorized_keys.as_ref().unwrap(),
            &vec!["k1".to_string(), "k2".to_string()]
        );
    }
}
