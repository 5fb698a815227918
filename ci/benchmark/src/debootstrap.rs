//! The usual way, as the baseline of entry 1: `debootstrap --variant=minbase
//! trixie` and `apt-get install` of the same package set in the chroot, with
//! warm caches (debootstrap's --cache-dir and apt's archives directory bound
//! into the chroot). The first run warms both caches; the timed run reuses
//! them. Mounts live in a private mount namespace (`unshare -m`), so they
//! vanish with the command.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::run::{Cmd, Measured, timed};

/// Positional arguments: ROOT DEB_CACHE APT_ARCHIVES MIRROR PACKAGE...
const SCRIPT: &str = r#"set -eu
root=$1; cache=$2; archives=$3; mirror=$4; shift 4
debootstrap --variant=minbase --cache-dir="$cache" trixie "$root" "$mirror" >&2
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
exec unshare --mount --propagation private sh -euc '
  root=$1; archives=$2; shift 2
  mount --bind "$archives" "$root/var/cache/apt/archives"
  mount -t proc proc "$root/proc"
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends "$@" >&2
' sh "$root" "$archives" "$@"
"#;

fn run_once(work: &Path, name: &str, mirror: &str, packages: &[String]) -> Result<Measured> {
    let root = work.join(name);
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let cache = work.join("deb-cache");
    let archives = work.join("apt-archives");
    for d in [&cache, &archives] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let m = timed(
        &Cmd::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("sh")
            .arg(&root)
            .arg(&cache)
            .arg(&archives)
            .arg(mirror)
            .args(packages.iter().map(String::as_str)),
        work,
    );
    std::fs::remove_dir_all(&root).ok();
    m
}

fn is_root() -> Result<bool> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        == Some("0"))
}

/// Time the usual way; an error says why it could not run.
pub fn baseline(work: &Path, mirror: Option<&str>, packages: &[String]) -> Result<Measured> {
    if !is_root()? {
        bail!("debootstrap and chroot need root");
    }
    for tool in [
        "/usr/sbin/debootstrap",
        "/usr/bin/unshare",
        "/usr/sbin/chroot",
    ] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing (apt-get install debootstrap util-linux coreutils)");
        }
    }
    let mirror = mirror.context("basalt -v did not report the mirror it discovered")?;
    let stamp = work.join("debootstrap-warm.stamp");
    let want = format!("{mirror}\n{}\n", packages.join(" "));
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        eprintln!("bench: warming debootstrap and apt caches (untimed; downloads on first use)");
        run_once(work, "debootstrap-warm", mirror, packages).context("warm-up run")?;
        std::fs::write(&stamp, &want).with_context(|| format!("writing {}", stamp.display()))?;
    } else {
        eprintln!("bench: debootstrap and apt caches are warm from an earlier run");
    }
    eprintln!(
        "bench: timing debootstrap + apt-get install ({} packages)",
        packages.len()
    );
    run_once(work, "debootstrap-timed", mirror, packages).context("timed run")
}

/// The same install as the baseline, kept at WORK/boot-root for the boot
/// benchmark (untimed; reuses the warm caches). Rebuilt when the mirror or
/// the package set changed.
pub fn kept_root(
    work: &Path,
    mirror: Option<&str>,
    packages: &[String],
) -> Result<std::path::PathBuf> {
    if !is_root()? {
        bail!("debootstrap and chroot need root");
    }
    let mirror = mirror.context("basalt -v did not report the mirror it discovered")?;
    let root = work.join("boot-root");
    let stamp = work.join("boot-root.stamp");
    let want = format!("{mirror}\n{}\n", packages.join(" "));
    if root.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(root);
    }
    let _ = std::fs::remove_file(&stamp);
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let cache = work.join("deb-cache");
    let archives = work.join("apt-archives");
    for d in [&cache, &archives] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    eprintln!("bench: installing the conventional root for the boot benchmark (untimed)");
    timed(
        &Cmd::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("sh")
            .arg(&root)
            .arg(&cache)
            .arg(&archives)
            .arg(mirror)
            .args(packages.iter().map(String::as_str)),
        work,
    )?;
    std::fs::write(&stamp, &want).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(root)
}
