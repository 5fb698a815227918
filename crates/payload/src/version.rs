//! Ordering of image versions, so an update agent can tell "newer" from
//! "older". Versions are payload labels (`[A-Za-z0-9._+~-]`, see
//! [`crate::check_label`]) compared with the Debian policy algorithm for the
//! upstream part of a version (Debian Policy 5.6.12): alternate runs of
//! non-digits and digits; non-digit runs compare character by character with
//! `~` before everything (even the end of the string) and letters before
//! other characters; digit runs compare numerically. So `0.2.0 > 0.1.9`,
//! `1.10 > 1.9`, `2.0~rc1 < 2.0`, `2.0+fix > 2.0`. Epochs and revisions
//! (`:` and the last `-`) are not split out: `-` is just a character here.

use std::cmp::Ordering;

/// Weight of one character in a non-digit run (Debian Policy 5.6.12):
/// `~` sorts first, then the end of the run, then letters, then the rest.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares two digit runs numerically (any length, no overflow).
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compares two versions (total order; equal only when the runs are equal,
/// e.g. `1.01` == `1.1`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        loop {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let o = weight(ca).cmp(&weight(cb));
            if o != Ordering::Equal {
                return o;
            }
            i += usize::from(ca.is_some());
            j += usize::from(cb.is_some());
        }
        // Digit run.
        let da = a[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        let o = cmp_digits(&a[i..i + da], &b[j..j + db]);
        if o != Ordering::Equal {
            return o;
        }
        i += da;
        j += db;
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    const TABLE: &[(&str, &str, Ordering)] = &[
        ("0.1.0", "0.2.0", Less),
        ("0.2.0", "0.1.9", Greater),
        ("1.9", "1.10", Less),
        ("1.01", "1.1", Equal),
        ("2.0~rc1", "2.0", Less),
        ("2.0~rc1", "2.0~rc2", Less),
        ("2.0~~", "2.0~", Less),
        ("2.0+fix", "2.0", Greater),
        ("2.0a", "2.0+", Less),
        ("2.0", "2.0.0", Less),
        ("1", "1", Equal),
        ("a", "b", Less),
        ("10", "9", Greater),
        ("1.0-2", "1.0-10", Less),
        (
            "99999999999999999999999",
            "99999999999999999999998",
            Greater,
        ),
        ("2026.11.21", "2026.2.1", Greater),
    ];

    #[test]
    fn table() {
        for &(a, b, want) in TABLE {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// Oracle: dpkg's own comparison agrees on every pair of the table's
    /// versions (skipped loudly when dpkg is absent).
    #[test]
    fn agrees_with_dpkg() {
        if std::process::Command::new("dpkg")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED agrees_with_dpkg: dpkg is not installed");
            return;
        }
        let mut all: Vec<&str> = TABLE.iter().flat_map(|&(a, b, _)| [a, b]).collect();
        // dpkg treats a leading non-digit upstream version and `-` specially.
        all.retain(|v| v.starts_with(|c: char| c.is_ascii_digit()) && !v.contains('-'));
        all.sort_unstable();
        all.dedup();
        for a in &all {
            for b in &all {
                let ours = compare_versions(a, b);
                let op = match ours {
                    Less => "lt",
                    Equal => "eq",
                    Greater => "gt",
                };
                let ok = std::process::Command::new("dpkg")
                    .args(["--compare-versions", a, op, b])
                    .status()
                    .expect("running dpkg")
                    .success();
                assert!(ok, "dpkg disagrees: {a} {op} {b}");
            }
        }
    }
}
