//! Running one of the tree's own programs against a staged root: the
//! program's working directory is the root, and `--root` names it by a fixed
//! alias, so nothing the program writes records the temporary directory's
//! random name (hwdb, sysusers, catalog stages).

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// The `--root` the programs get: their working directory, the staged root.
pub const ROOT_ALIAS: &str = "/proc/self/cwd";

/// Runs `cmd` (the tree's `what`, or a host stand-in in tests) in `root`
/// with `--root=ROOT_ALIAS` added; a non-zero exit is an error carrying
/// its stderr.
pub fn run(cmd: &mut Command, root: &Path, what: &str) -> Result<Output> {
    let out = cmd
        .current_dir(root)
        .arg(format!("--root={ROOT_ALIAS}"))
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}
