//! First boot on an enlarged disk: move the GPT backup to the new end, grow
//! ROOT (the last partition) to fill it, tell the kernel the new partition
//! size (BLKPG_RESIZE_PARTITION) and grow the mounted ext4 online
//! (EXT4_IOC_RESIZE_FS). The GPT work is basalt-gpt's.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::Path;

use basalt_gpt::{Gpt, SECTOR};

use super::disk::BootDisk;
use super::sys::{blkpg_resize, ext4_resize};

/// What growing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grown {
    /// ROOT already ends at the disk's last usable sector.
    AlreadyFull { bytes: u64 },
    Grew {
        from_bytes: u64,
        to_bytes: u64,
        fs_blocks: u64,
    },
}

/// Whether partition `number` must grow: the disk grew (backup header not
/// at the end) or the partition stops short of the last usable LBA.
pub fn needs_growth(gpt: &Gpt, number: u32) -> Option<bool> {
    let e = gpt.partition(number)?;
    Some(gpt.needs_relocation() || e.last_lba < gpt.header.last_usable_lba)
}

fn part_bytes(gpt: &Gpt, number: u32) -> Option<(u64, u64)> {
    let e = gpt.partition(number)?;
    Some((
        e.first_lba * SECTOR,
        (e.last_lba + 1 - e.first_lba) * SECTOR,
    ))
}

/// Filesystem blocks of `block_size` that fit in `bytes`.
pub fn fs_blocks(bytes: u64, block_size: u64) -> Option<u64> {
    (block_size > 0).then(|| bytes / block_size)
}

