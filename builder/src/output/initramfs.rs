//! The initramfs: Basalt's static `/init`, the kernel modules needed to reach
//! and verify /usr (virtio, NVMe, SATA/AHCI, dm-verity, ext4) in load order,
//! as a deterministic newc cpio compressed with zstd (level 19). The kernel
//! unpacks zstd about three times faster than xz under emulation (0.2-0.3 s
//! against 0.75 s for this archive under QEMU TCG), which is boot time, for
//! about 10% more bytes.

use anyhow::{Context, Result};
use basalt_cpio::{Archive, Compression};
use basalt_tree::{Content, Entry, Kind, Tree};

use crate::embedded;

/// Where /init reads the module load order (provisioner/src/init/README.md).
const LOAD_ORDER: &str = "/lib/modules/load-order";

/// Modules beyond the disk path: the config sources /init reads (QEMU's
/// fw_cfg, ISO 9660 config drives and NoCloud disks, FAT OEM/cidata media).
const CONFIG_SOURCE_MODULES: &[&str] = &["qemu_fw_cfg", "isofs", "vfat"];

/// Build the compressed initramfs for kernel `kver` from the image tree.
pub fn build(tree: &Tree, kver: &str, epoch: i64) -> Result<Vec<u8>> {
    let wanted: Vec<&str> = basalt_kmod::BOOT_MODULES
        .iter()
        .chain(CONFIG_SOURCE_MODULES)
        .copied()
        .collect();
    let mods = basalt_kmod::initramfs_modules(tree, kver, &wanted, true)
        .with_context(|| format!("collecting the boot modules of {kver}"))?;
    let mut t = Tree::new();
    t.get_mut("/").context("tree without a root")?.mtime = epoch;
    for d in ["/dev", "/proc", "/sys", "/run", "/sysroot", "/tmp"] {
        t.insert(d, Entry::dir(0o755).at(epoch))?;
    }
    // The kernel opens /dev/console for init's stdio before /init mounts devtmpfs.
    t.insert(
        "/dev/console",
        Entry {
            kind: Kind::CharDevice { major: 5, minor: 1 },
            ..Entry::dir(0o600)
        }
        .at(epoch),
    )?;
    t.insert(
        "/init",
        Entry::file(0o755, Content::from_bytes(embedded::INIT.to_vec())).at(epoch),
    )?;
    for m in &mods.modules {
        t.insert_p(&m.path, Entry::file(0o644, m.content.clone()).at(epoch))?;
    }
    t.insert_p(
        LOAD_ORDER,
        Entry::file(0o644, Content::from_bytes(mods.load_order.into_bytes())).at(epoch),
    )?;
    t.clamp_mtimes(epoch);
    let cpio = Archive::from_tree(&t)
        .context("laying out the initramfs")?
        .to_vec()
        .context("writing the initramfs")?;
    basalt_cpio::compress_bytes(&cpio, Compression::zstd()).context("compressing the initramfs")
}
