//! Fetching and verifying remote contents: `data:` URLs, http(s) via ureq
//! with rustls (ring), gzip, sha256/sha512. Everything is fetched before
//! anything is written; `resolve_plan` turns every remote source into inline
//! bytes or fails.

use crate::plan::{Hash, Plan, Resource, Source};
use sha2::{Digest, Sha256, Sha512};
use std::io::Read;
use std::time::Duration;

/// Largest single resource accepted (after decompression).
pub const MAX_RESOURCE: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {msg}")]
    Invalid { url: String, msg: String },
    #[error("fetching {url}: {msg}")]
    Http { url: String, msg: String },
    #[error("{url}: decompressing gzip: {msg}")]
    Gzip { url: String, msg: String },
    #[error("{url}: {algo} mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        url: String,
        algo: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{url}: larger than {MAX_RESOURCE} bytes")]
    TooLarge { url: String },
    #[error("TLS certificate authority: {0}")]
    Tls(String),
}

/// Fetches resources with the plan's timeouts, proxy and CAs.
pub struct Fetcher {
    agent: ureq::Agent,
    /// Agent without proxy, for hosts in `no_proxy`.
    direct: Option<ureq::Agent>,
    no_proxy: Vec<String>,
}

impl Fetcher {
    /// A fetcher with defaults (no proxy, Mozilla roots, 90 s total).
    pub fn new() -> Self {
        Self::configure(&[], &Default::default(), &Default::default()).unwrap_or_else(|_| Fetcher {
            agent: ureq::Agent::new_with_defaults(),
            direct: None,
            no_proxy: Vec::new(),
        })
    }

    /// `cas`: PEM bundles; when given, only they are trusted for https.
    pub fn configure(
        cas: &[Vec<u8>],
        timeouts: &crate::plan::Timeouts,
        proxy: &crate::plan::Proxy,
    ) -> Result<Self, FetchError> {
        let base = || {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(10)
                .timeout_global(Some(Duration::from_secs(
                    timeouts.http_total_s.unwrap_or(90),
                )))
                .timeout_recv_response(Some(Duration::from_secs(
                    timeouts.http_response_headers_s.unwrap_or(10),
                )))
        };
        let mut b = base();
        let mut has_proxy = false;
        if let Some(p) = proxy.https.as_ref().or(proxy.http.as_ref()) {
            has_proxy = true;
            let p = ureq::Proxy::new(p).map_err(|e| FetchError::Invalid {
                url: p.clone(),
                msg: format!("bad proxy: {e}"),
            })?;
            b = b.proxy(Some(p));
        }
        let mut tls = None;
        if !cas.is_empty() {
            let mut certs = Vec::new();
            for pem in cas {
                for item in ureq::tls::parse_pem(pem) {
                    match item.map_err(|e| FetchError::Tls(e.to_string()))? {
                        ureq::tls::PemItem::Certificate(c) => certs.push(c),
                        _ => continue,
                    }
                }
            }
            if certs.is_empty() {
                return Err(FetchError::Tls(
                    "no certificate found in the given PEM data".into(),
                ));
            }
            tls = Some(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        let direct = if has_proxy && !proxy.no_proxy.is_empty() {
            let mut d = base();
            if let Some(tls) = tls.clone() {
                d = d.tls_config(tls);
            }
            Some(d.build().new_agent())
        } else {
            None
        };
        if let Some(tls) = tls {
            b = b.tls_config(tls);
        }
        Ok(Fetcher {
            agent: b.build().new_agent(),
            direct,
            no_proxy: proxy.no_proxy.clone(),
        })
    }

    /// Fetch, decompress and verify one resource.
    pub fn fetch(&self, r: &Resource) -> Result<Vec<u8>, FetchError> {
        let raw = if r.url.starts_with("data:") {
            crate::check::decode_data_url(&r.url).map_err(|msg| FetchError::Invalid {
                url: short(&r.url),
                msg,
            })?
        } else if r.url.starts_with("http://") || r.url.starts_with("https://") {
            self.http_get(&r.url, &r.headers)?
        } else {
            return Err(FetchError::Invalid {
                url: short(&r.url),
                msg: "unsupported URL scheme".into(),
            });
        };
        // Ignition verifies the hash of the contents as fetched (before decompression).
        if let Some(h) = &r.hash {
            verify(&r.url, h, &raw)?;
        }
        if r.gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .take(MAX_RESOURCE + 1)
                .read_to_end(&mut out)
                .map_err(|e| FetchError::Gzip {
                    url: short(&r.url),
                    msg: e.to_string(),
                })?;
            if out.len() as u64 > MAX_RESOURCE {
                return Err(FetchError::TooLarge { url: short(&r.url) });
            }
            return Ok(out);
        }
        Ok(raw)
    }

    /// GET a URL with extra headers; non-2xx is an error.
    pub fn http_get(&self, url: &str, headers: &[(String, String)]) -> Result<Vec<u8>, FetchError> {
        self.request("GET", url, headers)
    }

    /// A request with no body (GET or PUT); any non-2xx status is an error.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Vec<u8>, FetchError> {
        let (status, body) = self.request_status(method, url, headers)?;
        if !(200..300).contains(&status) {
            return Err(FetchError::Http {
                url: url.to_string(),
                msg: format!("HTTP status {status}"),
            });
        }
        Ok(body)
    }

