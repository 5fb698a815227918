//! The kernel command line parameters Basalt's /init reads. See README.md
//! in this directory for the contract with the boot loader.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{InitError, Result};

/// Default wait for the boot disk.
pub const DEFAULT_DISK_TIMEOUT: Duration = Duration::from_secs(30);
/// Reboot delay after a fatal error when `panic=` is absent or 0 (0 would
/// mean "wait forever" to the kernel; /init never hangs).
pub const DEFAULT_PANIC_DELAY: Duration = Duration::from_secs(10);
/// What /init execs in the real root.
pub const DEFAULT_INIT: &str = "/usr/lib/systemd/systemd";
/// dm-verity block size Basalt images use (data and hash).
pub const VERITY_BLOCK: u64 = 4096;

/// Which /usr slot to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// GPT partition name of the slot.
    pub fn partition_name(self) -> &'static str {
        match self {
            Slot::A => "USR-A",
            Slot::B => "USR-B",
        }
    }

    pub fn letter(self) -> char {
        match self {
            Slot::A => 'a',
            Slot::B => 'b',
        }
    }
}

/// `basalt.first_boot=` override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBootMode {
    /// Decide from the stamp file on ROOT.
    Auto,
    /// Provision even if the stamp exists.
    Force,
    /// Never provision on this boot.
    Skip,
}

/// Everything /init takes from /proc/cmdline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParams {
    pub slot: Slot,
    /// dm-verity root hash of the slot (SHA-256).
    pub usr_hash: [u8; 32],
    /// Byte offset of the verity superblock inside the slot partition.
    pub usr_hash_offset: u64,
    /// Number of 4096-byte data blocks the hash tree covers.
    pub usr_data_blocks: u64,
    /// Salt, if given; otherwise read from the verity superblock.
    pub usr_salt: Option<Vec<u8>>,
    pub first_boot: FirstBootMode,
    pub disk_timeout: Duration,
    pub panic_delay: Duration,
    pub init: PathBuf,
    /// `basalt.platform=`: which config sources first boot searches
    /// (`crate::sources::order`).
    pub platform: Option<String>,
    /// `basalt.usr=initrd:<path>`: a diskless boot; /usr is the image at
    /// `<path>` inside the initramfs (laid out like a slot: ext4, then the
    /// verity superblock at `usr_hash_offset`). `None`: /usr from the disk.
    /// A diskless boot has no slots: `slot` is then always [`Slot::A`]
    /// and `basalt.slot=` is refused.
    pub usr_image: Option<PathBuf>,
    /// `root=` of a diskless boot (`diskless.rs`): `None` means ROOT is a
    /// tmpfs. Ignored on disk boots (ROOT is the GPT partition).
    pub root: Option<PathBuf>,
}

/// The `basalt.usr=` prefix naming an image carried in the initramfs.
pub const USR_INITRD_PREFIX: &str = "initrd:";

/// `basalt.usr=` value: the absolute path of the image in the initramfs.
pub fn parse_usr_source(v: &str) -> std::result::Result<PathBuf, String> {
    match v.strip_prefix(USR_INITRD_PREFIX) {
        Some(p) if p.starts_with('/') && !p.split('/').any(|c| c == "..") => Ok(PathBuf::from(p)),
        _ => Err(format!(
            "basalt.usr={v:?}: expected {USR_INITRD_PREFIX}/PATH (a /usr image carried in the initramfs, e.g. {USR_INITRD_PREFIX}/usr.img)"
        )),
    }
}

/// `root=` of a diskless boot: a device node path, or none for a tmpfs.
pub fn parse_diskless_root(v: &str) -> std::result::Result<Option<PathBuf>, String> {
    match v {
        "" | "tmpfs" => Ok(None),
        _ if v.starts_with("/dev/") && !v.split('/').any(|c| c == "..") => {
            Ok(Some(PathBuf::from(v)))
        }
        _ => Err(format!(
            "root={v:?}: a diskless boot takes root=/dev/NAME (an ext4 device for a persistent ROOT) or no root= (ROOT is a tmpfs)"
        )),
    }
}

/// Values `basalt.platform=` accepts (see `crate::sources::order`).
pub const PLATFORMS: &[&str] = &["qemu", "openstack", "nocloud", "ec2", "aws", "metal"];

