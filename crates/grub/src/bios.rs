//! Installs GRUB i386-pc into a raw GPT disk image without grub-install:
//! boot.img into the protective MBR's boot code, core.img into the BIOS-boot
//! partition. Offsets from GRUB `include/grub/i386/pc/boot.h`,
//! `grub-core/boot/i386/pc/diskboot.S` and `util/setup.c`.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{GrubError, Result};

/// Sector size GRUB's i386-pc boot code assumes.
pub const SECTOR: usize = 512;
/// boot.h `GRUB_BOOT_MACHINE_BPB_START`/`_BPB_END`: the DOS BPB area that
/// setup.c keeps from the existing sector.
const BPB_START: usize = 0x03;
const BPB_END: usize = 0x5a;
/// boot.h `GRUB_BOOT_MACHINE_KERNEL_SECTOR`: u64 LBA of core.img's first sector.
const KERNEL_SECTOR: usize = 0x5c;
/// boot.h `GRUB_BOOT_MACHINE_BOOT_DRIVE`: 0xff = use the drive in DL.
const BOOT_DRIVE: usize = 0x64;
const BOOT_DRIVE_FROM_BIOS: u8 = 0xff;
/// boot.h `GRUB_BOOT_MACHINE_DRIVE_CHECK`: the 2-byte jump that setup.c turns
/// into two NOPs for hard disks (work-around for BIOSes passing a bad DL).
const DRIVE_CHECK: usize = 0x66;
const NOP: u8 = 0x90;
/// boot.h `GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC` .. `GRUB_BOOT_MACHINE_PART_END`
/// plus the 0x55AA signature: disk signature and partition table, kept.
const KEEP_START: usize = 0x1b8;
const SIGNATURE: usize = 0x1fe;
/// diskboot.S: the first block list entry ends the first sector of core.img
/// (`struct grub_pc_bios_boot_blocklist { u64 start; u16 len; u16 segment; }`,
/// `GRUB_BOOT_MACHINE_LIST_SIZE` = 12 bytes).
const BLOCKLIST_SIZE: usize = 12;
const BLOCKLIST: usize = SECTOR - BLOCKLIST_SIZE;
/// `GRUB_BOOT_I386_PC_KERNEL_SEG` (0x800) + 0x20: where diskboot loads the
/// rest of core.img (the first sector sits at 0x800:0).
const LOAD_SEGMENT: u16 = 0x820;
/// core.img is loaded at 0x8000 and must stay below 0x80000 (our limit; GRUB
/// itself relies on conventional memory there).
pub const MAX_CORE_SIZE: usize = 0x78000;

const _: () = assert!(BLOCKLIST == 0x1f4);
const _: () = assert!(KERNEL_SECTOR + 8 <= BOOT_DRIVE && BPB_END <= KERNEL_SECTOR);

/// Where things go, computed before any byte is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosPlan {
    pub mbr: [u8; SECTOR],
    /// core.img with its block list patched, padded to whole sectors.
    pub core: Vec<u8>,
    pub core_lba: u64,
}

/// Builds the new MBR and the patched core.img (pure function of its inputs).
pub fn plan_bios(
    old_mbr: &[u8; SECTOR],
    boot_img: &[u8],
    core_img: &[u8],
    part_first_lba: u64,
    part_sectors: u64,
) -> Result<BiosPlan> {
    if boot_img.len() != SECTOR {
        return Err(GrubError::Bios(format!(
            "boot.img is {} bytes, want {SECTOR}",
            boot_img.len()
        )));
    }
    if u16::from_le_bytes([old_mbr[SIGNATURE], old_mbr[SIGNATURE + 1]]) != 0xaa55 {
        return Err(GrubError::Bios(
            "LBA 0 has no 0x55AA signature: write the GPT (with its protective MBR) first".into(),
        ));
    }
    if core_img.len() < SECTOR {
        return Err(GrubError::Bios(format!(
            "core.img is only {} bytes",
            core_img.len()
        )));
    }
    if core_img.len() > MAX_CORE_SIZE {
        return Err(GrubError::Bios(format!(
            "core.img is {} bytes, more than the {MAX_CORE_SIZE} bytes that fit below 0x80000",
            core_img.len()
        )));
    }
    let sectors = core_img.len().div_ceil(SECTOR);
    let sectors_u64 =
        u64::try_from(sectors).map_err(|_| GrubError::Bios("core.img too large".into()))?;
    if sectors_u64 > part_sectors {
        return Err(GrubError::Bios(format!(
            "core.img needs {sectors} sectors but the BIOS-boot partition has {part_sectors}"
        )));
    }
    if part_first_lba == 0 {
        return Err(GrubError::Bios(
            "BIOS-boot partition cannot start at LBA 0".into(),
        ));
    }
    let rest = u16::try_from(sectors - 1).map_err(|_| {
        GrubError::Bios(format!(
            "core.img has {sectors} sectors, too many for one block list entry"
        ))
    })?;

    let mut mbr = [0u8; SECTOR];
    mbr.copy_from_slice(boot_img);
    mbr[BPB_START..BPB_END].copy_from_slice(&old_mbr[BPB_START..BPB_END]);
    mbr[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&part_first_lba.to_le_bytes());
    mbr[BOOT_DRIVE] = BOOT_DRIVE_FROM_BIOS;
    mbr[DRIVE_CHECK] = NOP;
    mbr[DRIVE_CHECK + 1] = NOP;
    mbr[KEEP_START..SECTOR].copy_from_slice(&old_mbr[KEEP_START..SECTOR]);

    let mut core = core_img.to_vec();
    core.resize(sectors * SECTOR, 0);
    let start = part_first_lba + 1;
    core[BLOCKLIST..BLOCKLIST + 8].copy_from_slice(&start.to_le_bytes());
    core[BLOCKLIST + 8..BLOCKLIST + 10].copy_from_slice(&rest.to_le_bytes());
    core[BLOCKLIST + 10..BLOCKLIST + 12].copy_from_slice(&LOAD_SEGMENT.to_le_bytes());
    Ok(BiosPlan {
        mbr,
        core,
        core_lba: part_first_lba,
    })
}

