//! The protective MBR in LBA 0 (UEFI specification, "Protective MBR"): one
//! partition record of type 0xEE covering the disk from LBA 1, so MBR-only
//! tools leave the GPT disk alone.

use crate::header::SECTOR;

const RECORD_OFFSET: usize = 446;
pub const OS_TYPE_GPT_PROTECTIVE: u8 = 0xEE;
const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xAA];

/// LBA 0 for a disk of `disk_sectors` sectors.
pub fn protective_mbr(disk_sectors: u64) -> [u8; SECTOR as usize] {
    let mut b = [0u8; SECTOR as usize];
    let r = &mut b[RECORD_OFFSET..RECORD_OFFSET + 16];
    r[0] = 0; // not bootable
    r[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // starting CHS 0/0/2 = LBA 1
    r[4] = OS_TYPE_GPT_PROTECTIVE;
    r[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]); // ending CHS not representable
    r[8..12].copy_from_slice(&1u32.to_le_bytes());
    // Size in sectors, clamped to 0xFFFFFFFF on disks over 2 TiB.
    let size = u32::try_from(disk_sectors.saturating_sub(1)).unwrap_or(u32::MAX);
    r[12..16].copy_from_slice(&size.to_le_bytes());
    b[510..512].copy_from_slice(&BOOT_SIGNATURE);
    b
}

/// Whether `b` is a protective MBR (record 0 of type 0xEE, boot signature).
pub fn is_protective(b: &[u8; SECTOR as usize]) -> bool {
    b[510..512] == BOOT_SIGNATURE && b[RECORD_OFFSET + 4] == OS_TYPE_GPT_PROTECTIVE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_table() {
        let cases = [
            (2048u64, 2047u32),
            (1 << 32, u32::MAX),
            ((1 << 32) + 5, u32::MAX),
        ];
        for (sectors, want) in cases {
            let b = protective_mbr(sectors);
            assert_eq!(&b[458..462], &want.to_le_bytes(), "{sectors}");
            assert_eq!(&b[454..458], &[1, 0, 0, 0]);
            assert!(is_protective(&b));
        }
    }
}
