//! The `etcd-lock` reboot strategy: locksmith's semaphore in etcd v3, through
//! etcd's HTTP/JSON gateway (`POST /v3/kv/range`, `POST /v3/kv/txn`).
//!
//! The key `coreos.com/updateengine/rebootlock/semaphore` (or
//! `coreos.com/updateengine/rebootlock/groups/<GROUP>/semaphore`) holds
//! `{"semaphore": free slots, "max": N, "holders": [machine ids]}`. Taking a
//! slot decrements `semaphore` and adds the machine id; releasing does the
//! reverse. Every change is a compare-and-swap on the key's `mod_revision`
//! (or on its absence: a missing key is created with `max` 1), so concurrent
//! machines never both take the last slot.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the agent remembers that it holds the lock across the reboot.
pub const HELD_MARKER: &str = "/var/lib/basalt/update/reboot-lock-held";
/// Default etcd client URL.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";

/// The value stored under the semaphore key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Semaphore {
    pub semaphore: i64,
    pub max: i64,
    #[serde(default)]
    pub holders: Option<Vec<String>>,
}

/// The semaphore key for `group` (locksmith's layout).
pub fn key(group: Option<&str>) -> String {
    match group {
        Some(g) if !g.is_empty() => {
            format!("coreos.com/updateengine/rebootlock/groups/{g}/semaphore")
        }
        _ => "coreos.com/updateengine/rebootlock/semaphore".to_string(),
    }
}

/// What a lock or unlock attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Done,
    /// Every slot is taken (lock only): try again later.
    Busy(Vec<String>),
}

pub struct Client {
    endpoint: String,
    agent: ureq::Agent,
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// etcd's gateway writes int64 as JSON strings; absent means 0.
fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Null => Ok(0),
        Value::String(s) => s.parse().with_context(|| format!("etcd number {s:?}")),
        Value::Number(n) => n.as_i64().context("etcd number out of range"),
        _ => bail!("etcd: expected a number, got {v}"),
    }
}

