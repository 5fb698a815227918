//! ldconfig's configuration file (glibc elf/ldconfig.c `parse_conf`), read
//! from a tree: one directory a line, `#` starts a comment, `include`
//! followed by glob patterns (blank-separated; relative ones are taken
//! relative to the including file's directory) reads more files, in the
//! sorted order glob returns them, and `hwcap` lines are ignored.

use basalt_tree::{Tree, normalize, parent};
use basalt_treeexec::treefs;

use crate::error::{LdCacheError, Result};

/// A directory named by the configuration, as written (trailing blanks and
/// slashes removed, as ldconfig's `add_dir_1` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfDir {
    pub path: String,
    /// `file:line` it came from.
    pub from: String,
}

/// Include nesting beyond this is a loop (ldconfig itself would recurse
/// until it crashes).
const MAX_INCLUDE_DEPTH: usize = 16;

/// C `isspace` in the C locale.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t')
}

/// The directories `conf` names, in order, following includes. A missing
/// or unreadable file contributes nothing, as with ldconfig.
pub fn directories(tree: &Tree, conf: &str) -> Result<Vec<ConfDir>> {
    let mut out = Vec::new();
    parse(tree, conf, 0, &mut out)?;
    Ok(out)
}

fn parse(tree: &Tree, file: &str, depth: usize, out: &mut Vec<ConfDir>) -> Result<()> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(LdCacheError::Unsupported {
            path: file.to_string(),
            why: format!("includes nest deeper than {MAX_INCLUDE_DEPTH} (a loop?)"),
        });
    }
    let Ok(bytes) = treefs::read_file(tree, file) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&bytes);
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.split('#').next().unwrap_or_default();
        let cp = line.trim_start_matches(is_space);
        if cp.is_empty() {
            continue;
        }
        let from = format!("{file}:{}", n + 1);
        if let Some(rest) = cp.strip_prefix("include")
            && rest.starts_with(is_blank)
        {
            for pat in rest[1..].split(is_blank).filter(|w| !w.is_empty()) {
                let pat = if pat.starts_with('/') {
                    pat.to_string()
                } else {
                    format!("{}/{pat}", parent(file).unwrap_or("/"))
                };
                for f in glob(tree, &pat) {
                    parse(tree, &f, depth + 1, out)?;
                }
            }
        } else if cp.len() > 5
            && cp.is_char_boundary(5)
            && cp[..5].eq_ignore_ascii_case("hwcap")
            && cp[5..].starts_with(is_blank)
        {
            // "hwcap directive ignored".
        } else {
            let path = cp.trim_end_matches(is_space).trim_end_matches('/');
            if !path.is_empty() {
                out.push(ConfDir {
                    path: path.to_string(),
                    from,
                });
            }
        }
    }
    Ok(())
}

/// `fnmatch` without flags but with a leading `.` only matched literally
/// (glob's default): `*`, `?`, `[...]` with `!`/`^` and ranges, `\` escapes.
pub fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    match_from(pat, name)
}

fn match_from(pat: &[u8], name: &[u8]) -> bool {
    let Some((&p, prest)) = pat.split_first() else {
        return name.is_empty();
    };
    match p {
        b'*' => (0..=name.len()).any(|i| match_from(prest, &name[i..])),
        b'?' => !name.is_empty() && match_from(prest, &name[1..]),
        b'[' => match (name.first(), class(prest)) {
            (Some(&c), Some((set, neg, after))) => {
                set.contains(c) != neg && match_from(after, &name[1..])
            }
            (Some(&c), None) => c == b'[' && match_from(prest, &name[1..]),
            (None, _) => false,
        },
        b'\\' if !prest.is_empty() => {
            name.first() == Some(&prest[0]) && match_from(&prest[1..], &name[1..])
        }
        _ => name.first() == Some(&p) && match_from(prest, &name[1..]),
    }
}

struct Set(Vec<(u8, u8)>);
impl Set {
    fn contains(&self, c: u8) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
    }
}

