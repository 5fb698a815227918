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
            chars: text.chars().collect(),
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

struct Scanner {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
    map: HashMap<String, Loc>,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    fn value(&mut self, path: String, key: Option<(usize, usize)>) -> Option<()> {
        let here = (self.line, self.col);
        let null = self.chars.get(self.pos..self.pos + 4) == Some(&['n', 'u', 'l', 'l'][..]);
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
        let mut out = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(out),
                '\\' => {
                    let e = self.bump()?;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'u' => {
                            let mut v = 0u32;
                            for _ in 0..4 {
                                v = v * 16 + self.bump()?.to_digit(16)?;
                            }
                            out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
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
