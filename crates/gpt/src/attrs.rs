//! The 64-bit partition attribute field of a GPT entry.

use std::ops::BitOr;

/// Partition attributes. Bits 0..=2 are defined by the UEFI specification,
/// bits 48..=63 are type-specific; the ones below are the Discoverable
/// Partitions Specification's meanings for Linux partition types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attributes(pub u64);

impl Attributes {
    pub const NONE: Attributes = Attributes(0);
    /// Bit 0: required by the platform; do not delete.
    pub const REQUIRED: Attributes = Attributes(1 << 0);
    /// Bit 2: legacy BIOS bootable.
    pub const LEGACY_BIOS_BOOTABLE: Attributes = Attributes(1 << 2);
    /// Bit 59: grow the file system to the partition size (SD_GPT_FLAG_GROWFS).
    pub const GROWFS: Attributes = Attributes(1 << 59);
    /// Bit 60: mount read-only (SD_GPT_FLAG_READ_ONLY).
    pub const READ_ONLY: Attributes = Attributes(1 << 60);
    /// Bit 63: do not mount automatically (SD_GPT_FLAG_NO_AUTO).
    pub const NO_AUTO: Attributes = Attributes(1 << 63);

    pub fn contains(self, other: Attributes) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Attributes {
    type Output = Attributes;
    fn bitor(self, rhs: Attributes) -> Attributes {
        Attributes(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_table() {
        let cases = [
            (Attributes::REQUIRED, 0),
            (Attributes::LEGACY_BIOS_BOOTABLE, 2),
            (Attributes::GROWFS, 59),
            (Attributes::READ_ONLY, 60),
            (Attributes::NO_AUTO, 63),
        ];
        for (a, bit) in cases {
            assert_eq!(a.0, 1u64 << bit);
        }
        let both = Attributes::READ_ONLY | Attributes::NO_AUTO;
        assert!(both.contains(Attributes::NO_AUTO) && !both.contains(Attributes::GROWFS));
    }
}
