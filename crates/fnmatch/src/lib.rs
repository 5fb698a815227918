//! fnmatch(3)-style matching of module alias patterns (`*`, `?`, `[...]`,
//! `[!...]`, ranges), as modprobe applies them to modules.alias.
//!
//! Shared by the build-time depmod (`basalt-kmod`) and the initramfs /init,
//! which loads NIC drivers by modalias; no dependencies, so /init stays
//! small and static.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_at(&p, &t)
}

fn match_at(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Backtracking point for the last '*': (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], t[ti])
                .map(|(ok, len)| if ok { len } else { 0 })
                .filter(|&l| l > 0),
            Some(&c) => (c == t[ti]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the bracket expression at the start of `p`; returns
/// (matched, length of the expression) or None if it is unterminated.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut ok = false;
    let mut first = true;
    while let Some(&x) = p.get(i) {
        if x == ']' && !first {
            return Some((ok != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let e = p[i + 2];
            ok |= x <= c && c <= e;
            i += 3;
        } else {
            ok |= x == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let cases = [
            ("crc32c", "crc32c", true),
            ("crypto-crc32c", "crc32c", false),
            (
                "pci:v00001AF4d*sv*sd*bc*sc*i*",
                "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
                true,
            ),
            (
                "pci:v00001AF4d*sv*sd*bc*sc*i*",
                "pci:v00008086d00001001sv0sd0bc01sc00i00",
                false,
            ),
            ("char-major-10-[0-9]", "char-major-10-7", true),
            ("char-major-10-[!0-9]", "char-major-10-7", false),
            ("a?c", "abc", true),
            ("a*", "", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("x[", "x[", false),
            ("virtio:d00000001v*", "virtio:d00000001v00001AF4", true),
            ("virtio:d00000001v*", "virtio:d00000002v00001AF4", false),
            (
                "pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*",
                "pci:v00001D0Fd0000EC20sv00001D0Fsd00000000bc02sc00i00",
                true,
            ),
            (
                "pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*",
                "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
                false,
            ),
            ("a?c", "ac", false),
            ("", "", true),
            ("", "x", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(matches(p, t), want, "{p} vs {t}");
        }
    }
}
