//! GUIDs: canonical text form, the mixed-endian on-disk form, well-known
//! partition type GUIDs, and deterministic GUIDs derived from a seed.

use std::fmt;

#[cfg(feature = "seed")]
use sha2::{Digest, Sha256};

/// A GUID held in canonical (RFC 4122, "as printed") byte order.
/// On disk, UEFI stores the first three fields little-endian
/// ([`Guid::to_disk`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const NIL: Guid = Guid([0; 16]);

    /// From the 128-bit number the text form spells out.
    pub const fn from_u128(v: u128) -> Guid {
        Guid(v.to_be_bytes())
    }

    /// Parse `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    pub fn parse(s: &str) -> Option<Guid> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let hex: String = s.chars().filter(|&c| c != '-').collect();
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(Guid::from_u128)
    }

    /// The 16 bytes as stored in GPT structures: time_low, time_mid and
    /// time_hi_and_version little-endian, the last 8 bytes as they are.
    pub fn to_disk(&self) -> [u8; 16] {
        let mut d = self.0;
        d[0..4].reverse();
        d[4..6].reverse();
        d[6..8].reverse();
        d
    }

    pub fn from_disk(d: &[u8; 16]) -> Guid {
        // The swap is its own inverse.
        Guid(Guid(*d).to_disk())
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

#[cfg(feature = "seed")]
/// A GUID derived from `seed` and `label` with SHA-256, marked as a random
/// (version 4, RFC 4122 variant) GUID. Same inputs, same GUID.
pub fn guid_from_seed(seed: &[u8], label: &str) -> Guid {
    let mut h = Sha256::new();
    h.update(b"basalt-guid\0");
    h.update((seed.len() as u64).to_le_bytes());
    h.update(seed);
    h.update(label.as_bytes());
    let d = h.finalize();
    let mut g = [0u8; 16];
    g.copy_from_slice(&d[..16]);
    g[6] = (g[6] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    Guid(g)
}

/// Partition type GUIDs. ESP and BIOS boot are from the UEFI specification
/// and GRUB; the Linux ones from the UAPI Group's Discoverable Partitions
/// Specification.
pub mod types {
    use super::Guid;

    /// EFI System Partition.
    pub const ESP: Guid = Guid::from_u128(0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b);
    /// BIOS boot partition (GRUB's core.img on GPT disks).
    pub const BIOS_BOOT: Guid = Guid::from_u128(0x21686148_6449_6e6f_744e_656564454649);
    /// `/usr` partition, x86-64 (SD_GPT_USR_X86_64).
    pub const USR_X86_64: Guid = Guid::from_u128(0x8484680c_9521_48c6_9c11_b0720656f69e);
    /// `/usr` verity partition, x86-64 (SD_GPT_USR_X86_64_VERITY).
    pub const USR_X86_64_VERITY: Guid = Guid::from_u128(0x77ff5f63_e7b6_4633_acf4_1565b864c0e6);
    /// Generic Linux data.
    pub const LINUX_DATA: Guid = Guid::from_u128(0x0fc63daf_8483_4772_8e79_3d69d8477de4);
    /// Root partition, x86-64 (SD_GPT_ROOT_X86_64).
    pub const ROOT_X86_64: Guid = Guid::from_u128(0x4f68bce3_e8cd_4db1_96e7_fbcaf984b709);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_encoding_table() {
        // (text, on-disk bytes)
        let cases: &[(&str, [u8; 16])] = &[
            (
                "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
                [
                    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9,
                    0x3e, 0xc9, 0x3b,
                ],
            ),
            (
                "21686148-6449-6e6f-744e-656564454649",
                // "Hah!IdontNeedEFI" in ASCII.
                *b"Hah!IdontNeedEFI",
            ),
        ];
        for (text, disk) in cases {
            let g = Guid::parse(text).expect("parse");
            assert_eq!(g.to_disk(), *disk, "{text}");
            assert_eq!(Guid::from_disk(disk), g);
            assert_eq!(g.to_string(), *text);
        }
        assert_eq!(
            types::ESP,
            Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").expect("upper")
        );
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "",
            "c12a7328f81f11d2ba4b00a0c93ec93b",
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93",
            "g12a7328-f81f-11d2-ba4b-00a0c93ec93b",
        ] {
            assert_eq!(Guid::parse(bad), None, "{bad}");
        }
    }

    #[cfg(feature = "seed")]
    #[test]
    fn seeded_guids() {
        let a = guid_from_seed(b"seed", "disk");
        assert_eq!(a, guid_from_seed(b"seed", "disk"));
        assert_ne!(a, guid_from_seed(b"seed", "USR-A"));
        assert_ne!(a, guid_from_seed(b"seee", "disk"));
        // Length prefix: ("ab","c") and ("a","bc") differ.
        assert_ne!(guid_from_seed(b"ab", "c"), guid_from_seed(b"a", "bc"));
        let s = a.to_string();
        assert_eq!(&s[14..15], "4", "version nibble in {s}");
        assert!(
            matches!(&s[19..20], "8" | "9" | "a" | "b"),
            "variant in {s}"
        );
    }
}
