//! The fields of a Debian Release file that this crate needs.
//!
//! See the Debian repository format: `Date` and `Valid-Until` are RFC 2822 dates in UTC;
//! the `SHA256` field lists `<hex> <size> <path>` per line, paths relative to
//! `dists/<suite>/`.

use std::collections::BTreeMap;

use crate::deb822;

/// Size and SHA256 of one file listed in the Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// A parsed Release file (the signed content of InRelease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// `Date` as written, and as seconds since the Unix epoch.
    pub date: String,
    pub date_secs: u64,
    /// `Valid-Until` as written, and as seconds since the Unix epoch.
    pub valid_until: Option<(String, u64)>,
    pub acquire_by_hash: bool,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// Path relative to `dists/<suite>/` -> size and SHA256.
    pub sha256: BTreeMap<String, FileInfo>,
}

impl Release {
    /// Parses the Release text. Errors are plain reasons; the caller adds the URL.
    pub fn parse(text: &str) -> Result<Release, String> {
        let paras = deb822::parse(text, "Release").map_err(|e| e.to_string())?;
        let [para] = paras.as_slice() else {
            return Err(format!("expected one paragraph, found {}", paras.len()));
        };
        let date = para.get("Date").ok_or("no Date field")?.to_string();
        let date_secs = parse_date(&date).map_err(|e| format!("Date {date:?}: {e}"))?;
        let valid_until = match para.get("Valid-Until") {
            Some(v) => Some((
                v.to_string(),
                parse_date(v).map_err(|e| format!("Valid-Until {v:?}: {e}"))?,
            )),
            None => None,
        };
        let list = |name: &str| -> Vec<String> {
            para.get(name)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let mut sha256 = BTreeMap::new();
        let field = para
            .field("SHA256")
            .ok_or("no SHA256 field (MD5/SHA1-only Release files are not accepted)")?;
        for (i, line) in field.value.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hash, size, path] = parts.as_slice() else {
                return Err(format!(
                    "SHA256 entry on line {}: expected `<sha256> <size> <path>`, found {line:?}",
                    field.line + i
                ));
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("SHA256 entry for {path}: bad hash {hash:?}"));
            }
            let size: u64 = size
                .parse()
                .map_err(|_| format!("SHA256 entry for {path}: bad size {size:?}"))?;
            sha256.insert(
                path.to_string(),
                FileInfo {
                    size,
                    sha256: hash.to_ascii_lowercase(),
                },
            );
        }
        Ok(Release {
            origin: para.get("Origin").map(str::to_string),
            suite: para.get("Suite").map(str::to_string),
            codename: para.get("Codename").map(str::to_string),
            date,
            date_secs,
            valid_until,
            acquire_by_hash: para
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            components: list("Components"),
            architectures: list("Architectures"),
            sha256,
        })
    }

    /// Checks the Release is for `suite` (its `Codename` or `Suite`) and still valid at `now`.
    pub fn check(&self, suite: &str, now: u64) -> Result<(), String> {
        self.check_suite(suite)?;
        self.check_valid_until(now)
    }

    /// Checks the Release's `Codename` or `Suite` is `suite`.
    pub fn check_suite(&self, suite: &str) -> Result<(), String> {
        let names = [self.codename.as_deref(), self.suite.as_deref()];
        if !names.contains(&Some(suite)) {
            return Err(format!(
                "is for Codename {:?} / Suite {:?}, not the requested suite {suite:?}",
                self.codename.as_deref().unwrap_or("-"),
                self.suite.as_deref().unwrap_or("-"),
            ));
        }
        Ok(())
    }

    /// Checks `Valid-Until` (when present) against `now`.
    pub fn check_valid_until(&self, now: u64) -> Result<(), String> {
        if let Some((text, secs)) = &self.valid_until
            && *secs < now
        {
            return Err(format!("expired: Valid-Until {text} is in the past"));
        }
        Ok(())
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses `[Day, ]DD Mon YYYY HH:MM:SS ZONE` where ZONE is UTC, GMT, Z or +0000.
pub fn parse_date(s: &str) -> Result<u64, String> {
    let s = s.split_once(',').map_or(s, |(_, rest)| rest);
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [day, mon, year, time, zone] = parts.as_slice() else {
        return Err("expected `Day, DD Mon YYYY HH:MM:SS UTC`".into());
    };
    if !matches!(*zone, "UTC" | "GMT" | "Z" | "+0000" | "-0000") {
        return Err(format!("unsupported time zone {zone:?}"));
    }
    let num = |v: &str, what: &str| -> Result<u64, String> {
        v.parse::<u64>().map_err(|_| format!("bad {what} {v:?}"))
    };
    let day = num(day, "day")?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(mon))
        .ok_or_else(|| format!("bad month {mon:?}"))?;
    let year = num(year, "year")?;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, sec] = hms.as_slice() else {
        return Err(format!("bad time {time:?}"));
    };
    let (h, m, sec) = (num(h, "hour")?, num(m, "minute")?, num(sec, "second")?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return Err("date out of range".into());
    }
    let month = u64::try_from(month + 1).map_err(|_| "bad month")?;
    Ok(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let table = [
            ("Thu, 01 Jan 1970 00:00:00 UTC", Ok(0)),
            ("Sat, 09 Aug 2025 09:31:25 UTC", Ok(1_754_731_885)),
            ("29 Feb 2024 12:00:00 +0000", Ok(1_709_208_000)),
            ("Sat, 09 Aug 2025 09:31:25 CEST", Err("zone")),
            ("Sat, 09 Foo 2025 09:31:25 UTC", Err("month")),
            ("Sat, 09 Aug 2025 UTC", Err("expected")),
        ];
        for (s, want) in table {
            match (parse_date(s), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{s}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{s}: {e}"),
                (got, w) => panic!("{s}: {got:?} vs {w:?}"),
            }
        }
    }

    const SAMPLE: &str = "Origin: Debian\nSuite: testing\nCodename: trixie\n\
Date: Sat, 09 Aug 2025 09:31:25 UTC\nValid-Until: Sat, 16 Aug 2025 09:31:25 UTC\n\
Acquire-By-Hash: yes\nArchitectures: amd64 arm64\nComponents: main contrib\n\
SHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 123 main/binary-amd64/Packages.xz\n \
ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789 456 main/binary-amd64/Packages\n";

    #[test]
    fn parses_sample() {
        let r = Release::parse(SAMPLE).unwrap();
        assert_eq!(r.codename.as_deref(), Some("trixie"));
        assert!(r.acquire_by_hash);
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(r.sha256.len(), 2);
        let p = &r.sha256["main/binary-amd64/Packages"];
        assert_eq!(p.size, 456);
        assert!(p.sha256.starts_with("abcdef"));
        assert_eq!(
            r.valid_until.as_ref().unwrap().1,
            1_754_731_885 + 7 * 86_400
        );
    }

    #[test]
    fn check_table() {
        let r = Release::parse(SAMPLE).unwrap();
        let until = r.valid_until.as_ref().unwrap().1;
        let table = [
            ("trixie", until, Ok(())),
            ("testing", until - 5, Ok(())),
            ("bookworm", until, Err("not the requested suite")),
            ("trixie", until + 1, Err("expired")),
        ];
        for (suite, now, want) in table {
            match (r.check(suite, now), want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(n)) => assert!(e.contains(n), "{e}"),
                (g, w) => panic!("{suite} {now}: {g:?} vs {w:?}"),
            }
        }
    }

    #[test]
    fn rejects_bad_release() {
        let table = [
            ("Codename: x\n", "no Date"),
            ("Date: Sat, 09 Aug 2025 09:31:25 UTC\n", "no SHA256"),
            (
                "Date: Sat, 09 Aug 2025 09:31:25 UTC\nSHA256:\n zz 1\n",
                "expected",
            ),
            (
                "Date: Sat, 09 Aug 2025 09:31:25 UTC\nSHA256:\n abc 1 a\n",
                "bad hash",
            ),
            ("A: 1\n\nB: 2\n", "one paragraph"),
        ];
        for (text, needle) in table {
            let e = Release::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
