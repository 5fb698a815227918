//! `basalt serve-updates DIR`: serves the update payloads (`*.update`) of a
//! directory over HTTP with a signed index (`index.json` +
//! `index.json.sig`, format: crates/payload/src/index.rs) that machines poll
//! (`basalt-update poll URL`).
//!
//! Every payload is verified with the signing key's public half (signature
//! and every section hash) before it is listed: the server never advertises
//! what machines would refuse. The directory is rescanned on each index
//! request; a payload whose size, mtime and inode are unchanged is not
//! hashed again. Only `index.json`, `index.json.sig` and the files the index
//! lists are served (GET and HEAD, HTTP/1.1, one thread per connection,
//! `Connection: close`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use basalt_payload::index::{INDEX_FILE, INDEX_SIG_FILE, Index, IndexEntry, sign_index};
use basalt_payload::{Payload, SigningKey};
use clap::Args;
use sha2::{Digest, Sha256};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding `<name>-<version>.update` payloads.
    pub dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Ed25519 key that signed the payloads and signs the index (default:
    /// $XDG_CONFIG_HOME/basalt/update.key, as `basalt build` uses).
    #[arg(long = "signing-key")]
    pub signing_key: Option<PathBuf>,
}

/// Longest request head accepted (request line + headers).
const MAX_HEAD: u64 = 16 * 1024;
/// Idle limit on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What identifies an unchanged payload file between scans.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    len: u64,
    mtime_ns: i128,
    ino: u64,
}

/// The payload directory, its key and the entries already verified.
pub struct Served {
    dir: PathBuf,
    key: SigningKey,
    cache: Mutex<BTreeMap<String, (FileId, IndexEntry)>>,
}

fn file_id(m: &std::fs::Metadata) -> FileId {
    FileId {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ino: m.ino(),
    }
}

/// Verifies one payload and describes it for the index.
fn describe(path: &Path, file_name: &str, key: &SigningKey) -> Result<IndexEntry> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let p = Payload::open(f, &key.verifying_key())
        .with_context(|| format!("verifying {} with the signing key", path.display()))?;
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    let m = p.metadata();
    Ok(IndexEntry {
        name: m.name.clone(),
        version: m.version.clone(),
        file: file_name.to_string(),
        size,
        sha256: hex::encode(h.finalize()),
        root_hash: m.verity.root_hash.clone(),
    })
}

impl Served {
    pub fn new(dir: PathBuf, key: SigningKey) -> Served {
        Served {
            dir,
            key,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// Scans the directory and returns `(index.json, index.json.sig)`.
    pub fn index(&self) -> Result<(Vec<u8>, String)> {
        let mut names = Vec::new();
        let rd = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("reading {}", self.dir.display()))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".update") && !name.starts_with('.') {
                names.push(name.to_string());
            }
        }
        names.sort();
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("index cache poisoned"))?;
        cache.retain(|k, _| names.binary_search(k).is_ok());
        let mut entries = Vec::with_capacity(names.len());
        for name in &names {
            let path = self.dir.join(name);
            let meta =
                std::fs::metadata(&path).with_context(|| format!("stat {}", path.display()))?;
            let id = file_id(&meta);
            match cache.get(name) {
                Some((cached, e)) if *cached == id => entries.push(e.clone()),
                _ => {
                    let e = describe(&path, name, &self.key)?;
                    eprintln!(
                        "basalt serve-updates: listing {name}: {} {}",
                        e.name, e.version
                    );
                    cache.insert(name.clone(), (id, e.clone()));
                    entries.push(e);
                }
            }
        }
        let idx = Index::new(entries).context("building the index")?;
        let json = idx.to_json();
        let sig = sign_index(&json, &self.key);
        Ok((json, sig))
    }

    /// A file the index lists (by its cached entry), else `None`.
    fn listed(&self, name: &str) -> Option<PathBuf> {
        let cache = self.cache.lock().ok()?;
        cache.contains_key(name).then(|| self.dir.join(name))
    }
}

/// The signing key: `--signing-key`, else the per-user default key.
fn load_key(explicit: Option<&Path>) -> Result<SigningKey> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
                Some(d) => PathBuf::from(d),
                None => PathBuf::from(
                    std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?,
                )
                .join(".config"),
            };
            base.join("basalt").join("update.key")
        }
    };
    basalt_payload::keys::load_signing_key(&path)
        .with_context(|| format!("loading signing key {}", path.display()))
}

