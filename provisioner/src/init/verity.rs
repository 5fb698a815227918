//! dm-verity for the selected /usr slot. The slot partition holds the ext4
//! data from byte 0 and, at `basalt.usr_hash_offset`, the verity superblock
//! (one 4096-byte block) followed by the hash tree. The root hash and the
//! size come from the kernel command line (the trusted boot configuration);
//! the salt comes from the superblock unless the command line gives one.
//! Table (Documentation/admin-guide/device-mapper/verity.rst):
//! `1 <data_dev> <hash_dev> 4096 4096 <data_blocks> <hash_start_block> sha256 <root> <salt>`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use basalt_verity::{SUPERBLOCK_SIZE, Superblock};

use super::cmdline::{BootParams, VERITY_BLOCK};
use super::devmapper::{CONTROL, Control, Target};
use super::disk::{BootDisk, Part};
use super::error::{InitError, Result};

/// 512-byte sectors per verity block.
const SECTORS_PER_BLOCK: u64 = VERITY_BLOCK / 512;
/// device-mapper name of the verified /usr.
pub const DM_NAME: &str = "usr";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Read and check the superblock at the hash offset; returns its salt.
pub fn read_superblock(part: &Part, p: &BootParams) -> Result<Vec<u8>> {
    let bad = |why: String| InitError::Verity {
        slot: p.slot.letter(),
        why,
    };
    if p.usr_hash_offset
        .checked_add(VERITY_BLOCK)
        .is_none_or(|end| end > part.size)
    {
        return Err(bad(format!(
            "basalt.usr_hash_offset={} is beyond the {}-byte partition {}",
            p.usr_hash_offset,
            part.size,
            part.dev.display()
        )));
    }
    let f = File::open(&part.dev).map_err(InitError::io("opening /usr slot", &part.dev))?;
    let mut b = [0u8; SUPERBLOCK_SIZE];
    f.read_exact_at(&mut b, p.usr_hash_offset)
        .map_err(InitError::io("reading the verity superblock of", &part.dev))?;
    let sb = Superblock::decode(&b, p.usr_hash_offset)
        .map_err(|e| bad(format!("{}: {e}", part.dev.display())))?;
    check_superblock(&sb, p).map_err(bad)?;
    Ok(sb.salt)
}

/// The superblock must describe what the command line says.
pub fn check_superblock(sb: &Superblock, p: &BootParams) -> std::result::Result<(), String> {
    if sb.algorithm != "sha256" {
        return Err(format!(
            "superblock algorithm {:?}, expected sha256",
            sb.algorithm
        ));
    }
    if u64::from(sb.data_block_size) != VERITY_BLOCK
        || u64::from(sb.hash_block_size) != VERITY_BLOCK
    {
        return Err(format!(
            "superblock block sizes {}/{}, expected 4096/4096",
            sb.data_block_size, sb.hash_block_size
        ));
    }
    if sb.data_blocks != p.usr_data_blocks {
        return Err(format!(
            "superblock covers {} data blocks but basalt.usr_data_blocks={} (slot and boot entry do not match)",
            sb.data_blocks, p.usr_data_blocks
        ));
    }
    if let Some(salt) = &p.usr_salt
        && *salt != sb.salt
    {
        return Err("basalt.usr_salt differs from the superblock's salt".into());
    }
    Ok(())
}

/// The verity target for partition `devno` (`major:minor`).
pub fn target(p: &BootParams, devno: &str, salt: &[u8]) -> Target {
    // The tree starts one block after the superblock.
    let hash_start = p.usr_hash_offset / VERITY_BLOCK + 1;
    let salt_hex = if salt.is_empty() {
        "-".to_string()
    } else {
        hex(salt)
    };
    Target {
        start_sector: 0,
        sectors: p.usr_data_blocks * SECTORS_PER_BLOCK,
        kind: "verity".into(),
        params: format!(
            "1 {devno} {devno} {VERITY_BLOCK} {VERITY_BLOCK} {} {hash_start} sha256 {} {salt_hex}",
            p.usr_data_blocks,
            hex(&p.usr_hash)
        ),
    }
}

