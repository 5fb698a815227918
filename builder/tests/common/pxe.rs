//! Helpers of the PXE tests (builder/tests/pxe.rs): the `--format pxe`
//! build from the same profile, lock and epoch as the shared default image,
//! a diskless guest under `basalt boot --pxe`, and a one-file HTTP server
//! on the host's loopback (reached from the guest at 10.0.2.2).
//! (common/guest.rs's `Guest` boots disk images only; this is its
//! diskless twin.)

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::guest::tail;
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

/// One diskless VM at a time (TCG is slow enough).
static ONE_VM: Mutex<()> = Mutex::new(());

/// A guest run by `basalt boot --pxe` (console in a log file).
pub struct PxeGuest {
    child: Child,
    pub port: u16,
    pub console: PathBuf,
    pub stderr: PathBuf,
    pub started: Instant,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("binding a free port");
    l.local_addr().expect("local addr").port()
}

/// `basalt boot --pxe dir [extra args]` with the console in `work/tag.console.log`.
pub fn boot(dir: &Path, extra: &[&str], work: &Path, tag: &str) -> PxeGuest {
    let turn = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    let console = work.join(format!("{tag}.console.log"));
    let stderr = work.join(format!("{tag}.stderr"));
    let port = free_port();
    let err = std::fs::File::create(&stderr).expect("creating the stderr file");
    let child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("boot")
        .arg("--pxe")
        .arg(dir)
        .args(["--ssh-port", &port.to_string(), "--cpus", "2"])
        .arg("--console-log")
        .arg(&console)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("starting basalt boot --pxe");
    eprintln!(
        "pxe tests: {tag}: ssh port {port}, console {}",
        console.display()
    );
    PxeGuest {
        child,
        port,
        console,
        stderr,
        started: Instant::now(),
        _turn: turn,
    }
}

impl PxeGuest {
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!(
                "basalt boot exited ({st}): {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            )),
            _ => None,
        }
    }

    /// Waits until the console holds `needle`; fails early on `fatal`.
    pub fn wait_console(&mut self, needle: &str, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = self.console_text();
            if text.contains(needle) {
                return Ok(self.started.elapsed());
            }
            if text.contains("basalt-init: FATAL") {
                return Err(format!(
                    "/init failed while waiting for {needle:?}:\n{}",
                    tail(&text, 3000)
                ));
            }
            if let Some(why) = self.exited() {
                return Err(format!(
                    "waiting for {needle:?}: {why}\nconsole tail:\n{}",
                    tail(&text, 3000)
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{needle:?} not on the console within {timeout:?}\nconsole tail:\n{}",
                    tail(&text, 3000)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn ssh_out(&self, key: &Path, script: &str) -> std::process::Output {
        Command::new("ssh")
            .args(["-p", &self.port.to_string(), "-i"])
            .arg(key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=20",
                "core@127.0.0.1",
                "--",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }

    pub fn wait_ssh(&mut self, key: &Path, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let out = self.ssh_out(key, "true");
            if out.status.success() {
                return Ok(self.started.elapsed());
            }
            if let Some(why) = self.exited() {
                return Err(format!(
                    "waiting for ssh: {why}\nconsole tail:\n{}",
                    tail(&self.console_text(), 3000)
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "no ssh login within {timeout:?} ({})\nconsole tail:\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    tail(&self.console_text(), 3000)
                ));
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// Runs `script` over ssh and returns its stdout; panics if it fails.
    pub fn must(&self, key: &Path, script: &str) -> String {
        let out = self.ssh_out(key, script);
        assert!(
            out.status.success(),
            "guest command failed: {script}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PxeGuest {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
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