    /// A request with no body, returning the status and body (metadata sources).
    pub fn request_status(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, Vec<u8>), FetchError> {
        let herr = |msg: String| FetchError::Http {
            url: url.to_string(),
            msg,
        };
        let agent = match &self.direct {
            Some(d) if bypass_proxy(url, &self.no_proxy) => d,
            _ => &self.agent,
        };
        let resp = if method == "PUT" {
            let mut req = agent.put(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send_empty()
        } else {
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.call()
        }
        .map_err(|e| herr(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_RESOURCE + 1)
            .read_to_end(&mut body)
            .map_err(|e| herr(e.to_string()))?;
        if body.len() as u64 > MAX_RESOURCE {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
            });
        }
        Ok((status, body))
    }

    pub fn resolve(&self, s: &Source) -> Result<Vec<u8>, FetchError> {
        match s {
            Source::Inline(b) => Ok(b.clone()),
            Source::Remote(r) => self.fetch(r),
        }
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// Host of an http(s) URL, without userinfo and port.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if let Some(v6) = auth.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    auth.split(':').next().unwrap_or("")
}

/// `noProxy` entries: `*`, exact hosts, or domain suffixes (`.example.org` or `example.org`).
fn bypass_proxy(url: &str, no_proxy: &[String]) -> bool {
    let h = host(url).to_ascii_lowercase();
    no_proxy.iter().any(|n| {
        let n = n.trim().to_ascii_lowercase();
        let bare = n.trim_start_matches('.');
        n == "*" || h == bare || h.ends_with(&format!(".{bare}"))
    })
}

fn short(url: &str) -> String {
    if url.len() > 80 {
        format!(
            "{}...",
            &url[..url.char_indices().nth(77).map_or(url.len(), |(i, _)| i)]
        )
    } else {
        url.to_string()
    }
}

pub fn verify(url: &str, h: &Hash, data: &[u8]) -> Result<(), FetchError> {
    let (algo, expected, actual) = match h {
        Hash::Sha256(e) => ("sha256", hex::encode(e), hex::encode(Sha256::digest(data))),
        Hash::Sha512(e) => ("sha512", hex::encode(e), hex::encode(Sha512::digest(data))),
    };
    if expected != actual {
        return Err(FetchError::HashMismatch {
            url: short(url),
            algo,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Fetch every remote source of the plan (CAs first, then contents), so that
/// the returned plan holds only inline bytes. Nothing is written.
pub fn resolve_plan(mut plan: Plan, base: &Fetcher) -> Result<Plan, FetchError> {
    let mut cas = Vec::new();
    for ca in &plan.tls_cas {
        cas.push(base.resolve(ca)?);
    }
    let configured;
    let f = if cas.is_empty()
        && plan.proxy == Default::default()
        && plan.timeouts == Default::default()
    {
        base
    } else {
        configured = Fetcher::configure(&cas, &plan.timeouts, &plan.proxy)?;
        &configured
    };
    plan.tls_cas = cas.into_iter().map(Source::Inline).collect();
    for file in &mut plan.files {
        if let Some(c) = &mut file.contents {
            *c = Source::Inline(f.resolve(c)?);
        }
        for a in &mut file.append {
            *a = Source::Inline(f.resolve(a)?);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn res(url: String, gzip: bool, hash: Option<Hash>) -> Resource {
        Resource {
            url,
            gzip,
            hash,
            headers: vec![],
        }
    }

    #[test]
    fn no_proxy_matching() {
        let np = vec![
            "localhost".to_string(),
            ".internal".to_string(),
            "10.0.0.1".to_string(),
        ];
        for (u, want) in [
            ("http://localhost:8080/x", true),
            ("https://a.b.internal/x", true),
            ("http://user@10.0.0.1/x", true),
            ("http://example.org/x", false),
            ("http://notinternal/x", false),
        ] {
            assert_eq!(bypass_proxy(u, &np), want, "{u}");
        }
        assert!(bypass_proxy("http://x/", &["*".to_string()]));
    }

    #[test]
    fn data_gzip_and_hashes() {
        use base64::Engine;
        let f = Fetcher::new();
        let z = gz(b"hello");
        let url = format!(
            "data:;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&z)
        );
        let good = Hash::Sha256(Sha256::digest(&z).into());
        let bad = Hash::Sha512(vec![0; 64]);
        assert_eq!(
            f.fetch(&res(url.clone(), true, Some(good))).unwrap(),
            b"hello"
        );
        let e = f.fetch(&res(url.clone(), true, Some(bad))).unwrap_err();
        assert!(e.to_string().contains("sha512 mismatch"), "{e}");
        let e = f
            .fetch(&res("data:,notgzip".into(), true, None))
            .unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e}");
    }
}
