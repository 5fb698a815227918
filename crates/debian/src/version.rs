//! Debian package versions and their exact dpkg ordering.
//!
//! Syntax (deb-version(7)): `[epoch:]upstream_version[-debian_revision]`.
//! The epoch is everything before the first colon, the revision everything after
//! the last hyphen. Ordering follows dpkg's `verrevcmp`: epochs compare
//! numerically, then upstream and revision are compared as alternating
//! non-digit and digit runs, where in non-digit runs `~` sorts before
//! everything (even the end of the string), letters sort before non-letters,
//! and digit runs compare numerically with no length limit.

use std::cmp::Ordering;
use std::fmt;

/// A parsed Debian version.
///
/// Equality is dpkg equality (`1.0` == `1.00` == `0:1.0-0`), consistent with `Ord`.
/// `Display` omits a zero epoch (unless needed to re-parse), so `0:1.0` displays
/// as `1.0`, which compares equal.
#[derive(Debug, Clone)]
pub struct Version {
    /// Epoch; 0 when absent.
    pub epoch: u32,
    /// Upstream part (non-empty).
    pub upstream: String,
    /// Debian revision; empty when absent.
    pub revision: String,
}

/// Why a version string was rejected. Messages follow dpkg's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version string is empty")]
    Empty,
    #[error("version string {0:?} has embedded spaces")]
    EmbeddedSpaces(String),
    #[error("epoch in version {0:?} is empty")]
    EmptyEpoch(String),
    #[error("epoch in version {0:?} is not a number")]
    EpochNotNumber(String),
    #[error("epoch in version {0:?} is too big (maximum {max})", max = i32::MAX)]
    EpochTooBig(String),
    #[error("nothing after colon in version {0:?}")]
    NothingAfterColon(String),
    #[error("revision in version {0:?} is empty")]
    EmptyRevision(String),
    #[error("upstream version in {0:?} is empty")]
    EmptyUpstream(String),
    #[error(
        "invalid character {ch:?} in upstream version of {version:?} (allowed: letters, digits, . + ~ - :)"
    )]
    InvalidUpstreamChar { version: String, ch: char },
    #[error(
        "invalid character {ch:?} in revision of {version:?} (allowed: letters, digits, . + ~)"
    )]
    InvalidRevisionChar { version: String, ch: char },
}

impl Version {
    /// Parses a version like dpkg's `parseversion`. Leading and trailing blanks are
    /// ignored; an upstream part not starting with a digit is accepted (dpkg only
    /// warns, see [`Version::warning`]), every other dpkg complaint is an error.
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let text = s.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
        if text.is_empty() {
            return Err(VersionError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(VersionError::EmbeddedSpaces(text.to_string()));
        }
        let owned = || text.to_string();
        let (epoch, rest) = match text.split_once(':') {
            None => (0, text),
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(VersionError::EmptyEpoch(owned()));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VersionError::EpochNotNumber(owned()));
                }
                let epoch = e
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| i32::try_from(n).is_ok())
                    .ok_or_else(|| VersionError::EpochTooBig(owned()))?;
                if rest.is_empty() {
                    return Err(VersionError::NothingAfterColon(owned()));
                }
                (epoch, rest)
            }
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            None => (rest, ""),
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(VersionError::EmptyRevision(owned()));
                }
                (u, r)
            }
        };
        if upstream.is_empty() {
            return Err(VersionError::EmptyUpstream(owned()));
        }
        if let Some(ch) = upstream
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".-+~:".contains(c)))
        {
            return Err(VersionError::InvalidUpstreamChar {
                version: owned(),
                ch,
            });
        }
        if let Some(ch) = revision
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))
        {
            return Err(VersionError::InvalidRevisionChar {
                version: owned(),
                ch,
            });
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }

    /// dpkg's warning-level complaint about this version, if any.
    pub fn warning(&self) -> Option<&'static str> {
        if self.upstream.starts_with(|c: char| c.is_ascii_digit()) {
            None
        } else {
            Some("version number does not start with digit")
        }
    }
}

