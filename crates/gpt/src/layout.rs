//! Planning a disk: partition positions from sizes, validated before any
//! byte is written, then writing the partition table.

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;

use crate::attrs::Attributes;
use crate::entry::{ENTRY_SIZE, PartitionEntry, encode_name};
use crate::error::{GptError, Result, io_err};
use crate::guid::Guid;
use crate::header::{ENTRY_ARRAY_SECTORS, NUM_ENTRIES, SECTOR};
use crate::mbr::protective_mbr;
use crate::write::Structures;

/// Partition alignment: 1 MiB.
pub const ALIGN: u64 = 1 << 20;
/// First usable LBA with a 32-sector entry array: MBR, header, entries.
pub const FIRST_USABLE_LBA: u64 = 2 + ENTRY_ARRAY_SECTORS;
/// Sectors at the end of the disk taken by the backup entries and header.
pub const BACKUP_SECTORS: u64 = ENTRY_ARRAY_SECTORS + 1;

/// How big a partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartSize {
    /// Exactly this many bytes (a non-zero multiple of 512).
    Bytes(u64),
    /// Up to the last usable sector (last partition only; needs a disk size).
    Fill,
}

/// What the caller wants of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSpec {
    /// GPT entry index, 1..=128 (`/dev/sda<number>`).
    pub number: u32,
    pub name: String,
    pub type_guid: Guid,
    pub part_guid: Guid,
    pub size: PartSize,
    pub attributes: Attributes,
    /// Byte offset to start at (1 MiB aligned); `None` places it at the
    /// next 1 MiB boundary after the previous partition.
    pub start: Option<u64>,
}

impl PartSpec {
    pub fn new(
        number: u32,
        name: &str,
        type_guid: Guid,
        part_guid: Guid,
        size: PartSize,
    ) -> PartSpec {
        PartSpec {
            number,
            name: name.to_string(),
            type_guid,
            part_guid,
            size,
            attributes: Attributes::NONE,
            start: None,
        }
    }

    pub fn with_attributes(mut self, a: Attributes) -> PartSpec {
        self.attributes = a;
        self
    }

    pub fn at(mut self, start: u64) -> PartSpec {
        self.start = Some(start);
        self
    }
}

/// A placed partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub entry: PartitionEntry,
}

impl Partition {
    pub fn offset(&self) -> u64 {
        self.entry.first_lba * SECTOR
    }

    pub fn size(&self) -> u64 {
        (self.entry.last_lba + 1 - self.entry.first_lba) * SECTOR
    }

    /// Byte range of the partition on the disk.
    pub fn byte_range(&self) -> Range<u64> {
        self.offset()..self.offset() + self.size()
    }
}

/// A validated disk layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLayout {
    pub disk_guid: Guid,
    pub disk_size: u64,
    /// In the order given to [`DiskLayout::plan`] (which is disk order).
    pub partitions: Vec<Partition>,
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x / a * a)
}

