//! A small location-tracking JSON scanner: maps config paths such as
//! `storage.files[3].path` to the line and column where they appear, so that
//! semantic errors found after typed parsing can point back into the text.
//!
//! It only records positions; syntax errors are reported by serde_json, so the
//! scanner simply stops at the first thing it does not understand.
//!
//! The map is lazy: building it costs nothing. Positions are only needed when
//! there is something to report, so the full path → location table is made
//! on the first `value_pos`/`key_pos` call. `contains` (asked on every parse)
//! runs a targeted pass instead, which builds no paths outside the ones asked
//! for and records nothing else. Both passes run the same scanner, so they
//! agree on every document, well-formed or not.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

/// Where a path appears: the key (for object members) and the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub key: Option<(usize, usize)>,
    pub value: (usize, usize),
    /// The value is the literal `null`.
    pub null: bool,
}

/// Path → location for every value in a JSON document, computed on demand.
#[derive(Debug, Default)]
pub struct LocationMap<'t> {
    text: &'t str,
    /// Every path, once a position has been asked for.
    full: OnceCell<HashMap<String, Loc>>,
    /// Results of targeted passes (`probe`), by path.
    probed: RefCell<HashMap<String, Option<Loc>>>,
}

/// Nesting deeper than this stops the scanner (serde_json refuses such
/// documents anyway, at 128 levels); it keeps the recursion off the stack limit.
const MAX_DEPTH: usize = 1024;

impl<'t> LocationMap<'t> {
    /// A map over `text`. Scanning happens later, and only as far as needed.
    pub fn build(text: &'t str) -> Self {
        LocationMap {
            text,
            full: OnceCell::new(),
            probed: RefCell::new(HashMap::new()),
        }
    }

    /// Look up several paths in one targeted pass, so that later `contains`
    /// calls for them cost nothing.
    pub fn probe(&self, paths: &[&str]) {
        if self.full.get().is_some() {
            return;
        }
        let mut probed = self.probed.borrow_mut();
        let todo: Vec<&str> = paths
            .iter()
            .copied()
            .filter(|p| !probed.contains_key(*p))
            .collect();
        if todo.is_empty() {
            return;
        }
        let mut sink = Targets {
            paths: &todo,
            found: vec![None; todo.len()],
        };
        scan(self.text, &mut sink);
        for (p, l) in todo.iter().zip(sink.found) {
            probed.insert((*p).to_string(), l);
        }
    }

    fn get(&self, path: &str) -> Option<Loc> {
        if let Some(m) = self.full.get() {
            return m.get(path).copied();
        }
        if let Some(l) = self.probed.borrow().get(path) {
            return *l;
        }
        self.probe(&[path]);
        self.probed.borrow().get(path).copied().flatten()
    }

    fn full(&self) -> &HashMap<String, Loc> {
        self.full.get_or_init(|| {
            let mut sink = Everything {
                map: HashMap::new(),
            };
            scan(self.text, &mut sink);
            sink.map
        })
    }

    /// Whether `path` appears with a non-null value.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some_and(|l| !l.null)
    }

    /// Whether the document is a JSON object.
    pub fn root_is_object(&self) -> bool {
        let b = self.text.as_bytes();
        b.get(skip_ws(b, 0)) == Some(&b'{')
    }

    /// Location of the value at `path`, falling back to the closest ancestor.
    pub fn value_pos(&self, path: &str) -> (usize, usize) {
        let map = self.full();
        let mut p = path;
        loop {
            if let Some(l) = map.get(p) {
                return l.value;
            }
            match parent(p) {
                Some(q) => p = q,
                None => return (1, 1),
            }
        }
    }

    /// Location of the key at `path` (or its value, or the nearest ancestor).
    pub fn key_pos(&self, path: &str) -> (usize, usize) {
        match self.full().get(path) {
            Some(Loc { key: Some(k), .. }) => *k,
            _ => self.value_pos(path),
        }
    }
}

/// `a.b[3].c` → `a.b[3]` → `a.b` → `a` → ``.
fn parent(p: &str) -> Option<&str> {
    if p.is_empty() {
        return None;
    }
    let cut = p.rfind(['.', '[']).unwrap_or(0);
    Some(&p[..cut])
}

/// What a scan records.
trait Sink {
    /// Whether anything at or below `path` is wanted (else the subtree is
    /// only skipped, without building paths).
    fn wants(&self, path: &str) -> bool;
    /// A value at `path`: `key` and `value` are byte offsets.
    fn record(&mut self, path: &str, loc: Loc);
}

/// Records every path (the full map).
struct Everything {
    map: HashMap<String, Loc>,
}

