//! Finding a filesystem by its label, the way cloud datasources are named:
//! an OpenStack config drive is labelled `config-2`, a NoCloud seed `cidata`
//! (either ISO 9660 or FAT). Every block device in sysfs (whole disks and
//! partitions) is probed by reading its superblock; labels compare without
//! regard to case, as blkid-based tools do.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::disk::Roots;

/// ISO 9660 (ECMA-119 8.1): volume descriptors start at sector 16.
const ISO_SECTOR: u64 = 2048;
const ISO_FIRST_DESCRIPTOR: u64 = 16;
/// Descriptors scanned before giving up on a terminator.
const ISO_MAX_DESCRIPTORS: u64 = 16;
const ISO_ID: &[u8; 5] = b"CD001";
const ISO_TYPE_PRIMARY: u8 = 1;
const ISO_TYPE_SUPPLEMENTARY: u8 = 2;
const ISO_TYPE_TERMINATOR: u8 = 255;
/// Volume identifier: bytes 40..72 of a primary or supplementary descriptor.
const ISO_VOLUME_ID: std::ops::Range<usize> = 40..72;
/// Escape sequences (bytes 88..91) that mark a Joliet descriptor (UCS-2 levels 1-3).
const JOLIET_ESCAPES: [&[u8; 3]; 3] = [b"%/@", b"%/C", b"%/E"];

/// FAT boot sector fields (Microsoft FAT specification, "BPB"): the
/// extended boot signature, volume label and type string sit at different
/// offsets for FAT12/16 and FAT32.
const FAT16_LABEL: std::ops::Range<usize> = 43..54;
const FAT16_TYPE: std::ops::Range<usize> = 54..62;
const FAT32_LABEL: std::ops::Range<usize> = 71..82;
const FAT32_TYPE: std::ops::Range<usize> = 82..90;

/// A filesystem type /init can mount for a datasource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    Iso9660,
    Vfat,
}

impl FsType {
    /// The name mount(2) takes.
    pub fn mount_name(self) -> &'static str {
        match self {
            FsType::Iso9660 => "iso9660",
            FsType::Vfat => "vfat",
        }
    }
}

/// What a superblock says: type and every label it carries (an ISO with
/// Joliet has two volume identifiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub fs: FsType,
    pub labels: Vec<String>,
}

fn trim_label(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn ucs2_label(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn probe_iso<R: Read + Seek>(dev: &mut R) -> Option<Probed> {
    let mut labels = Vec::new();
    let mut sector = [0u8; 2048];
    for i in 0..ISO_MAX_DESCRIPTORS {
        dev.seek(SeekFrom::Start((ISO_FIRST_DESCRIPTOR + i) * ISO_SECTOR))
            .ok()?;
        dev.read_exact(&mut sector).ok()?;
        if &sector[1..6] != ISO_ID {
            break;
        }
        match sector[0] {
            ISO_TYPE_PRIMARY => labels.push(trim_label(&sector[ISO_VOLUME_ID])),
            ISO_TYPE_SUPPLEMENTARY if JOLIET_ESCAPES.iter().any(|e| &sector[88..91] == *e) => {
                labels.push(ucs2_label(&sector[ISO_VOLUME_ID]))
            }
            ISO_TYPE_TERMINATOR => break,
            _ => {}
        }
    }
    (!labels.is_empty()).then_some(Probed {
        fs: FsType::Iso9660,
        labels,
    })
}

fn probe_fat<R: Read + Seek>(dev: &mut R) -> Option<Probed> {
    let mut bs = [0u8; 512];
    dev.seek(SeekFrom::Start(0)).ok()?;
    dev.read_exact(&mut bs).ok()?;
    if bs[510..512] != [0x55, 0xaa] {
        return None;
    }
    let label = if bs[FAT32_TYPE].starts_with(b"FAT32") {
        &bs[FAT32_LABEL]
    } else if bs[FAT16_TYPE].starts_with(b"FAT") {
        &bs[FAT16_LABEL]
    } else {
        return None;
    };
    Some(Probed {
        fs: FsType::Vfat,
        labels: vec![trim_label(label)],
    })
}

/// Probe one device (or image file) for an ISO 9660 or FAT label.
pub fn probe<R: Read + Seek>(dev: &mut R) -> Option<Probed> {
    probe_iso(dev).or_else(|| probe_fat(dev))
}

/// Every block device sysfs lists (disks and partitions), sorted, skipping
/// empty ones (unused loop devices, empty CD drives).
fn block_devices(roots: &Roots) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(&roots.sys_block) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            std::fs::read_to_string(roots.sys_block.join(n).join("size"))
                .is_ok_and(|s| s.trim() != "0")
        })
        .collect();
    names.sort();
    names
}

