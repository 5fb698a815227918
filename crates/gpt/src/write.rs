//! Writing the GPT structures: protective MBR, primary header and entry
//! array at the start, backup entry array and backup header at the end.

use std::io::{Seek, SeekFrom, Write};

use crate::crc32::crc32;
use crate::error::{Result, io_err};
use crate::guid::Guid;
use crate::header::{GptHeader, SECTOR};

/// The header pair and entry array of one GPT, ready to be written.
pub(crate) struct Structures<'a> {
    pub disk_sectors: u64,
    pub disk_guid: Guid,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    /// The raw entry array, `num_entries * entry_size` bytes.
    pub entries: &'a [u8],
}

impl Structures<'_> {
    pub fn entry_sectors(&self) -> u64 {
        (self.entries.len() as u64).div_ceil(SECTOR)
    }

    pub fn last_lba(&self) -> u64 {
        self.disk_sectors - 1
    }

    pub fn backup_entry_lba(&self) -> u64 {
        self.last_lba() - self.entry_sectors()
    }

    pub fn header(&self, primary: bool) -> GptHeader {
        let (my, alt, entry_lba) = if primary {
            (1, self.last_lba(), 2)
        } else {
            (self.last_lba(), 1, self.backup_entry_lba())
        };
        GptHeader {
            my_lba: my,
            alternate_lba: alt,
            first_usable_lba: self.first_usable_lba,
            last_usable_lba: self.last_usable_lba,
            disk_guid: self.disk_guid,
            entry_lba,
            num_entries: self.num_entries,
            entry_size: self.entry_size,
            entries_crc32: crc32(self.entries),
        }
    }

    /// Entries padded to whole sectors.
    fn padded_entries(&self) -> Vec<u8> {
        let mut e = self.entries.to_vec();
        e.resize((self.entry_sectors() * SECTOR) as usize, 0);
        e
    }

    /// LBA 1 .. first entry-array sector end: primary header and entries.
    pub fn primary_bytes(&self) -> Vec<u8> {
        let mut v = self.header(true).encode().to_vec();
        v.extend_from_slice(&self.padded_entries());
        v
    }

    /// Backup entries followed by the backup header (the disk's last sectors).
    pub fn backup_bytes(&self) -> Vec<u8> {
        let mut v = self.padded_entries();
        v.extend_from_slice(&self.header(false).encode());
        v
    }

    /// Write both copies (not the MBR) to `w`.
    pub fn write<W: Write + Seek>(&self, w: &mut W) -> Result<()> {
        w.seek(SeekFrom::Start(SECTOR))
            .map_err(io_err("seeking to the primary GPT header"))?;
        w.write_all(&self.primary_bytes())
            .map_err(io_err("writing the primary GPT"))?;
        w.seek(SeekFrom::Start(self.backup_entry_lba() * SECTOR))
            .map_err(io_err("seeking to the backup GPT"))?;
        w.write_all(&self.backup_bytes())
            .map_err(io_err("writing the backup GPT"))?;
        Ok(())
    }
}