/// Installs boot.img and core.img into the disk image `disk` (opened read +
/// write). The GPT and its protective MBR must already be written; the
/// partition table and disk signature in LBA 0 are kept. core.img is written
/// first, the MBR last, so a failure never leaves an MBR pointing at garbage.
pub fn install_bios(
    disk: &File,
    boot_img: &[u8],
    core_img: &[u8],
    bios_part_first_lba: u64,
    bios_part_sectors: u64,
) -> Result<()> {
    let io = |what: &'static str| GrubError::io(what, "disk image");
    let mut old = [0u8; SECTOR];
    disk.read_exact_at(&mut old, 0)
        .map_err(io("reading LBA 0 of"))?;
    let plan = plan_bios(
        &old,
        boot_img,
        core_img,
        bios_part_first_lba,
        bios_part_sectors,
    )?;
    let offset = plan
        .core_lba
        .checked_mul(SECTOR as u64)
        .ok_or_else(|| GrubError::Bios("BIOS-boot partition offset overflows".into()))?;
    disk.write_all_at(&plan.core, offset)
        .map_err(io("writing core.img to"))?;
    disk.write_all_at(&plan.mbr, 0)
        .map_err(io("writing boot.img to"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_img() -> Vec<u8> {
        // Recognisable stand-in: every byte is its offset's low bits, with
        // the jump GRUB has at DRIVE_CHECK and the boot signature.
        let mut b: Vec<u8> = (0..SECTOR).map(|i| (i % 251) as u8).collect();
        b[DRIVE_CHECK] = 0xeb;
        b[SIGNATURE] = 0x55;
        b[SIGNATURE + 1] = 0xaa;
        b
    }

    fn protective_mbr() -> [u8; SECTOR] {
        let mut m = [0u8; SECTOR];
        m[0x1b8..0x1bc].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
        m[0x1be + 4] = 0xee;
        m[0x1be + 8] = 1;
        m[SIGNATURE] = 0x55;
        m[SIGNATURE + 1] = 0xaa;
        m
    }

    #[test]
    fn installs_into_generated_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let disk = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        disk.set_len(8 * 1024 * 1024).unwrap();
        disk.write_all_at(&protective_mbr(), 0).unwrap();
        let core: Vec<u8> = (0..3 * SECTOR + 100).map(|i| (i % 7) as u8 + 1).collect();
        install_bios(&disk, &boot_img(), &core, 2048, 4096).unwrap();

        let img = std::fs::read(&path).unwrap();
        let mbr = &img[..SECTOR];
        let boot = boot_img();
        assert_eq!(&mbr[..BPB_START], &boot[..BPB_START]);
        assert!(
            mbr[BPB_START..BPB_END].iter().all(|&b| b == 0),
            "BPB from the old sector"
        );
        assert_eq!(&mbr[BPB_END..KERNEL_SECTOR], &boot[BPB_END..KERNEL_SECTOR]);
        assert_eq!(&mbr[0x5c..0x64], &2048u64.to_le_bytes());
        assert_eq!(mbr[0x64], 0xff);
        assert_eq!(&mbr[0x66..0x68], &[0x90, 0x90]);
        assert_eq!(&mbr[0x68..0x1b8], &boot[0x68..0x1b8]);
        assert_eq!(&mbr[0x1b8..], &protective_mbr()[0x1b8..]);

        let c = &img[2048 * SECTOR..2048 * SECTOR + 4 * SECTOR];
        assert_eq!(&c[..0x1f4], &core[..0x1f4]);
        assert_eq!(&c[0x1f4..0x1fc], &2049u64.to_le_bytes());
        assert_eq!(&c[0x1fc..0x1fe], &3u16.to_le_bytes());
        assert_eq!(&c[0x1fe..0x200], &0x820u16.to_le_bytes());
        assert_eq!(&c[SECTOR..core.len()], &core[SECTOR..]);
        assert!(c[core.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn refuses_bad_input() {
        let core = vec![1u8; 4 * SECTOR];
        type Case = (Vec<u8>, [u8; SECTOR], Vec<u8>, u64, u64, &'static str);
        let cases: Vec<Case> = vec![
            (
                boot_img()[..400].to_vec(),
                protective_mbr(),
                core.clone(),
                2048,
                4096,
                "boot.img is 400",
            ),
            (
                boot_img(),
                [0u8; SECTOR],
                core.clone(),
                2048,
                4096,
                "no 0x55AA",
            ),
            (
                boot_img(),
                protective_mbr(),
                core.clone(),
                2048,
                3,
                "needs 4 sectors",
            ),
            (
                boot_img(),
                protective_mbr(),
                vec![1u8; 10],
                2048,
                4096,
                "only 10 bytes",
            ),
            (
                boot_img(),
                protective_mbr(),
                vec![1u8; MAX_CORE_SIZE + 1],
                2048,
                4096,
                "below 0x80000",
            ),
            (boot_img(), protective_mbr(), core.clone(), 0, 4096, "LBA 0"),
        ];
        for (boot, mbr, core, lba, n, want) in cases {
            let e = plan_bios(&mbr, &boot, &core, lba, n)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e} should contain {want}");
        }
    }
}
