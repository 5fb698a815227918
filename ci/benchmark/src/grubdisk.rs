//! The conventional disk with Debian's own GRUB on it, laid out like a BIOS
//! install by debian-installer (grub-install + update-grub), for the boot
//! benchmark's second baseline:
//!
//! - an MBR (msdos) partition table with one bootable Linux partition from
//!   sector 2048 to the end of a 6 GiB sparse image (`sfdisk`);
//! - that partition an ext4 made from the root (`mke2fs -d` at a 1 MiB
//!   offset), holding `/boot/grub/` as grub-install leaves it: the i386-pc
//!   modules and lists, core.img, and a grub.cfg with update-grub's
//!   essentials (serial terminal, `timeout=1`, one entry with `linux` and
//!   `initrd` from `/boot`);
//! - core.img made by the root's own `grub-mkimage` in a chroot (prefix
//!   `(hd0,msdos1)/boot/grub`, with biosdisk, part_msdos and ext2 built in),
//!   and with boot.img embedded the way grub-bios-setup does it: boot.img
//!   in LBA 0 (the partition table kept), core.img in the post-MBR gap
//!   (LBA 1-2047) with its block list patched, by `basalt_grub::bios`.
//!
//! `/boot/grub/` is added to the root only for `mke2fs -d` and removed
//! afterwards, so the direct-kernel baseline's disk stays as it was.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The image's size, as the direct-kernel baseline's disk.
const DISK_SIZE: u64 = 6 << 30;
const SECTOR: u64 = 512;
/// First sector of the partition (1 MiB, as fdisk and partman align it); the
/// sectors before it, after the MBR, are where core.img goes.
const PART_START: u64 = 2048;
/// GRUB's i386-pc files in the root (grub-pc-bin).
const PC_LIB: &str = "usr/lib/grub/i386-pc";
/// First line of our grub.cfg: how a leftover `/boot/grub/` from an
/// interrupted run is told from one the root came with.
const MARK: &str = "# basalt-bench: Debian's GRUB for the conventional boot baseline";

/// grub.cfg with what update-grub would write for one kernel, trimmed to the
/// essentials: serial console, 1 s menu timeout, one entry.
fn grub_cfg(kernel: &str, initrd: &str, cmdline: &str) -> String {
    format!(
        "{MARK}\n\
         set timeout=1\n\
         set default=0\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         menuentry 'Debian GNU/Linux' {{\n\
         \tinsmod part_msdos\n\
         \tinsmod ext2\n\
         \tset root=(hd0,msdos1)\n\
         \techo 'Loading Linux ...'\n\
         \tlinux /boot/{kernel} {cmdline}\n\
         \techo 'Loading initial ramdisk ...'\n\
         \tinitrd /boot/{initrd}\n\
         }}\n"
    )
}

/// `/boot/grub/` in the root while it exists; removed on drop.
struct Staged<'a>(&'a Path);

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(self.0) {
            eprintln!("bench: removing {}: {e}", self.0.display());
        }
    }
}

fn file_name(p: &Path) -> Result<&str> {
    p.file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no UTF-8 file name", p.display()))
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let st = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {what}"))?;
    if !st.success() {
        bail!("{what} failed ({st})");
    }
    Ok(())
}

