//! Generated test fixtures (used by this crate's tests and its oracle
//! test): no binary blobs are committed.

use crate::elf::{
    DT_NULL, DT_SONAME, DT_STRTAB, E_MACHINE, E_TYPE, EI_CLASS, ELF_MAGIC, ELFCLASS64, EM_X86_64,
    ET_DYN, PT_DYNAMIC, PT_LOAD,
};

/// A minimal ELF64 ET_DYN x86-64 file: one PT_LOAD over the file, a
/// PT_DYNAMIC with DT_STRTAB and, if given, DT_SONAME.
pub fn synth_lib(soname: Option<&str>) -> Vec<u8> {
    const VBASE: u64 = 0x1000;
    let strtab: Vec<u8> = [b"\0".as_slice(), soname.unwrap_or("").as_bytes(), b"\0"].concat();
    let ph_off = 64u64;
    let str_off = ph_off + 2 * 56;
    let dyn_off = str_off + strtab.len() as u64;
    let mut dynamic = Vec::new();
    let mut d = |t: u64, v: u64| {
        dynamic.extend_from_slice(&t.to_le_bytes());
        dynamic.extend_from_slice(&v.to_le_bytes());
    };
    d(DT_STRTAB, VBASE + str_off);
    if soname.is_some() {
        d(DT_SONAME, 1);
    }
    d(DT_NULL, 0);
    let total = dyn_off + dynamic.len() as u64;
    let mut f = vec![0u8; 64];
    f[..4].copy_from_slice(ELF_MAGIC);
    f[EI_CLASS] = ELFCLASS64;
    f[5] = 1;
    f[E_TYPE..E_TYPE + 2].copy_from_slice(&ET_DYN.to_le_bytes());
    f[E_MACHINE..E_MACHINE + 2].copy_from_slice(&EM_X86_64.to_le_bytes());
    f[0x20..0x28].copy_from_slice(&ph_off.to_le_bytes());
    f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    f[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
    for (t, off, len) in [
        (PT_LOAD, 0, total),
        (PT_DYNAMIC, dyn_off, dynamic.len() as u64),
    ] {
        let mut p = [0u8; 56];
        p[0..4].copy_from_slice(&t.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[16..24].copy_from_slice(&(VBASE + off).to_le_bytes());
        p[32..40].copy_from_slice(&len.to_le_bytes());
        f.extend_from_slice(&p);
    }
    f.extend_from_slice(&strtab);
    f.extend_from_slice(&dynamic);
    f
}
