//! Random trees: every image must pass `e2fsck -fn` and read back equal
//! to the model.

mod common;

use std::collections::BTreeMap;

use basalt_ext4::Mode;
use basalt_tree::{Content, Entry, Kind, Tree};
use common::*;
use proptest::prelude::*;

/// Name characters: ASCII, accented Latin, CJK and an emoji (no spaces or
/// quotes, which the debugfs command line would need escaped).
const ALPHABET: &[&str] = &[
    "a", "b", "Z", "0", "9", "-", "_", ".", "é", "ü", "日", "本", "😀", "x",
];

#[derive(Debug, Clone)]
enum KindSpec {
    Dir,
    /// size, content seed, sparse mask (bit i: block i % 32 is zero)
    File(u64, u64, u32),
    Symlink(usize),
    HardLink(usize),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
struct Spec {
    parent: usize,
    name: Vec<usize>,
    kind: KindSpec,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(usize, usize)>,
}

fn size_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(4095),
        Just(4096),
        Just(4097),
        1u64..20_000,
        20_000u64..600_000,
        Just(1_500_000),
    ]
}

fn kind_strategy() -> impl Strategy<Value = KindSpec> {
    prop_oneof![
        3 => Just(KindSpec::Dir),
        6 => (size_strategy(), any::<u64>(), prop_oneof![Just(0u32), Just(0xAAAA_AAAA), any::<u32>()]).prop_map(|(s, seed, m)| KindSpec::File(s, seed, m)),
        2 => prop_oneof![1usize..60, 60usize..200, Just(4095usize)].prop_map(KindSpec::Symlink),
        1 => any::<usize>().prop_map(KindSpec::HardLink),
        1 => (0u32..4096, 0u32..(1 << 20)).prop_map(|(a, b)| KindSpec::Char(a, b)),
        1 => (0u32..4096, 0u32..300).prop_map(|(a, b)| KindSpec::Block(a, b)),
        1 => Just(KindSpec::Fifo),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        any::<usize>(),
        prop::collection::vec(0..ALPHABET.len(), 1..12),
        kind_strategy(),
        0u32..0o10000,
        prop_oneof![Just(0u32), Just(1000), any::<u32>()],
        prop_oneof![Just(0u32), Just(100_000), any::<u32>()],
        prop_oneof![
            Just(0i64),
            Just(1_700_000_000),
            -(1i64 << 31)..=(3 * (1i64 << 32) + (1 << 31) - 1)
        ],
        prop::collection::vec((0usize..6, 0usize..4), 0..4),
    )
        .prop_map(|(parent, name, kind, mode, uid, gid, mtime, xattrs)| Spec {
            parent,
            name,
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
}

fn bytes(size: u64, seed: u64, mask: u32) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(size as usize);
    for i in 0..size {
        if i % 4096 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        let zero = mask & (1 << ((i / 4096) % 32)) != 0;
        v.push(if zero {
            0
        } else {
            (x >> (i % 8 * 8)) as u8 ^ (i as u8)
        });
    }
    v
}

const XATTR_NAMES: [&str; 6] = [
    "user.a",
    "user.mime_type",
    "security.capability",
    "trusted.t",
    "user.long.name.for.testing",
    "security.selinux",
];
const XATTR_SIZES: [usize; 4] = [0, 5, 20, 1200];

fn build(specs: &[Spec], big_dir: usize) -> Tree {
    let mut t = Tree::new();
    let mut dirs = vec!["/".to_string()];
    let mut files: Vec<String> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let parent = dirs[s.parent % dirs.len()].clone();
        let name: String = s.name.iter().map(|&c| ALPHABET[c]).collect();
        if name == "." || name == ".." || name.chars().all(|c| c == '.') {
            continue;
        }
        let path = if parent == "/" {
            format!("/{name}")
        } else {
            format!("{parent}/{name}")
        };
        if t.contains(&path) || path == "/lost+found" {
            continue;
        }
        let kind = match &s.kind {
            KindSpec::Dir => Kind::Dir,
            KindSpec::File(size, seed, mask) => {
                Kind::File(Content::from_bytes(bytes(*size, *seed, *mask)))
            }
            // A '/' every 50 bytes: ext4-view refuses components over 255 bytes.
            KindSpec::Symlink(len) => Kind::Symlink(
                (0..*len)
                    .map(|j| {
                        if j % 50 == 49 {
                            '/'
                        } else {
                            char::from(b'a' + ((i + j) % 26) as u8)
                        }
                    })
                    .collect(),
            ),
            KindSpec::HardLink(sel) if !files.is_empty() => {
                Kind::HardLink(files[sel % files.len()].clone())
            }
            KindSpec::HardLink(_) => Kind::Fifo,
            KindSpec::Char(a, b) => Kind::CharDevice {
                major: *a,
                minor: *b,
            },
            KindSpec::Block(a, b) => Kind::BlockDevice {
                major: *a,
                minor: *b,
            },
            KindSpec::Fifo => Kind::Fifo,
        };
        let mut xattrs = BTreeMap::new();
        for &(n, sz) in &s.xattrs {
            let v: Vec<u8> = (0..XATTR_SIZES[sz]).map(|j| (j * 7 + i) as u8).collect();
            xattrs.insert(XATTR_NAMES[n].to_string(), v);
        }
        let is_dir = matches!(kind, Kind::Dir);
        let is_file = matches!(kind, Kind::File(_));
        let e = Entry {
            kind,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            mtime: s.mtime,
            xattrs,
        };
        t.insert(&path, e).expect("insert");
        if is_dir {
            dirs.push(path.clone());
        }
        if is_file {
            files.push(path);
        }
    }
    if big_dir > 0 {
        t.insert("/big", Entry::dir(0o755)).ok();
        for i in 0..big_dir {
            t.insert(
                &format!("/big/entry-number-{i:05}-with-a-longer-name"),
                Entry::file(0o644, Content::from_bytes(vec![])),
            )
            .expect("insert");
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 30, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_are_clean_and_read_back(
        specs in prop::collection::vec(spec_strategy(), 0..60),
        big_dir in prop_oneof![4 => Just(0usize), 1 => 200usize..700],
        slack in 0u32..20,
        writable in prop_oneof![4 => Just(false), 1 => Just(true)],
    ) {
        let tree = build(&specs, big_dir);
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("t.img");
        let mode = if writable { Mode::Writable { size_bytes: 64 << 20 } } else { Mode::ReadOnly { slack_percent: slack } };
        let size = write_image(&tree, &opts(mode.clone()), &img);
        if writable {
            prop_assert_eq!(size, 64 << 20);
        }
        prop_assert_eq!(std::fs::metadata(&img).expect("stat").len(), size);
        e2fsck(&img);
        verify(&tree, &img);
    }
}
