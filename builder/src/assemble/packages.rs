//! Unpacking every package, in install order, into one tree.
//!
//! A later package's file replaces an earlier one's (recorded as a
//! conflict); directories keep the metadata of the first package that
//! shipped them; paths below symlinked directories land at the resolved
//! place (dpkg's behaviour). Maintainer scripts are never run: packages that
//! have a postinst are listed in the report.
//!
//! Decompressing and reading the archives runs on every core: worker
//! threads unpack packages into trees of their own, a few packages ahead,
//! and this thread merges those trees into the image tree strictly in
//! install order, so the result is the same as a sequential unpack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use anyhow::{Context, Result, bail};
use basalt_deb::{
    DebPackage, DirPolicy, UnpackOptions, UnpackReport, merge_unpacked, unpack_data_alone,
};
use basalt_tree::{ContentStore, Tree};

use super::config::AssemblyConfig;
use super::report::{AssemblyReport, Conflict};

/// How many packages a worker may run ahead of the merge, per worker.
const LOOKAHEAD_PER_WORKER: usize = 2;

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
    let (tree, report) = unpack_data_alone(path, store, &opts)
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
    merged: Mutex<usize>,
    cv: Condvar,
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
    let lookahead = workers * LOOKAHEAD_PER_WORKER + 1;
    let shared = Shared {
        next: AtomicUsize::new(0),
        abort: AtomicBool::new(false),
        merged: Mutex::new(0),
        cv: Condvar::new(),
    };
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Unpacked>)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let shared = &shared;
            s.spawn(move || {
                loop {
                    let i = shared.next.fetch_add(1, Ordering::SeqCst);
                    if i >= debs.len() {
                        break;
                    }
                    let mut merged = shared.merged.lock().unwrap_or_else(|e| e.into_inner());
                    while !shared.abort.load(Ordering::SeqCst) && i >= *merged + lookahead {
                        merged = shared.cv.wait(merged).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(merged);
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
        let result = merge_in_order(cfg, tree, report, &rx, &shared);
        if result.is_err() {
            shared.abort.store(true, Ordering::SeqCst);
            shared.cv.notify_all();
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
    shared: &Shared,
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
        *shared.merged.lock().unwrap_or_else(|e| e.into_inner()) = i + 1;
        shared.cv.notify_all();
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
