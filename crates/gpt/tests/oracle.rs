//! sgdisk as the oracle for the default Basalt layout, plus read-back,
//! relocation after growth and backup fallback.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_gpt::{
    Attributes, DiskLayout, Guid, PartSize, PartSpec, grow_partition_to_end, guid_from_seed,
    read_gpt, relocate_backup, types,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn have_sgdisk() -> bool {
    let ok = Command::new("sgdisk")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPING sgdisk oracle: sgdisk not installed (apt-get install gdisk)");
    }
    ok
}

fn sgdisk(args: &[&str], img: &Path) -> (bool, String) {
    let out = Command::new("sgdisk")
        .args(args)
        .arg(img)
        .output()
        .expect("running sgdisk");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-gpt-{}-{name}", std::process::id()));
    fs::create_dir_all(&d).expect("scratch");
    d.join("disk.img")
}

/// The default layout of the issue, with ROOT filling an 8 GiB disk.
fn default_specs() -> Vec<PartSpec> {
    let g = |l: &str| guid_from_seed(b"test-seed", l);
    vec![
        PartSpec::new(
            1,
            "EFI-SYSTEM",
            types::ESP,
            g("EFI-SYSTEM"),
            PartSize::Bytes(GIB),
        ),
        PartSpec::new(
            2,
            "BIOS-BOOT",
            types::BIOS_BOOT,
            g("BIOS-BOOT"),
            PartSize::Bytes(2 * MIB),
        )
        .with_attributes(Attributes::LEGACY_BIOS_BOOTABLE),
        PartSpec::new(
            3,
            "USR-A",
            types::USR_X86_64,
            g("USR-A"),
            PartSize::Bytes(2 * GIB),
        )
        .with_attributes(Attributes::READ_ONLY),
        PartSpec::new(
            4,
            "USR-B",
            types::USR_X86_64,
            g("USR-B"),
            PartSize::Bytes(2 * GIB),
        )
        .with_attributes(Attributes::READ_ONLY | Attributes::NO_AUTO),
        PartSpec::new(
            6,
            "OEM",
            types::LINUX_DATA,
            g("OEM"),
            PartSize::Bytes(128 * MIB),
        ),
        PartSpec::new(9, "ROOT", types::ROOT_X86_64, g("ROOT"), PartSize::Fill)
            .with_attributes(Attributes::GROWFS),
    ]
}

fn write_image(path: &Path, layout: &DiskLayout) {
    let mut f = File::create(path).expect("create");
    layout.write_headers(&mut f).expect("write headers");
    assert_eq!(f.metadata().expect("stat").len(), layout.disk_size);
}

#[test]
fn default_layout_passes_sgdisk() {
    let img = scratch("default");
    let layout = DiskLayout::plan(
        guid_from_seed(b"test-seed", "disk"),
        &default_specs(),
        Some(8 * GIB),
    )
    .expect("plan");
    write_image(&img, &layout);
    // Our own reader agrees with the plan.
    let gpt = read_gpt(&mut File::open(&img).expect("open")).expect("read back");
    assert!(gpt.alternate_ok && !gpt.from_backup && gpt.protective_mbr && !gpt.needs_relocation());
    let got: Vec<(u32, basalt_gpt::PartitionEntry)> = gpt.partitions.clone();
    let want: Vec<(u32, basalt_gpt::PartitionEntry)> = layout
        .partitions
        .iter()
        .map(|p| (p.number, p.entry.clone()))
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort_by_key(|(n, _)| *n);
    assert_eq!(got, want_sorted);
    if !have_sgdisk() {
        return;
    }
    let (ok, text) = sgdisk(&["-v"], &img);
    assert!(
        ok && text.contains("No problems found"),
        "sgdisk -v: {text}"
    );
    let (ok, text) = sgdisk(&["-p"], &img);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "Disk identifier (GUID): {}",
            layout.disk_guid.to_string().to_uppercase()
        )),
        "{text}"
    );
    for p in &layout.partitions {
        let (ok, info) = sgdisk(&["-i", &p.number.to_string()], &img);
        assert!(ok, "{info}");
        let e = &p.entry;
        for needle in [
            format!(
                "Partition GUID code: {}",
                e.type_guid.to_string().to_uppercase()
            ),
            format!(
                "Partition unique GUID: {}",
                e.part_guid.to_string().to_uppercase()
            ),
            format!("First sector: {} ", e.first_lba),
            format!("Last sector: {} ", e.last_lba),
            format!("Attribute flags: {:016X}", e.attributes.0),
            format!("Partition name: '{}'", e.name),
        ] {
            assert!(
                info.contains(&needle),
                "partition {}: {needle:?} not in\n{info}",
                p.number
            );
        }
        assert_eq!(e.first_lba % 2048, 0, "1 MiB alignment");
    }
    // Entries 5, 7 and 8 stay empty.
    for n in [5, 7, 8] {
        assert!(gpt.partition(n).is_none());
    }
    fs::remove_dir_all(img.parent().expect("dir")).ok();
}

