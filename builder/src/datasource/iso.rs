//! A small ISO 9660 writer (ECMA-119) with a Joliet supplementary volume,
//! enough for cloud datasource media: an OpenStack config drive
//! (`config-2`) or a NoCloud seed (`cidata`). The primary volume carries
//! upper-case d-character names (what ECMA-119 allows); the Joliet volume
//! carries the real names in UCS-2, so lower-case names such as
//! `openstack/latest/user_data` and `meta-data` survive on Linux, which
//! prefers Joliet names when they are present.
//!
//! Layout (2048-byte sectors): 0-15 system area (zero), 16 primary volume
//! descriptor, 17 Joliet descriptor, 18 terminator, then the four path
//! tables (L and M for each volume), the primary directories, the Joliet
//! directories, and the file data shared by both trees. Dates are left
//! "not specified" (zeros), so the same files give the same bytes.

use std::collections::{BTreeMap, BTreeSet};

/// ECMA-119 6.1.2: the logical sector and block size used here.
pub const SECTOR: usize = 2048;
const SECTOR_U16: u16 = 2048;
const SYSTEM_AREA_SECTORS: u32 = 16;
const PVD_SECTOR: u32 = 16;
const SVD_SECTOR: u32 = 17;
const TERMINATOR_SECTOR: u32 = 18;
const FIRST_FREE_SECTOR: u32 = 19;
/// ECMA-119 8.1: standard identifier of every volume descriptor.
const STANDARD_ID: &[u8; 5] = b"CD001";
/// Directory record length without the identifier (ECMA-119 9.1).
const DIR_RECORD_FIXED: usize = 33;
/// File flag "directory" (ECMA-119 9.1.6).
const FLAG_DIRECTORY: u8 = 0x02;
/// Joliet UCS-2 level 3 escape sequence (in the SVD's escape field, bytes 88..120).
const JOLIET_ESCAPE: &[u8; 3] = b"%/E";
/// ECMA-119 6.8.2.1: at most 8 directory levels (root included).
const MAX_DEPTH: usize = 8;
/// Joliet limits names to 64 UCS-2 characters.
const JOLIET_MAX_NAME: usize = 64;
/// Volume identifiers are 32 bytes (16 UCS-2 characters in Joliet).
const MAX_LABEL: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("ISO 9660 label {0:?}: expected 1 to {MAX_LABEL} ASCII characters")]
    BadLabel(String),
    #[error("ISO 9660 path {path:?}: {why}")]
    BadPath { path: String, why: String },
    #[error("ISO 9660 image too large: {0} sectors")]
    TooLarge(u64),
}

/// Both-byte-order 32-bit field (ECMA-119 7.3.3).
fn both32(v: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&v.to_le_bytes());
    b[4..].copy_from_slice(&v.to_be_bytes());
    b
}

/// Both-byte-order 16-bit field (ECMA-119 7.2.3).
fn both16(v: u16) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&v.to_le_bytes());
    b[2..].copy_from_slice(&v.to_be_bytes());
    b
}

fn sectors_for(len: u64) -> u64 {
    len.div_ceil(SECTOR as u64)
}

/// Which of the two trees a name is encoded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Volume {
    Primary,
    Joliet,
}

impl Volume {
    /// The file identifier bytes; primary-volume files get the `;1` version suffix.
    fn encode(self, name: &str, is_dir: bool) -> Vec<u8> {
        match self {
            Volume::Primary => {
                let mut s: String = name
                    .chars()
                    .map(|c| match c.to_ascii_uppercase() {
                        c @ ('A'..='Z' | '0'..='9' | '_') => c,
                        '.' if !is_dir => '.',
                        _ => '_',
                    })
                    .collect();
                if !is_dir {
                    // Exactly one separator dot, then the version.
                    if let Some(i) = s.rfind('.') {
                        let (stem, ext) = s.split_at(i);
                        s = format!("{}{ext}", stem.replace('.', "_"));
                    } else {
                        s.push('.');
                    }
                    s.push_str(";1");
                }
                s.into_bytes()
            }
            // Joliet names carry no version suffix (Linux strips one if
            // present; other readers show it).
            Volume::Joliet => name.encode_utf16().flat_map(|u| u.to_be_bytes()).collect(),
        }
    }
}

/// One directory of one volume, in path-table order.
#[derive(Debug)]
struct Dir {
    /// Components from the root (empty for the root).
    path: Vec<String>,
    /// 1-based path-table number of the parent (the root is its own parent).
    parent: u16,
    ident: Vec<u8>,
    /// (identifier, is_dir, key into dirs or files)
    children: Vec<(Vec<u8>, bool, Vec<String>)>,
    size: u32,
    sector: u32,
}

