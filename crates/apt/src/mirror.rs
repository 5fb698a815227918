//! Default mirror discovery from the host's apt configuration.
//!
//! Order: `sources.list.d/*.sources` (deb822, files in sorted name order), then
//! `sources.list`, then `sources.list.d/*.list` (one-line format, sorted). The first
//! entry that qualifies wins; its first qualifying URI is the mirror.
//!
//! An entry qualifies when all of these hold:
//! - it is a binary entry (`Types:` contains `deb`, or the line starts with `deb`) and is
//!   not disabled (`Enabled: no`);
//! - at least one of its suites does not end in `-security`, `-updates`, `-backports` or
//!   `-proposed-updates` (those are pockets, not the release itself);
//! - it is Debian's main archive: its `Signed-By` names a keyring file whose name starts
//!   with `debian-archive-` and contains no `security`, or (whatever `Signed-By` says) the
//!   URI's path ends in `/debian`. URIs whose path ends in `/debian-security` never qualify;
//! - the URI scheme is one this crate can fetch (`http`, `https`, `file`).
//!
//! No host name is built in: the mirror always comes from the host (or the user).

use std::path::{Path, PathBuf};

use crate::deb822;
use crate::error::{Error, Result};

/// A discovered mirror and where it was found (`file:line`), for log messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub url: String,
    pub found_in: String,
}

/// Finds the default Debian mirror in the apt configuration rooted at `etc_apt`
/// (normally `/etc/apt`).
pub fn discover(etc_apt: &Path) -> Result<Mirror> {
    let list_d = etc_apt.join("sources.list.d");
    for path in sorted_files(&list_d, ".sources")? {
        let text = read(&path)?;
        if let Some(m) = from_deb822(&text, &path.display().to_string())? {
            return Ok(m);
        }
    }
    let main_list = etc_apt.join("sources.list");
    let mut one_line = Vec::new();
    if main_list.is_file() {
        one_line.push(main_list);
    }
    one_line.extend(sorted_files(&list_d, ".list")?);
    for path in one_line {
        let text = read(&path)?;
        if let Some(m) = from_one_line(&text, &path.display().to_string()) {
            return Ok(m);
        }
    }
    Err(Error::NoMirror {
        etc_apt: etc_apt.to_path_buf(),
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("reading apt source list", path, e))
}

fn sorted_files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing apt sources directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing apt sources directory", dir, e))?;
        let path = entry.path();
        let name_ok = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix));
        if name_ok && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

const POCKET_SUFFIXES: [&str; 4] = ["-security", "-updates", "-backports", "-proposed-updates"];

fn is_release_suite(suite: &str) -> bool {
    !POCKET_SUFFIXES.iter().any(|s| suite.ends_with(s))
}

fn supported_scheme(uri: &str) -> bool {
    ["http://", "https://", "file://"]
        .iter()
        .any(|s| uri.starts_with(s))
}

/// The URI's path without trailing slashes ("http://h/debian/" -> "/debian").
fn uri_path(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.trim_end_matches('/')
}

fn is_debian_archive(uri: &str, signed_by: Option<&str>) -> bool {
    let path = uri_path(uri);
    if path.ends_with("/debian-security") {
        return false;
    }
    if path.ends_with("/debian") {
        return true;
    }
    let Some(signed_by) = signed_by else {
        return false;
    };
    // Signed-By may also hold an inline key block; only a file name counts here.
    if signed_by.contains('\n') {
        return false;
    }
    signed_by.split([' ', ',']).any(|p| {
        let name = Path::new(p)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        name.starts_with("debian-archive-") && !name.contains("security")
    })
}

fn normalise(uri: &str) -> String {
    uri.trim_end_matches('/').to_string()
}

