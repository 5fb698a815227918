//! GRUB for BIOS and UEFI without grub-install.
//!
//! - [`grubenv`]: the 1024-byte GRUB environment block (parse/write).
//! - [`slots`]: the A/B slot state kept in it (ORDER / X_OK / X_TRY).
//! - [`envfile`]: in-place rewrite of that state on the mounted ESP.
//! - [`config`]: the one grub.cfg on the ESP and the per-slot command lines.
//! - [`mkimage`]: core.img and BOOTX64.EFI from the tree's own grub-mkimage.
//! - [`bios`]: boot.img into the protective MBR, core.img into BIOS-boot.
//!
//! See README.md for the boot flow and the slot state machine.

pub mod bios;
pub mod config;
pub mod envfile;
pub mod error;
pub mod grubenv;
pub mod mkimage;
pub mod slots;

use basalt_tree::Tree;
use basalt_treeexec::treefs;

pub use bios::{install_bios, plan_bios};
pub use config::{GrubConfig, SlotBoot, grub_cfg, slot_cfg};
pub use error::{GrubError, Result};
pub use grubenv::EnvBlock;
pub use slots::BootState;

/// Everything the disk writer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArtifacts {
    /// i386-pc core.img, for [`install_bios`] into the BIOS-boot partition.
    pub core_img: Vec<u8>,
    /// i386-pc boot.img (512 bytes), for [`install_bios`].
    pub boot_img: Vec<u8>,
    /// Files for the ESP, by absolute ESP path, sorted by path.
    pub esp_files: Vec<(String, Vec<u8>)>,
}

/// GPT partition number of the ESP on the boot disk; BIOS GRUB finds its
/// prefix there (`(,gpt1)/grub`). UEFI GRUB uses the partition it was loaded
/// from.
pub const ESP_PARTITION: u32 = 1;

/// Builds core.img, boot.img and the ESP files (BOOTX64.EFI, grub.cfg,
/// grubenv in factory state, per-slot command lines, GRUB modules) from the
/// GRUB packages in `tree` (grub-common, grub-pc-bin, grub-efi-amd64-bin and
/// the libraries grub-mkimage needs).
pub fn build(tree: &Tree, cfg: &GrubConfig) -> Result<BootArtifacts> {
    cfg.validate()?;
    let mut esp: Vec<(String, Vec<u8>)> = Vec::new();
    esp.push((
        config::ESP_GRUB_CFG.to_string(),
        grub_cfg(cfg)?.into_bytes(),
    ));
    esp.push((
        config::ESP_GRUBENV.to_string(),
        BootState::factory(&cfg.names())?.to_env_bytes()?,
    ));
    for s in &cfg.slots {
        esp.push((config::slot_cfg_path(s.name), slot_cfg(s)?.into_bytes()));
    }

    let mk = mkimage::Mkimage::stage(tree)?;
    let pc_prefix = format!("(,gpt{ESP_PARTITION}){}", config::ESP_GRUB_DIR);
    let core_img = mk.build(tree, &mkimage::I386_PC, &pc_prefix)?;
    let efi = mk.build(tree, &mkimage::X86_64_EFI, config::ESP_GRUB_DIR)?;
    esp.push(("/EFI/BOOT/BOOTX64.EFI".to_string(), efi));

    let boot_img = treefs::read_file(
        tree,
        &format!("{}/boot.img", mkimage::platform_dir(&mkimage::I386_PC)),
    )?;
    if boot_img.len() != bios::SECTOR {
        return Err(GrubError::Bios(format!(
            "boot.img in the tree is {} bytes, want 512",
            boot_img.len()
        )));
    }
    // Modules and lists for `insmod` of anything not built in.
    for p in [&mkimage::I386_PC, &mkimage::X86_64_EFI] {
        for (name, bytes) in treefs::list_files(tree, &mkimage::platform_dir(p))? {
            if name.ends_with(".mod") || name.ends_with(".lst") {
                esp.push((format!("{}/{}/{name}", config::ESP_GRUB_DIR, p.dir), bytes));
            }
        }
    }
    esp.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(BootArtifacts {
        core_img,
        boot_img,
        esp_files: esp,
    })
}
