//! `basalt install`: write a raw image to a disk or a file, move the
//! backup GPT to the end of a larger target, and put a first-boot config
//! on the OEM partition (as `config.ign` or `user-data`, the names /init
//! looks for), the way coreos-installer and flatcar-install do.
//!
//! Everything is checked before the first byte is written: the config
//! parses, the image is a GPT disk whose OEM filesystem is the empty one
//! `basalt build` makes, the target is big enough and not in use.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Tree};
use clap::Args;

use crate::log;
use crate::output::disk::PART_OEM;
use crate::output::region::Region;
use crate::profile::size::{human, parse_size};
use crate::profile::{Overrides, Profile};

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Target: a block device, or a regular file (created if missing).
    #[arg(long)]
    pub device: PathBuf,
    /// Raw disk image (default: OUTPUT/<profile name>.img).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// First-boot config for the OEM partition: Ignition JSON, `#cloud-config` or a `#!` script.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Size of a target file (e.g. 20GiB): a new file is made this big, a smaller one grows to it.
    #[arg(long)]
    pub size: Option<String>,
    /// Profile whose name gives the default image.
    #[arg(short = 'p', long = "profile")]
    pub profile: Option<PathBuf>,
    /// Build output directory holding the default image.
    #[arg(short = 'o', long = "output", default_value = "out")]
    pub output: PathBuf,
}

/// The OEM partition's GPT name and filesystem label.
const OEM_NAME: &str = "OEM";
/// Byte offset of the ext4 superblock inside the filesystem.
const SB_OFFSET: u64 = 1024;
const EXT4_MAGIC: u16 = 0xEF53;
/// Copy buffer size.
const CHUNK: usize = 4 << 20;

pub fn run(args: &InstallArgs) -> Result<()> {
    let image = match &args.image {
        Some(p) => p.clone(),
        None => {
            let profile = Profile::load(args.profile.as_deref(), &Overrides::default())?;
            args.output.join(format!("{}.img", profile.name))
        }
    };
    let config = args.config.as_deref().map(read_config).transpose()?;
    let src = Source::open(&image)?;
    let oem = inspect_image(&image, &src)?;
    let oem_tree = config
        .as_ref()
        .map(|c| oem_tree(c, oem.timestamp))
        .transpose()?;
    let oem_plan = match &oem_tree {
        Some(t) => {
            Some(basalt_ext4::plan(t, &oem.options()).context("planning the OEM filesystem")?)
        }
        None => None,
    };
    let want_size = args
        .size
        .as_deref()
        .map(|s| parse_size(s).with_context(|| format!("reading --size {s}")))
        .transpose()?;
    let mut target = Target::open(&args.device, &image, src.size, want_size)?;

    log::step(&format!(
        "writing {} ({}) to {} ({})",
        image.display(),
        human(src.size),
        args.device.display(),
        human(target.size)
    ));
    src.copy_to(&target)
        .with_context(|| format!("writing the image to {}", args.device.display()))?;
    if target.size > src.size {
        log::step("moving the backup partition table to the end of the disk");
        basalt_gpt::relocate_backup(&mut target.file)
            .context("relocating the backup partition table")?;
    }
    if let (Some(plan), Some(cfg)) = (&oem_plan, &config) {
        log::step(&format!("writing {} to the OEM partition", cfg.name));
        zero_range(&target, oem.offset, oem.size).context("clearing the OEM partition")?;
        plan.write(Region::new(&target.file, oem.offset, oem.size))
            .context("writing the OEM filesystem")?;
    }
    target
        .file
        .sync_all()
        .with_context(|| format!("syncing {}", args.device.display()))?;
    log::step(&format!("installed to {}", args.device.display()));
    Ok(())
}

/// A validated config and the OEM file name /init reads it from.
struct Config {
    name: &'static str,
    data: Vec<u8>,
}

fn read_config(path: &Path) -> Result<Config> {
    let report = basalt_provisioner::validate_file(path)?;
    let shown = path.display().to_string();
    if report.has_errors() {
        bail!("{shown} is not a valid config:\n{}", report.render(&shown));
    }
    for w in report.warnings() {
        log::warn(&w.render(&shown));
    }
    let data = std::fs::read(path).with_context(|| format!("reading {shown}"))?;
    let text = basalt_provisioner::userdata::to_text(&data)
        .map_err(|r| anyhow::anyhow!("{shown}:\n{}", r.render(&shown)))?;
    let format = basalt_provisioner::userdata::detect(&text)
        .map_err(|r| anyhow::anyhow!("{shown}:\n{}", r.render(&shown)))?;
    Ok(Config {
        name: oem_file_name(format),
        data,
    })
}

