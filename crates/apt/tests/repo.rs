//! Repo over file:// and a loopback HTTP server, index verification, offline mode,
//! and the optional real-network check.

mod common;

use std::path::Path;
use std::time::Duration;

use basalt_apt::{Cache, Error, Repo, RepoConfig, Transport};
use common::*;

fn config(mirror: &str, keyring: &Path) -> RepoConfig {
    RepoConfig {
        mirror: mirror.to_string(),
        suite: "trixie".into(),
        components: vec!["main".into()],
        arch: "amd64".into(),
        keyring: keyring.to_path_buf(),
        now: now(),
        offline: false,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    mirror: std::path::PathBuf,
    keyring: std::path::PathBuf,
    cache: Cache,
    fixture: MirrorFixture,
}

fn setup(by_hash_copy: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let key = gen_key(100, "archive", false);
    let fixture = build_mirror(&mirror, &key, by_hash_copy);
    let keyring = dir.path().join("archive.gpg");
    std::fs::write(&keyring, keyring_bytes(&[&key])).unwrap();
    let cache = Cache::open(dir.path().join("cache"))
        .unwrap()
        .with_transport(Transport::new().with_retries(3, Duration::from_millis(10)));
    Setup {
        _dir: dir,
        mirror,
        keyring,
        cache,
        fixture,
    }
}

#[test]
fn file_mirror_end_to_end_and_warm_run() {
    let s = setup(true);
    let url = format!("file://{}", s.mirror.display());
    let repo = Repo::open(&config(&url, &s.keyring), &s.cache).unwrap();
    assert_eq!(repo.release().codename.as_deref(), Some("trixie"));
    assert_eq!(repo.packages_text("main").unwrap(), s.fixture.packages);
    assert_eq!(
        repo.pool_url("pool/main/p/pkg1/pkg1_1.1-1_amd64.deb"),
        format!("{url}/pool/main/p/pkg1/pkg1_1.1-1_amd64.deb")
    );
    // Warm: the mirror's index files vanish, the cached verified text is used.
    std::fs::remove_dir_all(s.mirror.join("dists/trixie/main")).unwrap();
    let repo = Repo::open(&config(&url, &s.keyring), &s.cache).unwrap();
    assert_eq!(repo.packages_text("main").unwrap(), s.fixture.packages);
    // Unknown component is a clear error.
    let mut cfg = config(&url, &s.keyring);
    cfg.components = vec!["nonfree-typo".into()];
    let e = Repo::open(&cfg, &s.cache).unwrap_err().to_string();
    assert!(e.contains("has no component \"nonfree-typo\""), "{e}");
}

#[test]
fn wrong_suite_and_stale_release_rejected() {
    let s = setup(true);
    let url = format!("file://{}", s.mirror.display());
    let mut cfg = config(&url, &s.keyring);
    // The file says Codename trixie; ask for it under a directory named otherwise.
    std::fs::rename(s.mirror.join("dists/trixie"), s.mirror.join("dists/forky")).unwrap();
    cfg.suite = "forky".into();
    let e = Repo::open(&cfg, &s.cache).unwrap_err().to_string();
    assert!(e.contains("not the requested suite \"forky\""), "{e}");
    std::fs::rename(s.mirror.join("dists/forky"), s.mirror.join("dists/trixie")).unwrap();
    let mut cfg = config(&url, &s.keyring);
    cfg.now = now() + Duration::from_secs(30 * u64::from(DAY));
    let e = Repo::open(&cfg, &s.cache).unwrap_err().to_string();
    assert!(e.contains("Valid-Until"), "{e}");
}

#[test]
fn packages_hash_mismatch_rejected() {
    let s = setup(false);
    let url = format!("file://{}", s.mirror.display());
    let repo = Repo::open(&config(&url, &s.keyring), &s.cache).unwrap();
    // Replace the index with a different one of the same size.
    let mut evil = s.fixture.packages_xz.clone();
    let last = evil.len() - 20;
    evil[last] ^= 0xff;
    std::fs::write(
        s.mirror.join("dists/trixie/main/binary-amd64/Packages.xz"),
        &evil,
    )
    .unwrap();
    match repo.packages_text("main") {
        Err(Error::HashMismatch {
            url: u,
            expected,
            actual,
        }) => {
            assert!(u.ends_with("main/binary-amd64/Packages.xz"), "{u}");
            assert_eq!(expected, sha256_hex(&s.fixture.packages_xz));
            assert_eq!(actual, sha256_hex(&evil));
        }
        other => panic!("{other:?}"),
    }
    // A truncated index is a size mismatch.
    std::fs::write(
        s.mirror.join("dists/trixie/main/binary-amd64/Packages.xz"),
        &s.fixture.packages_xz[..10],
    )
    .unwrap();
    let e = repo.packages_text("main").unwrap_err().to_string();
    assert!(e.contains("size mismatch"), "{e}");
    // Nothing bad was cached.
    assert!(s.cache.get(&sha256_hex(&evil)).is_none());
}

#[test]
fn http_mirror_with_retry_and_by_hash_fallback() {
    let s = setup(false); // no by-hash copy: the client must fall back to the plain name
    let server = HttpServer::start(s.mirror.clone());
    server
        .fail_next
        .store(1, std::sync::atomic::Ordering::SeqCst); // first request gets a 503
    let repo = Repo::open(&config(&server.base, &s.keyring), &s.cache).unwrap();
    assert_eq!(repo.packages_text("main").unwrap(), s.fixture.packages);
    // 503 + InRelease + by-hash 404 + plain = 4 requests.
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 4);
    let e = Repo::open(
        &config(&format!("{}/nothing", server.base), &s.keyring),
        &s.cache,
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("/nothing/dists/trixie/InRelease"));
}

