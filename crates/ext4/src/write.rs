//! Writing a planned filesystem: metadata is generated into buffers, file
//! contents are streamed, everything goes out in block order.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::fs::FileExt;

use basalt_tree::Content;

use crate::block_writer::{BUF_SIZE, BlockWriter};
use crate::crc::{crc32c_raw, fs_seed, inode_seed};
use crate::dir;
use crate::error::Error;
use crate::extent_tree;
use crate::format::features::InodeFlags;
use crate::format::htree::EXT2_INDEX_FL;
use crate::format::inode::{
    EXTRA_ISIZE, I_BLOCK_SIZE, I_CHECKSUM_HI_OFFSET, I_CHECKSUM_LO_OFFSET, IN_INODE_XATTR_OFFSET,
    Inode, Timestamp,
};
use crate::format::journal::{
    JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V3, JournalSuperblock,
};
use crate::format::{BLOCK_SIZE, INODE_SIZE, SUPERBLOCK_OFFSET};
use crate::geometry::group_has_super;
use crate::htree;
use crate::metadata::{self, GroupInputs, SuperInputs};
use crate::plan::{Body, InodePlan, Plan};
use crate::xattrs;

const BS: usize = BLOCK_SIZE as usize;

/// One thing to write, at a block number.
enum Piece<'t> {
    Bytes(Vec<u8>),
    /// `blocks` blocks of a file's content starting at logical block
    /// `logical`.
    Data {
        content: &'t Content,
        path: &'t str,
        logical: u64,
        blocks: u64,
    },
}

fn lo32(v: u64) -> u32 {
    u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0)
}
fn hi32(v: u64) -> u32 {
    u32::try_from(v >> 32).unwrap_or(0)
}
fn lo16(v: u32) -> u16 {
    u16::try_from(v & 0xFFFF).unwrap_or(0)
}
fn hi16(v: u32) -> u16 {
    u16::try_from(v >> 16).unwrap_or(0)
}

/// Encode one inode with its checksum. `i_block` is the extent root, the
/// symlink target or the device number.
fn encode_inode(
    ip: &InodePlan<'_>,
    i_block: [u8; I_BLOCK_SIZE],
    extra_flags: u32,
    seed: u32,
) -> [u8; INODE_SIZE as usize] {
    // Times were validated by the planner.
    let t = Timestamp::encode(ip.time).unwrap_or(Timestamp { base: 0, extra: 0 });
    let sectors = ip.block_count() * (BLOCK_SIZE / 512);
    let file_acl = ip.xattr_block.unwrap_or(0);
    let flags = extra_flags
        | if ip.uses_extents() {
            InodeFlags::EXTENTS.0
        } else {
            0
        };
    let inode = Inode {
        i_mode: ip.mode,
        i_uid: lo16(ip.uid),
        i_size_lo: lo32(ip.size),
        i_atime: t.base,
        i_ctime: t.base,
        i_mtime: t.base,
        i_gid: lo16(ip.gid),
        i_links_count: ip.links,
        i_blocks_lo: lo32(sectors),
        i_flags: flags,
        i_block,
        i_file_acl_lo: lo32(file_acl),
        i_size_high: hi32(ip.size),
        l_i_blocks_hi: u16::try_from(hi32(sectors) & 0xFFFF).unwrap_or(0),
        l_i_file_acl_high: u16::try_from(hi32(file_acl) & 0xFFFF).unwrap_or(0),
        l_i_uid_high: hi16(ip.uid),
        l_i_gid_high: hi16(ip.gid),
        i_extra_isize: EXTRA_ISIZE,
        i_ctime_extra: t.extra,
        i_mtime_extra: t.extra,
        i_atime_extra: t.extra,
        i_crtime: t.base,
        i_crtime_extra: t.extra,
        ..Default::default()
    };
    let mut b = [0u8; INODE_SIZE as usize];
    inode.encode(&mut b);
    xattrs::encode_inline(&ip.xattrs.inline, &mut b[IN_INODE_XATTR_OFFSET..]);
    let c = crc32c_raw(seed, &b);
    b[I_CHECKSUM_LO_OFFSET..I_CHECKSUM_LO_OFFSET + 2].copy_from_slice(&lo16(c).to_le_bytes());
    b[I_CHECKSUM_HI_OFFSET..I_CHECKSUM_HI_OFFSET + 2].copy_from_slice(&hi16(c).to_le_bytes());
    b
}

/// The new-style device encoding in `i_block[1]` (`i_block[0]` = 0).
fn device_block(major: u32, minor: u32) -> [u8; I_BLOCK_SIZE] {
    let mut b = [0u8; I_BLOCK_SIZE];
    let dev = (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12);
    b[4..8].copy_from_slice(&dev.to_le_bytes());
    b
}

impl<'t> Plan<'t> {
    /// Write the image to a file: it is truncated and sized first so that
    /// unwritten regions are holes.
    pub fn write_to(&self, f: &mut File) -> Result<(), Error> {
        f.set_len(0).map_err(Error::Write)?;
        f.set_len(self.size_bytes).map_err(Error::Write)?;
        self.write(&mut *f)?;
        Ok(())
    }

