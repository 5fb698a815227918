//! One timed boot of either side of the boot benchmark: the QEMU process
//! (its console copied and watched, see `watch.rs`), the ssh login that ends
//! the timing, and the untimed `systemd-analyze` record taken after it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::watch::Watch;

/// Bound for one boot to an ssh login (TCG on a loaded 2-core machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);

/// A guest TCP port where nothing listens in either image (discard, RFC
/// 863): the guest's kernel resets a connection to it once the guest has its
/// address, which is how the watcher sees the network come up.
pub const CLOSED_GUEST_PORT: u16 = 9;

pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

pub fn keypair(dir: &Path) -> Result<(PathBuf, String)> {
    let key = dir.join("id_ed25519");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .context("running ssh-keygen")?;
    if !st.success() {
        bail!("ssh-keygen failed");
    }
    let public =
        std::fs::read_to_string(key.with_extension("pub")).context("reading the public key")?;
    Ok((key, public.trim().to_string()))
}

/// Where the boot went, recorded after the timed login (untimed): the guest's
/// `systemd-analyze` summary, the chain to sshd and the slowest units.
const ANALYZE: &str = "timeout 600 systemctl is-system-running --wait; systemd-analyze; \
    systemd-analyze critical-chain ssh.service; systemd-analyze blame | head -n 30";

/// Runs [`ANALYZE`] in the guest and writes its output to `out`; a failure
/// is logged, never fatal (the timing is already taken).
pub fn record_analysis(key: &Path, port: u16, user: &str, out: &Path) {
    let o = ssh_cmd(key, port, user)
        .arg(ANALYZE)
        .stdin(Stdio::null())
        .output();
    match o {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            if let Some(l) = text.lines().find(|l| l.starts_with("Startup finished")) {
                eprintln!("bench:   guest: {l}");
            }
            if let Err(e) = std::fs::write(out, text.as_bytes()) {
                eprintln!("bench:   writing {}: {e}", out.display());
            } else {
                eprintln!("bench:   systemd-analyze output in {}", out.display());
            }
        }
        Err(e) => eprintln!("bench:   systemd-analyze over ssh failed: {e}"),
    }
}

fn ssh_cmd(key: &Path, port: u16, user: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args([
        "-q",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        // Only tried once sshd has sent its banner: a slow first login under
        // TCG is waited for, not abandoned and restarted.
        "ConnectTimeout=60",
        "-p",
    ])
    .arg(port.to_string())
    .arg("-i")
    .arg(key)
    .arg(format!("{user}@127.0.0.1"));
    c
}

fn ssh_ok(key: &Path, port: u16, user: &str) -> bool {
    ssh_cmd(key, port, user)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Seconds from QEMU's start to each milestone of one boot.
pub struct Times {
    /// The console marker, when one was watched for and seen.
    pub marker: Option<f64>,
    /// The guest first answered on the network (its address is up).
    pub reachable: f64,
    /// sshd's banner on the forwarded port.
    pub accepting: f64,
    /// The first ssh login that ran a command.
    pub login: f64,
}

/// A running boot: its process group is killed on drop.
pub struct Vm {
    child: Child,
    console: PathBuf,
    watch: Watch,
    t0: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

impl Vm {
    /// Starts `cmd` with its output copied to `console`, watched for
    /// `marker` and for sshd on `port` (see [`Watch`]), timed from now.
    pub fn spawn(
        mut cmd: Command,
        console: PathBuf,
        marker: Option<&str>,
        closed_port: u16,
        port: u16,
    ) -> Result<Vm> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(&console)
            .with_context(|| format!("creating {}", console.display()))?;
        let (reader, writer) = std::io::pipe().context("creating the console pipe")?;
        cmd.stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0);
        let t0 = Instant::now();
        let child = cmd.spawn().context("starting the VM")?;
        // The parent's copies of the pipe's write end went with `cmd`'s
        // stdio when it was spawned; drop `cmd` so the reader sees EOF.
        drop(cmd);
        let watch = Watch::start(t0, reader, log, marker, closed_port, port);
        Ok(Vm {
            child,
            console,
            watch,
            t0,
        })
    }

    /// Seconds from the start to the console marker (if one was watched and
    /// seen; an error if `required` and never seen), to sshd's banner and to
    /// an ssh login.
    pub fn wait(
        &mut self,
        required: Option<&str>,
        key: &Path,
        port: u16,
        user: &str,
    ) -> Result<Times> {
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "the VM exited ({st}) before an ssh login; console: {}",
                    self.console.display()
                );
            }
            if let Some(accepting) = self.watch.banner()
                && ssh_ok(key, port, user)
            {
                let login = self.t0.elapsed().as_secs_f64();
                let marked = self.watch.marker();
                if let Some(m) = required
                    && marked.is_none()
                {
                    bail!("ssh answered but {m:?} never reached the console");
                }
                return Ok(Times {
                    marker: marked,
                    reachable: self.watch.reachable().unwrap_or(accepting),
                    accepting,
                    login,
                });
            }
            if self.t0.elapsed() > BOOT_TIMEOUT {
                bail!(
                    "no ssh login within {BOOT_TIMEOUT:?}; console: {}",
                    self.console.display()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