#[test]
fn offline_uses_last_verified_inrelease() {
    let s = setup(true);
    let url = format!("file://{}", s.mirror.display());
    let mut cfg = config(&url, &s.keyring);
    cfg.offline = true;
    let e = Repo::open(&cfg, &s.cache).unwrap_err().to_string();
    assert!(
        e.contains("offline") && e.contains("run once online"),
        "{e}"
    );
    Repo::open(&config(&url, &s.keyring), &s.cache)
        .unwrap()
        .packages_text("main")
        .unwrap();
    std::fs::remove_dir_all(&s.mirror).unwrap();
    let repo = Repo::open(&cfg, &s.cache).unwrap();
    assert_eq!(repo.packages_text("main").unwrap(), s.fixture.packages);
}

/// Verifies the real trixie InRelease from the host's configured mirror with the host
/// keyring, and loads main's Packages index. Runs only with BASALT_NETWORK_TESTS=1.
#[test]
fn real_trixie_inrelease() {
    if std::env::var("BASALT_NETWORK_TESTS").as_deref() != Ok("1") {
        eprintln!("real_trixie_inrelease: skipped (set BASALT_NETWORK_TESTS=1 to run)");
        return;
    }
    let mirror = basalt_apt::discover_mirror(Path::new("/etc/apt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = match std::env::var_os("BASALT_TEST_CACHE") {
        Some(p) => Cache::open(p).unwrap(),
        None => Cache::open(dir.path()).unwrap(),
    };
    let cfg = RepoConfig {
        mirror: mirror.url.clone(),
        suite: "trixie".into(),
        components: vec!["main".into()],
        arch: "amd64".into(),
        keyring: basalt_apt::DEFAULT_KEYRING.into(),
        now: std::time::SystemTime::now(),
        offline: false,
    };
    for round in ["cold", "warm"] {
        let t = std::time::Instant::now();
        let repo = Repo::open(&cfg, &cache).unwrap();
        let t_verify = t.elapsed();
        let text = repo.packages_text("main").unwrap();
        eprintln!(
            "real_trixie_inrelease {round}: InRelease verify {:?} ({} good signatures), \
             Packages load {:?} ({} bytes)",
            t_verify,
            repo.good_signatures().len(),
            t.elapsed() - t_verify,
            text.len()
        );
        assert!(text.contains("\nPackage: bash\n"));
    }
    // The same real file with one changed line is refused.
    let url = format!("{}/dists/trixie/InRelease", mirror.url);
    let bytes = Transport::new().get_bytes(&url, 64 << 20).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let tampered = text.replacen("Codename: trixie", "Codename: trixiE", 1);
    assert_ne!(text, tampered);
    let keyring = basalt_apt::Keyring::load(Path::new(basalt_apt::DEFAULT_KEYRING)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    basalt_apt::inrelease::verify(text.as_bytes(), &keyring, now, &url).unwrap();
    let e = basalt_apt::inrelease::verify(tampered.as_bytes(), &keyring, now, &url).unwrap_err();
    eprintln!("real_trixie_inrelease: tampered copy refused: {e}");
    assert!(matches!(e, Error::BadSignature { .. }), "{e}");
}
