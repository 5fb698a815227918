//! POSIX.1-2001 pax extended header records: `"<len> <key>=<value>\n"`,
//! where `<len>` counts the whole record including its own digits.

use std::collections::BTreeMap;

/// Key prefix for extended attributes as written by GNU tar and star.
pub const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Encode one record.
pub fn record(key: &str, value: &[u8]) -> Vec<u8> {
    // " " + key + "=" + value + "\n"
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    debug_assert_eq!(out.len(), len);
    out
}

/// Encode a set of records (sorted by key, so the output is deterministic).
pub fn records(map: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    map.iter().flat_map(|(k, v)| record(k, v)).collect()
}

/// Parse the body of a pax header into its records, later keys winning.
pub fn parse(mut data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    while !data.is_empty() {
        if data.iter().all(|b| *b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|b| *b == b' ')
            .ok_or("pax record without a length")?;
        let len_txt =
            std::str::from_utf8(&data[..sp]).map_err(|_| "pax record length is not ASCII")?;
        let len: usize = len_txt
            .parse()
            .map_err(|_| format!("pax record length {len_txt:?} is not a number"))?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(format!("pax record of length {len} is malformed"));
        }
        let body = &data[sp + 1..len - 1];
        let eq = body
            .iter()
            .position(|b| *b == b'=')
            .ok_or("pax record without '='")?;
        let key = std::str::from_utf8(&body[..eq]).map_err(|_| "pax key is not UTF-8")?;
        out.insert(key.to_string(), body[eq + 1..].to_vec());
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths_table() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            ("path", b"a", b"9 path=a\n"),
            ("path", b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234567891234567890abc", b""),
            ("mtime", b"-5", b"12 mtime=-5\n"),
        ];
        for (k, v, want) in cases {
            let r = record(k, v);
            let len: usize = std::str::from_utf8(&r[..r.iter().position(|b| *b == b' ').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, r.len(), "{k}");
            if !want.is_empty() {
                assert_eq!(&r[..], *want);
            }
            let back = parse(&r).expect("parse");
            assert_eq!(back[*k], v.to_vec());
        }
        // the length crossing a digit boundary (98 + 2 digits = 100, needs 3)
        let v = vec![b'x'; 98 - " k=\n".len()];
        let r = record("k", &v);
        assert_eq!(
            r.len(),
            std::str::from_utf8(&r[..3])
                .unwrap()
                .trim()
                .parse::<usize>()
                .unwrap()
        );
    }

    #[test]
    fn parse_errors_table() {
        for bad in [
            &b"x path=a\n"[..],
            b"99 path=a\n",
            b"9 patha\n\n",
            b"9 path=ab",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
