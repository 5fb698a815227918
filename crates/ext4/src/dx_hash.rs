//! The htree directory hash: half-MD4 over the name (ext4 "Hash Tree
//! Directories": `EXT2_HASH_HALF_MD4` with the signed-char conversion,
//! since the superblock carries `EXT2_FLAGS_SIGNED_HASH`).

/// Initial buffer when the hash seed is all zero.
const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
const K2: u32 = 0o13240474631;
const K3: u32 = 0o15666365641;
/// Hashes are even; `0xFFFF_FFFE` is reserved for end-of-directory.
const EOF_HASH: u32 = 0x7FFF_FFFF << 1;

fn f(x: u32, y: u32, z: u32) -> u32 {
    z ^ (x & (y ^ z))
}
fn g(x: u32, y: u32, z: u32) -> u32 {
    (x & y).wrapping_add((x ^ y) & z)
}
fn h(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}

fn half_md4_transform(buf: &mut [u32; 4], inp: &[u32; 8]) {
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($f($b, $c, $d).wrapping_add($x))
                .rotate_left($s);
        };
    }
    round!(f, a, b, c, d, inp[0], 3);
    round!(f, d, a, b, c, inp[1], 7);
    round!(f, c, d, a, b, inp[2], 11);
    round!(f, b, c, d, a, inp[3], 19);
    round!(f, a, b, c, d, inp[4], 3);
    round!(f, d, a, b, c, inp[5], 7);
    round!(f, c, d, a, b, inp[6], 11);
    round!(f, b, c, d, a, inp[7], 19);

    round!(g, a, b, c, d, inp[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, inp[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, inp[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, inp[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, inp[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, inp[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, inp[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, inp[6].wrapping_add(K2), 13);

    round!(h, a, b, c, d, inp[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, inp[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, inp[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, inp[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, inp[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, inp[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, inp[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, inp[4].wrapping_add(K3), 15);

    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

/// Pack up to 32 bytes of the name into 8 words, padded with a pattern
/// derived from the remaining length; bytes are sign-extended.
fn str_to_words(msg: &[u8], len: usize) -> [u32; 8] {
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    let mut pad = len32 | (len32 << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let mut val = pad;
    let n = len.min(32);
    let mut w = 0;
    for (i, &byte) in msg.iter().take(n).enumerate() {
        if i % 4 == 0 {
            val = pad;
        }
        let c = i32::from(i8::from_le_bytes([byte]));
        val = u32::from_le_bytes(c.to_le_bytes()).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < 8 {
        out[w] = val;
    }
    out
}

/// The major hash of `name` with the filesystem's hash seed.
pub fn dx_hash(name: &[u8], seed: &[u8; 16]) -> u32 {
    let mut buf = DEFAULT_SEED;
    if seed.iter().any(|&b| b != 0) {
        for (i, w) in seed.chunks_exact(4).enumerate() {
            buf[i] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
    }
    let mut p = name;
    let mut len = name.len();
    loop {
        let words = str_to_words(p, len);
        half_md4_transform(&mut buf, &words);
        if len <= 32 {
            break;
        }
        len -= 32;
        p = &p[32..];
    }
    let hash = buf[1] & !1;
    if hash == EOF_HASH {
        (0x7FFF_FFFF - 1) << 1
    } else {
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_debugfs_dx_hash() {
        // Values printed by `debugfs -R "dx_hash -h half_md4 [-s SEED] NAME"`.
        let seed: [u8; 16] = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ];
        let cases: [(&[u8], [u8; 16], u32); 5] = [
            (b"hello", [0; 16], 0x1746_da32),
            (b"hello", seed, 0xa26e_4a80),
            (b"a", [0; 16], 0xd5fa_7d7a),
            (
                b"libsomething-very-long-name-beyond-32-bytes.so.1.2.3",
                [0; 16],
                0x4efa_f4b0,
            ),
            // Non-ASCII: the signed-char variant (signed_directory_hash).
            ("é日本😀".as_bytes(), [0; 16], 0x250a_00a2),
        ];
        for (name, s, want) in cases {
            assert_eq!(
                dx_hash(name, &s),
                want,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }
}
