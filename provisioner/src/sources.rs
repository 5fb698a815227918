//! Where first-boot config comes from. Each source takes its inputs as
//! arguments (a sysfs root, a mount point, a base URL), so each can be tested
//! in isolation; mounting labelled filesystems is the boot code's job.
//!
//! | Source       | Input                                                                 |
//! |--------------|-----------------------------------------------------------------------|
//! | fw_cfg       | `<sysfs>/firmware/qemu_fw_cfg/by_name/opt/org.basalt/config/raw` (also Ignition's `opt/com.coreos/config`) |
//! | cmdline      | `basalt.config.url=` (http, https or data:)                            |
//! | config drive | filesystem labelled `config-2`: `openstack/latest/user_data`          |
//! | NoCloud      | filesystem labelled `cidata`: `user-data` (and `meta-data`)           |
//! | EC2 IMDS     | `PUT <base>/latest/api/token`, then `GET <base>/latest/user-data` (v1 fallback) |
//! | OEM          | OEM partition: `config.ign`, else `user-data`                          |

use crate::fetch::{FetchError, Fetcher};
use crate::plan::Resource;
use std::path::{Path, PathBuf};

/// fw_cfg keys, Basalt's first.
pub const FW_CFG_KEYS: &[&str] = &["opt/org.basalt/config", "opt/com.coreos/config"];
pub const CMDLINE_KEY: &str = "basalt.config.url";
pub const PLATFORM_KEY: &str = "basalt.platform";
pub const IMDS_BASE: &str = "http://169.254.169.254";
pub const OEM_FILES: &[&str] = &["config.ign", "user-data"];

/// Config bytes and a description of where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub source: String,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{CMDLINE_KEY}={0}: only http, https and data: URLs are accepted")]
    BadUrl(String),
}

fn read_opt(p: &Path) -> Result<Option<Vec<u8>>, SourceError> {
    match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SourceError::Io {
            path: p.display().to_string(),
            source,
        }),
    }
}

/// QEMU fw_cfg, via sysfs (`sysfs` is normally `/sys`).
pub fn fw_cfg(sysfs: &Path) -> Result<Option<Found>, SourceError> {
    for key in FW_CFG_KEYS {
        let p = sysfs
            .join("firmware/qemu_fw_cfg/by_name")
            .join(key)
            .join("raw");
        if let Some(data) = read_opt(&p)? {
            return Ok(Some(Found {
                source: format!("fw_cfg:{key}"),
                data,
            }));
        }
    }
    Ok(None)
}

/// The value of `key=` on a kernel command line (last one wins, like the kernel).
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .last()
}

/// `basalt.config.url=` from the kernel command line.
pub fn cmdline(cmdline: &str, f: &Fetcher) -> Result<Option<Found>, SourceError> {
    let Some(url) = cmdline_value(cmdline, CMDLINE_KEY) else {
        return Ok(None);
    };
    let ok = url.starts_with("http://") || url.starts_with("https://") || url.starts_with("data:");
    if !ok {
        return Err(SourceError::BadUrl(url.to_string()));
    }
    let data = f.fetch(&Resource {
        url: url.to_string(),
        gzip: false,
        hash: None,
        headers: vec![],
    })?;
    Ok(Some(Found {
        source: format!(
            "cmdline:{}",
            if url.starts_with("data:") {
                "data:"
            } else {
                url
            }
        ),
        data,
    }))
}

/// OpenStack config drive mounted at `mnt`.
pub fn config_drive(mnt: &Path) -> Result<Option<Found>, SourceError> {
    Ok(
        read_opt(&mnt.join("openstack/latest/user_data"))?.map(|data| Found {
            source: "config-drive".into(),
            data,
        }),
    )
}

/// NoCloud seed mounted at `mnt`. Returns user-data and meta-data (if any).
pub fn nocloud(mnt: &Path) -> Result<Option<(Found, Option<Vec<u8>>)>, SourceError> {
    let Some(data) = read_opt(&mnt.join("user-data"))? else {
        return Ok(None);
    };
    let meta = read_opt(&mnt.join("meta-data"))?;
    Ok(Some((
        Found {
            source: "nocloud".into(),
            data,
        },
        meta,
    )))
}

/// EC2-style metadata service: IMDSv2 token first, then IMDSv1.
/// A 404 for user-data means "no user data" (None).
pub fn imds(base: &str, f: &Fetcher) -> Result<Option<Found>, SourceError> {
    let token = f
        .request_status(
            "PUT",
            &format!("{base}/latest/api/token"),
            &[("X-aws-ec2-metadata-token-ttl-seconds".into(), "300".into())],
        )
        .ok()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| String::from_utf8_lossy(&b).trim().to_string());
    let headers: Vec<(String, String)> = match &token {
        Some(t) => vec![("X-aws-ec2-metadata-token".into(), t.clone())],
        None => vec![],
    };
    let url = format!("{base}/latest/user-data");
    let (status, body) = f.request_status("GET", &url, &headers)?;
    match status {
        200 => Ok(Some(Found {
            source: format!("imds-{}", if token.is_some() { "v2" } else { "v1" }),
            data: body,
        })),
        404 => Ok(None),
        s => Err(SourceError::Fetch(FetchError::Http {
            url,
            msg: format!("HTTP status {s}"),
        })),
    }
}

/// A config file on the OEM partition mounted at `mnt`.
pub fn oem(mnt: &Path) -> Result<Option<Found>, SourceError> {
    for n in OEM_FILES {
        if let Some(data) = read_opt(&mnt.join(n))? {
            return Ok(Some(Found {
                source: format!("oem:{n}"),
                data,
            }));
        }
    }
    Ok(None)
}

/// Inputs for source discovery; the boot code fills in mount points.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub sysfs: PathBuf,
    pub cmdline: String,
    pub config_drive: Option<PathBuf>,
    pub nocloud: Option<PathBuf>,
    pub imds_base: Option<String>,
    pub oem: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FwCfg,
    Cmdline,
    ConfigDrive,
    NoCloud,
    Imds,
    Oem,
}

/// Lookup order for a platform (`basalt.platform=` on the command line).
pub fn order(platform: Option<&str>) -> &'static [Kind] {
    use Kind::*;
    match platform {
        Some("qemu") => &[FwCfg, Cmdline, Oem],
        Some("openstack") => &[ConfigDrive, Cmdline, Oem],
        Some("nocloud") => &[NoCloud, Cmdline, Oem],
        Some("ec2" | "aws") => &[Imds, Cmdline, Oem],
        Some("metal") => &[Cmdline, Oem],
        _ => &[Cmdline, FwCfg, ConfigDrive, NoCloud, Oem],
    }
}

/// The first source that has a config, in the platform's order.
pub fn discover(env: &Env, f: &Fetcher) -> Result<Option<Found>, SourceError> {
    for k in order(cmdline_value(&env.cmdline, PLATFORM_KEY)) {
        let found = match k {
            Kind::FwCfg => fw_cfg(&env.sysfs)?,
            Kind::Cmdline => cmdline(&env.cmdline, f)?,
            Kind::ConfigDrive => match &env.config_drive {
                Some(m) => config_drive(m)?,
                None => None,
            },
            Kind::NoCloud => match &env.nocloud {
                Some(m) => nocloud(m)?.map(|(u, _)| u),
                None => None,
            },
            Kind::Imds => imds(env.imds_base.as_deref().unwrap_or(IMDS_BASE), f)?,
            Kind::Oem => match &env.oem {
                Some(m) => oem(m)?,
                None => None,
            },
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
