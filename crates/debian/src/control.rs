//! deb822 control-data parser (deb822(5)): Packages indices, Release files and
//! binary control files.
//!
//! A file is a sequence of paragraphs separated by blank lines (empty or only
//! spaces and tabs). A paragraph is a sequence of `Name: value` fields; a line
//! starting with a space or tab continues the previous field. Field names are
//! matched case-insensitively. Lines starting with `#` are comments, which
//! deb822 permits only in some files (source control files), so they are an
//! error unless [`ParseOptions::allow_comments`] is set.

/// One field of a paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name as written.
    pub name: String,
    /// Value: the first line's text (trimmed), then for each continuation line a
    /// `\n` and the line as written (trailing blanks removed).
    pub value: String,
    /// 1-based line number of the field's first line.
    pub line: usize,
}

impl Field {
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
pub struct Paragraph {
    /// 1-based line number of the first field.
    pub line: usize,
    fields: Vec<Field>,
}

impl Paragraph {
    /// All fields in file order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The value of the field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(name).map(|f| f.value.as_str())
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
pub fn parse(text: &str) -> Result<Vec<Paragraph>, ControlError> {
    paragraphs(text, ParseOptions::default()).collect()
}

/// Parses all paragraphs of `text` with options.
pub fn parse_with(text: &str, options: ParseOptions) -> Result<Vec<Paragraph>, ControlError> {
    paragraphs(text, options).collect()
}

/// A streaming iterator over the paragraphs of `text`. After an error it ends.
pub fn paragraphs(text: &str, options: ParseOptions) -> Paragraphs<'_> {
    Paragraphs {
        lines: text.lines().enumerate(),
        options,
        failed: false,
    }
}

/// Iterator returned by [`paragraphs`].
pub struct Paragraphs<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    options: ParseOptions,
    failed: bool,
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

impl Paragraphs<'_> {
    fn next_paragraph(&mut self) -> Result<Option<Paragraph>, ControlError> {
        let mut para = Paragraph::default();
        for (index, raw) in self.lines.by_ref() {
            let line_no = index + 1;
            let err = |kind| ControlError {
                line: line_no,
                kind,
            };
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if is_blank(line) {
                if para.fields.is_empty() {
                    continue;
                }
                return Ok(Some(para));
            }
            if line.starts_with('#') {
                if self.options.allow_comments {
                    continue;
                }
                return Err(err(ControlErrorKind::CommentNotAllowed));
            }
            if line.starts_with([' ', '\t']) {
                let Some(field) = para.fields.last_mut() else {
                    return Err(err(ControlErrorKind::ContinuationWithoutField));
                };
                field.value.push('\n');
                field.value.push_str(line.trim_end());
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(err(ControlErrorKind::MissingColon));
            };
            if !valid_field_name(name) {
                return Err(err(ControlErrorKind::InvalidFieldName(name.to_string())));
            }
            if let Some(first) = para.field(name) {
                return Err(err(ControlErrorKind::DuplicateField {
                    name: name.to_string(),
                    first_line: first.line,
                }));
            }
            if para.fields.is_empty() {
                para.line = line_no;
            }
            para.fields.push(Field {
                name: name.to_string(),
                value: value.trim().to_string(),
                line: line_no,
            });
        }
        Ok((!para.fields.is_empty()).then_some(para))
    }
}

impl Iterator for Paragraphs<'_> {
    type Item = Result<Paragraph, ControlError>;

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