/// Set up /dev/mapper "usr" for the slot; returns the device node path.
pub fn activate(disk: &BootDisk, p: &BootParams) -> Result<PathBuf> {
    let part = disk.usr(p.slot);
    let salt = read_superblock(part, p)?;
    let t = target(p, &part.devno, &salt);
    let ctl = Control::open(Path::new(CONTROL))?;
    let uuid = format!("BASALT-USR-{}", p.slot.letter().to_ascii_uppercase());
    let (major, minor) = ctl.create_device(DM_NAME, &uuid, &[t], true)?;
    device_node(major, minor)
}

/// devtmpfs creates /dev/dm-N for the new device; wait briefly for it,
/// else make our own node under /run.
fn device_node(major: u32, minor: u32) -> Result<PathBuf> {
    let dm = PathBuf::from(format!("/dev/dm-{minor}"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if dm.exists() {
            return Ok(dm);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let own = PathBuf::from("/run/basalt-usr");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &own,
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(major, minor),
    )
    .map_err(|e| InitError::io("creating device node", &own)(e.into()))?;
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::cmdline::{BootParams, Slot};

    fn params() -> BootParams {
        let h = "00".repeat(31) + "ff";
        BootParams::parse(&format!(
            "basalt.slot=b basalt.usrhash={h} basalt.usr_hash_offset=1069547520 basalt.usr_data_blocks=261120"
        ))
        .unwrap()
    }

    #[test]
    fn table_line() {
        let p = params();
        assert_eq!(p.slot, Slot::B);
        let t = target(&p, "259:4", &[0xab, 0xcd]);
        assert_eq!(t.sectors, 261120 * 8);
        assert_eq!(t.kind, "verity");
        assert_eq!(
            t.params,
            format!(
                "1 259:4 259:4 4096 4096 261120 261121 sha256 {}ff abcd",
                "00".repeat(31)
            )
        );
        assert!(target(&p, "8:3", &[]).params.ends_with(" -"));
    }

    fn sb(p: &BootParams) -> Superblock {
        Superblock {
            hash_type: 1,
            uuid: [0; 16],
            algorithm: "sha256".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: p.usr_data_blocks,
            salt: vec![1, 2, 3],
        }
    }

    #[test]
    fn superblock_checks_table() {
        let p = params();
        let cases: Vec<(Box<dyn Fn(&mut Superblock, &mut BootParams)>, Option<&str>)> = vec![
            (Box::new(|_, _| {}), None),
            (Box::new(|s, _| s.algorithm = "sha1".into()), Some("sha1")),
            (
                Box::new(|s, _| s.hash_block_size = 512),
                Some("block sizes"),
            ),
            (Box::new(|s, _| s.data_blocks += 1), Some("do not match")),
            (
                Box::new(|_, p| p.usr_salt = Some(vec![9])),
                Some("salt differs"),
            ),
            (Box::new(|_, p| p.usr_salt = Some(vec![1, 2, 3])), None),
        ];
        for (i, (change, want)) in cases.into_iter().enumerate() {
            let mut p2 = p.clone();
            let mut s = sb(&p);
            change(&mut s, &mut p2);
            match (check_superblock(&s, &p2), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "case {i}: {e}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn reads_superblock_from_a_generated_slot() {
        let p = params();
        let dir = std::env::temp_dir().join(format!("basalt-init-verity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = dir.join("slot");
        let size = p.usr_hash_offset + 2 * VERITY_BLOCK;
        let f = File::create(&dev).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(&sb(&p).encode().unwrap(), p.usr_hash_offset)
            .unwrap();
        let part = Part {
            number: 4,
            dev: dev.clone(),
            devno: "259:4".into(),
            size,
        };
        assert_eq!(read_superblock(&part, &p).unwrap(), vec![1, 2, 3]);
        let small = Part {
            size: p.usr_hash_offset,
            ..part.clone()
        };
        assert!(
            read_superblock(&small, &p)
                .unwrap_err()
                .to_string()
                .contains("beyond")
        );
        f.write_all_at(b"garbage!", p.usr_hash_offset).unwrap();
        assert!(
            read_superblock(&part, &p)
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
