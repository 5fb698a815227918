//! The reboot strategy after a successful apply.
//!
//! - `off`: nothing; the update takes effect at the next reboot.
//! - `reboot`: reboot at once.
//! - `best-effort`: CoreOS's default, etcd-lock when etcd is configured;
//!   Basalt has no etcd client yet, so it is `reboot` and says so.
//! - `etcd-lock`: not implemented yet: refused with a clear error (the
//!   update stays staged for the next reboot).

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
pub fn after_apply(strategy: &Strategy, reboot_cmd: &[String]) -> Result<Outcome> {
    match strategy {
        Strategy::Off => Ok(Outcome::Staged),
        Strategy::Reboot | Strategy::BestEffort => {
            if *strategy == Strategy::BestEffort {
                eprintln!(
                    "basalt-update: reboot strategy best-effort: no etcd lock support yet, rebooting without a lock"
                );
            }
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
        Strategy::EtcdLock => bail!(
            "reboot strategy etcd-lock is not implemented yet; the update is staged and takes effect at the next reboot (set REBOOT_STRATEGY=\"off\" or \"reboot\" in /etc/basalt/update.conf)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("rebooted");
        let cmd = vec!["touch".to_string(), marker.display().to_string()];
        assert_eq!(after_apply(&Strategy::Off, &cmd).unwrap(), Outcome::Staged);
        assert!(!marker.exists());
        assert_eq!(
            after_apply(&Strategy::Reboot, &cmd).unwrap(),
            Outcome::Rebooting
        );
        assert!(marker.exists());
        let e = after_apply(&Strategy::EtcdLock, &cmd)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not implemented"), "{e}");
        let e = after_apply(&Strategy::Reboot, &["false".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed"), "{e}");
        assert!(after_apply(&Strategy::Reboot, &[]).is_err());
    }
}
