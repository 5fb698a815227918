//! Checks shared by both config formats: paths, unit names, hashes, URLs,
//! passwd fields and unit file syntax. Each returns a human message on failure.

use crate::plan::{Hash, NETWORK_SUFFIXES, UNIT_SUFFIXES};
use base64::Engine;

/// An absolute, normalised path without `.`/`..` components or NUL bytes.
pub fn abs_path(p: &str) -> Result<String, String> {
    if p.is_empty() {
        return Err("path is empty".into());
    }
    if !p.starts_with('/') {
        return Err(format!("path {p:?} is not absolute"));
    }
    if p.contains('\0') {
        return Err(format!("path {p:?} contains a NUL byte"));
    }
    let mut out = String::new();
    for c in p.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." {
            return Err(format!("path {p:?} contains a {c:?} component"));
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        return Err(format!("path {p:?} names the root directory itself"));
    }
    Ok(out)
}

/// Unit names: a known suffix, no slashes, printable.
pub fn unit_name(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("unit name is empty".into());
    }
    if n.contains('/') || n.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!(
            "unit name {n:?} contains '/', a space or a control character"
        ));
    }
    if n.len() > 255 {
        return Err(format!("unit name {n:?} is longer than 255 bytes"));
    }
    let ok = UNIT_SUFFIXES
        .iter()
        .chain(NETWORK_SUFFIXES)
        .any(|s| n.len() > s.len() && n.ends_with(s));
    if !ok {
        return Err(format!(
            "unit name {n:?} has no valid unit type suffix (.service, .socket, .mount, .timer, .target, .network, ...)"
        ));
    }
    Ok(())
}

pub fn is_network_unit(n: &str) -> bool {
    NETWORK_SUFFIXES.iter().any(|s| n.ends_with(s))
}

/// Drop-in names must end in `.conf` and contain no slash.
pub fn dropin_name(n: &str) -> Result<(), String> {
    if n.contains('/') || n.contains('\0') {
        return Err(format!("drop-in name {n:?} contains '/' or NUL"));
    }
    if !(n.len() > 5 && n.ends_with(".conf")) {
        return Err(format!("drop-in name {n:?} must end in \".conf\""));
    }
    Ok(())
}

/// `sha256-<64 hex>` or `sha512-<128 hex>` (Ignition verification.hash).
pub fn hash(s: &str) -> Result<Hash, String> {
    let (algo, hexs) = s
        .split_once('-')
        .ok_or_else(|| format!("hash {s:?} is not of the form <algorithm>-<hex digest>"))?;
    if algo != "sha256" && algo != "sha512" {
        return Err(format!(
            "hash algorithm {algo:?} is not supported (use sha256 or sha512)"
        ));
    }
    let bytes = hex::decode(hexs).map_err(|_| format!("hash {s:?} digest is not hexadecimal"))?;
    match algo {
        "sha256" => {
            let arr: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("sha256 hash {s:?} must have 64 hex digits"))?;
            Ok(Hash::Sha256(arr))
        }
        "sha512" => {
            if bytes.len() != 64 {
                return Err(format!("sha512 hash {s:?} must have 128 hex digits"));
            }
            Ok(Hash::Sha512(bytes))
        }
        other => Err(format!(
            "hash algorithm {other:?} is not supported (use sha256 or sha512)"
        )),
    }
}

/// The URL schemes Basalt fetches. Others Ignition knows (tftp, s3, gs, arn)
/// are rejected clearly rather than ignored.
pub fn url(u: &str) -> Result<(), String> {
    let (raw, rest) = u
        .split_once(':')
        .ok_or_else(|| format!("URL {u:?} has no scheme"))?;
    let is = |s: &str| raw.eq_ignore_ascii_case(s);
    if is("data") {
        // Percent-decoding cannot fail: only base64 payloads need decoding to validate.
        if split_data_url(u)?.0 {
            decode_data_url(u)?;
        }
        Ok(())
    } else if is("http") || is("https") {
        if !rest.starts_with("//") || rest.len() <= 2 {
            return Err(format!("URL {u:?} has no host"));
        }
        Ok(())
    } else if ["tftp", "s3", "gs", "arn"].into_iter().any(is) {
        Err(format!(
            "URL scheme {:?} is not supported (use data:, http: or https:)",
            raw.to_ascii_lowercase()
        ))
    } else {
        Err(format!(
            "URL {u:?} has an unknown scheme {:?}",
            raw.to_ascii_lowercase()
        ))
    }
}

/// A `data:` URL's parts: whether it is base64, and the (still encoded) data.
fn split_data_url(u: &str) -> Result<(bool, &str), String> {
    let rest = u
        .strip_prefix("data:")
        .ok_or_else(|| format!("{u:?} is not a data: URL"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| "data: URL has no ',' separating media type and data".to_string())?;
    Ok((
        meta.split(';').any(|p| p.eq_ignore_ascii_case("base64")),
        data,
    ))
}

/// Decode an RFC 2397 `data:` URL.
pub fn decode_data_url(u: &str) -> Result<Vec<u8>, String> {
    let (base64, data) = split_data_url(u)?;
    // Borrowed when there is nothing to percent-decode.
    let raw: std::borrow::Cow<[u8]> = percent_encoding::percent_decode_str(data).into();
    if base64 {
        let cleaned: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(&cleaned)
            .map_err(|e| format!("data: URL has invalid base64: {e}"))
    } else {
        Ok(raw.into_owned())
    }
}

/// Fields written into /etc/passwd-style files must not break the format.
pub fn passwd_field(what: &str, v: &str) -> Result<(), String> {
    if v.contains(':') || v.contains('\n') || v.contains('\0') {
        return Err(format!("{what} {v:?} contains ':', a newline or NUL"));
    }
    Ok(())
}

/// User and group names (a conservative subset of what shadow-utils accepts).
pub fn account_name(what: &str, n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err(format!("{what} name is empty"));
    }
    if n.len() > 32 {
        return Err(format!("{what} name {n:?} is longer than 32 characters"));
    }
    let first_ok = n
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if !first_ok || !rest_ok || n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} name {n:?} is not valid (letters, digits, '_', '-', '.'; not all digits)"
        ));
    }
    Ok(())
}