/// `config.ign` for Ignition, `user-data` for everything else.
fn oem_file_name(f: basalt_provisioner::Format) -> &'static str {
    use basalt_provisioner::sources::OEM_FILES;
    match f {
        basalt_provisioner::Format::Ignition => OEM_FILES[0],
        _ => OEM_FILES[1],
    }
}

fn oem_tree(cfg: &Config, timestamp: i64) -> Result<Tree> {
    let mut t = Tree::new();
    if let Some(root) = t.get_mut("/") {
        root.mtime = timestamp;
    }
    // 0600: user data may carry secrets.
    let e = Entry::file(0o600, Content::from_bytes(cfg.data.clone())).at(timestamp);
    t.insert(&format!("/{}", cfg.name), e)
        .context("adding the config to the OEM tree")?;
    Ok(t)
}

/// Where the OEM filesystem is, and the identity to rebuild it with.
struct Oem {
    offset: u64,
    size: u64,
    uuid: [u8; 16],
    hash_seed: [u8; 16],
    timestamp: i64,
}

impl Oem {
    fn options(&self) -> basalt_ext4::Options {
        let mut o = basalt_ext4::Options::new(basalt_ext4::Mode::Writable {
            size_bytes: self.size,
        });
        o.label = OEM_NAME.into();
        o.uuid = self.uuid;
        o.hash_seed = self.hash_seed;
        o.timestamp = self.timestamp;
        o
    }
}

/// The image must be a GPT disk with the OEM partition holding the empty
/// ext4 `basalt build` makes (so rewriting it loses nothing).
fn inspect_image(path: &Path, src: &Source) -> Result<Oem> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let gpt = basalt_gpt::read_gpt(&mut f)
        .with_context(|| format!("reading the partition table of {}", path.display()))?;
    let (number, entry) = gpt
        .by_name(OEM_NAME)
        .with_context(|| format!("{} has no partition named {OEM_NAME}", path.display()))?;
    if number != PART_OEM {
        bail!(
            "{}: the {OEM_NAME} partition is number {number}, expected {PART_OEM}",
            path.display()
        );
    }
    let offset = entry.first_lba * 512;
    let size = (entry.last_lba + 1 - entry.first_lba) * 512;
    let mut sb = [0u8; 1024];
    src.read_at(&mut sb, offset + SB_OFFSET)
        .context("reading the OEM superblock")?;
    let oem = parse_oem_superblock(&sb, offset, size)
        .with_context(|| format!("checking the OEM filesystem of {}", path.display()))?;
    let empty = Tree::new();
    let plan = basalt_ext4::plan(&empty, &oem.options()).context("planning an empty OEM")?;
    let sb_inodes = le32(&sb, 0x00);
    let sb_free_inodes = le32(&sb, 0x10);
    let sb_blocks = u64::from(le32(&sb, 0x04)) | u64::from(le32(&sb, 0x150)) << 32;
    let sb_free_blocks = u64::from(le32(&sb, 0x0C)) | u64::from(le32(&sb, 0x158)) << 32;
    let used_inodes = sb_inodes.saturating_sub(sb_free_inodes);
    let used_blocks = sb_blocks.saturating_sub(sb_free_blocks);
    if sb_inodes != plan.inode_count()
        || sb_blocks != plan.block_count()
        || used_inodes != plan.used_inodes()
        || used_blocks != plan.used_blocks()
    {
        bail!(
            "the OEM filesystem of {} is not the empty one basalt build makes ({used_inodes} inodes \
             and {used_blocks} blocks in use, expected {} and {}); refusing to replace its content",
            path.display(),
            plan.used_inodes(),
            plan.used_blocks()
        );
    }
    Ok(oem)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_oem_superblock(sb: &[u8; 1024], offset: u64, size: u64) -> Result<Oem> {
    let magic = u16::from_le_bytes([sb[0x38], sb[0x39]]);
    if magic != EXT4_MAGIC {
        bail!("no ext4 filesystem (magic {magic:#06x})");
    }
    if size % 4096 != 0 {
        bail!("the partition size {size} is not a multiple of 4096");
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&sb[0x68..0x78]);
    let mut hash_seed = [0u8; 16];
    hash_seed.copy_from_slice(&sb[0xEC..0xFC]);
    let label_end = sb[0x78..0x88].iter().position(|&b| b == 0).unwrap_or(16);
    let label = &sb[0x78..0x78 + label_end];
    if label != OEM_NAME.as_bytes() {
        bail!(
            "the filesystem label is {:?}, expected {OEM_NAME}",
            String::from_utf8_lossy(label)
        );
    }
    Ok(Oem {
        offset,
        size,
        uuid,
        hash_seed,
        timestamp: i64::from(le32(sb, 0x108)),
    })
}

