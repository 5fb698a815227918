#![allow(dead_code)]
//! Helpers: a fake Debian-like root and a snapshot of a tree for comparisons.

use basalt_provisioner::apply::{self, Options};
use basalt_provisioner::fetch::{Fetcher, resolve_plan};
use basalt_provisioner::userdata;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A root with the account files and an /etc/skel, like a fresh image.
pub fn fake_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in ["etc/skel", "usr/lib/systemd/system", "home"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    let w = |p: &str, s: &str| std::fs::write(r.join(p), s).unwrap();
    w(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n",
    );
    w(
        "etc/group",
        "root:x:0:\nsudo:x:27:\nshadow:x:42:\nusers:x:100:\ndocker:x:990:\n",
    );
    w(
        "etc/shadow",
        "root:*:19000:0:99999:7:::\nsshd:!:19000::::::\n",
    );
    w(
        "etc/gshadow",
        "root:*::\nsudo:*::\nshadow:*::\nusers:*::\ndocker:!::\n",
    );
    w("etc/skel/.profile", "# profile\n");
    w(
        "usr/lib/systemd/system/etcd.service",
        "[Unit]\nDescription=etcd\n[Service]\nExecStart=/usr/bin/etcd\n[Install]\nWantedBy=multi-user.target\nAlias=etcd2.service\n",
    );
    t
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ent {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        data: Vec<u8>,
    },
    Link {
        target: String,
        uid: u32,
        gid: u32,
    },
}

/// Every node under `root` (relative path → entry), not following symlinks.
pub fn snapshot(root: &Path) -> BTreeMap<String, Ent> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Ent>) {
    let mut ents: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ents.sort();
    for p in ents {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
        let (mode, uid, gid) = (md.mode() & 0o7777, md.uid(), md.gid());
        if md.file_type().is_symlink() {
            let target = std::fs::read_link(&p).unwrap().display().to_string();
            out.insert(rel, Ent::Link { target, uid, gid });
        } else if md.is_dir() {
            out.insert(rel, Ent::Dir { mode, uid, gid });
            walk(root, &p, out);
        } else {
            out.insert(
                rel,
                Ent::File {
                    mode,
                    uid,
                    gid,
                    data: std::fs::read(&p).unwrap(),
                },
            );
        }
    }
}

pub fn opts() -> Options {
    Options {
        now: Some(1_700_000_000),
        source: "test".into(),
        format: "test".into(),
        warnings: vec![],
    }
}

/// Parse, assemble, fetch and apply a config text.
pub fn apply_text(text: &str, root: &Path) -> Result<apply::Outcome, String> {
    let loaded = userdata::load_str(text).map_err(|r| r.render("cfg"))?;
    let f = Fetcher::new();
    let plan = userdata::assemble(loaded, &f).map_err(|e| e.to_string())?;
    let plan = resolve_plan(plan, &f).map_err(|e| e.to_string())?;
    apply::apply(&plan, root, &opts()).map_err(|e| e.to_string())
}

pub fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn meta(root: &Path, p: &str) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(root.join(p.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{p}: {e}"));
    (md.mode() & 0o7777, md.uid(), md.gid())
}

/// Serve `routes` (path → (status, body)) on loopback for `n` requests;
/// returns the base URL and the request lines with their Authorization header.
pub fn serve(
    routes: Vec<(&'static str, u16, Vec<u8>)>,
    n: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = line
                    .strip_prefix("authorization: ")
                    .or(line.strip_prefix("Authorization: "))
                {
                    auth = v.trim().to_string();
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            log2.lock().unwrap().push(format!("{path} {auth}"));
            let (status, body) = routes
                .iter()
                .find(|(p, _, _)| *p == path)
                .map(|(_, s, b)| (*s, b.clone()))
                .unwrap_or((404, vec![]));
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    (base, log)
}
