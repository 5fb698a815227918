//! Planning: validate the tree, number the inodes, scan contents for holes,
//! size the filesystem and allocate every block. Nothing is written here.

use basalt_tree::{Content, Tree};

use crate::alloc::Allocator;
use crate::dir::DirEntry;
use crate::error::Error;
use crate::extent_tree::{self, Ext};
use crate::format::extent::EXT_INIT_MAX_LEN;
use crate::format::inode::S_IFREG;
use crate::format::{BLOCK_SIZE, BLOCKS_PER_GROUP, JOURNAL_INO};
use crate::geometry::Geometry;
use crate::options::{Mode, Options};
use crate::xattrs::Placement;

/// Sizing iterations before giving up (converges in two or three).
const MAX_SIZING_ROUNDS: usize = 32;

/// What an inode holds.
#[derive(Debug)]
pub(crate) enum Body<'t> {
    Dir {
        dir: usize,
    },
    File {
        content: &'t Content,
        path: &'t str,
        runs: Vec<(u64, u64)>,
    },
    FastSymlink(&'t [u8]),
    SlowSymlink(&'t [u8]),
    Device {
        major: u32,
        minor: u32,
    },
    Fifo,
    Journal {
        blocks: u64,
    },
}

#[derive(Debug)]
pub(crate) struct InodePlan<'t> {
    pub ino: u32,
    /// Full `i_mode` (type and permission bits).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub time: i64,
    pub links: u16,
    pub size: u64,
    pub body: Body<'t>,
    pub xattrs: Placement,
    // Filled by the layout:
    pub extents: Vec<Ext>,
    pub tree_blocks: Vec<u64>,
    pub xattr_block: Option<u64>,
}

impl InodePlan<'_> {
    pub fn uses_extents(&self) -> bool {
        !matches!(
            self.body,
            Body::FastSymlink(_) | Body::Device { .. } | Body::Fifo
        )
    }
    /// Blocks charged to the inode (data, tree, xattr block).
    pub fn block_count(&self) -> u64 {
        let data: u64 = self.extents.iter().map(|e| u64::from(e.len)).sum();
        data + self.tree_blocks.len() as u64 + u64::from(self.xattr_block.is_some())
    }
}

#[derive(Debug)]
pub(crate) struct DirPlan<'t> {
    /// Entries in block order (for an indexed directory: the children in
    /// hash order, without "." and "..").
    pub entries: Vec<DirEntry<'t>>,
    /// First entry of each (leaf) block.
    pub block_starts: Vec<usize>,
    /// The index root, in block 0, of a dir_index directory.
    pub htree: Option<DxRoot>,
}

#[derive(Debug)]
pub(crate) struct DxRoot {
    pub self_ino: u32,
    pub parent_ino: u32,
    pub leaf_hashes: Vec<u32>,
}

impl DirPlan<'_> {
    pub fn blocks(&self) -> u64 {
        self.block_starts.len() as u64 + u64::from(self.htree.is_some())
    }
}

/// A validated, fully laid out filesystem, ready to be written.
#[derive(Debug)]
pub struct Plan<'t> {
    pub(crate) opts: Options,
    pub(crate) geo: Geometry,
    pub(crate) inodes: Vec<InodePlan<'t>>,
    pub(crate) dirs: Vec<DirPlan<'t>>,
    pub(crate) last_ino: u32,
    pub(crate) block_bitmaps: Vec<u64>,
    pub(crate) inode_bitmaps: Vec<u64>,
    pub(crate) inode_tables: Vec<u64>,
    /// Allocated runs (excluding the fixed superblock/descriptor copies).
    pub(crate) runs: Vec<(u64, u64)>,
    pub(crate) size_bytes: u64,
}

impl Plan<'_> {
    /// Size of the image in bytes (for Writable mode, the requested size).
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    /// Blocks in the filesystem.
    pub fn block_count(&self) -> u64 {
        self.geo.blocks
    }
    pub fn inode_count(&self) -> u32 {
        self.geo.inodes_count()
    }
    /// Inodes in use (the highest used inode number).
    pub fn used_inodes(&self) -> u32 {
        self.last_ino
    }
    /// Blocks in use, metadata included.
    pub fn used_blocks(&self) -> u64 {
        let fixed: u64 = self
            .geo
            .fixed_ranges(u64::from(self.geo.groups))
            .iter()
            .map(|(s, e)| e.min(&self.geo.blocks) - s)
            .sum();
        fixed + self.runs.iter().map(|r| r.1).sum::<u64>()
    }
}

/// mke2fs' journal size for a filesystem of `blocks` 4 KiB blocks
/// (`ext2fs_default_journal_size`).
pub fn default_journal_blocks(blocks: u64) -> Option<u64> {
    Some(match blocks {
        0..2048 => return None,
        2048..32768 => 1024,
        32768..262144 => 4096,
        262144..524288 => 8192,
        524288..4194304 => 16384,
        4194304..8388608 => 32768,
        8388608..16777216 => 65536,
        16777216..33554432 => 131072,
        _ => 262144,
    })
}

