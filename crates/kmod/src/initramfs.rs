//! The module files an initramfs needs and the `load-order` list that
//! Basalt's /init reads (one absolute path a line, dependencies first).

use basalt_tree::{Content, Tree};

use crate::decompress::module_image;
use crate::depmod::file_bytes;
use crate::error::KmodError;
use crate::load_order::load_order;
use crate::names::uncompressed_path;

/// Modules Basalt's /init needs to reach and verify /usr on virtio, NVMe
/// and SATA/AHCI disks: disk drivers, the SCSI disk layer, device-mapper
/// verity and ext4. Dependencies and pre-softdeps are added by
/// [`load_order`]; names built into the kernel are skipped.
pub const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "nvme",
    "ahci",
    "sd_mod",
    "dm_verity",
    "ext4",
];

/// One module file for the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitramfsModule {
    /// Absolute path inside the initramfs (same as in the tree, minus the
    /// compression suffix when decompressed).
    pub path: String,
    pub content: Content,
}

/// The initramfs module set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitramfsModules {
    pub modules: Vec<InitramfsModule>,
    /// Text of `/lib/modules/load-order`.
    pub load_order: String,
}

/// Collect `wanted` (and everything they need) from the tree, which must
/// have been through [`crate::depmod`]. With `decompress`, `.ko.xz` and
/// `.ko.zst` files are stored uncompressed (the whole archive is
/// compressed anyway, and /init can then use finit_module directly).
pub fn initramfs_modules(
    tree: &Tree,
    kver: &str,
    wanted: &[&str],
    decompress: bool,
) -> Result<InitramfsModules, KmodError> {
    let paths = load_order(tree, kver, wanted)?;
    let mut modules = Vec::with_capacity(paths.len());
    let mut text = String::new();
    for p in paths {
        let raw = file_bytes(tree, &p)?.ok_or_else(|| KmodError::Read {
            path: p.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "listed in modules.dep but not a file in the tree",
            ),
        })?;
        let (path, bytes) = if decompress {
            (uncompressed_path(&p).to_string(), module_image(&p, raw)?)
        } else {
            (p, raw)
        };
        text.push_str(&path);
        text.push('\n');
        modules.push(InitramfsModule {
            path,
            content: Content::from_bytes(bytes),
        });
    }
    Ok(InitramfsModules {
        modules,
        load_order: text,
    })
}
