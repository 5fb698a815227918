//! Randomised trees (seeded, so failures reproduce): every volume must be
//! clean for fsck.fat, and mtools and our reader must read the tree back.

use std::collections::BTreeSet;

use basalt_fat::{FatOptions, FatVolume, write_fat};
use basalt_tree::{Content, Entry, Tree};

mod common;
use common::{bytes, files_of, fsck_clean, mtools_match, scratch};

const FRAGMENTS: &[&str] = &[
    "a",
    "B",
    "readme",
    "README",
    "x.y",
    "v1.2.3",
    "ünï",
    "long name",
    "~tilde",
    "UPPER.TXT",
    "MixedCase.Ext",
    "12345678.123",
    "123456789.1234",
    ".dot",
    "a+b",
    "[x]",
    "日本",
    "grub",
    "mod",
    "name with  spaces",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_tree(seed: u64) -> Tree {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t = Tree::new();
    let mut dirs = vec!["/".to_string()];
    // Names used per directory, case-folded (FAT is case-insensitive).
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    for i in 0..400u64 {
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        let mut name = String::new();
        for _ in 0..1 + rng.below(3) {
            name.push_str(FRAGMENTS[rng.below(FRAGMENTS.len() as u64) as usize]);
        }
        if rng.below(2) == 0 {
            name.push_str(&format!("{i}"));
        }
        if rng.below(4) == 0 {
            name.push_str(".cfg");
        }
        if !used.insert((parent.clone(), name.to_lowercase())) {
            continue;
        }
        let path = if parent == "/" {
            format!("/{name}")
        } else {
            format!("{parent}/{name}")
        };
        if rng.below(6) == 0 && dirs.len() < 40 {
            t.insert(&path, Entry::dir(0o755).at(rng.below(2_000_000_000) as i64))
                .expect("dir");
            dirs.push(path);
        } else {
            let size = match rng.below(5) {
                0 => 0,
                1 => 512 * (1 + rng.below(4)),
                _ => rng.below(9000),
            } as usize;
            let content = Content::from_bytes(bytes(size, seed * 1000 + i));
            t.insert(
                &path,
                Entry::file(0o644, content).at(rng.below(4_000_000_000) as i64),
            )
            .expect("file");
        }
    }
    t
}

#[test]
fn random_trees_are_clean_and_read_back() {
    for seed in 1..=4u64 {
        let dir = scratch(&format!("random-{seed}"));
        let tree = random_tree(seed);
        let want = files_of(&tree);
        let img = dir.join("esp.img");
        let opts = FatOptions {
            size: 48 << 20,
            ..FatOptions::esp("RANDOM", seed as u32)
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&img)
            .expect("create");
        write_fat(&tree, &opts, &f, 0).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let vol = FatVolume::open(&f, 0).expect("open");
        for (k, v) in &want {
            assert!(
                vol.read_file(k)
                    .unwrap_or_else(|e| panic!("seed {seed} {k}: {e}"))
                    == *v,
                "seed {seed}: {k}"
            );
        }
        drop(f);
        fsck_clean(&img);
        mtools_match(img.to_str().expect("utf8"), &want, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn generated_tree_is_deterministic() {
    assert_eq!(random_tree(9), random_tree(9));
}
