//! OpenPGP keyrings and the key-validity rules used to accept a signature.
//!
//! A keyring file is either binary (concatenated transferable public keys, as in
//! `/usr/share/keyrings/*.gpg`) or ASCII-armoured (`.asc`); the format is detected
//! from the content, not the name.
//!
//! A signature is accepted only when all of these hold (checked in this order):
//! 1. its hash algorithm is SHA-256, SHA-384, SHA-512, SHA3-256 or SHA3-512 (SHA-1, MD5,
//!    RIPEMD-160 and SHA-224 are refused);
//! 2. it has a creation time that is not after `now`, and it has not expired at `now`;
//! 3. its issuer (fingerprint or key id) is a primary key or a subkey in the keyring;
//! 4. the primary key has a valid self-signature (the newest one counts) made with an
//!    accepted hash, is not revoked by a valid self-revocation, was created no later than
//!    the signature, and has not expired at `now`;
//!    For a signature by the primary key itself, that self-signature must not withhold
//!    the signing flag;
//! 5. for a subkey: its newest valid binding signature gives it the signing flag, carries
//!    a valid embedded back-signature, and the subkey is neither revoked nor expired;
//! 6. the signature verifies cryptographically over the signed text.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag, VerifyingKey};

use crate::error::{Error, Result};

/// The public keys of one keyring file.
#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
    keys: Vec<SignedPublicKey>,
}

/// A signature that passed every check: which key made it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodSignature {
    /// Upper-case hex fingerprint of the key (primary or subkey) that signed.
    pub signer: String,
    /// Upper-case hex fingerprint of its primary key.
    pub primary: String,
    /// Signature creation time, seconds since the Unix epoch.
    pub created: u64,
}

/// True for the hash algorithms this crate accepts in any signature.
pub fn strong_hash(alg: HashAlgorithm) -> bool {
    matches!(
        alg,
        HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512
    )
}

fn fp_hex(key: &impl KeyDetails) -> String {
    hex::encode_upper(key.fingerprint().as_bytes())
}

fn created(sig: &Signature) -> Option<u64> {
    sig.created().map(|t| u64::from(t.as_secs()))
}

/// Expiry instant of a key from a self-signature, if it expires.
fn key_expiry(key_created: u64, sig: &Signature) -> Option<u64> {
    match sig.key_expiration_time().map(|d| u64::from(d.as_secs())) {
        None | Some(0) => None,
        Some(d) => Some(key_created.saturating_add(d)),
    }
}

impl Keyring {
    /// Loads a binary or armoured keyring file.
    pub fn load(path: &Path) -> Result<Keyring> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading keyring", path, e))?;
        Keyring::from_bytes(&bytes, path)
    }

    /// Parses keyring bytes; `origin` names the source in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Keyring> {
        let err = |msg: String| Error::Keyring {
            path: origin.to_path_buf(),
            msg,
        };
        let (iter, _headers) = SignedPublicKey::from_reader_many(Cursor::new(bytes))
            .map_err(|e| err(format!("not an OpenPGP keyring: {e}")))?;
        let mut keys = Vec::new();
        for key in iter {
            keys.push(key.map_err(|e| err(format!("bad key: {e}")))?);
        }
        if keys.is_empty() {
            return Err(err("holds no public key".into()));
        }
        Ok(Keyring {
            path: origin.to_path_buf(),
            keys,
        })
    }

    /// Where the keyring came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Upper-case hex fingerprints of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fp_hex(&k.primary_key)).collect()
    }

    /// Checks one signature over `data` against the rules in the module docs.
    /// The error is a short human-readable reason.
    pub fn check(&self, sig: &Signature, data: &[u8], now: u64) -> Result<GoodSignature, String> {
        let hash = sig.hash_alg().ok_or("unsupported signature version")?;
        if !strong_hash(hash) {
            return Err(format!(
                "weak hash algorithm {hash} (SHA-256 or stronger required)"
            ));
        }
        if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
            return Err(format!("unexpected signature type {:?}", sig.typ()));
        }
        let made = created(sig).ok_or("signature has no creation time")?;
        if made > now {
            return Err(format!(
                "signature created in the future ({made} > now {now})"
            ));
        }
        if let Some(d) = sig
            .signature_expiration_time()
            .map(|d| u64::from(d.as_secs()))
            && d != 0
            && made.saturating_add(d) <= now
        {
            return Err(format!("signature expired at {}", made.saturating_add(d)));
        }
        let fps: Vec<Vec<u8>> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        let ids: Vec<Vec<u8>> = sig
            .issuer_key_id()
            .iter()
            .map(|k| k.as_ref().to_vec())
            .collect();
        if fps.is_empty() && ids.is_empty() {
            return Err("signature names no issuer".into());
        }
        let matches = |k: &dyn KeyDetails| {
            fps.iter()
                .any(|f| f.as_slice() == k.fingerprint().as_bytes())
                || ids
                    .iter()
                    .any(|i| i.as_slice() == k.legacy_key_id().as_ref())
        };
        let mut reasons = Vec::new();
        for key in &self.keys {
            if matches(&key.primary_key) {
                match primary_valid(key, made, now)
                    .and_then(primary_may_sign)
                    .and_then(|()| verify(sig, &key.primary_key, data))
                {
                    Ok(()) => {
                        return Ok(GoodSignature {
                            signer: fp_hex(&key.primary_key),
                            primary: fp_hex(&key.primary_key),
                            created: made,
                        });
                    }
                    Err(r) => reasons.push(format!("key {}: {r}", fp_hex(&key.primary_key))),
                }
            }
            for sub in &key.public_subkeys {
                if !matches(&sub.key) {
                    continue;
                }
                match primary_valid(key, made, now)
                    .and_then(|_| subkey_valid(key, sub, made, now))
                    .and_then(|()| verify(sig, &sub.key, data))
                {
                    Ok(()) => {
                        return Ok(GoodSignature {
                            signer: fp_hex(&sub.key),
                            primary: fp_hex(&key.primary_key),
                            created: made,
                        });
                    }
                    Err(r) => reasons.push(format!("subkey {}: {r}", fp_hex(&sub.key))),
                }
            }
        }
        if reasons.is_empty() {
            let who: Vec<String> = sig
                .issuer_fingerprint()
                .iter()
                .map(|f| hex::encode_upper(f.as_bytes()))
                .chain(
                    sig.issuer_key_id()
                        .iter()
                        .map(|k| hex::encode_upper(k.as_ref())),
                )
                .collect();
            return Err(format!(
                "made by key {} which is not in the keyring {}",
                who.join("/"),
                self.path.display()
            ));
        }
        Err(reasons.join("; "))
    }
}

