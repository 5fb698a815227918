//! Key files: the private key as PKCS#8 PEM (RFC 8410, what
//! `openssl genpkey -algorithm ed25519` writes), the public key as
//! SubjectPublicKeyInfo PEM (`openssl pkey -pubout`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::KeypairBytes;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::{PayloadError, Result, io};

/// A new random signing key (32 bytes from the kernel's CSPRNG).
pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(io("reading /dev/urandom"))?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn signing_key_to_pem(key: &SigningKey) -> Result<String> {
    // PKCS#8 v1 without the optional public key: the form OpenSSL writes
    // and reads (RFC 8410, section 7).
    let kp = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    Ok(kp
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| PayloadError::Key(format!("encoding private key: {e}")))?
        .to_string())
}

pub fn verifying_key_to_pem(key: &VerifyingKey) -> Result<String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| PayloadError::Key(format!("encoding public key: {e}")))
}

pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem)
        .map_err(|e| PayloadError::Key(format!("not an Ed25519 PKCS#8 PEM private key: {e}")))
}

pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| PayloadError::Key(format!("not an Ed25519 PEM public key: {e}")))
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))
}

/// Loads a private key file (PKCS#8 PEM).
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    signing_key_from_pem(&read_text(path)?)
        .map_err(|e| PayloadError::Key(format!("{}: {e}", path.display())))
}

/// Loads a public key file (SubjectPublicKeyInfo PEM).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey> {
    verifying_key_from_pem(&read_text(path)?)
        .map_err(|e| PayloadError::Key(format!("{}: {e}", path.display())))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `text` to `dest` with `mode` via a temp file + fsync + rename;
/// refuses to replace an existing file.
fn write_new(dest: &Path, text: &str, mode: u32) -> Result<()> {
    if dest.exists() {
        return Err(PayloadError::Key(format!(
            "{} exists; refusing to overwrite a key",
            dest.display()
        )));
    }
    let tmp = with_suffix(dest, ".tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(format!("creating {}", tmp.display())))?;
    let done = f
        .write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .and_then(|_| fs::rename(&tmp, dest));
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        return Err(io(format!("writing {}", dest.display()))(e));
    }
    Ok(())
}

/// `basalt keygen PREFIX`: writes PREFIX.key (0600) and PREFIX.pub (0644);
/// returns their paths. Existing files are never overwritten.
pub fn write_key_pair(prefix: &Path, key: &SigningKey) -> Result<(PathBuf, PathBuf)> {
    let (kp, pp) = (with_suffix(prefix, ".key"), with_suffix(prefix, ".pub"));
    if pp.exists() {
        return Err(PayloadError::Key(format!(
            "{} exists; refusing to overwrite a key",
            pp.display()
        )));
    }
    write_new(&kp, &signing_key_to_pem(key)?, 0o600)?;
    write_new(&pp, &verifying_key_to_pem(&key.verifying_key())?, 0o644)?;
    Ok((kp, pp))
}
