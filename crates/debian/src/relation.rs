//! Package relationship fields (Depends, Pre-Depends, Recommends, Provides,
//! Conflicts, Breaks, Build-Depends), Debian Policy §7.1.
//!
//! Grammar: a comma-separated list of groups; a group is `|`-separated
//! alternatives; an alternative is
//! `name[:archqual] [(op version)] [[arch list]] [<profile formula>]...`.
//! Operators are `<< <= = >= >>`; the obsolete `<` and `>` mean `<=` and `>=`.
//! Arch lists are all-positive or all-negated (`[amd64 !i386]` is an error).
//! Build-profile formulas are parsed and kept; binary-package resolution does
//! not evaluate them (see [`Relation::profiles_match`]).

use std::cmp::Ordering;
use std::fmt;

use crate::version::{Version, VersionError};

/// Version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    /// Whether `candidate.cmp(wanted) == ord` satisfies this operator.
    pub fn accepts(self, ord: Ordering) -> bool {
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
        }
    }

    /// Canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// `(op version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub op: Op,
    pub version: Version,
}

impl Constraint {
    /// Whether `candidate` satisfies this constraint.
    pub fn satisfied_by(&self, candidate: &Version) -> bool {
        self.op.accepts(candidate.cmp(&self.version))
    }
}

/// `:any`, `:native` or `:<arch>` after a package name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchQual {
    Any,
    Native,
    Arch(String),
}

/// One term of an architecture restriction list, e.g. `!i386`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchTerm {
    pub negated: bool,
    pub arch: String,
}

/// One term of a build-profile formula, e.g. `!nocheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTerm {
    pub negated: bool,
    pub name: String,
}

/// One alternative of a relation group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub arch_qual: Option<ArchQual>,
    pub constraint: Option<Constraint>,
    /// Architecture restriction list; empty means unrestricted.
    pub arches: Vec<ArchTerm>,
    /// Build-profile formulas (`<a b> <c>`: (a AND b) OR c); empty means unrestricted.
    pub profiles: Vec<Vec<ProfileTerm>>,
}

/// Alternatives separated by `|`; satisfied when any alternative is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub alternatives: Vec<Relation>,
}

/// What is wrong in a relation field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationErrorKind {
    #[error("expected a package name")]
    ExpectedName,
    #[error(
        "invalid package name {0:?} (lowercase letters, digits, + - ., starting with a letter or digit)"
    )]
    InvalidName(String),
    #[error("invalid architecture qualifier {0:?}")]
    InvalidArchQual(String),
    #[error("unknown version operator {0:?} (expected << <= = >= >>)")]
    UnknownOperator(String),
    #[error("missing {0:?}")]
    Missing(char),
    #[error("invalid version: {0}")]
    Version(#[from] VersionError),
    #[error("empty architecture list")]
    EmptyArchList,
    #[error("architecture list mixes negated and plain entries")]
    MixedArchList,
    #[error("invalid architecture name {0:?}")]
    InvalidArch(String),
    #[error("empty build-profile formula")]
    EmptyProfiles,
    #[error("invalid build-profile name {0:?}")]
    InvalidProfile(String),
    #[error("expected ',' or '|' but found {0:?}")]
    Unexpected(char),
    #[error("empty entry between commas")]
    EmptyEntry,
}

/// A relation parse error: the field text, the 1-based character column and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("in {text:?} at column {column}: {kind}")]
pub struct RelationError {
    pub text: String,
    pub column: usize,
    pub kind: RelationErrorKind,
}

/// Parses a relation field (e.g. a Depends value). An empty field gives no groups;
/// a single trailing comma is accepted.
pub fn parse_relations(text: &str) -> Result<Vec<Group>, RelationError> {
    let mut p = Parser { s: text, pos: 0 };
    let mut groups = Vec::new();
    p.skip_ws();
    if p.eof() {
        return Ok(groups);
    }
    loop {
        p.skip_ws();
        if p.peek() == Some(',') {
            return Err(p.error(RelationErrorKind::EmptyEntry));
        }
        groups.push(p.group()?);
        p.skip_ws();
        match p.peek() {
            None => break,
            Some(',') => {
                p.pos += 1;
                p.skip_ws();
                if p.eof() {
                    break;
                }
            }
            Some(c) => return Err(p.error(RelationErrorKind::Unexpected(c))),
        }
    }
    Ok(groups)
}

