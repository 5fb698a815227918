//! In-place replacement of file contents, checked with fsck.fat, mtools
//! and our reader.

use std::fs::{self, OpenOptions};

use basalt_fat::{FatError, FatOptions, FatVolume, write_fat};
use basalt_tree::{Content, Entry, Tree};

mod common;
use common::{bytes, files_of, fsck_clean, mtools_match, scratch};

const MIB: usize = 1 << 20;

#[test]
fn replace_files_in_place() {
    let dir = scratch("update");
    let mut tree = Tree::new();
    for (path, size, seed) in [
        ("/EFI/BOOT/BOOTX64.EFI", 300_000, 1),
        ("/EFI/basalt/vmlinuz-a", 3 * MIB, 2),
        ("/EFI/basalt/vmlinuz-b", 3 * MIB, 3),
        ("/EFI/basalt/initrd-b", 1000, 4),
        ("/grub/grubenv", 1024, 5),
        ("/grub/empty", 0, 6),
    ] {
        tree.insert_p(
            path,
            Entry::file(0o644, Content::from_bytes(bytes(size, seed))),
        )
        .expect("insert");
    }
    let img = dir.join("esp.img");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&img)
        .expect("create");
    let opts = FatOptions {
        size: 40 << 20,
        ..FatOptions::esp("UPD", 3)
    };
    write_fat(&tree, &opts, &f, 0).expect("write");
    // (path, new size, seed): grow, shrink, to empty, from empty.
    let cases = [
        ("/EFI/basalt/vmlinuz-b", 5 * MIB + 3, 10),
        ("/efi/BASALT/initrd-b", 2 * MIB, 11),
        ("/EFI/basalt/vmlinuz-a", 100, 12),
        ("/grub/grubenv", 0, 13),
        ("/grub/empty", 4096, 14),
    ];
    for (path, size, seed) in cases {
        let data = bytes(size, seed);
        let mut vol = FatVolume::open(&f, 0).expect("open");
        vol.replace_file(path, &mut &data[..], size as u64, 1_700_000_000)
            .expect("replace");
        let canonical = tree
            .iter()
            .map(|(k, _)| k.to_string())
            .find(|k| k.eq_ignore_ascii_case(path))
            .expect("in tree");
        tree.insert(&canonical, Entry::file(0o644, Content::from_bytes(data)))
            .expect("update model");
    }
    let want = files_of(&tree);
    let vol = FatVolume::open(&f, 0).expect("open");
    assert_eq!(
        vol.fsinfo_free_clusters().expect("fsinfo"),
        Some(vol.free_clusters())
    );
    for (k, v) in &want {
        assert!(vol.read_file(k).expect("read") == *v, "{k}");
    }
    // Refusals: no space, directories, missing files, short content.
    let mut vol = FatVolume::open(&f, 0).expect("open");
    let huge = vec![1u8; 40 * MIB];
    assert!(matches!(
        vol.replace_file(
            "/EFI/basalt/vmlinuz-a",
            &mut &huge[..],
            huge.len() as u64,
            0
        ),
        Err(FatError::NoSpace { .. })
    ));
    assert!(matches!(
        vol.replace_file("/EFI/basalt", &mut &b""[..], 0, 0),
        Err(FatError::NotFound { .. })
    ));
    assert!(matches!(
        vol.replace_file("/nope", &mut &b""[..], 0, 0),
        Err(FatError::NotFound { .. })
    ));
    assert!(matches!(
        vol.replace_file("/grub/empty", &mut &b"abc"[..], 10, 0),
        Err(FatError::ContentChanged { .. })
    ));
    drop(vol);
    drop(f);
    fsck_clean(&img);
    mtools_match(img.to_str().expect("utf8"), &want, &dir);
    let _ = fs::remove_dir_all(&dir);
}