/// Writes the GRUB-booted disk image of `root` to `disk`; `kernel` and
/// `initrd` are the root's `/boot` files, `cmdline` the kernel arguments.
pub fn build(root: &Path, kernel: &Path, initrd: &Path, cmdline: &str, disk: &Path) -> Result<()> {
    let lib = root.join(PC_LIB);
    for need in [lib.join("boot.img"), root.join("usr/bin/grub-mkimage")] {
        if !need.exists() {
            bail!("{} is missing (grub-pc-bin not installed?)", need.display());
        }
    }
    let grub = root.join("boot/grub");
    if grub.exists() {
        let ours =
            std::fs::read_to_string(grub.join("grub.cfg")).is_ok_and(|c| c.starts_with(MARK));
        if !ours {
            bail!(
                "{} exists and is not ours: not replacing it",
                grub.display()
            );
        }
        std::fs::remove_dir_all(&grub).with_context(|| format!("removing {}", grub.display()))?;
    }
    let staged = Staged(&grub);
    let mods = grub.join("i386-pc");
    std::fs::create_dir_all(&mods).with_context(|| format!("creating {}", mods.display()))?;
    // As grub-install does: the modules and their lists, loaded by normal
    // mode from the prefix.
    for e in std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "mod" || x == "lst") {
            std::fs::copy(&p, mods.join(file_name(&p)?))
                .with_context(|| format!("copying {}", p.display()))?;
        }
    }
    std::fs::write(
        grub.join("grub.cfg"),
        grub_cfg(file_name(kernel)?, file_name(initrd)?, cmdline),
    )
    .context("writing grub.cfg")?;
    run(
        Command::new("chroot").arg(root).args([
            "grub-mkimage",
            "-O",
            "i386-pc",
            "-o",
            "/boot/grub/i386-pc/core.img",
            "-p",
            "(hd0,msdos1)/boot/grub",
            "biosdisk",
            "part_msdos",
            "ext2",
        ]),
        "grub-mkimage in the root",
    )?;
    let boot_img = std::fs::read(lib.join("boot.img")).context("reading boot.img")?;
    let core_img = std::fs::read(mods.join("core.img")).context("reading core.img")?;

    {
        let f = File::create(disk).with_context(|| format!("creating {}", disk.display()))?;
        f.set_len(DISK_SIZE)?;
    }
    let mut sfdisk = Command::new("sfdisk");
    sfdisk
        .arg("-q")
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = sfdisk.spawn().context("running sfdisk")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("sfdisk's stdin")?;
        stdin
            .write_all(format!("label: dos\nstart={PART_START}, type=83, bootable\n").as_bytes())?;
    }
    let st = child.wait()?;
    if !st.success() {
        bail!("sfdisk failed ({st})");
    }
    // The file system's size, not the image's: mke2fs writes it from the
    // offset on.
    let fs_kib = (DISK_SIZE - PART_START * SECTOR) / 1024;
    run(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-E"])
            .arg(format!("offset={}", PART_START * SECTOR))
            .arg("-d")
            .arg(root)
            .arg(disk)
            .arg(format!("{fs_kib}k")),
        "mke2fs -d",
    )?;
    drop(staged);

    let f = File::options()
        .read(true)
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {}", disk.display()))?;
    // mke2fs left the partition table alone (it writes from the offset on).
    let mut mbr = [0u8; SECTOR as usize];
    f.read_exact_at(&mut mbr, 0)?;
    let first = u32::from_le_bytes([mbr[0x1c6], mbr[0x1c7], mbr[0x1c8], mbr[0x1c9]]);
    if u64::from(first) != PART_START {
        bail!("the partition table was lost (first partition at LBA {first})");
    }
    // The post-MBR gap, as grub-bios-setup embeds into it.
    basalt_grub::install_bios(&f, &boot_img, &core_img, 1, PART_START - 1)
        .context("embedding boot.img and core.img")?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_has_the_entry() {
        let c = grub_cfg("vmlinuz-6.12", "initrd.img-6.12", "root=/dev/vda1 rw");
        assert!(c.starts_with(MARK));
        for line in [
            "set timeout=1",
            "terminal_output serial console",
            "\tset root=(hd0,msdos1)",
            "\tlinux /boot/vmlinuz-6.12 root=/dev/vda1 rw",
            "\tinitrd /boot/initrd.img-6.12",
        ] {
            assert!(c.lines().any(|l| l == line), "{line:?} in\n{c}");
        }
    }

    /// Needs root and a debootstrapped root with grub-pc-bin, e.g.
    /// `BENCH_BOOT_ROOT=/var/tmp/basalt-bench/boot-root cargo test -- --ignored`:
    /// the image has its partition table, boot.img, core.img and an ext4
    /// that e2fsck passes, and the root is left without `/boot/grub`.
    #[test]
    #[ignore]
    fn builds_a_sound_disk() {
        let root = std::path::PathBuf::from(
            std::env::var("BENCH_BOOT_ROOT").expect("BENCH_BOOT_ROOT: a debootstrapped root"),
        );
        let pick = |prefix: &str| {
            let mut v: Vec<_> = std::fs::read_dir(root.join("boot"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| file_name(p).unwrap().starts_with(prefix))
                .collect();
            v.sort();
            v.pop().unwrap()
        };
        let (kernel, initrd) = (pick("vmlinuz-"), pick("initrd.img-"));
        let disk = std::env::temp_dir().join(format!("grubdisk-test-{}.img", std::process::id()));
        build(&root, &kernel, &initrd, "root=/dev/vda1 rw", &disk).unwrap();
        assert!(!root.join("boot/grub").exists());
        let img = File::open(&disk).unwrap();
        assert_eq!(img.metadata().unwrap().len(), DISK_SIZE);
        let mut head = vec![0u8; 2 * SECTOR as usize];
        img.read_exact_at(&mut head, 0).unwrap();
        assert_eq!(&head[0x1fe..0x200], &[0x55, 0xaa]);
        assert_eq!(head[0x1be], 0x80, "bootable");
        assert_eq!(head[0x1be + 4], 0x83, "Linux");
        let boot = std::fs::read(root.join(PC_LIB).join("boot.img")).unwrap();
        assert_eq!(&head[0x68..0x1b8], &boot[0x68..0x1b8], "boot.img's code");
        // core.img (diskboot.img first) with its block list: LBA 2 onwards.
        assert_eq!(&head[0x3f4..0x3fc], &2u64.to_le_bytes());
        let out = Command::new("e2fsck")
            .arg("-fn")
            .arg(format!("{}?offset={}", disk.display(), PART_START * SECTOR))
            .output()
            .unwrap();
        std::fs::remove_file(&disk).unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
