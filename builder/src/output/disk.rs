//! Raw, raw.xz and qcow2 disk images: the GPT layout, the ESP, the /usr
//! slot with its dm-verity hash tree, OEM and ROOT.
//!
//! The layout is planned completely (every filesystem sized, every
//! partition placed) before the first byte is written; a tree that does not
//! fit its slot fails here, with nothing on disk.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use basalt_gpt::{Attributes, DiskLayout, Guid, PartSize, PartSpec, guid_from_seed, types};

use super::region::Region;
use super::split::split;
use crate::atomic::TempFile;
use crate::cli::Format;
use crate::log;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;
use crate::profile::size::human;
use crate::stages::signing::Signer;
use crate::stages::tree::Assembled;

/// GPT entry numbers of the partitions (Flatcar's numbering).
pub const PART_ESP: u32 = 1;
pub const PART_BIOS: u32 = 2;
pub const PART_USR_A: u32 = 3;
pub const PART_USR_B: u32 = 4;
pub const PART_OEM: u32 = 6;
pub const PART_ROOT: u32 = 9;

/// Free space left in the read-only /usr filesystem, in percent.
const USR_SLACK_PERCENT: u32 = 2;

/// Derive 16 identity bytes (filesystem UUIDs, hash seeds) from the seed.
pub(super) fn seeded(seed: &str, label: &str) -> [u8; 16] {
    guid_from_seed(seed.as_bytes(), label).0
}

/// The dm-verity salt: 32 bytes from the seed.
pub(super) fn verity_salt(seed: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("basalt-verity-salt\0{seed}")).to_vec()
}

pub fn write(
    profile: &Profile,
    built: &Assembled,
    format: Format,
    out: &Path,
    work: &Path,
    epoch: i64,
    signer: &Signer,
    manifest: &mut Manifest,
) -> Result<()> {
    let raw_name = format!("{}.img", profile.name);
    let raw_dest = out.join(&raw_name);
    // Other formats convert from a raw image; reuse one written by this run:
    // the requested raw artifact (written first), or the copy in this run's
    // work directory. An image in the output directory from an earlier build
    // is never reused; it is replaced.
    let raw_this_run = manifest.artifacts.iter().any(|a| a.file == raw_name);
    let raw_path = if format == Format::Raw || raw_this_run {
        raw_dest.clone()
    } else {
        work.join(&raw_name)
    };
    if !raw_this_run && (format == Format::Raw || !raw_path.exists()) {
        write_raw(profile, built, &raw_path, out, epoch, signer, manifest)?;
        if format == Format::Raw {
            manifest.artifacts.push(Artifact::of(&raw_path, "raw")?);
        }
    }
    match format {
        Format::Raw => Ok(()),
        Format::RawXz => {
            let dest = out.join(format!("{raw_name}.xz"));
            log::step(&format!("compressing {}", dest.display()));
            super::xz::compress(&raw_path, &dest)?;
            manifest.artifacts.push(Artifact::of(&dest, "raw.xz")?);
            Ok(())
        }
        Format::Qcow2 => {
            let dest = out.join(format!("{}.qcow2", profile.name));
            log::step(&format!("converting to {}", dest.display()));
            basalt_qcow2::convert(&raw_path, &dest).context("writing the qcow2 image")?;
            manifest.artifacts.push(Artifact::of(&dest, "qcow2")?);
            Ok(())
        }
        Format::Vmdk => super::vmdk::write(profile, &raw_path, out, manifest),
        Format::Vhd => super::vhd::write(profile, &raw_path, out, epoch, manifest),
        Format::Gce => super::gce::write(profile, &raw_path, out, epoch, manifest),
        Format::Tar | Format::Oci | Format::Pxe => {
            bail!("internal: {} is not a disk format", format.name())
        }
    }
}

