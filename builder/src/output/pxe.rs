//! Network boot artifacts (`--format pxe`): the kernel, one initrd that
//! also carries /usr, and an iPXE script.
//!
//! `<name>-initrd.img` is two concatenated newc archives, which the kernel
//! unpacks one after the other: the disk image's own zstd initramfs
//! (`initramfs.rs`), then an uncompressed archive with `/usr.img` (the
//! /usr slot exactly as on the disk: ext4, then the dm-verity superblock
//! and hash tree at the filesystem's end), the ROOT skeleton under
//! `/basalt/root`, and the loop driver with its own load-order file. The
//! second archive stays uncompressed so that the build streams it from a
//! file and /init uses `/usr.img` in place (xz would cost minutes of build
//! time and a second copy in memory while unpacking). The kernel command
//! line says `basalt.usr=initrd:/usr.img` with the verity root hash, the
//! same hash as the disk image's slot A (provisioner/src/init/diskless.rs).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use basalt_cpio::{Archive, Member, MemberKind};
use basalt_tree::{Content, Kind, Tree};

use super::disk::{seeded, verity_salt};
use super::region::Region;
use super::split::split;
use crate::atomic::TempFile;
use crate::log;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;
use crate::profile::size::human;
use crate::stages::tree::Assembled;

/// Where /init finds the image (`basalt.usr=initrd:<this>`).
pub const USR_IMAGE: &str = "/usr.img";
/// The ROOT skeleton inside the initrd (diskless.rs `ROOT_SKELETON`).
pub const ROOT_SKELETON: &str = "/basalt/root";
/// The extra module list (diskless.rs `EXTRA_LOAD_ORDER`).
pub const EXTRA_LOAD_ORDER: &str = "/lib/modules/load-order.diskless";
/// Modules a diskless boot needs beyond the disk initramfs's.
const DISKLESS_MODULES: &[&str] = &["loop"];
/// Free space left in the read-only /usr filesystem, in percent (disk.rs).
const USR_SLACK_PERCENT: u32 = 2;
/// Arguments every Basalt boot gets before the profile's (disk.rs).
const FIXED_ARGS: &[&str] = &["systemd.firstboot=off"];

/// File names of the artifacts for image `name`.
pub struct Names {
    pub kernel: String,
    pub initrd: String,
    pub script: String,
}

impl Names {
    pub fn of(name: &str) -> Names {
        Names {
            kernel: format!("{name}-vmlinuz"),
            initrd: format!("{name}-initrd.img"),
            script: format!("{name}.ipxe"),
        }
    }
}

/// The verity facts the command line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsrVerity {
    pub root_hash: String,
    pub hash_offset: u64,
}

/// The diskless kernel command line (provisioner/src/init/README.md):
/// the `basalt.usr*` words, Basalt's fixed arguments, then the profile's.
pub fn cmdline(v: &UsrVerity, profile_args: &[String]) -> String {
    let mut args = vec![
        format!("basalt.usr=initrd:{USR_IMAGE}"),
        format!("basalt.usrhash={}", v.root_hash),
        format!("basalt.usr_hash_offset={}", v.hash_offset),
        format!("basalt.usr_data_blocks={}", v.hash_offset / 4096),
    ];
    args.extend(FIXED_ARGS.iter().map(|s| s.to_string()));
    args.extend(profile_args.iter().cloned());
    args.join(" ")
}

/// The iPXE script: file names are relative, so iPXE fetches them from
/// wherever it fetched the script (TFTP or HTTP). `initrd=` names the
/// initrd for kernels booted through their EFI stub.
pub fn ipxe_script(names: &Names, title: &str, cmdline: &str) -> Result<String> {
    for (what, s) in [
        ("title", title),
        ("command line", cmdline),
        ("file name", &names.initrd),
    ] {
        if s.contains('\n') || s.contains('\r') {
            bail!("the iPXE script's {what} contains a line break: {s:?}");
        }
    }
    Ok(format!(
        "#!ipxe\n\
         # {title}: diskless boot, /usr carried in the initrd (basalt build --format pxe)\n\
         kernel {kernel} initrd={initrd} {cmdline}\n\
         initrd {initrd}\n\
         boot\n",
        kernel = names.kernel,
        initrd = names.initrd,
    ))
}

