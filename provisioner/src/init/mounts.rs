//! The API filesystems /init mounts first, and mounting helpers.

use std::path::Path;

use rustix::mount::{MountFlags, mount};

use super::error::{InitError, Result};

/// One mount of the early table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyMount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MountFlags,
    pub data: &'static str,
}

/// /proc, /sys, /dev (devtmpfs, so device nodes appear by themselves) and
/// /run, in this order. switch_root moves all four into the real root.
pub fn early_mounts() -> [EarlyMount; 4] {
    let hard = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    [
        EarlyMount {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: hard,
            data: "",
        },
        EarlyMount {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: hard,
            data: "",
        },
        EarlyMount {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MountFlags::NOSUID,
            data: "mode=0755",
        },
        EarlyMount {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: MountFlags::NOSUID | MountFlags::NODEV,
            data: "mode=0755",
        },
    ]
}

/// Mount `fstype` from `source` on `target` (created if missing).
pub fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> Result<()> {
    std::fs::create_dir_all(target).map_err(InitError::io("creating mount point", target))?;
    let data_c = std::ffi::CString::new(data).map_err(|_| InitError::Mount {
        source_dev: source.into(),
        target: target.display().to_string(),
        fstype: fstype.into(),
        errno: std::io::Error::other("mount options contain a NUL byte"),
    })?;
    mount(source, target, fstype, flags, data_c.as_c_str()).map_err(|e| InitError::Mount {
        source_dev: source.into(),
        target: target.display().to_string(),
        fstype: fstype.into(),
        errno: e.into(),
    })
}

/// Mount the early table. A target that is already mounted (EBUSY, e.g.
/// devtmpfs mounted by the kernel) is fine.
pub fn mount_early() -> Result<()> {
    for m in early_mounts() {
        match mount_fs(m.source, Path::new(m.target), m.fstype, m.flags, m.data) {
            Ok(()) => {}
            Err(InitError::Mount { errno, .. })
                if errno.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_table_order_and_flags() {
        let t = early_mounts();
        let targets: Vec<&str> = t.iter().map(|m| m.target).collect();
        assert_eq!(targets, ["/proc", "/sys", "/dev", "/run"]);
        assert!(t[0].flags.contains(MountFlags::NOEXEC));
        assert_eq!(t[2].fstype, "devtmpfs");
        assert!(
            !t[2].flags.contains(MountFlags::NODEV),
            "devtmpfs must allow device nodes"
        );
    }
}