fn write_raw(
    profile: &Profile,
    built: &Assembled,
    dest: &Path,
    out: &Path,
    epoch: i64,
    signer: &Signer,
    manifest: &mut Manifest,
) -> Result<()> {
    let seed = &profile.disk.seed;
    let sizes = &profile.disk;
    let parts = split(&built.tree, &built.kernels, epoch)?;

    // Plan every filesystem first.
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
    let usr_need = usr_fs + verity_plan.hash_size;
    if usr_need > sizes.usr {
        bail!(
            "/usr needs {} (filesystem {} + hash tree {}), more than the {} slot: raise disk.usr in the profile",
            human(usr_need),
            human(usr_fs),
            human(verity_plan.hash_size),
            human(sizes.usr)
        );
    }
    let writable = |label: &str, size: u64| -> Result<basalt_ext4::Options> {
        let mut o = basalt_ext4::Options::new(basalt_ext4::Mode::Writable { size_bytes: size });
        o.label = label.into();
        o.uuid = seeded(seed, &format!("{}-fs", label.to_lowercase()));
        o.hash_seed = seeded(seed, &format!("{}-fs-hash", label.to_lowercase()));
        o.timestamp = epoch;
        Ok(o)
    };
    let oem_tree = basalt_tree::Tree::new();
    let oem_plan =
        basalt_ext4::plan(&oem_tree, &writable("OEM", sizes.oem)?).context("planning OEM")?;
    let root_tree =
        super::seed_etc::seed(&parts.root, &parts.usr).context("seeding ROOT's /etc")?;
    let root_plan =
        basalt_ext4::plan(&root_tree, &writable("ROOT", sizes.root)?).context("planning ROOT")?;
    let esp_opts = basalt_fat::FatOptions {
        timestamp: Some(epoch),
        ..basalt_fat::FatOptions::esp(
            "EFI-SYSTEM",
            u32::from_le_bytes(seeded(seed, "esp-volume-id")[..4].try_into()?),
        )
    };

    let g = |label: &str| Guid(seeded(seed, label));
    let specs = [
        PartSpec::new(
            PART_ESP,
            "EFI-SYSTEM",
            types::ESP,
            g("part-esp"),
            PartSize::Bytes(sizes.esp),
        ),
        PartSpec::new(
            PART_BIOS,
            "BIOS-BOOT",
            types::BIOS_BOOT,
            g("part-bios"),
            PartSize::Bytes(sizes.bios_boot),
        ),
        PartSpec::new(
            PART_USR_A,
            "USR-A",
            types::USR_X86_64,
            g("part-usr-a"),
            PartSize::Bytes(sizes.usr),
        )
        .with_attributes(Attributes::READ_ONLY),
        PartSpec::new(
            PART_USR_B,
            "USR-B",
            types::USR_X86_64,
            g("part-usr-b"),
            PartSize::Bytes(sizes.usr),
        )
        .with_attributes(Attributes::READ_ONLY),
        PartSpec::new(
            PART_OEM,
            "OEM",
            types::LINUX_DATA,
            g("part-oem"),
            PartSize::Bytes(sizes.oem),
        ),
        PartSpec::new(
            PART_ROOT,
            "ROOT",
            types::ROOT_X86_64,
            g("part-root"),
            PartSize::Bytes(sizes.root),
        )
        .with_attributes(Attributes::GROWFS),
    ];
    let layout =
        DiskLayout::plan(g("disk"), &specs, None).context("planning the partition table")?;
    let bios = layout
        .partition(PART_BIOS)
        .context("BIOS-BOOT missing from the layout")?;

    // Boot loader and initramfs. The slot's command line carries the verity
    // root hash, known only once /usr is written: plan the ESP with a
    // same-length placeholder, then write it with the real one.
    let kver = built.kernels.first().context("the tree holds no kernel")?;
    let initrd = super::initramfs::build(&built.tree, kver, epoch)?;
    log::detail(&format!("initramfs: {}", human(initrd.len() as u64)));
    let placeholder = cmdline(profile, &"0".repeat(64), usr_fs);
    let boot = super::boot::Boot::build(&built.tree, &placeholder)?;
    let mut esp_tree = parts.esp.clone();
    // Same length as the real record: only the hash differs.
    let record = |root_hash: &str| basalt_payload::SlotRecord {
        name: profile.name.clone(),
        version: profile.version.clone(),
        root_hash: root_hash.to_string(),
    };
    boot.add_to_esp(
        &mut esp_tree,
        &initrd,
        &placeholder,
        &record(&"0".repeat(64)),
        epoch,
    )?;
    let esp_part = layout
        .partition(PART_ESP)
        .context("ESP missing from the layout")?;
    let esp_opts = basalt_fat::FatOptions {
        size: sizes.esp,
        hidden_sectors: u32::try_from(esp_part.offset() / 512)
            .context("ESP starts beyond 2 TiB")?,
        ..esp_opts
    };
    basalt_fat::FatPlan::new(&esp_tree, &esp_opts).context("planning the ESP")?;
    boot.check_bios_fits(bios.size())?;
    let part = |n: u32| {
        layout
            .partition(n)
            .with_context(|| format!("partition {n} missing from the layout"))
    };

    log::step(&format!(
        "writing {} ({} disk)",
        dest.display(),
        human(layout.disk_size)
    ));
    let (tmp, mut f) = TempFile::create(dest)?;
    f.set_len(layout.disk_size)
        .context("sizing the disk image")?;
    layout
        .write_headers(&mut f)
        .context("writing the partition table")?;

    let usr = part(PART_USR_A)?;
    write_ext4(&usr_plan, &f, usr.offset(), "usr")?;
    log::step("hashing /usr for dm-verity");
    let verity = basalt_verity::format(
        &f,
        usr.offset(),
        usr_fs,
        &verity_salt(seed),
        seeded(seed, "usr-verity"),
        &f,
        usr.offset() + usr_fs,
    )
    .context("writing the /usr hash tree")?;
    let root_hex = hex::encode(verity.root_hash);
    let line = cmdline(profile, &root_hex, usr_fs);
    let mut esp_tree = parts.esp.clone();
    boot.add_to_esp(&mut esp_tree, &initrd, &line, &record(&root_hex), epoch)?;
    log::step("writing the ESP and the boot loader");
    basalt_fat::write_fat(&esp_tree, &esp_opts, &f, esp_part.offset())
        .context("writing the ESP")?;
    boot.install_bios(&f, bios.offset() / 512, bios.size() / 512)?;
    write_ext4(&oem_plan, &f, part(PART_OEM)?.offset(), "oem")?;
    write_ext4(&root_plan, &f, part(PART_ROOT)?.offset(), "root")?;
    f.sync_all().context("syncing the disk image")?;
    drop(f);
    tmp.commit()?;

    manifest.usr.insert("slot".into(), "USR-A".into());
    manifest.usr.insert("cmdline".into(), line.into());
    manifest.usr.insert("kernel".into(), kver.clone().into());
    manifest
        .usr
        .insert("initrd_size".into(), initrd.len().into());
    manifest
        .usr
        .insert("root_hash".into(), root_hex.clone().into());
    manifest.usr.insert("hash_offset".into(), usr_fs.into());
    manifest
        .usr
        .insert("data_blocks".into(), (usr_fs / 4096).into());
    manifest
        .usr
        .insert("salt".into(), hex::encode(verity_salt(seed)).into());
    manifest.usr.insert("filesystem_size".into(), usr_fs.into());
    manifest
        .usr
        .insert("hash_size".into(), verity_plan.hash_size.into());
    manifest
        .usr
        .insert("content_bytes".into(), parts.usr.content_bytes().into());
    manifest.partitions = layout
        .partitions
        .iter()
        .map(|p| {
            serde_json::json!({
                "number": p.number,
                "name": p.entry.name.clone(),
                "type": p.entry.type_guid.to_string(),
                "guid": p.entry.part_guid.to_string(),
                "offset": p.offset(),
                "size": p.size(),
            })
        })
        .collect();
    log::step(&format!(
        "/usr: {} filesystem, verity root hash {root_hex}",
        human(usr_fs)
    ));

    // The same slot, kernel and initrd as an update payload for machines
    // running an older version.
    let payload = out.join(super::payload::payload_file_name(
        &profile.name,
        &profile.version,
    ));
    log::step(&format!("writing the update payload {}", payload.display()));
    let img = File::open(dest).with_context(|| format!("opening {}", dest.display()))?;
    let kernel = match esp_tree
        .get(&basalt_grub::config::kernel_path('A'))
        .map(|e| &e.kind)
    {
        Some(basalt_tree::Kind::File(c)) => c.read_all().context("reading the kernel")?,
        _ => bail!("slot A's kernel is missing from the ESP tree"),
    };
    let info = basalt_payload::PayloadInfo {
        name: profile.name.clone(),
        version: profile.version.clone(),
        verity: super::payload::verity_info(&verity, usr_fs, &verity_salt(seed)),
        cmdline: extra_args(profile),
    };
    super::payload::write_payload(
        &payload,
        &info,
        (&img, usr.offset(), usr_fs + verity_plan.hash_size),
        &kernel,
        &initrd,
        &signer.key,
    )?;
    manifest.artifacts.push(Artifact::of(&payload, "update")?);
    Ok(())
}