fn record_len(ident_len: usize) -> usize {
    let n = DIR_RECORD_FIXED + ident_len;
    n + (n % 2)
}

/// Bytes a directory extent takes: records never cross a sector boundary.
fn dir_size(idents: impl Iterator<Item = usize>) -> u32 {
    let mut used = 0usize;
    for len in idents {
        let r = record_len(len);
        if used % SECTOR + r > SECTOR {
            used = used.next_multiple_of(SECTOR);
        }
        used += r;
    }
    // Never larger than a few sectors for datasource media; saturate anyway.
    u32::try_from(used.next_multiple_of(SECTOR)).unwrap_or(u32::MAX)
}

/// Directories of one volume in path-table order (ECMA-119 6.9.1: by
/// level, then parent number, then identifier).
fn plan_dirs(
    vol: Volume,
    dirs: &BTreeSet<Vec<String>>,
    files: &BTreeMap<Vec<String>, Vec<u8>>,
) -> Vec<Dir> {
    let mut out: Vec<Dir> = vec![Dir {
        path: vec![],
        parent: 1,
        ident: vec![0],
        children: vec![],
        size: 0,
        sector: 0,
    }];
    let mut level_start = 0;
    while level_start < out.len() {
        let level_end = out.len();
        for i in level_start..level_end {
            let parent_path = out[i].path.clone();
            let mut subs: Vec<(Vec<u8>, Vec<String>)> = dirs
                .iter()
                .filter(|d| d.len() == parent_path.len() + 1 && d.starts_with(&parent_path))
                .map(|d| (vol.encode(&d[d.len() - 1], true), d.clone()))
                .collect();
            subs.sort();
            for (ident, path) in subs {
                out.push(Dir {
                    path,
                    parent: u16::try_from(i + 1).unwrap_or(u16::MAX),
                    ident,
                    children: vec![],
                    size: 0,
                    sector: 0,
                });
            }
        }
        level_start = level_end;
    }
    for d in &mut out {
        let mut kids: Vec<(Vec<u8>, bool, Vec<String>)> = dirs
            .iter()
            .filter(|p| p.len() == d.path.len() + 1 && p.starts_with(&d.path))
            .map(|p| (vol.encode(&p[p.len() - 1], true), true, p.clone()))
            .chain(
                files
                    .keys()
                    .filter(|p| p.len() == d.path.len() + 1 && p.starts_with(&d.path))
                    .map(|p| (vol.encode(&p[p.len() - 1], false), false, p.clone())),
            )
            .collect();
        kids.sort();
        d.size = dir_size(
            [1usize, 1]
                .into_iter()
                .chain(kids.iter().map(|k| k.0.len())),
        );
        d.children = kids;
    }
    out
}

fn path_table(dirs: &[Dir], big_endian: bool) -> Vec<u8> {
    let mut t = Vec::new();
    for d in dirs {
        let ident_len = u8::try_from(d.ident.len()).unwrap_or(u8::MAX);
        t.push(ident_len);
        t.push(0);
        if big_endian {
            t.extend_from_slice(&d.sector.to_be_bytes());
            t.extend_from_slice(&d.parent.to_be_bytes());
        } else {
            t.extend_from_slice(&d.sector.to_le_bytes());
            t.extend_from_slice(&d.parent.to_le_bytes());
        }
        t.extend_from_slice(&d.ident);
        if d.ident.len() % 2 == 1 {
            t.push(0);
        }
    }
    t
}

fn dir_record(ident: &[u8], sector: u32, size: u32, is_dir: bool) -> Vec<u8> {
    let len = record_len(ident.len());
    let mut r = vec![0u8; len];
    r[0] = u8::try_from(len).unwrap_or(u8::MAX);
    r[2..10].copy_from_slice(&both32(sector));
    r[10..18].copy_from_slice(&both32(size));
    // 18..25: recording date, all zero = not specified.
    r[25] = if is_dir { FLAG_DIRECTORY } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = u8::try_from(ident.len()).unwrap_or(u8::MAX);
    r[33..33 + ident.len()].copy_from_slice(ident);
    r
}