/// A bracket expression after its `[`: the set, negation and the rest of
/// the pattern; None when it is not closed.
fn class(p: &[u8]) -> Option<(Set, bool, &[u8])> {
    let (neg, mut i) = match p.first() {
        Some(b'!' | b'^') => (true, 1),
        _ => (false, 0),
    };
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == b']' && !first {
            return Some((Set(ranges), neg, &p[i + 1..]));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            ranges.push((c, p[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths in `tree` matching the absolute `pattern`, sorted by bytes
/// (glob in the C locale). Directories on the way are followed through
/// symlinks; the matches themselves exist (as links or not).
pub fn glob(tree: &Tree, pattern: &str) -> Vec<String> {
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let mut cur = vec![String::from("/")];
    for comp in comps {
        let mut next = Vec::new();
        for dir in &cur {
            let join = |name: &str| {
                if dir == "/" {
                    format!("/{name}")
                } else {
                    format!("{dir}/{name}")
                }
            };
            if has_magic(comp) {
                let Ok(canon) = treefs::resolve(tree, dir) else {
                    continue;
                };
                let prefix = if canon == "/" {
                    String::from("/")
                } else {
                    format!("{canon}/")
                };
                for (key, _) in tree.descendants(&canon) {
                    let Some(name) = key.strip_prefix(&prefix) else {
                        continue;
                    };
                    if !name.is_empty()
                        && !name.contains('/')
                        && fnmatch(comp.as_bytes(), name.as_bytes())
                    {
                        next.push(join(name));
                    }
                }
            } else {
                next.push(join(comp));
            }
        }
        cur = next;
    }
    let mut out: Vec<String> = cur.into_iter().filter(|p| exists(tree, p)).collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `path` names an entry (the last component is not followed).
fn exists(tree: &Tree, path: &str) -> bool {
    let Ok(path) = normalize(path) else {
        return false;
    };
    let Some(dir) = parent(&path) else {
        return tree.contains("/");
    };
    let name = basalt_tree::file_name(&path);
    match treefs::resolve(tree, dir) {
        Ok(canon) => {
            let key = if canon == "/" {
                format!("/{name}")
            } else {
                format!("{canon}/{name}")
            };
            tree.contains(&key)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::{Content, Entry};

    fn file(t: &mut Tree, p: &str, body: &str) {
        t.insert_p(
            p,
            Entry::file(0o644, Content::from_bytes(body.as_bytes().to_vec())),
        )
        .unwrap();
    }

    #[test]
    fn matches_like_fnmatch() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.conf", "libc.conf", true),
            ("*.conf", "libc.conf.bak", false),
            ("*.conf", ".hidden.conf", false),
            (".*.conf", ".hidden.conf", true),
            ("?.conf", "a.conf", true),
            ("[a-c]*.conf", "b1.conf", true),
            ("[!a-c]*.conf", "b1.conf", false),
            ("[]x].conf", "].conf", true),
            ("\\*.conf", "*.conf", true),
            ("\\*.conf", "a.conf", false),
            ("[ab", "[ab", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(fnmatch(p.as_bytes(), n.as_bytes()), *want, "{p} vs {n}");
        }
    }

    #[test]
    fn parses_lines_and_includes() {
        let mut t = Tree::new();
        file(
            &mut t,
            "/etc/ld.so.conf",
            "include /etc/ld.so.conf.d/*.conf\n\n  # comment\n/opt/a/lib//  \t\nhwcap 0 nosegneg\n\
             include\trel/*.conf   /etc/none/*.conf\n/opt/b#trailing\ninclude\n/last",
        );
        file(&mut t, "/etc/ld.so.conf.d/b.conf", "/usr/local/lib\n");
        file(&mut t, "/etc/ld.so.conf.d/a.conf", "/x/y\n#only comment\n");
        file(&mut t, "/etc/ld.so.conf.d/.h.conf", "/hidden\n");
        file(&mut t, "/etc/ld.so.conf.d/c.conf.off", "/off\n");
        file(&mut t, "/etc/rel/r.conf", "/rel\n");
        let got: Vec<String> = directories(&t, "/etc/ld.so.conf")
            .unwrap()
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(
            got,
            [
                "/x/y",
                "/usr/local/lib",
                "/opt/a/lib",
                "/rel",
                "/opt/b",
                "include",
                "/last"
            ]
        );
        assert!(directories(&t, "/etc/missing.conf").unwrap().is_empty());
    }

    #[test]
    fn include_loop_is_an_error() {
        let mut t = Tree::new();
        file(&mut t, "/etc/ld.so.conf", "include /etc/ld.so.conf\n");
        let e = directories(&t, "/etc/ld.so.conf").unwrap_err().to_string();
        assert!(e.contains("nest deeper"), "{e}");
    }
}
