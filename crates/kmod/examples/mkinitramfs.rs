//! Build a test initramfs from an unpacked kernel package and a static
//! basalt-init: depmod, BOOT_MODULES closure (decompressed), load-order,
//! xz-compressed newc, for trying /init by hand under QEMU.
//!
//! `cargo run --release -p basalt-kmod --example mkinitramfs -- UNPACKED_KERNEL KVER INIT OUT`

use std::sync::Arc;

use basalt_cpio::{Archive, Compression, Compressor, Member, MemberKind};
use basalt_tree::{Content, Entry, Tree};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: mkinitramfs UNPACKED_KERNEL KVER INIT OUT");
        std::process::exit(2);
    }
    let (modroot, kver, init, out) = (&args[1], &args[2], &args[3], &args[4]);
    let root = std::path::PathBuf::from(modroot);
    let src = ["usr/lib/modules", "lib/modules"]
        .iter()
        .map(|b| root.join(b).join(kver))
        .find(|p| p.is_dir())
        .expect("modules dir");
    let mut t = Tree::new();
    let td = format!("/usr/lib/modules/{kver}");
    t.mkdir_p(&td, 0).unwrap();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for de in std::fs::read_dir(&dir).unwrap() {
            let de = de.unwrap();
            let p = de.path();
            let rel = p.strip_prefix(&src).unwrap().to_str().unwrap().to_string();
            let ft = de.file_type().unwrap();
            if ft.is_dir() {
                t.mkdir_p(&format!("{td}/{rel}"), 0).unwrap();
                stack.push(p);
            } else if ft.is_file() {
                let len = de.metadata().unwrap().len();
                t.insert_p(
                    &format!("{td}/{rel}"),
                    Entry::file(
                        0o644,
                        Content::Stored {
                            path: Arc::from(p.as_path()),
                            len,
                        },
                    ),
                )
                .unwrap();
            }
        }
    }
    basalt_kmod::depmod(&mut t, kver).unwrap();
    let set = basalt_kmod::initramfs_modules(&t, kver, basalt_kmod::BOOT_MODULES, true).unwrap();
    let mut a = Archive::new();
    a.push(Member::new(".", MemberKind::Dir, 0o755)).unwrap();
    for d in ["dev", "proc", "sys", "run", "sysroot", "lib", "lib/modules"] {
        a.push(Member::new(d, MemberKind::Dir, 0o755)).unwrap();
    }
    a.push(Member::new(
        "dev/console",
        MemberKind::CharDevice { major: 5, minor: 1 },
        0o600,
    ))
    .unwrap();
    a.push(Member::new(
        "init",
        MemberKind::File(Content::from_bytes(std::fs::read(init).unwrap())),
        0o755,
    ))
    .unwrap();
    a.push(Member::new(
        "lib/modules/load-order",
        MemberKind::File(Content::from_bytes(set.load_order.clone().into_bytes())),
        0o644,
    ))
    .unwrap();
    for m in &set.modules {
        a.push_p(Member::new(
            &m.path,
            MemberKind::File(m.content.clone()),
            0o644,
        ))
        .unwrap();
    }
    let f = std::fs::File::create(out).unwrap();
    let mut enc = Compressor::new(f, Compression::xz()).unwrap();
    let n = a.write_to(&mut enc).unwrap();
    enc.finish().unwrap();
    eprintln!(
        "initramfs: {} members, {n} bytes uncompressed, {} bytes xz",
        a.len(),
        std::fs::metadata(out).unwrap().len()
    );
}
