//! Helpers of the PXE tests (builder/tests/pxe.rs): the `--format pxe`
//! build from the same profile, lock and epoch as the shared default image,
//! a diskless guest under `basalt boot --pxe` (driven by common/guest.rs),
//! and a one-file HTTP server on the host's loopback (reached from the
//! guest at 10.0.2.2).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::guest::{self, Guest};
use crate::common::image;

/// The pxe artifacts of the default profile, built once per test binary
/// (in the directory the shared image was built in, so the same lock file
/// applies); returns the output directory.
pub fn built() -> PathBuf {
    static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut g = DIR.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = g.as_ref() {
        return d.clone();
    }
    let shared = image::built();
    let cwd = shared
        .dir
        .parent()
        .expect("the shared image dir has a parent")
        .to_path_buf();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pxe-out");
    let _ = std::fs::remove_dir_all(&out);
    let start = Instant::now();
    let res = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(["build", "--format", "pxe", "-o"])
        .arg(&out)
        .current_dir(&cwd)
        .env("SOURCE_DATE_EPOCH", image::EPOCH)
        .output()
        .expect("running basalt build --format pxe");
    assert!(
        res.status.success(),
        "basalt build --format pxe failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    eprintln!(
        "pxe tests: built the pxe artifacts in {:.0?}",
        start.elapsed()
    );
    *g = Some(out.clone());
    out
}

/// `/init` gave up: no point waiting for anything after this.
pub const FATAL: &[&str] = &["basalt-init: FATAL"];

/// A diskless guest: `basalt boot --pxe dir --cpus 2 [extra args]`.
pub fn boot(dir: &Path, extra: &[&str], work: &Path, tag: &str) -> Guest {
    let mut args = guest::args(&[OsStr::new("boot"), OsStr::new("--pxe"), dir.as_os_str()]);
    args.extend(guest::args(&["--cpus", "2"]));
    args.extend(guest::args(extra));
    guest::start(&args, work, tag)
}

/// A tiny HTTP/1.0 server on 127.0.0.1 that answers GET `path` with
/// `body` (404 otherwise) and records every request line.
pub struct ConfigServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl ConfigServer {
    pub fn start(path: &str, body: Vec<u8>) -> ConfigServer {
        let l = TcpListener::bind(("127.0.0.1", 0)).expect("binding the config server");
        let port = l.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let path = path.to_string();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = BufReader::new(match s.try_clone() {
                    Ok(c) => c,
                    Err(_) => continue,
                });
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut h = String::new();
                while r.read_line(&mut h).map(|n| n > 2).unwrap_or(false) {
                    h.clear();
                }
                let line = line.trim().to_string();
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.clone());
                let ok = line.starts_with(&format!("GET {path} "));
                let head = if ok {
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                } else {
                    "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = s.write_all(head.as_bytes());
                if ok {
                    let _ = s.write_all(&body);
                }
            }
        });
        ConfigServer { port, requests }
    }

    pub fn seen(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