/// Weight of one non-digit position in dpkg's ordering; `None` is the end of the string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` on one version part (upstream or revision).
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let digit_at = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !digit_at(a, i)) || (j < b.len() && !digit_at(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run: skip leading zeros, then the longer run wins, else the first difference.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit_at(a, i) && digit_at(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit_at(a, i) {
            return Ordering::Greater;
        }
        if digit_at(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A zero epoch is omitted unless the upstream part has a colon, which
        // would otherwise be read back as the epoch separator.
        if self.epoch != 0 || self.upstream.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn known_orderings() {
        use Ordering::*;
        let table: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Equal),
            ("1.0", "1.00", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.", Less),
            ("1.0a", "1.0b", Less),
            ("1.0Z", "1.0a", Less),
            ("1:0.1", "9.9", Greater),
            ("2:1", "10:1", Less),
            ("1.2.3-1", "1.2.3-2", Less),
            ("1.2.3-10", "1.2.3-9", Greater),
            ("1.2.3-1~bpo1", "1.2.3-1", Less),
            ("1.9", "1.10", Less),
            ("1.010", "1.9", Greater),
            (
                "99999999999999999999999998",
                "99999999999999999999999999",
                Less,
            ),
            ("1.000000000000000000000000001", "1.1", Equal),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("1.0-1", "1.0.1-1", Less),
            ("7.88.1-10+deb12u5", "7.88.1-10", Greater),
            ("1a", "1", Greater),
            ("a", "1", Greater),
            ("1.0-a-1", "1.0-1", Greater),
        ];
        for (a, b, want) in table {
            assert_eq!(v(a).cmp(&v(b)), *want, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parse_splits_and_round_trips() {
        let table: &[(&str, u32, &str, &str, &str)] = &[
            ("1.0", 0, "1.0", "", "1.0"),
            ("1:2.3-4", 1, "2.3", "4", "1:2.3-4"),
            ("0:1.0", 0, "1.0", "", "1.0"),
            ("1:2:3-4-5", 1, "2:3-4", "5", "1:2:3-4-5"),
            (
                "  2.0~rc1+dfsg-1.1  ",
                0,
                "2.0~rc1+dfsg",
                "1.1",
                "2.0~rc1+dfsg-1.1",
            ),
            ("abc", 0, "abc", "", "abc"),
            ("0:0:", 0, "0:", "", "0:0:"),
        ];
        for (text, epoch, up, rev, shown) in table {
            let parsed = v(text);
            assert_eq!(
                (
                    parsed.epoch,
                    parsed.upstream.as_str(),
                    parsed.revision.as_str()
                ),
                (*epoch, *up, *rev),
                "{text}"
            );
            assert_eq!(parsed.to_string(), *shown);
            assert_eq!(v(&parsed.to_string()), parsed);
        }
        assert_eq!(
            v("abc").warning(),
            Some("version number does not start with digit")
        );
        assert_eq!(v("1abc").warning(), None);
    }

    #[test]
    fn parse_rejects_like_dpkg() {
        let table: &[(&str, VersionError)] = &[
            ("", VersionError::Empty),
            ("   ", VersionError::Empty),
            ("1 0", VersionError::EmbeddedSpaces("1 0".into())),
            (":1", VersionError::EmptyEpoch(":1".into())),
            ("a:1", VersionError::EpochNotNumber("a:1".into())),
            ("-1:1", VersionError::EpochNotNumber("-1:1".into())),
            (
                "2147483648:1",
                VersionError::EpochTooBig("2147483648:1".into()),
            ),
            ("1:", VersionError::NothingAfterColon("1:".into())),
            ("1.0-", VersionError::EmptyRevision("1.0-".into())),
            ("-1", VersionError::EmptyUpstream("-1".into())),
            (
                "1.0_1",
                VersionError::InvalidUpstreamChar {
                    version: "1.0_1".into(),
                    ch: '_',
                },
            ),
            (
                "1.0-1_2",
                VersionError::InvalidRevisionChar {
                    version: "1.0-1_2".into(),
                    ch: '_',
                },
            ),
            (
                "1.0-1=2",
                VersionError::InvalidRevisionChar {
                    version: "1.0-1=2".into(),
                    ch: '=',
                },
            ),
            ("1.0-1:2", VersionError::EpochNotNumber("1.0-1:2".into())),
            (
                "1.é",
                VersionError::InvalidUpstreamChar {
                    version: "1.é".into(),
                    ch: 'é',
                },
            ),
        ];
        for (text, want) in table {
            assert_eq!(Version::parse(text).as_ref(), Err(want), "{text:?}");
        }
    }
}
