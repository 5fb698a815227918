//! Watching a booting VM without sampling error, and without loading the
//! guest while it is being timed: when a console line first appears, when
//! the guest first answers on the network and when sshd first sends its
//! banner, each timed as it happens.
//!
//! - The console is read from the VM's stdout by a thread that copies it to
//!   the console log and stamps the first line holding the marker.
//! - The guest is reachable once its kernel answers a connection to a
//!   forwarded port where nothing listens (it resets it). QEMU's user
//!   network accepts the host side of a forward at once and then retries
//!   its SYN to the guest with a growing back-off, so a held connection
//!   sees the guest's address come up seconds late: a fresh connection is
//!   started every [`PROBE_EVERY`] instead, whose first SYN goes out at once.
//! - sshd is then probed one connection at a time (the guest answers at
//!   once now): a reset means sshd is not listening yet, and the banner
//!   that it is. Probing sshd itself before the guest is reachable would
//!   leave many connections pending, and each would cost the guest a forked
//!   sshd session the moment it came up (with 32 pending, the first login
//!   came 17-26 s after the banner instead of about 8 s).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often a new connection to the closed port is started.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long one connection to the closed port waits for the guest's reset.
const REACH_HOLD: Duration = Duration::from_secs(2);
/// How long one sshd connection waits for the banner.
const BANNER_HOLD: Duration = Duration::from_secs(10);
/// Pause after sshd's port was reset (not listening yet).
const RETRY_AFTER_RESET: Duration = Duration::from_millis(100);
/// Most closed-port probes in flight at once.
const MAX_IN_FLIGHT: usize = 8;
/// The identification string every SSH server sends first (RFC 4253 4.2).
const SSH_BANNER: &[u8] = b"SSH-2.0-";

/// Seconds from `t0` at which an event was first seen, shared with the
/// thread that sees it.
#[derive(Clone, Default)]
struct Stamp(Arc<Mutex<Option<f64>>>);

impl Stamp {
    /// Records `at` unless an earlier time is already recorded.
    fn set(&self, at: f64) {
        if let Ok(mut g) = self.0.lock()
            && g.is_none_or(|old| at < old)
        {
            *g = Some(at);
        }
    }

    fn get(&self) -> Option<f64> {
        self.0.lock().ok().and_then(|g| *g)
    }
}

/// The watchers of one boot; they stop when this is dropped.
pub struct Watch {
    marker: Stamp,
    reachable: Stamp,
    banner: Stamp,
    stop: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Watch {
    /// Starts copying `console` (the VM's output) to `log`, watching it for
    /// `marker`, and probing the guest: `closed_port` (127.0.0.1) must be
    /// forwarded to a guest port where nothing listens, `ssh_port` to sshd.
    /// All timed from `t0`.
    pub fn start(
        t0: Instant,
        console: impl Read + Send + 'static,
        log: std::fs::File,
        marker: Option<&str>,
        closed_port: u16,
        ssh_port: u16,
    ) -> Watch {
        let w = Watch {
            marker: Stamp::default(),
            reachable: Stamp::default(),
            banner: Stamp::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (stamp, needle) = (
            w.marker.clone(),
            marker.map(str::as_bytes).map(<[u8]>::to_vec),
        );
        thread::spawn(move || copy_console(t0, console, log, needle, &stamp));
        let (reachable, banner, stop) = (w.reachable.clone(), w.banner.clone(), w.stop.clone());
        thread::spawn(move || {
            wait_reachable(t0, closed_port, &reachable, &stop);
            probe_sshd(t0, ssh_port, &banner, &stop);
        });
        w
    }

    /// When the guest first answered on the network.
    pub fn reachable(&self) -> Option<f64> {
        self.reachable.get()
    }

    /// When the marker was first seen on the console.
    pub fn marker(&self) -> Option<f64> {
        self.marker.get()
    }

    /// When sshd's banner was first received.
    pub fn banner(&self) -> Option<f64> {
        self.banner.get()
    }
}

/// Copies the console to `log` until it closes, stamping the first line
/// that holds `needle`.
fn copy_console(
    t0: Instant,
    mut console: impl Read,
    mut log: std::fs::File,
    needle: Option<Vec<u8>>,
    stamp: &Stamp,
) {
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match console.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = t0.elapsed().as_secs_f64();
        let _ = log.write_all(&buf[..n]);
        let Some(needle) = &needle else { continue };
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' {
                if line.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    stamp.set(at);
                }
                line.clear();
            }
        }
    }
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The peer sent this many bytes (up to `want`).
    Data(Vec<u8>),
    /// Closed or reset: the guest's kernel answered, nothing listens.
    Reset,
    /// Nothing within the hold time (or no connection at all).
    Silent,
}

