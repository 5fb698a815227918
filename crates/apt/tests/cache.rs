//! The content-addressed download cache: verification, repair, parallel fetch.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use basalt_apt::{Cache, Download, Error, Transport};
use common::*;

struct Pool {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    cache: Cache,
    files: Vec<(String, Vec<u8>)>,
}

/// A "pool" of `n` files of varied sizes in a temp dir, and an empty cache.
fn pool(n: usize) -> Pool {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    std::fs::create_dir_all(root.join("pool")).unwrap();
    let mut files = Vec::new();
    for i in 0..n {
        let name = format!("pool/f{i}.deb");
        let data: Vec<u8> = (0..(1000 + i * 7919))
            .map(|j| u8::try_from((j * 31 + i) % 251).unwrap())
            .collect();
        std::fs::write(root.join(&name), &data).unwrap();
        files.push((name, data));
    }
    let cache = Cache::open(dir.path().join("cache"))
        .unwrap()
        .with_transport(Transport::new().with_retries(2, Duration::from_millis(5)));
    Pool {
        _dir: dir,
        root,
        cache,
        files,
    }
}

fn downloads(base: &str, files: &[(String, Vec<u8>)]) -> Vec<Download> {
    files
        .iter()
        .map(|(name, data)| Download {
            url: format!("{base}/{name}"),
            sha256: sha256_hex(data),
            size: u64::try_from(data.len()).unwrap(),
            label: name.clone(),
        })
        .collect()
}

#[test]
fn parallel_fetch_over_http_then_cached() {
    let p = pool(24);
    let server = HttpServer::start(p.root.clone());
    let ds = downloads(&server.base, &p.files);
    let paths = p.cache.fetch_all(&ds, 8).unwrap();
    assert_eq!(paths.len(), ds.len());
    for (path, (_, data)) in paths.iter().zip(&p.files) {
        assert_eq!(&std::fs::read(path).unwrap(), data);
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            sha256_hex(data)
        );
    }
    let hits = server.hits.load(Ordering::SeqCst);
    assert_eq!(hits, 24);
    // Warm: nothing is fetched again.
    p.cache.fetch_all(&ds, 8).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), hits);
    assert!(p.cache.get(&ds[3].sha256).is_some());
}

#[test]
fn corrupt_and_truncated_entries_are_refetched() {
    let p = pool(2);
    let base = format!("file://{}", p.root.display());
    let ds = downloads(&base, &p.files);
    let paths = p.cache.fetch_all(&ds, 2).unwrap();
    // Corrupt one byte of the first entry (same size), truncate the second.
    let mut bytes = std::fs::read(&paths[0]).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&paths[0], &bytes).unwrap();
    let half = p.files[1].1.len() / 2;
    std::fs::write(&paths[1], &p.files[1].1[..half]).unwrap();
    // get() detects both and removes the bad entries.
    assert!(p.cache.get(&ds[0].sha256).is_none());
    assert!(!paths[0].exists());
    assert_eq!(p.cache.get_sized(&ds[1].sha256, ds[1].size).unwrap(), None);
    // Rewrite them bad again and let fetch_all repair them.
    std::fs::write(&paths[0], &bytes).unwrap();
    std::fs::write(&paths[1], &p.files[1].1[..half]).unwrap();
    let again = p.cache.fetch_all(&ds, 2).unwrap();
    for (path, (_, data)) in again.iter().zip(&p.files) {
        assert_eq!(&std::fs::read(path).unwrap(), data);
    }
}

#[test]
fn leftover_temp_files_are_ignored() {
    let p = pool(1);
    let base = format!("file://{}", p.root.display());
    let ds = downloads(&base, &p.files);
    let blob = p.cache.blob_path(&ds[0].sha256).unwrap();
    let dir = blob.parent().unwrap();
    // What an interrupted run leaves: a partial temp file with half the content.
    let temp = dir.join(format!(".partial-{}-999999-0", ds[0].sha256));
    std::fs::write(&temp, &p.files[0].1[..100]).unwrap();
    assert!(p.cache.get(&ds[0].sha256).is_none());
    let paths = p.cache.fetch_all(&ds, 1).unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), p.files[0].1);
    assert_eq!(paths[0], blob);
    // No temp file of ours remains; the stranger's one is untouched.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn hash_and_size_mismatch_after_download_are_errors() {
    let p = pool(2);
    let base = format!("file://{}", p.root.display());
    let mut ds = downloads(&base, &p.files);
    // Claim file 0 has file 1's hash but file 0's size: hash mismatch.
    ds[0].sha256 = sha256_hex(&p.files[1].1);
    ds[0].size = u64::try_from(p.files[0].1.len()).unwrap();
    match p.cache.fetch_all(&ds[..1], 1) {
        Err(Error::HashMismatch {
            url,
            expected,
            actual,
        }) => {
            assert!(url.ends_with("pool/f0.deb"), "{url}");
            assert_eq!(expected, sha256_hex(&p.files[1].1));
            assert_eq!(actual, sha256_hex(&p.files[0].1));
        }
        other => panic!("{other:?}"),
    }
    let mut ds = downloads(&base, &p.files);
    ds[1].size += 1;
    let e = p.cache.fetch_all(&ds, 2).unwrap_err().to_string();
    assert!(
        e.contains("size mismatch") && e.contains("pool/f1.deb"),
        "{e}"
    );
    // Nothing was left in the cache under the wrong hash or as temp files.
    let dir = p.cache.blob_path(&ds[0].sha256).unwrap();
    let dir = dir.parent().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".partial-"), "leftover {name}");
    }
}

#[test]
fn missing_file_and_bad_input_errors() {
    let p = pool(1);
    let server = HttpServer::start(p.root.clone());
    let mut ds = downloads(&server.base, &p.files);
    ds[0].url = format!("{}/pool/absent.deb", server.base);
    let e = p.cache.fetch_all(&ds, 1).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("/pool/absent.deb"));
    ds[0].sha256 = "xyz".into();
    let e = p.cache.fetch_all(&ds, 1).unwrap_err().to_string();
    assert!(e.contains("sha256") && e.contains("xyz"), "{e}");
    ds = downloads("ftp://host.invalid", &p.files);
    let e = p.cache.fetch_all(&ds, 1).unwrap_err().to_string();
    assert!(e.contains("unsupported URL ftp://"), "{e}");
}

#[test]
fn transient_http_errors_are_retried() {
    let p = pool(1);
    let server = HttpServer::start(p.root.clone());
    server.fail_next.store(1, Ordering::SeqCst);
    let ds = downloads(&server.base, &p.files);
    p.cache.fetch_all(&ds, 1).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    // More failures than attempts: the error names the status and the URL.
    let q = pool(1);
    let server = HttpServer::start(q.root.clone());
    server.fail_next.store(5, Ordering::SeqCst);
    let ds = downloads(&server.base, &q.files);
    let e = q.cache.fetch_all(&ds, 1).unwrap_err().to_string();
    assert!(
        e.contains("503") && e.contains("/pool/f0.deb") && e.contains("after 2 attempts"),
        "{e}"
    );
}
