//! Helpers for the datasource and toolbox suites: a guest under
//! `basalt boot` with any extra arguments (a `--datasource`), waits on its
//! console and on ssh, and the ROOT filesystem read offline after the VM is
//! stopped (journal replayed by e2fsck, files pulled out with debugfs), so
//! a test can stop at the initramfs line "provisioned from" instead of
//! booting to sshd.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::common::guest::tail;

/// One VM at a time in this test binary (TCG on a small machine).
static ONE_VM: Mutex<()> = Mutex::new(());

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tools a QEMU suite needs; prints a loud SKIPPED line naming the
/// first one missing.
pub fn tools_present(suite: &str, tools: &[(&str, &str)]) -> bool {
    for (tool, package) in tools {
        if !have(tool) {
            eprintln!("SKIPPED {suite}: {tool} is not installed (apt install {package})");
            return false;
        }
    }
    true
}

pub struct CloudVm {
    child: Child,
    pub port: u16,
    pub console: PathBuf,
    pub stderr: PathBuf,
    pub started: Instant,
    _turn: MutexGuard<'static, ()>,
    _machine_turn: std::fs::File,
}

/// One VM at a time across this target dir's test binaries too (an
/// exclusive flock on a file in CARGO_TARGET_TMPDIR, held while the VM runs).
fn machine_turn() -> std::fs::File {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cloud-vm.lock");
    let f = std::fs::File::create(&path).expect("creating the VM lock file");
    f.lock().expect("locking the VM lock file");
    f
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("binding a free port");
    l.local_addr().expect("local addr").port()
}

/// `basalt boot IMAGE --firmware bios` plus `extra` (e.g. `--datasource
/// ec2 --config FILE`), console and stderr in `work/<tag>.*`.
pub fn boot(image: &Path, extra: &[&std::ffi::OsStr], work: &Path, tag: &str) -> CloudVm {
    let turn = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    let machine = machine_turn();
    let console = work.join(format!("{tag}.console.log"));
    let stderr = work.join(format!("{tag}.stderr"));
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("boot")
        .arg(image)
        .args(["--firmware", "bios", "--memory", "2048", "--cpus", "2"])
        .arg("--ssh-port")
        .arg(port.to_string())
        .arg("--console-log")
        .arg(&console)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("creating the stderr file"))
        .spawn()
        .expect("starting basalt boot");
    eprintln!("{tag}: ssh port {port}, console {}", console.display());
    CloudVm {
        child,
        port,
        console,
        stderr,
        started: Instant::now(),
        _turn: turn,
        _machine_turn: machine,
    }
}

