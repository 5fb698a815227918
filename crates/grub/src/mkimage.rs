//! Builds core.img (i386-pc) and BOOTX64.EFI (x86_64-efi) by running the
//! tree's own `grub-mkimage` with the tree's own dynamic loader, rootless and
//! without chroot (`basalt_treeexec::Staged`: the program, its interpreter and
//! its library closure copied into a temporary directory, run with an empty
//! environment); the platform's module directory is copied beside them.
//! Nothing from the host's libraries is used.

use std::collections::BTreeSet;
use std::fs;

use basalt_tree::Tree;
use basalt_treeexec::Staged;

use crate::error::{GrubError, Result};
use basalt_treeexec::treefs::list_files;

/// Where grub-common installs the image builder.
pub const MKIMAGE: &str = "/usr/bin/grub-mkimage";

/// One GRUB target platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// Directory name under /usr/lib/grub (also the ESP module dir name).
    pub dir: &'static str,
    /// `grub-mkimage -O` format.
    pub format: &'static str,
    /// Modules built into the image (dependencies are added by grub-mkimage
    /// from moddep.lst). Everything grub.cfg uses is here, so booting never
    /// depends on loading modules from the ESP.
    pub modules: &'static [&'static str],
}

/// Modules built into core.img: everything grub.cfg uses, plus BIOS disks.
pub const PC_MODULES: &[&str] = &[
    "biosdisk",
    "part_gpt",
    "fat",
    "normal",
    "configfile",
    "loadenv",
    "echo",
    "test",
    "linux",
    "linux16",
    "serial",
    "terminal",
    "sleep",
    "reboot",
    "halt",
    "boot",
    "search",
];

/// Modules built into BOOTX64.EFI: everything grub.cfg uses, plus the GOP
/// video driver so the kernel gets a framebuffer console too.
pub const EFI_MODULES: &[&str] = &[
    "part_gpt",
    "fat",
    "normal",
    "configfile",
    "loadenv",
    "echo",
    "test",
    "linux",
    "serial",
    "terminal",
    "sleep",
    "reboot",
    "halt",
    "boot",
    "search",
    "efi_gop",
];

/// GRUB for BIOS: core.img for the BIOS-boot partition.
pub const I386_PC: Platform = Platform {
    dir: "i386-pc",
    format: "i386-pc",
    modules: PC_MODULES,
};

/// GRUB for UEFI: EFI/BOOT/BOOTX64.EFI.
pub const X86_64_EFI: Platform = Platform {
    dir: "x86_64-efi",
    format: "x86_64-efi",
    modules: EFI_MODULES,
};

/// Tree directory holding a platform's modules and images.
pub fn platform_dir(p: &Platform) -> String {
    format!("/usr/lib/grub/{}", p.dir)
}

/// A staged grub-mkimage, reusable for several images.
pub struct Mkimage {
    staged: Staged,
}

impl Mkimage {
    /// Stages the tree's grub-mkimage into a private temporary directory.
    pub fn stage(tree: &Tree) -> Result<Mkimage> {
        Ok(Mkimage {
            staged: Staged::from_tree(tree, MKIMAGE, "basalt-grub-")?,
        })
    }

    /// Builds an image for `platform` with GRUB prefix `prefix` (e.g.
    /// `(,gpt1)/grub`: partition 1 of the disk GRUB was loaded from).
    pub fn build(&self, tree: &Tree, platform: &Platform, prefix: &str) -> Result<Vec<u8>> {
        let src = platform_dir(platform);
        let files = list_files(tree, &src)?;
        let names: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let missing: Vec<&str> = platform
            .modules
            .iter()
            .copied()
            .filter(|m| !names.contains(format!("{m}.mod").as_str()))
            .collect();
        if !missing.is_empty() {
            return Err(GrubError::Tree {
                path: src,
                why: format!("modules missing: {}", missing.join(", ")),
            });
        }
        let dir = self.staged.dir().join(platform.dir);
        if !dir.exists() {
            fs::create_dir(&dir).map_err(GrubError::io("creating", &dir))?;
            for (name, bytes) in &files {
                let p = dir.join(name);
                fs::write(&p, bytes).map_err(GrubError::io("writing", &p))?;
            }
        }
        let out = self.staged.dir().join(format!("{}.img", platform.dir));
        let output = self
            .staged
            .command()
            .arg("--directory")
            .arg(&dir)
            .arg("--format")
            .arg(platform.format)
            .arg("--prefix")
            .arg(prefix)
            .arg("--output")
            .arg(&out)
            .args(platform.modules)
            .output()
            .map_err(GrubError::io("running", MKIMAGE))?;
        if !output.status.success() {
            return Err(GrubError::Mkimage {
                platform: platform.dir.into(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let img = fs::read(&out).map_err(GrubError::io("reading", &out))?;
        fs::remove_file(&out).map_err(GrubError::io("removing", &out))?;
        Ok(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_dirs_are_reserved_free() {
        // The module directories and images live in the staged directory
        // beside the loader and the libraries: their names must not clash.
        for p in [&I386_PC, &X86_64_EFI] {
            assert!(!basalt_treeexec::staged::RESERVED.contains(&p.dir));
            assert_ne!(p.dir, "grub-mkimage");
            assert_eq!(platform_dir(p), format!("/usr/lib/grub/{}", p.dir));
        }
    }
}