fn respond(s: &mut TcpStream, code: &str, ctype: &str, body: &[u8], head_only: bool) -> Result<()> {
    write!(
        s,
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head_only {
        s.write_all(body)?;
    }
    Ok(())
}

fn send_file(s: &mut TcpStream, path: &Path, head_only: bool) -> Result<()> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )?;
    if !head_only {
        let sent = std::io::copy(&mut (&mut f).take(len), s)?;
        if sent != len {
            bail!("{} shrank while it was sent", path.display());
        }
    }
    Ok(())
}

/// Reads the request line (headers are read and ignored up to MAX_HEAD).
fn request_line(s: &TcpStream) -> Result<(String, String)> {
    let mut r = BufReader::new(s.take(MAX_HEAD));
    let mut line = String::new();
    r.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            bail!("request head incomplete or over {MAX_HEAD} bytes");
        }
        if h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        bail!("malformed request line {line:?}");
    };
    Ok((method.to_string(), target.to_string()))
}

fn handle(served: &Served, mut s: TcpStream) -> Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let (method, target) = match request_line(&s) {
        Ok(r) => r,
        Err(e) => {
            respond(
                &mut s,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
                false,
            )?;
            return Err(e);
        }
    };
    let head_only = match method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return respond(
                &mut s,
                "405 Method Not Allowed",
                "text/plain",
                b"GET or HEAD\n",
                false,
            );
        }
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    let name = path.strip_prefix('/').unwrap_or(path);
    eprintln!("basalt serve-updates: {method} {path}");
    if name == INDEX_FILE || name == INDEX_SIG_FILE {
        return match served.index() {
            Ok((json, _)) if name == INDEX_FILE => {
                respond(&mut s, "200 OK", "application/json", &json, head_only)
            }
            Ok((_, sig)) => respond(&mut s, "200 OK", "text/plain", sig.as_bytes(), head_only),
            Err(e) => {
                let msg = format!("{e:#}\n");
                respond(
                    &mut s,
                    "500 Internal Server Error",
                    "text/plain",
                    msg.as_bytes(),
                    false,
                )?;
                Err(e)
            }
        };
    }
    match served.listed(name) {
        Some(p) => send_file(&mut s, &p, head_only),
        None => respond(
            &mut s,
            "404 Not Found",
            "text/plain",
            b"not listed\n",
            false,
        ),
    }
}

/// Accepts connections forever.
pub fn serve(listener: TcpListener, served: Arc<Served>) -> Result<()> {
    for conn in listener.incoming() {
        let s = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("basalt serve-updates: accepting a connection: {e}");
                continue;
            }
        };
        let served = Arc::clone(&served);
        std::thread::spawn(move || {
            let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            if let Err(e) = handle(&served, s) {
                eprintln!("basalt serve-updates: {peer}: {e:#}");
            }
        });
    }
    Ok(())
}

