//! Reading a GPT back, checking both CRCs, and the operations first boot
//! needs after the disk grew: moving the backup to the new end and growing
//! the last partition. Uses only std (usable from a static /init).

use std::io::{Read, Seek, SeekFrom, Write};

use crate::crc32::crc32;
use crate::entry::PartitionEntry;
use crate::error::{GptError, Result, io_err};
use crate::header::{GptHeader, SECTOR};
use crate::mbr::is_protective;
use crate::write::Structures;

/// A GPT as read from a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// The header used (the primary unless it was damaged).
    pub header: GptHeader,
    /// Used entries as (entry number counted from 1, entry), in entry order.
    pub partitions: Vec<(u32, PartitionEntry)>,
    /// The raw entry array (as covered by the header's CRC).
    pub raw_entries: Vec<u8>,
    /// Size of the disk (or image file) in bytes.
    pub disk_size: u64,
    /// True if the primary header was bad and the backup was used.
    pub from_backup: bool,
    /// True if the other header is valid too and sits where this one says.
    pub alternate_ok: bool,
    /// True if LBA 0 holds a protective MBR.
    pub protective_mbr: bool,
}

impl Gpt {
    pub fn partition(&self, number: u32) -> Option<&PartitionEntry> {
        self.partitions
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, e)| e)
    }

    /// The partition with this GPT name (slots are found by name).
    pub fn by_name(&self, name: &str) -> Option<(u32, &PartitionEntry)> {
        self.partitions
            .iter()
            .find(|(_, e)| e.name == name)
            .map(|(n, e)| (*n, e))
    }

    /// True if the backup header is not at the last sector (the disk grew).
    pub fn needs_relocation(&self) -> bool {
        self.header.alternate_lba != self.disk_size / SECTOR - 1 || !self.alternate_ok
    }
}

fn read_at<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    buf: &mut [u8],
    what: &'static str,
) -> Result<()> {
    r.seek(SeekFrom::Start(offset)).map_err(io_err(what))?;
    r.read_exact(buf).map_err(io_err(what))
}

/// Header at `lba` plus its checked entry array.
fn read_one<R: Read + Seek>(
    r: &mut R,
    lba: u64,
    which: &'static str,
    sectors: u64,
) -> Result<(GptHeader, Vec<u8>)> {
    if lba >= sectors {
        return Err(GptError::BadHeader {
            which,
            lba,
            why: format!("beyond the end of the disk ({sectors} sectors)"),
        });
    }
    let mut sector = [0u8; SECTOR as usize];
    read_at(r, lba * SECTOR, &mut sector, "reading a GPT header")?;
    let h = GptHeader::decode(&sector, lba, which)?;
    let bad = |why: String| GptError::BadEntries {
        lba: h.entry_lba,
        why,
    };
    let len = h.entry_array_len();
    let end_lba = h.entry_lba.checked_add(len.div_ceil(SECTOR));
    if end_lba.is_none_or(|e| e > sectors) {
        return Err(bad("entry array extends beyond the disk".into()));
    }
    let mut raw = vec![0u8; usize::try_from(len).map_err(|_| bad("entry array too large".into()))?];
    read_at(
        r,
        h.entry_lba * SECTOR,
        &mut raw,
        "reading the GPT entry array",
    )?;
    let got = crc32(&raw);
    if got != h.entries_crc32 {
        return Err(bad(format!(
            "CRC32 {:#010x} stored, {got:#010x} computed",
            h.entries_crc32
        )));
    }
    if h.last_usable_lba >= sectors {
        return Err(GptError::BadHeader {
            which,
            lba,
            why: format!("last usable LBA {} beyond the disk", h.last_usable_lba),
        });
    }
    Ok((h, raw))
}

fn parse_entries(h: &GptHeader, raw: &[u8]) -> Result<Vec<(u32, PartitionEntry)>> {
    let mut parts = Vec::new();
    for (i, chunk) in raw.chunks_exact(h.entry_size as usize).enumerate() {
        let Some(e) = PartitionEntry::decode(chunk) else {
            continue;
        };
        let number = u32::try_from(i + 1).map_err(|_| GptError::BadNumber(u32::MAX))?;
        if e.first_lba > e.last_lba
            || e.first_lba < h.first_usable_lba
            || e.last_lba > h.last_usable_lba
        {
            return Err(GptError::BadEntries {
                lba: h.entry_lba,
                why: format!(
                    "partition {number} spans LBA {}..={} outside the usable {}..={}",
                    e.first_lba, e.last_lba, h.first_usable_lba, h.last_usable_lba
                ),
            });
        }
        parts.push((number, e));
    }
    let mut sorted: Vec<&(u32, PartitionEntry)> = parts.iter().collect();
    sorted.sort_by_key(|(_, e)| e.first_lba);
    for w in sorted.windows(2) {
        if w[1].1.first_lba <= w[0].1.last_lba {
            return Err(GptError::BadEntries {
                lba: h.entry_lba,
                why: format!("partitions {} and {} overlap", w[0].0, w[1].0),
            });
        }
    }
    Ok(parts)
}