/// The second archive: the ROOT skeleton, the diskless modules and the
/// /usr image (streamed from `usr_img` when written).
pub fn diskless_archive(
    root: &Tree,
    modules: &basalt_kmod::InitramfsModules,
    usr: Content,
    epoch: i64,
) -> Result<Archive> {
    let mut a = Archive::new();
    for (path, e) in root.iter() {
        let name = if path == "/" {
            ROOT_SKELETON.to_string()
        } else {
            format!("{ROOT_SKELETON}{path}")
        };
        let kind = match &e.kind {
            Kind::Dir => MemberKind::Dir,
            Kind::Symlink(t) => MemberKind::Symlink(t.clone()),
            // Build-time state under /var (split.rs).
            Kind::File(c) if path.starts_with("/var/") => MemberKind::File(c.clone()),
            other => bail!(
                "ROOT skeleton entry {path} is a {}; only directories, links and /var files belong there",
                other.name()
            ),
        };
        a.push_p(
            Member::new(&name, kind, e.mode)
                .owned(e.uid, e.gid)
                .at(e.mtime),
        )?;
    }
    for m in &modules.modules {
        a.push_p(Member::new(&m.path, MemberKind::File(m.content.clone()), 0o644).at(epoch))?;
    }
    basalt_provisioner::init::loadorder::parse_load_order(EXTRA_LOAD_ORDER, &modules.load_order)
        .with_context(|| format!("checking {EXTRA_LOAD_ORDER} with /init's parser"))?;
    a.push_p(
        Member::new(
            EXTRA_LOAD_ORDER,
            MemberKind::File(Content::from_bytes(modules.load_order.clone().into_bytes())),
            0o644,
        )
        .at(epoch),
    )?;
    a.push_p(Member::new(USR_IMAGE, MemberKind::File(usr), 0o444).at(epoch))?;
    Ok(a)
}

