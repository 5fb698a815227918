//! Build a Tree from a directory on disk and write it as an ext4 image.
//!
//! Usage: dir2ext4 SRC_DIR OUT.img [--writable SIZE_BYTES] [--slack PERCENT]
//!
//! Ownership, modes, times, symlinks, hard links, devices and fifos come
//! from lstat; regular files reference the source files directly (no
//! copy). Extended attributes are not read (std has no xattr API).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use basalt_ext4::{Mode, Options};
use basalt_tree::{Content, Entry, Kind, Tree};

fn walk(
    src: &Path,
    key: &str,
    tree: &mut Tree,
    inodes: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)
        .with_context(|| format!("reading directory {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let Some(n) = name.to_str() else {
            bail!("non-UTF-8 name in {}", src.display())
        };
        let p = src.join(&name);
        let md = fs::symlink_metadata(&p).with_context(|| format!("lstat {}", p.display()))?;
        let child = if key == "/" {
            format!("/{n}")
        } else {
            format!("{key}/{n}")
        };
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            let t = fs::read_link(&p)?;
            Kind::Symlink(t.to_str().context("non-UTF-8 symlink target")?.to_string())
        } else if ft.is_file() {
            let id = (md.dev(), md.ino());
            if md.nlink() > 1 {
                if let Some(first) = inodes.get(&id) {
                    Kind::HardLink(first.clone())
                } else {
                    inodes.insert(id, child.clone());
                    Kind::File(Content::Stored {
                        path: Arc::from(p.as_path()),
                        len: md.len(),
                    })
                }
            } else {
                Kind::File(Content::Stored {
                    path: Arc::from(p.as_path()),
                    len: md.len(),
                })
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            let rdev = md.rdev();
            let major = u32::try_from((rdev >> 8) & 0xfff)?;
            let minor = u32::try_from((rdev & 0xff) | ((rdev >> 12) & 0xfff00))?;
            if ft.is_char_device() {
                Kind::CharDevice { major, minor }
            } else {
                Kind::BlockDevice { major, minor }
            }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            eprintln!("skipping socket {}", p.display());
            continue;
        };
        let is_dir = matches!(kind, Kind::Dir);
        let e = Entry {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            xattrs: Default::default(),
        };
        tree.insert(&child, e)
            .with_context(|| format!("adding {child}"))?;
        if is_dir {
            walk(&p, &child, tree, inodes)?;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        bail!("usage: dir2ext4 SRC_DIR OUT.img [--writable SIZE_BYTES] [--slack PERCENT]");
    }
    let mut mode = Mode::ReadOnly { slack_percent: 2 };
    let mut i = 3;
    while i < args.len() {
        match args[i].as_str() {
            "--writable" => {
                mode = Mode::Writable {
                    size_bytes: args.get(i + 1).context("size")?.parse()?,
                }
            }
            "--slack" => {
                mode = Mode::ReadOnly {
                    slack_percent: args.get(i + 1).context("percent")?.parse()?,
                }
            }
            a => bail!("unknown argument {a}"),
        }
        i += 2;
    }
    let t0 = Instant::now();
    let mut tree = Tree::new();
    let root = fs::metadata(&args[1]).context("stat source")?;
    if let Some(r) = tree.get_mut("/") {
        r.mode = root.mode() & 0o7777;
        r.mtime = root.mtime();
    }
    walk(Path::new(&args[1]), "/", &mut tree, &mut HashMap::new()).context("scanning source")?;
    let t1 = Instant::now();
    let mut opts = Options::new(mode);
    opts.timestamp = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let plan = basalt_ext4::plan(&tree, &opts).context("planning")?;
    let t2 = Instant::now();
    let mut f = fs::File::create(&args[2]).context("creating image")?;
    plan.write_to(&mut f).context("writing image")?;
    f.sync_all().ok();
    let t3 = Instant::now();
    eprintln!(
        "entries {} content {} B image {} B ({} blocks, {} used); scan {:.3}s plan {:.3}s write {:.3}s total {:.3}s",
        tree.len(),
        tree.content_bytes(),
        plan.size_bytes(),
        plan.block_count(),
        plan.used_blocks(),
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        (t3 - t0).as_secs_f64()
    );
    Ok(())
}
