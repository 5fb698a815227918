//! A small deb822 reader: just enough for apt `.sources` files and Release files.
//!
//! Paragraphs are separated by blank lines; a field is `Name: value` and continues on
//! lines starting with a space or tab; lines starting with `#` are comments (allowed by
//! apt's `.sources` format, never present in Release files). Field names compare
//! case-insensitively, as deb822 specifies.

use crate::error::{Error, Result};

/// One field: its name, its value (continuation lines joined by `\n`, each line trimmed),
/// and the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// One paragraph and the line where it starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph {
    pub line: usize,
    pub fields: Vec<Field>,
}

impl Paragraph {
    /// The value of the first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(name).map(|f| f.value.as_str())
    }

    /// The first field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// Parses `text` into paragraphs; `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<Paragraph>> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some(last) = cur.fields.last_mut() else {
                return Err(Error::Syntax {
                    file: file.to_string(),
                    line: line_no,
                    msg: "continuation line without a field before it".into(),
                });
            };
            let cont = line.trim();
            // A lone "." stands for an empty line inside a multi-line value.
            let cont = if cont == "." { "" } else { cont };
            last.value.push('\n');
            last.value.push_str(cont);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::Syntax {
                file: file.to_string(),
                line: line_no,
                msg: format!("expected `Field: value`, found {line:?}"),
            });
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Error::Syntax {
                file: file.to_string(),
                line: line_no,
                msg: format!("bad field name {name:?}"),
            });
        }
        if cur.fields.is_empty() {
            cur.line = line_no;
        }
        cur.fields.push(Field {
            name: name.to_string(),
            value: value.trim().to_string(),
            line: line_no,
        });
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs_and_continuations() {
        let text = "# comment\nA: 1\nb: two\n words\n .\n x\n\n\nC: 3\n";
        let ps = parse(text, "t").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 2);
        assert_eq!(ps[0].get("a"), Some("1"));
        assert_eq!(ps[0].get("B"), Some("two\nwords\n\nx"));
        assert_eq!(ps[1].get("c"), Some("3"));
        assert_eq!(ps[1].field("C").unwrap().line, 9);
    }

    #[test]
    fn rejects_bad_lines() {
        let table = [
            (" x\n", 1, "continuation"),
            ("A: 1\nnot a field\n", 2, "expected"),
            ("A B: 1\n", 1, "bad field name"),
        ];
        for (text, line, needle) in table {
            match parse(text, "f.sources") {
                Err(Error::Syntax { line: l, msg, file }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert_eq!(file, "f.sources");
                    assert!(msg.contains(needle), "{msg}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
