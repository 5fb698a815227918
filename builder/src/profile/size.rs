//! Human sizes in profiles: `512MiB`, `2GiB`, `1048576`, `4M`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("{0:?} is not a size (use e.g. 512MiB, 2GiB or a byte count)")]
    Syntax(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parse a size. Units are binary (KiB, MiB, GiB, TiB; K, M, G, T mean the
/// same); a bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(SizeError::Syntax(s.to_string()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::Overflow(s.to_string()))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => return Err(SizeError::Syntax(s.to_string())),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(s.to_string()))
}

/// Format bytes for messages (`2 GiB`, `1.5 MiB`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("4096", Some(4096)),
            ("2MiB", Some(2 << 20)),
            ("2M", Some(2 << 20)),
            ("1GiB", Some(1 << 30)),
            (" 3 GiB ", Some(3 << 30)),
            ("1TiB", Some(1 << 40)),
            ("GiB", None),
            ("1.5GiB", None),
            ("-1", None),
            ("12 parsecs", None),
            ("99999999999999999999", None),
            ("99999999999TiB", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input).ok(), *want, "{input}");
        }
    }

    #[test]
    fn human_table() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(2 << 30), "2.0 GiB");
    }
}