/// Whether a package name is valid: lowercase letters, digits, `+ - .`, starting
/// with a letter or digit (Policy §5.6.1; like dpkg, one character is accepted).
pub fn valid_package_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

fn valid_arch(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether the Debian architecture `arch` matches `pattern`, which is an
/// architecture name, `any`, `<os>-any` or `any-<cpu>`. Plain names such as
/// `amd64` are Linux architectures (`linux-amd64`).
pub fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == "any" || pattern == arch {
        return true;
    }
    let (os, cpu) = arch.split_once('-').unwrap_or(("linux", arch));
    match pattern.split_once('-') {
        Some((p_os, "any")) => p_os == os,
        Some(("any", p_cpu)) => p_cpu == cpu,
        _ => false,
    }
}

impl Relation {
    /// Whether this alternative's architecture restriction includes `arch`.
    pub fn applies_to_arch(&self, arch: &str) -> bool {
        if self.arches.is_empty() {
            return true;
        }
        let matched = self.arches.iter().any(|t| arch_matches(&t.arch, arch));
        // Lists are homogeneous: all negated or all plain.
        if self.arches[0].negated {
            !matched
        } else {
            matched
        }
    }

    /// Whether the build-profile formula holds for the `active` profiles.
    pub fn profiles_match(&self, active: &[&str]) -> bool {
        self.profiles.is_empty()
            || self.profiles.iter().any(|f| {
                f.iter()
                    .all(|t| active.contains(&t.name.as_str()) != t.negated)
            })
    }

    /// Whether a package called `name` with `version` satisfies this alternative's
    /// name and version constraint (architecture qualifiers are not checked here).
    pub fn matches_version(&self, version: &Version) -> bool {
        self.constraint
            .as_ref()
            .is_none_or(|c| c.satisfied_by(version))
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn eof(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += self.peek().map_or(1, char::len_utf8);
        }
    }

