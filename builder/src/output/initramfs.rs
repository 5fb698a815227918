//! The initramfs: Basalt's static `/init`, the kernel modules needed to reach
//! and verify /usr (virtio, NVMe, SATA/AHCI, dm-verity, ext4) and to read
//! the first-boot config sources, with the two lists /init loads them from
//! (provisioner/src/init/loadorder.rs), as a deterministic newc cpio
//! compressed with zstd (level 19). The kernel unpacks zstd about three
//! times faster than xz under emulation (0.2-0.3 s against 0.75 s for this
//! archive under QEMU TCG), which is boot time, for about 10% more bytes.

use anyhow::{Context, Result, bail};
use basalt_cpio::{Archive, Compression};
use basalt_kmod::ListSpec;
use basalt_tree::{Content, Entry, Kind, Tree};

use crate::embedded;

/// The disk path's list, loaded on every boot; the disk controller drivers
/// (`basalt_kmod::ASYNC_PROBE_MODULES`) come last, with `async_probe`.
const LOAD_ORDER: &str = basalt_provisioner::init::loadorder::LOAD_ORDER;
/// The config sources' list, loaded on the first boot only.
const CONFIG_LOAD_ORDER: &str = basalt_provisioner::init::loadorder::CONFIG_LOAD_ORDER;

/// Modules beyond the disk path: the config sources /init reads on the
/// first boot (QEMU's fw_cfg, ISO 9660 config drives and NoCloud disks,
/// FAT OEM/cidata media). Their list holds what the disk list does not.
const CONFIG_SOURCE_MODULES: &[&str] = &["qemu_fw_cfg", "isofs", "vfat"];

/// Build the compressed initramfs for kernel `kver` from the image tree.
pub fn build(tree: &Tree, kver: &str, epoch: i64) -> Result<Vec<u8>> {
    let specs = [
        ListSpec {
            wanted: basalt_kmod::BOOT_MODULES,
            async_probe: basalt_kmod::ASYNC_PROBE_MODULES,
        },
        ListSpec {
            wanted: CONFIG_SOURCE_MODULES,
            async_probe: &[],
        },
    ];
    let lists = basalt_kmod::initramfs_lists(tree, kver, &specs, true)
        .with_context(|| format!("collecting the initramfs modules of {kver}"))?;
    let [disk, config] = &lists[..] else {
        bail!("internal: {} module lists for 2 specs", lists.len());
    };
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
    for (list, path) in [(disk, LOAD_ORDER), (config, CONFIG_LOAD_ORDER)] {
        // What /init would reject is a build error, not a boot that fails.
        basalt_provisioner::init::loadorder::parse_load_order(path, &list.load_order)
            .with_context(|| format!("checking {path} with /init's parser"))?;
        for m in &list.modules {
            t.insert_p(&m.path, Entry::file(0o644, m.content.clone()).at(epoch))?;
        }
        t.insert_p(
            path,
            Entry::file(
                0o644,
                Content::from_bytes(list.load_order.clone().into_bytes()),
            )
            .at(epoch),
        )?;
    }
    t.clamp_mtimes(epoch);
    let cpio = Archive::from_tree(&t)
        .context("laying out the initramfs")?
        .to_vec()
        .context("writing the initramfs")?;
    basalt_cpio::compress_bytes(&cpio, Compression::zstd()).context("compressing the initramfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_what_init_reads() {
        // The parameter and the field the lists carry are the ones /init reads.
        use basalt_provisioner::init::{loadorder, modules};
        assert_eq!(basalt_kmod::ASYNC_PROBE_PARAM, modules::ASYNC_PROBE);
        assert_eq!(basalt_kmod::NEEDS_FIELD, loadorder::NEEDS);
        let text = format!(
            "/k/scsi_mod.ko\n/usr/lib/modules/6.12/kernel/drivers/ata/ahci.ko {} {}scsi_mod\n",
            basalt_kmod::ASYNC_PROBE_PARAM,
            basalt_kmod::NEEDS_FIELD
        );
        let parsed = loadorder::parse_load_order(LOAD_ORDER, &text).unwrap();
        assert_eq!(parsed[1].params, modules::Params::AsyncProbe);
        assert_eq!(parsed[1].needs, vec![0]);
        // Every async-probing driver is one the disk list loads.
        for m in basalt_kmod::ASYNC_PROBE_MODULES {
            assert!(basalt_kmod::BOOT_MODULES.contains(m), "{m}");
        }
    }
}
