//! A guest run by `basalt boot` (the real CLI, no terminal: console in a log
//! file), with bounded waits on its console and on ssh. Every QEMU suite
//! drives its guests through this one type: `boot` for a disk image under
//! a firmware, `start` for any other `basalt boot` command line (a
//! datasource, `--pxe`), `start_unlocked` for the tests that need two
//! machines at once.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an ssh attempt may go without a packet from the guest once the
/// banner is in (kex, auth, PAM session, the command), before it gives up.
const SILENCE: Duration = Duration::from_secs(120);

/// One VM at a time: TCG on a small CI machine is slow enough already, and
/// the timeouts below assume the VM has the machine to itself.
static ONE_VM: Mutex<()> = Mutex::new(());

/// The right to run a VM: the process-wide mutex (tests of one binary run
/// in parallel threads) and an exclusive flock on a file in
/// CARGO_TARGET_TMPDIR (other test binaries of this target dir).
pub struct VmTurn {
    _file: File,
    _turn: MutexGuard<'static, ()>,
}

/// Waits for the VM turn; held until the returned value is dropped.
pub fn vm_turn() -> VmTurn {
    let turn = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm.lock");
    let file = File::create(&path).expect("creating the VM lock file");
    file.lock().expect("locking the VM lock file");
    VmTurn {
        _file: file,
        _turn: turn,
    }
}

pub struct Guest {
    child: Option<Child>,
    pub port: u16,
    pub console: PathBuf,
    pub stderr: PathBuf,
    pub started: Instant,
    pub tag: String,
    _turn: Option<VmTurn>,
}

/// Boots `image` (the test's own copy) under `firmware`, with `config`
/// through fw_cfg.
pub fn boot(image: &Path, firmware: &str, config: Option<&Path>, work: &Path, tag: &str) -> Guest {
    let mut args: Vec<OsString> = vec!["boot".into(), image.into()];
    for a in ["--firmware", firmware, "--memory", "2048", "--cpus", "2"] {
        args.push(a.into());
    }
    if let Some(c) = config {
        args.push("--config".into());
        args.push(c.into());
    }
    start(&args, work, tag)
}

/// Runs `basalt ARGS --ssh-port PORT --console-log work/<tag>.console.log`
/// (stderr in work/<tag>.stderr) once it is this test's turn to run a VM.
pub fn start(args: &[OsString], work: &Path, tag: &str) -> Guest {
    let turn = vm_turn();
    let mut g = start_unlocked(args, work, tag);
    g._turn = Some(turn);
    g
}

/// `start` without the VM turn, for a test that runs several machines at
/// once and serialises itself.
pub fn start_unlocked(args: &[OsString], work: &Path, tag: &str) -> Guest {
    let console = work.join(format!("{tag}.console.log"));
    let stderr = work.join(format!("{tag}.stderr"));
    let port = free_port();
    let err = File::create(&stderr).expect("creating the stderr file");
    let child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .arg("--ssh-port")
        .arg(port.to_string())
        .arg("--console-log")
        .arg(&console)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("starting basalt boot");
    let line: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    eprintln!(
        "{tag}: basalt {}, ssh port {port}, console {}",
        line.join(" "),
        console.display()
    );
    Guest {
        child: Some(child),
        port,
        console,
        stderr,
        started: Instant::now(),
        tag: tag.to_string(),
        _turn: None,
    }
}

/// `[a, b, ...]` as owned arguments for `start`.
pub fn args<S: AsRef<OsStr>>(list: &[S]) -> Vec<OsString> {
    list.iter().map(|a| a.as_ref().to_os_string()).collect()
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
    /// The console so far, without the serial line's carriage returns.
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).replace('\r', "")
    }

    /// What `basalt boot` wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(st)) => Some(format!("basalt boot exited ({st}): {}", self.stderr_text())),
            _ => None,
        }
    }

    /// Waits until the console holds `needle` at least `count` times;
    /// returns the time since QEMU started.
    pub fn wait_console(
        &mut self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Duration, String> {
        self.wait_console_unless(needle, count, &[], timeout)
    }

    /// `wait_console`, failing early once the console shows one of `fatal`
    /// (e.g. an /init error) without the needle.
    pub fn wait_console_unless(
        &mut self,
        needle: &str,
        count: usize,
        fatal: &[&str],
        timeout: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = self.console_text();
            if text.matches(needle).count() >= count {
                return Ok(self.started.elapsed());
            }
            if let Some(bad) = fatal.iter().find(|f| text.contains(**f)) {
                return Err(format!(
                    "{}: waiting for {needle:?}: the console shows {bad:?}\nconsole tail:\n{}",
                    self.tag,
                    tail(&text, 3000)
                ));
            }
            if let Some(why) = self.exited() {
                return Err(format!(
                    "{}: waiting for {needle:?}: {why}\nconsole tail:\n{}",
                    self.tag,
                    tail(&text, 3000)
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{}: {needle:?} (x{count}) not on the console within {timeout:?}\nstderr:\n{}\nconsole tail:\n{}",
                    self.tag,
                    self.stderr_text(),
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
            // is reported; a 30 s bound on the TCP connect and banner (a
            // guest whose sshd is not up yet refuses at once); after the
            // banner, only SILENCE bounds an attempt, so that a slow guest
            // (a loaded CI host under TCG) completes the login instead of
            // being abandoned half-way and retried from scratch.
            let out = self.ssh_raw(key, "true", 30, "INFO");
            if out.status.success() {
                return Ok(self.started.elapsed());
            }
            let last = String::from_utf8_lossy(&out.stderr).into_owned();
            if let Some(why) = self.exited() {
                return Err(format!(
                    "{}: waiting for ssh: {why}\nconsole tail:\n{}",
                    self.tag,
                    tail(&self.console_text(), 3000)
                ));
            }
            if start.elapsed() > timeout {
                // One more attempt at DEBUG2, so that the failure says in
                // which phase (banner, kex, auth, session) the login stalls.
                let verbose = self.ssh_raw(key, "true", 30, "DEBUG2");
                return Err(format!(
                    "{}: no ssh login within {timeout:?} (last: {})\nverbose attempt (exit {:?}):\n{}\nconsole tail:\n{}",
                    self.tag,
                    last.trim(),
                    verbose.status.code(),
                    tail(&String::from_utf8_lossy(&verbose.stderr), 4000),
                    tail(&self.console_text(), 3000)
                ));
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    fn ssh_raw(&self, key: &Path, script: &str, connect_timeout: u32, log_level: &str) -> Output {
        Command::new("ssh")
            // No host or user ssh_config: the options below are all there is.
            .args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
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
                // After the banner: give up after SILENCE without a packet
                // from the guest (the interval times the count), never hang.
                "-o",
                "ServerAliveInterval=15",
                "-o",
                &format!("ServerAliveCountMax={}", SILENCE.as_secs() / 15),
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
            "{}: guest command failed: {script}\nstdout: {out}\nstderr: {err}",
            self.tag
        );
        out
    }

    /// Stops the VM: killing `basalt boot` makes the kernel SIGTERM its QEMU
    /// (parent-death signal), which we then wait out.
    pub fn stop(mut self) {
        self.kill();
    }

    /// Kills the VM now (a power cut for the guest) and waits until QEMU
    /// has let go of the port and the image; does nothing the second time.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        // QEMU releases the image and the port once it has handled SIGTERM.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err()
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
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
