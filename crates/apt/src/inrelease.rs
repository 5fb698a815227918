//! InRelease: an OpenPGP cleartext-signed Release file.
//!
//! Framing is checked strictly before any signature work: the file must be UTF-8, start
//! with the cleartext header, hold exactly one signed message, and have nothing but
//! whitespace after the signature block — so no unsigned text can ride along. Only the
//! signed text is parsed as the Release.
//!
//! Acceptance rule: the file is accepted when at least ONE of its signatures passes every
//! check in [`crate::keyring`] (good signature, issuer in the keyring, key valid, not
//! revoked, not expired, SHA-256+ hashes). Debian signs each release with several keys,
//! some of which may be expired or absent from an older keyring; those signatures are
//! skipped. When none passes, the error lists the reason for each signature.

use crate::error::{Error, Result};
use crate::keyring::{GoodSignature, Keyring};
use crate::release::Release;

use pgp::composed::CleartextSignedMessage;

const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const END_SIG: &str = "-----END PGP SIGNATURE-----";

/// A verified InRelease: the parsed Release and the signatures that were accepted.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    pub release: Release,
    pub good_signatures: Vec<GoodSignature>,
}

/// Verifies InRelease `bytes` (fetched from `url`) against `keyring` at `now` (seconds
/// since the Unix epoch) and returns the signed Release. Does not check suite or
/// Valid-Until; see [`Release::check`].
pub fn verify(bytes: &[u8], keyring: &Keyring, now: u64, url: &str) -> Result<VerifiedRelease> {
    let bad = |msg: String| Error::Release {
        url: url.to_string(),
        msg,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let trimmed = text.trim();
    if !trimmed.starts_with(BEGIN) {
        return Err(bad(format!("does not start with {BEGIN:?}")));
    }
    if trimmed.matches(BEGIN).count() != 1 {
        return Err(bad("holds more than one signed message".into()));
    }
    if !trimmed.ends_with(END_SIG) || trimmed.matches(END_SIG).count() != 1 {
        return Err(bad(format!(
            "text after the signature, or no {END_SIG:?} line"
        )));
    }
    let (msg, _headers) = CleartextSignedMessage::from_string(text)
        .map_err(|e| bad(format!("malformed cleartext signature: {e}")))?;
    if msg.signatures().is_empty() {
        return Err(bad("no signature".into()));
    }
    let signed = msg.signed_text();
    let mut good = Vec::new();
    let mut reasons = Vec::new();
    for (i, sig) in msg.signatures().iter().enumerate() {
        match keyring.check(sig, signed.as_bytes(), now) {
            Ok(g) => good.push(g),
            Err(r) => reasons.push(format!("signature {}: {r}", i + 1)),
        }
    }
    if good.is_empty() {
        return Err(Error::BadSignature {
            url: url.to_string(),
            reasons: reasons.join("; "),
        });
    }
    for r in &reasons {
        log::debug!("InRelease {url}: ignoring {r}");
    }
    // The signed text uses CRLF line ends (the form that was hashed); Release uses LF.
    let release_text = signed.replace("\r\n", "\n");
    let release = Release::parse(&release_text).map_err(bad)?;
    Ok(VerifiedRelease {
        release,
        good_signatures: good,
    })
}
