//! One 128-byte GPT partition entry (UEFI specification, "GPT Partition
//! Entry Array"): type GUID at 0, unique GUID at 16, first LBA at 32, last
//! LBA (inclusive) at 40, attributes at 48, UTF-16LE name (36 code units) at 56.

use crate::attrs::Attributes;
use crate::guid::Guid;

pub const ENTRY_SIZE: usize = 128;
/// Name field: 72 bytes, 36 UTF-16 code units.
pub const NAME_UNITS: usize = 36;
const OFF_TYPE: usize = 0;
const OFF_UNIQUE: usize = 16;
const OFF_FIRST: usize = 32;
const OFF_LAST: usize = 40;
const OFF_ATTRS: usize = 48;
const OFF_NAME: usize = 56;
const _: () = assert!(OFF_NAME + NAME_UNITS * 2 == ENTRY_SIZE);

/// A used partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionEntry {
    pub type_guid: Guid,
    pub part_guid: Guid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: Attributes,
    pub name: String,
}

/// UTF-16 code units of `name`, or `None` if it does not fit the field.
pub fn encode_name(name: &str) -> Option<Vec<u16>> {
    let units: Vec<u16> = name.encode_utf16().collect();
    (units.len() <= NAME_UNITS).then_some(units)
}

fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

impl PartitionEntry {
    /// The entry's bytes; `None` if the name is longer than 36 UTF-16 units.
    pub fn encode(&self) -> Option<[u8; ENTRY_SIZE]> {
        let units = encode_name(&self.name)?;
        let mut b = [0u8; ENTRY_SIZE];
        b[OFF_TYPE..OFF_TYPE + 16].copy_from_slice(&self.type_guid.to_disk());
        b[OFF_UNIQUE..OFF_UNIQUE + 16].copy_from_slice(&self.part_guid.to_disk());
        b[OFF_FIRST..OFF_FIRST + 8].copy_from_slice(&self.first_lba.to_le_bytes());
        b[OFF_LAST..OFF_LAST + 8].copy_from_slice(&self.last_lba.to_le_bytes());
        b[OFF_ATTRS..OFF_ATTRS + 8].copy_from_slice(&self.attributes.0.to_le_bytes());
        for (i, u) in units.iter().enumerate() {
            b[OFF_NAME + 2 * i..OFF_NAME + 2 * i + 2].copy_from_slice(&u.to_le_bytes());
        }
        Some(b)
    }

    /// Decode an entry; `None` for an unused one (nil type GUID).
    /// `b` must hold at least 128 bytes.
    pub fn decode(b: &[u8]) -> Option<PartitionEntry> {
        let guid = |o: usize| {
            let mut g = [0u8; 16];
            g.copy_from_slice(&b[o..o + 16]);
            Guid::from_disk(&g)
        };
        let type_guid = guid(OFF_TYPE);
        if type_guid.is_nil() {
            return None;
        }
        let units: Vec<u16> = b[OFF_NAME..OFF_NAME + NAME_UNITS * 2]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Some(PartitionEntry {
            type_guid,
            part_guid: guid(OFF_UNIQUE),
            first_lba: le64(b, OFF_FIRST),
            last_lba: le64(b, OFF_LAST),
            attributes: Attributes(le64(b, OFF_ATTRS)),
            name: String::from_utf16_lossy(&units),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::types;

    #[test]
    fn encode_fields_and_round_trip() {
        let e = PartitionEntry {
            type_guid: types::ESP,
            part_guid: Guid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
            first_lba: 2048,
            last_lba: 4095,
            attributes: Attributes::REQUIRED | Attributes::NO_AUTO,
            name: "EFI-SYSTEM".into(),
        };
        let b = e.encode().expect("encode");
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x28, 0x73, 0x2a, 0xc1]),
            (16, &[4, 3, 2, 1, 6, 5, 8, 7, 9, 10]),
            (32, &[0, 8, 0, 0, 0, 0, 0, 0]),
            (40, &[0xff, 0x0f, 0, 0, 0, 0, 0, 0]),
            (48, &[1, 0, 0, 0, 0, 0, 0, 0x80]),
            (56, &[b'E', 0, b'F', 0, b'I', 0, b'-', 0]),
            (76, &[0; 52]),
        ];
        for (off, want) in cases {
            assert_eq!(&b[*off..*off + want.len()], *want, "offset {off}");
        }
        assert_eq!(PartitionEntry::decode(&b), Some(e));
        assert_eq!(PartitionEntry::decode(&[0u8; 128]), None);
    }

    #[test]
    fn names_table() {
        let cases = [
            ("", true),
            ("USR-A", true),
            (&*"x".repeat(36), true),
            (&*"x".repeat(37), false),
            ("ünïcødé", true),
        ];
        for (name, fits) in cases {
            assert_eq!(encode_name(name).is_some(), fits, "{name}");
        }
        let e = PartitionEntry {
            type_guid: types::LINUX_DATA,
            part_guid: Guid::NIL,
            first_lba: 1,
            last_lba: 1,
            attributes: Attributes::NONE,
            name: "ünïcødé".into(),
        };
        assert_eq!(
            PartitionEntry::decode(&e.encode().expect("encode")).map(|d| d.name),
            Some(e.name)
        );
    }
}
