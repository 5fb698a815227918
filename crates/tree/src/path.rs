//! Path normalisation for tree keys.

use thiserror::Error;

/// Why a path cannot be a tree key.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PathError {
    #[error("path {0:?} escapes the root with '..'")]
    Escapes(String),
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    #[error("path component in {0:?} is longer than 255 bytes")]
    TooLong(String),
}

/// Maximum length of one path component (ext4, tar and FAT long names all
/// stop at 255 bytes).
pub const MAX_NAME_LEN: usize = 255;

/// Normalise `p` into a tree key: absolute, no `.`/`..`/empty components, no
/// trailing slash. Relative paths (as found in tar archives, `./usr/bin`) are
/// taken relative to the root.
pub fn normalize(p: &str) -> Result<String, PathError> {
    if p.contains('\0') {
        return Err(PathError::Nul(p.to_string()));
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes(p.to_string()));
                }
            }
            c => {
                if c.len() > MAX_NAME_LEN {
                    return Err(PathError::TooLong(p.to_string()));
                }
                parts.push(c)
            }
        }
    }
    if parts.is_empty() {
        return Ok("/".to_string());
    }
    let mut out = String::with_capacity(p.len() + 1);
    for c in parts {
        out.push('/');
        out.push_str(c);
    }
    Ok(out)
}

/// The parent of a normalised key (`/` for top-level entries, `None` for `/`).
pub fn parent(key: &str) -> Option<&str> {
    if key == "/" {
        return None;
    }
    match key.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&key[..i]),
        None => None,
    }
}

/// The last component of a normalised key (`""` for `/`).
pub fn file_name(key: &str) -> &str {
    match key.rfind('/') {
        Some(i) => &key[i + 1..],
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("/", Ok("/")),
            ("", Ok("/")),
            ("./", Ok("/")),
            ("./usr/bin/", Ok("/usr/bin")),
            ("usr//lib/./x", Ok("/usr/lib/x")),
            ("/usr/lib/../bin", Ok("/usr/bin")),
            ("../etc", Err(())),
            ("/a/../../etc", Err(())),
            ("a\0b", Err(())),
        ];
        for (input, want) in cases {
            let got = normalize(input);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{input:?}"),
                Err(()) => assert!(got.is_err(), "{input:?} should fail"),
            }
        }
    }

    #[test]
    fn long_component_rejected() {
        let long = format!("/usr/{}", "x".repeat(256));
        assert!(matches!(normalize(&long), Err(PathError::TooLong(_))));
        assert!(normalize(&format!("/usr/{}", "x".repeat(255))).is_ok());
    }

    #[test]
    fn parent_and_name_table() {
        let cases = [
            ("/", None, ""),
            ("/usr", Some("/"), "usr"),
            ("/usr/bin/ls", Some("/usr/bin"), "ls"),
        ];
        for (key, p, n) in cases {
            assert_eq!(parent(key), p, "{key}");
            assert_eq!(file_name(key), n, "{key}");
        }
    }
}