/// The first device (by kernel name) carrying a filesystem labelled `label`.
pub fn find(roots: &Roots, label: &str) -> Option<(PathBuf, FsType)> {
    for name in block_devices(roots) {
        let dev = roots.dev.join(&name);
        let Ok(mut f) = File::open(&dev) else {
            continue;
        };
        if let Some(p) = probe(&mut f) {
            if p.labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
                return Some((dev, p.fs));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn iso(primary: &str, joliet: Option<&str>) -> Vec<u8> {
        let mut img = vec![0u8; 20 * 2048];
        let mut put = |n: usize, ty: u8, label: &[u8], esc: &[u8]| {
            let s = &mut img[n * 2048..(n + 1) * 2048];
            s[0] = ty;
            s[1..6].copy_from_slice(ISO_ID);
            s[6] = 1;
            s[40..72].fill(b' ');
            s[40..40 + label.len()].copy_from_slice(label);
            s[88..88 + esc.len()].copy_from_slice(esc);
        };
        put(16, ISO_TYPE_PRIMARY, primary.as_bytes(), b"");
        let mut next = 17;
        if let Some(j) = joliet {
            let mut u: Vec<u8> = j.encode_utf16().flat_map(|c| c.to_be_bytes()).collect();
            while u.len() < 32 {
                u.extend_from_slice(&[0, b' ']);
            }
            put(17, ISO_TYPE_SUPPLEMENTARY, &u, b"%/E");
            next = 18;
        }
        put(next, ISO_TYPE_TERMINATOR, b"", b"");
        img
    }

    fn fat(fat32: bool, label: &str) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[510] = 0x55;
        b[511] = 0xaa;
        let (l, t, ty): (_, _, &[u8]) = if fat32 {
            (FAT32_LABEL, FAT32_TYPE, b"FAT32   ")
        } else {
            (FAT16_LABEL, FAT16_TYPE, b"FAT16   ")
        };
        b[l.clone()].fill(b' ');
        b[l.start..l.start + label.len()].copy_from_slice(label.as_bytes());
        b[t].copy_from_slice(ty);
        b
    }

    #[test]
    fn probe_table() {
        let cases: Vec<(Vec<u8>, Option<(FsType, Vec<&str>)>)> = vec![
            (
                iso("config-2", None),
                Some((FsType::Iso9660, vec!["config-2"])),
            ),
            (
                iso("CIDATA", Some("cidata")),
                Some((FsType::Iso9660, vec!["CIDATA", "cidata"])),
            ),
            (fat(false, "CIDATA"), Some((FsType::Vfat, vec!["CIDATA"]))),
            (
                fat(true, "config-2"),
                Some((FsType::Vfat, vec!["config-2"])),
            ),
            (vec![0u8; 40 * 2048], None),
            (vec![0u8; 100], None),
        ];
        for (i, (img, want)) in cases.into_iter().enumerate() {
            let got = probe(&mut Cursor::new(img)).map(|p| (p.fs, p.labels));
            let want = want.map(|(f, l)| (f, l.into_iter().map(String::from).collect::<Vec<_>>()));
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn finds_by_label_among_devices() {
        let root = std::env::temp_dir().join(format!("basalt-init-label-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let roots = Roots {
            sys_block: root.join("sys"),
            dev: root.join("dev"),
        };
        std::fs::create_dir_all(&roots.dev).unwrap();
        for (name, img) in [
            ("vda", vec![0u8; 40 * 2048]),
            ("vdb", iso("config-2", Some("config-2"))),
            ("vdc", fat(true, "CIDATA")),
            ("sr0", Vec::new()),
        ] {
            let d = roots.sys_block.join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("size"), format!("{}\n", img.len() / 512)).unwrap();
            std::fs::write(roots.dev.join(name), img).unwrap();
        }
        assert_eq!(
            find(&roots, "config-2"),
            Some((roots.dev.join("vdb"), FsType::Iso9660))
        );
        assert_eq!(
            find(&roots, "cidata"),
            Some((roots.dev.join("vdc"), FsType::Vfat))
        );
        assert_eq!(find(&roots, "missing"), None);
        std::fs::remove_dir_all(&root).ok();
    }
}