/// `blocks`, grown if needed so that a last group carrying a backup
/// superblock has room beyond it (mke2fs drops smaller last groups).
fn roomy_last_group(blocks: u64, super_len: u64) -> u64 {
    let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
    let last_start = groups.saturating_sub(1) * BLOCKS_PER_GROUP;
    if groups > 1 && crate::geometry::group_has_super(groups - 1) {
        blocks.max(last_start + super_len + 50)
    } else {
        blocks
    }
}

fn check_options(o: &Options) -> Result<(), Error> {
    if o.block_size != 4096 {
        return Err(Error::BlockSize(o.block_size));
    }
    if o.label.len() > 16 {
        return Err(Error::LabelTooLong(o.label.clone()));
    }
    if o.timestamp < 0 || o.timestamp > i64::from(u32::MAX) + (255i64 << 32) {
        return Err(Error::TimeOutOfRange {
            what: "options.timestamp".into(),
            secs: o.timestamp,
        });
    }
    if o.reserved_percent > 50 {
        return Err(Error::Option(format!(
            "reserved_percent {} is above 50",
            o.reserved_percent
        )));
    }
    if o.inode_ratio == Some(0) {
        return Err(Error::Option("inode_ratio must be positive".into()));
    }
    if let Mode::ReadOnly { slack_percent } = o.mode
        && slack_percent > 1000
    {
        return Err(Error::Option(format!(
            "slack_percent {slack_percent} is above 1000"
        )));
    }
    Ok(())
}

/// Validate `tree` and lay out the filesystem described by `opts`.
pub fn plan<'t>(tree: &'t Tree, opts: &Options) -> Result<Plan<'t>, Error> {
    check_options(opts)?;
    tree.validate()?;
    let (mut inodes, dirs, last_ino) = crate::collect::collect(tree, opts)?;
    let used_inodes = u64::from(last_ino);
    let data_blocks: u64 = inodes.iter().map(estimate_blocks).sum();
    let ratio_inodes = |blocks: u64| opts.inode_ratio.map_or(0, |r| blocks * BLOCK_SIZE / r);

    match opts.mode {
        Mode::Writable { size_bytes } => {
            if size_bytes == 0 || size_bytes % BLOCK_SIZE != 0 {
                return Err(Error::BadSize { size_bytes });
            }
            let mut blocks = size_bytes / BLOCK_SIZE;
            let probe = Geometry::new(blocks, 1)?;
            let last = probe.groups - 1;
            if last > 0
                && crate::geometry::group_has_super(u64::from(last))
                && probe.group_len(last) < probe.super_len() + 50
            {
                // Like mke2fs: drop a last group too small for its backup.
                blocks = probe.group_start(last);
            }
            let journal = default_journal_blocks(blocks).ok_or(Error::TooSmall { blocks })?;
            let ratio = opts.inode_ratio.unwrap_or(16384);
            let want_inodes = used_inodes.max(blocks * BLOCK_SIZE / ratio);
            let geo = Geometry::new(blocks, want_inodes)?;
            add_journal(&mut inodes, journal, opts.timestamp);
            let lay = layout(&mut inodes, &dirs, &geo);
            if lay.end > blocks {
                return Err(Error::DoesNotFit {
                    size_bytes,
                    needed_bytes: lay.end * BLOCK_SIZE,
                });
            }
            Ok(finish(opts, geo, inodes, dirs, last_ino, lay, size_bytes))
        }
        Mode::ReadOnly { slack_percent } => {
            let slack = u64::from(slack_percent);
            let want_inodes = used_inodes + (used_inodes * slack).div_ceil(100);
            let itable = want_inodes.div_ceil(16);
            let mut blocks = (2 + 2 + itable + data_blocks).max(64);
            for _ in 0..MAX_SIZING_ROUNDS {
                let want = want_inodes.max(ratio_inodes(blocks));
                let min_groups = want.div_ceil(u64::from(crate::format::MAX_INODES_PER_GROUP));
                blocks = blocks.max((min_groups.saturating_sub(1)) * BLOCKS_PER_GROUP + 64);
                let geo = Geometry::new(blocks, want)?;
                let lay = layout(&mut inodes, &dirs, &geo);
                let need =
                    roomy_last_group(lay.end + (lay.end * slack).div_ceil(100), geo.super_len());
                let roomy = roomy_last_group(blocks, geo.super_len());
                if need <= blocks && roomy == blocks {
                    let size = blocks * BLOCK_SIZE;
                    return Ok(finish(opts, geo, inodes, dirs, last_ino, lay, size));
                }
                blocks = need.max(roomy).max(blocks + 1);
            }
            Err(Error::Option("filesystem size did not converge".into()))
        }
    }
}

fn finish<'t>(
    opts: &Options,
    geo: Geometry,
    inodes: Vec<InodePlan<'t>>,
    dirs: Vec<DirPlan<'t>>,
    last_ino: u32,
    lay: Layout,
    size_bytes: u64,
) -> Plan<'t> {
    Plan {
        opts: opts.clone(),
        geo,
        inodes,
        dirs,
        last_ino,
        block_bitmaps: lay.block_bitmaps,
        inode_bitmaps: lay.inode_bitmaps,
        inode_tables: lay.inode_tables,
        runs: lay.runs,
        size_bytes,
    }
}

