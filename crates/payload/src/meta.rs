//! The signed JSON metadata block: what the payload holds and the SHA-256 of
//! every section, so the one signature over header + metadata covers all.

use serde::{Deserialize, Serialize};

use crate::error::{PayloadError, Result};
use crate::header::ALIGN;

/// Longest salt dm-verity accepts (bytes).
pub const MAX_SALT: usize = 256;
/// `basalt.*` kernel arguments the update agent writes itself for the slot
/// it installs; the payload's `cmdline` must not carry them.
pub const AGENT_ARGS: &[&str] = &[
    "basalt.slot",
    "basalt.usrhash",
    "basalt.usr_hash_offset",
    "basalt.usr_data_blocks",
    "basalt.usr_salt",
];

/// One section's place (relative to the header's data offset), size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionInfo {
    pub offset: u64,
    pub size: u64,
    /// Lower-case hex SHA-256 of the section's bytes.
    pub sha256: String,
}

/// dm-verity parameters of the slot image (format 1, sha256, 4096/4096).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerityInfo {
    /// Lower-case hex root hash.
    pub root_hash: String,
    /// Byte offset of the verity superblock in the slot (= file-system size).
    pub hash_offset: u64,
    /// 4096-byte data blocks covered by the tree.
    pub data_blocks: u64,
    /// Lower-case hex salt (may be empty).
    pub salt: String,
}

/// The metadata block, serialised as compact JSON in this field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    /// The /usr slot image: file system followed by its hash area.
    pub slot: SectionInfo,
    pub verity: VerityInfo,
    pub kernel: SectionInfo,
    pub initrd: SectionInfo,
    /// Kernel arguments for the slot besides the agent's own `basalt.slot`,
    /// `basalt.usrhash`, ... (e.g. `console=ttyS0,115200`).
    pub cmdline: String,
}

fn meta_err<T>(s: String) -> Result<T> {
    Err(PayloadError::Metadata(s))
}

/// Name and version: 1..=64 of `[A-Za-z0-9._+~-]`, so they can go into file
/// names, the grub environment and status output unquoted.
pub fn check_label(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
    if !ok {
        return meta_err(format!(
            "{what} {s:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ + ~ -"
        ));
    }
    Ok(())
}

fn check_hex(what: &str, s: &str, len: Option<usize>) -> Result<Vec<u8>> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return meta_err(format!("{what} {s:?} must be lower-case hex"));
    }
    let v = hex::decode(s).map_err(|e| PayloadError::Metadata(format!("{what} {s:?}: {e}")))?;
    match len {
        Some(n) if v.len() != n => meta_err(format!("{what} must be {n} bytes, got {}", v.len())),
        _ => Ok(v),
    }
}

/// Kernel arguments: printable ASCII without `'` (they are single-quoted in
/// GRUB script) and without the agent's own `basalt.*` words.
pub fn check_cmdline(s: &str) -> Result<()> {
    if let Some(c) = s.chars().find(|&c| !(' '..='~').contains(&c) || c == '\'') {
        return meta_err(format!(
            "cmdline has character {c:?} (printable ASCII without ' only)"
        ));
    }
    for w in s.split_ascii_whitespace() {
        let key = w.split('=').next().unwrap_or(w);
        if AGENT_ARGS.contains(&key) {
            return meta_err(format!(
                "cmdline must not set {key}: the update agent writes it for the slot"
            ));
        }
    }
    Ok(())
}

