//! What ldconfig learns from one candidate file (glibc elf/readlib.c
//! `process_file`, sysdeps/x86/readelflib.c and elf/readelflib.c): whether
//! it is a library at all, its cache flags and its DT_SONAME. Offsets and
//! tags from the System V gABI; a.out magic numbers from `<a.out.h>`.
//!
//! Files ldconfig skips (too short, not ELF, not ET_DYN, unknown machine,
//! no dynamic segment or string table, truncated) give `None`; nothing
//! here panics on bad input.

use crate::format::{FLAG_ELF_LIBC6, FLAG_X8664_LIB64, FLAG_X8664_LIBX32};

/// A file ldconfig accepts as a library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub flags: i32,
    /// DT_SONAME (or, for a.out, the name up to its major version); None
    /// when the file has none (the cache then uses the file's own name).
    pub soname: Option<Vec<u8>>,
}

/// `sizeof (struct exec)` on x86-64 (eight 4-byte fields).
const AOUT_HEADER_SIZE: usize = 32;
/// `N_MAGIC` values ldconfig treats as a.out libraries: `ZMAGIC`, `QMAGIC`.
const ZMAGIC: u32 = 0o413;
const QMAGIC: u32 = 0o314;
pub(crate) const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
pub(crate) const EI_CLASS: usize = 4;
const ELFCLASS32: u8 = 1;
pub(crate) const ELFCLASS64: u8 = 2;
pub(crate) const E_TYPE: usize = 16;
pub(crate) const E_MACHINE: usize = 18;
pub(crate) const ET_DYN: u16 = 3;
const EM_386: u16 = 3;
pub(crate) const EM_X86_64: u16 = 62;
pub(crate) const PT_LOAD: u32 = 1;
pub(crate) const PT_DYNAMIC: u32 = 2;
pub(crate) const DT_NULL: u64 = 0;
pub(crate) const DT_STRTAB: u64 = 5;
pub(crate) const DT_SONAME: u64 = 14;

/// Field positions of one ELF class.
struct Class {
    ehdr_size: usize,
    e_phoff: usize,
    e_phnum: usize,
    phdr_size: usize,
    /// p_offset, p_vaddr, p_filesz within a program header.
    p_offset: usize,
    p_vaddr: usize,
    p_filesz: usize,
    word: usize,
}

const CLASS64: Class = Class {
    ehdr_size: 64,
    e_phoff: 0x20,
    e_phnum: 0x38,
    phdr_size: 56,
    p_offset: 8,
    p_vaddr: 16,
    p_filesz: 32,
    word: 8,
};
const CLASS32: Class = Class {
    ehdr_size: 52,
    e_phoff: 0x1c,
    e_phnum: 0x2c,
    phdr_size: 32,
    p_offset: 4,
    p_vaddr: 8,
    p_filesz: 16,
    word: 4,
};

