//! Just enough ELF64 (little-endian) reading to run a program from the tree:
//! the interpreter (`PT_INTERP`), the needed libraries (`DT_NEEDED`) and the
//! library search paths (`DT_RUNPATH`, `DT_RPATH`). Offsets and tags from
//! the System V gABI (ELF-64 object file format).

use crate::error::{ExecError, Result};

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const EI_CLASS: usize = 4;
const ELFCLASS64: u8 = 2;
const EI_DATA: usize = 5;
const ELFDATA2LSB: u8 = 1;
const E_PHOFF: usize = 0x20;
const E_PHENTSIZE: usize = 0x36;
const E_PHNUM: usize = 0x38;
const EHDR_SIZE: usize = 0x40;
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DYN_SIZE: usize = 16;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// What a dynamic executable or library needs at load time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DynInfo {
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interp: Option<String>,
    /// `DT_NEEDED` sonames in file order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, as written (a `:`-separated list, may use `$ORIGIN`).
    pub runpath: Option<String>,
    /// `DT_RPATH`, as written (the deprecated form of `DT_RUNPATH`).
    pub rpath: Option<String>,
}

struct Phdr {
    p_type: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn err(path: &str, why: impl Into<String>) -> ExecError {
    ExecError::Elf {
        path: path.to_string(),
        why: why.into(),
    }
}

fn slice<'a>(data: &'a [u8], off: u64, len: u64, path: &str, what: &str) -> Result<&'a [u8]> {
    let start = usize::try_from(off).map_err(|_| err(path, format!("{what} offset too large")))?;
    let len = usize::try_from(len).map_err(|_| err(path, format!("{what} size too large")))?;
    start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| {
            err(
                path,
                format!("{what} at {start}+{len} is past the end of the file"),
            )
        })
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fn cstr(data: &[u8], off: u64, path: &str) -> Result<String> {
    let start = usize::try_from(off).map_err(|_| err(path, "string offset too large"))?;
    let rest = data
        .get(start..)
        .ok_or_else(|| err(path, "string past the end of the file"))?;
    let n = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| err(path, "unterminated string"))?;
    String::from_utf8(rest[..n].to_vec()).map_err(|_| err(path, "string is not UTF-8"))
}

