//! How the assembled tree is split across partitions: `/usr` becomes the
//! /usr slot's filesystem, the kernel goes to the ESP, and the rest (the
//! root skeleton: merged-usr links and empty mount points) seeds ROOT.

use anyhow::{Context, Result, bail};
use basalt_tree::{Entry, Kind, Tree};

/// The three trees a disk image is written from.
pub struct Split {
    pub usr: Tree,
    pub root: Tree,
    pub esp: Tree,
}

/// Directories every ROOT has, created empty (mount points and state).
const ROOT_DIRS: &[(&str, u32)] = &[
    ("/boot", 0o755),
    ("/dev", 0o755),
    ("/etc", 0o755),
    ("/home", 0o755),
    ("/media", 0o755),
    ("/mnt", 0o755),
    ("/opt", 0o755),
    ("/proc", 0o555),
    ("/root", 0o700),
    ("/run", 0o755),
    ("/srv", 0o755),
    ("/sys", 0o555),
    ("/tmp", 0o1777),
    ("/usr", 0o755),
    ("/var", 0o755),
];

pub fn split(tree: &Tree, kernels: &[String], epoch: i64) -> Result<Split> {
    let usr = tree.subtree("/usr").context("extracting /usr")?;
    let mut root = Tree::new();
    root.get_mut("/").context("tree without a root")?.mtime = epoch;
    for (k, e) in tree.iter() {
        let top = k.split('/').nth(1).unwrap_or("");
        // Only the top level's links and directories; /usr is mounted, /boot's
        // kernels live on the ESP, /etc comes from the factory (disk images:
        // seed_etc.rs at build time; /init at every boot for what is missing).
        if k == "/" || top == "usr" {
            continue;
        }
        if top == "var" {
            match &e.kind {
                Kind::Dir | Kind::File(_) | Kind::Symlink(_) => {
                    root.insert(k, e.clone())
                        .with_context(|| format!("putting {k} on ROOT"))?;
                }
                _ => bail!(
                    "{k} is a {}: only directories, files and links are put in ROOT's /var",
                    e.kind.name()
                ),
            }
            continue;
        }
        if k.matches('/').count() != 1 {
            if top == "boot" {
                continue; // kernel images: the ESP gets them below
            }
            bail!(
                "{k} is outside /usr: an image's files must live in /usr (ROOT only gets the top-level skeleton)"
            );
        }
        match &e.kind {
            Kind::Symlink(_) | Kind::Dir => {
                root.insert(k, e.clone())?;
            }
            _ => bail!(
                "{k} is a {} outside /usr: an image's files must live in /usr",
                e.kind.name()
            ),
        }
    }
    for (d, mode) in ROOT_DIRS {
        if !root.contains(d) {
            root.insert(d, Entry::dir(*mode).at(epoch))?;
        }
    }
    let mut esp = Tree::new();
    esp.get_mut("/").context("tree without a root")?.mtime = epoch;
    let Some(kver) = kernels.first() else {
        bail!("the tree holds no kernel (no /usr/lib/modules/<version>/kernel)")
    };
    let kernel = [
        format!("/boot/vmlinuz-{kver}"),
        format!("/usr/lib/modules/{kver}/vmlinuz"),
    ]
    .into_iter()
    .find_map(|p| match tree.get(&p).map(|e| &e.kind) {
        Some(Kind::File(c)) => Some(c.clone()),
        _ => None,
    })
    .with_context(|| format!("no kernel image for {kver} in /boot or /usr/lib/modules"))?;
    esp.insert_p(
        "/EFI/basalt/vmlinuz-a",
        Entry::file(0o644, kernel).at(epoch),
    )?;
    Ok(Split { usr, root, esp })
}