/// Fill a text field: ASCII spaces for the primary volume, UCS-2 spaces for Joliet.
fn text_field(vol: Volume, field: &mut [u8], text: &str) {
    match vol {
        Volume::Primary => {
            field.fill(b' ');
            field[..text.len()].copy_from_slice(text.as_bytes());
        }
        Volume::Joliet => {
            for pair in field.chunks_exact_mut(2) {
                pair.copy_from_slice(&[0, b' ']);
            }
            for (i, u) in text.encode_utf16().enumerate() {
                field[2 * i..2 * i + 2].copy_from_slice(&u.to_be_bytes());
            }
        }
    }
}

/// Primary or supplementary volume descriptor (ECMA-119 8.4, 8.5).
fn descriptor(
    vol: Volume,
    label: &str,
    total: u32,
    table_len: u32,
    l_at: u32,
    m_at: u32,
    root: &Dir,
) -> [u8; SECTOR] {
    let mut d = [0u8; SECTOR];
    d[0] = if vol == Volume::Primary { 1 } else { 2 };
    d[1..6].copy_from_slice(STANDARD_ID);
    d[6] = 1;
    text_field(vol, &mut d[8..40], "");
    text_field(vol, &mut d[40..72], label);
    d[80..88].copy_from_slice(&both32(total));
    if vol == Volume::Joliet {
        d[88..91].copy_from_slice(JOLIET_ESCAPE);
    }
    d[120..124].copy_from_slice(&both16(1));
    d[124..128].copy_from_slice(&both16(1));
    d[128..132].copy_from_slice(&both16(SECTOR_U16));
    d[132..140].copy_from_slice(&both32(table_len));
    d[140..144].copy_from_slice(&l_at.to_le_bytes());
    d[148..152].copy_from_slice(&m_at.to_be_bytes());
    d[156..190].copy_from_slice(&dir_record(&[0], root.sector, root.size, true));
    for (a, b) in [(190, 318), (318, 446), (446, 574), (574, 702)] {
        text_field(vol, &mut d[a..b], "");
    }
    for (a, b) in [(702, 739), (739, 776), (776, 813)] {
        text_field(vol, &mut d[a..b], "");
    }
    // Four dates (creation, modification, expiration, effective): digits
    // all '0' and a zero offset mean "not specified" (ECMA-119 8.4.26.1).
    for start in [813, 830, 847, 864] {
        d[start..start + 16].fill(b'0');
        d[start + 16] = 0;
    }
    d[881] = 1;
    d
}