    /// Write the image at offset 0 of `w`, which must read as zeros where
    /// nothing is written (a new file, or one just truncated).
    pub fn write<W: Write + Seek>(&self, w: W) -> Result<W, Error> {
        let mut pieces = self.pieces()?;
        pieces.sort_by_key(|p| p.0);
        let mut out = BlockWriter::new(w);
        for (block, piece) in pieces {
            let at = block * BLOCK_SIZE;
            match piece {
                Piece::Bytes(b) => out.put(at, &b)?,
                Piece::Data {
                    content,
                    path,
                    logical,
                    blocks,
                } => stream(&mut out, at, content, path, logical, blocks)?,
            }
        }
        out.finish(self.size_bytes)
    }

    fn pieces(&self) -> Result<Vec<(u64, Piece<'t>)>, Error> {
        let geo = &self.geo;
        let seed = fs_seed(&self.opts.uuid);
        let mut pieces: Vec<(u64, Piece<'t>)> = Vec::new();
        let ipg = geo.inodes_per_group;

        // Inodes, extent trees, directory/symlink/xattr/journal blocks.
        let mut tables: Vec<Vec<u8>> = vec![Vec::new(); geo.groups as usize];
        let mut dirs_per_group = vec![0u32; geo.groups as usize];
        let mut journal = None;
        for ip in &self.inodes {
            let iseed = inode_seed(seed, ip.ino, 0);
            let g = ((ip.ino - 1) / ipg) as usize;
            let idx = ((ip.ino - 1) % ipg) as usize;
            let i_block = match &ip.body {
                Body::FastSymlink(t) => {
                    let mut b = [0u8; I_BLOCK_SIZE];
                    b[..t.len()].copy_from_slice(t);
                    b
                }
                Body::Device { major, minor } => device_block(*major, *minor),
                Body::Fifo => [0u8; I_BLOCK_SIZE],
                _ => {
                    let enc = extent_tree::encode(&ip.extents, &ip.tree_blocks, iseed);
                    for (blk, b) in enc.blocks {
                        pieces.push((blk, Piece::Bytes(b)));
                    }
                    enc.i_block
                }
            };
            match &ip.body {
                Body::Dir { dir: d } => {
                    dirs_per_group[g] += 1;
                    let dp = &self.dirs[*d];
                    let lead = usize::from(dp.htree.is_some());
                    let mut data = vec![0u8; (dp.block_starts.len() + lead) * BS];
                    if let Some(root) = &dp.htree {
                        htree::encode_root(
                            root.self_ino,
                            root.parent_ino,
                            &root.leaf_hashes,
                            iseed,
                            &mut data[..BS],
                        );
                    }
                    for (i, &start) in dp.block_starts.iter().enumerate() {
                        let end = dp
                            .block_starts
                            .get(i + 1)
                            .copied()
                            .unwrap_or(dp.entries.len());
                        let at = (i + lead) * BS;
                        dir::encode_block(&dp.entries[start..end], iseed, &mut data[at..at + BS]);
                    }
                    push_extent_data(&mut pieces, ip, &data);
                }
                Body::File { content, path, .. } => {
                    for e in &ip.extents {
                        pieces.push((
                            e.start,
                            Piece::Data {
                                content,
                                path,
                                logical: u64::from(e.logical),
                                blocks: u64::from(e.len),
                            },
                        ));
                    }
                }
                Body::SlowSymlink(t) => {
                    let mut data = vec![0u8; BS];
                    data[..t.len()].copy_from_slice(t);
                    push_extent_data(&mut pieces, ip, &data);
                }
                Body::Journal { blocks } => {
                    let incompat = JBD2_FEATURE_INCOMPAT_64BIT | JBD2_FEATURE_INCOMPAT_CSUM_V3;
                    let jsb = JournalSuperblock {
                        blocksize: BLOCK_SIZE as u32,
                        maxlen: lo32(*blocks),
                        incompat,
                        uuid: self.opts.uuid,
                    };
                    let mut data = vec![0u8; BS];
                    data[..1024].copy_from_slice(&jsb.encode(|b| crc32c_raw(!0, b)));
                    if let Some(e) = ip.extents.first() {
                        pieces.push((e.start, Piece::Bytes(data)));
                    }
                    journal = Some((i_block, ip.size));
                }
                Body::FastSymlink(_) | Body::Device { .. } | Body::Fifo => {}
            }
            if let Some(blk) = ip.xattr_block {
                pieces.push((
                    blk,
                    Piece::Bytes(xattrs::encode_block(&ip.xattrs.block, blk, seed)),
                ));
            }
            let t = &mut tables[g];
            let need = (idx + 1) * INODE_SIZE as usize;
            if t.len() < need {
                t.resize(need.div_ceil(BS) * BS, 0);
            }
            let extra_flags = match &ip.body {
                Body::Dir { dir: d } if self.dirs[*d].htree.is_some() => EXT2_INDEX_FL,
                _ => 0,
            };
            t[idx * INODE_SIZE as usize..need].copy_from_slice(&encode_inode(
                ip,
                i_block,
                extra_flags,
                iseed,
            ));
        }
        for (g, t) in tables.into_iter().enumerate() {
            if !t.is_empty() {
                pieces.push((self.inode_tables[g], Piece::Bytes(t)));
            }
        }

        // Bitmaps and descriptors.
        let fixed: Vec<(u64, u64)> = geo
            .fixed_ranges(u64::from(geo.groups))
            .iter()
            .map(|&(s, e)| (s, e - s))
            .collect();
        let mut used = fixed;
        used.extend_from_slice(&self.runs);
        let groups = metadata::build_groups(&GroupInputs {
            geo,
            block_bitmaps: &self.block_bitmaps,
            inode_bitmaps: &self.inode_bitmaps,
            inode_tables: &self.inode_tables,
            used: &used,
            last_ino: self.last_ino,
            dirs_per_group: &dirs_per_group,
            fs_seed: seed,
        });
        for (g, (bb, ib)) in groups
            .block_bitmaps
            .into_iter()
            .zip(groups.inode_bitmaps)
            .enumerate()
        {
            pieces.push((self.block_bitmaps[g], Piece::Bytes(bb)));
            pieces.push((self.inode_bitmaps[g], Piece::Bytes(ib)));
        }
        let reserved = geo.blocks * u64::from(self.opts.reserved_percent) / 100;
        let sb = metadata::superblock(&SuperInputs {
            geo,
            free_blocks: groups.free_blocks,
            free_inodes: groups.free_inodes,
            reserved_blocks: reserved,
            uuid: self.opts.uuid,
            label: &self.opts.label,
            hash_seed: self.opts.hash_seed,
            timestamp: self.opts.timestamp,
            journal,
            dir_index: self.opts.dir_index,
        });
        let gdt = metadata::gdt_bytes(&groups.descs, geo.gdt_blocks);
        for g in 0..geo.groups {
            if !group_has_super(u64::from(g)) {
                continue;
            }
            let start = geo.group_start(g);
            let sbb = metadata::superblock_bytes(&sb, g);
            let mut first = vec![0u8; BS];
            // Group 0's superblock sits at byte 1024 of block 0; backups
            // start their group.
            let off = if g == 0 {
                SUPERBLOCK_OFFSET as usize
            } else {
                0
            };
            first[off..off + sbb.len()].copy_from_slice(&sbb);
            pieces.push((start, Piece::Bytes(first)));
            pieces.push((start + 1, Piece::Bytes(gdt.clone())));
        }
        Ok(pieces)
    }
}

/// Queue `data` (whole blocks) at the inode's extents.
fn push_extent_data(pieces: &mut Vec<(u64, Piece<'_>)>, ip: &InodePlan<'_>, data: &[u8]) {
    for e in &ip.extents {
        let from = e.logical as usize * BS;
        let to = from + usize::from(e.len) * BS;
        pieces.push((e.start, Piece::Bytes(data[from..to].to_vec())));
    }
}

/// Copy `blocks` blocks of `content` from logical block `logical` to
/// output offset `at`, in buffer-sized pieces.
fn stream<W: Write + Seek>(
    out: &mut BlockWriter<W>,
    at: u64,
    content: &Content,
    path: &str,
    logical: u64,
    blocks: u64,
) -> Result<(), Error> {
    let size = content.len();
    let file = match content {
        Content::Stored { path: p, .. } => {
            Some(File::open(p).map_err(|source| Error::ReadContent {
                path: path.to_string(),
                source,
            })?)
        }
        Content::Inline(_) => None,
    };
    let changed = || Error::ContentChanged {
        path: path.to_string(),
        expected: size,
    };
    let total = blocks * BLOCK_SIZE;
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(BUF_SIZE as u64);
        let off = logical * BLOCK_SIZE + done;
        let avail = size.saturating_sub(off).min(n);
        let n_usize = usize::try_from(n).map_err(|_| changed())?;
        let avail_usize = usize::try_from(avail).map_err(|_| changed())?;
        out.fill_with(at + done, n_usize, |buf| {
            let (dst, tail) = buf.split_at_mut(avail_usize);
            tail.fill(0);
            match (content, &file) {
                (Content::Inline(bytes), _) => {
                    let s = usize::try_from(off).map_err(|_| changed())?;
                    dst.copy_from_slice(bytes.get(s..s + avail_usize).ok_or_else(changed)?);
                }
                (_, Some(f)) => {
                    f.read_exact_at(dst, off)
                        .map_err(|source| match source.kind() {
                            std::io::ErrorKind::UnexpectedEof => changed(),
                            _ => Error::ReadContent {
                                path: path.to_string(),
                                source,
                            },
                        })?;
                }
                _ => return Err(changed()),
            }
            Ok(())
        })?;
        done += n;
    }
    Ok(())
}
