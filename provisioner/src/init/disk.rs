//! Finding the boot disk: the whole-disk block device whose GPT has
//! partitions named USR-A, USR-B and ROOT. The GPT is read by basalt-gpt
//! (CRC-checked, falls back to the backup header); sysfs tells which
//! kernel device is which partition number.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{InitError, Result};

/// GPT names /init looks for.
pub const USR_A: &str = "USR-A";
pub const USR_B: &str = "USR-B";
pub const ROOT: &str = "ROOT";
pub const OEM: &str = "OEM";
const REQUIRED: [&str; 3] = [USR_A, USR_B, ROOT];
/// How often the wait loop rescans.
const POLL: Duration = Duration::from_millis(100);

/// One partition of the boot disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    /// Device node (`/dev/vda3`).
    pub dev: PathBuf,
    /// `major:minor` as sysfs reports it (what device-mapper tables take).
    pub devno: String,
    /// Size in bytes from the GPT entry.
    pub size: u64,
}

/// The boot disk and the partitions /init uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootDisk {
    pub disk: PathBuf,
    pub usr_a: Part,
    pub usr_b: Part,
    pub root: Part,
    pub oem: Option<Part>,
}

impl BootDisk {
    pub fn usr(&self, slot: super::cmdline::Slot) -> &Part {
        match slot {
            super::cmdline::Slot::A => &self.usr_a,
            super::cmdline::Slot::B => &self.usr_b,
        }
    }
}

/// Where to look: normally `/sys/class/block` and `/dev`; tests use
/// directories that imitate them.
#[derive(Debug, Clone)]
pub struct Roots {
    pub sys_block: PathBuf,
    pub dev: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sys_block: PathBuf::from("/sys/class/block"),
            dev: PathBuf::from("/dev"),
        }
    }
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whole-disk device names in sysfs, sorted (partitions have a `partition`
/// file; empty devices such as unused loop devices have size 0).
fn whole_disks(roots: &Roots) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(&roots.sys_block) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !roots.sys_block.join(n).join("partition").exists())
        .filter(|n| read_trim(&roots.sys_block.join(n).join("size")).is_some_and(|s| s != "0"))
        .collect();
    names.sort();
    names
}

