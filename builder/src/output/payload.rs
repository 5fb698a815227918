//! The update payload written beside the image (`<name>-<version>.update`):
//! the /usr slot image as it lies in the disk image, the slot's kernel and
//! initrd, signed (format: crates/payload/README.md).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use basalt_payload::{Metadata, PayloadInfo, SigningKey, Source, VerityInfo};

use crate::atomic::TempFile;

/// File name of the payload for `name` and `version`.
pub fn payload_file_name(name: &str, version: &str) -> String {
    format!("{name}-{version}.update")
}

/// The payload's verity fields from the slot's computed hash area.
pub fn verity_info(v: &basalt_verity::Verity, hash_offset: u64, salt: &[u8]) -> VerityInfo {
    VerityInfo {
        root_hash: v.root_hex(),
        hash_offset,
        data_blocks: v.plan.data_blocks,
        salt: hex::encode(salt),
    }
}

/// Loads the `--signing-key` file (PKCS#8 PEM from `basalt keygen`).
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    basalt_payload::keys::load_signing_key(path)
        .with_context(|| format!("loading signing key {}", path.display()))
}

/// Writes the payload to `dest` (temp file + fsync + rename). `slot` is
/// `(file, offset, len)`: the slot partition's bytes inside the disk image
/// (file system and hash area, `len` = hash_offset + hash area size).
pub fn write_payload(
    dest: &Path,
    info: &PayloadInfo,
    slot: (&File, u64, u64),
    kernel: &[u8],
    initrd: &[u8],
    key: &SigningKey,
) -> Result<Metadata> {
    let (tmp, file) = TempFile::create(dest)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let meta = basalt_payload::write_payload(
        &mut out,
        info,
        Source::FileRange {
            file: slot.0,
            offset: slot.1,
            len: slot.2,
        },
        Source::Bytes(kernel),
        Source::Bytes(initrd),
        key,
    )
    .with_context(|| format!("writing update payload {}", dest.display()))?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("flushing {}", dest.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", dest.display()))?;
    tmp.commit()?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("basalt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_a_verifiable_payload_atomically() {
        let root = scratch("payload-test");
        let dir = root.join("out");
        std::fs::create_dir(&dir).unwrap();
        let disk = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(root.join("disk"))
            .unwrap();
        let slot: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
        std::os::unix::fs::FileExt::write_all_at(&disk, &slot, 1 << 20).unwrap();
        let key = SigningKey::from_bytes(&[5; 32]);
        let info = PayloadInfo {
            name: "basalt".into(),
            version: "1.2".into(),
            verity: VerityInfo {
                root_hash: "00".repeat(32),
                hash_offset: 8192,
                data_blocks: 2,
                salt: String::new(),
            },
            cmdline: "console=ttyS0".into(),
        };
        let dest = dir.join(payload_file_name("basalt", "1.2"));
        write_payload(
            &dest,
            &info,
            (&disk, 1 << 20, slot.len() as u64),
            b"kernel",
            b"",
            &key,
        )
        .unwrap();
        let p = basalt_payload::Payload::open_path(&dest, &key.verifying_key()).unwrap();
        assert_eq!(p.read_section(basalt_payload::Section::Slot).unwrap(), slot);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );

        let bad = PayloadInfo {
            version: "1 2".into(),
            ..info
        };
        let dest2 = dir.join("bad.update");
        assert!(write_payload(&dest2, &bad, (&disk, 1 << 20, 12288), b"k", b"", &key).is_err());
        assert!(!dest2.exists());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "temp file removed"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
