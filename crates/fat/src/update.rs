//! Replacing the contents of an existing file in place (the update agent
//! writes a new kernel or initrd into the inactive slot's files).
//!
//! Order of writes, so an interruption never leaves the entry pointing at
//! unwritten clusters: new data into free clusters, the new chain into both
//! FATs, the directory entry, then the old chain is freed and FSInfo
//! updated. An interruption can at worst leak clusters (fsck reclaims them).

use std::io::Read;
use std::os::unix::fs::FileExt;

use crate::bpb::{FSINFO_LEAD_SIG, fsinfo};
use crate::dirent::fat_time;
use crate::error::{FatError, Result, io_err};
use crate::geometry::SECTOR;
use crate::read::{FAT_MASK, FatVolume};

const FAT_EOC: u32 = 0x0FFF_FFFF;
const IO_CHUNK: usize = 1 << 20;

impl FatVolume<'_> {
    fn is_free(&self, c: u32) -> bool {
        self.fat[c as usize] & FAT_MASK == 0
    }

    /// `n` free clusters: the first contiguous run that fits, otherwise the
    /// first `n` free ones in order.
    fn allocate(&self, n: u64) -> Result<Vec<u32>> {
        let last = 2 + self.clusters;
        let mut run_start = 2;
        let mut run_len = 0u64;
        for c in 2..last {
            if self.is_free(c) {
                if run_len == 0 {
                    run_start = c;
                }
                run_len += 1;
                if run_len == n {
                    return Ok((run_start..=c).collect());
                }
            } else {
                run_len = 0;
            }
        }
        let free: Vec<u32> = (2..last)
            .filter(|&c| self.is_free(c))
            .take(n as usize)
            .collect();
        if (free.len() as u64) < n {
            return Err(FatError::NoSpace {
                need: n,
                have: free.len() as u64,
                cluster_size: self.cluster_bytes() as u32,
            });
        }
        Ok(free)
    }

    fn set(&mut self, c: u32, v: u32) {
        let e = &mut self.fat[c as usize];
        *e = (*e & !FAT_MASK) | (v & FAT_MASK);
    }

    fn write_fats(&self) -> Result<()> {
        let bytes: Vec<u8> = self.fat.iter().flat_map(|v| v.to_le_bytes()).collect();
        for copy in 0..u64::from(self.bpb.num_fats) {
            let at = self.offset
                + (u64::from(self.bpb.reserved_sectors) + copy * u64::from(self.bpb.fat_sectors))
                    * SECTOR;
            self.file
                .write_all_at(&bytes, at)
                .map_err(io_err(format!("writing FAT {copy}")))?;
        }
        Ok(())
    }

    fn write_fsinfo(&self) -> Result<()> {
        let last = 2 + self.clusters;
        let free = self.free_clusters();
        let next = (2..last).find(|&c| self.is_free(c)).unwrap_or(u32::MAX);
        let info = fsinfo(free, next);
        let mut sectors = vec![self.bpb.fsinfo_sector];
        if self.bpb.backup_boot_sector != 0 {
            sectors.push(self.bpb.backup_boot_sector + self.bpb.fsinfo_sector);
        }
        for s in sectors {
            let at = self.offset + u64::from(s) * SECTOR;
            let mut old = [0u8; 4];
            self.file
                .read_exact_at(&mut old, at)
                .map_err(io_err("reading FSInfo"))?;
            // Only rewrite a sector that really is an FSInfo sector.
            if u32::from_le_bytes(old) == FSINFO_LEAD_SIG {
                self.file
                    .write_all_at(&info, at)
                    .map_err(io_err("writing FSInfo"))?;
            }
        }
        Ok(())
    }

    /// Free clusters according to the FAT.
    pub fn free_clusters(&self) -> u32 {
        (2..2 + self.clusters).filter(|&c| self.is_free(c)).count() as u32
    }

    /// The free-cluster count recorded in the FSInfo sector, if there is one.
    pub fn fsinfo_free_clusters(&self) -> Result<Option<u32>> {
        let mut b = [0u8; 512];
        let at = self.offset + u64::from(self.bpb.fsinfo_sector) * SECTOR;
        self.file
            .read_exact_at(&mut b, at)
            .map_err(io_err("reading FSInfo"))?;
        if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != FSINFO_LEAD_SIG {
            return Ok(None);
        }
        Ok(Some(u32::from_le_bytes([b[488], b[489], b[490], b[491]])))
    }

    /// Replace the contents of the existing regular file `path` with `len`
    /// bytes from `data`, stamping it with `mtime`. The volume's file must
    /// be open for writing.
    pub fn replace_file(
        &mut self,
        path: &str,
        data: &mut dyn Read,
        len: u64,
        mtime: i64,
    ) -> Result<()> {
        let (entry, pos) = self.locate(path)?;
        let Some(pos) = pos.filter(|_| !entry.is_dir) else {
            return Err(FatError::NotFound {
                path: format!("{path} (not a regular file)"),
            });
        };
        let size = u32::try_from(len).map_err(|_| FatError::FileTooLarge {
            path: path.to_string(),
            size: len,
        })?;
        let old_chain = if entry.first_cluster == 0 {
            Vec::new()
        } else {
            self.chain(entry.first_cluster)?
        };
        let cb = self.cluster_bytes();
        let new_chain = self.allocate(len.div_ceil(cb))?;

        // 1. Data into the new clusters (slack of the last one zeroed).
        let mut buf = vec![0u8; IO_CHUNK.max(cb as usize)];
        let mut done = 0u64;
        for &c in &new_chain {
            let mut filled = 0usize;
            let want = (len - done).min(cb) as usize;
            while filled < want {
                let k = data
                    .read(&mut buf[filled..want])
                    .map_err(io_err(format!("reading new content of {path}")))?;
                if k == 0 {
                    return Err(FatError::ContentChanged {
                        path: path.to_string(),
                        want: len,
                        got: done + filled as u64,
                    });
                }
                filled += k;
            }
            buf[want..cb as usize].fill(0);
            self.file
                .write_all_at(&buf[..cb as usize], self.cluster_offset(c))
                .map_err(io_err(format!("writing {path}")))?;
            done += want as u64;
        }
        let mut probe = [0u8; 1];
        if data
            .read(&mut probe)
            .map_err(io_err(format!("reading new content of {path}")))?
            != 0
        {
            return Err(FatError::ContentChanged {
                path: path.to_string(),
                want: len,
                got: len + 1,
            });
        }
        // 2. The new chain.
        for (i, &c) in new_chain.iter().enumerate() {
            let next = new_chain.get(i + 1).copied().unwrap_or(FAT_EOC);
            self.set(c, next);
        }
        self.write_fats()?;
        // 3. The directory entry: first cluster, size, times.
        let first = new_chain.first().copied().unwrap_or(0);
        let t = fat_time(mtime);
        let mut e = [0u8; 32];
        self.file
            .read_exact_at(&mut e, pos)
            .map_err(io_err(format!("reading the entry of {path}")))?;
        e[18..20].copy_from_slice(&t.date.to_le_bytes());
        e[20..22].copy_from_slice(&((first >> 16) as u16).to_le_bytes());
        e[22..24].copy_from_slice(&t.time.to_le_bytes());
        e[24..26].copy_from_slice(&t.date.to_le_bytes());
        e[26..28].copy_from_slice(&((first & 0xFFFF) as u16).to_le_bytes());
        e[28..32].copy_from_slice(&size.to_le_bytes());
        self.file
            .write_all_at(&e, pos)
            .map_err(io_err(format!("writing the entry of {path}")))?;
        // 4. Free the old chain, then FSInfo.
        for c in old_chain {
            self.set(c, 0);
        }
        self.write_fats()?;
        self.write_fsinfo()
    }
}
