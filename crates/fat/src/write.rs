//! Writing a planned volume into a file at an offset. Unused clusters are
//! never written, so a fresh image stays sparse.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use crate::bpb::{BACKUP_BOOT_SECTOR, FSINFO_SECTOR, boot_sector, fsinfo};
use crate::dirent::{ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID, DIRENT_SIZE, short_entry};
use crate::error::{FatError, Result, io_err};
use crate::geometry::{NUM_FATS, RESERVED_SECTORS, SECTOR};
use crate::names::lfn_bytes;
use crate::plan::{FatPlan, NodeKind};

/// FAT entry values (low 28 bits used).
const FAT_EOC: u32 = 0x0FFF_FFFF;
/// FAT[0] holds the media byte in its low 8 bits.
const FAT0: u32 = 0x0FFF_FF00 | crate::bpb::MEDIA_FIXED as u32;
const IO_CHUNK: usize = 1 << 20;

const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";

impl FatPlan {
    /// The FAT (one copy) as bytes.
    fn fat_bytes(&self) -> Vec<u8> {
        let mut fat = vec![0u8; self.geometry.fat_sectors as usize * SECTOR as usize];
        let mut set = |c: u32, v: u32| {
            let at = c as usize * 4;
            fat[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        set(0, FAT0);
        set(1, FAT_EOC);
        for n in &self.nodes {
            for i in 0..n.clusters {
                let c = n.first_cluster + i;
                set(c, if i + 1 == n.clusters { FAT_EOC } else { c + 1 });
            }
        }
        fat
    }

    /// Directory `node`'s entries, padded with zeros to its clusters.
    fn dir_bytes(&self, node: usize) -> Vec<u8> {
        let n = &self.nodes[node];
        let NodeKind::Dir { children } = &n.kind else {
            return Vec::new();
        };
        let mut out =
            Vec::with_capacity(n.clusters as usize * self.geometry.cluster_bytes() as usize);
        if node == 0 {
            out.extend_from_slice(&short_entry(
                &self.label,
                ATTR_VOLUME_ID,
                0,
                0,
                self.label_time,
            ));
        } else {
            let parent = self.parent_cluster(&n.path);
            out.extend_from_slice(&short_entry(
                DOT,
                ATTR_DIRECTORY,
                n.first_cluster,
                0,
                n.time,
            ));
            out.extend_from_slice(&short_entry(DOTDOT, ATTR_DIRECTORY, parent, 0, n.time));
        }
        for c in children {
            let child = &self.nodes[c.node];
            if let Some(units) = &c.long {
                for e in lfn_bytes(units, &c.short) {
                    out.extend_from_slice(&e);
                }
            }
            let (attr, size) = match child.kind {
                NodeKind::Dir { .. } => (ATTR_DIRECTORY, 0),
                // Sizes were checked against u32::MAX in planning.
                NodeKind::File(_) => (ATTR_ARCHIVE, child.bytes as u32),
            };
            out.extend_from_slice(&short_entry(
                &c.short,
                attr,
                child.first_cluster,
                size,
                child.time,
            ));
        }
        debug_assert_eq!(out.len() as u64, n.bytes);
        debug_assert_eq!(out.len() % DIRENT_SIZE, 0);
        out.resize(
            n.clusters as usize * self.geometry.cluster_bytes() as usize,
            0,
        );
        out
    }

    /// First cluster of the parent of `path`; 0 when the parent is the root
    /// (the FAT specification's rule for "..").
    fn parent_cluster(&self, path: &str) -> u32 {
        match basalt_tree::parent(path) {
            Some("/") | None => 0,
            Some(p) => self
                .nodes
                .iter()
                .find(|n| n.path == p)
                .map_or(0, |n| n.first_cluster),
        }
    }

    /// Write the volume into `f` starting at byte `offset` (for example a
    /// partition of a disk image). The region should be fresh (zero or a
    /// hole): unused clusters are not written.
    pub fn write(&self, f: &File, offset: u64) -> Result<()> {
        let g = &self.geometry;
        let size = u64::from(g.total_sectors) * SECTOR;
        let len = f
            .metadata()
            .map_err(io_err("reading the image size"))?
            .len();
        if len < offset + size {
            f.set_len(offset + size)
                .map_err(io_err("extending the image"))?;
        }
        let put = |at: u64, bytes: &[u8], what: &str| {
            f.write_all_at(bytes, offset + at)
                .map_err(io_err(format!("writing {what} at byte {}", offset + at)))
        };
        // Reserved area: boot sector and FSInfo, their backups at 6 and 7.
        let boot = boot_sector(g, self.hidden_sectors, self.volume_id, &self.label);
        let free = g.clusters - self.used_clusters;
        let next_free = if free == 0 {
            u32::MAX
        } else {
            2 + self.used_clusters
        };
        let info = fsinfo(free, next_free);
        let mut reserved = vec![0u8; RESERVED_SECTORS as usize * SECTOR as usize];
        for (sector, bytes) in [
            (0, &boot),
            (FSINFO_SECTOR, &info),
            (BACKUP_BOOT_SECTOR, &boot),
            (BACKUP_BOOT_SECTOR + 1, &info),
        ] {
            let at = usize::from(sector) * SECTOR as usize;
            reserved[at..at + SECTOR as usize].copy_from_slice(bytes);
        }
        put(0, &reserved, "the reserved sectors")?;
        let fat = self.fat_bytes();
        for copy in 0..NUM_FATS {
            put(g.fat_offset(copy), &fat, "a FAT")?;
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.clusters == 0 {
                continue;
            }
            let at = g.cluster_offset(n.first_cluster);
            match &n.kind {
                NodeKind::Dir { .. } => {
                    put(at, &self.dir_bytes(i), &format!("directory {}", n.path))?
                }
                NodeKind::File(content) => {
                    self.write_file(f, offset + at, &n.path, content, n.bytes, n.clusters)?
                }
            }
        }
        Ok(())
    }

    fn write_file(
        &self,
        f: &File,
        at: u64,
        path: &str,
        content: &basalt_tree::Content,
        want: u64,
        clusters: u32,
    ) -> Result<()> {
        let mut r = content
            .open()
            .map_err(io_err(format!("opening the content of {path}")))?;
        let mut buf = vec![0u8; IO_CHUNK];
        let mut done = 0u64;
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                let k = r
                    .read(&mut buf[filled..])
                    .map_err(io_err(format!("reading {path}")))?;
                if k == 0 {
                    break;
                }
                filled += k;
            }
            if filled == 0 {
                break;
            }
            if done + filled as u64 > want {
                return Err(FatError::ContentChanged {
                    path: path.to_string(),
                    want,
                    got: done + filled as u64,
                });
            }
            f.write_all_at(&buf[..filled], at + done)
                .map_err(io_err(format!("writing {path}")))?;
            done += filled as u64;
        }
        if done != want {
            return Err(FatError::ContentChanged {
                path: path.to_string(),
                want,
                got: done,
            });
        }
        // Zero the slack of the last cluster, so reused regions stay reproducible.
        let end = u64::from(clusters) * self.geometry.cluster_bytes();
        if end > done {
            let zeros = vec![0u8; usize::try_from(end - done).unwrap_or(0)];
            f.write_all_at(&zeros, at + done)
                .map_err(io_err(format!("writing {path}")))?;
        }
        Ok(())
    }
}
