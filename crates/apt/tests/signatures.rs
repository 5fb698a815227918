//! InRelease signature acceptance and rejection, with keys generated in the test.

mod common;

use std::path::Path;

use basalt_apt::inrelease::verify;
use basalt_apt::{Error, Keyring};
use common::*;
use pgp::crypto::hash::HashAlgorithm;

fn release() -> String {
    release_text(
        "trixie",
        Some("Sat, 21 Jun 2025 08:00:00 UTC"),
        &[("main/binary-amd64/Packages.xz", b"xz bytes")],
    )
}

fn ring(keys: &[&pgp::composed::SignedSecretKey]) -> Keyring {
    Keyring::from_bytes(&keyring_bytes(keys), Path::new("test.gpg")).unwrap()
}

fn check(
    inrelease: &str,
    keyring: &Keyring,
) -> Result<basalt_apt::inrelease::VerifiedRelease, Error> {
    verify(
        inrelease.as_bytes(),
        keyring,
        u64::from(NOW),
        "file:///m/dists/trixie/InRelease",
    )
}

fn expect_reject(inrelease: &str, keyring: &Keyring, needle: &str) {
    match check(inrelease, keyring) {
        Ok(_) => panic!("accepted, expected rejection with {needle:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(needle), "error {msg:?} lacks {needle:?}");
            assert!(
                msg.contains("InRelease file:///m/dists/trixie/InRelease"),
                "{msg}"
            );
        }
    }
}

#[test]
fn good_signature_accepted_and_release_parsed() {
    let key = gen_key(1, "archive", false);
    let ir = sign_inrelease(&release(), &[(&key, SigSpec::default())]);
    let v = check(&ir, &ring(&[&key])).unwrap();
    assert_eq!(v.release.codename.as_deref(), Some("trixie"));
    assert_eq!(v.good_signatures.len(), 1);
    let info = &v.release.sha256["main/binary-amd64/Packages.xz"];
    assert_eq!(info.size, 8);
    assert_eq!(info.sha256, sha256_hex(b"xz bytes"));
}

#[test]
fn signing_subkey_accepted_and_armored_keyring_read() {
    let key = gen_key(2, "archive-sub", true);
    let spec = SigSpec {
        with_subkey: true,
        ..SigSpec::default()
    };
    let ir = sign_inrelease(&release(), &[(&key, spec)]);
    let v = check(&ir, &ring(&[&key])).unwrap();
    assert_ne!(v.good_signatures[0].signer, v.good_signatures[0].primary);
    let armored = keyring_armored(&key);
    let kr = Keyring::from_bytes(armored.as_bytes(), Path::new("k.asc")).unwrap();
    check(&ir, &kr).unwrap();
}

#[test]
fn tampered_inrelease_rejected() {
    let key = gen_key(3, "archive", false);
    let ir = sign_inrelease(&release(), &[(&key, SigSpec::default())]);
    let hash = sha256_hex(b"xz bytes");
    let tampered = ir.replace(&hash, &sha256_hex(b"evil"));
    assert_ne!(tampered, ir);
    expect_reject(&tampered, &ring(&[&key]), "bad signature");
    // Unsigned text appended after the signature block.
    let appended = format!("{ir}\nSHA256:\n {} 4 evil\n", sha256_hex(b"evil"));
    expect_reject(&appended, &ring(&[&key]), "text after the signature");
    // Not a signed message at all.
    expect_reject(&release(), &ring(&[&key]), "does not start with");
}

#[test]
fn unknown_key_rejected() {
    let signer = gen_key(4, "stranger", false);
    let trusted = gen_key(5, "archive", false);
    let ir = sign_inrelease(&release(), &[(&signer, SigSpec::default())]);
    expect_reject(&ir, &ring(&[&trusted]), "not in the keyring");
}

#[test]
fn expired_signature_rejected() {
    let key = gen_key(6, "archive", false);
    let spec = SigSpec {
        created: NOW - 10 * DAY,
        expires_after: Some(DAY),
        ..SigSpec::default()
    };
    let ir = sign_inrelease(&release(), &[(&key, spec)]);
    expect_reject(&ir, &ring(&[&key]), "signature expired");
    // Still within its lifetime: accepted.
    let spec = SigSpec {
        created: NOW - DAY,
        expires_after: Some(10 * DAY),
        ..SigSpec::default()
    };
    let ir = sign_inrelease(&release(), &[(&key, spec)]);
    check(&ir, &ring(&[&key])).unwrap();
}

#[test]
fn future_signature_rejected() {
    let key = gen_key(7, "archive", false);
    let spec = SigSpec {
        created: NOW + DAY,
        ..SigSpec::default()
    };
    let ir = sign_inrelease(&release(), &[(&key, spec)]);
    expect_reject(&ir, &ring(&[&key]), "in the future");
}