impl Metadata {
    /// The sections in payload order with their names.
    pub fn sections(&self) -> [(&'static str, &SectionInfo); 3] {
        [
            ("slot", &self.slot),
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
        ]
    }

    /// End of the last section, relative to the data offset.
    pub fn data_len(&self) -> Option<u64> {
        self.initrd.offset.checked_add(self.initrd.size)
    }

    /// The root hash as bytes.
    pub fn root_hash(&self) -> Result<[u8; 32]> {
        let v = check_hex("verity root_hash", &self.verity.root_hash, Some(32))?;
        let mut a = [0u8; 32];
        a.copy_from_slice(&v);
        Ok(a)
    }

    /// Checks every field; the reader calls it after the signature check and
    /// the writer before signing.
    pub fn validate(&self) -> Result<()> {
        check_label("name", &self.name)?;
        check_label("version", &self.version)?;
        check_cmdline(&self.cmdline)?;
        let mut end = 0u64;
        for (name, s) in self.sections() {
            check_hex(&format!("{name} sha256"), &s.sha256, Some(32))?;
            if s.offset % ALIGN != 0 {
                return meta_err(format!("{name} offset {} is not 4096-aligned", s.offset));
            }
            if s.offset < end {
                return meta_err(format!("{name} section overlaps the one before it"));
            }
            end = s
                .offset
                .checked_add(s.size)
                .ok_or_else(|| PayloadError::Metadata(format!("{name} offset + size overflows")))?;
        }
        if self.kernel.size == 0 {
            return meta_err("kernel section is empty".into());
        }
        self.root_hash()?;
        let salt = check_hex("verity salt", &self.verity.salt, None)?;
        if salt.len() > MAX_SALT {
            return meta_err(format!(
                "verity salt is {} bytes, at most {MAX_SALT}",
                salt.len()
            ));
        }
        let v = &self.verity;
        if v.hash_offset == 0 || v.hash_offset % ALIGN != 0 {
            return meta_err(format!(
                "verity hash_offset {} must be a non-zero multiple of 4096",
                v.hash_offset
            ));
        }
        if self.slot.size % ALIGN != 0 || self.slot.size <= v.hash_offset {
            return meta_err(format!(
                "slot size {} must be a multiple of 4096 beyond hash_offset {}",
                self.slot.size, v.hash_offset
            ));
        }
        if v.data_blocks == 0
            || v.data_blocks
                .checked_mul(ALIGN)
                .is_none_or(|b| b > v.hash_offset)
        {
            return meta_err(format!(
                "verity data_blocks {} must be non-zero and end at or before hash_offset {}",
                v.data_blocks, v.hash_offset
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Metadata {
        let h = "ab".repeat(32);
        Metadata {
            name: "basalt".into(),
            version: "2.0".into(),
            slot: SectionInfo {
                offset: 0,
                size: 3 * 4096,
                sha256: h.clone(),
            },
            verity: VerityInfo {
                root_hash: h.clone(),
                hash_offset: 2 * 4096,
                data_blocks: 2,
                salt: "00ff".into(),
            },
            kernel: SectionInfo {
                offset: 3 * 4096,
                size: 10,
                sha256: h.clone(),
            },
            initrd: SectionInfo {
                offset: 4 * 4096,
                size: 0,
                sha256: h,
            },
            cmdline: "console=ttyS0,115200 quiet".into(),
        }
    }

    #[test]
    fn validation_table() {
        sample().validate().unwrap();
        type Edit = fn(&mut Metadata);
        let cases: &[(Edit, &str)] = &[
            (|m| m.name = String::new(), "name"),
            (|m| m.version = "1 0".into(), "version"),
            (|m| m.version = "x".repeat(65), "version"),
            (|m| m.cmdline = "a'b".into(), "character"),
            (
                |m| m.cmdline = "quiet basalt.usrhash=00".into(),
                "basalt.usrhash",
            ),
            (|m| m.cmdline = "basalt.slot=a".into(), "basalt.slot"),
            (|m| m.slot.sha256 = "AB".repeat(32), "lower-case"),
            (|m| m.kernel.sha256 = "ab".into(), "32 bytes"),
            (|m| m.kernel.offset = 4097, "4096-aligned"),
            (|m| m.kernel.offset = 0, "overlaps"),
            (
                |m| {
                    m.initrd.offset = u64::MAX - 4095;
                    m.initrd.size = 4096;
                },
                "overflows",
            ),
            (|m| m.kernel.size = 0, "kernel section is empty"),
            (|m| m.verity.root_hash = "zz".into(), "root_hash"),
            (|m| m.verity.salt = "00".repeat(257), "at most 256"),
            (|m| m.verity.hash_offset = 100, "hash_offset"),
            (|m| m.slot.size = 2 * 4096, "slot size"),
            (|m| m.verity.data_blocks = 3, "data_blocks"),
            (|m| m.verity.data_blocks = 0, "data_blocks"),
        ];
        for (i, (edit, want)) in cases.iter().enumerate() {
            let mut m = sample();
            edit(&mut m);
            let e = m.validate().expect_err(&format!("case {i}")).to_string();
            assert!(e.contains(want), "case {i}: {e}");
        }
    }

    #[test]
    fn json_is_strict() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Metadata>(v).is_err());
    }
}
