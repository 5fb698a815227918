//! Module names and alias normalisation, as libkmod defines them: the name
//! is the file name up to its first `.`, with `-` turned into `_`.

/// File name extensions of kernel modules (uncompressed and compressed).
pub const MODULE_EXTS: &[&str] = &[".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// Whether `path` names a kernel module file.
pub fn is_module_path(path: &str) -> bool {
    MODULE_EXTS.iter().any(|e| path.ends_with(e))
}

/// The module name of a path (`kernel/fs/ext4/ext4.ko.xz` -> `ext4`,
/// `snd-hda-intel.ko` -> `snd_hda_intel`).
pub fn modname(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split('.').next().unwrap_or(base);
    normalize_name(stem)
}

/// `-` to `_`, as the kernel compares module names.
pub fn normalize_name(name: &str) -> String {
    name.replace('-', "_")
}

/// `path` without its compression suffix (`x.ko.xz` -> `x.ko`), the form
/// modules.order and modules.builtin use.
pub fn uncompressed_path(path: &str) -> &str {
    for ext in [".xz", ".zst", ".gz"] {
        if let Some(p) = path.strip_suffix(ext)
            && p.ends_with(".ko")
        {
            return p;
        }
    }
    path
}

/// Normalise an alias for the binary index: `-` becomes `_` except inside a
/// `[...]` range; an unmatched bracket makes the alias unusable (`None`).
pub fn normalize_alias(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut in_range = false;
    for c in alias.chars() {
        match c {
            '[' if !in_range => in_range = true,
            ']' if in_range => in_range = false,
            ']' => return None,
            '-' if !in_range => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    if in_range { None } else { Some(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modname_table() {
        let cases = [
            ("kernel/fs/ext4/ext4.ko", "ext4"),
            ("kernel/sound/snd-hda-intel.ko.xz", "snd_hda_intel"),
            ("a/b/nvme-core.ko.zst", "nvme_core"),
            ("x.ko", "x"),
        ];
        for (p, want) in cases {
            assert_eq!(modname(p), want, "{p}");
        }
    }

    #[test]
    fn uncompressed_table() {
        let cases = [
            ("a/x.ko.xz", "a/x.ko"),
            ("a/x.ko", "a/x.ko"),
            ("a/x.ko.zst", "a/x.ko"),
            ("a/x.xz", "a/x.xz"),
        ];
        for (p, want) in cases {
            assert_eq!(uncompressed_path(p), want, "{p}");
        }
    }

    #[test]
    fn alias_table() {
        let cases = [
            (
                "pci:v00001AF4d*sv*sd*bc*sc*i*",
                Some("pci:v00001AF4d*sv*sd*bc*sc*i*"),
            ),
            ("fs-ext4", Some("fs_ext4")),
            ("char-major-10-[0-9]-x", Some("char_major_10_[0-9]_x")),
            ("bad[range", None),
            ("bad]x", None),
        ];
        for (a, want) in cases {
            assert_eq!(normalize_alias(a).as_deref(), want, "{a}");
        }
    }
}
