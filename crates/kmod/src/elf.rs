//! Just enough ELF (64-bit little-endian relocatable objects, the x86_64
//! kernel module format) to read what depmod needs: the `.modinfo` strings,
//! the exported symbol names in `__ksymtab_strings` (or the `__ksymtab_*`
//! symbols of older kernels) and the undefined symbols of `.symtab`.
//! Field offsets from the System V ABI, "ELF Header" and "Sections".

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
/// Size of the ELF64 file header.
const EHDR64_LEN: usize = 64;
/// Offsets in the ELF64 header.
const E_SHOFF: usize = 0x28;
const E_SHENTSIZE: usize = 0x3A;
const E_SHNUM: usize = 0x3C;
const E_SHSTRNDX: usize = 0x3E;
/// Size of one ELF64 section header.
const SHDR64_LEN: usize = 64;
/// Size of one ELF64 symbol.
const SYM64_LEN: usize = 24;
const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
const SHN_UNDEF: u16 = 0;
const STB_WEAK: u8 = 2;
/// One `__versions` entry on 64-bit: u64 CRC then a 56-byte name.
const MODVERSION64_LEN: usize = 64;

/// One undefined symbol a module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededSymbol {
    pub name: String,
    pub weak: bool,
}

/// What depmod reads from one module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleElf {
    /// `.modinfo` as (key, value) pairs in section order.
    pub modinfo: Vec<(String, String)>,
    /// Exported symbol names.
    pub exports: Vec<String>,
    /// Undefined symbols, in symbol-table order.
    pub needs: Vec<NeededSymbol>,
}

struct Section {
    name: u32,
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
}

fn field(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    field(b, at, 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated at {at}"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    field(b, at, 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at {at}"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    let s = field(b, at, 8).ok_or_else(|| format!("truncated at {at}"))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

fn usize_of(v: u64, what: &str) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{what} {v} does not fit in memory"))
}

/// A NUL-terminated string at `at` inside `table`.
fn cstr(table: &[u8], at: usize) -> Result<&str, String> {
    let rest = table
        .get(at..)
        .ok_or_else(|| format!("string offset {at} outside its table"))?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| format!("string at {at} is not NUL-terminated"))?;
    std::str::from_utf8(&rest[..end]).map_err(|_| format!("string at {at} is not UTF-8"))
}

/// Split a section of NUL-separated strings, skipping empty ones (padding).
fn strings(data: &[u8]) -> Result<Vec<&str>, String> {
    data.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| std::str::from_utf8(s).map_err(|_| "string is not UTF-8".to_string()))
        .collect()
}

impl ModuleElf {
    /// Parse an uncompressed module image.
    pub fn parse(b: &[u8]) -> Result<ModuleElf, String> {
        if b.len() < EHDR64_LEN || &b[..4] != ELF_MAGIC {
            return Err("no ELF magic".into());
        }
        if b[EI_CLASS] != ELFCLASS64 || b[EI_DATA] != ELFDATA2LSB {
            return Err("only 64-bit little-endian ELF modules are supported".into());
        }
        let shoff = usize_of(u64_at(b, E_SHOFF)?, "section header offset")?;
        let shentsize = usize::from(u16_at(b, E_SHENTSIZE)?);
        let shnum = usize::from(u16_at(b, E_SHNUM)?);
        let shstrndx = usize::from(u16_at(b, E_SHSTRNDX)?);
        if shentsize != SHDR64_LEN {
            return Err(format!(
                "section header size {shentsize}, expected {SHDR64_LEN}"
            ));
        }
        let table_end = shnum
            .checked_mul(SHDR64_LEN)
            .and_then(|l| shoff.checked_add(l));
        if table_end.is_none_or(|end| end > b.len()) {
            return Err("section header table extends past the end of the file".into());
        }
        let mut sections = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let at = i
                .checked_mul(SHDR64_LEN)
                .and_then(|o| shoff.checked_add(o))
                .ok_or("section header offset overflows")?;
            let s = Section {
                name: u32_at(b, at)?,
                kind: u32_at(b, at + 4)?,
                offset: usize_of(u64_at(b, at + 24)?, "section offset")?,
                size: usize_of(u64_at(b, at + 32)?, "section size")?,
                link: u32_at(b, at + 40)?,
            };
            if s.kind != SHT_NOBITS && s.offset.checked_add(s.size).is_none_or(|end| end > b.len())
            {
                return Err(format!("section {i} extends past the end of the file"));
            }
            sections.push(s);
        }
        let data = |s: &Section| -> &[u8] {
            if s.kind == SHT_NOBITS {
                &[]
            } else {
                &b[s.offset..s.offset + s.size]
            }
        };
        let shstr = sections
            .get(shstrndx)
            .map(data)
            .ok_or("section name table index out of range")?;
        let named = |name: &str| -> Result<Option<&Section>, String> {
            for s in &sections {
                if cstr(shstr, usize_of(u64::from(s.name), "name offset")?)? == name {
                    return Ok(Some(s));
                }
            }
            Ok(None)
        };

