//! The reboot strategy after a successful apply.
//!
//! - `off`: nothing; the update takes effect at the next reboot.
//! - `reboot`: reboot at once.
//! - `best-effort` (the default): reboot without a lock, and say so (it
//!   does not probe for etcd; choose `etcd-lock` explicitly).
//! - `etcd-lock`: take a slot of the cluster's reboot semaphore in etcd
//!   ([`super::etcd`]), waiting while all are taken, then reboot; the slot is
//!   given back by `mark-good` after the new boot.

use std::process::Command;

use anyhow::{Context, Result, bail};

use super::config::Strategy;

/// What the strategy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No reboot (strategy off).
    Staged,
    /// The reboot command was started.
    Rebooting,
}

/// Carries out `strategy`; `reboot_cmd` is the command that reboots
/// (`systemctl reboot` on a machine).
pub fn after_apply(
    strategy: &Strategy,
    reboot_cmd: &[String],
    lock: Option<&super::etcd::LockSettings>,
) -> Result<Outcome> {
    match strategy {
        Strategy::Off => Ok(Outcome::Staged),
        Strategy::Reboot => run_reboot(reboot_cmd),
        Strategy::BestEffort => {
            eprintln!(
                "basalt-update: reboot strategy best-effort: rebooting without a lock (set etcd-lock to coordinate with a cluster)"
            );
            run_reboot(reboot_cmd)
        }
        Strategy::EtcdLock => {
            let lock = lock.context("etcd-lock needs the etcd settings")?;
            super::etcd::acquire(lock).context("taking the reboot lock")?;
            run_reboot(reboot_cmd)
        }
    }
}

fn run_reboot(reboot_cmd: &[String]) -> Result<Outcome> {
    let (prog, args) = reboot_cmd
        .split_first()
        .context("the reboot command is empty")?;
    let st = Command::new(prog)
        .args(args)
        .status()
        .with_context(|| format!("running {}", reboot_cmd.join(" ")))?;
    if !st.success() {
        bail!("{} failed: {st}", reboot_cmd.join(" "));
    }
    Ok(Outcome::Rebooting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("rebooted");
        let cmd = vec!["touch".to_string(), marker.display().to_string()];
        let run = |s: &Strategy, c: &[String]| after_apply(s, c, None);
        assert_eq!(run(&Strategy::Off, &cmd).unwrap(), Outcome::Staged);
        assert!(!marker.exists());
        assert_eq!(run(&Strategy::Reboot, &cmd).unwrap(), Outcome::Rebooting);
        assert!(marker.exists());
        std::fs::remove_file(&marker).unwrap();
        assert_eq!(
            run(&Strategy::BestEffort, &cmd).unwrap(),
            Outcome::Rebooting
        );
        assert!(marker.exists());
        std::fs::remove_file(&marker).unwrap();
        let e = run(&Strategy::EtcdLock, &cmd).unwrap_err().to_string();
        assert!(e.contains("etcd settings"), "{e}");
        let e = run(&Strategy::Reboot, &["false".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed"), "{e}");
        assert!(run(&Strategy::Reboot, &[]).is_err());
        // etcd unreachable: no reboot.
        let lock = crate::update::etcd::LockSettings {
            endpoint: "http://127.0.0.1:9".into(),
            group: None,
            id: "m".into(),
            marker: dir.path().join("held"),
            poll: std::time::Duration::from_millis(1),
            max_wait: Some(std::time::Duration::ZERO),
        };
        let e = format!(
            "{:#}",
            after_apply(&Strategy::EtcdLock, &cmd, Some(&lock)).unwrap_err()
        );
        assert!(e.contains("reboot lock"), "{e}");
        assert!(!marker.exists(), "no reboot without the lock");
    }
}
