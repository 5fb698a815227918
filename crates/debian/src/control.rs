//! deb822 control-data parser (deb822(5)): Packages indices, Release files and
//! binary control files.
//!
//! A file is a sequence of paragraphs separated by blank lines (empty or only
//! spaces and tabs). A paragraph is a sequence of `Name: value` fields; a line
//! starting with a space or tab continues the previous field. Field names are
//! matched case-insensitively. Lines starting with `#` are comments, which
//! deb822 permits only in some files (source control files), so they are an
//! error unless [`ParseOptions::allow_comments`] is set.

use std::borrow::Cow;

/// One field of a paragraph, borrowing from the parsed text where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field name as written.
    pub name: &'a str,
    /// Value: the first line's text (trimmed), then for each continuation line a
    /// `\n` and the line as written (trailing blanks removed).
    pub value: Cow<'a, str>,
    /// 1-based line number of the field's first line.
    pub line: usize,
}

impl Field<'_> {
    /// The value's lines, trimmed, without the empty first line of a field such
    /// as `SHA256:` whose content starts on the next line.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        let mut lines = self.value.split('\n').map(str::trim);
        let first = lines.next().filter(|l| !l.is_empty());
        first.into_iter().chain(lines)
    }
}

/// One paragraph (stanza).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph<'a> {
    /// 1-based line number of the first field.
    pub line: usize,
    fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// All fields in file order.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// The field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The value of the field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(name).map(|f| f.value.as_ref())
    }
}

/// Parser options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept (and drop) `#` comment lines, as in debian/control files.
    pub allow_comments: bool,
}

/// What is wrong on a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlErrorKind {
    #[error("continuation line without a field before it")]
    ContinuationWithoutField,
    #[error("expected `Name: value`, found no colon")]
    MissingColon,
    #[error(
        "invalid field name {0:?} (must be printable ASCII without spaces or colons, not starting with '#' or '-')"
    )]
    InvalidFieldName(String),
    #[error("duplicate field {name:?} (first at line {first_line})")]
    DuplicateField { name: String, first_line: usize },
    #[error("comment lines are not allowed in this file")]
    CommentNotAllowed,
}

/// A parse error with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ControlError {
    pub line: usize,
    pub kind: ControlErrorKind,
}

/// Parses all paragraphs of `text` without comments allowed.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    paragraphs(text, ParseOptions::default()).collect()
}

/// Parses all paragraphs of `text` with options.
pub fn parse_with(text: &str, options: ParseOptions) -> Result<Vec<Paragraph<'_>>, ControlError> {
    paragraphs(text, options).collect()
}

/// A streaming iterator over the paragraphs of `text`. After an error it ends.
pub fn paragraphs(text: &str, options: ParseOptions) -> Paragraphs<'_> {
    Paragraphs {
        text,
        offset: 0,
        line_no: 0,
        options,
        failed: false,
    }
}

/// Iterator returned by [`paragraphs`].
pub struct Paragraphs<'a> {
    text: &'a str,
    /// Byte offset of the next line.
    offset: usize,
    /// 1-based number of the last line returned by `next_line`.
    line_no: usize,
    options: ParseOptions,
    failed: bool,
}

/// The field being read: its value is `text[start..end]` while that span is
/// exactly the normalised value, else an owned copy.
struct Open<'a> {
    name: &'a str,
    line: usize,
    start: usize,
    end: usize,
    owned: Option<String>,
}

