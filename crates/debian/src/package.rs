//! One binary package as described by a Packages index paragraph.

use std::fmt;

use crate::control::Paragraph;
use crate::relation::{Group, Op, Relation, RelationError, parse_relations, valid_package_name};
use crate::version::{Version, VersionError};

/// `Multi-Arch:` value (absent means `no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// `Priority:` value; the derived order is from most to least important.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Required,
    Important,
    Standard,
    Optional,
    Extra,
}

impl Priority {
    fn parse(s: &str) -> Option<Priority> {
        Some(match s {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "optional" => Priority::Optional,
            "extra" => Priority::Extra,
            _ => return None,
        })
    }

    /// The field spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Required => "required",
            Priority::Important => "important",
            Priority::Standard => "standard",
            Priority::Optional => "optional",
            Priority::Extra => "extra",
        }
    }
}

/// A binary package from a Packages index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    /// `Source:` value as written (may carry a `(version)`), if present.
    pub source: Option<String>,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<Priority>,
    pub section: Option<String>,
    pub depends: Vec<Group>,
    pub pre_depends: Vec<Group>,
    pub recommends: Vec<Group>,
    /// Provided names, each unversioned or with an `=` constraint; no alternatives.
    pub provides: Vec<Relation>,
    /// No alternatives (Policy §7.4).
    pub conflicts: Vec<Relation>,
    /// No alternatives (Policy §7.3).
    pub breaks: Vec<Relation>,
    /// Path of the .deb relative to the mirror root.
    pub filename: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the .deb.
    pub sha256: String,
    /// `Installed-Size:` in KiB, if present.
    pub installed_size: Option<u64>,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageErrorKind {
    #[error("required field is missing")]
    Missing,
    #[error("invalid package name {0:?}")]
    InvalidName(String),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Relation(#[from] RelationError),
    #[error("{0:?} is not a non-negative integer")]
    InvalidNumber(String),
    #[error("{0:?} is not 64 lowercase hex digits")]
    InvalidSha256(String),
    #[error("invalid value {value:?} (expected one of: {expected})")]
    InvalidValue {
        value: String,
        expected: &'static str,
    },
    #[error("alternatives ('|') are not allowed here: {0:?}")]
    Alternatives(String),
    #[error("provided name {0:?} may only carry an '=' version")]
    ProvidesOperator(String),
}

/// A package paragraph error: paragraph line, package name (when known) and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("paragraph at line {line}{}: field {field}: {kind}", package_label(.package))]
pub struct PackageError {
    pub line: usize,
    pub package: Option<String>,
    pub field: &'static str,
    pub kind: PackageErrorKind,
}

fn package_label(package: &Option<String>) -> String {
    package
        .as_ref()
        .map(|p| format!(" (package {p})"))
        .unwrap_or_default()
}

impl Package {
    /// Builds a package from a Packages index paragraph. Package, Version,
    /// Architecture, Filename, Size and SHA256 are required.
    pub fn from_paragraph(para: &Paragraph) -> Result<Package, PackageError> {
        let mut package_name: Option<String> = None;
        let err = |field: &'static str, package: &Option<String>, kind| PackageError {
            line: para.line,
            package: package.clone(),
            field,
            kind,
        };
        let required = |field: &'static str, package: &Option<String>| {
            para.get(field)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(field, package, PackageErrorKind::Missing))
        };
        let name = required("Package", &package_name)?;
        if !valid_package_name(name) {
            return Err(err(
                "Package",
                &package_name,
                PackageErrorKind::InvalidName(name.to_string()),
            ));
        }
        package_name = Some(name.to_string());
        let pn = &package_name;
        let version =
            Version::parse(required("Version", pn)?).map_err(|e| err("Version", pn, e.into()))?;
        let number = |field: &'static str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| err(field, pn, PackageErrorKind::InvalidNumber(text.to_string())))
        };
        let groups = |field: &'static str| -> Result<Vec<Group>, PackageError> {
            para.get(field)
                .map_or(Ok(Vec::new()), parse_relations)
                .map_err(|e| err(field, pn, e.into()))
        };
        let singles = |field: &'static str| -> Result<Vec<Relation>, PackageError> {
            groups(field)?
                .into_iter()
                .map(|mut g| {
                    if g.alternatives.len() == 1 {
                        Ok(g.alternatives.remove(0))
                    } else {
                        Err(err(
                            field,
                            pn,
                            PackageErrorKind::Alternatives(g.to_string()),
                        ))
                    }
                })
                .collect()
        };
        let sha256 = required("SHA256", pn)?;
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err(
                "SHA256",
                pn,
                PackageErrorKind::InvalidSha256(sha256.to_string()),
            ));
        }
        let multi_arch = match para.get("Multi-Arch") {
            None | Some("no") => MultiArch::No,
            Some("same") => MultiArch::Same,
            Some("foreign") => MultiArch::Foreign,
            Some("allowed") => MultiArch::Allowed,
            Some(other) => {
                return Err(err(
                    "Multi-Arch",
                    pn,
                    PackageErrorKind::InvalidValue {
                        value: other.to_string(),
                        expected: "no, same, foreign, allowed",
                    },
                ));
            }
        };
        let essential = match para.get("Essential") {
            None | Some("no") => false,
            Some("yes") => true,
            Some(other) => {
                return Err(err(
                    "Essential",
                    pn,
                    PackageErrorKind::InvalidValue {
                        value: other.to_string(),
                        expected: "yes, no",
                    },
                ));
            }
        };
        let priority = para
            .get("Priority")
            .map(|p| {
                Priority::parse(p).ok_or_else(|| {
                    err(
                        "Priority",
                        pn,
                        PackageErrorKind::InvalidValue {
                            value: p.to_string(),
                            expected: "required, important, standard, optional, extra",
                        },
                    )
                })
            })
            .transpose()?;
        let provides = singles("Provides")?;
        if let Some(bad) = provides
            .iter()
            .find(|r| r.constraint.as_ref().is_some_and(|c| c.op != Op::Eq))
        {
            return Err(err(
                "Provides",
                pn,
                PackageErrorKind::ProvidesOperator(bad.to_string()),
            ));
        }
        Ok(Package {
            name: name.to_string(),
            version,
            architecture: required("Architecture", pn)?.to_string(),
            source: para.get("Source").map(str::to_string),
            multi_arch,
            essential,
            priority,
            section: para.get("Section").map(str::to_string),
            depends: groups("Depends")?,
            pre_depends: groups("Pre-Depends")?,
            recommends: groups("Recommends")?,
            provides,
            conflicts: singles("Conflicts")?,
            breaks: singles("Breaks")?,
            filename: required("Filename", pn)?.to_string(),
            size: number("Size", required("Size", pn)?)?,
            sha256: sha256.to_string(),
            installed_size: para
                .get("Installed-Size")
                .map(|s| number("Installed-Size", s))
                .transpose()?,
        })
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.name, self.version, self.architecture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::parse;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn para(extra: &str) -> Result<Package, PackageError> {
        let text = format!(
            "Package: foo\nVersion: 1:2.0-1\nArchitecture: amd64\nFilename: pool/main/f/foo/foo.deb\n\
             Size: 1234\nSHA256: {SHA}\n{extra}"
        );
        Package::from_paragraph(&parse(&text).unwrap()[0])
    }

    #[test]
    fn parses_all_fields() {
        let p = (para(
            "Multi-Arch: foreign\nEssential: yes\nPriority: required\nSection: admin\n\
             Installed-Size: 99\nSource: foo-src (1.0)\nDepends: a (>= 1), b | c\n\
             Pre-Depends: d\nRecommends: e\nProvides: v1, v2 (= 3)\nConflicts: x\nBreaks: y (<< 2)\n",
        ))
        .unwrap();
        assert_eq!(p.to_string(), "foo 1:2.0-1 (amd64)");
        assert_eq!(p.multi_arch, MultiArch::Foreign);
        assert!(p.essential);
        assert_eq!(p.priority, Some(Priority::Required));
        assert_eq!(p.section.as_deref(), Some("admin"));
        assert_eq!(p.installed_size, Some(99));
        assert_eq!(p.size, 1234);
        assert_eq!(p.source.as_deref(), Some("foo-src (1.0)"));
        let show = |g: &[Group]| {
            g.iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let show_r = |r: &[Relation]| {
            r.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(show(&p.depends), "a (>= 1), b | c");
        assert_eq!(show(&p.pre_depends), "d");
        assert_eq!(show(&p.recommends), "e");
        assert_eq!(show_r(&p.provides), "v1, v2 (= 3)");
        assert_eq!(show_r(&p.conflicts), "x");
        assert_eq!(show_r(&p.breaks), "y (<< 2)");
        let plain = (para("")).unwrap();
        assert_eq!(
            (plain.multi_arch, plain.essential, plain.priority),
            (MultiArch::No, false, None)
        );
    }

    #[test]
    fn rejects_bad_fields() {
        let table: &[(&str, &str, &str)] = &[
            (
                "Multi-Arch: maybe\n",
                "Multi-Arch",
                "invalid value \"maybe\"",
            ),
            ("Essential: true\n", "Essential", "invalid value \"true\""),
            ("Priority: high\n", "Priority", "invalid value \"high\""),
            (
                "Installed-Size: -1\n",
                "Installed-Size",
                "\"-1\" is not a non-negative integer",
            ),
            ("Depends: a (>= 1\n", "Depends", "missing ')'"),
            (
                "Provides: v (>= 1)\n",
                "Provides",
                "may only carry an '=' version",
            ),
            ("Conflicts: a | b\n", "Conflicts", "alternatives"),
        ];
        for (extra, field, needle) in table {
            let e = (para(extra)).unwrap_err();
            assert_eq!(e.field, *field, "{extra}");
            assert_eq!(e.package.as_deref(), Some("foo"));
            assert!(e.to_string().contains(needle), "{extra}: {e}");
        }
        let missing: &[(&str, &str)] = &[
            (
                "Version: 1\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: x\n",
                "Package",
            ),
            (
                "Package: foo\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: x\n",
                "Version",
            ),
            (
                "Package: foo\nVersion: 1\nArchitecture: all\nFilename: f\nSize: 1\n",
                "SHA256",
            ),
            (
                "Package: foo\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: x\n",
                "SHA256",
            ),
            (
                "Package: foo\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: SHA\n",
                "Filename",
            ),
            (
                "Package: foo\nVersion: 1\nFilename: f\nSize: 1\nSHA256: SHA\n",
                "Architecture",
            ),
            (
                "Package: foo\nVersion: 1\nArchitecture: all\nFilename: f\nSize: 1x\nSHA256: SHA\n",
                "Size",
            ),
            ("Package: Foo\nVersion: 1\n", "Package"),
            ("Package: foo\nVersion: 1.0_x\n", "Version"),
        ];
        for (text, field) in missing {
            let text = text.replace("SHA256: SHA", &format!("SHA256: {SHA}"));
            let e = Package::from_paragraph(&parse(&text).unwrap()[0]).unwrap_err();
            assert_eq!(e.field, *field, "{text}");
        }
        let bad_sha =
            "Package: foo\nVersion: 1\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: ABC\n";
        let e = Package::from_paragraph(&parse(bad_sha).unwrap()[0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "paragraph at line 1 (package foo): field SHA256: \"ABC\" is not 64 lowercase hex digits"
        );
    }
}
