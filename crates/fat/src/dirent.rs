//! The 32-byte short directory entry and FAT dates and times.
//!
//! Offsets (FAT specification, "Directory Structure"): 0 name[11],
//! 11 attributes, 12 NT reserved, 13 creation time tenths, 14 creation time,
//! 16 creation date, 18 last access date, 20 first cluster high word,
//! 22 write time, 24 write date, 26 first cluster low word, 28 file size.

use crate::names::ShortName;

pub const DIRENT_SIZE: usize = 32;
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LONG_NAME: u8 = 0x0F;

/// A FAT timestamp: date (bits 15..9 year-1980, 8..5 month, 4..0 day) and
/// time (15..11 hours, 10..5 minutes, 4..0 seconds/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatTime {
    pub date: u16,
    pub time: u16,
}

/// Seconds since the Unix epoch (UTC) to a FAT timestamp, clamped to the
/// representable 1980-01-01 .. 2107-12-31 23:59:58.
pub fn fat_time(secs: i64) -> FatTime {
    const MIN: i64 = 315_532_800; // 1980-01-01T00:00:00Z
    const MAX: i64 = 4_354_819_198; // 2107-12-31T23:59:58Z
    let s = secs.clamp(MIN, MAX);
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Ranges are guaranteed by the clamp above.
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = (((rem / 3600) as u16) << 11)
        | ((((rem % 3600) / 60) as u16) << 5)
        | ((rem % 60) / 2) as u16;
    FatTime { date, time }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (the well-known era-based conversion).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A short entry.
pub fn short_entry(
    name: &ShortName,
    attr: u8,
    cluster: u32,
    size: u32,
    t: FatTime,
) -> [u8; DIRENT_SIZE] {
    let mut e = [0u8; DIRENT_SIZE];
    e[0..11].copy_from_slice(name);
    e[11] = attr;
    e[14..16].copy_from_slice(&t.time.to_le_bytes());
    e[16..18].copy_from_slice(&t.date.to_le_bytes());
    e[18..20].copy_from_slice(&t.date.to_le_bytes());
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&t.time.to_le_bytes());
    e[24..26].copy_from_slice(&t.date.to_le_bytes());
    e[26..28].copy_from_slice(&((cluster & 0xFFFF) as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

pub fn entry_cluster(e: &[u8]) -> u32 {
    (u32::from(u16::from_le_bytes([e[20], e[21]])) << 16)
        | u32::from(u16::from_le_bytes([e[26], e[27]]))
}

pub fn entry_size(e: &[u8]) -> u32 {
    u32::from_le_bytes([e[28], e[29], e[30], e[31]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_time_table() {
        // (unix seconds, y, m, d, h, min, s)
        let cases = [
            (0i64, 1980, 1, 1, 0, 0, 0),
            (315_532_800, 1980, 1, 1, 0, 0, 0),
            (1_700_000_000, 2023, 11, 14, 22, 13, 20),
            (951_782_400, 2000, 2, 29, 0, 0, 0),
            (1_704_067_199, 2023, 12, 31, 23, 59, 58),
            (i64::MAX, 2107, 12, 31, 23, 59, 58),
        ];
        for (secs, y, mo, d, h, mi, s) in cases {
            let t = fat_time(secs);
            assert_eq!(t.date, ((y - 1980) << 9) | (mo << 5) | d, "{secs}");
            assert_eq!(t.time, (h << 11) | (mi << 5) | (s / 2), "{secs}");
        }
    }

    #[test]
    fn short_entry_layout() {
        let t = FatTime {
            date: 0x5771,
            time: 0x1234,
        };
        let e = short_entry(b"GRUB    CFG", ATTR_ARCHIVE, 0x0012_3456, 1000, t);
        assert_eq!(&e[0..11], b"GRUB    CFG");
        assert_eq!(e[11], 0x20);
        assert_eq!(&e[20..22], &[0x12, 0x00]);
        assert_eq!(&e[26..28], &[0x56, 0x34]);
        assert_eq!(&e[22..26], &[0x34, 0x12, 0x71, 0x57]);
        assert_eq!(entry_cluster(&e), 0x0012_3456);
        assert_eq!(entry_size(&e), 1000);
    }
}
