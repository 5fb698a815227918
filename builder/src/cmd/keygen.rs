//! `basalt keygen PREFIX`: a new Ed25519 key pair for signing update
//! payloads. PREFIX.key is the private key (PKCS#8 PEM, mode 0600; pass it
//! to `--signing-key`), PREFIX.pub the public key the image carries at
//! /usr/share/basalt/update.pub. Existing files are never overwritten.

use std::path::Path;

use anyhow::{Context, Result};

pub fn keygen(out_prefix: &Path) -> Result<()> {
    let key = basalt_payload::keys::generate().context("generating key")?;
    let (private, public) = basalt_payload::keys::write_key_pair(out_prefix, &key)
        .with_context(|| format!("writing key pair {}.{{key,pub}}", out_prefix.display()))?;
    println!("private key: {} (keep secret)", private.display());
    println!("public key:  {}", public.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pair_once() {
        let dir = std::env::temp_dir().join(format!("basalt-keygen-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("release");
        keygen(&prefix).unwrap();
        let k = basalt_payload::keys::load_signing_key(&dir.join("release.key")).unwrap();
        let p = basalt_payload::keys::load_verifying_key(&dir.join("release.pub")).unwrap();
        assert_eq!(k.verifying_key(), p);
        assert!(
            keygen(&prefix).is_err(),
            "second run must refuse to overwrite"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