impl Sink for Everything {
    fn wants(&self, _: &str) -> bool {
        true
    }
    fn record(&mut self, path: &str, loc: Loc) {
        // A repeated key: the last occurrence wins.
        self.map.insert(path.to_string(), loc);
    }
}

/// Records only the given paths.
struct Targets<'p> {
    paths: &'p [&'p str],
    found: Vec<Option<Loc>>,
}

impl Sink for Targets<'_> {
    fn wants(&self, path: &str) -> bool {
        // Children of `path` are `path.key` and `path[i]` (just `key` at the root).
        path.is_empty()
            || self.paths.iter().any(|t| {
                t.len() >= path.len()
                    && t.starts_with(path)
                    && matches!(t.as_bytes().get(path.len()), None | Some(b'.' | b'['))
            })
    }
    fn record(&mut self, path: &str, loc: Loc) {
        for (t, f) in self.paths.iter().zip(self.found.iter_mut()) {
            if *t == path {
                *f = Some(loc);
            }
        }
    }
}

/// Run the scanner over `text`, reporting to `sink`.
fn scan(text: &str, sink: &mut dyn Sink) {
    let mut s = Scanner {
        b: text.as_bytes(),
        pos: 0,
        lines: LineCounter::default(),
        path: String::new(),
        sink,
    };
    s.pos = skip_ws(s.b, 0);
    let _ = s.value(None, true, 0);
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while matches!(b.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// Byte offset → (line, column). Columns count characters (UTF-8
/// continuation bytes are skipped). Offsets asked in increasing order cost
/// one pass over the text in all.
#[derive(Debug)]
struct LineCounter {
    off: usize,
    line: usize,
    col: usize,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter {
            off: 0,
            line: 1,
            col: 1,
        }
    }
}

impl LineCounter {
    fn at(&mut self, b: &[u8], off: usize) -> (usize, usize) {
        if off < self.off {
            *self = LineCounter::default();
        }
        for &c in &b[self.off..off] {
            if c == b'\n' {
                self.line += 1;
                self.col = 1;
            } else if c & 0xC0 != 0x80 {
                self.col += 1;
            }
        }
        self.off = off;
        (self.line, self.col)
    }
}

/// Index of the first `"`, `\` or newline at or after `i` (or `b.len()`),
/// eight bytes at a time.
fn string_stop(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` is zero → its high bit is set in the result; the lowest
    // flagged byte is always a true zero.
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        let w = u64::from_le_bytes(a);
        let m = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | zero(w ^ (ONES * u64::from(b'\n')));
        if m != 0 {
            // trailing_zeros() is at most 63: widening.
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c == b'\n' {
            break;
        }
        i += 1;
    }
    i
}

struct Scanner<'a, 's> {
    b: &'a [u8],
    pos: usize,
    lines: LineCounter,
    /// Path of the value being scanned (only maintained where the sink wants it).
    path: String,
    sink: &'s mut dyn Sink,
}

impl Scanner<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn skip_ws(&mut self) {
        self.pos = skip_ws(self.b, self.pos);
    }

    /// One value at `self.path` (when `on_path`), whose key starts at byte `key`.
    fn value(&mut self, key: Option<usize>, on_path: bool, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let here = self.pos;
        let wanted = on_path && self.sink.wants(&self.path);
        if on_path {
            let null = self.b.get(here..here + 4) == Some(&b"null"[..]);
            let key = key.map(|k| self.lines.at(self.b, k));
            let value = self.lines.at(self.b, here);
            self.sink.record(&self.path, Loc { key, value, null });
        }
        match self.peek()? {
            b'{' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b'}' {
                    self.bump();
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    let kpos = self.pos;
                    let k = self.string(wanted)?;
                    self.skip_ws();
                    if self.bump()? != b':' {
                        return None;
                    }
                    self.skip_ws();
                    let len = self.path.len();
                    if wanted {
                        if len > 0 {
                            self.path.push('.');
                        }
                        self.path.push_str(&k.unwrap_or_default());
                    }
                    let r = self.value(Some(kpos), wanted, depth + 1);
                    self.path.truncate(len);
                    r?;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => continue,
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b']' {
                    self.bump();
                    return Some(());
                }
                let mut i = 0usize;
                loop {
                    self.skip_ws();
                    let len = self.path.len();
                    if wanted {
                        use std::fmt::Write;
                        let _ = write!(self.path, "[{i}]");
                    }
                    let r = self.value(None, wanted, depth + 1);
                    self.path.truncate(len);
                    r?;
                    i += 1;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'"' => self.string(false).map(|_| ()),
            _ => {
                // number, true, false, null
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    /// A string; its decoded text only when `decode` (keys on a wanted path).
    /// `None`: not a string, or one the scanner does not understand.
    fn string(&mut self, decode: bool) -> Option<Option<String>> {
        if self.bump()? != b'"' {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy a run of plain bytes at once.
            let start = self.pos;
            self.pos = string_stop(self.b, self.pos);
            if decode {
                out.extend_from_slice(&self.b[start..self.pos]);
            }
            match self.bump()? {
                b'"' => {
                    return Some(decode.then(|| String::from_utf8_lossy(&out).into_owned()));
                }
                b'\\' => {
                    let e = self.bump()?;
                    let mut buf = [0u8; 4];
                    let bytes: &[u8] = match e {
                        b'n' => b"\n",
                        b't' => b"\t",
                        b'r' => b"\r",
                        b'b' => &[8],
                        b'f' => &[12],
                        b'u' => {
                            let mut v = 0u32;
                            for _ in 0..4 {
                                v = v * 16 + char::from(self.bump()?).to_digit(16)?;
                            }
                            let c = char::from_u32(v).unwrap_or('\u{fffd}');
                            c.encode_utf8(&mut buf).as_bytes()
                        }
                        other => {
                            buf[0] = other;
                            &buf[..1]
                        }
                    };
                    if decode {
                        out.extend_from_slice(bytes);
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
        assert!(m.root_is_object());
        assert!(!LocationMap::build(" [1]").root_is_object());
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

    #[test]
    fn string_stop_finds_the_first_special_byte() {
        for (s, want) in [
            ("", 0),
            ("abc", 3),
            ("abcdefghijklmnop\"", 16),
            ("abcdefg\\hijklmnop\"", 7),
            ("ab\ncdefghij", 2),
            ("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\"", 10),
            ("abcdefgh\"ijklmnop\\", 8),
            ("\"bcdefghijklmnopq", 0),
        ] {
            assert_eq!(string_stop(s.as_bytes(), 0), want, "{s:?}");
        }
        // Every start offset and stop position in a longer text.
        let t = "x".repeat(40) + "\"" + &"y".repeat(9) + "\\";
        for i in 0..t.len() {
            let want = if i <= 40 { 40 } else { 50 };
            assert_eq!(string_stop(t.as_bytes(), i), want, "start {i}");
        }
    }

    /// The scanner as it was when it built the whole map eagerly (one
    /// character at a time, `format!`ed paths): the oracle for the lazy map.
    mod reference {
        use super::super::Loc;
        use std::collections::HashMap;

        pub fn build(text: &str) -> HashMap<String, Loc> {
            let mut s = S {
                c: text.as_bytes(),
                pos: 0,
                line: 1,
                col: 1,
                map: HashMap::new(),
            };
            s.ws();
            let _ = s.value(String::new(), None);
            s.map
        }

        struct S<'a> {
            c: &'a [u8],
            pos: usize,
            line: usize,
            col: usize,
            map: HashMap<String, Loc>,
        }

        impl S<'_> {
            fn peek(&self) -> Option<char> {
                self.c.get(self.pos).map(|b| char::from(*b))
            }
            fn bump(&mut self) -> Option<char> {
                let b = *self.c.get(self.pos)?;
                self.pos += 1;
                if b == b'\n' {
                    self.line += 1;
                    self.col = 1;
                } else if b & 0xC0 != 0x80 {
                    self.col += 1;
                }
                Some(char::from(b))
            }
            fn ws(&mut self) {
                while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                    self.bump();
                }
            }
            fn value(&mut self, path: String, key: Option<(usize, usize)>) -> Option<()> {
                let null = self.c.get(self.pos..self.pos + 4) == Some(&b"null"[..]);
                let value = (self.line, self.col);
                self.map.insert(path.clone(), Loc { key, value, null });
                match self.peek()? {
                    '{' => {
                        self.bump();
                        self.ws();
                        if self.peek()? == '}' {
                            self.bump();
                            return Some(());
                        }
                        loop {
                            self.ws();
                            let kpos = (self.line, self.col);
                            let k = self.string()?;
                            self.ws();
                            if self.bump()? != ':' {
                                return None;
                            }
                            self.ws();
                            let child = if path.is_empty() {
                                k
                            } else {
                                format!("{path}.{k}")
                            };
                            self.value(child, Some(kpos))?;
                            self.ws();
                            match self.bump()? {
                                ',' => continue,
                                '}' => return Some(()),
                                _ => return None,
                            }
                        }
                    }
                    '[' => {
                        self.bump();
                        self.ws();
                        if self.peek()? == ']' {
                            self.bump();
                            return Some(());
                        }
                        let mut i = 0usize;
                        loop {
                            self.ws();
                            self.value(format!("{path}[{i}]"), None)?;
                            i += 1;
                            self.ws();
                            match self.bump()? {
                                ',' => continue,
                                ']' => return Some(()),
                                _ => return None,
                            }
                        }
                    }
                    '"' => self.string().map(|_| ()),
                    _ => {
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
                    let c = self.bump()?;
                    match c {
                        '"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                        '\n' => return None,
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
                        _ => out.push(self.c[self.pos - 1]),
                    }
                }
            }
        }
    }

    /// Documents for the equivalence checks: well-formed ones, odd keys
    /// (dots, brackets, escapes, repeats), multi-byte text, and broken ones.
    fn corpus() -> Vec<String> {
        let mut docs: Vec<String> = [
            "{}",
            "[]",
            "",
            "  ",
            "null",
            "{\"a\": null, \"b\": [null, {\"c\": null}]}",
            "{\n  \"a\": {\"b\": [1, {\"c\": \"x\\\"y\"}]},\n  \"d\": true\n}",
            "{\"ignition\": {\"version\": \"3.4.0\"}, \"storage\": {\"luks\": [], \"raid\": null}}",
            "{\"a.b\": 1, \"a\": {\"b\": 2}}",
            "{\"a\": {\"b\": 2}, \"a.b\": 1}",
            "{\"a\": 1, \"a\": {\"x\": 2}, \"a\": 3}",
            "{\"a[0]\": 5, \"a\": [6]}",
            "{\"k\\u0065y\": {\"\\n\": 1}, \"\\ud83d\": 2, \"\\q\": 3}",
            "{\"caf\u{e9}\": \"\u{1f600}\u{1f600}\", \"x\": \"\u{e9}\\\"\u{e9}\"}",
            "{\"a\": \"line\\\nbreak\", \"b\": 1}",
            "{\"a\": \"raw\nnewline\", \"b\": 1}",
            "{\"a\": 1 \"b\": 2}",
            "{\"a\" 1}",
            "{\"a\": [1 2]}",
            "{\"a\": \"\\u12\"}",
            "{\"a\": \"\\uzzzz\", \"b\": 1}",
            "{a: 1}",
            "[1, [2, [3, {\"x\": [4]}]], \"s\"]",
            "{\"s\": \"\\\\\", \"t\": \"\\/\\b\\f\\r\\t\", \"n\": -1.5e3}",
            "\r\n\t{\"x\":\r\n\t[ {\"y\" :\ttrue } ] }",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A pretty-printed, bigger document with long strings.
        let mut big = String::from(
            "{\n  \"ignition\": {\"version\": \"3.4.0\"},\n  \"storage\": {\"files\": [\n",
        );
        for i in 0..40 {
            if i > 0 {
                big.push_str(",\n");
            }
            big.push_str(&format!(
                "    {{\"path\": \"/f/{i}\", \"contents\": {{\"source\": \"data:,{}\"}}, \"mode\": {}}}",
                "\u{e9}x".repeat(i * 3),
                i * 7
            ));
        }
        big.push_str("\n  ]}\n}\n");
        docs.push(big);
        // Every prefix of a few documents: the scanner must stop the same way.
        let mut cut = Vec::new();
        for d in &docs[5..15] {
            for (i, _) in d.char_indices() {
                cut.push(d[..i].to_string());
            }
        }
        docs.extend(cut);
        docs
    }

    #[test]
    fn lazy_map_matches_the_eager_reference_scanner() {
        for d in corpus() {
            let want = reference::build(&d);
            let m = LocationMap::build(&d);
            assert_eq!(m.full(), &want, "{d:?}");
            for (p, l) in &want {
                assert_eq!(m.value_pos(p), l.value, "{d:?} {p}");
            }
        }
    }

    #[test]
    fn targeted_lookups_match_the_reference_scanner() {
        for d in corpus() {
            let want = reference::build(&d);
            let mut asked: Vec<String> = want.keys().cloned().collect();
            for extra in [
                "nope",
                "a.nope",
                "a[9]",
                "storage.luks",
                "ignition.version",
                "",
            ] {
                asked.push(extra.to_string());
            }
            asked.sort();
            // One path at a time, then all at once, on fresh maps.
            for p in &asked {
                let m = LocationMap::build(&d);
                assert_eq!(m.get(p), want.get(p).copied(), "{d:?} {p}");
                assert_eq!(m.contains(p), want.get(p).is_some_and(|l| !l.null));
                assert!(m.full.get().is_none(), "a lookup built the full map");
            }
            let m = LocationMap::build(&d);
            let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
            m.probe(&refs);
            for p in &asked {
                assert_eq!(m.get(p), want.get(p).copied(), "{d:?} {p} (probe)");
            }
        }
    }

    #[test]
    fn deep_nesting_stops_instead_of_overflowing() {
        let d = "[".repeat(200_000);
        let m = LocationMap::build(&d);
        assert_eq!(m.value_pos("[0][0]"), (1, 3));
        assert!(!m.contains("x"));
    }
}