pub fn write(
    profile: &Profile,
    built: &Assembled,
    out: &Path,
    work: &Path,
    epoch: i64,
    manifest: &mut Manifest,
) -> Result<()> {
    let seed = &profile.disk.seed;
    let kver = built.kernels.first().context("the tree holds no kernel")?;
    let parts = split(&built.tree, &built.kernels, epoch)?;
    let names = Names::of(&profile.name);

    // The /usr slot image, with the same options as the disk's slot A so
    // that the root hash is the same (builder/tests/pxe.rs checks it).
    let mut usr_opts = basalt_ext4::Options::new(basalt_ext4::Mode::ReadOnly {
        slack_percent: USR_SLACK_PERCENT,
    });
    usr_opts.label = "USR".into();
    usr_opts.uuid = seeded(seed, "usr-fs");
    usr_opts.hash_seed = seeded(seed, "usr-fs-hash");
    usr_opts.timestamp = epoch;
    let usr_plan =
        basalt_ext4::plan(&parts.usr, &usr_opts).context("planning the /usr filesystem")?;
    let usr_fs = usr_plan.size_bytes();
    let verity_plan =
        basalt_verity::VerityPlan::new(usr_fs).context("planning the /usr hash tree")?;
    let usr_len = usr_fs + verity_plan.hash_size;
    let usr_path = work.join("usr.img");
    log::step(&format!(
        "writing the /usr image for PXE ({} filesystem + {} hash tree)",
        human(usr_fs),
        human(verity_plan.hash_size)
    ));
    let usr_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&usr_path)
        .with_context(|| format!("creating {}", usr_path.display()))?;
    usr_file.set_len(usr_len).context("sizing the /usr image")?;
    usr_plan
        .write(Region::new(&usr_file, 0, usr_fs))
        .context("writing the /usr filesystem")?;
    let verity = basalt_verity::format(
        &usr_file,
        0,
        usr_fs,
        &verity_salt(seed),
        seeded(seed, "usr-verity"),
        &usr_file,
        usr_fs,
    )
    .context("writing the /usr hash tree")?;
    drop(usr_file);
    let root_hash = hex::encode(verity.root_hash);
    if let Some(disk_hash) = manifest.usr.get("root_hash").and_then(|v| v.as_str())
        && disk_hash != root_hash
    {
        bail!(
            "internal: the PXE /usr image hashes to {root_hash}, the disk image's slot to {disk_hash}"
        );
    }

    // The kernel, as on the ESP.
    let kernel = match parts.esp.get("/EFI/basalt/vmlinuz-a").map(|e| &e.kind) {
        Some(Kind::File(c)) => c.read_all().context("reading the kernel")?,
        _ => bail!("no kernel image for {kver}"),
    };
    let kernel_dest = out.join(&names.kernel);
    write_small(&kernel_dest, &kernel)?;

    // The initrd: the disk initramfs, then the diskless archive.
    let initramfs = super::initramfs::build(&built.tree, kver, epoch)?;
    let modules = basalt_kmod::initramfs_modules(&built.tree, kver, DISKLESS_MODULES, true)
        .with_context(|| format!("collecting the diskless modules of {kver}"))?;
    let usr_content = Content::Stored {
        path: Arc::from(usr_path.as_path()),
        len: usr_len,
    };
    let archive = diskless_archive(&parts.root, &modules, usr_content, epoch)
        .context("laying out the PXE initrd")?;
    let initrd_dest = out.join(&names.initrd);
    log::step(&format!("writing {}", initrd_dest.display()));
    let (tmp, f) = TempFile::create(&initrd_dest)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(&initramfs)
        .context("writing the initramfs part")?;
    // The next archive must start 4-byte aligned (newc alignment is
    // counted from the start of the whole initrd).
    let pad = (4 - initramfs.len() % 4) % 4;
    w.write_all(&[0u8; 4][..pad])
        .context("padding the initramfs part")?;
    archive.write_to(&mut w).with_context(|| {
        format!(
            "writing the /usr part ({} bytes; a newc member holds at most 4 GiB)",
            usr_len
        )
    })?;
    let f = w
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the initrd")?;
    f.sync_all().context("syncing the initrd")?;
    drop(f);
    tmp.commit()?;
    let _ = std::fs::remove_file(&usr_path);

    let line = cmdline(
        &UsrVerity {
            root_hash: root_hash.clone(),
            hash_offset: usr_fs,
        },
        &profile.kernel_cmdline,
    );
    let script = ipxe_script(
        &names,
        &format!("{} {}", profile.name, profile.version),
        &line,
    )?;
    let script_dest = out.join(&names.script);
    write_small(&script_dest, script.as_bytes())?;

    manifest
        .artifacts
        .push(Artifact::of(&kernel_dest, "pxe-kernel")?);
    manifest
        .artifacts
        .push(Artifact::of(&initrd_dest, "pxe-initrd")?);
    manifest.artifacts.push(Artifact::of(&script_dest, "ipxe")?);
    manifest
        .usr
        .insert("root_hash".into(), root_hash.clone().into());
    manifest.usr.insert("hash_offset".into(), usr_fs.into());
    manifest
        .usr
        .insert("data_blocks".into(), (usr_fs / 4096).into());
    manifest
        .usr
        .insert("salt".into(), hex::encode(verity_salt(seed)).into());
    manifest.usr.insert("pxe_cmdline".into(), line.into());
    log::step(&format!(
        "PXE: /usr image {}, verity root hash {root_hash}",
        human(usr_len)
    ));
    Ok(())
}

