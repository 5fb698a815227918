//! Development helper: resolve roots against an uncompressed Packages file.
//! Usage: cargo run --release --example resolve -- PACKAGES_FILE [--essential] [--recommends] ROOT...

use std::time::Instant;

use basalt_debian::{PackageIndex, Request, resolve};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: resolve PACKAGES_FILE [--essential] [--recommends] ROOT...");
        std::process::exit(2);
    };
    let mut request = Request {
        arch: "amd64".into(),
        ..Request::default()
    };
    for a in args {
        match a.as_str() {
            "--essential" => request.include_essential = true,
            "--recommends" => request.with_recommends = true,
            _ => request.roots.push(a),
        }
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("reading {path}: {e}");
            std::process::exit(1);
        }
    };
    let t0 = Instant::now();
    let index = match PackageIndex::from_texts("amd64", [(path.as_str(), text.as_str())]) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let index_time = t0.elapsed();
    // Warm-up run, then time ten more.
    let _ = resolve(&index, &request);
    let t1 = Instant::now();
    for _ in 0..10 {
        let _ = resolve(&index, &request);
    }
    let per_run = t1.elapsed() / 10;
    match resolve(&index, &request) {
        Ok(res) => {
            for r in &res.packages {
                println!(
                    "{} {} <- {}",
                    r.package.name, r.package.version, r.reasons[0]
                );
            }
            for w in &res.waived {
                println!(
                    "waived: {} of {} (excluded {})",
                    w.relation, w.by, w.excluded
                );
            }
            eprintln!(
                "{} packages; index {:?}, resolve {:?} (mean of 10)",
                res.packages.len(),
                index_time,
                per_run
            );
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