/// Connects to 127.0.0.1:`port` and reads until `want` bytes, a close, or
/// `hold` passes.
fn connect(port: u16, hold: Duration, want: usize) -> Answer {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Answer::Silent;
    };
    if s.set_read_timeout(Some(hold)).is_err() {
        return Answer::Silent;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < want {
        match s.read(&mut buf) {
            Ok(0) => {
                return if got.is_empty() {
                    Answer::Reset
                } else {
                    Answer::Data(got)
                };
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return if got.is_empty() {
                    Answer::Silent
                } else {
                    Answer::Data(got)
                };
            }
            Err(_) => return Answer::Reset,
        }
    }
    Answer::Data(got)
}

/// Starts a connection to the closed port every [`PROBE_EVERY`] until one
/// is reset by the guest (or `stop` is set), and stamps that time.
fn wait_reachable(t0: Instant, port: u16, stamp: &Stamp, stop: &AtomicBool) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) && stamp.get().is_none() {
        if in_flight.load(Ordering::Relaxed) < MAX_IN_FLIGHT {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (stamp, in_flight) = (stamp.clone(), in_flight.clone());
            thread::spawn(move || {
                if connect(port, REACH_HOLD, 1) == Answer::Reset {
                    stamp.set(t0.elapsed().as_secs_f64());
                }
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        thread::sleep(PROBE_EVERY);
    }
}

/// One sshd connection at a time until the banner arrives (or `stop`).
fn probe_sshd(t0: Instant, port: u16, stamp: &Stamp, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match connect(port, BANNER_HOLD, SSH_BANNER.len()) {
            Answer::Data(d) if d.starts_with(SSH_BANNER) => {
                stamp.set(t0.elapsed().as_secs_f64());
                return;
            }
            Answer::Reset => thread::sleep(RETRY_AFTER_RESET),
            _ => thread::sleep(PROBE_EVERY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_keeps_the_earliest_time() {
        let s = Stamp::default();
        assert_eq!(s.get(), None);
        for (at, want) in [(5.0, 5.0), (7.0, 5.0), (3.0, 3.0)] {
            s.set(at);
            assert_eq!(s.get(), Some(want));
        }
    }

    #[test]
    fn connection_answers() {
        use std::net::TcpListener;
        let serve = |reply: Option<&'static [u8]>, hold: Duration| -> u16 {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap();
                if let Some(r) = reply {
                    c.write_all(r).unwrap();
                }
                thread::sleep(hold);
            });
            port
        };
        let banner = serve(Some(b"SSH-2.0-OpenSSH_10.0\r\n"), Duration::from_secs(1));
        assert!(matches!(
            connect(banner, Duration::from_secs(2), SSH_BANNER.len()),
            Answer::Data(d) if d.starts_with(SSH_BANNER)
        ));
        let closes = serve(None, Duration::ZERO);
        assert_eq!(connect(closes, Duration::from_secs(2), 1), Answer::Reset);
        let silent = serve(None, Duration::from_secs(2));
        assert_eq!(
            connect(silent, Duration::from_millis(200), 1),
            Answer::Silent
        );
        // Nothing listening on the host side at all: no connection.
        let unused = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            connect(unused, Duration::from_millis(200), 1),
            Answer::Silent
        );
    }

    #[test]
    fn console_marker_is_stamped_and_copied() {
        let dir = std::env::temp_dir().join(format!("watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log_path = dir.join("console");
        let log = std::fs::File::create(&log_path).unwrap();
        let stamp = Stamp::default();
        let text: &[u8] = b"one\nbasalt-init: provisioned from fw_cfg\nthree\n";
        copy_console(
            Instant::now(),
            text,
            log,
            Some(b"provisioned from".to_vec()),
            &stamp,
        );
        assert!(stamp.get().is_some());
        assert_eq!(std::fs::read(&log_path).unwrap(), text);
        let stamp = Stamp::default();
        let log = std::fs::File::create(&log_path).unwrap();
        copy_console(
            Instant::now(),
            &b"nothing here\n"[..],
            log,
            Some(b"x!".to_vec()),
            &stamp,
        );
        assert_eq!(stamp.get(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