fn from_deb822(text: &str, file: &str) -> Result<Option<Mirror>> {
    for para in deb822::parse(text, file)? {
        let types = para.get("Types").unwrap_or("");
        if !types.split_whitespace().any(|t| t == "deb") {
            continue;
        }
        if para
            .get("Enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let suites = para.get("Suites").unwrap_or("");
        if !suites.split_whitespace().any(is_release_suite) {
            continue;
        }
        let signed_by = para.get("Signed-By");
        let Some(uris) = para.field("URIs") else {
            continue;
        };
        for uri in uris.value.split_whitespace() {
            if supported_scheme(uri) && is_debian_archive(uri, signed_by) {
                return Ok(Some(Mirror {
                    url: normalise(uri),
                    found_in: format!("{file}:{}", uris.line),
                }));
            }
        }
    }
    Ok(None)
}

fn from_one_line(text: &str, file: &str) -> Option<Mirror> {
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let mut toks = line.split_whitespace();
        if toks.next() != Some("deb") {
            continue;
        }
        let mut signed_by = None;
        let mut tok = toks.next();
        if let Some(t) = tok
            && t.starts_with('[')
        {
            let mut opts = String::from(t);
            while !opts.ends_with(']') {
                match toks.next() {
                    Some(next) => {
                        opts.push(' ');
                        opts.push_str(next);
                    }
                    None => break,
                }
            }
            for opt in opts.trim_matches(['[', ']']).split_whitespace() {
                if let Some(v) = opt.strip_prefix("signed-by=") {
                    signed_by = Some(v.to_string());
                }
            }
            tok = toks.next();
        }
        let (Some(uri), Some(suite)) = (tok, toks.next()) else {
            continue;
        };
        if is_release_suite(suite)
            && supported_scheme(uri)
            && is_debian_archive(uri, signed_by.as_deref())
        {
            return Some(Mirror {
                url: normalise(uri),
                found_in: format!("{file}:{}", idx + 1),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etc(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        dir
    }

    const KR: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

    #[test]
    fn discovery_table() {
        let security = format!(
            "Types: deb\nURIs: http://sec.invalid/debian-security\nSuites: trixie-security\n\
             Components: main\nSigned-By: {KR}\n\n"
        );
        let main = format!(
            "Types: deb\nURIs: http://mirror.invalid/debian/\nSuites: trixie trixie-updates\n\
             Components: main\nSigned-By: {KR}\n"
        );
        let third = "Types: deb\nURIs: https://vendor.invalid/apt\nSuites: stable\n\
                     Signed-By: /usr/share/keyrings/vendor.gpg\n\n";
        let src_only = "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: trixie\n\n";
        let mirror_in_keyring_only = format!(
            "Types: deb\nURIs: http://m.invalid/pub/deb\nSuites: trixie\nSigned-By: {KR}\n"
        );
        let disabled =
            "Types: deb\nEnabled: no\nURIs: http://off.invalid/debian\nSuites: trixie\n\n";
        type Case<'a> = (Vec<(&'a str, String)>, Option<&'a str>);
        let table: Vec<Case> = vec![
            (
                vec![(
                    "sources.list.d/debian.sources",
                    format!("{security}{main}"),
                )],
                Some("http://mirror.invalid/debian"),
            ),
            (
                vec![
                    ("sources.list.d/00-vendor.sources", format!("{third}{src_only}{disabled}")),
                    ("sources.list.d/10-debian.sources", main.clone()),
                ],
                Some("http://mirror.invalid/debian"),
            ),
            (
                vec![("sources.list.d/a.sources", mirror_in_keyring_only.clone())],
                Some("http://m.invalid/pub/deb"),
            ),
            (
                vec![(
                    "sources.list",
                    "# c\ndeb http://sec.invalid/debian-security trixie-security main\n\
                     deb [arch=amd64 signed-by=/etc/apt/vendor.gpg] https://v.invalid/apt stable main\n\
                     deb [ signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] \
                     http://one.invalid/mirror trixie main\n"
                        .to_string(),
                )],
                Some("http://one.invalid/mirror"),
            ),
            (
                vec![
                    ("sources.list.d/v.sources", third.to_string()),
                    ("sources.list", "deb file:///srv/debian trixie main\n".to_string()),
                ],
                Some("file:///srv/debian"),
            ),
            (
                vec![("sources.list.d/x.list", "deb http://l.invalid/debian trixie main\n".into())],
                Some("http://l.invalid/debian"),
            ),
            (vec![("sources.list.d/v.sources", third.to_string())], None),
            (vec![], None),
        ];
        for (files, want) in table {
            let refs: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
            let dir = etc(&refs);
            match (discover(dir.path()), want) {
                (Ok(m), Some(w)) => assert_eq!(m.url, w, "{files:?}"),
                (Err(Error::NoMirror { .. }), None) => {}
                (got, want) => panic!("{files:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn no_mirror_error_tells_how_to_set_one() {
        let dir = etc(&[]);
        let msg = discover(dir.path()).unwrap_err().to_string();
        for needle in ["mirror:", "--mirror", "file://"] {
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn found_in_names_file_and_line() {
        let dir = etc(&[(
            "sources.list.d/d.sources",
            "Types: deb\n# x\nURIs: http://mirror.invalid/debian\nSuites: trixie\n",
        )]);
        let m = discover(dir.path()).unwrap();
        assert!(m.found_in.ends_with("d.sources:3"), "{}", m.found_in);
    }
}