fn get<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    d.get(off..end)?.try_into().ok()
}
fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    get::<2>(d, off).map(u16::from_le_bytes)
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    get::<4>(d, off).map(u32::from_le_bytes)
}
fn word_at(c: &Class, d: &[u8], off: usize) -> Option<u64> {
    if c.word == 8 {
        get::<8>(d, off).map(u64::from_le_bytes)
    } else {
        u32_at(d, off).map(u64::from)
    }
}
fn idx(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// ldconfig's a.out soname: the file name cut after its major version
/// (`libfoo.so.1.2` → `libfoo.so.1`).
fn aout_soname(name: &[u8]) -> Vec<u8> {
    let Some(so) = name.windows(4).position(|w| w == b".so.") else {
        return name.to_vec();
    };
    let after = so + 4;
    match name[after..].iter().position(|&b| b == b'.') {
        Some(dot) => name[..after + dot].to_vec(),
        None => name.to_vec(),
    }
}

/// Classifies `data`, the content of a file named `name`.
pub fn classify(data: &[u8], name: &[u8]) -> Option<Library> {
    if data.len() < AOUT_HEADER_SIZE.max(CLASS64.ehdr_size) {
        return None;
    }
    let n_magic = u32_at(data, 0)? & 0xffff;
    if n_magic == ZMAGIC || n_magic == QMAGIC {
        return Some(Library {
            flags: FLAG_ELF_LIBC6,
            soname: Some(aout_soname(name)),
        });
    }
    if &data[..4] != ELF_MAGIC || u16_at(data, E_TYPE)? != ET_DYN {
        return None;
    }
    let class = data[EI_CLASS];
    let machine_flags = match (u16_at(data, E_MACHINE)?, class) {
        (EM_X86_64, ELFCLASS64) => FLAG_X8664_LIB64 | FLAG_ELF_LIBC6,
        (EM_X86_64, _) => FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6,
        (EM_386, ELFCLASS32) => FLAG_ELF_LIBC6,
        _ => return None,
    };
    let c = match class {
        ELFCLASS64 => &CLASS64,
        ELFCLASS32 => &CLASS32,
        _ => return None,
    };
    let soname = soname(c, data)?;
    Some(Library {
        flags: machine_flags,
        soname,
    })
}

/// `Some(None)`: a dynamic library without DT_SONAME; `None`: skipped.
fn soname(c: &Class, data: &[u8]) -> Option<Option<Vec<u8>>> {
    let phoff = idx(word_at(c, data, c.e_phoff)?)?;
    let phnum = usize::from(u16_at(data, c.e_phnum)?);
    let mut phdrs = Vec::with_capacity(phnum);
    for i in 0..phnum {
        let at = phoff.checked_add(i.checked_mul(c.phdr_size)?)?;
        data.get(at..at.checked_add(c.phdr_size)?)?;
        phdrs.push((
            u32_at(data, at)?,
            word_at(c, data, at + c.p_offset)?,
            word_at(c, data, at + c.p_vaddr)?,
            word_at(c, data, at + c.p_filesz)?,
        ));
    }
    // The last PT_DYNAMIC counts (ldconfig only warns about several).
    let (dyn_off, dyn_size) = phdrs
        .iter()
        .filter(|p| p.0 == PT_DYNAMIC)
        .map(|p| (p.1, p.3))
        .next_back()?;
    if dyn_size == 0 {
        return None;
    }
    // ldconfig keeps the dynamic segment's offset in an unsigned int.
    let dyn_off = idx(dyn_off & 0xffff_ffff)?;
    let dyn_entry = 2 * c.word;
    let dynamic = |i: usize| -> Option<(u64, u64)> {
        let at = dyn_off.checked_add(i.checked_mul(dyn_entry)?)?;
        Some((word_at(c, data, at)?, word_at(c, data, at + c.word)?))
    };
    // The first DT_STRTAB, mapped to a file offset through the PT_LOAD
    // segment holding it (offset 0 when none does).
    let mut strtab = None;
    let mut i = 0;
    loop {
        let (tag, val) = dynamic(i)?;
        if tag == DT_NULL {
            break;
        }
        if tag == DT_STRTAB {
            let loadoff = phdrs
                .iter()
                .find(|p| p.0 == PT_LOAD && val >= p.2 && val - p.2 < p.3)
                .map(|p| p.2.wrapping_sub(p.1))
                .unwrap_or(0);
            strtab = Some(val.wrapping_sub(loadoff));
            break;
        }
        i += 1;
    }
    let strtab = strtab?;
    let mut i = 0;
    loop {
        let (tag, val) = dynamic(i)?;
        if tag == DT_NULL {
            return Some(None);
        }
        if tag == DT_SONAME {
            let start = idx(strtab.wrapping_add(val))?;
            let rest = data.get(start..)?;
            let n = rest.iter().position(|&b| b == 0)?;
            return Some(Some(rest[..n].to_vec()));
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::synth_lib;

    #[test]
    fn classifies() {
        let x64 = FLAG_X8664_LIB64 | FLAG_ELF_LIBC6;
        let good = synth_lib(Some("libq.so.1"));
        let mut exec = good.clone();
        exec[E_TYPE] = 2;
        let mut arm = good.clone();
        arm[E_MACHINE] = 183;
        let mut aout = vec![0u8; 64];
        aout[..4].copy_from_slice(&(ZMAGIC | 0x0064_0000).to_le_bytes());
        let cases: Vec<(&str, Vec<u8>, Option<Library>)> = vec![
            (
                "soname",
                good.clone(),
                Some(Library {
                    flags: x64,
                    soname: Some(b"libq.so.1".to_vec()),
                }),
            ),
            (
                "no soname",
                synth_lib(None),
                Some(Library {
                    flags: x64,
                    soname: None,
                }),
            ),
            (
                "script",
                b"/* GNU ld script */ GROUP ( libc.so.6 )\n".repeat(3),
                None,
            ),
            ("short", good[..40].to_vec(), None),
            ("truncated", good[..150].to_vec(), None),
            ("executable", exec, None),
            ("other machine", arm, None),
            (
                "a.out",
                aout,
                Some(Library {
                    flags: FLAG_ELF_LIBC6,
                    soname: Some(b"libq.so.1".to_vec()),
                }),
            ),
        ];
        for (what, data, want) in cases {
            assert_eq!(classify(&data, b"libq.so.1.2.3"), want, "{what}");
        }
        // No byte string makes it panic: every prefix of a real library.
        for n in 0..good.len() {
            let _ = classify(&good[..n], b"x");
        }
    }
}
