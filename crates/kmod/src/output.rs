//! Rendering of depmod's text files and binary indexes from the graph.

use crate::error::KmodError;
use crate::graph::Graph;
use crate::index::IndexBuilder;
use crate::names::{modname, normalize_alias};

const ALIAS_HEADER: &str = "# Aliases extracted from modules themselves.\n";
const SOFTDEP_HEADER: &str = "# Soft dependencies extracted from modules themselves.\n";
const WEAKDEP_HEADER: &str = "# Weak dependencies extracted from modules themselves.\n";
const SYMBOLS_HEADER: &str = "# Aliases for symbols, used by symbol_request().\n";
const DEVNAME_HEADER: &str = "# Device nodes to trigger on-demand module loading.\n";

fn prio(i: usize) -> u32 {
    // Module counts are far below u32::MAX; saturate rather than wrap.
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The modules.dep line of module `i` (without newline).
pub fn dep_line(g: &Graph, i: usize) -> String {
    let mut line = format!("{}:", g.modules[i].relpath);
    for d in g.closure(i) {
        line.push(' ');
        line.push_str(&g.modules[d].relpath);
    }
    line
}

fn modinfo_lines(g: &Graph, key: &str, fmt: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    for m in &g.modules {
        for (k, v) in &m.elf.modinfo {
            if k == key {
                out.push_str(&fmt(&m.name, v));
            }
        }
    }
    out
}

/// `(file name, bytes)` of every output, in a fixed order.
pub fn render_all(
    g: &Graph,
    builtin: Option<&[u8]>,
    builtin_modinfo: Option<&[u8]>,
) -> Result<Vec<(&'static str, Vec<u8>)>, KmodError> {
    let mut files: Vec<(&'static str, Vec<u8>)> = Vec::new();

    let mut dep = String::new();
    let mut dep_bin = IndexBuilder::new();
    for i in 0..g.modules.len() {
        let line = dep_line(g, i);
        dep.push_str(&line);
        dep.push('\n');
        dep_bin.insert(&g.modules[i].name, &line, prio(i))?;
    }
    files.push(("modules.dep", dep.into_bytes()));
    files.push(("modules.dep.bin", dep_bin.to_bytes()?));

    let alias = format!(
        "{ALIAS_HEADER}{}",
        modinfo_lines(g, "alias", |n, v| format!("alias {v} {n}\n"))
    );
    files.push(("modules.alias", alias.into_bytes()));
    let mut alias_bin = IndexBuilder::new();
    for (i, m) in g.modules.iter().enumerate() {
        for (k, v) in &m.elf.modinfo {
            // Aliases with unmatched brackets cannot be matched; depmod skips them too.
            if k == "alias"
                && let Some(a) = normalize_alias(v)
            {
                alias_bin.insert(&a, &m.name, prio(i))?;
            }
        }
    }
    files.push(("modules.alias.bin", alias_bin.to_bytes()?));

    let softdep = format!(
        "{SOFTDEP_HEADER}{}",
        modinfo_lines(g, "softdep", |n, v| format!("softdep {n} {v}\n"))
    );
    files.push(("modules.softdep", softdep.into_bytes()));
    let weakdep = format!(
        "{WEAKDEP_HEADER}{}",
        modinfo_lines(g, "weakdep", |n, v| format!("weakdep {n} {v}\n"))
    );
    files.push(("modules.weakdep", weakdep.into_bytes()));

    let mut syms: Vec<(&String, &usize)> = g.symbols.iter().collect();
    syms.sort();
    let mut symbols = String::from(SYMBOLS_HEADER);
    let mut symbols_bin = IndexBuilder::new();
    for (s, &o) in syms {
        symbols.push_str(&format!("alias symbol:{s} {}\n", g.modules[o].name));
        symbols_bin.insert(&format!("symbol:{s}"), &g.modules[o].name, prio(o))?;
    }
    files.push(("modules.symbols", symbols.into_bytes()));
    files.push(("modules.symbols.bin", symbols_bin.to_bytes()?));

    if let Some(b) = builtin {
        let mut ix = IndexBuilder::new();
        for line in String::from_utf8_lossy(b).lines() {
            // depmod rejects lines not starting with a letter.
            if line.starts_with(|c: char| c.is_ascii_alphabetic()) {
                ix.insert(&modname(line), "", 0)?;
            }
        }
        files.push(("modules.builtin.bin", ix.to_bytes()?));
    }
    if let Some(b) = builtin_modinfo {
        let mut ix = IndexBuilder::new();
        for rec in b.split(|&c| c == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(rec);
            let Some((name_key, value)) = rec.split_once('=') else {
                continue;
            };
            let Some((name, key)) = name_key.split_once('.') else {
                continue;
            };
            if key == "alias"
                && !value.is_empty()
                && let Some(a) = normalize_alias(value)
            {
                ix.insert(&a, name, 0)?;
            }
        }
        if !ix.is_empty() {
            files.push(("modules.builtin.alias.bin", ix.to_bytes()?));
        }
    }

    // depmod writes the header only above the first entry.
    let mut devname = String::new();
    for m in &g.modules {
        let mut dev: Option<&str> = None;
        let mut node: Option<(char, u32, u32)> = None;
        for (k, v) in &m.elf.modinfo {
            if k != "alias" {
                continue;
            }
            if let Some(d) = v.strip_prefix("devname:") {
                dev = Some(d);
            } else if let Some(n) = parse_major_minor(v, "char-major-") {
                node = Some(('c', n.0, n.1));
            } else if let Some(n) = parse_major_minor(v, "block-major-") {
                node = Some(('b', n.0, n.1));
            }
            if dev.is_some() && node.is_some() {
                break;
            }
        }
        if let (Some(d), Some((t, maj, min))) = (dev, node) {
            if devname.is_empty() {
                devname.push_str(DEVNAME_HEADER);
            }
            devname.push_str(&format!("{} {d} {t}{maj}:{min}\n", m.name));
        }
    }
    files.push(("modules.devname", devname.into_bytes()));
    Ok(files)
}

/// `char-major-10-237` -> (10, 237).
fn parse_major_minor(v: &str, prefix: &str) -> Option<(u32, u32)> {
    let rest = v.strip_prefix(prefix)?;
    let (a, b) = rest.split_once('-')?;
    let digits = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    };
    Some((digits(a).parse().ok()?, digits(b).parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_minor_table() {
        let cases = [
            ("char-major-10-237", "char-major-", Some((10, 237))),
            ("block-major-8-0", "block-major-", Some((8, 0))),
            ("char-major-10-x", "char-major-", None),
            ("char-major-10", "char-major-", None),
        ];
        for (v, p, want) in cases {
            assert_eq!(parse_major_minor(v, p), want, "{v}");
        }
    }
}
