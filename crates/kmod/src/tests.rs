//! End-to-end tests on generated modules, checked against kmod's own depmod
//! and modprobe when they are installed (apt-get install -y kmod).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use basalt_tree::{Content, Entry, Kind, Tree};

use crate::elf::build_test_module;
use crate::{IndexReader, depmod, initramfs_modules, load_order};

pub(crate) const KVER: &str = "6.12.0-test-amd64";

fn xz(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new(b, 6)
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub(crate) fn sample_tree() -> Tree {
    let d = format!("/usr/lib/modules/{KVER}");
    let mut t = Tree::new();
    let add = |t: &mut Tree, rel: &str, bytes: Vec<u8>| {
        t.insert_p(
            &format!("{d}/{rel}"),
            Entry::file(0o644, Content::from_bytes(bytes)).at(1_700_000_000),
        )
        .unwrap();
    };
    add(
        &mut t,
        "kernel/lib/base.ko",
        build_test_module(&[("license", "GPL")], &["base_fn"], &["printk"]),
    );
    add(
        &mut t,
        "kernel/drivers/virtio/virtio-mid.ko.xz",
        xz(&build_test_module(
            &[
                ("alias", "pci:v00001AF4d*sv*sd*bc*sc*i*"),
                ("alias", "fs-mid"),
                ("softdep", "pre: extra"),
            ],
            &["mid_fn"],
            &["base_fn", "printk"],
        )),
    );
    add(
        &mut t,
        "kernel/drivers/block/top.ko.zst",
        zstd::encode_all(
            &build_test_module(
                &[("alias", "devname:top"), ("alias", "block-major-254-*")],
                &[],
                &["mid_fn", "base_fn"],
            )[..],
            3,
        )
        .unwrap(),
    );
    add(
        &mut t,
        "kernel/lib/extra.ko",
        build_test_module(&[], &["extra_fn"], &[]),
    );
    add(
        &mut t,
        "kernel/misc/lonely.ko",
        build_test_module(&[("alias", "char-major-10-200")], &[], &["weird_sym"]),
    );
    add(
        &mut t,
        "modules.order",
        b"kernel/drivers/block/top.ko\nkernel/lib/base.ko\nkernel/drivers/virtio/virtio-mid.ko\n"
            .to_vec(),
    );
    add(
        &mut t,
        "modules.builtin",
        b"kernel/fs/ext4/ext4.ko\nkernel/drivers/block/virtio_blk.ko\n".to_vec(),
    );
    add(
        &mut t,
        "modules.builtin.modinfo",
        b"ext4.alias=fs-ext4\0ext4.license=GPL\0virtio_blk.alias=virtio:d00000002v*\0".to_vec(),
    );
    t
}

fn text(t: &Tree, name: &str) -> String {
    match &t
        .get(&format!("/usr/lib/modules/{KVER}/{name}"))
        .unwrap_or_else(|| panic!("{name} written"))
        .kind
    {
        Kind::File(c) => String::from_utf8(c.read_all().unwrap()).unwrap(),
        k => panic!("{name} is a {}", k.name()),
    }
}

fn bytes(t: &Tree, name: &str) -> Vec<u8> {
    match &t
        .get(&format!("/usr/lib/modules/{KVER}/{name}"))
        .unwrap()
        .kind
    {
        Kind::File(c) => c.read_all().unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn depmod_on_generated_modules() {
    let mut t = sample_tree();
    let r = depmod(&mut t, KVER).unwrap();
    assert_eq!(r.modules, 5);
    assert_eq!(r.module_dir, format!("/usr/lib/modules/{KVER}"));
    assert_eq!(
        text(&t, "modules.dep"),
        "kernel/drivers/block/top.ko.zst: kernel/drivers/virtio/virtio-mid.ko.xz kernel/lib/base.ko\n\
         kernel/lib/base.ko:\n\
         kernel/drivers/virtio/virtio-mid.ko.xz: kernel/lib/base.ko\n\
         kernel/lib/extra.ko:\n\
         kernel/misc/lonely.ko:\n"
    );
    assert_eq!(
        text(&t, "modules.alias"),
        "# Aliases extracted from modules themselves.\n\
         alias devname:top top\n\
         alias block-major-254-* top\n\
         alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_mid\n\
         alias fs-mid virtio_mid\n\
         alias char-major-10-200 lonely\n"
    );
    assert_eq!(
        text(&t, "modules.softdep"),
        "# Soft dependencies extracted from modules themselves.\nsoftdep virtio_mid pre: extra\n"
    );
    let alias_bin = bytes(&t, "modules.alias.bin");
    let r = IndexReader::new(&alias_bin).unwrap();
    assert_eq!(
        r.lookup("fs_mid").unwrap(),
        Some(vec![(2, "virtio_mid".to_string())])
    );
    let dep_bin = bytes(&t, "modules.dep.bin");
    let r = IndexReader::new(&dep_bin).unwrap();
    assert_eq!(
        r.lookup("base").unwrap(),
        Some(vec![(1, "kernel/lib/base.ko:".to_string())])
    );
    let b = bytes(&t, "modules.builtin.alias.bin");
    assert_eq!(
        IndexReader::new(&b).unwrap().lookup("fs_ext4").unwrap(),
        Some(vec![(0, "ext4".to_string())])
    );
}

#[test]
fn load_order_resolves_closure_and_softdeps() {
    let mut t = sample_tree();
    depmod(&mut t, KVER).unwrap();
    let d = format!("/usr/lib/modules/{KVER}");
    let got = load_order(&t, KVER, &["top", "virtio_blk", "lonely", "base"]).unwrap();
    assert_eq!(
        got,
        vec![
            format!("{d}/kernel/lib/base.ko"),
            format!("{d}/kernel/lib/extra.ko"),
            format!("{d}/kernel/drivers/virtio/virtio-mid.ko.xz"),
            format!("{d}/kernel/drivers/block/top.ko.zst"),
            format!("{d}/kernel/misc/lonely.ko"),
        ]
    );
    // By alias, as modprobe resolves names.
    assert_eq!(
        load_order(&t, KVER, &["fs-mid"]).unwrap().last().unwrap(),
        &format!("{d}/kernel/drivers/virtio/virtio-mid.ko.xz")
    );
    assert!(
        load_order(&t, KVER, &["nonexistent"])
            .unwrap_err()
            .to_string()
            .contains("nonexistent")
    );
}

#[test]
fn initramfs_set_decompresses_and_lists_order() {
    let mut t = sample_tree();
    depmod(&mut t, KVER).unwrap();
    let d = format!("/usr/lib/modules/{KVER}");
    let set = initramfs_modules(&t, KVER, &["top"], true).unwrap();
    let paths: Vec<&str> = set.modules.iter().map(|m| m.path.as_str()).collect();
    let want = [
        format!("{d}/kernel/lib/base.ko"),
        format!("{d}/kernel/lib/extra.ko"),
        format!("{d}/kernel/drivers/virtio/virtio-mid.ko"),
        format!("{d}/kernel/drivers/block/top.ko"),
    ];
    assert_eq!(paths, want);
    let needs = ["", "", " needs=base,extra", " needs=base,virtio_mid"];
    let lines: Vec<String> = want
        .iter()
        .zip(needs)
        .map(|(p, n)| format!("{p}{n}\n"))
        .collect();
    assert_eq!(set.load_order, lines.concat());
    for m in &set.modules {
        assert_eq!(
            &m.content.read_all().unwrap()[..4],
            b"\x7fELF",
            "{} decompressed",
            m.path
        );
    }
    let kept = initramfs_modules(&t, KVER, &["top"], false).unwrap();
    assert!(kept.modules[3].path.ends_with("top.ko.zst"));
}

#[test]
fn errors_table() {
    let mut no_dir = Tree::new();
    assert!(
        depmod(&mut no_dir, KVER)
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
    let mut dup = sample_tree();
    dup.insert_p(
        &format!("/usr/lib/modules/{KVER}/kernel/other/base.ko"),
        Entry::file(0o644, Content::from_bytes(build_test_module(&[], &[], &[]))),
    )
    .unwrap();
    assert!(
        depmod(&mut dup, KVER)
            .unwrap_err()
            .to_string()
            .contains("provided twice")
    );
    let mut upd = sample_tree();
    upd.insert_p(
        &format!("/usr/lib/modules/{KVER}/updates/base.ko"),
        Entry::file(
            0o644,
            Content::from_bytes(build_test_module(&[], &["base_fn"], &[])),
        ),
    )
    .unwrap();
    let r = depmod(&mut upd, KVER).unwrap();
    assert_eq!(r.overridden, vec!["kernel/lib/base.ko".to_string()]);
    let mut bad = sample_tree();
    bad.insert_p(
        &format!("/usr/lib/modules/{KVER}/kernel/bad.ko"),
        Entry::file(0o644, Content::from_bytes(b"junk".to_vec())),
    )
    .unwrap();
    assert!(
        depmod(&mut bad, KVER)
            .unwrap_err()
            .to_string()
            .contains("bad.ko")
    );
}

#[test]
fn deterministic() {
    let mut a = sample_tree();
    let mut b = sample_tree();
    depmod(&mut a, KVER).unwrap();
    depmod(&mut b, KVER).unwrap();
    assert_eq!(a, b);
}

// ---- oracle helpers ----

fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIPPED: `{tool}` not installed (apt-get install -y kmod); kmod oracle comparison not run"
        );
    }
    ok
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("basalt-kmod-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Write the tree's module directory under `root/lib/modules/<kver>`.
fn export(t: &Tree, kver: &str, root: &Path) {
    let prefix = format!("/usr/lib/modules/{kver}");
    for (p, e) in t.descendants(&prefix) {
        let dst = root
            .join("lib/modules")
            .join(kver)
            .join(&p[prefix.len() + 1..]);
        match &e.kind {
            Kind::Dir => std::fs::create_dir_all(&dst).unwrap(),
            Kind::File(c) => {
                std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                std::fs::write(&dst, c.read_all().unwrap()).unwrap();
            }
            _ => {}
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const OUTPUTS: &[&str] = &[
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.devname",
];

/// Compare our outputs in `ours` with depmod's in `theirs` (same kver).
fn compare(ours: &Path, theirs: &Path, kver: &str) {
    for name in OUTPUTS {
        let a = std::fs::read(ours.join("lib/modules").join(kver).join(name)).unwrap();
        let b = std::fs::read(theirs.join("lib/modules").join(kver).join(name)).unwrap();
        if name.ends_with(".bin") {
            let da = IndexReader::new(&a).unwrap().dump().unwrap();
            let db = IndexReader::new(&b).unwrap().dump().unwrap();
            assert_eq!(da.len(), db.len(), "{name}: key count");
            for ((ka, va), (kb, vb)) in da.iter().zip(db.iter()) {
                assert_eq!(ka, kb, "{name}");
                let mut va = va.clone();
                let mut vb = vb.clone();
                va.sort();
                vb.sort();
                assert_eq!(va, vb, "{name}: values of {ka}");
            }
            eprintln!(
                "{name}: {} keys, byte-identical to depmod: {}",
                da.len(),
                a == b
            );
        } else {
            assert_eq!(
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b),
                "{name} differs from depmod's"
            );
        }
    }
    let sa = std::fs::read_to_string(ours.join("lib/modules").join(kver).join("modules.symbols"))
        .unwrap();
    let sb = std::fs::read_to_string(
        theirs
            .join("lib/modules")
            .join(kver)
            .join("modules.symbols"),
    )
    .unwrap();
    let mut la: Vec<&str> = sa.lines().collect();
    let mut lb: Vec<&str> = sb.lines().collect();
    la.sort();
    lb.sort();
    assert_eq!(
        la, lb,
        "modules.symbols (as a set; depmod writes hash order)"
    );
}

fn show_depends(root: &Path, kver: &str, module: &str) -> String {
    let out = run(Command::new("modprobe").arg("-d").arg(root).args([
        "-S",
        kver,
        "--show-depends",
        module,
    ]));
    out.replace(&root.display().to_string(), "ROOT")
}

#[test]
fn oracle_kmod_on_generated_modules() {
    if !have("depmod") || !have("modprobe") {
        return;
    }
    let mut t = sample_tree();
    let theirs = temp("theirs");
    export(&t, KVER, &theirs);
    depmod(&mut t, KVER).unwrap();
    let ours = temp("ours");
    export(&t, KVER, &ours);
    run(Command::new("depmod").arg("-b").arg(&theirs).arg(KVER));
    compare(&ours, &theirs, KVER);
    for m in ["top", "fs-mid", "ext4"] {
        let a = show_depends(&ours, KVER, m);
        assert_eq!(a, show_depends(&theirs, KVER, m), "{m}");
        assert!(!a.is_empty());
    }
    assert_eq!(
        show_depends(&ours, KVER, "top"),
        "insmod ROOT/lib/modules/6.12.0-test-amd64/kernel/lib/base.ko \n\
         insmod ROOT/lib/modules/6.12.0-test-amd64/kernel/lib/extra.ko \n\
         insmod ROOT/lib/modules/6.12.0-test-amd64/kernel/drivers/virtio/virtio-mid.ko.xz \n\
         insmod ROOT/lib/modules/6.12.0-test-amd64/kernel/drivers/block/top.ko.zst \n"
    );
    std::fs::remove_dir_all(&ours).ok();
    std::fs::remove_dir_all(&theirs).ok();
}

/// Compare with depmod on a real, unpacked kernel package:
/// `BASALT_KMOD_ORACLE=/dir` where `/dir/lib/modules/<kver>` (or
/// `/dir/usr/lib/modules/<kver>`) holds its modules (e.g. `dpkg-deb -x
/// linux-image-*.deb /dir`).
#[test]
fn oracle_real_kernel() {
    let Some(root) = std::env::var_os("BASALT_KMOD_ORACLE") else {
        eprintln!(
            "SKIPPED: set BASALT_KMOD_ORACLE=/unpacked/kernel to compare with depmod on a real kernel"
        );
        return;
    };
    if !have("depmod") || !have("modprobe") {
        return;
    }
    let root = PathBuf::from(root);
    let base = ["usr/lib/modules", "lib/modules"]
        .iter()
        .map(|b| root.join(b))
        .find(|p| p.is_dir())
        .expect("modules dir");
    let kver = std::fs::read_dir(&base)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let src = base.join(&kver);
    // The tree refers to the unpacked files in place (no copies).
    let mut t = Tree::new();
    let tree_dir = format!("/usr/lib/modules/{kver}");
    t.mkdir_p(&tree_dir, 0).unwrap();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for de in std::fs::read_dir(&dir).unwrap() {
            let de = de.unwrap();
            let p = de.path();
            let rel = p.strip_prefix(&src).unwrap().to_str().unwrap().to_string();
            let ft = de.file_type().unwrap();
            if ft.is_dir() {
                t.mkdir_p(&format!("{tree_dir}/{rel}"), 0).unwrap();
                stack.push(p);
            } else if ft.is_file() {
                let len = de.metadata().unwrap().len();
                let c = Content::Stored {
                    path: std::sync::Arc::from(p.as_path()),
                    len,
                };
                t.insert_p(&format!("{tree_dir}/{rel}"), Entry::file(0o644, c))
                    .unwrap();
            }
        }
    }
    let started = std::time::Instant::now();
    let report = depmod(&mut t, &kver).unwrap();
    eprintln!(
        "basalt depmod: {} modules in {:?}: {report:?}",
        report.modules,
        started.elapsed()
    );
    let link = |dst: &Path| {
        let d = dst.join("lib/modules").join(&kver);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(src.join("kernel"), d.join("kernel")).unwrap();
        for f in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            if src.join(f).exists() {
                std::fs::copy(src.join(f), d.join(f)).unwrap();
            }
        }
        d
    };
    let theirs = temp("real-theirs");
    link(&theirs);
    run(Command::new("depmod").arg("-b").arg(&theirs).arg(&kver));
    let ours = temp("real-ours");
    let ours_dir = link(&ours);
    for name in OUTPUTS.iter().chain(["modules.symbols"].iter()) {
        std::fs::write(ours_dir.join(name), bytes_at(&t, &tree_dir, name)).unwrap();
    }
    compare(&ours, &theirs, &kver);
    let set = initramfs_modules(&t, &kver, crate::BOOT_MODULES, true).unwrap();
    let bytes: u64 = set.modules.iter().map(|m| m.content.len()).sum();
    eprintln!(
        "initramfs modules for BOOT_MODULES: {} files, {bytes} bytes uncompressed:\n{}",
        set.modules.len(),
        set.load_order
    );
    assert!(
        set.load_order.contains("/dm-verity.ko\n"),
        "dm-verity is a module on Debian"
    );
    // The disk list as the builder writes it: the controllers last, each
    // with the async_probe parameter, and no other line with it.
    let disk = crate::initramfs_lists(
        &t,
        &kver,
        &[crate::ListSpec {
            wanted: crate::BOOT_MODULES,
            async_probe: crate::ASYNC_PROBE_MODULES,
        }],
        true,
    )
    .unwrap()
    .remove(0);
    eprintln!("disk list:\n{}", disk.load_order);
    let lines: Vec<&str> = disk.load_order.lines().collect();
    let (sync, tail) = lines.split_at(lines.len() - crate::ASYNC_PROBE_MODULES.len());
    assert!(sync.iter().all(|l| !l.contains(' ')), "{sync:?}");
    let mut names: Vec<String> = tail
        .iter()
        .map(|l| {
            let (path, param) = l.split_once(' ').unwrap();
            assert_eq!(param, crate::ASYNC_PROBE_PARAM, "{l}");
            crate::modname(path)
        })
        .collect();
    names.sort();
    assert_eq!(names, ["ahci", "nvme", "virtio_scsi"]);
    for m in [
        "virtio_blk",
        "nvme",
        "ahci",
        "dm_verity",
        "ext4",
        "virtio_scsi",
        "sd_mod",
    ] {
        let a = show_depends(&ours, &kver, m);
        assert_eq!(a, show_depends(&theirs, &kver, m), "{m}");
        // Our load order must be modprobe's, duplicates dropped.
        let mut want: Vec<String> = Vec::new();
        for line in a.lines() {
            if let Some(p) = line.strip_prefix("insmod ROOT/lib/modules/") {
                let rel = p
                    .trim()
                    .split_once('/')
                    .map(|(_, r)| r.to_string())
                    .unwrap_or_default();
                if !want.contains(&rel) {
                    want.push(rel);
                }
            }
        }
        let got: Vec<String> = load_order(&t, &kver, &[m])
            .unwrap()
            .into_iter()
            .map(|p| p[tree_dir.len() + 1..].to_string())
            .collect();
        assert_eq!(got, want, "load order of {m} vs modprobe --show-depends");
        eprintln!("modprobe --show-depends {m} (our indexes):\n{a}");
    }
    std::fs::remove_dir_all(&ours).ok();
    std::fs::remove_dir_all(&theirs).ok();
}

fn bytes_at(t: &Tree, dir: &str, name: &str) -> Vec<u8> {
    match &t.get(&format!("{dir}/{name}")).unwrap().kind {
        Kind::File(c) => c.read_all().unwrap(),
        _ => unreachable!(),
    }
}