pub fn run(a: &ServeArgs) -> Result<()> {
    let key = load_key(a.signing_key.as_deref())?;
    let served = Arc::new(Served::new(a.dir.clone(), key));
    // Verify everything once up front: a bad payload stops the server here.
    let (json, _) = served.index()?;
    let idx: Index = serde_json::from_slice(&json).context("re-reading the index")?;
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr().context("local address")?;
    println!(
        "basalt serve-updates: {} payload(s) from {} at http://{addr}/ ({INDEX_FILE})",
        idx.payloads.len(),
        a.dir.display()
    );
    std::io::stdout().flush().ok();
    serve(listener, served)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_payload::index::verify_index;
    use basalt_payload::{PayloadInfo, Source, VerityInfo, write_payload};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn payload(dir: &Path, version: &str, k: &SigningKey) -> Vec<u8> {
        let info = PayloadInfo {
            name: "basalt".into(),
            version: version.into(),
            verity: VerityInfo {
                root_hash: "cd".repeat(32),
                hash_offset: 4096,
                data_blocks: 1,
                salt: String::new(),
            },
            cmdline: "console=ttyS0".into(),
        };
        let slot: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        write_payload(
            &mut out,
            &info,
            Source::Bytes(&slot),
            Source::Bytes(version.as_bytes()),
            Source::Bytes(b"initrd"),
            k,
        )
        .unwrap();
        std::fs::write(dir.join(format!("basalt-{version}.update")), &out).unwrap();
        out
    }

    /// A raw HTTP/1.1 request; returns (status code, body).
    fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(resp[..end].to_vec()).unwrap();
        let code = head[9..12].parse().unwrap();
        (code, resp[end + 4..].to_vec())
    }

    fn start(dir: &Path, k: &SigningKey) -> std::net::SocketAddr {
        let served = Arc::new(Served::new(dir.to_path_buf(), k.clone()));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || serve(l, served));
        addr
    }

    #[test]
    fn serves_a_signed_reproducible_index_and_the_payloads() {
        let tmp = tempfile::tempdir().unwrap();
        let k = key(7);
        let p1 = payload(tmp.path(), "0.1.0", &k);
        let p2 = payload(tmp.path(), "0.10.0", &k);
        payload(tmp.path(), "0.2.0", &k);
        std::fs::write(tmp.path().join("notes.txt"), "not a payload").unwrap();
        let addr = start(tmp.path(), &k);

        let (c, json) = get(addr, "GET", "/index.json");
        assert_eq!(c, 200);
        let (c, sig) = get(addr, "GET", "/index.json.sig");
        assert_eq!(c, 200);
        let idx = verify_index(&json, &sig, &k.verifying_key()).unwrap();
        let got: Vec<(&str, &str, u64)> = idx
            .payloads
            .iter()
            .map(|e| (e.version.as_str(), e.file.as_str(), e.size))
            .collect();
        assert_eq!(
            got,
            [
                ("0.1.0", "basalt-0.1.0.update", p1.len() as u64),
                ("0.2.0", "basalt-0.2.0.update", idx.payloads[1].size),
                ("0.10.0", "basalt-0.10.0.update", p2.len() as u64),
            ]
        );
        assert_eq!(idx.payloads[0].sha256, hex::encode(Sha256::digest(&p1)));
        assert_eq!(
            idx.newest_above("basalt", "0.1.0").unwrap().version,
            "0.10.0"
        );

        // Reproducible: a second server over the same files, same bytes.
        let (json2, sig2) = Served::new(tmp.path().to_path_buf(), k.clone())
            .index()
            .unwrap();
        assert_eq!(json2, json);
        assert_eq!(sig2.as_bytes(), &sig[..]);

        assert_eq!(get(addr, "GET", "/basalt-0.10.0.update"), (200, p2));
        let (c, body) = get(addr, "HEAD", "/basalt-0.1.0.update");
        assert_eq!((c, body.len()), (200, 0));
        for path in ["/notes.txt", "/../etc/passwd", "/", "/basalt-9.update"] {
            assert_eq!(get(addr, "GET", path).0, 404, "{path}");
        }
        assert_eq!(get(addr, "POST", "/index.json").0, 405);

        // A payload added later is listed at the next index request.
        payload(tmp.path(), "0.11.0", &k);
        let (_, json) = get(addr, "GET", "/index.json");
        let (_, sig) = get(addr, "GET", "/index.json.sig");
        let idx = verify_index(&json, &sig, &k.verifying_key()).unwrap();
        assert_eq!(idx.payloads.len(), 4);
    }

    #[test]
    fn refuses_payloads_the_key_did_not_sign_or_that_are_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        payload(tmp.path(), "1", &key(1));
        let e = format!(
            "{:#}",
            Served::new(tmp.path().into(), key(2)).index().unwrap_err()
        );
        assert!(e.contains("signature does not verify"), "{e}");

        let tmp = tempfile::tempdir().unwrap();
        let mut p = payload(tmp.path(), "1", &key(1));
        let last = p.len() - 1;
        p[last] ^= 1;
        std::fs::write(tmp.path().join("basalt-1.update"), &p).unwrap();
        let e = format!(
            "{:#}",
            Served::new(tmp.path().into(), key(1)).index().unwrap_err()
        );
        assert!(e.contains("initrd section is corrupt"), "{e}");

        // Served live: the index request fails with 500, nothing is listed.
        let addr = start(tmp.path(), &key(1));
        assert_eq!(get(addr, "GET", "/index.json").0, 500);
        assert_eq!(get(addr, "GET", "/basalt-1.update").0, 404);
    }
}
