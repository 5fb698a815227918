//! A small location-tracking JSON scanner: maps config paths such as
//! `storage.files[3].path` to the line and column where they appear, so that
//! semantic errors found after typed parsing can point back into the text.
//!
//! It only records positions; syntax errors are reported by serde_json, so the
//! scanner simply stops at the first thing it does not understand.

use std::collections::HashMap;

/// Where a path appears: the key (for object members) and the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub key: Option<(usize, usize)>,
    pub value: (usize, usize),
    /// The value is the literal `null`.
    pub null: bool,
}

/// Path → location for every value in a JSON document.
#[derive(Debug, Default)]
pub struct LocationMap {
    map: HashMap<String, Loc>,
    root_object: bool,
}

impl LocationMap {
    pub fn build(text: &str) -> Self {
        let mut s = Scanner {
            chars: text.as_bytes(),
            pos: 0,
            line: 1,
            col: 1,
            map: HashMap::new(),
        };
        s.skip_ws();
        let root_object = s.peek() == Some('{');
        let _ = s.value(String::new(), None);
        LocationMap {
            map: s.map,
            root_object,
        }
    }

    /// Whether `path` appears with a non-null value.
    pub fn contains(&self, path: &str) -> bool {
        self.map.get(path).is_some_and(|l| !l.null)
    }

    /// Whether the document is a JSON object.
    pub fn root_is_object(&self) -> bool {
        self.root_object
    }

    /// Location of the value at `path`, falling back to the closest ancestor.
    pub fn value_pos(&self, path: &str) -> (usize, usize) {
        let mut p = path.to_string();
        loop {
            if let Some(l) = self.map.get(&p) {
                return l.value;
            }
            match parent(&p) {
                Some(q) => p = q,
                None => return (1, 1),
            }
        }
    }

    /// Location of the key at `path` (or its value, or the nearest ancestor).
    pub fn key_pos(&self, path: &str) -> (usize, usize) {
        match self.map.get(path) {
            Some(Loc { key: Some(k), .. }) => *k,
            _ => self.value_pos(path),
        }
    }
}

/// `a.b[3].c` → `a.b[3]` → `a.b` → `a` → ``.
fn parent(p: &str) -> Option<String> {
    if p.is_empty() {
        return None;
    }
    let cut = p.rfind(['.', '[']).unwrap_or(0);
    Some(p[..cut].to_string())
}

/// Scans bytes; columns count characters (UTF-8 continuation bytes are skipped).
struct Scanner<'a> {
    chars: &'a [u8],
    pos: usize,
    line: usize,
    col: usize,
    map: HashMap<String, Loc>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|b| char::from(*b))
    }

    fn bump(&mut self) -> Option<char> {
        let b = *self.chars.get(self.pos)?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            self.col += 1;
        }
        Some(char::from(b))
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    fn value(&mut self, path: String, key: Option<(usize, usize)>) -> Option<()> {
        let here = (self.line, self.col);
        let null = self.chars.get(self.pos..self.pos + 4) == Some(&b"null"[..]);
        self.map.insert(
            path.clone(),
            Loc {
                key,
                value: here,
                null,
            },
        );
        match self.peek()? {
            '{' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == '}' {
                    self.bump();
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    let kpos = (self.line, self.col);
                    let k = self.string()?;
                    self.skip_ws();
                    if self.bump()? != ':' {
                        return None;
                    }
                    self.skip_ws();
                    let child = if path.is_empty() {
                        k
                    } else {
                        format!("{path}.{k}")
                    };
                    self.value(child, Some(kpos))?;
                    self.skip_ws();
                    match self.bump()? {
                        ',' => continue,
                        '}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            '[' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == ']' {
                    self.bump();
                    return Some(());
                }
                let mut i = 0usize;
                loop {
                    self.skip_ws();
                    self.value(format!("{path}[{i}]"), None)?;
                    i += 1;
                    self.skip_ws();
                    match self.bump()? {
                        ',' => continue,
                        ']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            '"' => self.string().map(|_| ()),
            _ => {
                // number, true, false, null
                while let Some(c) = self.peek() {
                    if matches!(c, ',' | '}' | ']' | ' ' | '\t' | '\n' | '\r') {
                        break;
                    }
                    self.bump();
                }
                Some(())
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.bump()? != '"' {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy a run of plain bytes at once.
            let start = self.pos;
            while let Some(&b) = self.chars.get(self.pos) {
                if b == b'"' || b == b'\\' || b == b'\n' {
                    break;
                }
                if b & 0xC0 != 0x80 {
                    self.col += 1;
                }
                self.pos += 1;
            }
            out.extend_from_slice(&self.chars[start..self.pos]);
            match self.bump()? {
                '"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                '\\' => {
                    let e = self.bump()?;
                    match e {
                        'n' => out.push(b'\n'),
                        't' => out.push(b'\t'),
                        'r' => out.push(b'\r'),
                        'b' => out.push(8),
                        'f' => out.push(12),
                        'u' => {
                            let mut v = 0u32;
                            for _ in 0..4 {
                                v = v * 16 + self.bump()?.to_digit(16)?;
                            }
                            let c = char::from_u32(v).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(u8::try_from(u32::from(other)).unwrap_or(b'?')),
                    }
                }
                // A raw newline inside a string is invalid JSON; serde_json reports it.
                _ => return None,
            }
        }
    }
}

/// Convert a serde_ignored style path (`$.storage.files.0.foo`) into ours
/// (`storage.files[0].foo`).
pub fn from_dollar_path(p: &str) -> String {
    let mut out = String::new();
    for seg in p
        .trim_start_matches('$')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let text = "{\n  \"a\": {\"b\": [1, {\"c\": \"x\\\"y\"}]},\n  \"d\": true\n}";
        let m = LocationMap::build(text);
        let cases = [
            ("a", (2, 8)),
            ("a.b", (2, 14)),
            ("a.b[0]", (2, 15)),
            ("a.b[1]", (2, 18)),
            ("a.b[1].c", (2, 24)),
            ("d", (3, 8)),
            ("a.b[1].zz", (2, 18)),
            ("nope", (1, 1)),
        ];
        for (p, want) in cases {
            assert_eq!(m.value_pos(p), want, "{p}");
        }
        assert_eq!(m.key_pos("d"), (3, 3));
    }

    #[test]
    fn dollar_paths() {
        for (i, o) in [
            ("$.storage.files.0.foo", "storage.files[0].foo"),
            ("$.x", "x"),
            ("$", ""),
        ] {
            assert_eq!(from_dollar_path(i), o);
        }
    }
}