#[test]
fn growth_relocation_and_fallback() {
    let img = scratch("grow");
    let specs: Vec<PartSpec> = default_specs()
        .into_iter()
        .map(|mut s| {
            if s.number == 9 {
                s.size = PartSize::Bytes(64 * MIB);
            }
            s
        })
        .collect();
    let layout = DiskLayout::plan(Guid::from_u128(7), &specs, None).expect("plan");
    write_image(&img, &layout);
    let again = scratch("grow-again");
    write_image(&again, &layout);
    // Same plan, same bytes (the rest of the sparse images is holes).
    let ends = |p: &Path| {
        let f = File::open(p).expect("open");
        let mut head = vec![0u8; MIB as usize];
        let mut tail = vec![0u8; MIB as usize];
        f.read_exact_at(&mut head, 0).expect("head");
        f.read_exact_at(&mut tail, layout.disk_size - MIB)
            .expect("tail");
        (head, tail)
    };
    assert!(ends(&img) == ends(&again), "not reproducible");

    let root_start = layout.partition(9).expect("root").entry.first_lba;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .expect("open");
    f.set_len(layout.disk_size + 3 * GIB).expect("grow file");
    let mut f = f;
    let before = read_gpt(&mut f).expect("read grown");
    assert!(before.needs_relocation());
    if have_sgdisk() {
        let (_, text) = sgdisk(&["-v"], &img);
        assert!(
            !text.contains("No problems found"),
            "sgdisk should notice the misplaced backup: {text}"
        );
    }
    let after = relocate_backup(&mut f).expect("relocate");
    assert!(!after.needs_relocation() && after.alternate_ok);
    let grown = grow_partition_to_end(&mut f, 9).expect("grow root");
    let root = grown.partition(9).expect("root");
    assert_eq!(root.first_lba, root_start);
    assert_eq!(root.last_lba, grown.header.last_usable_lba);
    assert!(
        grow_partition_to_end(&mut f, 3).is_err(),
        "USR-A is not last"
    );
    if have_sgdisk() {
        let (ok, text) = sgdisk(&["-v"], &img);
        assert!(
            ok && text.contains("No problems found"),
            "after growth: {text}"
        );
    }
    // Damage the primary header: the backup is used.
    f.write_all_at(&[0xff; 8], 512 + 24).expect("corrupt");
    let fallback = read_gpt(&mut f).expect("fallback");
    assert!(fallback.from_backup);
    assert_eq!(fallback.partitions, grown.partitions);
    // Damage the backup too: a clear error naming both.
    let last = fallback.header.my_lba;
    f.write_all_at(&[0xff; 8], last * 512 + 24)
        .expect("corrupt");
    let err = read_gpt(&mut f).expect_err("both bad").to_string();
    assert!(err.contains("primary") && err.contains("backup"), "{err}");
    fs::remove_dir_all(img.parent().expect("dir")).ok();
    fs::remove_dir_all(again.parent().expect("dir")).ok();
}
