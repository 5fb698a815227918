//! fsck.fat and mtools as oracles for realistic ESP trees, plus our own
//! reader, offsets inside a bigger image, reproducibility and refusals.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;

use basalt_fat::{FatError, FatOptions, FatPlan, FatVolume, write_fat};
use basalt_tree::{Content, ContentStore, Entry, Tree};

mod common;
use common::{bytes, files_of, fsck_clean, mtools_match, scratch};

const MIB: u64 = 1 << 20;
const EPOCH: i64 = 1_700_000_000;

/// A realistic ESP: shim/grub, two kernel slots, grub with 300 modules in
/// one directory, long and odd names.
fn esp_tree(store: &ContentStore) -> Tree {
    let mut t = Tree::new();
    let mut add = |path: &str, content: Content| {
        t.insert_p(path, Entry::file(0o644, content).at(EPOCH))
            .expect("insert");
    };
    let big = |n: usize, seed: u64| store.put_bytes(&bytes(n, seed)).expect("store");
    add("/EFI/BOOT/BOOTX64.EFI", big(900_000, 1));
    add("/EFI/BOOT/grubx64.efi", big(2 * MIB as usize + 17, 2));
    add("/EFI/basalt/vmlinuz-a", big(10 * MIB as usize, 3));
    add("/EFI/basalt/initrd-a", big(3 * MIB as usize + 4095, 4));
    add("/EFI/basalt/vmlinuz-b", big(10 * MIB as usize - 1, 5));
    add("/EFI/basalt/initrd-b", big(4096, 6));
    add(
        "/grub/grub.cfg",
        Content::from_bytes(b"set timeout=1\n".to_vec()),
    );
    add(
        "/grub/grubenv",
        Content::from_bytes([b"# GRUB Environment Block\n".as_slice(), &[b'#'; 999]].concat()),
    );
    add(
        "/grub/README",
        Content::from_bytes(b"exact 8.3, no long name".to_vec()),
    );
    add("/grub/empty", Content::from_bytes(Vec::new()));
    add(
        "/A very long file name with spaces, ünïcødé and more than thirteen units.txt",
        Content::from_bytes(b"long".to_vec()),
    );
    add("/.hidden", Content::from_bytes(b"dot".to_vec()));
    for i in 0..300u64 {
        let name = match i % 5 {
            0 => format!("normal{i}.mod"),
            1 => format!("part_gpt_{i}.mod"),
            2 => format!("x{i}.lst"),
            3 => format!("MOD{i}.MOD"),
            _ => format!("multi.dot.name.{i}.mod"),
        };
        add(
            &format!("/grub/x86_64-efi/{name}"),
            Content::from_bytes(bytes((i as usize * 37) % 5000, 100 + i)),
        );
    }
    t.mkdir_p("/EFI/Linux", EPOCH).expect("empty dir");
    t
}

fn own_reader_match(f: &File, offset: u64, want: &BTreeMap<String, Vec<u8>>) {
    let vol = FatVolume::open(f, offset).expect("open volume");
    assert_eq!(
        vol.fsinfo_free_clusters().expect("fsinfo"),
        Some(vol.free_clusters()),
        "FSInfo free count"
    );
    for (k, v) in want {
        assert!(
            vol.read_file(k).expect("read back") == *v,
            "own reader: {k}"
        );
    }
    let modules = vol.read_dir("/grub/x86_64-efi").expect("list");
    assert_eq!(modules.len(), 300);
    let shorts: std::collections::BTreeSet<&str> =
        modules.iter().map(|e| e.short_name.as_str()).collect();
    assert_eq!(shorts.len(), 300, "short names are unique");
}