        let mut out = ModuleElf::default();
        if let Some(s) = named(".modinfo")? {
            for kv in strings(data(s))? {
                // Strings without '=' carry no key/value; libkmod skips them too.
                if let Some((k, v)) = kv.split_once('=') {
                    out.modinfo.push((k.to_string(), v.to_string()));
                }
            }
        }
        let mut crc_exports = Vec::new();
        if let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) {
            let strtab = sections
                .get(usize_of(u64::from(symtab.link), "symtab link")?)
                .map(data)
                .ok_or("symbol table names a missing string table")?;
            let syms = data(symtab);
            // Entry 0 is the reserved null symbol.
            for at in (SYM64_LEN..syms.len().saturating_sub(SYM64_LEN - 1)).step_by(SYM64_LEN) {
                let name = cstr(
                    strtab,
                    usize_of(u64::from(u32_at(syms, at)?), "symbol name")?,
                )?;
                let info = syms[at + 4];
                let shndx = u16_at(syms, at + 6)?;
                if name.is_empty() {
                    continue;
                }
                if shndx == SHN_UNDEF {
                    out.needs.push(NeededSymbol {
                        name: name.to_string(),
                        weak: info >> 4 == STB_WEAK,
                    });
                } else if let Some(exported) = name.strip_prefix("__crc_") {
                    crc_exports.push(exported.to_string());
                }
            }
        }
        // Exports: the `__crc_<sym>` symbols of a MODVERSIONS kernel, else the
        // `__ksymtab_strings` section (which on newer kernels also holds
        // namespace names), the same sources, in the same order, as libkmod.
        out.exports = if !crc_exports.is_empty() {
            crc_exports
        } else if let Some(s) = named("__ksymtab_strings")? {
            strings(data(s))?.into_iter().map(str::to_string).collect()
        } else {
            Vec::new()
        };
        // `__versions` names not referenced from the symbol table (such as
        // module_layout) are needed too; libkmod appends them.
        if let Some(v) = named("__versions")? {
            let d = data(v);
            if d.len() % MODVERSION64_LEN == 0 {
                let mut seen: std::collections::HashSet<String> =
                    out.needs.iter().map(|n| n.name.clone()).collect();
                for entry in d.chunks_exact(MODVERSION64_LEN) {
                    let name = cstr(&entry[8..], 0)?;
                    if !name.is_empty() && seen.insert(name.to_string()) {
                        out.needs.push(NeededSymbol {
                            name: name.to_string(),
                            weak: false,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Build a minimal module ELF (for tests): `.modinfo`, `__ksymtab_strings`,
/// `.symtab` with the given undefined symbols, `.strtab`, `.shstrtab`.
#[cfg(test)]
pub fn build_test_module(modinfo: &[(&str, &str)], exports: &[&str], needs: &[&str]) -> Vec<u8> {
    let mut modinfo_sec = Vec::new();
    for (k, v) in modinfo {
        modinfo_sec.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    let mut ksym = Vec::new();
    for e in exports {
        ksym.extend_from_slice(e.as_bytes());
        ksym.push(0);
    }
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; SYM64_LEN];
    for n in needs {
        // Test convention: a leading '+' makes a defined symbol (section 1).
        let (n, defined) = match n.strip_prefix('+') {
            Some(d) => (d, true),
            None => (*n, false),
        };
        let off = u32::try_from(strtab.len()).expect("small");
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
        let mut sym = [0u8; SYM64_LEN];
        sym[..4].copy_from_slice(&off.to_le_bytes());
        sym[4] = 1 << 4; // STB_GLOBAL, STT_NOTYPE
        if defined {
            sym[6..8].copy_from_slice(&1u16.to_le_bytes());
        }
        symtab.extend_from_slice(&sym);
    }
    let names = [
        "",
        ".modinfo",
        "__ksymtab_strings",
        ".symtab",
        ".strtab",
        ".shstrtab",
    ];
    let mut shstr = Vec::new();
    let mut name_off = Vec::new();
    for n in names {
        name_off.push(u32::try_from(shstr.len()).expect("small"));
        shstr.extend_from_slice(n.as_bytes());
        shstr.push(0);
    }
    let bodies: [(&[u8], u32, u32); 5] = [
        (&modinfo_sec, 1, 0),
        (&ksym, 1, 0),
        (&symtab, SHT_SYMTAB, 4),
        (&strtab, 3, 0),
        (&shstr, 3, 0),
    ];
    let mut file = vec![0u8; EHDR64_LEN];
    let mut placed = Vec::new();
    for (body, _, _) in &bodies {
        placed.push(file.len());
        file.extend_from_slice(body);
    }
    while !file.len().is_multiple_of(8) {
        file.push(0);
    }
    let shoff = file.len();
    file.extend_from_slice(&[0u8; SHDR64_LEN]);
    for (i, (body, kind, link)) in bodies.iter().enumerate() {
        let mut sh = [0u8; SHDR64_LEN];
        sh[..4].copy_from_slice(&name_off[i + 1].to_le_bytes());
        sh[4..8].copy_from_slice(&kind.to_le_bytes());
        sh[24..32].copy_from_slice(&(placed[i] as u64).to_le_bytes());
        sh[32..40].copy_from_slice(&(body.len() as u64).to_le_bytes());
        sh[40..44].copy_from_slice(&link.to_le_bytes());
        file.extend_from_slice(&sh);
    }
    file[..4].copy_from_slice(ELF_MAGIC);
    file[EI_CLASS] = ELFCLASS64;
    file[EI_DATA] = ELFDATA2LSB;
    file[6] = 1;
    file[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    file[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    file[E_SHOFF..E_SHOFF + 8].copy_from_slice(&(shoff as u64).to_le_bytes());
    file[E_SHENTSIZE..E_SHENTSIZE + 2].copy_from_slice(&(SHDR64_LEN as u16).to_le_bytes());
    file[E_SHNUM..E_SHNUM + 2].copy_from_slice(&6u16.to_le_bytes());
    file[E_SHSTRNDX..E_SHSTRNDX + 2].copy_from_slice(&5u16.to_le_bytes());
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_generated_module() {
        let b = build_test_module(
            &[
                ("alias", "pci:v1AF4d*"),
                ("depends", "virtio"),
                ("softdep", "pre: crc32c"),
                ("name", "virtio_blk"),
            ],
            &["virtblk_thing", "other"],
            &["virtio_get", "printk"],
        );
        let m = ModuleElf::parse(&b).expect("parse");
        assert_eq!(
            m.modinfo[0],
            ("alias".to_string(), "pci:v1AF4d*".to_string())
        );
        assert_eq!(m.modinfo.len(), 4);
        assert_eq!(m.exports, vec!["virtblk_thing", "other"]);
        let needs: Vec<&str> = m.needs.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(needs, vec!["virtio_get", "printk"]);
    }

    #[test]
    fn crc_symbols_take_precedence_over_ksymtab_strings() {
        // A MODVERSIONS module: exports come from __crc_ symbols, so the
        // namespace string in __ksymtab_strings is not taken for a symbol.
        let b = build_test_module(
            &[],
            &["real_fn", "USB_STORAGE"],
            &["+__crc_real_fn", "printk"],
        );
        let m = ModuleElf::parse(&b).expect("parse");
        assert_eq!(m.exports, vec!["real_fn"]);
        assert_eq!(
            m.needs,
            vec![NeededSymbol {
                name: "printk".into(),
                weak: false
            }]
        );
    }

    #[test]
    fn rejects_bad_input_table() {
        let good = build_test_module(&[], &[], &[]);
        let mut not_elf = good.clone();
        not_elf[0] = 0;
        let mut elf32 = good.clone();
        elf32[EI_CLASS] = 1;
        let mut big_shoff = good.clone();
        big_shoff[E_SHOFF..E_SHOFF + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let truncated = good[..good.len() - 10].to_vec();
        for (name, b) in [
            ("magic", not_elf),
            ("class", elf32),
            ("shoff", big_shoff),
            ("truncated", truncated),
        ] {
            assert!(ModuleElf::parse(&b).is_err(), "{name}");
        }
        assert!(ModuleElf::parse(&good).is_ok());
    }
}