/// Split a command line into words, honouring double quotes the way the
/// kernel does (`foo="a b"` is one word `foo=a b`).
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Decode lower- or upper-case hex.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

fn bad(msg: String) -> InitError {
    InitError::Cmdline(msg)
}

fn number(key: &str, v: &str) -> Result<u64> {
    v.parse::<u64>()
        .map_err(|_| bad(format!("{key}={v:?} is not a non-negative integer")))
}

/// The fatal-error reboot delay from `panic=` alone (usable before the
/// rest of the command line is known to be valid).
pub fn panic_delay(line: &str) -> Duration {
    let mut d = DEFAULT_PANIC_DELAY;
    for w in split_words(line) {
        if let Some(v) = w.strip_prefix("panic=") {
            d = match v.parse::<i64>() {
                Ok(n) if n < 0 => Duration::ZERO,
                Ok(0) | Err(_) => DEFAULT_PANIC_DELAY,
                Ok(n) => Duration::from_secs(n.unsigned_abs()),
            };
        }
    }
    d
}

impl BootParams {
    /// Parse the contents of /proc/cmdline. Unknown words belong to the
    /// kernel or systemd and are ignored; `basalt.*` words must be known.
    pub fn parse(line: &str) -> Result<BootParams> {
        let mut slot = None;
        let mut hash = None;
        let mut offset = None;
        let mut blocks = None;
        let mut salt = None;
        let mut first_boot = FirstBootMode::Auto;
        let mut disk_timeout = DEFAULT_DISK_TIMEOUT;
        let mut init = PathBuf::from(DEFAULT_INIT);
        let mut platform = None;
        let mut usr_image = None;
        let mut root = None;
        for w in split_words(line) {
            if let Some(v) = w.strip_prefix("root=") {
                root = Some(v.to_string());
            }
            let Some(rest) = w.strip_prefix("basalt.") else {
                continue;
            };
            let (key, v) = rest.split_once('=').unwrap_or((rest, ""));
            let full = format!("basalt.{key}");
            match key {
                "slot" => {
                    slot = Some(match v {
                        "a" | "A" => Slot::A,
                        "b" | "B" => Slot::B,
                        _ => return Err(bad(format!("{full}={v:?}: expected a or b"))),
                    })
                }
                "usrhash" => {
                    let b = decode_hex(v).filter(|b| b.len() == 32).ok_or_else(|| {
                        bad(format!(
                            "{full}={v:?}: expected 64 hex digits (a SHA-256 root hash)"
                        ))
                    })?;
                    let mut h = [0u8; 32];
                    h.copy_from_slice(&b);
                    hash = Some(h);
                }
                "usr_hash_offset" => {
                    let n = number(&full, v)?;
                    if n == 0 || n % VERITY_BLOCK != 0 {
                        return Err(bad(format!(
                            "{full}={n}: must be a non-zero multiple of {VERITY_BLOCK}"
                        )));
                    }
                    offset = Some(n);
                }
                "usr_data_blocks" => {
                    let n = number(&full, v)?;
                    if n == 0 {
                        return Err(bad(format!(
                            "{full}=0: the /usr filesystem cannot be empty"
                        )));
                    }
                    blocks = Some(n);
                }
                "usr_salt" => {
                    let b = match v {
                        "-" => Vec::new(),
                        _ => decode_hex(v).filter(|b| b.len() <= 256).ok_or_else(|| {
                            bad(format!(
                                "{full}={v:?}: expected up to 256 bytes of hex, or -"
                            ))
                        })?,
                    };
                    salt = Some(b);
                }
                "first_boot" => {
                    first_boot = match v {
                        "" | "1" | "yes" | "true" => FirstBootMode::Force,
                        "0" | "no" | "false" => FirstBootMode::Skip,
                        "auto" => FirstBootMode::Auto,
                        _ => return Err(bad(format!("{full}={v:?}: expected 1, 0 or auto"))),
                    }
                }
                "disk_timeout" => {
                    let n = number(&full, v)?;
                    if n == 0 || n > 3600 {
                        return Err(bad(format!("{full}={n}: expected 1..=3600 seconds")));
                    }
                    disk_timeout = Duration::from_secs(n);
                }
                "init" => {
                    if !v.starts_with('/') {
                        return Err(bad(format!("{full}={v:?}: must be an absolute path")));
                    }
                    init = PathBuf::from(v);
                }
                "platform" => {
                    if !PLATFORMS.contains(&v) {
                        return Err(bad(format!(
                            "{full}={v:?}: expected one of {}",
                            PLATFORMS.join(", ")
                        )));
                    }
                    platform = Some(v.to_string());
                }
                // Read by the config sources (crate::sources::cmdline);
                // checked there, when first boot fetches it.
                "usr" => usr_image = Some(parse_usr_source(v).map_err(bad)?),
                "config.url" => {
                    if v.is_empty() {
                        return Err(bad(format!("{full}= is empty: expected a URL")));
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter {full} (see provisioner/src/init/README.md)"
                    )));
                }
            }
        }
        let missing = |k: &str| {
            bad(format!(
                "basalt.{k}= is missing; the boot loader entry must set it"
            ))
        };
        let usr_hash_offset = offset.ok_or_else(|| missing("usr_hash_offset"))?;
        let usr_data_blocks = blocks.ok_or_else(|| missing("usr_data_blocks"))?;
        if usr_data_blocks
            .checked_mul(VERITY_BLOCK)
            .is_none_or(|end| end > usr_hash_offset)
        {
            return Err(bad(format!(
                "basalt.usr_data_blocks={usr_data_blocks} ({} bytes) overlaps the hash area at basalt.usr_hash_offset={usr_hash_offset}",
                usr_data_blocks.saturating_mul(VERITY_BLOCK)
            )));
        }
        let slot = match (slot, &usr_image) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "basalt.slot= does not apply to a diskless boot (basalt.usr=initrd:...): drop it"
                        .into(),
                ));
            }
            (Some(s), None) => s,
            (None, Some(_)) => Slot::A,
            (None, None) => return Err(missing("slot")),
        };
        let root = match (&usr_image, root) {
            (Some(_), Some(r)) => parse_diskless_root(&r).map_err(bad)?,
            _ => None,
        };
        Ok(BootParams {
            slot,
            usr_hash: hash.ok_or_else(|| missing("usrhash"))?,
            usr_hash_offset,
            usr_data_blocks,
            usr_salt: salt,
            first_boot,
            disk_timeout,
            panic_delay: panic_delay(line),
            init,
            platform,
            usr_image,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "5b2d7a3c4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0";

    fn base() -> String {
        format!(
            "BOOT_IMAGE=/vmlinuz-a console=ttyS0 basalt.slot=a basalt.usrhash={H} basalt.usr_hash_offset=1073741824 basalt.usr_data_blocks=262144 panic=15"
        )
    }

    #[test]
    fn parses_complete_line() {
        let p = BootParams::parse(&base()).unwrap();
        assert_eq!(p.slot, Slot::A);
        assert_eq!(p.usr_hash[0], 0x5b);
        assert_eq!(p.usr_hash[31], 0xf0);
        assert_eq!(p.usr_hash_offset, 1 << 30);
        assert_eq!(p.usr_data_blocks, 262144);
        assert_eq!(p.usr_salt, None);
        assert_eq!(p.first_boot, FirstBootMode::Auto);
        assert_eq!(p.panic_delay, Duration::from_secs(15));
        assert_eq!(p.disk_timeout, DEFAULT_DISK_TIMEOUT);
        assert_eq!(p.init, PathBuf::from(DEFAULT_INIT));
    }

    #[test]
    fn options_table() {
        let cases: &[(&str, fn(&BootParams) -> bool)] = &[
            ("basalt.slot=b", |p| p.slot == Slot::B),
            ("basalt.usr_salt=00ff", |p| {
                p.usr_salt.as_deref() == Some(&[0, 0xff][..])
            }),
            ("basalt.usr_salt=-", |p| {
                p.usr_salt.as_deref() == Some(&[][..])
            }),
            ("basalt.first_boot", |p| {
                p.first_boot == FirstBootMode::Force
            }),
            ("basalt.first_boot=0", |p| {
                p.first_boot == FirstBootMode::Skip
            }),
            ("basalt.disk_timeout=5", |p| {
                p.disk_timeout == Duration::from_secs(5)
            }),
            ("basalt.init=/sbin/init", |p| {
                p.init == PathBuf::from("/sbin/init")
            }),
            ("panic=-1", |p| p.panic_delay == Duration::ZERO),
            ("panic=0", |p| p.panic_delay == DEFAULT_PANIC_DELAY),
            ("\"basalt.init=/usr/bin/my init\"", |p| {
                p.init == PathBuf::from("/usr/bin/my init")
            }),
            ("basalt.platform=ec2", |p| {
                p.platform.as_deref() == Some("ec2")
            }),
            ("basalt.config.url=http://10.0.2.2:8080/c.ign", |p| {
                p.platform.is_none()
            }),
        ];
        for (extra, check) in cases {
            let p = BootParams::parse(&format!("{} {extra}", base()))
                .unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert!(check(&p), "{extra}: {p:?}");
        }
    }

    #[test]
    fn errors_table() {
        let cases = [
            ("basalt.slot=c", "expected a or b"),
            ("basalt.usrhash=abc", "64 hex digits"),
            ("basalt.usrhash=zz", "64 hex digits"),
            ("basalt.usr_hash_offset=1000", "multiple of 4096"),
            ("basalt.usr_data_blocks=x", "not a non-negative integer"),
            ("basalt.usr_data_blocks=262145", "overlaps the hash area"),
            ("basalt.first_boot=maybe", "expected 1, 0 or auto"),
            ("basalt.disk_timeout=0", "1..=3600"),
            ("basalt.init=sbin/init", "absolute path"),
            ("basalt.slto=a", "unknown parameter basalt.slto"),
            ("basalt.platform=azure", "expected one of qemu"),
            ("basalt.config.url=", "is empty"),
        ];
        for (extra, want) in cases {
            let err = BootParams::parse(&format!("{} {extra}", base()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
        for key in ["slot", "usrhash", "usr_hash_offset", "usr_data_blocks"] {
            let line: String = base()
                .split(' ')
                .filter(|w| !w.starts_with(&format!("basalt.{key}=")))
                .collect::<Vec<_>>()
                .join(" ");
            let err = BootParams::parse(&line).unwrap_err().to_string();
            assert!(
                err.contains(&format!("basalt.{key}= is missing")),
                "{key}: {err}"
            );
        }
    }

    fn diskless() -> String {
        base().replace("basalt.slot=a ", "") + " basalt.usr=initrd:/usr.img"
    }

    #[test]
    fn diskless_table() {
        type Check = fn(&BootParams) -> bool;
        let ok: &[(&str, Check)] = &[
            ("", |p| {
                p.usr_image.as_deref() == Some(std::path::Path::new("/usr.img"))
                    && p.root.is_none()
                    && p.slot == Slot::A
            }),
            ("root=/dev/vda1", |p| {
                p.root.as_deref() == Some(std::path::Path::new("/dev/vda1"))
            }),
            ("root=tmpfs", |p| p.root.is_none()),
        ];
        for (extra, check) in ok {
            let p = BootParams::parse(&format!("{} {extra}", diskless()))
                .unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert!(check(&p), "{extra}: {p:?}");
        }
        let errors = [
            ("basalt.slot=a", "does not apply to a diskless boot"),
            ("root=UUID=1234", "takes root=/dev/NAME"),
            ("root=/dev/../etc/x", "takes root=/dev/NAME"),
            ("basalt.usr=/usr.img", "expected initrd:/PATH"),
            ("basalt.usr=initrd:usr.img", "expected initrd:/PATH"),
            ("basalt.usr=initrd:/a/../b", "expected initrd:/PATH"),
        ];
        for (extra, want) in errors {
            let err = BootParams::parse(&format!("{} {extra}", diskless()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
        // Disk boots keep ignoring root= (it is the kernel's).
        let p = BootParams::parse(&format!("{} root=UUID=1234", base())).unwrap();
        assert_eq!((p.usr_image, p.root), (None, None));
    }

    #[test]
    fn split_words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("a b  c\n", &["a", "b", "c"]),
            ("x=\"1 2\" y", &["x=1 2", "y"]),
            ("\"\"", &[""]),
            ("", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(split_words(line), *want, "{line:?}");
        }
    }
}
