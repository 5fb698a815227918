//! The FAT32 boot sector (BIOS parameter block) and the FSInfo sector.
//!
//! Boot sector offsets (FAT specification, "Boot Sector and BPB"):
//! 0 jump, 3 OEM name, 11 bytes/sector, 13 sectors/cluster, 14 reserved
//! sectors, 16 number of FATs, 17 root entries (0), 19 total sectors 16 (0),
//! 21 media, 22 FAT size 16 (0), 24 sectors/track, 26 heads, 28 hidden
//! sectors, 32 total sectors 32, 36 FAT size 32, 40 ext flags, 42 version,
//! 44 root cluster, 48 FSInfo sector, 50 backup boot sector, 52 reserved[12],
//! 64 drive number, 65 reserved, 66 boot signature 0x29, 67 volume id,
//! 71 volume label[11], 82 "FAT32   ", 510 0x55 0xAA.

use crate::geometry::{Geometry, NUM_FATS, RESERVED_SECTORS, SECTOR};

pub const MEDIA_FIXED: u8 = 0xF8;
pub const ROOT_CLUSTER: u32 = 2;
pub const FSINFO_SECTOR: u16 = 1;
pub const BACKUP_BOOT_SECTOR: u16 = 6;
const OEM_NAME: &[u8; 8] = b"BASALT  ";
/// `jmp short 0x5A; nop`: skips the BPB to where boot code would start.
const JUMP: [u8; 3] = [0xEB, 0x58, 0x90];
/// Conventional geometry reported to BIOS code; unused on LBA disks.
const SECTORS_PER_TRACK: u16 = 63;
const HEADS: u16 = 255;
const DRIVE_NUMBER: u8 = 0x80;
const EXT_BOOT_SIGNATURE: u8 = 0x29;

pub const FSINFO_LEAD_SIG: u32 = 0x4161_5252;
pub const FSINFO_STRUC_SIG: u32 = 0x6141_7272;
pub const FSINFO_TRAIL_SIG: u32 = 0xAA55_0000;

/// Boot sector for `g`. `label` is the 11-byte space-padded label.
pub fn boot_sector(
    g: &Geometry,
    hidden_sectors: u32,
    volume_id: u32,
    label: &[u8; 11],
) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..3].copy_from_slice(&JUMP);
    b[3..11].copy_from_slice(OEM_NAME);
    b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    // At most 64 by construction (cluster size <= 32 KiB).
    b[13] = g.sectors_per_cluster as u8;
    b[14..16].copy_from_slice(&(RESERVED_SECTORS as u16).to_le_bytes());
    b[16] = NUM_FATS as u8;
    b[21] = MEDIA_FIXED;
    b[24..26].copy_from_slice(&SECTORS_PER_TRACK.to_le_bytes());
    b[26..28].copy_from_slice(&HEADS.to_le_bytes());
    b[28..32].copy_from_slice(&hidden_sectors.to_le_bytes());
    b[32..36].copy_from_slice(&g.total_sectors.to_le_bytes());
    b[36..40].copy_from_slice(&g.fat_sectors.to_le_bytes());
    b[44..48].copy_from_slice(&ROOT_CLUSTER.to_le_bytes());
    b[48..50].copy_from_slice(&FSINFO_SECTOR.to_le_bytes());
    b[50..52].copy_from_slice(&BACKUP_BOOT_SECTOR.to_le_bytes());
    b[64] = DRIVE_NUMBER;
    b[66] = EXT_BOOT_SIGNATURE;
    b[67..71].copy_from_slice(&volume_id.to_le_bytes());
    b[71..82].copy_from_slice(label);
    b[82..90].copy_from_slice(b"FAT32   ");
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

/// FSInfo sector: signatures at 0, 484 and 508, free count at 488, next
/// free hint at 492.
pub fn fsinfo(free_clusters: u32, next_free: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..4].copy_from_slice(&FSINFO_LEAD_SIG.to_le_bytes());
    b[484..488].copy_from_slice(&FSINFO_STRUC_SIG.to_le_bytes());
    b[488..492].copy_from_slice(&free_clusters.to_le_bytes());
    b[492..496].copy_from_slice(&next_free.to_le_bytes());
    b[508..512].copy_from_slice(&FSINFO_TRAIL_SIG.to_le_bytes());
    b
}

/// Fields a reader needs, decoded from a boot sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bpb {
    pub bytes_per_sector: u16,
    pub sectors_per_cluster: u8,
    pub reserved_sectors: u16,
    pub num_fats: u8,
    pub total_sectors: u32,
    pub fat_sectors: u32,
    pub root_cluster: u32,
    pub fsinfo_sector: u16,
    pub backup_boot_sector: u16,
}

impl Bpb {
    pub fn decode(b: &[u8; 512]) -> Option<Bpb> {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if b[510..512] != [0x55, 0xAA] || u16_at(17) != 0 || u16_at(22) != 0 {
            return None;
        }
        Some(Bpb {
            bytes_per_sector: u16_at(11),
            sectors_per_cluster: b[13],
            reserved_sectors: u16_at(14),
            num_fats: b[16],
            total_sectors: u32_at(32),
            fat_sectors: u32_at(36),
            root_cluster: u32_at(44),
            fsinfo_sector: u16_at(48),
            backup_boot_sector: u16_at(50),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_sector_fields() {
        let g = Geometry::new(64 << 20, None).expect("geometry");
        let b = boot_sector(&g, 2048, 0x1234_5678, b"BASALT-ESP ");
        let cases: &[(usize, &[u8])] = &[
            (0, &[0xEB, 0x58, 0x90]),
            (11, &[0, 2, 1, 32, 0, 2, 0, 0, 0, 0, 0xF8, 0, 0]),
            (28, &[0, 8, 0, 0]),
            (32, &g.total_sectors.to_le_bytes()),
            (36, &g.fat_sectors.to_le_bytes()),
            (44, &[2, 0, 0, 0, 1, 0, 6, 0]),
            (64, &[0x80, 0, 0x29, 0x78, 0x56, 0x34, 0x12]),
            (71, b"BASALT-ESP FAT32   "),
            (510, &[0x55, 0xAA]),
        ];
        for (off, want) in cases {
            assert_eq!(&b[*off..*off + want.len()], *want, "offset {off}");
        }
        let d = Bpb::decode(&b).expect("decode");
        assert_eq!(
            (d.total_sectors, d.fat_sectors, d.root_cluster),
            (g.total_sectors, g.fat_sectors, 2)
        );
    }

    #[test]
    fn fsinfo_fields() {
        let b = fsinfo(1000, 77);
        assert_eq!(&b[0..4], b"RRaA");
        assert_eq!(&b[484..488], b"rrAa");
        assert_eq!(&b[488..496], &[0xE8, 3, 0, 0, 77, 0, 0, 0]);
        assert_eq!(&b[508..512], &[0, 0, 0x55, 0xAA]);
    }
}
