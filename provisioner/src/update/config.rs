//! `/etc/basalt/update.conf`: `KEY="value"` lines as basalt-provision writes
//! them from cloud-config's `coreos.update` (provisioner/README.md); `#`
//! comments; systemd EnvironmentFile and shell compatible.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// What to do after an update was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Never reboot automatically.
    Off,
    /// Reboot as soon as an apply succeeded.
    Reboot,
    /// Take a slot of the cluster's etcd semaphore first (locksmith).
    EtcdLock,
    /// The default: reboot without a lock (no etcd probing; see reboot.rs).
    BestEffort,
}

/// The settings the agent reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConf {
    pub strategy: Strategy,
    pub group: Option<String>,
    pub server: Option<String>,
    /// etcd client URL for etcd-lock (`ETCD_ENDPOINT=`, e.g. written by
    /// Ignition when the cluster's etcd is not on this machine).
    pub etcd_endpoint: Option<String>,
}

impl Default for UpdateConf {
    fn default() -> Self {
        UpdateConf {
            strategy: Strategy::BestEffort,
            group: None,
            server: None,
            etcd_endpoint: None,
        }
    }
}

fn unquote(v: &str, line: usize) -> Result<String> {
    let Some(inner) = v.strip_prefix('"') else {
        if v.contains(['"', '\'', '\\', ' ', '$', '`']) {
            bail!("line {line}: value {v:?} must be double-quoted");
        }
        return Ok(v.to_string());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        bail!("line {line}: unterminated quote");
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | '"')) => out.push(e),
                _ => bail!("line {line}: bad escape in {v}"),
            },
            '"' => bail!("line {line}: stray quote in {v}"),
            '$' | '`' => bail!("line {line}: shell expansion ({c}) is not supported"),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl UpdateConf {
    pub fn parse(text: &str) -> Result<UpdateConf> {
        let mut c = UpdateConf::default();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                bail!("line {n}: expected KEY=\"value\", got {line:?}");
            };
            let v = unquote(v, n)?;
            match k {
                "REBOOT_STRATEGY" => {
                    c.strategy = match v.as_str() {
                        "off" => Strategy::Off,
                        "reboot" => Strategy::Reboot,
                        "etcd-lock" => Strategy::EtcdLock,
                        "best-effort" => Strategy::BestEffort,
                        _ => bail!(
                            "line {n}: REBOOT_STRATEGY {v:?} is not one of off, reboot, etcd-lock, best-effort"
                        ),
                    }
                }
                "GROUP" => c.group = Some(v),
                "SERVER" => c.server = Some(v),
                "ETCD_ENDPOINT" => {
                    if !(v.starts_with("http://") || v.starts_with("https://")) {
                        bail!("line {n}: ETCD_ENDPOINT {v:?} is not an http(s) URL");
                    }
                    c.etcd_endpoint = Some(v)
                }
                _ => bail!(
                    "line {n}: unknown key {k:?} (known: REBOOT_STRATEGY, GROUP, SERVER, ETCD_ENDPOINT)"
                ),
            }
        }
        Ok(c)
    }

    /// Reads `path`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<UpdateConf> {
        match std::fs::read_to_string(path) {
            Ok(t) => UpdateConf::parse(&t).with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UpdateConf::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok: &[(&str, Strategy, Option<&str>)] = &[
            ("", Strategy::BestEffort, None),
            (
                "# Written by basalt-provision.\nREBOOT_STRATEGY=\"off\"\n",
                Strategy::Off,
                None,
            ),
            (
                "REBOOT_STRATEGY=reboot\nGROUP=\"a \\\"b\\\"\"\n",
                Strategy::Reboot,
                Some("a \"b\""),
            ),
            (
                "  REBOOT_STRATEGY=\"etcd-lock\"\n\n",
                Strategy::EtcdLock,
                None,
            ),
        ];
        for (text, strat, group) in ok {
            let c = UpdateConf::parse(text).unwrap();
            assert_eq!(&c.strategy, strat, "{text:?}");
            assert_eq!(c.group.as_deref(), *group, "{text:?}");
        }
        let c = UpdateConf::parse("ETCD_ENDPOINT=\"http://10.0.2.2:2379\"\n").unwrap();
        assert_eq!(c.etcd_endpoint.as_deref(), Some("http://10.0.2.2:2379"));
        let bad: &[(&str, &str)] = &[
            ("REBOOT_STRATEGY=\"sometimes\"", "not one of"),
            ("FOO=\"1\"", "unknown key"),
            ("REBOOT_STRATEGY", "expected KEY"),
            ("GROUP=\"x", "unterminated"),
            ("GROUP=\"$HOME\"", "expansion"),
            ("GROUP=a b", "double-quoted"),
            ("ETCD_ENDPOINT=\"10.0.2.2:2379\"", "not an http(s) URL"),
        ];
        for (text, want) in bad {
            let e = format!("{:#}", UpdateConf::parse(text).unwrap_err());
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn provisioner_output_round_trips() {
        let vars = vec![
            ("GROUP".to_string(), "stable".to_string()),
            ("REBOOT_STRATEGY".to_string(), "etcd-lock".to_string()),
            (
                "SERVER".to_string(),
                "https://updates.example.org/v1".to_string(),
            ),
        ];
        let c = UpdateConf::parse(&crate::intent::env_file(&vars)).unwrap();
        assert_eq!(c.strategy, Strategy::EtcdLock);
        assert_eq!(c.server.as_deref(), Some("https://updates.example.org/v1"));
    }
}