/// The raw image, read only where it holds data.
struct Source {
    disk: basalt_vdisk::RawDisk,
    size: u64,
}

impl Source {
    fn open(path: &Path) -> Result<Source> {
        if path.extension().is_some_and(|e| e == "xz") {
            bail!(
                "{} is xz-compressed: decompress it first (xz -dk {}), install reads raw images",
                path.display(),
                path.display()
            );
        }
        let disk = basalt_vdisk::RawDisk::open(path)
            .with_context(|| format!("opening the image {}", path.display()))?;
        Ok(Source {
            size: disk.len(),
            disk,
        })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        Ok(self.disk.read_at(buf, offset)?)
    }

    /// Copy the whole image to the start of the target. Zero blocks are
    /// skipped on a fresh (all-hole) file and written on a device.
    fn copy_to(&self, t: &Target) -> Result<()> {
        if t.zeroed {
            return Ok(self.disk.for_each_nonzero(1 << 20, |off, b| {
                t.file
                    .write_all_at(b, off)
                    .map_err(|e| basalt_vdisk::VdiskError::Io {
                        what: format!("writing at byte {off}"),
                        source: e,
                    })
            })?);
        }
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0u64;
        while at < self.size {
            let n = usize::try_from((self.size - at).min(CHUNK as u64))?;
            self.disk.read_at(&mut buf[..n], at)?;
            t.file
                .write_all_at(&buf[..n], at)
                .with_context(|| format!("writing at byte {at}"))?;
            at += n as u64;
        }
        Ok(())
    }
}

/// The open target and its size.
struct Target {
    file: File,
    size: u64,
    /// True when the target reads as zeros everywhere before the copy.
    zeroed: bool,
}

impl Target {
    fn open(path: &Path, image: &Path, image_size: u64, want: Option<u64>) -> Result<Target> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
        };
        if let (Some(m), Ok(im)) = (&meta, std::fs::metadata(image))
            && m.dev() == im.dev()
            && m.ino() == im.ino()
        {
            bail!("{} is the image itself", path.display());
        }
        match meta {
            Some(m) if m.file_type().is_block_device() => {
                if want.is_some() {
                    bail!(
                        "--size applies to a target file, not to the block device {}",
                        path.display()
                    );
                }
                check_not_mounted(path, m.rdev())?;
                // O_EXCL on a block device: the kernel refuses while it (or
                // one of its partitions) is mounted or otherwise claimed.
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_EXCL)
                    .open(path)
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::EBUSY) => anyhow::anyhow!(
                            "{} is in use (mounted, or held by another device): refusing to write it",
                            path.display()
                        ),
                        _ => anyhow::Error::new(e).context(format!("opening {}", path.display())),
                    })?;
                let size = file
                    .seek(SeekFrom::End(0))
                    .with_context(|| format!("reading the size of {}", path.display()))?;
                if size < image_size {
                    bail!(
                        "{} ({}) is smaller than the image ({})",
                        path.display(),
                        human(size),
                        human(image_size)
                    );
                }
                Ok(Target {
                    file,
                    size,
                    zeroed: false,
                })
            }
            Some(m) if !m.file_type().is_file() => {
                bail!(
                    "{} is neither a block device nor a regular file",
                    path.display()
                )
            }
            existing => {
                let old = existing.map(|m| m.len()).unwrap_or(0);
                let size = want.unwrap_or(old).max(image_size);
                if let Some(w) = want
                    && w < image_size
                {
                    bail!(
                        "--size {} is smaller than the image ({})",
                        human(w),
                        human(image_size)
                    );
                }
                if size % 512 != 0 {
                    bail!("target size {size} is not a multiple of 512 bytes");
                }
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                // Empty it, then size it: every byte reads as zero (a hole).
                file.set_len(0)
                    .and_then(|()| file.set_len(size))
                    .with_context(|| format!("sizing {} to {}", path.display(), human(size)))?;
                Ok(Target {
                    file,
                    size,
                    zeroed: true,
                })
            }
        }
    }
}

