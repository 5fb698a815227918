//! `basalt-update poll [URL]`: asks an update server (`basalt serve-updates`)
//! for its signed index, picks the newest payload for this image above the
//! booted version, downloads it (size and SHA-256 checked against the
//! index), and hands it to apply. The server comes from the argument or
//! `SERVER=` in /etc/basalt/update.conf (cloud-config
//! `coreos.update.server`, or the file written by Ignition).
//!
//! Nothing is applied when the booted slot is not confirmed good yet, when
//! that version is already staged in the other slot, or when it is the
//! version whose trial boot failed last (so a bad release does not loop
//! apply → failed boot → fallback → apply); each case is reported.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use basalt_payload::VerifyingKey;
use basalt_payload::index::{INDEX_FILE, INDEX_SIG_FILE, Index, IndexEntry, verify_index};
use sha2::{Digest, Sha256};

use super::agent::{Apply, ApplyOptions, Machine};
use super::status::Status;

/// The image's release file (on the verity-protected /usr).
pub const OS_RELEASE: &str = "/usr/lib/os-release";
/// Largest index accepted (bytes).
const MAX_INDEX: u64 = 1 << 20;

/// The running image's name and version, from os-release `IMAGE_ID` and
/// `IMAGE_VERSION` (falling back to `VERSION_ID`), as `basalt build` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub version: String,
}

/// Parses os-release (`KEY=value`, optionally quoted).
pub fn parse_os_release(text: &str) -> Result<Release> {
    let get = |key: &str| -> Option<String> {
        text.lines().find_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            (k == key).then(|| v.trim_matches(|c| c == '"' || c == '\'').to_string())
        })
    };
    let name = get("IMAGE_ID").context("os-release has no IMAGE_ID")?;
    let version = get("IMAGE_VERSION")
        .or_else(|| get("VERSION_ID"))
        .context("os-release has neither IMAGE_VERSION nor VERSION_ID")?;
    Ok(Release { name, version })
}

pub fn read_os_release(path: &Path) -> Result<Release> {
    let t = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_os_release(&t).with_context(|| format!("reading {}", path.display()))
}

/// What poll decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing newer than the booted version.
    UpToDate,
    /// The booted slot is still a trial; updates wait until it is good.
    BootedNotGood,
    /// This version is already installed in the other slot, waiting for a reboot.
    AlreadyStaged(IndexEntry),
    /// This version's trial boot failed; it is not applied again.
    PreviouslyFailed(IndexEntry),
    /// Download and apply this payload.
    Apply(IndexEntry),
}

/// Chooses what to do with `idx` on a machine running `rel` in state `st`.
pub fn decide(idx: &Index, rel: &Release, st: &Status) -> Decision {
    let Some(e) = idx.newest_above(&rel.name, &rel.version) else {
        return Decision::UpToDate;
    };
    let booted = st.slots.iter().find(|s| s.booted);
    if !booted.is_some_and(|s| s.good) {
        return Decision::BootedNotGood;
    }
    let staged = st
        .slots
        .iter()
        .any(|s| !s.booted && s.tries_left > 0 && s.version.as_deref() == Some(e.version.as_str()));
    if staged {
        return Decision::AlreadyStaged(e.clone());
    }
    let failed = st
        .last_failure
        .as_ref()
        .is_some_and(|f| f.version.as_deref() == Some(e.version.as_str()));
    if failed {
        return Decision::PreviouslyFailed(e.clone());
    }
    Decision::Apply(e.clone())
}

/// `base` + `/` + `name` (one slash between).
pub fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

fn check_url(url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("update server {url:?}: only http:// and https:// URLs are supported");
    }
    Ok(())
}

fn get_small(url: &str, limit: u64) -> Result<Vec<u8>> {
    let resp = ureq::get(url)
        .call()
        .with_context(|| format!("fetching {url}"))?;
    let mut body = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("fetching {url}"))?;
    if body.len() as u64 > limit {
        bail!("{url} is over {limit} bytes");
    }
    Ok(body)
}