    fn error(&self, kind: RelationErrorKind) -> RelationError {
        RelationError {
            text: self.s.to_string(),
            column: self.s[..self.pos].chars().count() + 1,
            kind,
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    fn expect(&mut self, c: char) -> Result<(), RelationError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(RelationErrorKind::Missing(c)))
        }
    }

    fn group(&mut self) -> Result<Group, RelationError> {
        let mut alternatives = vec![self.relation()?];
        loop {
            self.skip_ws();
            if self.peek() != Some('|') {
                break;
            }
            self.pos += 1;
            alternatives.push(self.relation()?);
        }
        Ok(Group { alternatives })
    }

    fn relation(&mut self) -> Result<Relation, RelationError> {
        self.skip_ws();
        let start = self.pos;
        let name = self
            .take_while(|c| c.is_alphanumeric() || "+-._".contains(c))
            .to_string();
        if name.is_empty() {
            return Err(self.error(RelationErrorKind::ExpectedName));
        }
        if !valid_package_name(&name) {
            self.pos = start;
            return Err(self.error(RelationErrorKind::InvalidName(name)));
        }
        let mut rel = Relation {
            name,
            arch_qual: None,
            constraint: None,
            arches: Vec::new(),
            profiles: Vec::new(),
        };
        if self.peek() == Some(':') {
            self.pos += 1;
            let qual = self.take_while(|c| c.is_alphanumeric() || c == '-');
            rel.arch_qual = Some(match qual {
                "any" => ArchQual::Any,
                "native" => ArchQual::Native,
                q if valid_arch(q) => ArchQual::Arch(q.to_string()),
                q => {
                    let q = q.to_string();
                    return Err(self.error(RelationErrorKind::InvalidArchQual(q)));
                }
            });
        }
        self.skip_ws();
        if self.peek() == Some('(') {
            self.pos += 1;
            self.skip_ws();
            let op_start = self.pos;
            let op_text = self.take_while(|c| "<>=".contains(c));
            let Some(op) = Op::parse(op_text) else {
                self.pos = op_start;
                let op_text = op_text.to_string();
                return Err(self.error(RelationErrorKind::UnknownOperator(op_text)));
            };
            self.skip_ws();
            let ver_start = self.pos;
            let ver_text = self.take_while(|c| !c.is_whitespace() && c != ')');
            let version = Version::parse(ver_text).map_err(|e| {
                let mut err = self.error(e.into());
                err.column = self.s[..ver_start].chars().count() + 1;
                err
            })?;
            self.skip_ws();
            self.expect(')')?;
            rel.constraint = Some(Constraint { op, version });
            self.skip_ws();
        }
        if self.peek() == Some('[') {
            self.pos += 1;
            rel.arches = self.arch_list()?;
            self.skip_ws();
        }
        while self.peek() == Some('<') {
            self.pos += 1;
            rel.profiles.push(self.profile_formula()?);
            self.skip_ws();
        }
        Ok(rel)
    }

    fn terms(&mut self, close: char) -> Result<Vec<(bool, String)>, RelationError> {
        let mut terms = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.error(RelationErrorKind::Missing(close))),
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(terms);
                }
                Some(_) => {
                    let negated = self.peek() == Some('!');
                    if negated {
                        self.pos += 1;
                    }
                    let word = self.take_while(|c| !c.is_whitespace() && c != close && c != ',');
                    terms.push((negated, word.to_string()));
                    if word.is_empty() {
                        let c = self.peek().unwrap_or(close);
                        return Err(self.error(RelationErrorKind::Unexpected(c)));
                    }
                }
            }
        }
    }

    fn arch_list(&mut self) -> Result<Vec<ArchTerm>, RelationError> {
        let terms = self.terms(']')?;
        if terms.is_empty() {
            return Err(self.error(RelationErrorKind::EmptyArchList));
        }
        if terms.iter().any(|t| t.0 != terms[0].0) {
            return Err(self.error(RelationErrorKind::MixedArchList));
        }
        terms
            .into_iter()
            .map(|(negated, arch)| {
                if valid_arch(&arch) {
                    Ok(ArchTerm { negated, arch })
                } else {
                    Err(self.error(RelationErrorKind::InvalidArch(arch)))
                }
            })
            .collect()
    }

    fn profile_formula(&mut self) -> Result<Vec<ProfileTerm>, RelationError> {
        let terms = self.terms('>')?;
        if terms.is_empty() {
            return Err(self.error(RelationErrorKind::EmptyProfiles));
        }
        terms
            .into_iter()
            .map(|(negated, name)| {
                let ok = name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
                if ok {
                    Ok(ProfileTerm { negated, name })
                } else {
                    Err(self.error(RelationErrorKind::InvalidProfile(name)))
                }
            })
            .collect()
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch_qual {
            None => {}
            Some(ArchQual::Any) => f.write_str(":any")?,
            Some(ArchQual::Native) => f.write_str(":native")?,
            Some(ArchQual::Arch(a)) => write!(f, ":{a}")?,
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({} {})", c.op.as_str(), c.version)?;
        }
        if !self.arches.is_empty() {
            let terms: Vec<String> = self
                .arches
                .iter()
                .map(|t| format!("{}{}", if t.negated { "!" } else { "" }, t.arch))
                .collect();
            write!(f, " [{}]", terms.join(" "))?;
        }
        for formula in &self.profiles {
            let terms: Vec<String> = formula
                .iter()
                .map(|t| format!("{}{}", if t.negated { "!" } else { "" }, t.name))
                .collect();
            write!(f, " <{}>", terms.join(" "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(groups: &[Group]) -> String {
        groups
            .iter()
            .map(Group::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn parses_and_canonicalises() {
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("   \n ", ""),
            ("a", "a"),
            (
                "a (>= 1.0) | b:any, c [amd64]",
                "a (>= 1.0) | b:any, c [amd64]",
            ),
            ("libc6(>=2.36)", "libc6 (>= 2.36)"),
            (
                "x (< 1), y (> 2), z (<= 3), w (>> 4), v (<< 5), u (= 1:2-3)",
                "x (<= 1), y (>= 2), z (<= 3), w (>> 4), v (<< 5), u (= 1:2-3)",
            ),
            ("foo:native, bar:amd64", "foo:native, bar:amd64"),
            (
                "a [!i386 !armel] <!nocheck> <stage1 cross>",
                "a [!i386 !armel] <!nocheck> <stage1 cross>",
            ),
            ("a,\n b |\n  c,", "a, b | c"),
            ("python3:any (>= 3.11~)", "python3:any (>= 3.11~)"),
        ];
        for (text, want) in table {
            let groups = parse_relations(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(show(&groups), *want, "{text:?}");
        }
        let g = parse_relations("a (>= 1.0) | b:any").unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].alternatives.len(), 2);
        assert_eq!(g[0].alternatives[1].arch_qual, Some(ArchQual::Any));
        let c = g[0].alternatives[0].constraint.as_ref().unwrap();
        assert_eq!((c.op, c.version.to_string()), (Op::Ge, "1.0".to_string()));
    }

    #[test]
    fn rejects_bad_syntax_with_column() {
        use RelationErrorKind::*;
        let table: &[(&str, usize, RelationErrorKind)] = &[
            ("a (>= 1.0", 10, Missing(')')),
            ("a (=> 1.0)", 4, UnknownOperator("=>".into())),
            ("a (>= )", 7, Version(VersionError::Empty)),
            (
                "a (>= 1_0)",
                7,
                Version(VersionError::InvalidUpstreamChar {
                    version: "1_0".into(),
                    ch: '_',
                }),
            ),
            ("a, , b", 4, EmptyEntry),
            (", a", 1, EmptyEntry),
            ("a | ", 5, ExpectedName),
            ("Foo", 1, InvalidName("Foo".into())),
            ("-x", 1, InvalidName("-x".into())),
            ("a_b", 1, InvalidName("a_b".into())),
            ("a b", 3, Unexpected('b')),
            ("a [amd64 !i386]", 16, MixedArchList),
            ("a []", 5, EmptyArchList),
            ("a [amd64", 9, Missing(']')),
            ("a <>", 5, EmptyProfiles),
            ("a:Foo", 6, InvalidArchQual("Foo".into())),
        ];
        for (text, column, kind) in table {
            let err = parse_relations(text).unwrap_err();
            assert_eq!((err.column, &err.kind), (*column, kind), "{text:?}: {err}");
        }
    }

    #[test]
    fn constraints_and_arch_evaluation() {
        let table: &[(&str, &str, bool)] = &[
            ("a (>= 1.0)", "1.0", true),
            ("a (>= 1.0)", "1.0~rc1", false),
            ("a (<< 2)", "1.9", true),
            ("a (<< 2)", "2", false),
            ("a (<= 2)", "2", true),
            ("a (<= 2)", "2.0", false),
            ("a (= 2)", "2-0", true),
            ("a (>> 2)", "2+b1", true),
            ("a", "0", true),
        ];
        for (text, ver, want) in table {
            let rel = &parse_relations(text).unwrap()[0].alternatives[0];
            let v = Version::parse(ver).unwrap();
            assert_eq!(rel.matches_version(&v), *want, "{text} with {ver}");
        }
        let arches: &[(&str, &str, bool)] = &[
            ("a [amd64]", "amd64", true),
            ("a [amd64]", "i386", false),
            ("a [!i386]", "amd64", true),
            ("a [!i386 !amd64]", "amd64", false),
            ("a [linux-any]", "amd64", true),
            ("a [kfreebsd-any]", "amd64", false),
            ("a [any-amd64]", "amd64", true),
            ("a [any-amd64]", "kfreebsd-amd64", true),
            ("a [any-i386]", "amd64", false),
            ("a [any]", "arm64", true),
            ("a", "arm64", true),
        ];
        for (text, arch, want) in arches {
            let rel = &parse_relations(text).unwrap()[0].alternatives[0];
            assert_eq!(rel.applies_to_arch(arch), *want, "{text} on {arch}");
        }
        let rel = &parse_relations("a <!nocheck> <cross stage1>").unwrap()[0].alternatives[0];
        assert!(rel.profiles_match(&[]));
        assert!(!rel.profiles_match(&["nocheck"]));
        assert!(rel.profiles_match(&["nocheck", "cross", "stage1"]));
    }
}
