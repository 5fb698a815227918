//! Volume geometry: cluster size, FAT size and cluster count for a FAT32
//! volume of a given size (512-byte sectors).

use crate::error::{FatError, Result};

pub const SECTOR: u64 = 512;
/// Reserved sectors before the first FAT (boot, FSInfo, backups).
pub const RESERVED_SECTORS: u32 = 32;
pub const NUM_FATS: u32 = 2;
/// FAT32 needs at least this many clusters (FAT specification,
/// "FAT Type Determination"); fewer would be read as FAT16.
pub const MIN_CLUSTERS: u32 = 65_525;
/// Highest usable cluster number is 0x0FFFFFF6 (0x0FFFFFF7 marks bad).
pub const MAX_CLUSTERS: u32 = 0x0FFF_FFF5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub total_sectors: u32,
    pub sectors_per_cluster: u32,
    pub fat_sectors: u32,
    /// Data clusters, numbered 2..clusters+2.
    pub clusters: u32,
}

/// Sectors per cluster for a volume of `total` sectors, following the
/// Microsoft FAT32 table ("DskTableFAT32"): 512 B up to 260 MB, 4 KiB up to
/// 8 GB, 8 KiB up to 16 GB, 16 KiB up to 32 GB, 32 KiB above.
pub fn default_sectors_per_cluster(total: u64) -> u32 {
    match total {
        0..=532_480 => 1,
        532_481..=16_777_216 => 8,
        16_777_217..=33_554_432 => 16,
        33_554_433..=67_108_864 => 32,
        _ => 64,
    }
}

impl Geometry {
    /// Plan a volume of `size` bytes; `cluster_size` overrides the table.
    pub fn new(size: u64, cluster_size: Option<u32>) -> Result<Geometry> {
        let bad = |why: String| FatError::BadSize { size, why };
        if size % SECTOR != 0 {
            return Err(bad("not a multiple of 512".into()));
        }
        let total = u32::try_from(size / SECTOR)
            .map_err(|_| bad("over 2 TiB, too large for FAT32".into()))?;
        let spc = match cluster_size {
            Some(c) if !c.is_power_of_two() || !(512..=32_768).contains(&c) => {
                return Err(FatError::BadClusterSize(c));
            }
            Some(c) => c / 512,
            None => default_sectors_per_cluster(u64::from(total)),
        };
        let after_reserved = total
            .checked_sub(RESERVED_SECTORS)
            .ok_or_else(|| bad("smaller than the reserved area".into()))?;
        // Upper bound on the FAT size: as if every non-reserved sector held
        // data. Then the exact cluster count with that FAT size.
        let max_clusters = u64::from(after_reserved / spc);
        let fat_sectors = u32::try_from(((max_clusters + 2) * 4).div_ceil(SECTOR))
            .map_err(|_| bad("FAT too large".into()))?;
        let data = after_reserved
            .checked_sub(NUM_FATS * fat_sectors)
            .ok_or_else(|| bad("no room for the FATs".into()))?;
        let clusters = data / spc;
        if clusters < MIN_CLUSTERS {
            return Err(bad(format!(
                "only {clusters} clusters of {} bytes; FAT32 needs at least {MIN_CLUSTERS}",
                spc * 512
            )));
        }
        if clusters > MAX_CLUSTERS {
            return Err(bad(format!(
                "{clusters} clusters exceed the FAT32 maximum {MAX_CLUSTERS}"
            )));
        }
        Ok(Geometry {
            total_sectors: total,
            sectors_per_cluster: spc,
            fat_sectors,
            clusters,
        })
    }

    pub fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * SECTOR
    }

    pub fn fat_offset(&self, copy: u32) -> u64 {
        (u64::from(RESERVED_SECTORS) + u64::from(copy) * u64::from(self.fat_sectors)) * SECTOR
    }

    pub fn data_offset(&self) -> u64 {
        self.fat_offset(NUM_FATS)
    }

    /// Byte offset of cluster `c` (>= 2) within the volume.
    pub fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset() + u64::from(c - 2) * self.cluster_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn geometry_table() {
        // (size, sectors per cluster)
        for (size, spc) in [
            (64 * MIB, 1),
            (260 * MIB, 1),
            (261 * MIB, 8),
            (1024 * MIB, 8),
            (8 * 1024 * MIB, 8),
            (9 * 1024 * MIB, 16),
        ] {
            let g = Geometry::new(size, None).expect("geometry");
            assert_eq!(g.sectors_per_cluster, spc, "{size}");
            // The FAT covers every cluster, and no cluster runs past the end.
            assert!(u64::from(g.fat_sectors) * 512 >= (u64::from(g.clusters) + 2) * 4);
            assert!(g.cluster_offset(g.clusters + 2) <= size);
        }
    }

    #[test]
    fn rejects() {
        for (size, cs) in [
            (MIB, None),
            (32 * MIB, None),
            (64 * MIB + 1, None),
            (1 << 42, None),
            (64 * MIB, Some(1000)),
        ] {
            assert!(Geometry::new(size, cs).is_err(), "{size} {cs:?}");
        }
    }
}