/// Refuse a device that is, or has a partition that is, in /proc/self/mountinfo.
fn check_not_mounted(path: &Path, rdev: u64) -> Result<()> {
    let dev_sys = sys_block_dir(rdev);
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Ok(()); // no procfs: the O_EXCL open still guards
    };
    for line in info.lines() {
        let mut f = line.split(' ');
        let (Some(_), Some(_), Some(majmin)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Some((maj, min)) = majmin.split_once(':') else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else {
            continue;
        };
        let mounted = libc::makedev(maj, min);
        let inside = mounted == rdev
            || match (&dev_sys, sys_block_dir(mounted)) {
                (Some(d), Some(m)) => m.starts_with(d),
                _ => false,
            };
        if inside {
            let target = line.split(' ').nth(4).unwrap_or("?");
            bail!(
                "{} is mounted (a filesystem on it is mounted at {target}): refusing to write it",
                path.display()
            );
        }
    }
    Ok(())
}

/// The sysfs directory of a block device (partitions are inside their disk's).
fn sys_block_dir(rdev: u64) -> Option<PathBuf> {
    let p = format!("/sys/dev/block/{}:{}", libc::major(rdev), libc::minor(rdev));
    std::fs::canonicalize(p).ok()
}

/// Make `[offset, offset + len)` of the target read as zeros: punch a hole
/// in a file, write zeros elsewhere.
fn zero_range(t: &Target, offset: u64, len: u64) -> Result<()> {
    if t.zeroed {
        use rustix::fs::{FallocateFlags, fallocate};
        if fallocate(
            &t.file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        )
        .is_ok()
        {
            return Ok(());
        }
    }
    let zeros = vec![0u8; CHUNK];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(CHUNK as u64))?;
        t.file
            .write_all_at(&zeros[..n], offset + at)
            .with_context(|| format!("zeroing byte {}", offset + at))?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oem_names_match_what_init_reads() {
        use basalt_provisioner::Format;
        let cases = [
            (Format::Ignition, "config.ign"),
            (Format::CloudConfig, "user-data"),
            (Format::Script, "user-data"),
        ];
        for (f, want) in cases {
            assert_eq!(oem_file_name(f), want);
            assert!(basalt_provisioner::sources::OEM_FILES.contains(&want));
        }
    }

    #[test]
    fn empty_oem_passes_the_check_and_a_full_one_fails() {
        let mk = |tree: &Tree| -> Vec<u8> {
            let mut o = basalt_ext4::Options::new(basalt_ext4::Mode::Writable {
                size_bytes: 8 << 20,
            });
            o.label = OEM_NAME.into();
            o.uuid = [3; 16];
            o.hash_seed = [4; 16];
            o.timestamp = 1_700_000_000;
            let plan = basalt_ext4::plan(tree, &o).expect("plan");
            let w = plan
                .write(std::io::Cursor::new(vec![0u8; 8 << 20]))
                .expect("write");
            w.into_inner()
        };
        for (with_file, ok) in [(false, true), (true, false)] {
            let mut t = Tree::new();
            if with_file {
                t.insert("/x", Entry::file(0o644, Content::from_bytes(b"x".to_vec())))
                    .expect("insert");
            }
            let fs = mk(&t);
            let mut sb = [0u8; 1024];
            sb.copy_from_slice(&fs[1024..2048]);
            let oem = parse_oem_superblock(&sb, 0, 8 << 20).expect("superblock");
            assert_eq!(oem.uuid, [3; 16]);
            assert_eq!(oem.hash_seed, [4; 16]);
            assert_eq!(oem.timestamp, 1_700_000_000);
            let empty = Tree::new();
            let plan = basalt_ext4::plan(&empty, &oem.options()).expect("plan");
            let used_i = le32(&sb, 0) - le32(&sb, 0x10);
            let used_b = u64::from(le32(&sb, 4) - le32(&sb, 0x0C));
            assert_eq!(
                used_i == plan.used_inodes() && used_b == plan.used_blocks(),
                ok,
                "with_file={with_file}: {used_i}/{used_b} vs {}/{}",
                plan.used_inodes(),
                plan.used_blocks()
            );
        }
    }
}
