//! The signed index of an update server (`basalt serve-updates`): which
//! payloads a directory holds, with their version, size and SHA-256, so a
//! machine can pick the newest one before downloading anything big.
//!
//! Two files: `index.json` (pretty JSON, entries sorted by name, version
//! ([`compare_versions`]) and file name, trailing newline: the same payloads
//! give the same bytes) and `index.json.sig`: the lower-case hex Ed25519
//! signature (RFC 8032) of [`SIG_CONTEXT`] followed by the exact bytes of
//! `index.json`, and a newline. The context string keeps an index signature
//! from ever being mistaken for a payload signature (those cover bytes that
//! start with the `BASALTUP` magic) made with the same key.

use std::cmp::Ordering;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{PayloadError, Result};
use crate::meta::check_label;
use crate::version::compare_versions;

/// File name of the index on the server.
pub const INDEX_FILE: &str = "index.json";
/// File name of its detached signature.
pub const INDEX_SIG_FILE: &str = "index.json.sig";
/// Index format this code writes and reads.
pub const INDEX_FORMAT: u32 = 1;
/// Prefix of the signed message (domain separation from payload signatures).
pub const SIG_CONTEXT: &[u8] = b"basalt-update-index-v1\n";

/// One payload on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    /// Image name (the payload metadata's `name`).
    pub name: String,
    pub version: String,
    /// File name relative to the index (no directories).
    pub file: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole payload file.
    pub sha256: String,
    /// Verity root hash of its /usr slot.
    pub root_hash: String,
}

/// The index document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: u32,
    pub payloads: Vec<IndexEntry>,
}

fn bad(s: String) -> PayloadError {
    PayloadError::Index(s)
}

/// A payload file name: a plain name, no path separators, no leading dot.
fn check_file_name(f: &str) -> Result<()> {
    let ok = !f.is_empty()
        && f.len() <= 255
        && !f.starts_with('.')
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
    if !ok {
        return Err(bad(format!(
            "file {f:?} must be a plain file name of A-Z a-z 0-9 . _ + ~ - (not starting with .)"
        )));
    }
    Ok(())
}

fn check_sha(what: &str, s: &str) -> Result<()> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad(format!("{what} {s:?} is not 64 lower-case hex digits")));
    }
    Ok(())
}

fn order(a: &IndexEntry, b: &IndexEntry) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| compare_versions(&a.version, &b.version))
        .then_with(|| a.file.cmp(&b.file))
}

impl IndexEntry {
    pub fn validate(&self) -> Result<()> {
        check_label("name", &self.name)
            .and_then(|_| check_label("version", &self.version))
            .map_err(|e| bad(format!("entry {:?}: {e}", self.file)))?;
        check_file_name(&self.file)?;
        check_sha(&format!("{} sha256", self.file), &self.sha256)?;
        check_sha(&format!("{} root_hash", self.file), &self.root_hash)
    }
}

impl Index {
    /// An index of `entries`, validated and put in canonical order.
    pub fn new(mut entries: Vec<IndexEntry>) -> Result<Index> {
        for e in &entries {
            e.validate()?;
        }
        entries.sort_by(order);
        for w in entries.windows(2) {
            if w[0].file == w[1].file {
                return Err(bad(format!("file {:?} listed twice", w[0].file)));
            }
            if w[0].name == w[1].name && compare_versions(&w[0].version, &w[1].version).is_eq() {
                return Err(bad(format!(
                    "{} {} is in both {:?} and {:?}",
                    w[0].name, w[0].version, w[0].file, w[1].file
                )));
            }
        }
        let mut files: Vec<&str> = entries.iter().map(|e| e.file.as_str()).collect();
        files.sort_unstable();
        if let Some(w) = files.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!("file {:?} listed twice", w[0])));
        }
        Ok(Index {
            format: INDEX_FORMAT,
            payloads: entries,
        })
    }

    /// The canonical bytes of `index.json`.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The newest payload named `name` whose version is above `current`.
    pub fn newest_above(&self, name: &str, current: &str) -> Option<&IndexEntry> {
        self.payloads
            .iter()
            .filter(|e| e.name == name && compare_versions(&e.version, current).is_gt())
            .max_by(|a, b| compare_versions(&a.version, &b.version))
    }
}

