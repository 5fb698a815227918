//! Helpers of the update tests (builder/tests/updates.rs): a v2 build, the
//! update server, a plain file server for bad payloads, guests that may run
//! side by side (the etcd-lock test boots two), and payload surgery.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::guest::{self, Guest, tail};
use crate::common::image::EPOCH;

/// The `<name>-<version>.update` payload in a build's output directory.
pub fn payload_in(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "update"))
        .collect();
    found.sort();
    assert_eq!(
        found.len(),
        1,
        "expected one payload in {}: {found:?}",
        dir.display()
    );
    found.remove(0)
}

/// `basalt build --image-version VERSION` with the default signing key (the
/// one the shared v1 image was built with). `BASALT_UPDATE_V2_DIR=DIR`
/// reuses a finished build for iterating.
pub fn build_version(work: &Path, version: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("BASALT_UPDATE_V2_DIR") {
        return PathBuf::from(d);
    }
    let out = work.join(format!("out-{version}"));
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(["build", "--image-version", version, "-o"])
        .arg(&out)
        .current_dir(work)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("running basalt build");
    assert!(
        o.status.success(),
        "basalt build {version} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("update tests: built {version} in {:.0?}", start.elapsed());
    out
}

/// Offsets inside a payload file (crates/payload/README.md): metadata
/// length at byte 16, data offset at 32; the slot section comes first.
pub struct PayloadLayout {
    pub meta_start: u64,
    pub data_offset: u64,
    /// Size of the slot section (it starts at `data_offset`).
    pub slot_size: u64,
}

pub fn payload_layout(path: &Path) -> PayloadLayout {
    let bytes = std::fs::read(path).expect("reading the payload");
    assert_eq!(&bytes[..8], b"BASALTUP", "not a payload");
    let meta_len = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let data_offset = u64::from_le_bytes(bytes[32..40].try_into().unwrap());
    let meta: serde_json::Value =
        serde_json::from_slice(&bytes[64..64 + meta_len as usize]).expect("payload metadata");
    PayloadLayout {
        meta_start: 64,
        data_offset,
        slot_size: meta["slot"]["size"].as_u64().expect("slot size"),
    }
}

/// `basalt serve-updates DIR --listen 127.0.0.1:0`; killed on drop.
pub struct UpdateServer {
    child: Child,
    pub port: u16,
}

impl UpdateServer {
    pub fn start(dir: &Path, log: &Path) -> UpdateServer {
        let err = std::fs::File::create(log).expect("creating the server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .arg("serve-updates")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("starting basalt serve-updates");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reading the server's first line");
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "serve-updates printed {line:?}; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        UpdateServer { child, port }
    }

    /// The URL guests use (user networking: the host is 10.0.2.2).
    pub fn guest_url(&self) -> String {
        format!("http://10.0.2.2:{}", self.port)
    }
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the files of a directory as they are (GET only), for payloads the
/// update server would refuse to list. Runs until the test process ends.
pub fn file_server(dir: &Path) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding the file server");
    let port = l.local_addr().expect("addr").port();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    match r.read_line(&mut h) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if h == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let name = line
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let body = (!name.contains('/'))
                    .then(|| std::fs::read(dir.join(name)).ok())
                    .flatten();
                let _ = match body {
                    Some(b) => write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        b.len()
                    )
                    .and_then(|_| s.write_all(&b)),
                    None => s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            });
        }
    });
    port
}

/// A guest under `basalt boot` that, unlike common::guest::boot, does not
/// take the one-VM-at-a-time turn (the etcd-lock test runs two); the tests
/// serialise themselves. Killing it is a power cut for the guest. Failures
/// panic with the console tail.
pub struct Vm {
    guest: Guest,
    pub tag: String,
}

/// Bound for one boot to reach sshd under TCG.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(900);
/// basalt-init's last line before systemd.
pub const SWITCH_MARKER: &str = "basalt-init: switching root";