/// Kernel name and `major:minor` of partition `number` of `disk`.
fn partition_device(roots: &Roots, disk: &str, number: u32) -> Option<(String, String)> {
    let rd = std::fs::read_dir(roots.sys_block.join(disk)).ok()?;
    let mut found: Vec<(String, String)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = read_trim(&e.path().join("partition"))?;
            (n.parse::<u32>().ok()? == number).then(|| {
                (
                    name.clone(),
                    read_trim(&e.path().join("dev")).unwrap_or_default(),
                )
            })
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Check one disk; `Ok(None)` if it is not a Basalt disk.
pub fn probe(roots: &Roots, name: &str) -> Result<Option<BootDisk>> {
    let dev = roots.dev.join(name);
    let Ok(mut f) = File::open(&dev) else {
        return Ok(None);
    };
    let Ok(gpt) = basalt_gpt::read_gpt(&mut f) else {
        return Ok(None);
    };
    if !REQUIRED.iter().all(|n| gpt.by_name(n).is_some()) {
        return Ok(None);
    }
    let part = |pname: &str| -> Result<Option<Part>> {
        let Some((number, entry)) = gpt.by_name(pname) else {
            return Ok(None);
        };
        let (kname, devno) =
            partition_device(roots, name, number).ok_or_else(|| InitError::Disk {
                disk: dev.display().to_string(),
                why: format!(
                    "GPT partition {number} ({pname}) has no kernel device in {}",
                    roots.sys_block.display()
                ),
            })?;
        if devno.is_empty() {
            return Err(InitError::Disk {
                disk: dev.display().to_string(),
                why: format!("no major:minor for {kname}"),
            });
        }
        let size = (entry.last_lba + 1 - entry.first_lba) * basalt_gpt::SECTOR;
        Ok(Some(Part {
            number,
            dev: roots.dev.join(&kname),
            devno,
            size,
        }))
    };
    let need = |pname: &str| -> Result<Part> {
        part(pname)?.ok_or_else(|| InitError::Disk {
            disk: dev.display().to_string(),
            why: format!("{pname} vanished"),
        })
    };
    Ok(Some(BootDisk {
        disk: dev.clone(),
        usr_a: need(USR_A)?,
        usr_b: need(USR_B)?,
        root: need(ROOT)?,
        oem: part(OEM)?,
    }))
}

/// One scan of all disks. More than one Basalt disk: the first by kernel
/// name wins, with a warning naming the others. Only disks that exist at
/// that scan count: the disk controllers behind AHCI, NVMe and virtio-scsi
/// are still being probed in the background when the wait starts
/// (`loadorder.rs`), so a Basalt disk on virtio-blk found first is booted
/// even if a Basalt disk on one of them appears later.
pub fn scan(roots: &Roots) -> Result<Option<BootDisk>> {
    let mut found = Vec::new();
    for name in whole_disks(roots) {
        if let Some(d) = probe(roots, &name)? {
            found.push(d);
        }
    }
    if found.len() > 1 {
        let others: Vec<String> = found[1..]
            .iter()
            .map(|d| d.disk.display().to_string())
            .collect();
        super::fatal::warn(format!(
            "several Basalt disks found; booting {} and ignoring {}",
            found[0].disk.display(),
            others.join(", ")
        ));
    }
    Ok(found.into_iter().next())
}

/// Rescan until a Basalt disk appears or `timeout` passes. A scan that
/// fails is retried too: a disk probed in the background can be caught
/// between its registration and its partitions' (the kernel's
/// `device_add_disk` makes the disk openable before
/// `disk_scan_partitions` adds them), which reads as "GPT partition N has
/// no kernel device". An error that lasts until `timeout` is returned.
pub fn wait_for_disk(roots: &Roots, timeout: Duration) -> Result<BootDisk> {
    let start = Instant::now();
    let mut announced = false;
    loop {
        let failed = match scan(roots) {
            Ok(Some(d)) => return Ok(d),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if start.elapsed() >= timeout {
            if let Some(e) = failed {
                return Err(e);
            }
            return Err(InitError::NoBootDisk {
                secs: timeout.as_secs(),
                wanted: REQUIRED.join(", "),
                seen: {
                    let seen = whole_disks(roots);
                    if seen.is_empty() {
                        "no block devices at all".into()
                    } else {
                        seen.join(" ")
                    }
                },
            });
        }
        if !announced && start.elapsed() >= Duration::from_secs(2) {
            super::fatal::info(format!(
                "waiting up to {} s for the boot disk...",
                timeout.as_secs()
            ));
            announced = true;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_gpt::{DiskLayout, Guid, PartSize, PartSpec, guid_from_seed, types};

    const MIB: u64 = 1 << 20;

    fn image(path: &Path, names: &[(u32, &str)]) {
        let specs: Vec<PartSpec> = names
            .iter()
            .map(|(n, name)| {
                PartSpec::new(
                    *n,
                    name,
                    types::LINUX_DATA,
                    guid_from_seed(b"t", &n.to_string()),
                    PartSize::Bytes(MIB),
                )
            })
            .collect();
        let l = DiskLayout::plan(Guid::from_u128(7), &specs, None).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .read(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.set_len(l.disk_size).unwrap();
        l.write_headers(&mut f).unwrap();
    }

    /// A fake /sys/class/block + /dev with `disks` (name, GPT names).
    fn fake(tag: &str, disks: &[(&str, &[(u32, &str)])]) -> Roots {
        let base =
            std::env::temp_dir().join(format!("basalt-init-disk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let roots = Roots {
            sys_block: base.join("sys"),
            dev: base.join("dev"),
        };
        std::fs::create_dir_all(&roots.dev).unwrap();
        for (major, (disk, parts)) in disks.iter().enumerate() {
            let d = roots.sys_block.join(disk);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("size"), "16384\n").unwrap();
            image(&roots.dev.join(disk), parts);
            for (n, _) in parts.iter() {
                let pname = format!("{disk}{n}");
                let pd = d.join(&pname);
                std::fs::create_dir_all(&pd).unwrap();
                std::fs::write(pd.join("partition"), format!("{n}\n")).unwrap();
                std::fs::write(pd.join("dev"), format!("{}:{n}\n", 250 + major)).unwrap();
                // sysfs also lists partitions at the top level.
                let top = roots.sys_block.join(&pname);
                std::fs::create_dir_all(&top).unwrap();
                std::fs::write(top.join("partition"), format!("{n}\n")).unwrap();
            }
        }
        roots
    }

    const BASALT: &[(u32, &str)] = &[
        (1, "EFI-SYSTEM"),
        (3, "USR-A"),
        (4, "USR-B"),
        (6, "OEM"),
        (9, "ROOT"),
    ];

    #[test]
    fn finds_basalt_disk_among_others() {
        let roots = fake("find", &[("sda", &[(1, "data")]), ("vda", BASALT)]);
        let d = scan(&roots).unwrap().expect("found");
        assert_eq!(d.disk, roots.dev.join("vda"));
        assert_eq!(
            d.usr_a,
            Part {
                number: 3,
                dev: roots.dev.join("vda3"),
                devno: "251:3".into(),
                size: MIB
            }
        );
        assert_eq!(d.usr_b.number, 4);
        assert_eq!(d.root.dev, roots.dev.join("vda9"));
        assert_eq!(d.oem.as_ref().map(|p| p.number), Some(6));
        std::fs::remove_dir_all(roots.dev.parent().unwrap()).ok();
    }

    #[test]
    fn missing_disk_times_out_with_message() {
        let roots = fake("none", &[("sda", &[(1, "USR-A"), (2, "ROOT")])]);
        let err = wait_for_disk(&roots, Duration::from_millis(250))
            .unwrap_err()
            .to_string();
        assert!(err.contains("USR-A, USR-B, ROOT"), "{err}");
        assert!(err.contains("seen: sda"), "{err}");
        std::fs::remove_dir_all(roots.dev.parent().unwrap()).ok();
    }

    #[test]
    fn partition_without_kernel_device_is_an_error() {
        let roots = fake("nodev", &[("vda", BASALT)]);
        let part = roots.sys_block.join("vda").join("vda9");
        std::fs::remove_dir_all(&part).unwrap();
        let err = scan(&roots).unwrap_err().to_string();
        assert!(
            err.contains("partition 9 (ROOT) has no kernel device"),
            "{err}"
        );
        // Until the timeout, the wait retries; the lasting error is returned.
        let err = wait_for_disk(&roots, Duration::from_millis(250))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no kernel device"), "{err}");
        // A partition registered while the wait runs is found.
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::create_dir_all(&part).unwrap();
            std::fs::write(part.join("partition"), "9\n").unwrap();
            std::fs::write(part.join("dev"), "250:9\n").unwrap();
        });
        let d = wait_for_disk(&roots, Duration::from_secs(10)).unwrap();
        late.join().unwrap();
        assert_eq!(d.root.dev, roots.dev.join("vda9"));
        std::fs::remove_dir_all(roots.dev.parent().unwrap()).ok();
    }
}