#[test]
fn weak_hash_signatures_rejected() {
    let key = gen_rsa_key(8, "archive-rsa");
    for (hash, name) in [
        (HashAlgorithm::Sha1, "SHA1"),
        (HashAlgorithm::Sha224, "SHA224"),
    ] {
        let spec = SigSpec {
            hash,
            ..SigSpec::default()
        };
        let ir = sign_inrelease(&release(), &[(&key, spec)]);
        expect_reject(&ir, &ring(&[&key]), &format!("weak hash algorithm {name}"));
    }
    let ir = sign_inrelease(&release(), &[(&key, SigSpec::default())]);
    check(&ir, &ring(&[&key])).unwrap();
}

#[test]
fn revoked_key_rejected() {
    let mut key = gen_key(9, "archive", false);
    let ir = sign_inrelease(&release(), &[(&key, SigSpec::default())]);
    revoke(&mut key);
    expect_reject(&ir, &ring(&[&key]), "key is revoked");
}

#[test]
fn subkey_problems_rejected() {
    let spec = SigSpec {
        with_subkey: true,
        ..SigSpec::default()
    };
    let mut revoked = gen_key(15, "sub-revoked", true);
    let ir = sign_inrelease(&release(), &[(&revoked, spec)]);
    revoke_subkey(&mut revoked);
    expect_reject(&ir, &ring(&[&revoked]), "subkey is revoked");
    let mut no_back = gen_key(16, "sub-noback", true);
    let ir = sign_inrelease(&release(), &[(&no_back, spec)]);
    strip_backsig(&mut no_back);
    expect_reject(&ir, &ring(&[&no_back]), "no back-signature");
    // Revoking the primary key also kills its subkeys.
    let mut primary_revoked = gen_key(17, "primary-revoked", true);
    let ir = sign_inrelease(&release(), &[(&primary_revoked, spec)]);
    revoke(&mut primary_revoked);
    expect_reject(&ir, &ring(&[&primary_revoked]), "key is revoked");
}

#[test]
fn expired_key_rejected() {
    let mut key = gen_key(10, "archive", false);
    let ir = sign_inrelease(&release(), &[(&key, SigSpec::default())]);
    set_key_expiry(&mut key, 30 * DAY); // created NOW-100d: expired at NOW-70d
    expect_reject(&ir, &ring(&[&key]), "key expired");
    let mut fresh = gen_key(11, "archive", false);
    let ir = sign_inrelease(&release(), &[(&fresh, SigSpec::default())]);
    set_key_expiry(&mut fresh, 1000 * DAY);
    check(&ir, &ring(&[&fresh])).unwrap();
}

#[test]
fn one_good_signature_among_bad_ones_is_enough() {
    let mut expired = gen_key(12, "old", false);
    set_key_expiry(&mut expired, 30 * DAY);
    let stranger = gen_key(13, "stranger", false);
    let good = gen_key(14, "current", false);
    let ir = sign_inrelease(
        &release(),
        &[
            (&expired, SigSpec::default()),
            (&stranger, SigSpec::default()),
            (&good, SigSpec::default()),
        ],
    );
    let kr = ring(&[&expired, &good]);
    let v = check(&ir, &kr).unwrap();
    assert_eq!(v.good_signatures.len(), 1);
    // Without the good key, every reason is listed.
    let kr = ring(&[&expired]);
    match check(&ir, &kr) {
        Err(Error::BadSignature { reasons, .. }) => {
            assert!(reasons.contains("signature 1:") && reasons.contains("key expired"));
            assert!(reasons.contains("signature 2:") && reasons.contains("not in the keyring"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_keyrings_rejected() {
    for (bytes, needle) in [
        (b"".as_slice(), "keyring"),
        (b"garbage that is not pgp".as_slice(), "keyring"),
    ] {
        let e = Keyring::from_bytes(bytes, Path::new("bad.gpg")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(needle) && msg.contains("bad.gpg"), "{msg}");
    }
}

/// Oracle: GnuPG's gpgv agrees with us on the fixtures (good accepted, tampered refused).
#[test]
fn gpgv_agrees_on_fixtures() {
    if std::process::Command::new("gpgv")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("gpgv_agrees_on_fixtures: SKIPPED, gpgv not installed (apt install gpgv)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = gen_key(20, "archive-sub", true);
    let spec = SigSpec {
        with_subkey: true,
        ..SigSpec::default()
    };
    let ir = sign_inrelease(&release(), &[(&key, spec)]);
    let kr = dir.path().join("k.gpg");
    std::fs::write(&kr, keyring_bytes(&[&key])).unwrap();
    let good = dir.path().join("InRelease");
    std::fs::write(&good, &ir).unwrap();
    let bad = dir.path().join("InRelease.bad");
    std::fs::write(&bad, ir.replace("Codename: trixie", "Codename: trixiE")).unwrap();
    let gpgv = |f: &Path| {
        std::process::Command::new("gpgv")
            .arg("--keyring")
            .arg(&kr)
            .arg(f)
            .output()
            .unwrap()
    };
    let out = gpgv(&good);
    assert!(
        out.status.success(),
        "gpgv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!gpgv(&bad).status.success());
    check(&ir, &ring(&[&key])).unwrap();
    expect_reject(
        &std::fs::read_to_string(&bad).unwrap(),
        &ring(&[&key]),
        "bad signature",
    );
}