impl Client {
    pub fn new(endpoint: &str) -> Client {
        Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_defaults(),
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.endpoint);
        let mut resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("POST {url}"))?;
        let text = resp
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the reply of {url}"))?;
        serde_json::from_str(&text).with_context(|| format!("{url} replied with invalid JSON"))
    }

    /// The current value and its mod_revision (0: key absent).
    fn get(&self, key: &str) -> Result<(Option<Semaphore>, i64)> {
        let r = self.post("/v3/kv/range", &json!({ "key": b64(key) }))?;
        let Some(kv) = r["kvs"].as_array().and_then(|a| a.first()) else {
            return Ok((None, 0));
        };
        let raw = B64
            .decode(kv["value"].as_str().unwrap_or(""))
            .context("etcd value is not base64")?;
        let sem: Semaphore = serde_json::from_slice(&raw)
            .with_context(|| format!("etcd key {key}: not a locksmith semaphore"))?;
        Ok((Some(sem), int(&kv["mod_revision"])?))
    }

    /// Compare-and-swap: put `sem` if the key's mod_revision is still `rev`
    /// (0: the key must not exist). False if someone else changed it.
    fn cas(&self, key: &str, rev: i64, sem: &Semaphore) -> Result<bool> {
        let compare = if rev == 0 {
            json!({"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
        } else {
            json!({"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()})
        };
        let value = serde_json::to_string(sem).context("encoding semaphore")?;
        let r = self.post(
            "/v3/kv/txn",
            &json!({"compare": [compare], "success": [{"request_put": {"key": b64(key), "value": b64(&value)}}]}),
        )?;
        Ok(r["succeeded"].as_bool().unwrap_or(false))
    }

    /// Takes one slot of the semaphore for `id` (idempotent).
    pub fn lock(&self, key: &str, id: &str) -> Result<Attempt> {
        for _ in 0..16 {
            let (cur, rev) = self.get(key)?;
            let mut sem = cur.unwrap_or(Semaphore {
                semaphore: 1,
                max: 1,
                holders: None,
            });
            let mut holders = sem.holders.take().unwrap_or_default();
            if holders.iter().any(|h| h == id) {
                return Ok(Attempt::Done);
            }
            if sem.semaphore <= 0 {
                return Ok(Attempt::Busy(holders));
            }
            sem.semaphore -= 1;
            holders.push(id.to_string());
            sem.holders = Some(holders);
            if self.cas(key, rev, &sem)? {
                return Ok(Attempt::Done);
            }
        }
        bail!("etcd key {key} changed 16 times in a row; giving up this round")
    }

    /// Gives back `id`'s slot (nothing to do when it holds none).
    pub fn unlock(&self, key: &str, id: &str) -> Result<Attempt> {
        for _ in 0..16 {
            let (cur, rev) = self.get(key)?;
            let Some(mut sem) = cur else {
                return Ok(Attempt::Done);
            };
            let mut holders = sem.holders.take().unwrap_or_default();
            let before = holders.len();
            holders.retain(|h| h != id);
            if holders.len() == before {
                return Ok(Attempt::Done);
            }
            sem.semaphore += 1;
            sem.holders = if holders.is_empty() {
                None
            } else {
                Some(holders)
            };
            if self.cas(key, rev, &sem)? {
                return Ok(Attempt::Done);
            }
        }
        bail!("etcd key {key} changed 16 times in a row; giving up this round")
    }
}

/// This machine's id for the holders list (/etc/machine-id).
pub fn machine_id() -> Result<String> {
    let s = std::fs::read_to_string("/etc/machine-id").context("reading /etc/machine-id")?;
    let s = s.trim();
    if s.is_empty() {
        bail!("/etc/machine-id is empty");
    }
    Ok(s.to_string())
}

/// Settings of the etcd-lock strategy.
#[derive(Debug, Clone)]
pub struct LockSettings {
    pub endpoint: String,
    pub group: Option<String>,
    pub id: String,
    /// Remembers the held lock across the reboot (on the persistent root).
    pub marker: std::path::PathBuf,
    pub poll: std::time::Duration,
    /// Give up after this long (`None`: wait as long as it takes).
    pub max_wait: Option<std::time::Duration>,
}

/// Takes a reboot slot, waiting while all are taken, and records it in the
/// marker file (the semaphore key) before returning.
pub fn acquire(s: &LockSettings) -> Result<()> {
    let c = Client::new(&s.endpoint);
    let k = key(s.group.as_deref());
    let start = std::time::Instant::now();
    loop {
        match c.lock(&k, &s.id)? {
            Attempt::Done => break,
            Attempt::Busy(holders) => {
                if s.max_wait.is_some_and(|m| start.elapsed() >= m) {
                    bail!("reboot lock {k} still held by {holders:?}; giving up");
                }
                eprintln!("basalt-update: reboot lock {k} held by {holders:?}; waiting");
                std::thread::sleep(s.poll);
            }
        }
    }
    super::esp::write_atomic(&s.marker, format!("{k}\n").as_bytes())
        .context("recording the held reboot lock")
}

/// After mark-good: gives the slot back if this machine took one before
/// rebooting. Returns whether a lock was released.
pub fn release_if_held(s: &LockSettings) -> Result<bool> {
    let k = match std::fs::read_to_string(&s.marker) {
        Ok(t) => t.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {}", s.marker.display())),
    };
    if k.is_empty() {
        bail!("{} is empty", s.marker.display());
    }
    Client::new(&s.endpoint).unlock(&k, &s.id)?;
    std::fs::remove_file(&s.marker).with_context(|| format!("removing {}", s.marker.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// Last revision; key -> (base64 value, mod_revision).
    type Store = (i64, BTreeMap<String, (String, i64)>);

    /// A minimal etcd v3 JSON gateway: range and txn (one compare, one put)
    /// over an in-memory store with revisions.
    fn fake_etcd() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let store: Arc<Mutex<Store>> = Arc::default();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).unwrap();
                let req: Value = serde_json::from_slice(&body).unwrap();
                let mut st = store.lock().unwrap();
                let reply = if path == "/v3/kv/range" {
                    match st.1.get(req["key"].as_str().unwrap()) {
                        Some((v, rev)) => {
                            json!({"kvs": [{"key": req["key"], "value": v, "mod_revision": rev.to_string()}], "count": "1"})
                        }
                        None => json!({"header": {}}),
                    }
                } else {
                    let c = &req["compare"][0];
                    let k = c["key"].as_str().unwrap().to_string();
                    let ok = match c["target"].as_str().unwrap() {
                        "CREATE" => !st.1.contains_key(&k),
                        _ => {
                            st.1.get(&k).map(|e| e.1.to_string())
                                == c["mod_revision"].as_str().map(String::from)
                        }
                    };
                    if ok {
                        st.0 += 1;
                        let rev = st.0;
                        let put = &req["success"][0]["request_put"];
                        st.1.insert(k, (put["value"].as_str().unwrap().to_string(), rev));
                        json!({"succeeded": true})
                    } else {
                        json!({"header": {}})
                    }
                };
                let b = reply.to_string();
                write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len()).unwrap();
            }
        });
        url
    }

    #[test]
    fn semaphore_semantics() {
        exercise(&fake_etcd());
    }

    /// Oracle: the same sequence against a real etcd (apt etcd-server).
    #[test]
    fn real_etcd() {
        if std::process::Command::new("etcd")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED real_etcd: etcd is not installed (apt install etcd-server)");
            return;
        }
        let port = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (cp, pp) = (port(), port());
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{cp}");
        let peer = format!("http://127.0.0.1:{pp}");
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _etcd = Kill(
            std::process::Command::new("etcd")
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .args(["--initial-cluster", &format!("default={peer}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let c = Client::new(&url);
        let t0 = std::time::Instant::now();
        while c.get("probe").is_err() {
            assert!(t0.elapsed().as_secs() < 20, "etcd did not come up");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        exercise(&url);
    }

    fn exercise(url: &str) {
        let c = Client::new(url);
        let k = key(None);
        assert_eq!(c.lock(&k, "m1").unwrap(), Attempt::Done);
        assert_eq!(c.lock(&k, "m1").unwrap(), Attempt::Done, "idempotent");
        assert_eq!(c.lock(&k, "m2").unwrap(), Attempt::Busy(vec!["m1".into()]));
        assert_eq!(
            c.unlock(&k, "m2").unwrap(),
            Attempt::Done,
            "not a holder: no-op"
        );
        assert_eq!(c.lock(&k, "m2").unwrap(), Attempt::Busy(vec!["m1".into()]));
        assert_eq!(c.unlock(&k, "m1").unwrap(), Attempt::Done);
        assert_eq!(c.lock(&k, "m2").unwrap(), Attempt::Done);
        let (sem, rev) = c.get(&k).unwrap();
        assert_eq!(
            sem.unwrap(),
            Semaphore {
                semaphore: 0,
                max: 1,
                holders: Some(vec!["m2".into()])
            }
        );
        assert!(rev > 0);
        // A stale revision loses the compare-and-swap.
        let s = Semaphore {
            semaphore: 1,
            max: 1,
            holders: None,
        };
        assert!(!c.cas(&k, rev - 1, &s).unwrap());
        assert!(!c.cas(&k, 0, &s).unwrap(), "create over an existing key");
        // Groups have their own key; max 2 lets two machines in.
        let g = key(Some("west"));
        assert!(g.ends_with("/groups/west/semaphore"));
        assert!(
            c.cas(
                &g,
                0,
                &Semaphore {
                    semaphore: 2,
                    max: 2,
                    holders: None
                }
            )
            .unwrap()
        );
        assert_eq!(c.lock(&g, "a").unwrap(), Attempt::Done);
        assert_eq!(c.lock(&g, "b").unwrap(), Attempt::Done);
        assert!(matches!(c.lock(&g, "c").unwrap(), Attempt::Busy(h) if h == ["a", "b"]));
    }

    #[test]
    fn acquire_and_release_across_machines() {
        let url = fake_etcd();
        let dir = tempfile::tempdir().unwrap();
        let settings = |id: &str| LockSettings {
            endpoint: url.clone(),
            group: None,
            id: id.into(),
            marker: dir.path().join(format!("{id}/held")),
            poll: std::time::Duration::from_millis(10),
            max_wait: Some(std::time::Duration::from_millis(50)),
        };
        let (m1, m2) = (settings("m1"), settings("m2"));
        assert!(!release_if_held(&m1).unwrap(), "nothing held yet");
        acquire(&m1).unwrap();
        assert!(m1.marker.exists());
        let e = acquire(&m2).unwrap_err().to_string();
        assert!(e.contains("still held by [\"m1\"]"), "{e}");
        assert!(!m2.marker.exists());
        assert!(release_if_held(&m1).unwrap());
        assert!(!m1.marker.exists());
        acquire(&m2).unwrap();
        assert!(release_if_held(&m2).unwrap());
    }
}
