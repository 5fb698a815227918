//! Development helper: time the stages of indexing a Packages file.
//! Usage: cargo run --release --example parse_bench -- PACKAGES_FILE

use std::time::Instant;

use basalt_debian::control::{ParseOptions, paragraphs};
use basalt_debian::{Package, PackageIndex};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: parse_bench PACKAGES_FILE");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let t = Instant::now();
    let n = paragraphs(&text, ParseOptions::default())
        .filter(Result::is_ok)
        .count();
    eprintln!("deb822 paragraphs: {n} in {:?}", t.elapsed());
    let t = Instant::now();
    let mut ok = 0;
    for p in paragraphs(&text, ParseOptions::default()).flatten() {
        ok += usize::from(Package::from_paragraph(&p).is_ok());
    }
    eprintln!("paragraphs + packages: {ok} in {:?}", t.elapsed());
    let t = Instant::now();
    let idx = PackageIndex::from_texts("amd64", [("Packages", text.as_str())])
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("full index: {} in {:?}", idx.len(), t.elapsed());
}
