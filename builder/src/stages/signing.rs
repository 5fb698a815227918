//! The update signing key: `--signing-key`, else the profile's
//! `update.signing_key`, else a per-user key under
//! `$XDG_CONFIG_HOME/basalt/update.key` (made on first use, like `basalt
//! keygen`). The image carries the matching public key.

use std::path::PathBuf;

use anyhow::{Context, Result};
use basalt_payload::SigningKey;

use crate::log;

pub struct Signer {
    pub key: SigningKey,
    /// PEM of the public key, installed as /usr/share/basalt/update.pub.
    pub public_pem: String,
}

fn default_prefix() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?,
        )
        .join(".config"),
    };
    Ok(base.join("basalt").join("update"))
}

pub fn signer(explicit: Option<PathBuf>) -> Result<Signer> {
    let path = match explicit {
        Some(p) => p,
        None => {
            let prefix = default_prefix()?;
            let key = prefix.with_extension("key");
            if !key.exists() {
                std::fs::create_dir_all(prefix.parent().context("key directory")?)
                    .with_context(|| format!("creating {}", prefix.display()))?;
                let k = basalt_payload::keys::generate()
                    .context("generating the update signing key")?;
                basalt_payload::keys::write_key_pair(&prefix, &k)
                    .context("writing the update signing key")?;
                log::step(&format!(
                    "generated update signing key {} (keep it: updates must be signed by it)",
                    key.display()
                ));
            }
            key
        }
    };
    let key = crate::output::payload::load_signing_key(&path)?;
    let public_pem = basalt_payload::keys::verifying_key_to_pem(&key.verifying_key())
        .context("encoding the public key")?;
    log::detail(&format!(
        "update payloads are signed with {}",
        path.display()
    ));
    Ok(Signer { key, public_pem })
}