/// Read and check the GPT of `r` (a disk or image): the primary header, or
/// the backup at the last sector if the primary is damaged.
pub fn read_gpt<R: Read + Seek>(r: &mut R) -> Result<Gpt> {
    let disk_size = r
        .seek(SeekFrom::End(0))
        .map_err(io_err("finding the disk size"))?;
    let sectors = disk_size / SECTOR;
    let mut mbr = [0u8; SECTOR as usize];
    read_at(r, 0, &mut mbr, "reading the MBR")?;
    let (header, raw, from_backup) = match read_one(r, 1, "primary", sectors) {
        Ok((h, raw)) => (h, raw, false),
        Err(primary) => match read_one(r, sectors.saturating_sub(1), "backup", sectors) {
            Ok((h, raw)) => (h, raw, true),
            Err(backup) => {
                return Err(GptError::NoValidHeader {
                    primary: Box::new(primary),
                    backup: Box::new(backup),
                });
            }
        },
    };
    let which = if from_backup { "primary" } else { "backup" };
    let alternate_ok = match read_one(r, header.alternate_lba, which, sectors) {
        Ok((alt, alt_raw)) => {
            alt.alternate_lba == header.my_lba
                && alt.disk_guid == header.disk_guid
                && alt_raw == raw
        }
        Err(_) => false,
    };
    let partitions = parse_entries(&header, &raw)?;
    Ok(Gpt {
        header,
        partitions,
        raw_entries: raw,
        disk_size,
        from_backup,
        alternate_ok,
        protective_mbr: is_protective(&mbr),
    })
}

/// Rewrite both headers, both arrays and the MBR size for `gpt` on a disk
/// of `gpt.disk_size` bytes, with `last_usable` as the last usable LBA.
fn rewrite<F: Read + Write + Seek>(
    f: &mut F,
    gpt: &Gpt,
    raw: &[u8],
    last_usable: u64,
) -> Result<()> {
    let sectors = gpt.disk_size / SECTOR;
    let s = Structures {
        disk_sectors: sectors,
        disk_guid: gpt.header.disk_guid,
        first_usable_lba: gpt.header.first_usable_lba,
        last_usable_lba: last_usable,
        num_entries: gpt.header.num_entries,
        entry_size: gpt.header.entry_size,
        entries: raw,
    };
    // Keep the MBR's boot code (GRUB's boot.img lives there); only the
    // protective record's size changes.
    let mut mbr = [0u8; SECTOR as usize];
    read_at(f, 0, &mut mbr, "reading the MBR")?;
    if is_protective(&mbr) {
        let size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
        mbr[458..462].copy_from_slice(&size.to_le_bytes());
        f.seek(SeekFrom::Start(0))
            .map_err(io_err("seeking to the MBR"))?;
        f.write_all(&mbr).map_err(io_err("writing the MBR"))?;
    }
    let old_backup = if gpt.from_backup {
        gpt.header.my_lba
    } else {
        gpt.header.alternate_lba
    };
    s.write(f)?;
    if old_backup < s.backup_entry_lba() {
        f.seek(SeekFrom::Start(old_backup * SECTOR))
            .map_err(io_err("seeking to the old backup header"))?;
        f.write_all(&[0u8; SECTOR as usize])
            .map_err(io_err("erasing the old backup header"))?;
    }
    f.flush().map_err(io_err("flushing the GPT"))
}

fn last_usable_for(gpt: &Gpt) -> Result<u64> {
    let sectors = gpt.disk_size / SECTOR;
    let entry_sectors = gpt.header.entry_array_len().div_ceil(SECTOR);
    let last = sectors
        .checked_sub(2 + entry_sectors)
        .filter(|&l| l >= gpt.header.first_usable_lba);
    let last = last.ok_or(GptError::DiskTooSmall {
        need: (gpt.header.first_usable_lba + entry_sectors + 2) * SECTOR,
        have: gpt.disk_size,
    })?;
    if let Some((n, e)) = gpt.partitions.iter().find(|(_, e)| e.last_lba > last) {
        return Err(GptError::BadPartition {
            number: *n,
            name: e.name.clone(),
            why: format!(
                "ends at LBA {}, past the last usable LBA {last} of a {}-byte disk",
                e.last_lba, gpt.disk_size
            ),
        });
    }
    Ok(last)
}

/// After the disk grew: move the backup entries and header to the new end,
/// raise the last usable LBA, update the protective MBR, erase the old
/// backup header. Returns the GPT as now on disk.
pub fn relocate_backup<F: Read + Write + Seek>(f: &mut F) -> Result<Gpt> {
    let gpt = read_gpt(f)?;
    let last = last_usable_for(&gpt)?;
    let raw = gpt.raw_entries.clone();
    rewrite(f, &gpt, &raw, last)?;
    read_gpt(f)
}

/// Grow partition `number` to end at the last usable LBA (it must be the
/// partition nearest the end), relocating the backup as needed.
pub fn grow_partition_to_end<F: Read + Write + Seek>(f: &mut F, number: u32) -> Result<Gpt> {
    let gpt = read_gpt(f)?;
    let last = last_usable_for(&gpt)?;
    let Some(entry) = gpt.partition(number) else {
        return Err(GptError::BadPartition {
            number,
            name: String::new(),
            why: "no such partition".into(),
        });
    };
    if let Some((n, _)) = gpt
        .partitions
        .iter()
        .find(|(n, e)| *n != number && e.first_lba > entry.first_lba)
    {
        return Err(GptError::BadPartition {
            number,
            name: entry.name.clone(),
            why: format!("partition {n} lies after it, so it cannot grow to the end"),
        });
    }
    let mut grown = entry.clone();
    grown.last_lba = last;
    let encoded = grown.encode().ok_or_else(|| GptError::BadPartition {
        number,
        name: entry.name.clone(),
        why: "name does not fit".into(),
    })?;
    let mut raw = gpt.raw_entries.clone();
    let at = (number as usize - 1) * gpt.header.entry_size as usize;
    raw[at..at + encoded.len()].copy_from_slice(&encoded);
    rewrite(f, &gpt, &raw, last)?;
    read_gpt(f)
}
