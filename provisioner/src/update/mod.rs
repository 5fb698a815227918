//! The on-machine update agent behind `basalt-update`: applies signed A/B
//! payloads (crates/payload) to the inactive /usr slot, reports and changes
//! the boot-slot state kept in the ESP's grubenv (crates/grub), and carries
//! out the reboot strategy. See README.md in this directory.

pub mod agent;
pub mod config;
pub mod disk;
pub mod esp;
pub mod etcd;
pub mod poll;
pub mod reboot;
pub mod source;
pub mod status;
pub mod write;

#[cfg(test)]
mod poll_tests;
#[cfg(test)]
mod tests;

pub use agent::{Apply, ApplyOptions, Machine, Rollback, Stage, apply, mark_good, rollback};
pub use config::{Strategy, UpdateConf};
pub use status::{Status, status};

/// The slot names in the grubenv state, in factory order.
pub const SLOTS: [char; 2] = ['A', 'B'];
/// Public key the image carries for payload signatures.
pub const DEFAULT_KEY: &str = "/usr/share/basalt/update.pub";
/// Reboot strategy and update server (written by basalt-provision).
pub const DEFAULT_CONF: &str = "/etc/basalt/update.conf";
/// Trial boots a freshly applied slot gets (issue 6: tries = 1).
pub const TRIAL_TRIES: u8 = 1;

/// The slot that is not `s`.
pub fn other(s: char) -> char {
    if s == 'A' { 'B' } else { 'A' }
}

/// The booted slot from a kernel command line (`basalt.slot=a|b`, either
/// case); `None` when absent.
pub fn booted_slot(cmdline: &str) -> anyhow::Result<Option<char>> {
    let mut found = None;
    for w in cmdline.split_ascii_whitespace() {
        if let Some(v) = w.strip_prefix("basalt.slot=") {
            let s = match v {
                "a" | "A" => 'A',
                "b" | "B" => 'B',
                _ => anyhow::bail!("kernel command line: basalt.slot={v} is not a or b"),
            };
            found = Some(s);
        }
    }
    Ok(found)
}
