//! 8.3 short names, long-name (VFAT LFN) entries and their checksum, per
//! Microsoft's FAT specification ("FAT: General Overview of On-Disk
//! Format", sections on short names, numeric-tail generation and long
//! directory entries).

use std::collections::{BTreeMap, BTreeSet};

/// Characters other than letters and digits allowed in a short name.
const SHORT_SPECIALS: &[u8] = b"!#$%&'()-@^_`{}~";
/// Characters never allowed in a long name (besides controls).
const LONG_FORBIDDEN: &[char] = &['"', '*', '/', ':', '<', '>', '?', '\\', '|'];
/// Longest long name, in UTF-16 code units.
pub const MAX_LONG_UNITS: usize = 255;
/// Largest numeric tail ("~999999" leaves one character of the base).
const MAX_TAIL: u32 = 999_999;
/// UTF-16 code units per long-name entry.
pub const UNITS_PER_LFN: usize = 13;

/// An 11-byte short name: 8 name bytes and 3 extension bytes, space padded.
pub type ShortName = [u8; 11];

/// Check a name can be a FAT long name; returns its UTF-16 units.
pub fn check_long(name: &str) -> Result<Vec<u16>, String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("empty, '.' or '..'".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| LONG_FORBIDDEN.contains(c) || (*c as u32) < 0x20)
    {
        return Err(format!("character {c:?} is not allowed"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("ends with '.' or a space, which FAT drivers strip".into());
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.len() > MAX_LONG_UNITS {
        return Err(format!(
            "{} UTF-16 units, more than {MAX_LONG_UNITS}",
            units.len()
        ));
    }
    Ok(units)
}

fn short_char(c: char) -> Option<u8> {
    let u = c.to_ascii_uppercase();
    if u.is_ascii_uppercase()
        || u.is_ascii_digit()
        || (u.is_ascii() && SHORT_SPECIALS.contains(&(u as u8)))
    {
        Some(u as u8)
    } else {
        None
    }
}

/// The basis name (spec: "basis-name generation") and whether it is exact:
/// exact means the uppercased name is a valid 8.3 name as it stands, so no
/// numeric tail is needed.
pub fn basis(name: &str) -> (Vec<u8>, Vec<u8>, bool) {
    let mut exact = true;
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let convert = |s: &str, max: usize, exact: &mut bool| {
        let mut out = Vec::new();
        for c in s.chars() {
            if c == ' ' || c == '.' {
                *exact = false;
                continue;
            }
            let b = short_char(c).unwrap_or_else(|| {
                *exact = false;
                b'_'
            });
            if out.len() < max {
                out.push(b);
            } else {
                *exact = false;
            }
        }
        out
    };
    let mut base = convert(stem, 8, &mut exact);
    let ext = convert(ext, 3, &mut exact);
    if base.is_empty() {
        base.push(b'_');
        exact = false;
    }
    (base, ext, exact)
}

fn pack(base: &[u8], ext: &[u8]) -> ShortName {
    let mut s = [b' '; 11];
    s[..base.len()].copy_from_slice(base);
    s[8..8 + ext.len()].copy_from_slice(ext);
    s
}

/// The short name as text ("BASE.EXT"), for comparing with the long name.
pub fn display(s: &ShortName) -> String {
    let base = String::from_utf8_lossy(&s[..8]).trim_end().to_string();
    let ext = String::from_utf8_lossy(&s[8..]).trim_end().to_string();
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// Short names for the `names` of one directory (in order), avoiding each
/// other. Returns, per name, the short name and whether a long name is
/// needed. Names that fit 8.3 exactly get first pick; the others get
/// numeric tails `~1`, `~2`, ... in order.
pub fn assign(names: &[&str]) -> Option<Vec<(ShortName, bool)>> {
    let mut taken: BTreeSet<ShortName> = BTreeSet::new();
    let mut out: Vec<Option<(ShortName, bool)>> = vec![None; names.len()];
    let bases: Vec<(Vec<u8>, Vec<u8>, bool)> = names.iter().map(|n| basis(n)).collect();
    for (i, (base, ext, exact)) in bases.iter().enumerate() {
        if *exact {
            let s = pack(base, ext);
            if taken.insert(s) {
                // A long name keeps the original case if it differs.
                out[i] = Some((s, display(&s) != names[i]));
            }
        }
    }
    // Per basis, the next tail number to try, so many names sharing a
    // basis cost O(n log n), not O(n^2).
    let mut next_tail: BTreeMap<(Vec<u8>, Vec<u8>), u32> = BTreeMap::new();
    for (i, (base, ext, _)) in bases.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let counter = next_tail.entry((base.clone(), ext.clone())).or_insert(1);
        let mut found = None;
        while *counter <= MAX_TAIL {
            let tail = format!("~{counter}");
            *counter += 1;
            let keep = base.len().min(8 - tail.len());
            let mut b = base[..keep].to_vec();
            b.extend_from_slice(tail.as_bytes());
            let s = pack(&b, ext);
            if taken.insert(s) {
                found = Some(s);
                break;
            }
        }
        out[i] = Some((found?, true));
    }
    out.into_iter().collect()
}

/// The checksum of a short name stored in each of its long-name entries.
pub fn lfn_checksum(s: &ShortName) -> u8 {
    s.iter().fold(0u8, |sum, &b| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b)
    })
}