/// Fetches and verifies the server's index (signature before parsing).
pub fn fetch_index(server: &str, key: &VerifyingKey) -> Result<Index> {
    check_url(server)?;
    let json = get_small(&join_url(server, INDEX_FILE), MAX_INDEX)?;
    let sig = get_small(&join_url(server, INDEX_SIG_FILE), 1024)?;
    verify_index(&json, &sig, key).with_context(|| format!("verifying the index of {server}"))
}

/// Downloads `e` from `server` into `dir` (temp file + rename), checking
/// its size and SHA-256 against the signed index on the way.
pub fn download(server: &str, e: &IndexEntry, dir: &Path) -> Result<PathBuf> {
    let url = join_url(server, &e.file);
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join("download.update");
    let tmp = dir.join("download.update.partial");
    // Leftovers of an interrupted run (power cut) would double the space
    // a download needs.
    for stale in [&dest, &tmp] {
        match fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", stale.display())),
        }
    }
    let res = (|| -> Result<()> {
        let resp = ureq::get(&url)
            .call()
            .with_context(|| format!("downloading {url}"))?;
        let mut body = resp.into_body().into_reader().take(e.size + 1);
        let f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = body
                .read(&mut buf)
                .with_context(|| format!("downloading {url}"))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            if got > e.size {
                bail!("{url} is longer than the {} bytes the index says", e.size);
            }
            h.update(&buf[..n]);
            w.write_all(&buf[..n])
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        if got != e.size {
            bail!("{url}: got {got} bytes, the index says {}", e.size);
        }
        let sha = hex::encode(h.finalize());
        if sha != e.sha256 {
            bail!("{url}: SHA-256 {sha}, the signed index says {}", e.sha256);
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, &dest).with_context(|| format!("renaming into {}", dest.display()))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map(|_| dest)
}

/// Settings of one poll.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Base URL of the server (`index.json` is fetched below it).
    pub server: String,
    /// Where the payload is downloaded to (removed after the apply).
    pub download_dir: PathBuf,
    /// The running image (normally from [`OS_RELEASE`]).
    pub release: Release,
    pub apply: ApplyOptions,
}

/// The outcome of a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Nothing applied, and why.
    Nothing(Decision),
    /// The payload was applied and is tried at the next boot.
    Applied { entry: IndexEntry, apply: Apply },
}

