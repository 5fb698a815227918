//! Round trip, tampering, wrong key, truncation, reproducibility, key files.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use crate::header::HEADER_SIZE;
use crate::*;

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn info() -> PayloadInfo {
    PayloadInfo {
        name: "basalt".into(),
        version: "2.0.1".into(),
        verity: VerityInfo {
            root_hash: "cd".repeat(32),
            hash_offset: 2 * 4096,
            data_blocks: 2,
            salt: "11".repeat(32),
        },
        cmdline: "console=ttyS0,115200".into(),
    }
}

struct Fixture {
    slot: Vec<u8>,
    kernel: Vec<u8>,
    initrd: Vec<u8>,
}

fn fixture() -> Fixture {
    Fixture {
        slot: pattern(3 * 4096, 1),
        kernel: pattern(5000, 2),
        initrd: pattern(777, 3),
    }
}

fn build(fx: &Fixture, k: &SigningKey) -> (Vec<u8>, Metadata) {
    let mut out = Vec::new();
    let meta = write_payload(
        &mut out,
        &info(),
        Source::Bytes(&fx.slot),
        Source::Bytes(&fx.kernel),
        Source::Bytes(&fx.initrd),
        k,
    )
    .unwrap();
    (out, meta)
}

fn open_bytes(bytes: &[u8], k: &VerifyingKey) -> Result<Payload> {
    let mut f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    Payload::open(f, k)
}

#[test]
fn round_trip() {
    let fx = fixture();
    let k = key(7);
    let (bytes, meta) = build(&fx, &k);
    assert_eq!(&bytes[..8], b"BASALTUP");
    assert_eq!(bytes.len() as u64, 4096 + 4 * 4096 + 4096 + 777);
    let p = open_bytes(&bytes, &k.verifying_key()).unwrap();
    assert_eq!(p.metadata(), &meta);
    assert_eq!(meta.kernel.offset, 3 * 4096);
    assert_eq!(meta.initrd.offset, 5 * 4096);
    for (s, want) in [
        (Section::Slot, &fx.slot),
        (Section::Kernel, &fx.kernel),
        (Section::Initrd, &fx.initrd),
    ] {
        let mut got = Vec::new();
        p.section(s).read_to_end(&mut got).unwrap();
        assert_eq!(&got, want, "{}", s.name());
        assert_eq!(&p.read_section(s).unwrap(), want);
        assert_eq!(p.offset(s) % 4096, 0);
    }
}

#[test]
fn reproducible_and_file_source() {
    let fx = fixture();
    let k = key(7);
    let (a, _) = build(&fx, &k);
    let (b, _) = build(&fx, &k);
    assert_eq!(a, b);
    // The slot taken from the middle of a larger file gives the same payload.
    let mut disk = vec![0xeeu8; 8192];
    disk.extend_from_slice(&fx.slot);
    disk.extend_from_slice(&[0xee; 100]);
    let f = tempfile::tempfile().unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &disk, 0).unwrap();
    let mut c = Vec::new();
    write_payload(
        &mut c,
        &info(),
        Source::FileRange {
            file: &f,
            offset: 8192,
            len: fx.slot.len() as u64,
        },
        Source::Bytes(&fx.kernel),
        Source::Bytes(&fx.initrd),
        &k,
    )
    .unwrap();
    assert_eq!(a, c);
}

#[test]
fn tampering_is_named() {
    let fx = fixture();
    let k = key(7);
    let (bytes, meta) = build(&fx, &k);
    let json_end = HEADER_SIZE + serde_json::to_vec(&meta).unwrap().len();
    let data = 4096usize;
    let cases: &[(usize, &str)] = &[
        (0, "magic"),
        (16, "signature does not verify"),
        (23, "metadata length"),
        (HEADER_SIZE + 10, "signature does not verify"),
        (json_end + 3, "signature does not verify"),
        (json_end + 64 + 1, "padding"),
        (data, "slot section is corrupt"),
        (data + 3 * 4096 - 1, "slot section is corrupt"),
        (data + 3 * 4096, "kernel section is corrupt"),
        (data + 3 * 4096 + 4999, "kernel section is corrupt"),
        (data + 3 * 4096 + 5000, "padding"),
        (data + 5 * 4096, "initrd section is corrupt"),
        (bytes.len() - 1, "initrd section is corrupt"),
    ];
    for &(at, want) in cases {
        let mut t = bytes.clone();
        t[at] ^= 0x40;
        let e = open_bytes(&t, &k.verifying_key()).unwrap_err().to_string();
        assert!(e.contains(want), "byte {at}: {e}");
    }
}

#[test]
fn wrong_key_truncated_and_trailing() {
    let fx = fixture();
    let (bytes, _) = build(&fx, &key(7));
    let e = open_bytes(&bytes, &key(8).verifying_key()).unwrap_err();
    assert!(matches!(e, PayloadError::BadSignature), "{e}");
    let good = key(7).verifying_key();
    for len in [0, 10, HEADER_SIZE, 4096, bytes.len() - 1] {
        let e = open_bytes(&bytes[..len], &good).unwrap_err();
        assert!(
            matches!(e, PayloadError::Truncated { .. }),
            "len {len}: {e}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let e = open_bytes(&longer, &good).unwrap_err();
    assert!(matches!(e, PayloadError::Truncated { .. }), "{e}");
}

#[test]
fn bad_info_is_refused_before_writing() {
    let fx = fixture();
    let mut i = info();
    i.cmdline = "basalt.slot=b".into();
    let mut out = Vec::new();
    let e = write_payload(
        &mut out,
        &i,
        Source::Bytes(&fx.slot),
        Source::Bytes(&fx.kernel),
        Source::Bytes(&fx.initrd),
        &key(1),
    )
    .unwrap_err();
    assert!(e.to_string().contains("basalt.slot"), "{e}");
    assert!(out.is_empty());
}

#[test]
fn key_files() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("release");
    let k = keys::generate().unwrap();
    let (kp, pp) = keys::write_key_pair(&prefix, &k).unwrap();
    assert_eq!(kp, dir.path().join("release.key"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&kp), 0o600);
    assert_eq!(mode(&pp), 0o644);
    assert_eq!(
        keys::load_signing_key(&kp).unwrap().to_bytes(),
        k.to_bytes()
    );
    assert_eq!(keys::load_verifying_key(&pp).unwrap(), k.verifying_key());
    let e = keys::write_key_pair(&prefix, &k).unwrap_err().to_string();
    assert!(e.contains("refusing to overwrite"), "{e}");
    let e = keys::load_verifying_key(&kp).unwrap_err().to_string();
    assert!(e.contains("public key"), "{e}");
    assert_ne!(keys::generate().unwrap().to_bytes(), k.to_bytes());
}

/// Oracle: OpenSSL reads our private key and derives the same public key
/// file; we read a key OpenSSL generated.
#[test]
fn openssl_interop() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED openssl_interop: openssl is not installed (apt install openssl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("k");
    let k = key(9);
    let (kp, pp) = keys::write_key_pair(&prefix, &k).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&kp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, std::fs::read(&pp).unwrap());
    let theirs = dir.path().join("o.pem");
    let st = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(st.success());
    keys::load_signing_key(&theirs).unwrap();
}