/// Arguments every Basalt slot boots with: the machine config comes from
/// Basalt's provisioner, so systemd's interactive first-boot questions are off.
const FIXED_ARGS: &[&str] = &["systemd.firstboot=off"];

/// Arguments after the `basalt.*` ones: Basalt's fixed ones, then the
/// profile's. Update payloads carry the same.
fn extra_args(profile: &Profile) -> String {
    FIXED_ARGS
        .iter()
        .map(|s| s.to_string())
        .chain(profile.kernel_cmdline.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kernel command line of slot A (provisioner/src/init/README.md has
/// the `basalt.*` contract), followed by the profile's own arguments.
fn cmdline(profile: &Profile, root_hash: &str, usr_fs: u64) -> String {
    let mut args = vec![
        "basalt.slot=a".to_string(),
        format!("basalt.usrhash={root_hash}"),
        format!("basalt.usr_hash_offset={usr_fs}"),
        format!("basalt.usr_data_blocks={}", usr_fs / 4096),
    ];
    args.push(extra_args(profile));
    args.join(" ")
}

/// Write a planned ext4 straight into the image at `offset`; the image is
/// freshly sized, so whatever the writer skips reads as zeros (holes).
fn write_ext4(plan: &basalt_ext4::Plan, disk: &File, offset: u64, name: &str) -> Result<()> {
    log::step(&format!(
        "writing the {name} filesystem ({})",
        human(plan.size_bytes())
    ));
    plan.write(Region::new(disk, offset, plan.size_bytes()))
        .with_context(|| format!("writing the {name} filesystem"))?;
    Ok(())
}
