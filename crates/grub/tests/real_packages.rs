//! Opt-in integration test with real Debian GRUB packages.
//!
//! `BASALT_GRUB_TREE=/path/to/root` must point at a directory where
//! grub-common, grub-pc-bin, grub-efi-amd64-bin and the libraries
//! grub-mkimage needs (libc6, liblzma5, libdevmapper1.02.1 and their
//! dependencies) are unpacked (`dpkg-deb -x`). The test builds core.img and
//! BOOTX64.EFI twice (must be byte-identical) and, when qemu-system-x86_64,
//! OVMF, sgdisk, mkfs.vfat and mtools are installed, boots a generated disk
//! under SeaBIOS and OVMF to check that the A/B grub.cfg runs and that
//! save_env really counts down the trial slot's tries on the ESP.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_grub::grubenv::EnvBlock;
use basalt_grub::slots::BootState;
use basalt_grub::{BootArtifacts, GrubConfig, build, install_bios};
use basalt_tree::{Content, Entry, Tree};

fn load_dir(tree: &mut Tree, root: &Path, rel: &str) {
    let dir = root.join(rel.trim_start_matches('/'));
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let name = name.into_string().unwrap();
        let key = if rel == "/" {
            format!("/{name}")
        } else {
            format!("{rel}/{name}")
        };
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_string()
                .unwrap();
            tree.insert(&key, Entry::symlink(target)).unwrap();
        } else if meta.is_dir() {
            tree.insert(&key, Entry::dir(0o755)).unwrap();
            load_dir(tree, root, &key);
        } else if meta.is_file() {
            tree.insert(
                &key,
                Entry::file(0o644, Content::from_bytes(fs::read(&path).unwrap())),
            )
            .unwrap();
        }
    }
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED boot test: {name} not installed");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const ESP_FIRST_LBA: u64 = 2048;
const ESP_SECTORS: u64 = 40 * 2048;
const BIOS_FIRST_LBA: u64 = ESP_FIRST_LBA + ESP_SECTORS;
const BIOS_SECTORS: u64 = 2 * 2048;

/// GPT disk with an ESP (FAT32, our files, fake kernels) and a BIOS-boot
/// partition holding our core.img.
fn make_disk(dir: &Path, art: &BootArtifacts, grubenv: &[u8], kernel_a: Option<&[u8]>) -> PathBuf {
    let disk = dir.join("disk.img");
    File::create(&disk)
        .unwrap()
        .set_len((BIOS_FIRST_LBA + BIOS_SECTORS + 2048) * 512)
        .unwrap();
    run(Command::new("sgdisk")
        .arg("-o")
        .arg(format!("-n1:{ESP_FIRST_LBA}:+{}", ESP_SECTORS - 1))
        .args(["-t1:EF00", "-c1:EFI-SYSTEM"])
        .arg(format!("-n2:{BIOS_FIRST_LBA}:+{}", BIOS_SECTORS - 1))
        .args(["-t2:EF02", "-c2:BIOS-BOOT"])
        .arg(&disk));
    let stage = dir.join("esp");
    let mut files = art.esp_files.clone();
    files.retain(|(p, _)| p != "/grub/grubenv");
    files.push(("/grub/grubenv".into(), grubenv.to_vec()));
    for slot in ["a", "b"] {
        let kernel = match (slot, kernel_a) {
            ("a", Some(k)) => k.to_vec(),
            _ => b"not a kernel\n".to_vec(),
        };
        files.push((format!("/EFI/basalt/vmlinuz-{slot}"), kernel));
        files.push((
            format!("/EFI/basalt/initrd-{slot}"),
            b"not an initrd\n".to_vec(),
        ));
    }
    for (p, bytes) in &files {
        let host = stage.join(p.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, bytes).unwrap();
    }
    let esp = dir.join("esp.img");
    File::create(&esp)
        .unwrap()
        .set_len(ESP_SECTORS * 512)
        .unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "EFI-SYSTEM"])
        .arg(&esp));
    run(Command::new("mcopy")
        .args(["-s", "-i"])
        .arg(&esp)
        .arg(stage.join("EFI"))
        .arg(stage.join("grub"))
        .arg("::/"));
    let d = File::options().read(true).write(true).open(&disk).unwrap();
    d.write_all_at(&fs::read(&esp).unwrap(), ESP_FIRST_LBA * 512)
        .unwrap();
    install_bios(
        &d,
        &art.boot_img,
        &art.core_img,
        BIOS_FIRST_LBA,
        BIOS_SECTORS,
    )
    .unwrap();
    run(Command::new("sgdisk").arg("-v").arg(&disk));
    disk
}

fn read_state(dir: &Path, disk: &Path) -> BootState {
    let out = dir.join("grubenv.out");
    let _ = fs::remove_file(&out);
    run(Command::new("mcopy")
        .arg("-i")
        .arg(format!("{}@@{}", disk.display(), ESP_FIRST_LBA * 512))
        .arg("::/grub/grubenv")
        .arg(&out));
    let bytes = fs::read(&out).unwrap();
    assert_eq!(bytes.len(), 1024);
    BootState::from_env(&EnvBlock::parse(&bytes).unwrap(), &['A', 'B']).unwrap()
}

