//! A small FAT32 reader: enough to list directories and read files back
//! (tests, and the update agent looking at the ESP).

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::bpb::Bpb;
use crate::dirent::{
    ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_ID, DIRENT_SIZE, entry_cluster, entry_size,
};
use crate::error::{FatError, Result, io_err};
use crate::geometry::SECTOR;
use crate::names::{ShortName, display, lfn_checksum};

/// One entry of a directory as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatDirEntry {
    /// The long name, or the short name when there is no valid long name.
    pub name: String,
    /// The 8.3 name as "BASE.EXT".
    pub short_name: String,
    pub is_dir: bool,
    pub size: u32,
    pub first_cluster: u32,
}

/// An open FAT32 volume inside `file` at `offset`.
pub struct FatVolume<'a> {
    pub(crate) file: &'a File,
    pub(crate) offset: u64,
    pub(crate) bpb: Bpb,
    /// The first FAT, entries as stored (upper 4 bits reserved).
    pub(crate) fat: Vec<u32>,
    pub(crate) clusters: u32,
}

pub(crate) const FAT_MASK: u32 = 0x0FFF_FFFF;
const FAT_EOC_MIN: u32 = 0x0FFF_FFF8;

impl<'a> FatVolume<'a> {
    pub fn open(file: &'a File, offset: u64) -> Result<FatVolume<'a>> {
        let mut boot = [0u8; 512];
        file.read_exact_at(&mut boot, offset)
            .map_err(io_err("reading the boot sector"))?;
        let bpb = Bpb::decode(&boot)
            .ok_or_else(|| FatError::NotFat32("boot sector lacks a FAT32 BPB".into()))?;
        if u64::from(bpb.bytes_per_sector) != SECTOR
            || bpb.sectors_per_cluster == 0
            || bpb.num_fats == 0
        {
            return Err(FatError::NotFat32(format!("unsupported geometry {bpb:?}")));
        }
        let data_start =
            u64::from(bpb.reserved_sectors) + u64::from(bpb.num_fats) * u64::from(bpb.fat_sectors);
        let data_sectors = u64::from(bpb.total_sectors)
            .checked_sub(data_start)
            .ok_or_else(|| FatError::Corrupt("FATs extend past the volume".into()))?;
        let clusters = u32::try_from(data_sectors / u64::from(bpb.sectors_per_cluster))
            .map_err(|_| FatError::Corrupt("too many clusters".into()))?;
        let fat_len = usize::try_from(u64::from(bpb.fat_sectors) * SECTOR)
            .map_err(|_| FatError::Corrupt("FAT too large".into()))?;
        let mut raw = vec![0u8; fat_len];
        file.read_exact_at(&mut raw, offset + u64::from(bpb.reserved_sectors) * SECTOR)
            .map_err(io_err("reading the FAT"))?;
        let fat = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & FAT_MASK)
            .collect();
        Ok(FatVolume {
            file,
            offset,
            bpb,
            fat,
            clusters,
        })
    }

    pub(crate) fn cluster_bytes(&self) -> u64 {
        u64::from(self.bpb.sectors_per_cluster) * SECTOR
    }

    pub(crate) fn cluster_offset(&self, c: u32) -> u64 {
        let data_start = u64::from(self.bpb.reserved_sectors)
            + u64::from(self.bpb.num_fats) * u64::from(self.bpb.fat_sectors);
        self.offset
            + (data_start + u64::from(c - 2) * u64::from(self.bpb.sectors_per_cluster)) * SECTOR
    }

