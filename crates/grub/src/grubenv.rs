//! GRUB environment block (`grubenv`): a fixed-size text file that GRUB's
//! `load_env`/`save_env` read and rewrite in place.
//!
//! Format (GRUB `grub-core/lib/envblk.c`, `include/grub/lib/envblk.h`): the
//! signature line `# GRUB Environment Block\n`, then `name=value\n` lines, then
//! `#` padding up to the block size (1024 bytes as created by `grub-editenv`).
//! In values a backslash and a newline are written with a backslash in front;
//! names are written as they are. Lines starting with `#` are comments.

use crate::error::{GrubError, Result};

/// Signature that starts every environment block.
pub const ENV_SIGNATURE: &[u8] = b"# GRUB Environment Block\n";
/// Size of the block `grub-editenv create` writes (two 512-byte sectors).
pub const ENV_BLOCK_SIZE: usize = 1024;
/// Padding byte after the last variable.
const PAD: u8 = b'#';

/// An ordered list of variables; order is kept as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvBlock {
    vars: Vec<(String, String)>,
}

impl EnvBlock {
    pub fn new() -> EnvBlock {
        EnvBlock::default()
    }

    /// Value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` (replacing in place if present, else appending). Names must
    /// be GRUB-script identifiers (`[A-Za-z_][A-Za-z0-9_]*`) so grub.cfg can
    /// use them; values may not contain NUL.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        check_name(name)?;
        if value.contains('\0') {
            return Err(GrubError::Env(format!(
                "value of {name} contains a NUL byte"
            )));
        }
        match self.vars.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.vars.push((name.to_string(), value.to_string())),
        }
        Ok(())
    }

    /// Removes `name`; returns whether it was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.vars.len();
        self.vars.retain(|(k, _)| k != name);
        before != self.vars.len()
    }

    /// Variables in block order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Serialises to exactly [`ENV_BLOCK_SIZE`] bytes, or errors if the
    /// variables do not fit.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_sized(ENV_BLOCK_SIZE)
    }

    /// Serialises to exactly `size` bytes.
    pub fn to_bytes_sized(&self, size: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(ENV_SIGNATURE);
        for (k, v) in &self.vars {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            for &b in v.as_bytes() {
                if b == b'\\' || b == b'\n' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'\n');
        }
        if out.len() > size {
            return Err(GrubError::Env(format!(
                "variables need {} bytes but the block holds {size}",
                out.len()
            )));
        }
        out.resize(size, PAD);
        Ok(out)
    }

    /// Parses a block. Any size is accepted (GRUB takes the file's size), but
    /// the signature must be present and every non-comment line must be a
    /// well-formed `name=value` line.
    pub fn parse(bytes: &[u8]) -> Result<EnvBlock> {
        let body = bytes.strip_prefix(ENV_SIGNATURE).ok_or_else(|| {
            GrubError::Env("missing \"# GRUB Environment Block\" signature".into())
        })?;
        let mut block = EnvBlock::new();
        let mut i = 0;
        while i < body.len() {
            let line_start = ENV_SIGNATURE.len() + i;
            if body[i] == PAD {
                // Comment or padding: skip to the end of the line (or block).
                match body[i..].iter().position(|&b| b == b'\n') {
                    Some(n) => i += n + 1,
                    None => break,
                }
                continue;
            }
            let eq = body[i..]
                .iter()
                .position(|&b| b == b'=' || b == b'\n')
                .filter(|&n| body[i + n] == b'=')
                .ok_or_else(|| {
                    GrubError::Env(format!(
                        "line at byte {line_start} has no '=' before its end"
                    ))
                })?;
            let name = std::str::from_utf8(&body[i..i + eq])
                .map_err(|_| GrubError::Env(format!("name at byte {line_start} is not UTF-8")))?;
            check_name(name).map_err(|e| GrubError::Env(format!("at byte {line_start}: {e}")))?;
            let mut j = i + eq + 1;
            let mut value = Vec::new();
            loop {
                match body.get(j) {
                    None => {
                        return Err(GrubError::Env(format!(
                            "value of {name} (byte {line_start}) runs to the end of the block without a newline"
                        )));
                    }
                    Some(b'\n') => {
                        j += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let next = body.get(j + 1).ok_or_else(|| {
                            GrubError::Env(format!("value of {name} ends in a lone backslash"))
                        })?;
                        value.push(*next);
                        j += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        j += 1;
                    }
                }
            }
            let value = String::from_utf8(value)
                .map_err(|_| GrubError::Env(format!("value of {name} is not UTF-8")))?;
            block.set(name, &value)?;
            i = j;
        }
        Ok(block)
    }
}

fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(GrubError::Env(format!(
            "variable name {name:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(vars: &[(&str, &str)]) -> EnvBlock {
        let mut b = EnvBlock::new();
        for (k, v) in vars {
            b.set(k, v).unwrap();
        }
        b
    }

    #[test]
    fn writes_exact_layout() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], ""),
            (&[("A", "1")], "A=1\n"),
            (&[("ORDER", "A B"), ("A_OK", "1")], "ORDER=A B\nA_OK=1\n"),
            (&[("x", "a\\b")], "x=a\\\\b\n"),
            (&[("x", "l1\nl2")], "x=l1\\\nl2\n"),
            (&[("x", "")], "x=\n"),
            (&[("x", "a=b#c")], "x=a=b#c\n"),
        ];
        for (vars, want) in cases {
            let bytes = block(vars).to_bytes().unwrap();
            assert_eq!(bytes.len(), ENV_BLOCK_SIZE);
            let mut expect = ENV_SIGNATURE.to_vec();
            expect.extend_from_slice(want.as_bytes());
            expect.resize(ENV_BLOCK_SIZE, b'#');
            assert_eq!(bytes, expect, "{vars:?}");
            assert_eq!(
                EnvBlock::parse(&bytes).unwrap(),
                block(vars),
                "round trip {vars:?}"
            );
        }
    }

    #[test]
    fn parses_comments_and_foreign_sizes() {
        let text = b"# GRUB Environment Block\n# a comment\nk=v\n#####";
        assert_eq!(EnvBlock::parse(text).unwrap(), block(&[("k", "v")]));
        let small = block(&[("k", "v")]).to_bytes_sized(512).unwrap();
        assert_eq!(small.len(), 512);
        assert_eq!(EnvBlock::parse(&small).unwrap().get("k"), Some("v"));
    }

    #[test]
    fn set_replaces_in_place() {
        let mut b = block(&[("A", "1"), ("B", "2")]);
        b.set("A", "3").unwrap();
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![("A", "3"), ("B", "2")]);
        assert!(b.remove("A"));
        assert!(!b.remove("A"));
    }

    #[test]
    fn rejects_bad_input() {
        let cases: &[(&[u8], &str)] = &[
            (b"# GRUB Environment Blok\n", "signature"),
            (b"# GRUB Environment Block\nnoequals\n", "no '='"),
            (b"# GRUB Environment Block\nk=v", "without a newline"),
            (b"# GRUB Environment Block\nk=v\\", "lone backslash"),
            (b"# GRUB Environment Block\n1x=v\n", "not an identifier"),
            (b"# GRUB Environment Block\nk=\xff\n", "not UTF-8"),
        ];
        for (bytes, want) in cases {
            let err = EnvBlock::parse(bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
        assert!(EnvBlock::new().set("a-b", "v").is_err());
        assert!(EnvBlock::new().set("", "v").is_err());
        let big = block(&[("k", &"x".repeat(1000))]);
        assert!(
            big.to_bytes()
                .unwrap_err()
                .to_string()
                .contains("holds 1024")
        );
    }
}