fn boot(dir: &Path, disk: &Path, uefi: bool) -> String {
    let log = dir.join("serial.log");
    let _ = fs::remove_file(&log);
    let mut cmd = Command::new("timeout");
    cmd.args([
        "180",
        "qemu-system-x86_64",
        "-machine",
        "accel=tcg",
        "-m",
        "256",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
    ])
    .arg("-serial")
    .arg(format!("file:{}", log.display()))
    .arg("-drive")
    .arg(format!("file={},format=raw,if=virtio", disk.display()));
    if uefi {
        cmd.args(["-bios", "/usr/share/ovmf/OVMF.fd"]);
    }
    let st = cmd.status().unwrap();
    let text = String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).replace('\r', "");
    assert!(
        st.success(),
        "qemu (uefi={uefi}) did not exit by itself: {st}\n{text}"
    );
    text
}

#[test]
fn builds_and_boots_with_real_packages() {
    let Some(root) = std::env::var_os("BASALT_GRUB_TREE") else {
        eprintln!("SKIPPED: set BASALT_GRUB_TREE to unpacked GRUB packages to run this test");
        return;
    };
    let mut tree = Tree::new();
    load_dir(&mut tree, Path::new(&root), "/");
    let mut cfg = GrubConfig::ab(
        "basalt.slot=A console=ttyS0 panic=1",
        "basalt.slot=B console=ttyS0 panic=1",
    );
    cfg.fallback_reboot_secs = 1;
    cfg.timeout_secs = 0;
    let art = build(&tree, &cfg).unwrap();
    assert_eq!(
        build(&tree, &cfg).unwrap(),
        art,
        "two builds must be byte-identical"
    );
    assert_eq!(art.boot_img.len(), 512);
    assert!(art.core_img.len() > 512 && art.core_img.len() < 2 * 1024 * 1024);
    let efi = &art
        .esp_files
        .iter()
        .find(|(p, _)| p == "/EFI/BOOT/BOOTX64.EFI")
        .unwrap()
        .1;
    assert_eq!(&efi[..2], b"MZ");
    eprintln!(
        "core.img {} bytes, BOOTX64.EFI {} bytes, {} ESP files",
        art.core_img.len(),
        efi.len(),
        art.esp_files.len()
    );

    if !(tool("qemu-system-x86_64")
        && tool("sgdisk")
        && tool("mkfs.vfat")
        && tool("mcopy")
        && tool("timeout"))
    {
        return;
    }
    if !Path::new("/usr/share/ovmf/OVMF.fd").exists() {
        eprintln!("SKIPPED boot test: /usr/share/ovmf/OVMF.fd missing (apt-get install ovmf)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Optional real kernel for slot A (BASALT_GRUB_KERNEL=/path/to/vmlinuz):
    // it must print its banner and our command line, then panic for lack of a
    // root filesystem and reboot (panic=1), which ends QEMU (-no-reboot).
    let kernel = std::env::var_os("BASALT_GRUB_KERNEL").map(|k| fs::read(k).unwrap());
    if kernel.is_none() {
        eprintln!("NOTE: BASALT_GRUB_KERNEL not set; slot A gets a fake kernel too");
    }
    // An update staged slot B with two tries; its kernel is garbage, so each
    // boot uses one try, B fails to load, and A is booted (or, with a fake
    // kernel, fails too and GRUB reboots after its message).
    let mut state = BootState::factory(&['A', 'B']).unwrap();
    state.stage_trial('B', 2).unwrap();
    let disk = make_disk(
        dir.path(),
        &art,
        &state.to_env_bytes().unwrap(),
        kernel.as_deref(),
    );
    let slot_a_result: &[&str] = if kernel.is_some() {
        &[
            "Linux version",
            "vmlinuz-a basalt.slot=A console=ttyS0 panic=1",
        ]
    } else {
        &[
            "basalt: slot A failed to load",
            "basalt: no bootable slot (ORDER=B A A_OK=1 A_TRY=0",
        ]
    };

    let bios = boot(dir.path(), &disk, false);
    eprintln!("--- BIOS serial ---\n{bios}");
    for want in [
        "basalt: trying slot B, 1 tries left",
        "basalt: slot B failed to load",
        "basalt: booting slot A (/EFI/basalt/vmlinuz-a)",
    ]
    .iter()
    .chain(slot_a_result)
    {
        assert!(
            bios.contains(want),
            "BIOS boot: missing {want:?} in\n{bios}"
        );
    }
    assert_eq!(
        read_state(dir.path(), &disk).slot('B').unwrap().tries,
        1,
        "save_env under BIOS"
    );

    let uefi = boot(dir.path(), &disk, true);
    eprintln!("--- UEFI serial ---\n{uefi}");
    for want in [
        "basalt: trying slot B, 0 tries left",
        "basalt: booting slot A (/EFI/basalt/vmlinuz-a)",
    ]
    .iter()
    .chain(slot_a_result)
    {
        assert!(
            uefi.contains(want),
            "UEFI boot: missing {want:?} in\n{uefi}"
        );
    }
    assert_eq!(
        read_state(dir.path(), &disk).slot('B').unwrap().tries,
        0,
        "save_env under UEFI"
    );

    // Tries exhausted: B is skipped, the good slot A is chosen first.
    let again = boot(dir.path(), &disk, false);
    assert!(!again.contains("trying slot B"), "{again}");
    assert!(again.contains("basalt: booting slot A"), "{again}");
    let st = read_state(dir.path(), &disk);
    assert_eq!(
        (st.order.clone(), st.slot('B').unwrap().tries),
        (vec!['B', 'A'], 0)
    );
}