impl CloudVm {
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).replace('\r', "")
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!("basalt boot exited ({st}): {}", self.stderr_text())),
            _ => None,
        }
    }

    /// Waits until the console holds `needle`; the error carries the
    /// console tail. Fails early on a line in `fatal` (e.g. an /init error).
    pub fn wait_console(
        &mut self,
        needle: &str,
        fatal: &[&str],
        timeout: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = self.console_text();
            if text.contains(needle) {
                return Ok(self.started.elapsed());
            }
            if let Some(bad) = fatal.iter().find(|f| text.contains(**f)) {
                return Err(format!(
                    "waiting for {needle:?}: the console shows {bad:?}\nconsole tail:\n{}",
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
                    "{needle:?} not on the console within {timeout:?}\nstderr:\n{}\nconsole tail:\n{}",
                    self.stderr_text(),
                    tail(&text, 3000)
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn ssh_raw(&self, key: &Path, script: &str, connect_timeout: u32) -> Output {
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
                &format!("ConnectTimeout={connect_timeout}"),
                "core@127.0.0.1",
                "--",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }

    /// Waits until `true` runs over ssh as `core` with `key`.
    pub fn wait_ssh(&mut self, key: &Path, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let out = self.ssh_raw(key, "true", 20);
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
                    "no ssh login within {timeout:?} (last: {})\nconsole tail:\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    tail(&self.console_text(), 3000)
                ));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Runs `script` over ssh; returns (success, stdout, stderr).
    pub fn ssh(&self, key: &Path, script: &str) -> (bool, String, String) {
        let out = self.ssh_raw(key, script, 30);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// Runs `script` over ssh and returns its stdout; panics if it fails.
    pub fn must(&self, key: &Path, script: &str) -> String {
        let (ok, out, err) = self.ssh(key, script);
        assert!(
            ok,
            "guest command failed: {script}\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Stops the VM (killing `basalt boot` makes the kernel SIGTERM its
    /// QEMU) and waits until QEMU has let go of the port and the image.
    pub fn stop(mut self) {
        self.kill_and_reap();
    }

    fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline
            && std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err()
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for CloudVm {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The ROOT filesystem of a stopped guest's disk, copied out of the image
/// (sparse), its journal replayed, checked clean by e2fsck, and selected
/// directories dumped with debugfs into `dir/tree`.
pub struct RootFs {
    pub tree: PathBuf,
    file: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    out
}

impl RootFs {
    /// `offset` is ROOT's start in `image`; ROOT runs to the end of the disk
    /// or `size` bytes, whichever the guest left (it may have grown it).
    pub fn open(image: &Path, offset: u64, dir: &Path, dirs: &[&str]) -> RootFs {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("creating the ROOT scratch dir");
        let file = dir.join("root.ext4");
        let out = run(
            Command::new("dd")
                .arg(format!("if={}", image.display()))
                .arg(format!("of={}", file.display()))
                .args(["bs=4M", "iflag=skip_bytes", "conv=sparse", "status=none"])
                .arg(format!("skip={offset}")),
            "dd",
        );
        assert!(
            out.status.success(),
            "copying ROOT out of {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The VM was killed: replay the journal (e2fsck exits 1 when it
        // changed something, e.g. replayed), then demand a clean check.
        let out = run(Command::new("e2fsck").args(["-fy"]).arg(&file), "e2fsck");
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 1,
            "e2fsck -fy on ROOT exited {code}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = run(Command::new("e2fsck").args(["-fn"]).arg(&file), "e2fsck");
        assert!(
            out.status.success(),
            "ROOT is not clean after the journal replay:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree).expect("creating the dump dir");
        for d in dirs {
            let dest = tree.join(d.trim_start_matches('/'));
            let parent = dest.parent().expect("dump parent");
            std::fs::create_dir_all(parent).expect("creating the dump parent");
            let out = run(
                Command::new("debugfs")
                    .arg("-R")
                    .arg(format!("rdump {d} {}", parent.display()))
                    .arg(&file),
                "debugfs",
            );
            assert!(
                out.status.success(),
                "debugfs rdump {d}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        RootFs { tree, file }
    }

    /// A path under the dumped directories (absolute, as on the machine).
    pub fn path(&self, p: &str) -> PathBuf {
        self.tree.join(p.trim_start_matches('/'))
    }

    /// The text of a dumped file; panics with the path if it is missing.
    pub fn text(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p))
            .unwrap_or_else(|e| panic!("{p} on ROOT: {e} (dumped into {})", self.tree.display()))
    }

    pub fn exists(&self, p: &str) -> bool {
        std::fs::symlink_metadata(self.path(p)).is_ok()
    }

    /// A symlink's target; panics if `p` is not a symlink.
    pub fn link(&self, p: &str) -> String {
        std::fs::read_link(self.path(p))
            .unwrap_or_else(|e| panic!("{p} on ROOT is not a symlink: {e}"))
            .display()
            .to_string()
    }

    /// `debugfs -R "stat P"` output (mode, owner), for what rdump may not keep.
    pub fn stat(&self, p: &str) -> String {
        let out = run(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("stat {p}"))
                .arg(&self.file),
            "debugfs",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RootFs {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