/// Light syntax check of a systemd unit file (systemd.syntax(7)): every
/// non-blank, non-comment line is a `[Section]` header or `Key=value`, and
/// no assignment precedes the first section.
pub fn unit_syntax(contents: &str) -> Result<(), String> {
    let mut in_section = false;
    let mut continued = false;
    for (i, line) in contents.lines().enumerate() {
        let t = line.trim();
        let was_continued = continued;
        continued = t.ends_with('\\');
        if was_continued || t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            if !t.ends_with(']') || t.len() < 3 {
                return Err(format!(
                    "unit line {}: malformed section header {t:?}",
                    i + 1
                ));
            }
            in_section = true;
            continue;
        }
        match t.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() => {
                if !in_section {
                    return Err(format!(
                        "unit line {}: assignment {t:?} outside of any [Section]",
                        i + 1
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "unit line {}: {t:?} is neither a [Section] nor Key=value",
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

/// `WantedBy=`/`RequiredBy=` targets from a unit's [Install] section.
pub fn install_targets(contents: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut in_install = false;
    for line in contents.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_install = t == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            let kind = match k.trim() {
                "WantedBy" => ".wants",
                "RequiredBy" => ".requires",
                "UpheldBy" => ".upholds",
                _ => continue,
            };
            for tgt in v.split_whitespace() {
                out.push((tgt.to_string(), kind));
            }
        }
    }
    out
}

/// systemd-escape --path (systemd.unit(5) "String Escaping for Inclusion in Unit Names").
pub fn escape_path(p: &str) -> String {
    let trimmed = p.trim_matches('/');
    if trimmed.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                out.push(char::from(b))
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    // Collapse repeated slashes into one dash.
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out
}

/// UUID in 8-4-4-4-12 hex form.
pub fn uuid(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, l)| p.len() == l && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a UUID (8-4-4-4-12 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("/etc/x", Ok("/etc/x")),
            ("/etc//x/", Ok("/etc/x")),
            ("etc/x", Err("not absolute")),
            ("/etc/../x", Err("\"..\" component")),
            ("/", Err("root directory")),
            ("", Err("empty")),
        ];
        for (i, want) in cases {
            match (abs_path(i), want) {
                (Ok(g), Ok(w)) => assert_eq!(&g, w),
                (Err(g), Err(w)) => assert!(g.contains(w), "{g}"),
                (g, w) => panic!("{i}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn escapes() {
        for (i, o) in [
            ("/var/lib/data", "var-lib-data"),
            ("/mnt/my disk", "mnt-my\\x20disk"),
            ("/", "-"),
            ("/a-b", "a\\x2db"),
        ] {
            assert_eq!(escape_path(i), o);
        }
    }

    #[test]
    fn hashes_and_urls() {
        assert!(hash(&format!("sha256-{}", "ab".repeat(32))).is_ok());
        assert!(hash(&format!("sha512-{}", "ab".repeat(64))).is_ok());
        assert!(hash("md5-00").unwrap_err().contains("not supported"));
        assert!(hash("sha256-zz").unwrap_err().contains("hexadecimal"));
        assert_eq!(decode_data_url("data:,a%20b").unwrap(), b"a b");
        assert_eq!(decode_data_url("data:;base64,aGk=").unwrap(), b"hi");
        assert_eq!(decode_data_url("data:text/plain,plain").unwrap(), b"plain");
        assert_eq!(decode_data_url("data:,%zz%4").unwrap(), b"%zz%4");
        assert_eq!(
            decode_data_url("data:;BASE64,%61Gk%3D").unwrap(),
            b"hi",
            "percent-encoded base64"
        );
        assert!(
            url("data:;base64,a$b")
                .unwrap_err()
                .contains("invalid base64")
        );
        assert!(url("data:text/plain").unwrap_err().contains("no ','"));
        assert!(url("data:,%zz").is_ok());
        assert!(url("HTTPS://h/x").is_ok());
        assert!(url("S3://b").unwrap_err().contains("scheme \"s3\" is not"));
        assert!(
            url("Ftp://h")
                .unwrap_err()
                .contains("unknown scheme \"ftp\"")
        );
        assert!(url("nocolon").unwrap_err().contains("has no scheme"));
        assert!(url("s3://b/k").unwrap_err().contains("not supported"));
        assert!(url("http://").unwrap_err().contains("no host"));
    }

    #[test]
    fn unit_files() {
        assert!(unit_syntax("[Unit]\nA=b\n# c\n[Install]\nWantedBy=x.target\n").is_ok());
        assert!(unit_syntax("A=b\n").unwrap_err().contains("outside"));
        assert!(
            unit_syntax("[Unit]\ngarbage\n")
                .unwrap_err()
                .contains("neither")
        );
        assert_eq!(
            install_targets("[Install]\nWantedBy=a.target b.target\nRequiredBy=c.target"),
            vec![
                ("a.target".to_string(), ".wants"),
                ("b.target".to_string(), ".wants"),
                ("c.target".to_string(), ".requires")
            ]
        );
    }
}