impl<'a> Open<'a> {
    fn close(self, text: &'a str) -> Field<'a> {
        Field {
            name: self.name,
            value: match self.owned {
                Some(s) => Cow::Owned(s),
                None => Cow::Borrowed(&text[self.start..self.end]),
            },
            line: self.line,
        }
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

impl<'a> Paragraphs<'a> {
    /// The next line (without its `\n` or `\r\n`) and its start offset.
    fn next_line(&mut self) -> Option<(&'a str, usize)> {
        if self.offset >= self.text.len() {
            return None;
        }
        let start = self.offset;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(n) => (&rest[..n], n + 1),
            None => (rest, rest.len()),
        };
        self.offset += advance;
        self.line_no += 1;
        Some((line.strip_suffix('\r').unwrap_or(line), start))
    }

    fn next_paragraph(&mut self) -> Result<Option<Paragraph<'a>>, ControlError> {
        let text = self.text;
        let mut para = Paragraph::default();
        let mut open: Option<Open<'a>> = None;
        // Whether the previous line ended exactly where the open field's span ends.
        let mut contiguous = false;
        while let Some((line, line_start)) = self.next_line() {
            let err = |kind| ControlError {
                line: self.line_no,
                kind,
            };
            if is_blank(line) {
                if open.is_none() {
                    continue;
                }
                break;
            }
            if line.starts_with('#') {
                if self.options.allow_comments {
                    contiguous = false;
                    continue;
                }
                return Err(err(ControlErrorKind::CommentNotAllowed));
            }
            let line_end = line_start + line.len();
            if line.starts_with([' ', '\t']) {
                let Some(field) = open.as_mut() else {
                    return Err(err(ControlErrorKind::ContinuationWithoutField));
                };
                let kept = line.trim_end();
                if field.owned.is_none() && !contiguous {
                    field.owned = Some(text[field.start..field.end].to_string());
                }
                match field.owned.as_mut() {
                    Some(value) => {
                        value.push('\n');
                        value.push_str(kept);
                    }
                    None => field.end = line_start + kept.len(),
                }
                contiguous = kept.len() == line.len()
                    && line_end < text.len()
                    && text.as_bytes()[line_end] == b'\n';
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(err(ControlErrorKind::MissingColon));
            };
            if !valid_field_name(name) {
                return Err(err(ControlErrorKind::InvalidFieldName(name.to_string())));
            }
            if let Some(done) = open.take() {
                para.fields.push(done.close(text));
            }
            if let Some(first) = para.field(name) {
                return Err(err(ControlErrorKind::DuplicateField {
                    name: name.to_string(),
                    first_line: first.line,
                }));
            }
            if para.fields.is_empty() {
                para.line = self.line_no;
            }
            let value_start = line_end - value.len();
            let lead = value.len() - value.trim_start().len();
            let trimmed = value.trim();
            let start = value_start + lead;
            let end = start + trimmed.len();
            contiguous =
                end == line_end && line_end < text.len() && text.as_bytes()[line_end] == b'\n';
            open = Some(Open {
                name,
                line: self.line_no,
                start,
                end,
                owned: None,
            });
        }
        if let Some(done) = open.take() {
            para.fields.push(done.close(text));
        }
        Ok((!para.fields.is_empty()).then_some(para))
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_paragraph() {
            Ok(p) => p.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs_fields_and_continuations() {
        let text = "Package: foo\nVersion: 1.0\nDescription: short\n more\n .\n\tend\n\n \t\n\
                    package: bar\r\nDepends: a,\n b\nSHA256:\n 0123 10 main/x\n";
        let paras = parse(text).unwrap();
        assert_eq!(paras.len(), 2);
        assert_eq!(paras[0].line, 1);
        assert_eq!(paras[0].get("package"), Some("foo"));
        assert_eq!(paras[0].get("VERSION"), Some("1.0"));
        assert_eq!(paras[0].get("Description"), Some("short\n more\n .\n\tend"));
        assert_eq!(paras[1].line, 9);
        assert_eq!(paras[1].get("Package"), Some("bar"));
        assert_eq!(paras[1].field("depends").map(|f| f.line), Some(10));
        assert_eq!(paras[1].get("Depends"), Some("a,\n b"));
        let sums: Vec<&str> = paras[1].field("sha256").unwrap().lines().collect();
        assert_eq!(sums, ["0123 10 main/x"]);
        let desc: Vec<&str> = paras[0].field("description").unwrap().lines().collect();
        assert_eq!(desc, ["short", "more", ".", "end"]);
        assert_eq!(paras[0].get("Missing"), None);
    }

    #[test]
    fn values_are_normalised_whether_borrowed_or_copied() {
        // (text, value of A, borrowed from the input?)
        let table: &[(&str, &str, bool)] = &[
            ("A: x\n y\n", "x\n y", true),
            ("A: x\n y", "x\n y", true),
            ("A:\n y\n  z\n", "\n y\n  z", true),
            ("A:   \n y\n", "\n y", true),
            ("A: x  \n y\n", "x\n y", false),
            ("A: x\n y  \n z\n", "x\n y\n z", false),
            ("A: x\r\n y\r\n", "x\n y", false),
            ("A: x\r\n", "x", true),
            ("A:  spaced out  \n", "spaced out", true),
        ];
        for (text, want, borrowed) in table {
            let paras = parse(text).unwrap();
            let field = paras[0].field("a").unwrap();
            assert_eq!(field.value, *want, "{text:?}");
            assert_eq!(
                matches!(field.value, Cow::Borrowed(_)),
                *borrowed,
                "{text:?}"
            );
        }
        let commented = parse_with(
            "A: x\n# c\n y\n",
            ParseOptions {
                allow_comments: true,
            },
        )
        .unwrap();
        assert_eq!(commented[0].get("A"), Some("x\n y"));
    }

    #[test]
    fn errors_carry_line_numbers() {
        use ControlErrorKind::*;
        let table: &[(&str, usize, ControlErrorKind)] = &[
            (" leading continuation\n", 1, ContinuationWithoutField),
            (
                "A: 1\n\n continuation after blank\n",
                3,
                ContinuationWithoutField,
            ),
            ("A: 1\nno colon here\n", 2, MissingColon),
            (
                "A: 1\nB: 2\na: 3\n",
                3,
                DuplicateField {
                    name: "a".into(),
                    first_line: 1,
                },
            ),
            ("A: 1\n# comment\n", 2, CommentNotAllowed),
            ("-----BEGIN PGP SIGNED MESSAGE-----\n", 1, MissingColon),
            ("-Hash: SHA512\n", 1, InvalidFieldName("-Hash".into())),
            ("Bad Name: 1\n", 1, InvalidFieldName("Bad Name".into())),
            (": empty\n", 1, InvalidFieldName(String::new())),
        ];
        for (text, line, kind) in table {
            let got = parse(text).unwrap_err();
            assert_eq!(
                got,
                ControlError {
                    line: *line,
                    kind: kind.clone()
                },
                "{text:?}"
            );
        }
        let msg = parse("A: 1\nA: 2\n").unwrap_err().to_string();
        assert_eq!(msg, "line 2: duplicate field \"A\" (first at line 1)");
    }

    #[test]
    fn comments_allowed_when_asked() {
        let text = "# header\nSource: x\n# inside\nBuild-Depends: a,\n# between\n b\n";
        let paras = parse_with(
            text,
            ParseOptions {
                allow_comments: true,
            },
        )
        .unwrap();
        assert_eq!(paras.len(), 1);
        assert_eq!(paras[0].line, 2);
        assert_eq!(paras[0].get("build-depends"), Some("a,\n b"));
    }

    #[test]
    fn empty_input_has_no_paragraphs() {
        for text in ["", "\n\n", "  \n\t\n"] {
            assert_eq!(parse(text).unwrap(), Vec::<Paragraph>::new(), "{text:?}");
        }
    }
}