fn add_journal(inodes: &mut Vec<InodePlan<'_>>, blocks: u64, time: i64) {
    let pos = inodes
        .iter()
        .position(|i| i.ino > JOURNAL_INO)
        .unwrap_or(inodes.len());
    inodes.insert(
        pos,
        InodePlan {
            ino: JOURNAL_INO,
            mode: S_IFREG | 0o600,
            uid: 0,
            gid: 0,
            time,
            links: 1,
            size: blocks * BLOCK_SIZE,
            body: Body::Journal { blocks },
            xattrs: Placement::default(),
            extents: Vec::new(),
            tree_blocks: Vec::new(),
            xattr_block: None,
        },
    );
}

/// A lower bound of the blocks an inode needs (no splits assumed).
fn estimate_blocks(i: &InodePlan<'_>) -> u64 {
    let data = match &i.body {
        Body::File { runs, .. } => runs.iter().map(|r| r.1).sum(),
        Body::SlowSymlink(_) => 1,
        Body::Journal { blocks } => *blocks,
        Body::Dir { .. } => i.size / BLOCK_SIZE,
        _ => 0,
    };
    data + u64::from(!i.xattrs.block.is_empty())
}

/// Where the layout put the group metadata, and how far it got.
pub(crate) struct Layout {
    pub end: u64,
    pub block_bitmaps: Vec<u64>,
    pub inode_bitmaps: Vec<u64>,
    pub inode_tables: Vec<u64>,
    pub runs: Vec<(u64, u64)>,
}

/// Map logical runs to physical extents (split at 32768 blocks and at
/// fixed metadata).
fn place_runs(a: &mut Allocator, runs: &[(u64, u64)], out: &mut Vec<Ext>) {
    for &(logical, count) in runs {
        let mut l = logical;
        for (start, len) in a.runs_of(count, u64::from(EXT_INIT_MAX_LEN)) {
            // Logical blocks were checked to fit u32; lengths are <= 32768.
            out.push(Ext {
                logical: u32::try_from(l).unwrap_or(u32::MAX),
                start,
                len: u16::try_from(len).unwrap_or(0),
            });
            l += len;
        }
    }
}

/// Allocate every block for `geo`. The allocator runs past the end of the
/// filesystem if it must; the caller compares `end` with the block count.
pub(crate) fn layout(inodes: &mut [InodePlan<'_>], dirs: &[DirPlan<'_>], geo: &Geometry) -> Layout {
    let mut a = Allocator::new(geo.fixed_ranges(u64::from(geo.groups) * 4 + 64));
    let groups = geo.groups as usize;
    let block_bitmaps: Vec<u64> = (0..groups).map(|_| a.contiguous(1)).collect();
    let inode_bitmaps: Vec<u64> = (0..groups).map(|_| a.contiguous(1)).collect();
    let inode_tables: Vec<u64> = (0..groups)
        .map(|_| a.contiguous(geo.inode_table_blocks()))
        .collect();
    for i in inodes.iter_mut() {
        i.extents.clear();
        i.tree_blocks.clear();
        i.xattr_block = None;
        match &i.body {
            Body::Dir { dir } => {
                let n = dirs[*dir].blocks();
                place_runs(&mut a, &[(0, n)], &mut i.extents);
            }
            Body::File { runs, .. } => place_runs(&mut a, runs, &mut i.extents),
            Body::SlowSymlink(_) => place_runs(&mut a, &[(0, 1)], &mut i.extents),
            Body::Journal { blocks } => place_runs(&mut a, &[(0, *blocks)], &mut i.extents),
            Body::FastSymlink(_) | Body::Device { .. } | Body::Fifo => {}
        }
        let t = extent_tree::tree_blocks(i.extents.len()) as u64;
        for (s, l) in a.runs_of(t, t.max(1)) {
            i.tree_blocks.extend(s..s + l);
        }
        if !i.xattrs.block.is_empty() {
            i.xattr_block = Some(a.run(1).0);
        }
    }
    Layout {
        end: a.end(),
        block_bitmaps,
        inode_bitmaps,
        inode_tables,
        runs: std::mem::take(&mut a.runs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roomy_last_group_table() {
        let g = BLOCKS_PER_GROUP;
        for (blocks, want) in [
            (100u64, 100u64),
            (g, g),
            (g + 1, g + 52),
            (g + 60, g + 60),
            (2 * g + 1, 2 * g + 1),
            (3 * g + 7, 3 * g + 52),
        ] {
            assert_eq!(roomy_last_group(blocks, 2), want, "{blocks}");
        }
    }

    #[test]
    fn journal_size_table() {
        let cases = [
            (2047u64, None),
            (2048, Some(1024)),
            (32768, Some(4096)),
            (262144, Some(8192)),
            (5 << 20, Some(32768)),
            (1 << 30, Some(262144)),
        ];
        for (blocks, want) in cases {
            assert_eq!(default_journal_blocks(blocks), want, "{blocks}");
        }
    }
}
