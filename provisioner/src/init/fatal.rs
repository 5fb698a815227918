//! Console messages and the fatal-error path: print `basalt-init: FATAL:`
//! on /dev/console and into the kernel log, wait the `panic=` delay, then
//! reboot (so a bad /usr slot can fall back). Never hangs: if the reboot
//! itself fails, /init exits, and the kernel panics and reboots.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

/// Kernel log levels (include/linux/kern_levels.h).
const KERN_CRIT: u8 = 2;
const KERN_WARNING: u8 = 4;
/// Progress lines go to the kernel log at debug level: kept in dmesg and
/// the journal, but not echoed to the console a second time (the kernel
/// prints log messages on `console=` up to its console log level).
const KERN_DEBUG: u8 = 7;

fn emit(level: u8, line: &str) {
    let text = format!("basalt-init: {line}\n");
    // The console is what a human or the test harness sees (serial ttyS0).
    if let Ok(mut c) = OpenOptions::new().write(true).open("/dev/console") {
        let _ = c.write_all(text.as_bytes());
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    // The kernel log keeps it for dmesg and the journal. Writing to kmsg
    // with a level prefix; ignored when /dev is not mounted yet.
    if let Ok(mut k) = OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = k.write_all(format!("<{level}>{text}").as_bytes());
    }
}

/// An informational line.
pub fn info(msg: impl AsRef<str>) {
    emit(KERN_DEBUG, msg.as_ref());
}

/// A warning: something is off but the boot continues.
pub fn warn(msg: impl AsRef<str>) {
    emit(KERN_WARNING, &format!("WARNING: {}", msg.as_ref()));
}

/// The text printed for a fatal error (kept separate for tests).
pub fn fatal_text(msg: &str, delay: Duration) -> String {
    format!("FATAL: {msg}; rebooting in {} s", delay.as_secs())
}

/// Print a fatal error, wait `delay`, reboot. Does not return.
pub fn fatal(msg: impl AsRef<str>, delay: Duration) -> ! {
    emit(KERN_CRIT, &fatal_text(msg.as_ref(), delay));
    std::thread::sleep(delay);
    rustix::fs::sync();
    let err = rustix::system::reboot(rustix::system::RebootCommand::Restart);
    emit(
        KERN_CRIT,
        &format!("FATAL: reboot failed ({err:?}); exiting so the kernel panics and reboots"),
    );
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_text_names_delay() {
        assert_eq!(
            fatal_text("no boot disk", Duration::from_secs(15)),
            "FATAL: no boot disk; rebooting in 15 s"
        );
    }
}
