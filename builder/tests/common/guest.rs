//! A guest run by `basalt boot` (the real CLI, no terminal: console in a log
//! file), with bounded waits on its console and on ssh.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One VM at a time: TCG on a small CI machine is slow enough already, and
/// the timeouts below assume the VM has the machine to itself.
static ONE_VM: Mutex<()> = Mutex::new(());

pub struct Guest {
    child: Child,
    pub port: u16,
    pub console: PathBuf,
    pub stderr: PathBuf,
    pub started: Instant,
    _turn: MutexGuard<'static, ()>,
}

/// Boots `image` with `basalt boot --snapshot`-less (the copy is the test's
/// own) under `firmware`, with `config` through fw_cfg.
pub fn boot(image: &Path, firmware: &str, config: Option<&Path>, work: &Path, tag: &str) -> Guest {
    let turn = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    let console = work.join(format!("{tag}.console.log"));
    let stderr = work.join(format!("{tag}.stderr"));
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
    cmd.arg("boot")
        .arg(image)
        .args([
            "--firmware",
            firmware,
            "--ssh-port",
            &port.to_string(),
            "--memory",
            "2048",
            "--cpus",
            "2",
        ])
        .arg("--console-log")
        .arg(&console);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let err = std::fs::File::create(&stderr).expect("creating the stderr file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("starting basalt boot");
    eprintln!(
        "boot tests: {tag}: {firmware} boot, ssh port {port}, console {}",
        console.display()
    );
    Guest {
        child,
        port,
        console,
        stderr,
        started: Instant::now(),
        _turn: turn,
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("binding a free port");
    l.local_addr().expect("local addr").port()
}

/// The last `n` characters of a console log, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let start = text
        .char_indices()
        .rev()
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or(0);
    text[start..].replace('\r', "")
}

impl Guest {
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

    /// Waits until the console holds `needle` at least `count` times.
    pub fn wait_console(
        &mut self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = self.console_text();
            if text.matches(needle).count() >= count {
                return Ok(self.started.elapsed());
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

    /// Waits until `true` runs over ssh as `core` with `key`.
    pub fn wait_ssh(&mut self, key: &Path, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            // INFO, so that a refusal by sshd ("Connection closed by ...")
            // is reported; a 30 s handshake bound, so that a slow guest
            // completes the handshake instead of being abandoned half-way.
            let out = self.ssh_raw(key, "true", 30, "INFO");
            if out.status.success() {
                return Ok(self.started.elapsed());
            }
            let last = String::from_utf8_lossy(&out.stderr).into_owned();
            if let Some(why) = self.exited() {
                return Err(format!(
                    "waiting for ssh: {why}\nconsole tail:\n{}",
                    tail(&self.console_text(), 3000)
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "no ssh login within {timeout:?} (last: {})\nconsole tail:\n{}",
                    last.trim(),
                    tail(&self.console_text(), 3000)
                ));
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    fn ssh_raw(&self, key: &Path, script: &str, connect_timeout: u32, log_level: &str) -> Output {
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
                &format!("LogLevel={log_level}"),
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

    /// Runs `script` over ssh; returns (success, stdout, stderr).
    pub fn ssh(&self, key: &Path, script: &str) -> (bool, String, String) {
        let out = self.ssh_raw(key, script, 30, "ERROR");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// Runs `script` over ssh and returns its stdout; panics with the output if it fails.
    pub fn must(&self, key: &Path, script: &str) -> String {
        let (ok, out, err) = self.ssh(key, script);
        assert!(
            ok,
            "guest command failed: {script}\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Stops the VM: killing `basalt boot` makes the kernel SIGTERM its QEMU
    /// (parent-death signal), which we then wait out.
    pub fn stop(mut self) {
        self.kill_and_reap();
    }

    fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // QEMU releases the image and the port once it has handled SIGTERM.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline
            && std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err()
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// An ed25519 key pair made with ssh-keygen; returns (private key path, public key line).
pub fn keypair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(dir.join("id_ed25519.pub"));
    let st = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "basalt-boot-test",
            "-f",
        ])
        .arg(&key)
        .status()
        .expect("running ssh-keygen (apt install openssh-client)");
    assert!(st.success(), "ssh-keygen failed");
    let public =
        std::fs::read_to_string(dir.join("id_ed25519.pub")).expect("reading the public key");
    (key, public.trim().to_string())
}
