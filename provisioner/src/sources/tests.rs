use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A tiny loopback HTTP server: `handler(method, path, headers) -> (status, body)`.
/// Returns the base URL and a log of "METHOD PATH token?" lines.
fn serve(
    handler: fn(&str, &str, &[(String, String)]) -> (u16, Vec<u8>),
    requests: usize,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let t = line.trim_end();
                if t.is_empty() {
                    break;
                }
                if let Some((k, v)) = t.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let mut parts = first.split_whitespace();
            let (m, p) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let tok = headers
                .iter()
                .find(|(k, _)| k == "x-aws-ec2-metadata-token")
                .map(|(_, v)| v.clone());
            log2.lock()
                .unwrap()
                .push(format!("{m} {p} {}", tok.unwrap_or_default()));
            let (status, body) = handler(&m, &p, &headers);
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

#[test]
fn imds_v2_token_then_user_data() {
    let (base, log) = serve(
        |m, p, h| match (m, p) {
            ("PUT", "/latest/api/token") => (200, b"TOKEN1".to_vec()),
            ("GET", "/latest/user-data")
                if h.iter()
                    .any(|(k, v)| k == "x-aws-ec2-metadata-token" && v == "TOKEN1") =>
            {
                (200, b"#cloud-config\n".to_vec())
            }
            _ => (401, vec![]),
        },
        2,
    );
    let f = Fetcher::new();
    let found = imds(&base, &f).unwrap().unwrap();
    assert_eq!(found.source, "imds-v2");
    assert_eq!(found.data, b"#cloud-config\n");
    assert_eq!(
        log.lock().unwrap().clone(),
        vec!["PUT /latest/api/token ", "GET /latest/user-data TOKEN1"]
    );
}

#[test]
fn imds_falls_back_to_v1_and_404_means_none() {
    let (base, _) = serve(
        |m, _, _| {
            if m == "PUT" {
                (405, vec![])
            } else {
                (200, b"{}".to_vec())
            }
        },
        2,
    );
    let found = imds(&base, &Fetcher::new()).unwrap().unwrap();
    assert_eq!(found.source, "imds-v1");
    let (base, _) = serve(
        |m, _, _| {
            if m == "PUT" {
                (200, b"t".to_vec())
            } else {
                (404, vec![])
            }
        },
        2,
    );
    assert_eq!(imds(&base, &Fetcher::new()).unwrap(), None);
    let (base, _) = serve(|_, _, _| (500, vec![]), 2);
    assert!(
        imds(&base, &Fetcher::new())
            .unwrap_err()
            .to_string()
            .contains("500")
    );
}

#[test]
fn cmdline_http_and_data() {
    let (base, _) = serve(
        |_, p, _| {
            if p == "/cfg" {
                (200, b"#!/bin/sh\n".to_vec())
            } else {
                (404, vec![])
            }
        },
        1,
    );
    let f = Fetcher::new();
    let line = format!("quiet basalt.config.url={base}/cfg root=x");
    assert_eq!(cmdline(&line, &f).unwrap().unwrap().data, b"#!/bin/sh\n");
    let d = cmdline("basalt.config.url=data:,%7B%7D", &f)
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.source.as_str(), d.data.as_slice()),
        ("cmdline:data:", &b"{}"[..])
    );
    assert_eq!(cmdline("quiet", &f).unwrap(), None);
    assert!(
        cmdline("basalt.config.url=file:///etc/x", &f)
            .unwrap_err()
            .to_string()
            .contains("only http")
    );
}

#[test]
fn file_sources() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    // fw_cfg: Ignition's key is accepted, Basalt's wins when both exist.
    let coreos = root.join("sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config");
    std::fs::create_dir_all(&coreos).unwrap();
    std::fs::write(coreos.join("raw"), b"coreos").unwrap();
    assert_eq!(
        fw_cfg(&root.join("sys")).unwrap().unwrap().source,
        "fw_cfg:opt/com.coreos/config"
    );
    let basalt = root.join("sys/firmware/qemu_fw_cfg/by_name/opt/org.basalt/config");
    std::fs::create_dir_all(&basalt).unwrap();
    std::fs::write(basalt.join("raw"), b"basalt").unwrap();
    assert_eq!(fw_cfg(&root.join("sys")).unwrap().unwrap().data, b"basalt");
    assert_eq!(fw_cfg(&root.join("nosys")).unwrap(), None);

    let cd = root.join("cd");
    std::fs::create_dir_all(cd.join("openstack/latest")).unwrap();
    assert_eq!(config_drive(&cd).unwrap(), None);
    std::fs::write(cd.join("openstack/latest/user_data"), b"ud").unwrap();
    assert_eq!(config_drive(&cd).unwrap().unwrap().data, b"ud");

    let nc = root.join("nc");
    std::fs::create_dir_all(&nc).unwrap();
    assert_eq!(nocloud(&nc).unwrap(), None);
    std::fs::write(nc.join("user-data"), b"u").unwrap();
    std::fs::write(nc.join("meta-data"), b"instance-id: i-1\n").unwrap();
    let (u, m) = nocloud(&nc).unwrap().unwrap();
    assert_eq!(
        (u.data.as_slice(), m.as_deref()),
        (&b"u"[..], Some(&b"instance-id: i-1\n"[..]))
    );

    let oemd = root.join("oem");
    std::fs::create_dir_all(&oemd).unwrap();
    std::fs::write(oemd.join("user-data"), b"x").unwrap();
    assert_eq!(oem(&oemd).unwrap().unwrap().source, "oem:user-data");

    // discovery follows the platform's order
    let env = Env {
        sysfs: root.join("sys"),
        cmdline: "basalt.platform=openstack".into(),
        config_drive: Some(cd.clone()),
        nocloud: Some(nc.clone()),
        imds_base: None,
        oem: Some(oemd.clone()),
    };
    let f = Fetcher::new();
    assert_eq!(discover(&env, &f).unwrap().unwrap().source, "config-drive");
    let env2 = Env {
        cmdline: "basalt.platform=qemu".into(),
        ..env.clone()
    };
    assert_eq!(
        discover(&env2, &f).unwrap().unwrap().source,
        "fw_cfg:opt/org.basalt/config"
    );
    let env3 = Env {
        cmdline: "basalt.platform=metal".into(),
        ..env
    };
    assert_eq!(
        discover(&env3, &f).unwrap().unwrap().source,
        "oem:user-data"
    );
}
