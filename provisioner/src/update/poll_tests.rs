//! poll against an in-process HTTP server serving a signed index and
//! payloads, on the generated disk image of tests.rs: the newest version is
//! applied; a bad index signature, a payload that does not match the index
//! and a wrong-key payload change nothing; a staged, failed or older version
//! is not applied.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use basalt_payload::SigningKey;
use basalt_payload::index::{Index, IndexEntry, sign_index};
use sha2::{Digest, Sha256};

use super::poll::{Decision, PollOptions, Polled, Release, poll};
use super::tests::{Rig, rig};
use super::*;

type Files = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// Serves `files` (GET only, `Connection: close`); returns the base URL.
fn server(files: Files) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/updates", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let name = path.trim_start_matches("/updates/");
            let body = files.lock().unwrap().get(name).cloned();
            let _ = match body {
                Some(b) => write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .and_then(|_| s.write_all(&b)),
                None => write!(
                    s,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            };
        }
    });
    url
}

/// Publishes payloads `(version, bytes)` with an index signed by `key`.
fn publish(files: &Files, payloads: &[(&str, &[u8])], key: &SigningKey, root_hash: &str) {
    let mut f = files.lock().unwrap();
    let mut entries = Vec::new();
    for &(v, bytes) in payloads {
        let file = format!("basalt-{v}.update");
        entries.push(IndexEntry {
            name: "basalt".into(),
            version: v.into(),
            file: file.clone(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            root_hash: root_hash.into(),
        });
        f.insert(file, bytes.to_vec());
    }
    let json = Index::new(entries).unwrap().to_json();
    f.insert("index.json.sig".into(), sign_index(&json, key).into_bytes());
    f.insert("index.json".into(), json);
}

fn opts(r: &Rig, url: &str, version: &str) -> PollOptions {
    PollOptions {
        server: url.into(),
        download_dir: r.root.join("download"),
        release: Release {
            name: "basalt".into(),
            version: version.into(),
        },
        apply: ApplyOptions::default(),
    }
}

fn poll_as(r: &Rig, booted: char, o: &PollOptions) -> anyhow::Result<Polled> {
    poll(&r.machine(booted), &r.key.verifying_key(), o)
}

#[test]
fn applies_the_newest_and_refuses_bad_servers() {
    let r = rig();
    let files: Files = Arc::default();
    let url = server(files.clone());
    let (p1, _) = r.payload("0.1.5", 7);
    let (p2, img2) = r.payload("0.2.0", 9);
    let (b1, b2) = (fs::read(&p1).unwrap(), fs::read(&p2).unwrap());
    let o = opts(&r, &url, "0.1.0");
    let rh = "cd".repeat(32);

    // Refusals first; each leaves disk and ESP byte-identical.
    let before = r.snapshot();
    let refusals: Vec<(&str, Box<dyn Fn()>, &str)> = vec![
        (
            "index signed by another key",
            Box::new(|| {
                publish(
                    &files,
                    &[("0.2.0", &b2)],
                    &SigningKey::from_bytes(&[1; 32]),
                    &rh,
                )
            }),
            "signature does not verify",
        ),
        (
            "payload differs from the index",
            Box::new(|| {
                publish(&files, &[("0.2.0", &b2)], &r.key, &rh);
                let mut bad = b2.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                files
                    .lock()
                    .unwrap()
                    .insert("basalt-0.2.0.update".into(), bad);
            }),
            "the signed index says",
        ),
        (
            "payload longer than the index says",
            Box::new(|| {
                publish(&files, &[("0.2.0", &b2)], &r.key, &rh);
                let mut long = b2.clone();
                long.push(0);
                files
                    .lock()
                    .unwrap()
                    .insert("basalt-0.2.0.update".into(), long);
            }),
            "longer than",
        ),
        (
            "payload missing on the server",
            Box::new(|| {
                publish(&files, &[("0.2.0", &b2)], &r.key, &rh);
                files.lock().unwrap().remove("basalt-0.2.0.update");
            }),
            "downloading",
        ),
        (
            "index missing",
            Box::new(|| {
                files.lock().unwrap().clear();
            }),
            "index.json",
        ),
    ];
    for (what, setup, want) in &refusals {
        setup();
        let e = format!("{:#}", poll_as(&r, 'A', &o).unwrap_err());
        assert!(e.contains(want), "{what}: {e}");
        assert!(r.snapshot() == before, "{what}: disk or ESP changed");
        assert!(
            !o.download_dir.join("download.update.partial").exists(),
            "{what}: partial download left behind"
        );
    }

    // The newest of two is applied; the download is removed afterwards.
    publish(&files, &[("0.1.5", &b1), ("0.2.0", &b2)], &r.key, &rh);
    let got = poll_as(&r, 'A', &o).unwrap();
    let Polled::Applied { entry, apply } = got else {
        panic!("not applied: {got:?}")
    };
    assert_eq!((entry.version.as_str(), apply.slot), ("0.2.0", 'B'));
    assert_eq!(&r.slot_bytes('B')[..img2.len()], &img2[..]);
    assert!(!o.download_dir.join("download.update").exists());
    assert_eq!(r.state().select(), Some('B'));

    // Polling again: already staged, nothing written.
    let staged = r.snapshot();
    assert_eq!(
        poll_as(&r, 'A', &o).unwrap(),
        Polled::Nothing(Decision::AlreadyStaged(entry.clone()))
    );
    assert!(r.snapshot() == staged);

    // Up to date once running 0.2.0.
    assert_eq!(
        poll_as(&r, 'B', &opts(&r, &url, "0.2.0")).unwrap(),
        Polled::Nothing(Decision::UpToDate)
    );
}

#[test]
fn a_payload_signed_by_another_key_is_refused_even_with_a_good_index() {
    let r = rig();
    let files: Files = Arc::default();
    let url = server(files.clone());
    let mut other = rig();
    other.key = SigningKey::from_bytes(&[5; 32]);
    let (p, _) = other.payload("0.2.0", 9);
    publish(
        &files,
        &[("0.2.0", &fs::read(&p).unwrap())],
        &r.key,
        &"cd".repeat(32),
    );
    let before = r.snapshot();
    let e = format!(
        "{:#}",
        poll_as(&r, 'A', &opts(&r, &url, "0.1.0")).unwrap_err()
    );
    assert!(e.contains("signature does not verify"), "{e}");
    assert!(r.snapshot() == before);
    assert!(!r.root.join("download/download.update").exists());
}
