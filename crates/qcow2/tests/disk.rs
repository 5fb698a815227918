//! The disk writers together: a small Basalt-style GPT disk with a FAT32
//! ESP written in place, a /usr slot with its dm-verity tree after the
//! data, then qcow2. Checked with sgdisk, mtools, our verifier and qemu-img.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::process::Command;

use basalt_fat::{FatOptions, FatVolume, write_fat};
use basalt_gpt::{Attributes, DiskLayout, PartSize, PartSpec, guid_from_seed, read_gpt, types};
use basalt_tree::{Content, Entry, Tree};

const MIB: u64 = 1 << 20;

fn tool_ok(cmd: &mut Command, name: &str) -> Option<String> {
    match cmd.output() {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success(), "{name} failed: {text}");
            Some(text)
        }
        Err(_) => {
            eprintln!("SKIPPING {name} check: not installed");
            None
        }
    }
}

fn build(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, [u8; 32], DiskLayout) {
    let seed = b"integration-seed";
    let g = |l: &str| guid_from_seed(seed, l);
    let usr_data = 8 * MIB;
    let usr_hash = basalt_verity::plan(usr_data)
        .expect("verity plan")
        .hash_size;
    let slot = (usr_data + usr_hash).div_ceil(MIB) * MIB;
    let specs = vec![
        PartSpec::new(
            1,
            "EFI-SYSTEM",
            types::ESP,
            g("EFI-SYSTEM"),
            PartSize::Bytes(40 * MIB),
        ),
        PartSpec::new(
            2,
            "BIOS-BOOT",
            types::BIOS_BOOT,
            g("BIOS-BOOT"),
            PartSize::Bytes(2 * MIB),
        ),
        PartSpec::new(
            3,
            "USR-A",
            types::USR_X86_64,
            g("USR-A"),
            PartSize::Bytes(slot),
        )
        .with_attributes(Attributes::READ_ONLY),
        PartSpec::new(
            4,
            "USR-B",
            types::USR_X86_64,
            g("USR-B"),
            PartSize::Bytes(slot),
        )
        .with_attributes(Attributes::READ_ONLY),
        PartSpec::new(
            6,
            "OEM",
            types::LINUX_DATA,
            g("OEM"),
            PartSize::Bytes(4 * MIB),
        ),
        PartSpec::new(
            9,
            "ROOT",
            types::ROOT_X86_64,
            g("ROOT"),
            PartSize::Bytes(8 * MIB),
        )
        .with_attributes(Attributes::GROWFS),
    ];
    let layout = DiskLayout::plan(g("disk"), &specs, None).expect("layout");
    let img = dir.join(name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&img)
        .expect("create");
    f.set_len(layout.disk_size).expect("size");
    layout.write_headers(&mut &f).expect("gpt");

    let esp = layout.partition(1).expect("esp");
    let mut tree = Tree::new();
    tree.insert_p(
        "/EFI/BOOT/BOOTX64.EFI",
        Entry::file(0o644, Content::from_bytes(vec![0x4d; 70_000])),
    )
    .expect("insert");
    tree.insert_p(
        "/EFI/basalt/vmlinuz-a",
        Entry::file(0o644, Content::from_bytes(vec![0x7f; 3 * MIB as usize])),
    )
    .expect("insert");
    let opts = FatOptions {
        size: esp.size(),
        timestamp: Some(1_700_000_000),
        hidden_sectors: u32::try_from(esp.entry.first_lba).expect("lba"),
        ..FatOptions::esp("BASALT-ESP", 0x0bad_cafe)
    };
    write_fat(&tree, &opts, &f, esp.offset()).expect("fat");

    // /usr slot: stand-in file system bytes, then the hash tree right after.
    let usr = layout.partition(3).expect("usr");
    let data: Vec<u8> = (0..usr_data).map(|i| (i / 4096 % 251) as u8).collect();
    f.write_all_at(&data, usr.offset()).expect("usr data");
    let v = basalt_verity::format(
        &f,
        usr.offset(),
        usr_data,
        &[9; 32],
        guid_from_seed(seed, "verity").0,
        &f,
        usr.offset() + usr_data,
    )
    .expect("verity");
    assert!(usr_data + v.plan.hash_size <= usr.size());
    (img, v.root_hash, layout)
}

#[test]
fn gpt_fat_verity_qcow2_together() {
    let dir = std::env::temp_dir().join(format!("basalt-disk-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let (img, root, layout) = build(&dir, "disk.img");
    let f = File::open(&img).expect("open");

    let gpt = read_gpt(&mut &f).expect("read gpt");
    assert_eq!(gpt.by_name("USR-B").map(|(n, _)| n), Some(4));
    let usr = layout.partition(3).expect("usr");
    basalt_verity::verify(&f, usr.offset(), 8 * MIB, &f, usr.offset() + 8 * MIB, &root)
        .expect("verity verify");
    let esp = layout.partition(1).expect("esp");
    let vol = FatVolume::open(&f, esp.offset()).expect("fat");
    assert_eq!(
        vol.read_file("/EFI/BOOT/BOOTX64.EFI").expect("read"),
        vec![0x4d; 70_000]
    );

    if let Some(t) = tool_ok(Command::new("sgdisk").arg("-v").arg(&img), "sgdisk -v") {
        assert!(t.contains("No problems found"), "{t}");
    }
    let spec = format!("{}@@{}", img.display(), esp.offset());
    if let Some(t) = tool_ok(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-i", &spec, "::/EFI/basalt"]),
        "mdir",
    ) {
        assert!(t.contains("vmlinuz-a"), "{t}");
    }

    let qcow = dir.join("disk.qcow2");
    basalt_qcow2::convert(&img, &qcow).expect("qcow2");
    tool_ok(
        Command::new("qemu-img")
            .args(["check", "-f", "qcow2"])
            .arg(&qcow),
        "qemu-img check",
    );
    tool_ok(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "qcow2"])
            .arg(&img)
            .arg(&qcow),
        "qemu-img compare",
    );

    // Two builds, same bytes (raw and qcow2).
    let (img2, root2, _) = build(&dir, "disk2.img");
    assert_eq!(root, root2);
    assert!(
        fs::read(&img).expect("read") == fs::read(&img2).expect("read"),
        "raw differs"
    );
    let qcow2 = dir.join("disk2.qcow2");
    basalt_qcow2::convert(&img2, &qcow2).expect("qcow2");
    assert!(
        fs::read(&qcow).expect("read") == fs::read(&qcow2).expect("read"),
        "qcow2 differs"
    );
    let _ = fs::remove_dir_all(&dir);
}
