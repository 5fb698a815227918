//! `Packages` indexes: fetched as `Packages.xz`, checked against the verified Release,
//! decompressed, and (when the Release lists the uncompressed file too) checked again.
//!
//! Both the compressed file and the verified decompressed text are kept in the
//! content-addressed cache, so a warm run with an unchanged InRelease neither downloads
//! nor decompresses anything: it re-hashes the cached text and returns it.

use std::io::Read;

use crate::cache::{Cache, Download, hash_copy};
use crate::error::{Error, Result};
use crate::release::{FileInfo, Release};

/// Where one index lives on the mirror.
#[derive(Debug, Clone)]
pub struct IndexLocation<'a> {
    /// Mirror base URL without trailing slash.
    pub mirror: &'a str,
    pub suite: &'a str,
    pub component: &'a str,
    pub arch: &'a str,
    /// URL of the InRelease, for error messages.
    pub inrelease_url: &'a str,
}

/// Largest decompressed index accepted when the Release gives no size for it.
const MAX_INDEX: u64 = 1 << 30;

/// Returns the verified text of the `Packages` index at `loc`.
pub fn packages_text(
    release: &Release,
    loc: &IndexLocation<'_>,
    cache: &Cache,
    offline: bool,
) -> Result<String> {
    let dir = format!("{}/binary-{}", loc.component, loc.arch);
    let xz_path = format!("{dir}/Packages.xz");
    let plain_path = format!("{dir}/Packages");
    let xz = release
        .sha256
        .get(&xz_path)
        .ok_or_else(|| Error::NotListed {
            url: loc.inrelease_url.to_string(),
            path: xz_path.clone(),
        })?;
    let plain = release.sha256.get(&plain_path);

    // Warm path: the verified decompressed text is already cached.
    if let Some(p) = plain
        && let Some(bytes) = cache.read_verified(&p.sha256, p.size)?
    {
        return into_text(bytes, &plain_path);
    }

    let dists = format!("{}/dists/{}", loc.mirror, loc.suite);
    let plain_url = format!("{dists}/{xz_path}");
    let xz_file = if offline {
        cache
            .get_sized(&xz.sha256, xz.size)?
            .ok_or_else(|| Error::Offline {
                msg: format!("{plain_url} (sha256 {}) is not in the cache", xz.sha256),
            })?
    } else {
        fetch_index(cache, release, &dists, &dir, &xz_path, xz)?
    };

    let f = std::fs::File::open(&xz_file).map_err(|e| Error::io("opening index", &xz_file, e))?;
    let limit = plain.map_or(MAX_INDEX, |p| p.size);
    let mut text = Vec::new();
    liblzma::read::XzDecoder::new(f)
        .take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|e| Error::Decompress {
            url: plain_url.clone(),
            msg: e.to_string(),
        })?;
    let n = u64::try_from(text.len()).unwrap_or(u64::MAX);
    if let Some(p) = plain {
        let what = format!("{plain_url} (decompressed)");
        if n != p.size {
            return Err(Error::SizeMismatch {
                url: what,
                expected: p.size,
                actual: n,
            });
        }
        let (_, got) = hash_copy(text.as_slice(), None)
            .map_err(|e| Error::io("hashing index", &xz_file, e))?;
        if got != p.sha256 {
            return Err(Error::HashMismatch {
                url: what,
                expected: p.sha256.clone(),
                actual: got,
            });
        }
        cache.insert_bytes(&text)?;
    } else if n > MAX_INDEX {
        return Err(Error::Decompress {
            url: plain_url,
            msg: format!("decompressed index larger than {MAX_INDEX} bytes"),
        });
    }
    into_text(text, &plain_path)
}

/// Downloads the compressed index, by hash when the Release offers it, else by name.
fn fetch_index(
    cache: &Cache,
    release: &Release,
    dists: &str,
    dir: &str,
    xz_path: &str,
    xz: &FileInfo,
) -> Result<std::path::PathBuf> {
    let by_name = Download {
        url: format!("{dists}/{xz_path}"),
        sha256: xz.sha256.clone(),
        size: xz.size,
        label: xz_path.to_string(),
    };
    if release.acquire_by_hash {
        let by_hash = Download {
            url: format!("{dists}/{dir}/by-hash/SHA256/{}", xz.sha256),
            ..by_name.clone()
        };
        match cache.fetch(&by_hash) {
            Err(Error::NotFound { url }) => {
                log::info!("{url} not found; falling back to {}", by_name.url);
            }
            other => return other,
        }
    }
    cache.fetch(&by_name)
}

fn into_text(bytes: Vec<u8>, path: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::Decompress {
        url: path.to_string(),
        msg: format!("index is not UTF-8: {e}"),
    })
}