fn verify(sig: &Signature, key: &impl VerifyingKey, data: &[u8]) -> Result<(), String> {
    sig.verify(key, data).map_err(|e| {
        log::debug!("signature check failed: {e}");
        "bad signature (the signed content does not match)".to_string()
    })
}

/// Self-signature checks shared by all binding signatures: strong hash, not from the future.
fn usable_self_sig(sig: &Signature, now: u64) -> bool {
    sig.hash_alg().is_some_and(strong_hash) && created(sig).is_some_and(|c| c <= now)
}

fn primary_valid(key: &SignedPublicKey, sig_made: u64, now: u64) -> Result<&Signature, String> {
    let primary = &key.primary_key;
    let key_created = u64::from(primary.created_at().as_secs());
    if key_created > sig_made {
        return Err("key is newer than the signature".into());
    }
    for rev in &key.details.revocation_signatures {
        if rev.verify_key(primary).is_ok() {
            return Err("key is revoked".into());
        }
    }
    let mut self_sigs: Vec<&Signature> = Vec::new();
    for sig in &key.details.direct_signatures {
        if usable_self_sig(sig, now)
            && sig.typ() == Some(SignatureType::Key)
            && sig.verify_key(primary).is_ok()
        {
            self_sigs.push(sig);
        }
    }
    for user in &key.details.users {
        for sig in &user.signatures {
            if usable_self_sig(sig, now)
                && sig.is_certification()
                && sig
                    .verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            {
                self_sigs.push(sig);
            }
        }
    }
    // The newest self-signature decides (ties: the first one found).
    let mut newest: Option<&Signature> = None;
    for sig in self_sigs {
        if newest.is_none_or(|n| created(n) < created(sig)) {
            newest = Some(sig);
        }
    }
    let newest = newest.ok_or("key has no valid self-signature with a SHA-256+ hash")?;
    if let Some(exp) = key_expiry(key_created, newest)
        && exp <= now
    {
        return Err(format!("key expired at {exp}"));
    }
    Ok(newest)
}

/// True when the self-signature carries a Key Flags subpacket (RFC 9580 5.2.3.29).
fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, pgp::packet::SubpacketData::KeyFlags(_)))
    })
}

/// The primary key itself may sign data unless its flags say otherwise.
fn primary_may_sign(self_sig: &Signature) -> Result<(), String> {
    if has_key_flags(self_sig) && !self_sig.key_flags().sign() {
        return Err("primary key is not marked for signing".into());
    }
    Ok(())
}

fn subkey_valid(
    key: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    sig_made: u64,
    now: u64,
) -> Result<(), String> {
    let primary = &key.primary_key;
    let sub_created = u64::from(sub.key.created_at().as_secs());
    if sub_created > sig_made {
        return Err("subkey is newer than the signature".into());
    }
    let mut newest: Option<&Signature> = None;
    for sig in &sub.signatures {
        if sig.verify_subkey_binding(primary, &sub.key).is_err() {
            continue;
        }
        match sig.typ() {
            Some(SignatureType::SubkeyRevocation) => return Err("subkey is revoked".into()),
            Some(SignatureType::SubkeyBinding)
                if usable_self_sig(sig, now)
                    && newest.is_none_or(|n| created(n) < created(sig)) =>
            {
                newest = Some(sig);
            }
            _ => {}
        }
    }
    let binding = newest.ok_or("subkey has no valid binding signature with a SHA-256+ hash")?;
    if !binding.key_flags().sign() {
        return Err("subkey is not marked for signing".into());
    }
    let back = binding
        .embedded_signature()
        .ok_or("signing subkey has no back-signature")?;
    back.verify_primary_key_binding(&sub.key, primary)
        .map_err(|e| format!("bad back-signature: {e}"))?;
    if let Some(exp) = key_expiry(sub_created, binding)
        && exp <= now
    {
        return Err(format!("subkey expired at {exp}"));
    }
    Ok(())
}
