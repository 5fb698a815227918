//! The library name ordering of glibc's `_dl_cache_libcmp` (elf/dl-cache.c):
//! runs of ASCII digits compare as decimal numbers, a digit sorts after any
//! non-digit, other bytes compare as C `char` (signed on x86-64). ld.so
//! binary-searches the cache with it, and ldconfig keeps its entries sorted
//! by it (descending).

use std::cmp::Ordering;

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// The value of the byte as x86-64's signed `char`.
fn schar(b: u8) -> i32 {
    i32::from(i8::from_ne_bytes([b]))
}

/// Reads a run of digits at `s[*i..]`, as C `int` arithmetic (wrapping).
fn number(s: &[u8], i: &mut usize) -> i32 {
    let mut v: i32 = 0;
    while let Some(&b) = s.get(*i).filter(|b| is_digit(**b)) {
        v = v.wrapping_mul(10).wrapping_add(i32::from(b - b'0'));
        *i += 1;
    }
    v
}

/// `_dl_cache_libcmp(a, b)` as an ordering (the sign of its result).
/// `a` and `b` are the bytes before the terminating NUL.
pub fn libcmp(a: &[u8], b: &[u8]) -> Ordering {
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    while at(a, i) != 0 {
        let (x, y) = (at(a, i), at(b, j));
        if is_digit(x) {
            if !is_digit(y) {
                return Ordering::Greater;
            }
            let v1 = number(a, &mut i);
            let v2 = number(b, &mut j);
            if v1 != v2 {
                // The C code returns val1 - val2 (int, wrapping).
                return v1.wrapping_sub(v2).cmp(&0);
            }
        } else if is_digit(y) {
            return Ordering::Less;
        } else if x != y {
            return (schar(x) - schar(y)).cmp(&0);
        } else {
            i += 1;
            j += 1;
        }
    }
    (schar(at(a, i)) - schar(at(b, j))).cmp(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn orders_like_glibc() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("libc.so.6", "libc.so.6", Equal),
            ("libc.so.6", "libc.so.10", Less),
            ("libfoo.so.01", "libfoo.so.1", Equal),
            ("libz.so", "libz.so.1", Less),
            ("libz.so.1", "libz.so", Greater),
            ("liba1.so", "libab.so", Greater),
            ("libab.so", "liba1.so", Less),
            ("libA.so", "liba.so", Less),
            ("libm.so.6", "libc.so.6", Greater),
            ("ld-linux-x86-64.so.2", "libc.so.6", Less),
            ("libx.so.2.10", "libx.so.2.9", Greater),
            ("", "", Equal),
            ("", "a", Less),
            ("a", "", Greater),
            // Bytes >= 0x80 are negative as x86-64 chars.
            ("lib\u{e9}.so", "libz.so", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(libcmp(a.as_bytes(), b.as_bytes()), *want, "{a} vs {b}");
        }
    }
}