/// Grow ROOT of `disk`, whose filesystem is mounted at `mountpoint`.
pub fn grow_root(disk: &BootDisk, mountpoint: &Path) -> Result<Grown, String> {
    let dev = &disk.disk;
    let number = disk.root.number;
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("opening {}: {e}", dev.display()))?;
    let gpt = basalt_gpt::read_gpt(&mut f)
        .map_err(|e| format!("reading the GPT of {}: {e}", dev.display()))?;
    let (_, before) = part_bytes(&gpt, number)
        .ok_or_else(|| format!("ROOT (partition {number}) is not in the GPT"))?;
    if needs_growth(&gpt, number) != Some(true) {
        return Ok(Grown::AlreadyFull { bytes: before });
    }
    let gpt = basalt_gpt::grow_partition_to_end(&mut f, number)
        .map_err(|e| format!("growing partition {number} of {}: {e}", dev.display()))?;
    f.sync_all()
        .map_err(|e| format!("syncing {}: {e}", dev.display()))?;
    let (start, after) = part_bytes(&gpt, number).ok_or("ROOT vanished from the rewritten GPT")?;
    let pno =
        i32::try_from(number).map_err(|_| format!("partition number {number} out of range"))?;
    let to_i64 = |v: u64| i64::try_from(v).map_err(|_| format!("{v} bytes out of range"));
    blkpg_resize(f.as_fd(), pno, to_i64(start)?, to_i64(after)?).map_err(|e| {
        format!(
            "telling the kernel that {} has grown: {e}",
            disk.root.dev.display()
        )
    })?;
    let st = rustix::fs::statfs(mountpoint)
        .map_err(|e| format!("statfs {}: {e}", mountpoint.display()))?;
    let bsize =
        u64::try_from(st.f_bsize).map_err(|_| "negative filesystem block size".to_string())?;
    let blocks = fs_blocks(after, bsize).ok_or("filesystem reports block size 0")?;
    let dir =
        File::open(mountpoint).map_err(|e| format!("opening {}: {e}", mountpoint.display()))?;
    ext4_resize(dir.as_fd(), blocks).map_err(|e| {
        format!(
            "resizing the ext4 on {} to {blocks} blocks: {e}",
            mountpoint.display()
        )
    })?;
    Ok(Grown::Grew {
        from_bytes: before,
        to_bytes: after,
        fs_blocks: blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_gpt::{DiskLayout, Guid, PartSize, PartSpec, guid_from_seed, types};

    const MIB: u64 = 1 << 20;

    #[test]
    fn growth_detection_on_generated_images() {
        let dir = std::env::temp_dir().join(format!("basalt-init-grow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("disk.img");
        let specs = [
            PartSpec::new(
                3,
                "USR-A",
                types::LINUX_DATA,
                guid_from_seed(b"g", "3"),
                PartSize::Bytes(MIB),
            ),
            PartSpec::new(
                9,
                "ROOT",
                types::LINUX_DATA,
                guid_from_seed(b"g", "9"),
                PartSize::Fill,
            ),
        ];
        let l = DiskLayout::plan(Guid::from_u128(3), &specs, Some(16 * MIB)).unwrap();
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.set_len(l.disk_size).unwrap();
        l.write_headers(&mut f).unwrap();
        let gpt = basalt_gpt::read_gpt(&mut f).unwrap();
        assert_eq!(
            needs_growth(&gpt, 9),
            Some(false),
            "ROOT fills the disk as built"
        );
        assert_eq!(needs_growth(&gpt, 5), None);
        // Enlarge the "disk": the backup header is no longer at the end.
        f.set_len(32 * MIB).unwrap();
        let gpt = basalt_gpt::read_gpt(&mut f).unwrap();
        assert_eq!(needs_growth(&gpt, 9), Some(true));
        let grown = basalt_gpt::grow_partition_to_end(&mut f, 9).unwrap();
        let (_, len) = part_bytes(&grown, 9).unwrap();
        assert!(len > 16 * MIB, "{len}");
        assert_eq!(needs_growth(&grown, 9), Some(false));
        std::fs::remove_dir_all(&dir).ok();
    }

    fn sh(cmd: &str) -> Result<String, String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// CAP_SYS_RESOURCE (capability 24) in the effective set.
    fn has_cap_sys_resource() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << 24) != 0)
    }

    /// Undo the loop device and mount even when the test fails.
    struct LoopGuard {
        dev: String,
        mnt: std::path::PathBuf,
    }

    impl Drop for LoopGuard {
        fn drop(&mut self) {
            let _ = sh(&format!("umount {}", self.mnt.display()));
            let _ = sh(&format!("losetup -d {}", self.dev));
        }
    }

    /// The online ext4 resize ioctl on a real mounted filesystem (a loop
    /// device whose backing file grows). Needs root, losetup, mkfs.ext4 and
    /// mount; skipped loudly otherwise.
    #[test]
    fn ext4_online_resize_on_a_loop_device() {
        let dir = std::env::temp_dir().join(format!("basalt-init-resize-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        let img = dir.join("fs.img");
        let setup = || -> Result<LoopGuard, String> {
            sh("command -v losetup && command -v mkfs.ext4")?;
            sh(&format!(
                "truncate -s 32M {0} && mkfs.ext4 -q -F -b 4096 {0}",
                img.display()
            ))?;
            let dev = sh(&format!("losetup -f --show {}", img.display()))?;
            let g = LoopGuard {
                dev,
                mnt: dir.join("mnt"),
            };
            sh(&format!("mount -t ext4 {} {}", g.dev, g.mnt.display()))?;
            Ok(g)
        };
        let guard = match setup() {
            Ok(g) => g,
            Err(e) => {
                eprintln!(
                    "SKIPPED: ext4 online resize test needs root, loop devices, mkfs.ext4 and mount ({e})"
                );
                std::fs::remove_dir_all(&dir).ok();
                return;
            }
        };
        let blocks_of = |p: &Path| {
            let st = rustix::fs::statfs(p).unwrap();
            u64::try_from(st.f_blocks).unwrap()
        };
        let before = blocks_of(&guard.mnt);
        sh(&format!(
            "truncate -s 64M {} && losetup -c {}",
            img.display(),
            guard.dev
        ))
        .unwrap();
        let want = fs_blocks(64 * MIB, 4096).unwrap();
        let d = File::open(&guard.mnt).unwrap();
        if !has_cap_sys_resource() {
            // ext4 checks CAP_SYS_RESOURCE first: EPERM (not ENOTTY) still
            // proves the opcode and argument reached ext4's resize handler.
            let err = ext4_resize(d.as_fd(), want).unwrap_err();
            assert_eq!(
                err.raw_os_error(),
                Some(1),
                "expected EPERM without CAP_SYS_RESOURCE, got {err}"
            );
            eprintln!(
                "SKIPPED (partly): no CAP_SYS_RESOURCE here; ext4 recognised EXT4_IOC_RESIZE_FS (EPERM), the resize itself was not run"
            );
            drop(d);
            drop(guard);
            std::fs::remove_dir_all(&dir).ok();
            return;
        }
        ext4_resize(d.as_fd(), want).unwrap();
        let after = blocks_of(&guard.mnt);
        assert!(
            after > before + 4000,
            "ext4 grew online: {before} -> {after} blocks"
        );
        drop(d);
        drop(guard);
        sh(&format!("e2fsck -fn {}", img.display())).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn fs_blocks_table() {
        let cases = [
            (16 * MIB, 4096, Some(4096)),
            (16 * MIB + 100, 4096, Some(4096)),
            (MIB, 1024, Some(1024)),
            (MIB, 0, None),
        ];
        for (bytes, bs, want) in cases {
            assert_eq!(fs_blocks(bytes, bs), want, "{bytes} {bs}");
        }
    }
}
