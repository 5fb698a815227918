//! Computing the hash tree: level 0 in parallel over large reads, the
//! (128 times smaller) upper levels in memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Result, VerityError};
use crate::plan::{BLOCK, DIGEST_SIZE, VerityPlan};

/// Data blocks read and hashed per work item: 128 KiB. Measured on a
/// 1 GiB file in the page cache, reads of up to 128 KiB cost about a third
/// of the kernel time of 4 MiB reads (0.22 s against 0.6 s of sys time),
/// as the copy stays in the CPU cache for hashing.
const CHUNK_BLOCKS: u64 = 32;
/// Upper bound on hashing threads.
const MAX_THREADS: usize = 8;

/// Read exactly `buf.len()` bytes at `offset`, failing on a short file.
pub(crate) fn read_exact_at(
    f: &File,
    buf: &mut [u8],
    offset: u64,
    what: &'static str,
) -> Result<()> {
    f.read_exact_at(buf, offset)
        .map_err(|source| VerityError::Io {
            what,
            offset,
            source,
        })
}

fn digest(salted: &Sha256, block: &[u8]) -> [u8; DIGEST_SIZE] {
    salted.clone().chain_update(block).finalize().into()
}

/// The tree (all levels, laid out as on disk, top level first) and the root.
pub(crate) struct Tree {
    pub bytes: Vec<u8>,
    pub root: [u8; DIGEST_SIZE],
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
}

/// Hash `plan.data_blocks` blocks of `data` starting at `data_offset`.
pub(crate) fn build_tree(
    data: &File,
    data_offset: u64,
    plan: &VerityPlan,
    salt: &[u8],
) -> Result<Tree> {
    let salted = Sha256::new_with_prefix(salt);
    let tree_len = usize::try_from(plan.tree_blocks * BLOCK)
        .map_err(|_| VerityError::Overflow(plan.data_blocks))?;
    let mut bytes = vec![0u8; tree_len];
    let Some(level0) = plan.levels.first() else {
        // A single data block: its digest is the root hash.
        let mut block = vec![0u8; BLOCK as usize];
        read_exact_at(data, &mut block, data_offset, "reading data")?;
        return Ok(Tree {
            bytes,
            root: digest(&salted, &block),
        });
    };
    let start = to_usize(level0.start * BLOCK)?;
    let end = to_usize((level0.start + level0.blocks) * BLOCK)?;
    hash_data_level(
        data,
        data_offset,
        plan.data_blocks,
        &salted,
        &mut bytes[start..end],
    )?;
    for pair in 1..plan.levels.len() {
        let (lo, hi) = (plan.levels[pair - 1], plan.levels[pair]);
        // Upper levels sit before lower ones in the area.
        let (head, tail) = bytes.split_at_mut(to_usize(lo.start * BLOCK)?);
        let below = &tail[..to_usize(lo.blocks * BLOCK)?];
        let above =
            &mut head[to_usize(hi.start * BLOCK)?..to_usize((hi.start + hi.blocks) * BLOCK)?];
        for (i, block) in below.chunks_exact(BLOCK as usize).enumerate() {
            above[i * DIGEST_SIZE..(i + 1) * DIGEST_SIZE].copy_from_slice(&digest(&salted, block));
        }
    }
    let top = plan.levels[plan.levels.len() - 1];
    let top_bytes = &bytes[to_usize(top.start * BLOCK)?..to_usize((top.start + 1) * BLOCK)?];
    let root = digest(&salted, top_bytes);
    Ok(Tree { bytes, root })
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| VerityError::Overflow(v))
}

/// Fill `out` (level 0) with the digests of the data blocks, several
/// threads each reading and hashing 4 MiB chunks.
fn hash_data_level(
    data: &File,
    data_offset: u64,
    data_blocks: u64,
    salted: &Sha256,
    out: &mut [u8],
) -> Result<()> {
    let chunk_out = to_usize(CHUNK_BLOCKS)? * DIGEST_SIZE;
    // Only the digest slots, not the zero padding of the last hash block.
    let slots_len = to_usize(data_blocks)? * DIGEST_SIZE;
    let work = Mutex::new(out[..slots_len].chunks_mut(chunk_out).enumerate());
    let first_error: Mutex<Option<VerityError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                let mut buf = vec![0u8; (CHUNK_BLOCKS * BLOCK) as usize];
                loop {
                    let next = match work.lock() {
                        Ok(mut it) => it.next(),
                        Err(_) => None,
                    };
                    let Some((index, slots)) = next else { break };
                    let first = index as u64 * CHUNK_BLOCKS;
                    let count = (data_blocks - first).min(CHUNK_BLOCKS);
                    let len = (count * BLOCK) as usize;
                    let offset = data_offset + first * BLOCK;
                    if let Err(e) = read_exact_at(data, &mut buf[..len], offset, "reading data") {
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        break;
                    }
                    for (i, block) in buf[..len].chunks_exact(BLOCK as usize).enumerate() {
                        slots[i * DIGEST_SIZE..(i + 1) * DIGEST_SIZE]
                            .copy_from_slice(&digest(salted, block));
                    }
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}