#[test]
fn small_clusters_volume() {
    let dir = scratch("small");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let tree = esp_tree(&store);
    let want = files_of(&tree);
    let img = dir.join("esp.img");
    let opts = FatOptions {
        size: 64 * MIB,
        timestamp: Some(EPOCH),
        ..FatOptions::esp("BASALT-ESP", 0x1234_abcd)
    };
    let f = File::create(&img).expect("create");
    let plan = write_fat(&tree, &opts, &f, 0).expect("write");
    assert_eq!(plan.geometry.cluster_bytes(), 512);
    drop(f);
    fsck_clean(&img);
    mtools_match(img.to_str().expect("utf8"), &want, &dir);
    own_reader_match(&File::open(&img).expect("open"), 0, &want);
    // Reproducible: a second write gives the same bytes.
    let img2 = dir.join("esp2.img");
    write_fat(&tree, &opts, &File::create(&img2).expect("create"), 0).expect("write again");
    assert!(
        fs::read(&img).expect("read") == fs::read(&img2).expect("read"),
        "not reproducible"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn default_esp_at_offset_in_disk_image() {
    let dir = scratch("offset");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let tree = esp_tree(&store);
    let want = files_of(&tree);
    let opts = FatOptions {
        hidden_sectors: 2048,
        ..FatOptions::esp("BASALT-ESP", 7)
    };
    // Alone, and inside a "disk" at 1 MiB.
    let alone = dir.join("esp.img");
    let disk = dir.join("disk.img");
    let plan = write_fat(&tree, &opts, &File::create(&alone).expect("create"), 0).expect("write");
    assert_eq!(plan.geometry.cluster_bytes(), 4096);
    let df = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&disk)
        .expect("create");
    df.set_len(1200 * MIB).expect("disk size");
    write_fat(&tree, &opts, &df, MIB).expect("write at offset");
    assert_eq!(
        df.metadata().expect("stat").len(),
        1200 * MIB,
        "disk not resized"
    );
    fsck_clean(&alone);
    mtools_match(&format!("{}@@{}", disk.display(), MIB), &want, &dir);
    own_reader_match(&df, MIB, &want);
    // The region holds the same bytes as the stand-alone volume.
    let used = plan.geometry.cluster_offset(2) + plan.used_bytes();
    let mut a = vec![0u8; used as usize];
    let mut b = vec![0u8; used as usize];
    File::open(&alone)
        .expect("open")
        .read_exact_at(&mut a, 0)
        .expect("read");
    df.read_exact_at(&mut b, MIB).expect("read");
    assert!(a == b, "offset write differs");
    // Unused clusters stay holes: far less allocated than the volume size.
    let allocated = fs::metadata(&alone)
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .expect("stat");
    assert!(
        allocated < 64 * MIB,
        "image not sparse: {allocated} bytes allocated"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn refusals() {
    let base = || {
        let mut t = Tree::new();
        t.insert_p(
            "/EFI/BOOT/BOOTX64.EFI",
            Entry::file(0o644, Content::from_bytes(vec![1; 100])),
        )
        .expect("insert");
        t
    };
    let opts = FatOptions {
        size: 64 * MIB,
        ..FatOptions::esp("ESP", 1)
    };
    let mut symlink = base();
    symlink
        .insert("/EFI/link", Entry::symlink("BOOT"))
        .expect("insert");
    let mut clash = base();
    clash
        .insert(
            "/EFI/BOOT/bootx64.efi",
            Entry::file(0o644, Content::from_bytes(vec![])),
        )
        .expect("insert");
    let mut colon = base();
    colon
        .insert("/EFI/a:b", Entry::file(0o644, Content::from_bytes(vec![])))
        .expect("insert");
    let mut huge = base();
    huge.insert(
        "/big",
        Entry::file(0o644, Content::from_bytes(vec![0; 70 * MIB as usize])),
    )
    .expect("insert");
    let cases: Vec<(Tree, FatOptions, &str)> = vec![
        (symlink, opts.clone(), "a symlink cannot be stored"),
        (clash, opts.clone(), "differ only in case"),
        (colon, opts.clone(), "not allowed"),
        (
            huge,
            opts.clone(),
            "clusters of 512 bytes but the volume has",
        ),
        (
            base(),
            FatOptions {
                size: 16 * MIB,
                ..opts.clone()
            },
            "FAT32 needs at least",
        ),
        (
            base(),
            FatOptions {
                label: "way too long label".into(),
                ..opts.clone()
            },
            "longer than 11",
        ),
        (
            base(),
            FatOptions {
                label: "a.b".into(),
                ..opts.clone()
            },
            "not allowed",
        ),
        (
            base(),
            FatOptions {
                cluster_size: Some(3000),
                ..opts.clone()
            },
            "power of two",
        ),
    ];
    for (tree, o, needle) in cases {
        let err: FatError = FatPlan::new(&tree, &o).expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}
