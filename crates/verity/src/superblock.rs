//! The 512-byte dm-verity superblock (format 1), as read by `veritysetup`
//! and written at the start of the hash area.
//!
//! Layout (all little-endian), from the cryptsetup "DMVerity" on-disk
//! format description:
//! `0 signature[8] "verity\0\0"`, `8 version u32`, `12 hash_type u32`,
//! `16 uuid[16]`, `32 algorithm[32]`, `64 data_block_size u32`,
//! `68 hash_block_size u32`, `72 data_blocks u64`, `80 salt_size u16`,
//! `82 pad[6]`, `88 salt[256]`, `344 pad[168]`.

use crate::error::{Result, VerityError};

pub const SUPERBLOCK_SIZE: usize = 512;
pub const SIGNATURE: &[u8; 8] = b"verity\0\0";
/// Superblock version understood by veritysetup.
pub const SB_VERSION: u32 = 1;
/// Hash type 1: the "normal" (Chrome OS type 0 is the other) format.
pub const HASH_TYPE_NORMAL: u32 = 1;
pub const MAX_SALT: usize = 256;

const OFF_VERSION: usize = 8;
const OFF_HASH_TYPE: usize = 12;
const OFF_UUID: usize = 16;
const OFF_ALGORITHM: usize = 32;
const ALGORITHM_LEN: usize = 32;
const OFF_DATA_BLOCK_SIZE: usize = 64;
const OFF_HASH_BLOCK_SIZE: usize = 68;
const OFF_DATA_BLOCKS: usize = 72;
const OFF_SALT_SIZE: usize = 80;
const OFF_SALT: usize = 88;
const _: () = assert!(OFF_SALT + MAX_SALT + 168 == SUPERBLOCK_SIZE);

/// The decoded fields of a superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub hash_type: u32,
    pub uuid: [u8; 16],
    pub algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
}

impl Superblock {
    pub fn encode(&self) -> Result<[u8; SUPERBLOCK_SIZE]> {
        if self.salt.len() > MAX_SALT {
            return Err(VerityError::SaltTooLong(self.salt.len(), MAX_SALT));
        }
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[..8].copy_from_slice(SIGNATURE);
        b[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&SB_VERSION.to_le_bytes());
        b[OFF_HASH_TYPE..OFF_HASH_TYPE + 4].copy_from_slice(&self.hash_type.to_le_bytes());
        b[OFF_UUID..OFF_UUID + 16].copy_from_slice(&self.uuid);
        let alg = self.algorithm.as_bytes();
        // The name is NUL-terminated inside its 32-byte field.
        if alg.len() >= ALGORITHM_LEN {
            return Err(VerityError::BadSuperblock {
                offset: 0,
                why: format!(
                    "algorithm name {:?} longer than {} bytes",
                    self.algorithm,
                    ALGORITHM_LEN - 1
                ),
            });
        }
        b[OFF_ALGORITHM..OFF_ALGORITHM + alg.len()].copy_from_slice(alg);
        b[OFF_DATA_BLOCK_SIZE..OFF_DATA_BLOCK_SIZE + 4]
            .copy_from_slice(&self.data_block_size.to_le_bytes());
        b[OFF_HASH_BLOCK_SIZE..OFF_HASH_BLOCK_SIZE + 4]
            .copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[OFF_DATA_BLOCKS..OFF_DATA_BLOCKS + 8].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt_len = u16::try_from(self.salt.len())
            .map_err(|_| VerityError::SaltTooLong(self.salt.len(), MAX_SALT))?;
        b[OFF_SALT_SIZE..OFF_SALT_SIZE + 2].copy_from_slice(&salt_len.to_le_bytes());
        b[OFF_SALT..OFF_SALT + self.salt.len()].copy_from_slice(&self.salt);
        Ok(b)
    }

    /// Decode a superblock read from byte `offset` (used in messages).
    pub fn decode(b: &[u8; SUPERBLOCK_SIZE], offset: u64) -> Result<Superblock> {
        let bad = |why: String| VerityError::BadSuperblock { offset, why };
        if &b[..8] != SIGNATURE {
            return Err(bad("no \"verity\" signature".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let version = u32_at(OFF_VERSION);
        if version != SB_VERSION {
            return Err(bad(format!(
                "superblock version {version}, only {SB_VERSION} is supported"
            )));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[OFF_UUID..OFF_UUID + 16]);
        let alg_field = &b[OFF_ALGORITHM..OFF_ALGORITHM + ALGORITHM_LEN];
        let alg_len = alg_field
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(ALGORITHM_LEN);
        let algorithm = std::str::from_utf8(&alg_field[..alg_len])
            .map_err(|_| bad("algorithm name is not UTF-8".into()))?
            .to_string();
        let mut blocks = [0u8; 8];
        blocks.copy_from_slice(&b[OFF_DATA_BLOCKS..OFF_DATA_BLOCKS + 8]);
        let salt_size = usize::from(u16::from_le_bytes([b[OFF_SALT_SIZE], b[OFF_SALT_SIZE + 1]]));
        if salt_size > MAX_SALT {
            return Err(bad(format!("salt size {salt_size} exceeds {MAX_SALT}")));
        }
        Ok(Superblock {
            hash_type: u32_at(OFF_HASH_TYPE),
            uuid,
            algorithm,
            data_block_size: u32_at(OFF_DATA_BLOCK_SIZE),
            hash_block_size: u32_at(OFF_HASH_BLOCK_SIZE),
            data_blocks: u64::from_le_bytes(blocks),
            salt: b[OFF_SALT..OFF_SALT + salt_size].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            hash_type: HASH_TYPE_NORMAL,
            uuid: [0x11; 16],
            algorithm: "sha256".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 0x0102_0304_0506,
            salt: vec![0xab; 32],
        }
    }

    #[test]
    fn field_offsets_table() {
        let b = sample().encode().expect("encode");
        let cases: &[(usize, &[u8])] = &[
            (0, b"verity\0\0"),
            (8, &[1, 0, 0, 0]),
            (12, &[1, 0, 0, 0]),
            (16, &[0x11; 16]),
            (32, b"sha256\0"),
            (64, &[0, 0x10, 0, 0]),
            (68, &[0, 0x10, 0, 0]),
            (72, &[6, 5, 4, 3, 2, 1, 0, 0]),
            (80, &[32, 0]),
            (88, &[0xab; 32]),
            (120, &[0; 392]),
        ];
        for (off, want) in cases {
            assert_eq!(&b[*off..*off + want.len()], *want, "offset {off}");
        }
    }

    #[test]
    fn round_trip_and_rejects() {
        let sb = sample();
        let b = sb.encode().expect("encode");
        assert_eq!(Superblock::decode(&b, 0).expect("decode"), sb);
        let mut bad_sig = b;
        bad_sig[0] = b'V';
        assert!(Superblock::decode(&bad_sig, 0).is_err());
        let mut bad_ver = b;
        bad_ver[8] = 2;
        assert!(Superblock::decode(&bad_ver, 0).is_err());
        let long = Superblock {
            salt: vec![0; 257],
            ..sample()
        };
        assert!(matches!(
            long.encode(),
            Err(VerityError::SaltTooLong(257, 256))
        ));
    }
}
