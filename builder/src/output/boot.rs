//! The boot loader on the disk: GRUB for BIOS (boot.img in the MBR, core.img
//! in BIOS-BOOT) and UEFI (BOOTX64.EFI), grub.cfg with the A/B slot logic,
//! the slot state in grubenv, and each slot's kernel, initrd and command line
//! on the ESP (crates/grub has the details).

use std::fs::File;

use anyhow::{Context, Result, bail};
use basalt_grub::config::{initrd_path, slot_cfg_path, slot_record_path};
use basalt_grub::{BootArtifacts, GrubConfig, SlotBoot};
use basalt_payload::SlotRecord;
use basalt_tree::{Content, Entry, Tree};

use crate::profile::size::human;

/// Slot B has no image until the first update; its entry names the slot
/// only, and the slot state marks it unbootable.
const EMPTY_SLOT_B: &str = "basalt.slot=b";

/// Slot A's record as JSON (newline-terminated), for the ESP.
fn record_json(record: &SlotRecord) -> Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(record).context("serialising slot A's record")?;
    b.push(b'\n');
    Ok(b)
}

pub struct Boot {
    artifacts: BootArtifacts,
}

impl Boot {
    /// Build GRUB's images from the tree's own GRUB packages.
    pub fn build(tree: &Tree, cmdline_a: &str) -> Result<Boot> {
        let cfg = GrubConfig::ab(cmdline_a, EMPTY_SLOT_B);
        let artifacts =
            basalt_grub::build(tree, &cfg).context("assembling GRUB from the image's packages")?;
        Ok(Boot { artifacts })
    }

    /// Add GRUB's files, slot A's initrd, command line and record to the
    /// ESP tree (which already holds slot A's kernel).
    pub fn add_to_esp(
        &self,
        esp: &mut Tree,
        initrd: &[u8],
        cmdline_a: &str,
        record_a: &SlotRecord,
        epoch: i64,
    ) -> Result<()> {
        let slot_a = slot_cfg_path('A');
        for (path, bytes) in &self.artifacts.esp_files {
            let bytes = if *path == slot_a {
                basalt_grub::slot_cfg(&SlotBoot {
                    name: 'A',
                    cmdline: cmdline_a.to_string(),
                })
                .context("writing slot A's boot entry")?
                .into_bytes()
            } else {
                bytes.clone()
            };
            esp.insert_p(
                path,
                Entry::file(0o644, Content::from_bytes(bytes)).at(epoch),
            )?;
        }
        esp.insert_p(
            &initrd_path('A'),
            Entry::file(0o644, Content::from_bytes(initrd.to_vec())).at(epoch),
        )?;
        esp.insert_p(
            &slot_record_path('A'),
            Entry::file(0o644, Content::from_bytes(record_json(record_a)?)).at(epoch),
        )?;
        Ok(())
    }

    pub fn check_bios_fits(&self, bios_part_bytes: u64) -> Result<()> {
        let need = self.artifacts.core_img.len() as u64;
        if need > bios_part_bytes {
            bail!(
                "GRUB's core.img is {} but BIOS-BOOT holds {}: raise disk.bios_boot in the profile",
                human(need),
                human(bios_part_bytes)
            );
        }
        Ok(())
    }

    /// boot.img into the MBR's boot code, core.img into BIOS-BOOT.
    pub fn install_bios(&self, disk: &File, first_lba: u64, sectors: u64) -> Result<()> {
        basalt_grub::install_bios(
            disk,
            &self.artifacts.boot_img,
            &self.artifacts.core_img,
            first_lba,
            sectors,
        )
        .context("installing GRUB for BIOS")
    }
}

#[cfg(test)]
mod tests {
    use super::{SlotRecord, record_json};

    /// Newline-terminated JSON that reads back as the same record.
    #[test]
    fn factory_record_json() {
        let r = SlotRecord {
            name: "basalt-qemu".into(),
            version: "1.2.3".into(),
            root_hash: "ab".repeat(32),
        };
        let b = record_json(&r).unwrap();
        assert_eq!(b.last(), Some(&b'\n'));
        assert_eq!(serde_json::from_slice::<SlotRecord>(&b).unwrap(), r);
    }
}