impl DiskLayout {
    /// Place `specs` in order on a disk of `disk_size` bytes, or of the
    /// smallest 1 MiB-aligned size that holds them when `None`.
    pub fn plan(disk_guid: Guid, specs: &[PartSpec], disk_size: Option<u64>) -> Result<DiskLayout> {
        if specs.is_empty() {
            return Err(GptError::Empty);
        }
        let last_usable = match disk_size {
            Some(s) if s % SECTOR != 0 => return Err(GptError::UnalignedDisk(s)),
            Some(s) => {
                let sectors = s / SECTOR;
                if sectors < FIRST_USABLE_LBA + BACKUP_SECTORS + 1 {
                    return Err(GptError::DiskTooSmall {
                        need: (FIRST_USABLE_LBA + BACKUP_SECTORS + 1) * SECTOR,
                        have: s,
                    });
                }
                Some(sectors - 1 - BACKUP_SECTORS)
            }
            None => None,
        };
        let mut used = [false; NUM_ENTRIES as usize + 1];
        let mut cursor = ALIGN;
        let mut partitions = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let bad = |why: String| GptError::BadPartition {
                number: spec.number,
                name: spec.name.clone(),
                why,
            };
            let idx = usize::try_from(spec.number)
                .ok()
                .filter(|&n| (1..=NUM_ENTRIES as usize).contains(&n));
            let Some(idx) = idx else {
                return Err(GptError::BadNumber(spec.number));
            };
            if std::mem::replace(&mut used[idx], true) {
                return Err(GptError::DuplicateNumber(spec.number));
            }
            if encode_name(&spec.name).is_none() {
                return Err(bad("name is longer than 36 UTF-16 code units".into()));
            }
            if spec.type_guid.is_nil() {
                return Err(bad("type GUID is nil (that marks an unused entry)".into()));
            }
            if spec.part_guid.is_nil() {
                return Err(bad("partition GUID is nil".into()));
            }
            let start = match spec.start {
                Some(s) if s % ALIGN != 0 => {
                    return Err(bad(format!("start {s} is not 1 MiB aligned")));
                }
                Some(s) if s < cursor => {
                    return Err(GptError::Overlap {
                        number: spec.number,
                        name: spec.name.clone(),
                        start: s,
                        prev_end: cursor,
                    });
                }
                Some(s) => s,
                None => align_up(cursor, ALIGN).ok_or_else(|| bad("offset overflows".into()))?,
            };
            let first_lba = start / SECTOR;
            let last_lba = match spec.size {
                PartSize::Bytes(0) => return Err(bad("size is zero".into())),
                PartSize::Bytes(n) if n % SECTOR != 0 => {
                    return Err(bad(format!("size {n} is not a multiple of 512")));
                }
                PartSize::Bytes(n) => first_lba
                    .checked_add(n / SECTOR - 1)
                    .ok_or_else(|| bad("size overflows".into()))?,
                PartSize::Fill if i + 1 != specs.len() => {
                    return Err(bad("only the last partition can fill the disk".into()));
                }
                PartSize::Fill => {
                    let last = last_usable.ok_or(GptError::FillWithoutDiskSize)?;
                    if last < first_lba {
                        return Err(GptError::DiskTooSmall {
                            need: (first_lba + 1 + BACKUP_SECTORS + 1) * SECTOR,
                            have: disk_size.unwrap_or(0),
                        });
                    }
                    last
                }
            };
            cursor = (last_lba + 1) * SECTOR;
            partitions.push(Partition {
                number: spec.number,
                entry: PartitionEntry {
                    type_guid: spec.type_guid,
                    part_guid: spec.part_guid,
                    first_lba,
                    last_lba,
                    attributes: spec.attributes,
                    name: spec.name.clone(),
                },
            });
        }
        let need = cursor
            .checked_add(BACKUP_SECTORS * SECTOR)
            .and_then(|n| align_up(n, ALIGN));
        let need = need.ok_or(GptError::DiskTooSmall {
            need: u64::MAX,
            have: disk_size.unwrap_or(0),
        })?;
        let disk_size = match disk_size {
            Some(have) if cursor + BACKUP_SECTORS * SECTOR > have => {
                return Err(GptError::DiskTooSmall { need, have });
            }
            Some(have) => have,
            None => need,
        };
        Ok(DiskLayout {
            disk_guid,
            disk_size,
            partitions,
        })
    }

    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }

    pub fn disk_sectors(&self) -> u64 {
        self.disk_size / SECTOR
    }

    /// The 128 x 128-byte entry array.
    pub fn entry_array(&self) -> Vec<u8> {
        let mut a = vec![0u8; NUM_ENTRIES as usize * ENTRY_SIZE];
        for p in &self.partitions {
            let at = (p.number as usize - 1) * ENTRY_SIZE;
            // Names were checked in plan().
            if let Some(b) = p.entry.encode() {
                a[at..at + ENTRY_SIZE].copy_from_slice(&b);
            }
        }
        a
    }

    /// Protective MBR, both headers and both entry arrays into `w`
    /// (which becomes at least `disk_size` bytes long).
    pub fn write_headers<W: Write + Seek>(&self, w: &mut W) -> Result<()> {
        let entries = self.entry_array();
        let s = Structures {
            disk_sectors: self.disk_sectors(),
            disk_guid: self.disk_guid,
            first_usable_lba: FIRST_USABLE_LBA,
            last_usable_lba: self.disk_sectors() - 1 - BACKUP_SECTORS,
            num_entries: NUM_ENTRIES,
            entry_size: ENTRY_SIZE as u32,
            entries: &entries,
        };
        w.seek(SeekFrom::Start(0))
            .map_err(io_err("seeking to the MBR"))?;
        w.write_all(&protective_mbr(self.disk_sectors()))
            .map_err(io_err("writing the protective MBR"))?;
        s.write(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::types;

    const MIB: u64 = 1 << 20;

    fn spec(n: u32, size: PartSize) -> PartSpec {
        PartSpec::new(
            n,
            &format!("P{n}"),
            types::LINUX_DATA,
            Guid::from_u128(0x1000 + u128::from(n)),
            size,
        )
    }

    #[test]
    fn placement() {
        let specs = [
            spec(2, PartSize::Bytes(2 * MIB)),
            spec(1, PartSize::Bytes(MIB + 512)),
            spec(9, PartSize::Fill),
        ];
        let l = DiskLayout::plan(Guid::from_u128(1), &specs, Some(64 * MIB)).expect("plan");
        let ranges: Vec<(u32, Range<u64>)> = l
            .partitions
            .iter()
            .map(|p| (p.number, p.byte_range()))
            .collect();
        let last = 64 * MIB - (BACKUP_SECTORS + 1) * 512 + 512;
        assert_eq!(
            ranges,
            vec![
                (2, MIB..3 * MIB),
                (1, 3 * MIB..4 * MIB + 512),
                (9, 5 * MIB..last)
            ]
        );
        let computed = DiskLayout::plan(Guid::from_u128(1), &specs[..2], None).expect("plan");
        assert_eq!(computed.disk_size, 5 * MIB);
    }

    #[test]
    fn rejects_table() {
        let g = Guid::from_u128(1);
        let cases: Vec<(Vec<PartSpec>, Option<u64>, &str)> = vec![
            (vec![], None, "no partitions"),
            (vec![spec(0, PartSize::Bytes(MIB))], None, "outside 1..=128"),
            (
                vec![spec(129, PartSize::Bytes(MIB))],
                None,
                "outside 1..=128",
            ),
            (
                vec![spec(1, PartSize::Bytes(MIB)), spec(1, PartSize::Bytes(MIB))],
                None,
                "used twice",
            ),
            (vec![spec(1, PartSize::Bytes(0))], None, "size is zero"),
            (
                vec![spec(1, PartSize::Bytes(1000))],
                None,
                "not a multiple of 512",
            ),
            (vec![spec(1, PartSize::Fill)], None, "explicit disk size"),
            (
                vec![spec(1, PartSize::Fill), spec(2, PartSize::Bytes(MIB))],
                Some(64 * MIB),
                "only the last",
            ),
            (
                vec![spec(1, PartSize::Bytes(64 * MIB))],
                Some(64 * MIB),
                "disk has",
            ),
            (
                vec![spec(1, PartSize::Bytes(MIB))],
                Some(64 * MIB + 1),
                "multiple of the 512",
            ),
            (
                vec![
                    spec(1, PartSize::Bytes(4 * MIB)),
                    spec(2, PartSize::Bytes(MIB)).at(2 * MIB),
                ],
                None,
                "before the end",
            ),
            (
                vec![spec(1, PartSize::Bytes(MIB)).at(MIB + 4096)],
                None,
                "not 1 MiB aligned",
            ),
            (
                vec![PartSpec {
                    name: "x".repeat(37),
                    ..spec(1, PartSize::Bytes(MIB))
                }],
                None,
                "36 UTF-16",
            ),
            (
                vec![PartSpec {
                    type_guid: Guid::NIL,
                    ..spec(1, PartSize::Bytes(MIB))
                }],
                None,
                "type GUID is nil",
            ),
            (
                vec![PartSpec {
                    part_guid: Guid::NIL,
                    ..spec(1, PartSize::Bytes(MIB))
                }],
                None,
                "partition GUID is nil",
            ),
        ];
        for (specs, size, needle) in cases {
            let err = DiskLayout::plan(g, &specs, size)
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
