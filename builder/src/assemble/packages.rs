//! Unpacking every package, in install order, into one tree.
//!
//! A later package's file replaces an earlier one's (recorded as a
//! conflict); directories keep the metadata of the first package that
//! shipped them; paths below symlinked directories land at the resolved
//! place (dpkg's behaviour). Maintainer scripts are never run: packages that
//! have a postinst are listed in the report.
//!
//! Decompressing and reading the archives runs on every core: worker
//! threads unpack packages into trees of their own, largest archive first
//! (so the kernel's and the container runtimes' archives, which dominate,
//! start at once and no core idles at the end waiting for one of them),
//! and this thread merges those trees into the image tree strictly in
//! install order, so the result is the same as a sequential unpack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use basalt_deb::{
    DebPackage, DirPolicy, Integrity, UnpackOptions, UnpackReport, merge_unpacked,
    unpack_data_alone_with,
};
use basalt_tree::{ContentStore, Tree};

use super::config::AssemblyConfig;
use super::report::{AssemblyReport, Conflict};

/// The order in which workers take packages: by archive size, largest
/// first (ties in install order). Sizes that cannot be read count as 0;
/// opening the package reports the real error.
fn schedule(debs: &[(String, std::path::PathBuf)]) -> Vec<usize> {
    let sizes: Vec<u64> = debs
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    largest_first(&sizes)
}

fn largest_first(sizes: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    order
}

struct Unpacked {
    has_postinst: bool,
    tree: Tree,
    report: UnpackReport,
}

fn unpack_one(name: &str, path: &Path, store: &ContentStore) -> Result<Unpacked> {
    let pkg = DebPackage::open(path).with_context(|| format!("reading package {name}"))?;
    let declared = pkg.name().unwrap_or_default();
    if declared != name {
        bail!(
            "{} is package {declared:?}, but the install list calls it {name:?}",
            path.display()
        );
    }
    let opts = UnpackOptions {
        package: name.to_string(),
        dirs: DirPolicy::KeepExisting,
    };
    // Every .deb reaching assembly has had its SHA-256 checked against the
    // signed index (stages::fetch), so xz's own CRC would be redundant work.
    let (tree, report) = unpack_data_alone_with(path, store, &opts, Integrity::Prehashed)
        .with_context(|| format!("unpacking package {name}"))?;
    Ok(Unpacked {
        has_postinst: pkg.has_script("postinst"),
        tree,
        report,
    })
}

struct Shared {
    next: AtomicUsize,
    abort: AtomicBool,
}

pub fn unpack_all(
    cfg: &AssemblyConfig,
    tree: &mut Tree,
    report: &mut AssemblyReport,
) -> Result<()> {
    let debs = &cfg.debs;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(debs.len().max(1));
    let order = schedule(debs);
    let shared = Shared {
        next: AtomicUsize::new(0),
        abort: AtomicBool::new(false),
    };
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Unpacked>)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (shared, order) = (&shared, &order);
            s.spawn(move || {
                loop {
                    let k = shared.next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = order.get(k) else {
                        break;
                    };
                    if shared.abort.load(Ordering::SeqCst) {
                        break;
                    }
                    let (name, path) = &debs[i];
                    // A panic must reach the merging thread as an error, or
                    // it would wait for this package forever.
                    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        unpack_one(name, path, cfg.store)
                    }))
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("unpacking package {name} panicked")));
                    if tx.send((i, res)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let result = merge_in_order(cfg, tree, report, &rx);
        if result.is_err() {
            shared.abort.store(true, Ordering::SeqCst);
        }
        drop(rx);
        result
    })
}

fn merge_in_order(
    cfg: &AssemblyConfig,
    tree: &mut Tree,
    report: &mut AssemblyReport,
    rx: &mpsc::Receiver<(usize, Result<Unpacked>)>,
) -> Result<()> {
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut pending: BTreeMap<usize, Result<Unpacked>> = BTreeMap::new();
    for (i, (name, path)) in cfg.debs.iter().enumerate() {
        let got = loop {
            if let Some(r) = pending.remove(&i) {
                break r;
            }
            let (j, r) = rx
                .recv()
                .context("an unpacking thread stopped unexpectedly")?;
            pending.insert(j, r);
        };
        let u = got?;
        if u.has_postinst {
            report.postinst_packages.push(name.clone());
        }
        let rep = merge_unpacked(tree, &u.tree, &u.report, DirPolicy::KeepExisting, path)
            .with_context(|| format!("unpacking package {name}"))?;
        drop(u);
        for p in &rep.replaced {
            if let Some(prev) = owner.get(p)
                && prev != name
            {
                report.conflicts.push(Conflict {
                    path: p.clone(),
                    earlier: prev.clone(),
                    later: name.clone(),
                });
            }
        }
        for p in &rep.paths {
            if tree.get(p).is_some_and(|e| !e.is_dir()) {
                owner.insert(p.clone(), name.clone());
            }
        }
        if report
            .package_files
            .insert(name.clone(), rep.paths)
            .is_some()
        {
            bail!("package {name} is listed twice in the install list");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::largest_first;

    #[test]
    fn largest_archives_first_ties_in_install_order() {
        let cases: [(&[u64], &[usize]); 4] = [
            (&[], &[]),
            (&[5], &[0]),
            (&[1, 9, 3, 9, 0], &[1, 3, 2, 0, 4]),
            (&[2, 2, 2], &[0, 1, 2]),
        ];
        for (sizes, want) in cases {
            assert_eq!(largest_first(sizes), want, "{sizes:?}");
        }
    }
}