/// Fetches the index, decides, and applies the chosen payload.
pub fn poll(m: &Machine, key: &VerifyingKey, o: &PollOptions) -> Result<Polled> {
    let idx = fetch_index(&o.server, key)?;
    let st = super::status(m).context("reading the slot state")?;
    let entry = match decide(&idx, &o.release, &st) {
        Decision::Apply(e) => e,
        d => return Ok(Polled::Nothing(d)),
    };
    let path = download(&o.server, &entry, &o.download_dir)?;
    let res = File::open(&path)
        .with_context(|| format!("opening {}", path.display()))
        .and_then(|f| super::apply(m, f, key, &o.apply))
        .with_context(|| format!("applying {} {}", entry.file, entry.version));
    if let Err(e) = fs::remove_file(&path) {
        eprintln!("basalt-update: removing {}: {e}", path.display());
    }
    let apply = res?;
    if apply.version != entry.version || apply.name != entry.name {
        bail!(
            "{} holds {} {}, the signed index said {} {}",
            entry.file,
            apply.name,
            apply.version,
            entry.name,
            entry.version
        );
    }
    Ok(Polled::Applied { entry, apply })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::esp::FailureRecord;
    use crate::update::status::SlotStatus;

    fn entry(v: &str) -> IndexEntry {
        IndexEntry {
            name: "basalt".into(),
            version: v.into(),
            file: format!("basalt-{v}.update"),
            size: 1,
            sha256: "ab".repeat(32),
            root_hash: "cd".repeat(32),
        }
    }

    fn slot(name: char, booted: bool, good: bool, tries: u8, version: Option<&str>) -> SlotStatus {
        SlotStatus {
            slot: name,
            partition: format!("USR-{name}"),
            name: version.map(|_| "basalt".into()),
            version: version.map(Into::into),
            booted,
            active: booted,
            good,
            tries_left: tries,
        }
    }

    fn status(a: SlotStatus, b: SlotStatus, failed: Option<&str>) -> Status {
        Status {
            booted: if a.booted { 'A' } else { 'B' },
            next: Some('A'),
            order: vec!['A', 'B'],
            slots: vec![a, b],
            last_failure: failed.map(|v| FailureRecord {
                slot: 'B',
                version: Some(v.into()),
                fell_back_to: 'A',
            }),
        }
    }

    #[test]
    fn os_release_table() {
        let ok: &[(&str, &str, &str)] = &[
            (
                "ID=basalt\nIMAGE_ID=\"basalt-qemu\"\nIMAGE_VERSION=\"0.2.0\"\nVERSION_ID=\"9\"\n",
                "basalt-qemu",
                "0.2.0",
            ),
            ("IMAGE_ID=b\nVERSION_ID='1.0'\n", "b", "1.0"),
        ];
        for &(t, n, v) in ok {
            let r = parse_os_release(t).unwrap();
            assert_eq!((r.name.as_str(), r.version.as_str()), (n, v), "{t:?}");
        }
        for (t, want) in [("ID=x\n", "IMAGE_ID"), ("IMAGE_ID=x\n", "VERSION_ID")] {
            let e = parse_os_release(t).unwrap_err().to_string();
            assert!(e.contains(want), "{t:?}: {e}");
        }
    }

    #[test]
    fn decide_table() {
        let idx = Index::new(vec![entry("0.1.0"), entry("0.2.0"), entry("0.1.5")]).unwrap();
        let rel = |v: &str| Release {
            name: "basalt".into(),
            version: v.into(),
        };
        let fresh = || {
            status(
                slot('A', true, true, 0, None),
                slot('B', false, false, 0, None),
                None,
            )
        };
        let cases: Vec<(&str, Release, Status, Decision)> = vec![
            (
                "newer available",
                rel("0.1.0"),
                fresh(),
                Decision::Apply(entry("0.2.0")),
            ),
            ("up to date", rel("0.2.0"), fresh(), Decision::UpToDate),
            ("ahead of server", rel("1.0"), fresh(), Decision::UpToDate),
            (
                "other image name",
                Release {
                    name: "other".into(),
                    version: "0".into(),
                },
                fresh(),
                Decision::UpToDate,
            ),
            (
                "booted slot on trial",
                rel("0.1.0"),
                status(
                    slot('A', true, false, 0, None),
                    slot('B', false, true, 0, None),
                    None,
                ),
                Decision::BootedNotGood,
            ),
            (
                "already staged",
                rel("0.1.0"),
                status(
                    slot('A', true, true, 0, None),
                    slot('B', false, false, 1, Some("0.2.0")),
                    None,
                ),
                Decision::AlreadyStaged(entry("0.2.0")),
            ),
            (
                "older version staged: apply over it",
                rel("0.1.0"),
                status(
                    slot('A', true, true, 0, None),
                    slot('B', false, false, 1, Some("0.1.5")),
                    None,
                ),
                Decision::Apply(entry("0.2.0")),
            ),
            (
                "failed before",
                rel("0.1.0"),
                status(
                    slot('A', true, true, 0, None),
                    slot('B', false, false, 0, Some("0.2.0")),
                    Some("0.2.0"),
                ),
                Decision::PreviouslyFailed(entry("0.2.0")),
            ),
            (
                "an older version failed: the newer one is applied",
                rel("0.1.0"),
                status(
                    slot('A', true, true, 0, None),
                    slot('B', false, false, 0, Some("0.1.5")),
                    Some("0.1.5"),
                ),
                Decision::Apply(entry("0.2.0")),
            ),
        ];
        for (what, rel, st, want) in cases {
            assert_eq!(decide(&idx, &rel, &st), want, "{what}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            join_url("http://h:1/", "index.json"),
            "http://h:1/index.json"
        );
        assert_eq!(
            join_url("http://h:1/u", "f.update"),
            "http://h:1/u/f.update"
        );
        assert!(check_url("ftp://h/").is_err());
        assert!(check_url("/srv/updates").is_err());
    }
}
