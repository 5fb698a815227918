//! switch_root: move the API mounts into the real root, free the
//! initramfs, make the real root `/` (mount move + chroot) and exec the
//! real init as PID 1.

use std::convert::Infallible;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use super::error::{InitError, Result};
use super::fatal;

/// Mounts carried over into the real root, in order.
pub const MOVED: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];
/// statfs f_type of the filesystems an initramfs lives on (linux/magic.h).
const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// (from, to) pairs of the mount moves.
pub fn move_plan(sysroot: &Path) -> Vec<(PathBuf, PathBuf)> {
    MOVED
        .iter()
        .map(|m| (PathBuf::from(m), sysroot.join(&m[1..])))
        .collect()
}

/// The real init inside the new root, as seen from the initramfs.
pub fn init_in(sysroot: &Path, init: &Path) -> PathBuf {
    sysroot.join(init.strip_prefix("/").unwrap_or(init))
}

/// Delete everything under `dir` that lives on `dev` (the initramfs),
/// never crossing into other filesystems (the moved mounts, the sysroot).
/// Returns how many entries could not be removed.
pub fn remove_same_fs(dir: &Path, dev: u64) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 1;
    };
    let mut failed = 0;
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            failed += 1;
            continue;
        };
        if m.dev() != dev {
            continue;
        }
        if m.is_dir() {
            failed += remove_same_fs(&p, dev);
            // A directory that still holds a mount point stays.
            if std::fs::remove_dir(&p).is_err() {
                failed += 1;
            }
        } else if std::fs::remove_file(&p).is_err() {
            failed += 1;
        }
    }
    failed
}

/// Free the initramfs contents, only if `/` really is a ramfs or tmpfs.
fn free_initramfs() {
    let Ok(st) = rustix::fs::statfs("/") else {
        return;
    };
    let magic = i64::from(st.f_type);
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        fatal::warn(format!(
            "/ is not an initramfs (statfs type {magic:#x}); not freeing it"
        ));
        return;
    }
    let Ok(root) = std::fs::metadata("/") else {
        return;
    };
    let failed = remove_same_fs(Path::new("/"), root.dev());
    if failed > 0 {
        fatal::warn(format!("{failed} initramfs entries could not be freed"));
    }
}

/// Switch into `sysroot` and exec `init` (an absolute path in the new root);
/// `in_root` runs in between, as PID 1 in the new root with the API mounts
/// in place.
pub fn switch_root(sysroot: &Path, init: &Path, in_root: impl FnOnce()) -> Result<Infallible> {
    let err = |why: String| InitError::SwitchRoot {
        sysroot: sysroot.to_path_buf(),
        why,
    };
    let target = init_in(sysroot, init);
    if std::fs::metadata(&target).is_err() {
        return Err(err(format!(
            "{} does not exist in the new root",
            init.display()
        )));
    }
    for (from, to) in move_plan(sysroot) {
        std::fs::create_dir_all(&to).map_err(|e| err(format!("creating {}: {e}", to.display())))?;
        rustix::mount::mount_move(&from, &to).map_err(|e| {
            err(format!(
                "moving {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })?;
    }
    free_initramfs();
    std::env::set_current_dir(sysroot).map_err(|e| err(format!("chdir: {e}")))?;
    rustix::mount::mount_move(".", "/")
        .map_err(|e| err(format!("moving the new root onto /: {e}")))?;
    rustix::process::chroot(".").map_err(|e| err(format!("chroot: {e}")))?;
    std::env::set_current_dir("/").map_err(|e| err(format!("chdir /: {e}")))?;
    in_root();
    fatal::info(format!(
        "switching root to {}, starting {}",
        sysroot.display(),
        init.display()
    ));
    let e = std::process::Command::new(init).exec();
    Err(err(format!("exec {}: {e}", init.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_init_path() {
        let plan = move_plan(Path::new("/sysroot"));
        assert_eq!(
            plan[0],
            (PathBuf::from("/dev"), PathBuf::from("/sysroot/dev"))
        );
        assert_eq!(
            plan[3],
            (PathBuf::from("/run"), PathBuf::from("/sysroot/run"))
        );
        assert_eq!(
            init_in(Path::new("/sysroot"), Path::new("/usr/lib/systemd/systemd")),
            PathBuf::from("/sysroot/usr/lib/systemd/systemd")
        );
    }

    #[test]
    fn remove_same_fs_clears_a_tree() {
        let base = std::env::temp_dir().join(format!("basalt-init-sw-{}", std::process::id()));
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::write(base.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("nowhere", base.join("l")).unwrap();
        let dev = std::fs::metadata(&base).unwrap().dev();
        assert_eq!(remove_same_fs(&base, dev), 0);
        assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0);
        // Entries on another device are left alone.
        std::fs::write(base.join("keep"), "x").unwrap();
        assert_eq!(remove_same_fs(&base, dev.wrapping_add(1)), 0);
        assert!(base.join("keep").exists());
        std::fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn missing_init_fails_before_touching_mounts() {
        let err = switch_root(
            Path::new("/nonexistent-sysroot"),
            Path::new("/usr/lib/systemd/systemd"),
            || panic!("must not run"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not exist in the new root"),
            "{err}"
        );
    }
}