impl Vm {
    pub fn boot(image: &Path, config: &Path, work: &Path, tag: &str, memory_mib: u32) -> Vm {
        let memory = memory_mib.to_string();
        let args = guest::args(&[
            OsStr::new("boot"),
            image.as_os_str(),
            OsStr::new("--firmware"),
            OsStr::new("bios"),
            OsStr::new("--memory"),
            OsStr::new(&memory),
            OsStr::new("--cpus"),
            OsStr::new("2"),
            OsStr::new("--config"),
            config.as_os_str(),
        ]);
        let guest = guest::start_unlocked(&args, work, tag);
        Vm {
            tag: guest.tag.clone(),
            guest,
        }
    }

    pub fn console_text(&self) -> String {
        self.guest.console_text()
    }

    /// How many times the initramfs handed over to systemd so far.
    pub fn boots(&self) -> usize {
        self.console_text().matches(SWITCH_MARKER).count()
    }

    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{}: {why}\nconsole tail:\n{}",
            self.tag,
            tail(&self.console_text(), 4000)
        )
    }

    /// Waits until the console holds `needle` at least `count` times.
    pub fn wait_console(&mut self, needle: &str, count: usize, timeout: Duration) {
        if let Err(e) = self.guest.wait_console(needle, count, timeout) {
            panic!("{e}");
        }
    }

    /// `wait_console`, failing at once when the console shows one of `fatal`.
    pub fn wait_console_unless(&mut self, needle: &str, fatal: &[&str], timeout: Duration) {
        if let Err(e) = self.guest.wait_console_unless(needle, 1, fatal, timeout) {
            panic!("{e}");
        }
    }

    /// Waits for an ssh login on boot number `boot` (1-based: the console
    /// must show that many hand-overs to systemd first).
    pub fn wait_up(&mut self, key: &Path, boot: usize) -> Duration {
        let start = Instant::now();
        self.wait_console(SWITCH_MARKER, boot, BOOT_TIMEOUT);
        if let Err(e) = self
            .guest
            .wait_ssh(key, BOOT_TIMEOUT.saturating_sub(start.elapsed()))
        {
            panic!("{e}");
        }
        let took = start.elapsed();
        eprintln!(
            "update tests: {}: boot {boot} up after {took:.0?}",
            self.tag
        );
        took
    }

    /// Runs `script`; returns (success, stdout, stderr).
    pub fn ssh(&self, key: &Path, script: &str) -> (bool, String, String) {
        self.guest.ssh(key, script)
    }

    /// Runs `script` and returns stdout; fails the test if it fails.
    pub fn must(&self, key: &Path, script: &str) -> String {
        let (ok, out, err) = self.ssh(key, script);
        if !ok {
            self.fail(&format!(
                "guest command failed: {script}\nstdout: {out}\nstderr: {err}"
            ));
        }
        out
    }

    /// Waits until `script` succeeds (polling every 3 s).
    pub fn wait_for(&self, key: &Path, script: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let (ok, out, err) = self.ssh(key, script);
            if ok {
                return out;
            }
            if start.elapsed() > timeout {
                self.fail(&format!(
                    "{script:?} did not succeed in {timeout:?}\nstdout: {out}\nstderr: {err}"
                ));
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// Kills QEMU (through `basalt boot`): the guest loses power with
    /// whatever it had not written to the virtual disk.
    pub fn power_cut(&mut self) {
        self.guest.kill();
        eprintln!("update tests: {}: power cut", self.tag);
    }
}

/// A cloud-config with `pubkey` for core, and `update.conf` written as a
/// file (the Ignition-style route the poll timer reads) when given.
pub fn cloud_config(pubkey: &str, hostname: &str, update_conf: Option<&str>) -> String {
    let mut s =
        format!("#cloud-config\nhostname: {hostname}\nssh_authorized_keys:\n  - \"{pubkey}\"\n");
    if let Some(c) = update_conf {
        s.push_str("write_files:\n  - path: /etc/basalt/update.conf\n    permissions: \"0644\"\n    content: |\n");
        for l in c.lines() {
            s.push_str(&format!("      {l}\n"));
        }
    }
    s
}