/// Reads interpreter and needed libraries of an x86-64 ELF file. `path` is
/// only used in error messages.
pub fn dyn_info(data: &[u8], path: &str) -> Result<DynInfo> {
    if data.len() < EHDR_SIZE || &data[..4] != ELF_MAGIC {
        return Err(err(path, "not an ELF file"));
    }
    if data[EI_CLASS] != ELFCLASS64 || data[EI_DATA] != ELFDATA2LSB {
        return Err(err(path, "not a 64-bit little-endian ELF file"));
    }
    let phoff = u64_at(data, E_PHOFF);
    let phentsize = u16_at(data, E_PHENTSIZE);
    let phnum = u16_at(data, E_PHNUM);
    if usize::from(phentsize) != PHDR_SIZE && phnum != 0 {
        return Err(err(
            path,
            format!("program header size {phentsize}, want {PHDR_SIZE}"),
        ));
    }
    let table = slice(
        data,
        phoff,
        u64::from(phnum) * PHDR_SIZE as u64,
        path,
        "program headers",
    )?;
    let phdrs: Vec<Phdr> = table
        .chunks_exact(PHDR_SIZE)
        .map(|p| Phdr {
            p_type: u32_at(p, 0),
            offset: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            filesz: u64_at(p, 32),
        })
        .collect();
    let mut info = DynInfo::default();
    if let Some(p) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let bytes = slice(data, p.offset, p.filesz, path, "PT_INTERP")?;
        let s = bytes.split(|&b| b == 0).next().unwrap_or_default();
        info.interp =
            Some(String::from_utf8(s.to_vec()).map_err(|_| err(path, "PT_INTERP is not UTF-8"))?);
    }
    let Some(dynamic) = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(info);
    };
    let dynbytes = slice(data, dynamic.offset, dynamic.filesz, path, "PT_DYNAMIC")?;
    let mut strtab_vaddr = None;
    let mut needed_offsets = Vec::new();
    let (mut runpath, mut rpath) = (None, None);
    for d in dynbytes.chunks_exact(DYN_SIZE) {
        let (tag, val) = (u64_at(d, 0), u64_at(d, 8));
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(val),
            DT_STRTAB => strtab_vaddr = Some(val),
            DT_RUNPATH => runpath = Some(val),
            DT_RPATH => rpath = Some(val),
            _ => {}
        }
    }
    if needed_offsets.is_empty() && runpath.is_none() && rpath.is_none() {
        return Ok(info);
    }
    let strtab_vaddr = strtab_vaddr.ok_or_else(|| err(path, "DT_NEEDED without DT_STRTAB"))?;
    let load = phdrs
        .iter()
        .find(|p| {
            p.p_type == PT_LOAD && p.vaddr <= strtab_vaddr && strtab_vaddr - p.vaddr < p.filesz
        })
        .ok_or_else(|| err(path, "DT_STRTAB is not inside a PT_LOAD segment"))?;
    let strtab_off = load.offset + (strtab_vaddr - load.vaddr);
    let string = |off: u64| -> Result<String> {
        let at = strtab_off
            .checked_add(off)
            .ok_or_else(|| err(path, "string table offset overflows"))?;
        cstr(data, at, path)
    };
    for off in needed_offsets {
        info.needed.push(string(off)?);
    }
    info.runpath = runpath.map(string).transpose()?;
    info.rpath = rpath.map(string).transpose()?;
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal ELF64 with one PT_LOAD covering the file, an optional
    /// PT_INTERP and a PT_DYNAMIC listing `needed`.
    pub(crate) fn synth_elf(interp: Option<&str>, needed: &[&str]) -> Vec<u8> {
        synth_elf_with(interp, needed, &[])
    }

    /// [`synth_elf`] plus extra dynamic string entries (`(tag, string)`),
    /// e.g. `DT_RUNPATH`.
    pub(crate) fn synth_elf_with(
        interp: Option<&str>,
        needed: &[&str],
        extra: &[(u64, &str)],
    ) -> Vec<u8> {
        const VBASE: u64 = 0x40_0000;
        let mut strtab = vec![0u8];
        let mut offs = Vec::new();
        let tagged = needed
            .iter()
            .map(|n| (DT_NEEDED, *n))
            .chain(extra.iter().copied());
        for (tag, n) in tagged {
            offs.push((tag, strtab.len() as u64));
            strtab.extend_from_slice(n.as_bytes());
            strtab.push(0);
        }
        let nph = 3u64;
        let ph_off = EHDR_SIZE as u64;
        let interp_off = ph_off + nph * PHDR_SIZE as u64;
        let interp_bytes: Vec<u8> = interp
            .map(|s| [s.as_bytes(), &[0]].concat())
            .unwrap_or_default();
        let str_off = interp_off + interp_bytes.len() as u64;
        let dyn_off = str_off + strtab.len() as u64;
        let mut dynamic = Vec::new();
        for (tag, o) in &offs {
            dynamic.extend_from_slice(&tag.to_le_bytes());
            dynamic.extend_from_slice(&o.to_le_bytes());
        }
        dynamic.extend_from_slice(&DT_STRTAB.to_le_bytes());
        dynamic.extend_from_slice(&(VBASE + str_off).to_le_bytes());
        dynamic.extend_from_slice(&[0u8; 16]);
        let total = dyn_off + dynamic.len() as u64;
        let mut f = vec![0u8; EHDR_SIZE];
        f[..4].copy_from_slice(ELF_MAGIC);
        f[EI_CLASS] = ELFCLASS64;
        f[EI_DATA] = ELFDATA2LSB;
        f[E_PHOFF..E_PHOFF + 8].copy_from_slice(&ph_off.to_le_bytes());
        f[E_PHENTSIZE..E_PHENTSIZE + 2].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        f[E_PHNUM..E_PHNUM + 2].copy_from_slice(&(nph as u16).to_le_bytes());
        let mut ph = |t: u32, off: u64, len: u64| {
            let mut p = [0u8; PHDR_SIZE];
            p[0..4].copy_from_slice(&t.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&(VBASE + off).to_le_bytes());
            p[32..40].copy_from_slice(&len.to_le_bytes());
            f.extend_from_slice(&p);
        };
        ph(PT_LOAD, 0, total);
        ph(
            if interp.is_some() { PT_INTERP } else { 6 },
            interp_off,
            interp_bytes.len() as u64,
        );
        ph(PT_DYNAMIC, dyn_off, dynamic.len() as u64);
        f.extend_from_slice(&interp_bytes);
        f.extend_from_slice(&strtab);
        f.extend_from_slice(&dynamic);
        f
    }

    #[test]
    fn reads_interp_and_needed() {
        let cases: &[(Option<&str>, &[&str])] = &[
            (
                Some("/lib64/ld-linux-x86-64.so.2"),
                &["liblzma.so.5", "libc.so.6"],
            ),
            (None, &["libc.so.6"]),
            (Some("/lib/ld.so"), &[]),
        ];
        for (interp, needed) in cases {
            let info = dyn_info(&synth_elf(*interp, needed), "x").unwrap();
            assert_eq!(info.interp.as_deref(), *interp);
            assert_eq!(
                info.needed,
                needed.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            );
            assert_eq!((info.runpath, info.rpath), (None, None));
        }
        let f = synth_elf_with(
            None,
            &["libsystemd-shared-257.so"],
            &[
                (DT_RUNPATH, "/usr/lib/x86_64-linux-gnu/systemd"),
                (DT_RPATH, "$ORIGIN/../lib"),
            ],
        );
        let info = dyn_info(&f, "x").unwrap();
        assert_eq!(info.needed, ["libsystemd-shared-257.so"]);
        assert_eq!(
            info.runpath.as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/systemd")
        );
        assert_eq!(info.rpath.as_deref(), Some("$ORIGIN/../lib"));
    }

    #[test]
    fn rejects_bad_files() {
        let cases: &[(Vec<u8>, &str)] = &[
            (b"#!/bin/sh\n".to_vec(), "not an ELF"),
            (
                {
                    let mut f = synth_elf(None, &["a"]);
                    f[EI_CLASS] = 1;
                    f
                },
                "64-bit",
            ),
            (
                {
                    let f = synth_elf(None, &["a"]);
                    f[..200].to_vec()
                },
                "past the end",
            ),
        ];
        for (data, want) in cases {
            let e = dyn_info(data, "x").unwrap_err().to_string();
            assert!(e.contains(want), "{e} should contain {want}");
        }
    }
}