/// Build an ISO 9660 + Joliet image labelled `label` holding `files`
/// (`"openstack/latest/user_data"` → bytes). Directories are implied.
pub fn build(label: &str, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, IsoError> {
    if label.is_empty() || label.len() > MAX_LABEL || !label.is_ascii() {
        return Err(IsoError::BadLabel(label.to_string()));
    }
    let mut by_path: BTreeMap<Vec<String>, Vec<u8>> = BTreeMap::new();
    let mut dirs: BTreeSet<Vec<String>> = BTreeSet::new();
    for (path, data) in files {
        let bad = |why: &str| IsoError::BadPath {
            path: path.clone(),
            why: why.to_string(),
        };
        let parts: Vec<String> = path.split('/').map(str::to_string).collect();
        if parts.iter().any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(bad(
                "expected a relative path of non-empty names without . or ..",
            ));
        }
        if parts.len() >= MAX_DEPTH {
            return Err(bad("more than 7 directory levels (ECMA-119 limit)"));
        }
        if parts
            .iter()
            .any(|p| p.encode_utf16().count() + 2 > JOLIET_MAX_NAME)
        {
            return Err(bad("a name is longer than Joliet's 62 characters"));
        }
        if parts.iter().any(|p| p.contains(';')) {
            return Err(bad("';' is the ISO 9660 version separator"));
        }
        for i in 1..parts.len() {
            dirs.insert(parts[..i].to_vec());
        }
        by_path.insert(parts, data.clone());
    }
    if let Some(p) = by_path.keys().find(|p| dirs.contains(*p)) {
        return Err(IsoError::BadPath {
            path: p.join("/"),
            why: "is both a file and a directory".into(),
        });
    }
    let mut primary = plan_dirs(Volume::Primary, &dirs, &by_path);
    let mut joliet = plan_dirs(Volume::Joliet, &dirs, &by_path);

    // Plan: path tables, directories, then files.
    let mut next = u64::from(FIRST_FREE_SECTOR);
    fn take(next: &mut u64, n: u64) -> u64 {
        let at = *next;
        *next += n;
        at
    }
    let table_len = |dirs: &[Dir]| path_table(dirs, false).len() as u64;
    let (p_len, j_len) = (table_len(&primary), table_len(&joliet));
    let tables = [
        take(&mut next, sectors_for(p_len)),
        take(&mut next, sectors_for(p_len)),
        take(&mut next, sectors_for(j_len)),
        take(&mut next, sectors_for(j_len)),
    ];
    for d in primary.iter_mut().chain(joliet.iter_mut()) {
        let at = take(&mut next, u64::from(d.size) / SECTOR as u64);
        d.sector = u32::try_from(at).map_err(|_| IsoError::TooLarge(at))?;
    }
    let mut file_at: BTreeMap<&Vec<String>, u32> = BTreeMap::new();
    for (p, data) in &by_path {
        let at = if data.is_empty() {
            0
        } else {
            take(&mut next, sectors_for(data.len() as u64))
        };
        file_at.insert(p, u32::try_from(at).map_err(|_| IsoError::TooLarge(at))?);
    }
    let total = u32::try_from(next).map_err(|_| IsoError::TooLarge(next))?;
    let sec32 = |v: u64| u32::try_from(v).map_err(|_| IsoError::TooLarge(v));
    let p_len32 = sec32(p_len)?;
    let j_len32 = sec32(j_len)?;

    // Write.
    let mut img = vec![0u8; total as usize * SECTOR];
    let put = |img: &mut Vec<u8>, sector: u64, bytes: &[u8]| {
        let at = sector as usize * SECTOR;
        img[at..at + bytes.len()].copy_from_slice(bytes);
    };
    debug_assert_eq!(SYSTEM_AREA_SECTORS, PVD_SECTOR);
    put(
        &mut img,
        PVD_SECTOR.into(),
        &descriptor(
            Volume::Primary,
            label,
            total,
            p_len32,
            sec32(tables[0])?,
            sec32(tables[1])?,
            &primary[0],
        ),
    );
    put(
        &mut img,
        SVD_SECTOR.into(),
        &descriptor(
            Volume::Joliet,
            label,
            total,
            j_len32,
            sec32(tables[2])?,
            sec32(tables[3])?,
            &joliet[0],
        ),
    );
    let mut term = [0u8; 7];
    term[0] = 255;
    term[1..6].copy_from_slice(STANDARD_ID);
    term[6] = 1;
    put(&mut img, TERMINATOR_SECTOR.into(), &term);
    put(&mut img, tables[0], &path_table(&primary, false));
    put(&mut img, tables[1], &path_table(&primary, true));
    put(&mut img, tables[2], &path_table(&joliet, false));
    put(&mut img, tables[3], &path_table(&joliet, true));
    for vol in [&primary, &joliet] {
        let index: BTreeMap<&Vec<String>, &Dir> = vol.iter().map(|d| (&d.path, d)).collect();
        for d in vol.iter() {
            let parent = &vol[usize::from(d.parent) - 1];
            let mut records = vec![
                dir_record(&[0], d.sector, d.size, true),
                dir_record(&[1], parent.sector, parent.size, true),
            ];
            for (ident, is_dir, key) in &d.children {
                records.push(if *is_dir {
                    let c = index[key];
                    dir_record(ident, c.sector, c.size, true)
                } else {
                    let len = sec32(by_path[key].len() as u64)?;
                    dir_record(ident, file_at[key], len, false)
                });
            }
            let mut buf = Vec::new();
            for r in records {
                if buf.len() % SECTOR + r.len() > SECTOR {
                    buf.resize(buf.len().next_multiple_of(SECTOR), 0);
                }
                buf.extend_from_slice(&r);
            }
            put(&mut img, d.sector.into(), &buf);
        }
    }
    for (p, data) in &by_path {
        put(&mut img, file_at[p].into(), data);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, d)| (p.to_string(), d.as_bytes().to_vec()))
            .collect()
    }

    fn have(tool: &str) -> bool {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "SKIPPED the {tool} check: {tool} is not installed (apt install genisoimage util-linux)"
            );
        }
        ok
    }

    fn config_drive() -> BTreeMap<String, Vec<u8>> {
        files(&[
            ("openstack/latest/user_data", "#cloud-config\nhostname: a\n"),
            ("openstack/latest/meta_data.json", "{\"uuid\":\"x\"}"),
            ("ec2/latest/meta-data.json", "{}"),
        ])
    }

    #[test]
    fn layout_and_reproducible() {
        let a = build("config-2", &config_drive()).unwrap();
        let b = build("config-2", &config_drive()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len() % SECTOR, 0);
        assert_eq!(&a[16 * SECTOR + 1..16 * SECTOR + 6], STANDARD_ID);
        assert_eq!(&a[16 * SECTOR + 40..16 * SECTOR + 48], b"config-2");
        assert_eq!(&a[17 * SECTOR + 88..17 * SECTOR + 91], JOLIET_ESCAPE);
        assert_eq!(a[18 * SECTOR], 255);
        let total = u32::from_le_bytes(a[16 * SECTOR + 80..16 * SECTOR + 84].try_into().unwrap());
        assert_eq!(total as usize * SECTOR, a.len());
    }

    #[test]
    fn errors_table() {
        let cases: &[(&str, &[(&str, &str)], &str)] = &[
            ("", &[("a", "")], "label"),
            ("waytoolonglabel-x", &[("a", "")], "label"),
            ("l", &[("/abs", "")], "non-empty names"),
            ("l", &[("a/../b", "")], "non-empty names"),
            ("l", &[("a;1", "")], "version separator"),
            ("l", &[("a/b/c/d/e/f/g/h", "")], "directory levels"),
            (
                "l",
                &[("a", ""), ("a/b", "")],
                "both a file and a directory",
            ),
        ];
        for (label, list, want) in cases {
            let e = build(label, &files(list)).unwrap_err().to_string();
            assert!(e.contains(want), "{label} {list:?}: {e}");
        }
        let long = "n".repeat(65);
        assert!(build("l", &files(&[(&long, "")])).is_err());
    }

    /// The Linux kernel's isofs (what /init mounts) sees the lower-case
    /// Joliet names. Needs root and loop devices; skipped loudly otherwise.
    #[test]
    fn linux_isofs_reads_joliet_names() {
        let dir = tempfile::tempdir().unwrap();
        let iso = dir.path().join("cidata.iso");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut fs = config_drive();
        fs.insert("meta-data".into(), b"instance-id: i-1\n".to_vec());
        std::fs::write(&iso, build("cidata", &fs).unwrap()).unwrap();
        let st = Command::new("mount")
            .args(["-o", "loop,ro", "-t", "iso9660"])
            .arg(&iso)
            .arg(&mnt)
            .output();
        match st {
            Ok(o) if o.status.success() => {}
            other => {
                eprintln!("SKIPPED the kernel isofs check: cannot loop-mount here ({other:?})");
                return;
            }
        }
        let read = |p: &str| std::fs::read(mnt.join(p));
        let results: Vec<(String, std::io::Result<Vec<u8>>)> =
            fs.keys().map(|k| (k.clone(), read(k))).collect();
        let _ = Command::new("umount").arg(&mnt).status();
        for (k, got) in results {
            assert_eq!(got.unwrap_or_else(|e| panic!("{k}: {e}")), fs[&k], "{k}");
        }
    }

    /// isoinfo (genisoimage) reads the Joliet tree back with the names and
    /// contents we wrote; blkid sees the label.
    #[test]
    fn reference_tools_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cd.iso");
        let mut fs = config_drive();
        fs.insert("meta-data".into(), b"instance-id: i-1\n".to_vec());
        fs.insert("big".into(), vec![7u8; 5000]);
        fs.insert("empty".into(), vec![]);
        std::fs::write(&path, build("config-2", &fs).unwrap()).unwrap();
        if have("isoinfo") {
            let out = Command::new("isoinfo")
                .args(["-J", "-f", "-i"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success());
            let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            listed.sort();
            for want in [
                "/openstack/latest/user_data",
                "/meta-data",
                "/ec2/latest/meta-data.json",
                "/big",
                "/empty",
            ] {
                assert!(listed.iter().any(|l| l == want), "{want} not in {listed:?}");
            }
            for (name, data) in &fs {
                let out = Command::new("isoinfo")
                    .args(["-J", "-x", &format!("/{name}"), "-i"])
                    .arg(&path)
                    .output()
                    .unwrap();
                assert_eq!(&out.stdout, data, "{name}");
            }
            // The primary tree is valid too (upper-case names).
            let out = Command::new("isoinfo")
                .args(["-f", "-i"])
                .arg(&path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("/OPENSTACK/LATEST/USER_DATA.;1"), "{text}");
        }
        if have("blkid") {
            let out = Command::new("blkid")
                .args(["-p", "-o", "export"])
                .arg(&path)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("LABEL=config-2"), "{text}");
            assert!(text.contains("TYPE=iso9660"), "{text}");
        }
    }
}
