//! basalt-verity: dm-verity (format 1, sha256, 4096-byte blocks) hash trees,
//! bit-for-bit what `veritysetup format` writes, computed with several
//! threads.
//!
//! The hash area is the superblock (padded to one 4096-byte block) followed
//! by the tree. It can go into a separate file or into the same file as the
//! data at a hash offset (`veritysetup --hash-offset`).

// The workspace declares rust-version 1.85; `is_multiple_of` needs 1.87.
#![allow(clippy::manual_is_multiple_of)]

mod error;
mod hash;
mod plan;
mod superblock;

use std::fs::File;
use std::os::unix::fs::FileExt;

pub use error::{Result, VerityError};
pub use plan::{BLOCK_SIZE, DIGEST_SIZE, HASHES_PER_BLOCK, Level, VerityPlan};
pub use superblock::{HASH_TYPE_NORMAL, MAX_SALT, SUPERBLOCK_SIZE, Superblock};

use plan::BLOCK;

/// The only hash algorithm Basalt writes.
pub const ALGORITHM: &str = "sha256";

/// The hash area layout for `data_bytes` of data (same as [`VerityPlan::new`]);
/// `hash_size` is what to reserve after the file system.
pub fn plan(data_bytes: u64) -> Result<VerityPlan> {
    VerityPlan::new(data_bytes)
}

/// A computed hash area.
#[derive(Debug, Clone)]
pub struct Verity {
    pub plan: VerityPlan,
    pub root_hash: [u8; DIGEST_SIZE],
    /// Superblock block followed by the tree: `plan.hash_size` bytes.
    pub hash_area: Vec<u8>,
}

impl Verity {
    /// The root hash as lower-case hex (what `veritysetup` prints and takes).
    pub fn root_hex(&self) -> String {
        hex::encode(self.root_hash)
    }
}

fn superblock_for(plan: &VerityPlan, salt: &[u8], uuid: [u8; 16]) -> Superblock {
    Superblock {
        hash_type: HASH_TYPE_NORMAL,
        uuid,
        algorithm: ALGORITHM.to_string(),
        data_block_size: BLOCK_SIZE,
        hash_block_size: BLOCK_SIZE,
        data_blocks: plan.data_blocks,
        salt: salt.to_vec(),
    }
}

/// Hash `data_len` bytes of `data` starting at `data_offset` and build the
/// hash area in memory. `salt` is at most 256 bytes (Basalt uses 32).
pub fn compute(
    data: &File,
    data_offset: u64,
    data_len: u64,
    salt: &[u8],
    uuid: [u8; 16],
) -> Result<Verity> {
    if salt.len() > MAX_SALT {
        return Err(VerityError::SaltTooLong(salt.len(), MAX_SALT));
    }
    let plan = VerityPlan::new(data_len)?;
    let sb = superblock_for(&plan, salt, uuid).encode()?;
    let tree = hash::build_tree(data, data_offset, &plan, salt)?;
    let mut hash_area = Vec::with_capacity(BLOCK as usize + tree.bytes.len());
    hash_area.extend_from_slice(&sb);
    hash_area.resize(BLOCK as usize, 0);
    hash_area.extend_from_slice(&tree.bytes);
    Ok(Verity {
        plan,
        root_hash: tree.root,
        hash_area,
    })
}

fn check_hash_offset(hash_offset: u64) -> Result<()> {
    // veritysetup accepts multiples of 512, but then starts the tree at the
    // next hash-block boundary; Basalt keeps areas block-aligned instead.
    if hash_offset % BLOCK != 0 {
        return Err(VerityError::UnalignedHashOffset(hash_offset));
    }
    Ok(())
}

/// [`compute`], then write the hash area into `hash_file` at `hash_offset`
/// (a multiple of 4096). `hash_file` may be the data file itself, with the
/// area after the data (the in-slot layout).
pub fn format(
    data: &File,
    data_offset: u64,
    data_len: u64,
    salt: &[u8],
    uuid: [u8; 16],
    hash_file: &File,
    hash_offset: u64,
) -> Result<Verity> {
    check_hash_offset(hash_offset)?;
    let v = compute(data, data_offset, data_len, salt, uuid)?;
    hash_file
        .write_all_at(&v.hash_area, hash_offset)
        .map_err(|source| VerityError::Io {
            what: "writing hash area",
            offset: hash_offset,
            source,
        })?;
    Ok(v)
}

/// Check `data` against the hash area at `hash_offset` of `hash_file` and
/// the expected `root_hash`: the superblock must describe this data, every
/// stored hash block must match, and the root must be `root_hash`.
pub fn verify(
    data: &File,
    data_offset: u64,
    data_len: u64,
    hash_file: &File,
    hash_offset: u64,
    root_hash: &[u8; DIGEST_SIZE],
) -> Result<()> {
    check_hash_offset(hash_offset)?;
    let mut sb_bytes = [0u8; SUPERBLOCK_SIZE];
    hash::read_exact_at(
        hash_file,
        &mut sb_bytes,
        hash_offset,
        "reading verity superblock",
    )?;
    let sb = Superblock::decode(&sb_bytes, hash_offset)?;
    let bad = |why: String| VerityError::BadSuperblock {
        offset: hash_offset,
        why,
    };
    if sb.hash_type != HASH_TYPE_NORMAL || sb.algorithm != ALGORITHM {
        return Err(bad(format!(
            "hash type {} / {:?}, expected {HASH_TYPE_NORMAL} / {ALGORITHM}",
            sb.hash_type, sb.algorithm
        )));
    }
    if sb.data_block_size != BLOCK_SIZE || sb.hash_block_size != BLOCK_SIZE {
        return Err(bad(format!(
            "block sizes {}/{}, expected {BLOCK_SIZE}",
            sb.data_block_size, sb.hash_block_size
        )));
    }
    let plan = VerityPlan::new(data_len)?;
    if sb.data_blocks != plan.data_blocks {
        return Err(bad(format!(
            "superblock covers {} data blocks, the data has {}",
            sb.data_blocks, plan.data_blocks
        )));
    }
    let computed = compute(data, data_offset, data_len, &sb.salt, sb.uuid)?;
    let tree = &computed.hash_area[BLOCK as usize..];
    let mut stored = vec![0u8; tree.len()];
    hash::read_exact_at(
        hash_file,
        &mut stored,
        hash_offset + BLOCK,
        "reading hash tree",
    )?;
    // Report the mismatch nearest the data: level 0 first.
    for (level, l) in plan.levels.iter().enumerate() {
        for b in 0..l.blocks {
            let at = ((l.start + b) * BLOCK) as usize;
            if stored[at..at + BLOCK as usize] != tree[at..at + BLOCK as usize] {
                return Err(VerityError::HashMismatch { level, block: b });
            }
        }
    }
    if &computed.root_hash != root_hash {
        return Err(VerityError::RootMismatch {
            expected: hex::encode(root_hash),
            computed: computed.root_hex(),
        });
    }
    Ok(())
}
