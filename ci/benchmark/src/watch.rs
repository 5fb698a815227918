//! Watching a booting VM without sampling error: when a console line first
//! appears and when sshd first sends its banner, each timed as it happens.
//!
//! - The console is read from the VM's stdout by a thread that copies it to
//!   the console log and stamps the first line holding the marker.
//! - sshd is probed by a fresh connection every [`PROBE_EVERY`], each in its
//!   own thread and held up to [`PROBE_HOLD`]. QEMU's user network accepts
//!   the host side of a forwarded port at once and then retries its SYN to
//!   the guest with a growing back-off, so one held connection would see the
//!   guest's readiness seconds late, and one connection at a time would miss
//!   it by up to the hold time; a new connection every 250 ms sees it within
//!   about 250 ms.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often a new connection to the forwarded port is started.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long one connection waits for the banner.
const PROBE_HOLD: Duration = Duration::from_secs(5);
/// Most probes in flight at once (each holds a thread and a socket).
const MAX_IN_FLIGHT: usize = 32;
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
    /// `marker`, and probing sshd on 127.0.0.1:`port`, all timed from `t0`.
    pub fn start(
        t0: Instant,
        console: impl Read + Send + 'static,
        log: std::fs::File,
        marker: Option<&str>,
        port: u16,
    ) -> Watch {
        let w = Watch {
            marker: Stamp::default(),
            banner: Stamp::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (stamp, needle) = (
            w.marker.clone(),
            marker.map(str::as_bytes).map(<[u8]>::to_vec),
        );
        thread::spawn(move || copy_console(t0, console, log, needle, &stamp));
        let (stamp, stop) = (w.banner.clone(), w.stop.clone());
        thread::spawn(move || probe_sshd(t0, port, &stamp, &stop));
        w
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

/// Starts a connection every [`PROBE_EVERY`] until one gets the banner or
/// `stop` is set.
fn probe_sshd(t0: Instant, port: u16, stamp: &Stamp, stop: &AtomicBool) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) && stamp.get().is_none() {
        if in_flight.load(Ordering::Relaxed) < MAX_IN_FLIGHT {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (stamp, in_flight) = (stamp.clone(), in_flight.clone());
            thread::spawn(move || {
                if banner_now(port) {
                    stamp.set(t0.elapsed().as_secs_f64());
                }
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        thread::sleep(PROBE_EVERY);
    }
}

/// One connection: whether sshd's banner arrives within [`PROBE_HOLD`].
fn banner_now(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    if s.set_read_timeout(Some(PROBE_HOLD)).is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < SSH_BANNER.len() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(SSH_BANNER)
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