fn message(json: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIG_CONTEXT.len() + json.len());
    m.extend_from_slice(SIG_CONTEXT);
    m.extend_from_slice(json);
    m
}

/// The content of `index.json.sig` for the bytes of `index.json`.
pub fn sign_index(json: &[u8], key: &SigningKey) -> String {
    let sig = key.sign(&message(json));
    format!("{}\n", hex::encode(sig.to_bytes()))
}

/// Checks the signature of `json` first, then parses and validates it.
/// Nothing of the document is looked at before the signature holds.
pub fn verify_index(json: &[u8], sig_file: &[u8], key: &VerifyingKey) -> Result<Index> {
    let text = std::str::from_utf8(sig_file)
        .map_err(|_| bad(format!("{INDEX_SIG_FILE} is not text")))?
        .trim_end_matches('\n');
    let raw = hex::decode(text).map_err(|e| bad(format!("{INDEX_SIG_FILE} is not hex: {e}")))?;
    let raw: [u8; 64] = raw.try_into().map_err(|v: Vec<u8>| {
        bad(format!(
            "{INDEX_SIG_FILE} holds {} bytes, an Ed25519 signature has 64",
            v.len()
        ))
    })?;
    key.verify(&message(json), &Signature::from_bytes(&raw))
        .map_err(|_| PayloadError::BadIndexSignature)?;
    let idx: Index = serde_json::from_slice(json).map_err(|e| bad(format!("{INDEX_FILE}: {e}")))?;
    if idx.format != INDEX_FORMAT {
        return Err(bad(format!(
            "format {} is not supported (this agent reads {INDEX_FORMAT})",
            idx.format
        )));
    }
    let canonical = Index::new(idx.payloads.clone())?;
    if canonical != idx {
        return Err(bad(format!(
            "{INDEX_FILE}: entries are not in canonical order"
        )));
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, file: &str) -> IndexEntry {
        IndexEntry {
            name: name.into(),
            version: version.into(),
            file: file.into(),
            size: 8192,
            sha256: "ab".repeat(32),
            root_hash: "cd".repeat(32),
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sample() -> Index {
        Index::new(vec![
            entry("basalt", "0.10.0", "basalt-0.10.0.update"),
            entry("basalt", "0.2.0", "basalt-0.2.0.update"),
            entry("other", "9", "other-9.update"),
            entry("basalt", "0.9.0~rc1", "basalt-0.9.0~rc1.update"),
        ])
        .unwrap()
    }

    #[test]
    fn canonical_order_and_bytes() {
        let a = sample();
        let versions: Vec<&str> = a.payloads.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(versions, ["0.2.0", "0.9.0~rc1", "0.10.0", "9"]);
        let mut rev = a.payloads.clone();
        rev.reverse();
        let b = Index::new(rev).unwrap();
        assert_eq!(a.to_json(), b.to_json());
        assert!(a.to_json().ends_with(b"}\n"));
        assert_eq!(
            sign_index(&a.to_json(), &key(1)),
            sign_index(&b.to_json(), &key(1))
        );
    }

    #[test]
    fn newest_above_table() {
        let idx = sample();
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("basalt", "0.1.0", Some("0.10.0")),
            ("basalt", "0.9.0", Some("0.10.0")),
            ("basalt", "0.10.0", None),
            ("basalt", "1.0", None),
            ("other", "8", Some("9")),
            ("missing", "0", None),
        ];
        for &(name, cur, want) in cases {
            let got = idx.newest_above(name, cur).map(|e| e.version.as_str());
            assert_eq!(got, want, "{name} above {cur}");
        }
    }

    #[test]
    fn signature_round_trip_and_refusals() {
        let idx = sample();
        let json = idx.to_json();
        let sig = sign_index(&json, &key(1));
        let vk = key(1).verifying_key();
        assert_eq!(verify_index(&json, sig.as_bytes(), &vk).unwrap(), idx);

        // Wrong key, flipped byte in the document, flipped signature.
        let other = key(2).verifying_key();
        assert!(matches!(
            verify_index(&json, sig.as_bytes(), &other),
            Err(PayloadError::BadIndexSignature)
        ));
        let mut tampered = json.clone();
        let at = tampered.iter().position(|&b| b == b'9').unwrap();
        tampered[at] = b'8';
        assert!(matches!(
            verify_index(&tampered, sig.as_bytes(), &vk),
            Err(PayloadError::BadIndexSignature)
        ));
        let mut badsig = sig.clone().into_bytes();
        badsig[0] = if badsig[0] == b'0' { b'1' } else { b'0' };
        assert!(matches!(
            verify_index(&json, &badsig, &vk),
            Err(PayloadError::BadIndexSignature)
        ));
        // A payload-style signature over the bare document is not accepted.
        let bare = hex::encode(key(1).sign(&json).to_bytes());
        assert!(verify_index(&json, bare.as_bytes(), &vk).is_err());
        for (sigtext, want) in [("zz", "not hex"), ("abcd", "holds 2 bytes")] {
            let e = verify_index(&json, sigtext.as_bytes(), &vk).unwrap_err();
            assert!(e.to_string().contains(want), "{sigtext}: {e}");
        }
    }

    #[test]
    fn signed_but_invalid_documents_are_refused() {
        let k = key(3);
        let vk = k.verifying_key();
        let docs: &[(&str, &str)] = &[
            (r#"{"format":2,"payloads":[]}"#, "format 2 is not supported"),
            (r#"{"format":1}"#, "missing field"),
            (r#"{"format":1,"payloads":[],"x":1}"#, "unknown field"),
        ];
        for &(doc, want) in docs {
            let sig = sign_index(doc.as_bytes(), &k);
            let e = verify_index(doc.as_bytes(), sig.as_bytes(), &vk).unwrap_err();
            assert!(e.to_string().contains(want), "{doc}: {e}");
        }
        let bad_entries: &[(IndexEntry, &str)] = &[
            (entry("b", "1", "../etc/passwd"), "plain file name"),
            (entry("b", "1", ".hidden"), "plain file name"),
            (entry("b", "1 2", "f"), "version"),
            (
                IndexEntry {
                    sha256: "AB".repeat(32),
                    ..entry("b", "1", "f")
                },
                "lower-case hex",
            ),
        ];
        for (e, want) in bad_entries {
            let doc = Index {
                format: 1,
                payloads: vec![e.clone()],
            };
            let json = serde_json::to_vec(&doc).unwrap();
            let sig = sign_index(&json, &k);
            let err = verify_index(&json, sig.as_bytes(), &vk).unwrap_err();
            assert!(err.to_string().contains(want), "{e:?}: {err}");
        }
        // Out of order (signed as is) and duplicates.
        let mut unordered = sample();
        unordered.payloads.reverse();
        let json = serde_json::to_vec(&unordered).unwrap();
        let e = verify_index(&json, sign_index(&json, &k).as_bytes(), &vk).unwrap_err();
        assert!(e.to_string().contains("canonical order"), "{e}");
        let dup = Index::new(vec![entry("b", "1", "x"), entry("b", "1.0", "x")]).unwrap_err();
        assert!(dup.to_string().contains("listed twice"), "{dup}");
        let same = Index::new(vec![entry("b", "1.01", "x"), entry("b", "1.1", "y")]).unwrap_err();
        assert!(same.to_string().contains("is in both"), "{same}");
    }
}
