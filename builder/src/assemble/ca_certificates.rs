//! The one package "trigger" done at build time: the CA bundle that
//! `update-ca-certificates` would write. When the ca-certificates package
//! is installed, every /usr/share/ca-certificates/**/*.crt (sorted by path)
//! is concatenated into /etc/ssl/certs/ca-certificates.crt, which becomes
//! /usr/share/factory/etc/ssl/certs/ca-certificates.crt with the rest of
//! /etc. The per-certificate hash links of /etc/ssl/certs are not made:
//! OpenSSL, GnuTLS, curl, Go and docker use the bundle.
//!
//! No /etc/ld.so.cache is generated: Debian's glibc searches the multiarch
//! directories (/usr/lib/x86_64-linux-gnu, ...) without a cache, and systemd's
//! ldconfig.service rebuilds the cache on the machine when /etc is new.
//! Other triggers (man-db, mime, icon caches) are not needed by a server
//! image and are not run.

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Kind, Tree};

pub const CERT_DIR: &str = "/usr/share/ca-certificates";
pub const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Build the bundle; returns how many certificates went in.
pub fn apply(tree: &mut Tree, store: &basalt_tree::ContentStore, epoch: i64) -> Result<usize> {
    let certs: Vec<(String, Content)> = tree
        .descendants(CERT_DIR)
        .filter(|(k, _)| k.ends_with(".crt"))
        .filter_map(|(k, e)| match &e.kind {
            Kind::File(c) => Some((k.to_string(), c.clone())),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        bail!("ca-certificates is installed but {CERT_DIR} holds no .crt file");
    }
    let mut bundle = Vec::new();
    for (k, c) in &certs {
        let bytes = c.read_all().with_context(|| format!("reading {k}"))?;
        bundle.extend_from_slice(&bytes);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    let content = store.put_bytes(&bundle).context("storing the CA bundle")?;
    tree.insert_p(BUNDLE, Entry::file(0o644, content).at(epoch))
        .with_context(|| format!("writing {BUNDLE}"))?;
    Ok(certs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_is_sorted_concatenation() {
        let dir = basalt_deb::fixture::scratch_dir("ca-unit");
        let store = basalt_tree::ContentStore::new(&dir).unwrap();
        let mut t = Tree::new();
        for (p, body) in [
            ("mozilla/B.crt", "B"),
            ("mozilla/A.crt", "A\n"),
            ("mozilla/README", "no"),
            ("local/C.crt", "C"),
        ] {
            t.insert_p(
                &format!("{CERT_DIR}/{p}"),
                Entry::file(0o644, Content::from_bytes(body.as_bytes().to_vec())),
            )
            .unwrap();
        }
        assert_eq!(apply(&mut t, &store, 1).unwrap(), 3);
        let Kind::File(c) = &t.get(BUNDLE).unwrap().kind else {
            panic!()
        };
        assert_eq!(c.read_all().unwrap(), b"C\nA\nB\n");
        let err = apply(&mut Tree::new(), &store, 1).unwrap_err();
        assert!(err.to_string().contains("holds no .crt"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