fn write_small(dest: &Path, bytes: &[u8]) -> Result<()> {
    let (tmp, mut f) = TempFile::create(dest)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", dest.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", dest.display()))?;
    drop(f);
    tmp.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Entry;

    fn verity() -> UsrVerity {
        UsrVerity {
            root_hash: "ab".repeat(32),
            hash_offset: 8192,
        }
    }

    #[test]
    fn cmdline_and_script() {
        let line = cmdline(&verity(), &["console=ttyS0".into(), "panic=10".into()]);
        assert_eq!(
            line,
            format!(
                "basalt.usr=initrd:/usr.img basalt.usrhash={} basalt.usr_hash_offset=8192 basalt.usr_data_blocks=2 systemd.firstboot=off console=ttyS0 panic=10",
                "ab".repeat(32)
            )
        );
        let names = Names::of("basalt-qemu");
        let s = ipxe_script(&names, "basalt-qemu 0.1.0", &line).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#!ipxe");
        assert_eq!(
            lines[2],
            format!("kernel basalt-qemu-vmlinuz initrd=basalt-qemu-initrd.img {line}")
        );
        assert_eq!(&lines[3..], ["initrd basalt-qemu-initrd.img", "boot"]);
        let cases = [("a\nb", "x"), ("t", "x\r")];
        for (title, line) in cases {
            assert!(
                ipxe_script(&names, title, line).is_err(),
                "{title:?} {line:?}"
            );
        }
    }

    #[test]
    fn cmdline_parses_as_a_diskless_boot() {
        // The words /init reads, through /init's own parser.
        let line = cmdline(&verity(), &[]);
        let p = basalt_provisioner::init::BootParams::parse(&line).unwrap();
        assert_eq!(p.usr_image.as_deref(), Some(Path::new(USR_IMAGE)));
        assert_eq!(p.usr_hash, [0xab; 32]);
        assert_eq!((p.usr_hash_offset, p.usr_data_blocks), (8192, 2));
        assert_eq!(
            basalt_provisioner::init::diskless::ROOT_SKELETON,
            ROOT_SKELETON
        );
        assert_eq!(
            basalt_provisioner::init::diskless::EXTRA_LOAD_ORDER,
            EXTRA_LOAD_ORDER
        );
    }

    #[test]
    fn archive_layout_and_bytes() {
        let mut root = Tree::new();
        root.insert("/bin", Entry::symlink("usr/bin").at(7))
            .unwrap();
        root.insert("/tmp", Entry::dir(0o1777).at(7)).unwrap();
        let modules = basalt_kmod::InitramfsModules {
            modules: vec![basalt_kmod::InitramfsModule {
                path: "/lib/modules/6.1/kernel/drivers/block/loop.ko".into(),
                content: Content::from_bytes(b"\x7fELF".to_vec()),
            }],
            load_order: "/lib/modules/6.1/kernel/drivers/block/loop.ko\n".into(),
        };
        let usr = Content::from_bytes(vec![0x55; 10_000]);
        let a = diskless_archive(&root, &modules, usr.clone(), 9).unwrap();
        let names: Vec<&str> = a.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "basalt",
                "basalt/root",
                "basalt/root/bin",
                "basalt/root/tmp",
                "lib",
                "lib/modules",
                "lib/modules/6.1",
                "lib/modules/6.1/kernel",
                "lib/modules/6.1/kernel/drivers",
                "lib/modules/6.1/kernel/drivers/block",
                "lib/modules/6.1/kernel/drivers/block/loop.ko",
                "lib/modules/load-order.diskless",
                "usr.img",
            ]
        );
        let bytes = a.to_vec().unwrap();
        let again = diskless_archive(&root, &modules, usr, 9)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(bytes, again, "deterministic");
        assert_eq!(bytes.len() % 4, 0);
        // usr.img: mode 0100444, 10000 bytes, followed by its data.
        let at = bytes.windows(8).position(|w| w == b"usr.img\0").unwrap() - 110;
        assert_eq!(&bytes[at + 14..at + 22], b"00008124");
        assert_eq!(&bytes[at + 54..at + 62], b"00002710");
        assert!(bytes[at + 120..at + 10_120].iter().all(|&b| b == 0x55));
        let mut bad = root.clone();
        bad.insert("/f", Entry::file(0o644, Content::from_bytes(vec![1])))
            .unwrap();
        let modules2 = modules.clone();
        let e = diskless_archive(&bad, &modules2, Content::from_bytes(vec![]), 9)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/f is a"), "{e}");
    }
}