    /// The cluster chain starting at `first`.
    pub(crate) fn chain(&self, first: u32) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        while c != 0 && c < FAT_EOC_MIN {
            if c < 2 || c - 2 >= self.clusters {
                return Err(FatError::Corrupt(format!(
                    "cluster {c} out of range in chain from {first}"
                )));
            }
            if out.len() > self.clusters as usize {
                return Err(FatError::Corrupt(format!(
                    "cluster chain from {first} loops"
                )));
            }
            out.push(c);
            c = *self
                .fat
                .get(c as usize)
                .ok_or_else(|| FatError::Corrupt(format!("cluster {c} beyond the FAT")))?;
        }
        Ok(out)
    }

    fn read_chain(&self, first: u32, limit: Option<u64>) -> Result<Vec<u8>> {
        let cb = self.cluster_bytes();
        let mut out = Vec::new();
        for c in self.chain(first)? {
            let start = out.len();
            out.resize(start + cb as usize, 0);
            self.file
                .read_exact_at(&mut out[start..], self.cluster_offset(c))
                .map_err(io_err(format!("reading cluster {c}")))?;
        }
        if let Some(l) = limit {
            if (out.len() as u64) < l {
                return Err(FatError::Corrupt(format!(
                    "chain from {first} holds {} bytes, size says {l}",
                    out.len()
                )));
            }
            out.truncate(l as usize);
        }
        Ok(out)
    }

    /// Entries with the index of their short entry in the directory.
    fn parse_dir(bytes: &[u8]) -> Vec<(FatDirEntry, usize)> {
        let mut out = Vec::new();
        let mut lfn: Vec<(u8, u8, Vec<u16>)> = Vec::new();
        for (index, e) in bytes.chunks_exact(DIRENT_SIZE).enumerate() {
            match e[0] {
                0 => break,
                0xE5 => {
                    lfn.clear();
                    continue;
                }
                _ => {}
            }
            if e[11] == ATTR_LONG_NAME {
                let units: Vec<u16> = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                    .iter()
                    .map(|&o| u16::from_le_bytes([e[o], e[o + 1]]))
                    .collect();
                if e[0] & 0x40 != 0 {
                    lfn.clear();
                }
                lfn.push((e[0] & 0x3F, e[13], units));
                continue;
            }
            if e[11] & ATTR_VOLUME_ID != 0 || e[0] == b'.' {
                lfn.clear();
                continue;
            }
            let mut short: ShortName = [0; 11];
            short.copy_from_slice(&e[..11]);
            if short[0] == 0x05 {
                short[0] = 0xE5;
            }
            let sum = lfn_checksum(&short);
            // Long-name parts come last part first: ordinals n, n-1, ..., 1.
            let valid = !lfn.is_empty()
                && lfn.iter().all(|(_, s, _)| *s == sum)
                && lfn
                    .iter()
                    .rev()
                    .enumerate()
                    .all(|(i, (ord, _, _))| usize::from(*ord) == i + 1);
            let short_name = display(&short);
            let name = if valid {
                let units: Vec<u16> = lfn
                    .iter()
                    .rev()
                    .flat_map(|(_, _, u)| u.iter().copied())
                    .take_while(|&u| u != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                short_name.clone()
            };
            lfn.clear();
            out.push((
                FatDirEntry {
                    name,
                    short_name,
                    is_dir: e[11] & ATTR_DIRECTORY != 0,
                    size: entry_size(e),
                    first_cluster: entry_cluster(e),
                },
                index,
            ));
        }
        out
    }

    fn dir_at(&self, cluster: u32) -> Result<Vec<FatDirEntry>> {
        Ok(Self::parse_dir(&self.read_chain(cluster, None)?)
            .into_iter()
            .map(|(e, _)| e)
            .collect())
    }

    /// Find `path` ("/EFI/BOOT/BOOTX64.EFI"), matching names without
    /// regard to case, as FAT drivers do.
    pub fn lookup(&self, path: &str) -> Result<FatDirEntry> {
        Ok(self.locate(path)?.0)
    }

    /// [`lookup`](Self::lookup), plus the byte offset (in the file) of the
    /// entry's short directory entry (`None` for the root).
    pub(crate) fn locate(&self, path: &str) -> Result<(FatDirEntry, Option<u64>)> {
        let mut pos = None;
        let mut cur = FatDirEntry {
            name: "/".into(),
            short_name: String::new(),
            is_dir: true,
            size: 0,
            first_cluster: self.bpb.root_cluster,
        };
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            if !cur.is_dir {
                return Err(FatError::NotFound {
                    path: path.to_string(),
                });
            }
            let want = comp.to_lowercase();
            let chain = self.chain(cur.first_cluster)?;
            let bytes = self.read_chain(cur.first_cluster, None)?;
            let (found, index) = Self::parse_dir(&bytes)
                .into_iter()
                .find(|(e, _)| e.name.to_lowercase() == want || e.short_name.to_lowercase() == want)
                .ok_or_else(|| FatError::NotFound {
                    path: path.to_string(),
                })?;
            let at = (index * DIRENT_SIZE) as u64;
            let cb = self.cluster_bytes();
            let cluster = chain[(at / cb) as usize];
            pos = Some(self.cluster_offset(cluster) + at % cb);
            cur = found;
        }
        Ok((cur, pos))
    }

    /// Entries of directory `path` in on-disk order.
    pub fn read_dir(&self, path: &str) -> Result<Vec<FatDirEntry>> {
        let d = self.lookup(path)?;
        if !d.is_dir {
            return Err(FatError::NotFound {
                path: format!("{path} (not a directory)"),
            });
        }
        self.dir_at(d.first_cluster)
    }

    /// Contents of file `path`.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let e = self.lookup(path)?;
        if e.is_dir {
            return Err(FatError::NotFound {
                path: format!("{path} (a directory)"),
            });
        }
        if e.size == 0 {
            return Ok(Vec::new());
        }
        self.read_chain(e.first_cluster, Some(u64::from(e.size)))
    }
}