/// Number of long-name entries for a name of `units` UTF-16 units.
pub fn lfn_entries(units: usize) -> usize {
    units.div_ceil(UNITS_PER_LFN)
}

/// The long-name entries for `units`, in on-disk order (last part first),
/// each 32 bytes: ordinal at 0 (0x40 on the last), chars 1..11, attribute
/// 0x0F at 11, type 0 at 12, checksum at 13, chars 14..26, cluster 0 at 26,
/// chars 28..32. The name is NUL-terminated and 0xFFFF-padded.
pub fn lfn_bytes(units: &[u16], short: &ShortName) -> Vec<[u8; 32]> {
    const CHAR_OFFSETS: [usize; UNITS_PER_LFN] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
    let n = lfn_entries(units.len());
    let sum = lfn_checksum(short);
    let mut out = Vec::with_capacity(n);
    for seq in (1..=n).rev() {
        let mut e = [0u8; 32];
        // n <= 20 because units.len() <= 255.
        e[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = sum;
        for (k, off) in CHAR_OFFSETS.iter().enumerate() {
            let idx = (seq - 1) * UNITS_PER_LFN + k;
            let u: u16 = match idx.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[idx],
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 0xFFFF,
            };
            e[*off..*off + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_table() {
        // (long name, short display, exact)
        let cases = [
            ("BOOTX64.EFI", "BOOTX64.EFI", true),
            ("grub.cfg", "GRUB.CFG", true),
            ("vmlinuz-a", "VMLINUZ-", false),
            ("initrd-a", "INITRD-A", true),
            ("x86_64-efi", "X86_64-E", false),
            ("a.b.c", "AB.C", false),
            (".hidden", "HIDDEN", false),
            ("long name.html", "LONGNAME.HTM", false),
            ("a+b", "A_B", false),
            ("ünï", "_N_", false),
        ];
        for (name, want, exact) in cases {
            let (b, e, x) = basis(name);
            assert_eq!(display(&pack(&b, &e)), want, "{name}");
            assert_eq!(x, exact, "{name}");
        }
    }

    #[test]
    fn assign_tails() {
        let names = [
            "normal.mod",
            "normalize.mod",
            "normalizer.mod",
            "NORMAL.MOD2",
            "README",
            "readme.txt",
        ];
        let got: Vec<(String, bool)> = assign(&names)
            .expect("assign")
            .iter()
            .map(|(s, l)| (display(s), *l))
            .collect();
        let want = [
            ("NORMAL.MOD", true),
            ("NORMAL~1.MOD", true),
            ("NORMAL~2.MOD", true),
            ("NORMAL~3.MOD", true),
            ("README", false),
            ("README.TXT", true),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(s, l)| (s.to_string(), *l)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn many_names_one_basis_is_fast_and_unique() {
        let names: Vec<String> = (0..30_000)
            .map(|i| format!("a-long-file-name-{i}"))
            .collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let got = assign(&refs).expect("assign");
        let unique: BTreeSet<ShortName> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(display(&got[0].0), "A-LONG~1");
        assert_eq!(display(&got[29_999].0), "A-~30000");
    }

    #[test]
    fn checksum_and_lfn_layout() {
        let s: ShortName = *b"NORMAL~1MOD";
        // Checksum computed by hand with the rotate-right-and-add rule.
        let mut sum = 0u8;
        for b in s {
            sum = sum.rotate_right(1).wrapping_add(b);
        }
        assert_eq!(lfn_checksum(&s), sum);
        let units: Vec<u16> = "normalize.mod".encode_utf16().collect();
        let e = lfn_bytes(&units, &s);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0][0], 0x41);
        assert_eq!(e[0][11], 0x0F);
        assert_eq!(e[0][13], sum);
        assert_eq!(&e[0][1..3], &[b'n', 0]);
        assert_eq!(&e[0][30..32], &[b'd', 0]);
        let long: Vec<u16> = "abcdefghijklmn".encode_utf16().collect();
        let e = lfn_bytes(&long, &s);
        assert_eq!((e[0][0], e[1][0]), (0x42, 0x01));
        assert_eq!(&e[0][1..7], &[b'n', 0, 0, 0, 0xff, 0xff]);
    }

    #[test]
    fn long_name_checks() {
        for (name, ok) in [
            ("grub.cfg", true),
            ("a:b", false),
            ("dot.", false),
            ("", false),
            ("..", false),
            ("tab\t", false),
        ] {
            assert_eq!(check_long(name).is_ok(), ok, "{name:?}");
        }
        assert!(check_long(&"x".repeat(255)).is_ok());
        assert!(check_long(&"x".repeat(256)).is_err());
    }
}
