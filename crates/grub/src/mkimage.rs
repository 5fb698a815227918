//! Builds core.img (i386-pc) and BOOTX64.EFI (x86_64-efi) by running the
//! tree's own `grub-mkimage` with the tree's own dynamic loader, rootless and
//! without chroot: the program, its interpreter, every library it needs
//! (found by reading `DT_NEEDED` recursively) and the platform's module
//! directory are copied into a temporary directory, then
//! `<tmp>/ld.so --inhibit-cache --library-path <tmp>/libs <tmp>/grub-mkimage ...`
//! runs with an empty environment. Nothing from the host's libraries is used.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use basalt_tree::Tree;

use crate::elf::dyn_info;
use crate::error::{GrubError, Result};
use crate::treefs::{list_files, read_file, resolve};

/// Where grub-common installs the image builder.
pub const MKIMAGE: &str = "/usr/bin/grub-mkimage";
/// Library directories searched in the tree, in order (Debian multiarch).
const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib",
    "/lib",
];

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

/// Copies `/usr/bin/grub-mkimage`, its interpreter and its libraries out of
/// `tree` into `tmp`; returns (interpreter, program, library dir).
fn stage_mkimage(
    tree: &Tree,
    tmp: &Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    let exe = read_file(tree, MKIMAGE)?;
    let info = dyn_info(&exe, MKIMAGE)?;
    let interp = info.interp.clone().ok_or_else(|| GrubError::Elf {
        path: MKIMAGE.into(),
        why: "no PT_INTERP (static?)".into(),
    })?;
    let libdir = tmp.join("libs");
    fs::create_dir_all(&libdir).map_err(GrubError::io("creating", &libdir))?;
    // Breadth-first over DT_NEEDED; BTree containers keep the order stable.
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut queue: Vec<(String, String)> = info
        .needed
        .iter()
        .map(|n| (n.clone(), MKIMAGE.to_string()))
        .collect();
    let mut seen: BTreeSet<String> = queue.iter().map(|(n, _)| n.clone()).collect();
    while let Some((soname, needed_by)) = queue.pop() {
        if soname.contains('/') {
            return Err(GrubError::Elf {
                path: needed_by,
                why: format!("DT_NEEDED {soname:?} contains '/'"),
            });
        }
        let key = LIB_DIRS
            .iter()
            .map(|d| format!("{d}/{soname}"))
            .find(|p| resolve(tree, p).is_ok())
            .ok_or_else(|| GrubError::Tree {
                path: soname.clone(),
                why: format!(
                    "library needed by {needed_by} is not in the tree under {}",
                    LIB_DIRS.join(", ")
                ),
            })?;
        let bytes = read_file(tree, &key)?;
        for n in dyn_info(&bytes, &key)?.needed {
            if seen.insert(n.clone()) {
                queue.push((n, key.clone()));
            }
        }
        found.insert(soname, bytes);
    }
    for (name, bytes) in &found {
        let p = libdir.join(name);
        fs::write(&p, bytes).map_err(GrubError::io("writing", &p))?;
    }
    let ld = tmp.join("ld.so");
    write_exec(&ld, &read_file(tree, &interp)?)?;
    let prog = tmp.join("grub-mkimage");
    write_exec(&prog, &exe)?;
    Ok((ld, prog, libdir))
}

fn write_exec(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(GrubError::io("writing", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(GrubError::io("chmod", path))
}

/// A staged grub-mkimage, reusable for several images.
pub struct Mkimage {
    tmp: tempfile::TempDir,
    ld: std::path::PathBuf,
    prog: std::path::PathBuf,
    libdir: std::path::PathBuf,
}

impl Mkimage {
    /// Stages the tree's grub-mkimage into a private temporary directory.
    pub fn stage(tree: &Tree) -> Result<Mkimage> {
        let tmp = tempfile::Builder::new()
            .prefix("basalt-grub-")
            .tempdir()
            .map_err(GrubError::io(
                "creating temporary directory",
                std::env::temp_dir(),
            ))?;
        let (ld, prog, libdir) = stage_mkimage(tree, tmp.path())?;
        Ok(Mkimage {
            tmp,
            ld,
            prog,
            libdir,
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
        let dir = self.tmp.path().join(platform.dir);
        if !dir.exists() {
            fs::create_dir(&dir).map_err(GrubError::io("creating", &dir))?;
            for (name, bytes) in &files {
                let p = dir.join(name);
                fs::write(&p, bytes).map_err(GrubError::io("writing", &p))?;
            }
        }
        let out = self.tmp.path().join(format!("{}.img", platform.dir));
        let output = Command::new(&self.ld)
            .env_clear()
            .env("LC_ALL", "C")
            .arg("--inhibit-cache")
            .arg("--library-path")
            .arg(&self.libdir)
            .arg(&self.prog)
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
            .map_err(GrubError::io("running", &self.ld))?;
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
    use crate::elf::tests::synth_elf;
    use basalt_tree::{Content, Entry};

    fn file(t: &mut Tree, p: &str, bytes: Vec<u8>) {
        t.insert_p(p, Entry::file(0o755, Content::from_bytes(bytes)))
            .unwrap();
    }

    #[test]
    fn stages_program_interp_and_library_closure() {
        let mut t = Tree::new();
        file(
            &mut t,
            MKIMAGE,
            synth_elf(
                Some("/lib64/ld-linux-x86-64.so.2"),
                &["libdm.so.1", "libc.so.6"],
            ),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/libdm.so.1.2",
            synth_elf(None, &["libudev.so.1", "libc.so.6"]),
        );
        t.insert_p(
            "/usr/lib/x86_64-linux-gnu/libdm.so.1",
            Entry::symlink("libdm.so.1.2"),
        )
        .unwrap();
        file(
            &mut t,
            "/lib/x86_64-linux-gnu/libudev.so.1",
            synth_elf(None, &["libc.so.6"]),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            synth_elf(None, &[]),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            b"loader".to_vec(),
        );
        t.insert_p("/lib64", Entry::symlink("usr/lib/x86_64-linux-gnu"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (ld, prog, libdir) = stage_mkimage(&t, dir.path()).unwrap();
        assert_eq!(fs::read(ld).unwrap(), b"loader");
        assert!(fs::read(prog).unwrap().starts_with(b"\x7fELF"));
        let mut libs: Vec<_> = fs::read_dir(libdir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        libs.sort();
        assert_eq!(libs, ["libc.so.6", "libdm.so.1", "libudev.so.1"]);

        t.remove("/lib/x86_64-linux-gnu/libudev.so.1");
        let e = stage_mkimage(&t, tempfile::tempdir().unwrap().path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("libudev.so.1")
                && e.contains("needed by /usr/lib/x86_64-linux-gnu/libdm.so.1"),
            "{e}"
        );
    }
}
