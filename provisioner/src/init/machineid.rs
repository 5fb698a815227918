//! The machine ID (machine-id(5)): /init writes /etc/machine-id when the
//! real root has none, after provisioning (a config may write its own).
//!
//! Left to systemd, a missing ID makes PID 1 treat the boot as a first
//! boot: it runs `preset-all` over every unit file (1.3 s under QEMU TCG,
//! before the first unit starts), mounts a transient ID over /etc/machine-id
//! and later commits it with systemd-machine-id-commit.service. Basalt
//! applies the presets when it builds the image
//! (builder/src/assemble/preset_policy.rs), and /etc is writable here, so
//! /init writes the ID directly: 128 random bits from getrandom(2), as a
//! version 4 UUID (the form systemd's own generator uses), 32 lowercase hex
//! digits and a newline, mode 0444, written under a temporary name, synced
//! and renamed.
//!
//! Left alone: a valid ID (e.g. from the config), a symbolic link (a
//! stateless setup that points it elsewhere), and any boot whose command
//! line sets `systemd.machine_id=` (systemd applies that itself).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::{InitError, Result};

/// Path of the ID under the real root.
pub const MACHINE_ID: &str = "etc/machine-id";

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// /etc/machine-id already holds a valid ID.
    Kept,
    /// A new ID was written.
    Written(String),
    /// Left to systemd: `systemd.machine_id=` on the command line, or
    /// /etc/machine-id is a symbolic link.
    LeftToSystemd,
}

/// Whether `text` is a machine ID as machine-id(5) defines it: 32
/// lowercase hex digits, optionally followed by one newline, not all zero.
pub fn is_valid(text: &str) -> bool {
    let id = text.strip_suffix('\n').unwrap_or(text);
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.bytes().any(|b| b != b'0')
}

/// Format 16 random bytes as a version 4, variant 1 UUID without dashes
/// (RFC 9562 section 5.4), the way systemd generates machine IDs.
pub fn format_id(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hex::encode(bytes)
}

/// Whether the kernel command line hands the ID to systemd.
fn cmdline_sets_id(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|w| w.starts_with("systemd.machine_id="))
}

/// Write /etc/machine-id under `sysroot` unless it is valid or left to
/// systemd. `random` supplies the 16 bytes (getrandom(2) at boot).
pub fn ensure_with(
    sysroot: &Path,
    cmdline: &str,
    random: impl FnOnce() -> std::io::Result<[u8; 16]>,
) -> Result<Outcome> {
    let path = sysroot.join(MACHINE_ID);
    if cmdline_sets_id(cmdline) {
        return Ok(Outcome::LeftToSystemd);
    }
    match fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => return Ok(Outcome::LeftToSystemd),
        Ok(m) if m.is_file() => {
            let text = fs::read_to_string(&path).unwrap_or_default();
            if is_valid(&text) {
                return Ok(Outcome::Kept);
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(InitError::io("inspecting", &path)(e)),
    }
    let id = format_id(random().map_err(InitError::io("reading random bytes for", &path))?);
    let tmp = sysroot.join("etc/.machine-id.basalt-tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{id}\n").as_bytes())?;
        f.set_permissions(fs::Permissions::from_mode(0o444))?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        InitError::io("writing", &path)(e)
    })?;
    Ok(Outcome::Written(id))
}

/// [`ensure_with`] with the kernel's random bytes.
pub fn ensure(sysroot: &Path, cmdline: &str) -> Result<Outcome> {
    ensure_with(sysroot, cmdline, || {
        let mut b = [0u8; 16];
        let mut filled = 0;
        while filled < b.len() {
            filled +=
                rustix::rand::getrandom(&mut b[filled..], rustix::rand::GetRandomFlags::empty())?;
        }
        Ok(b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_table() {
        let cases = [
            ("0123456789abcdef0123456789abcdef\n", true),
            ("0123456789abcdef0123456789abcdef", true),
            ("0123456789ABCDEF0123456789abcdef\n", false),
            ("00000000000000000000000000000000\n", false),
            ("uninitialized\n", false),
            ("", false),
            ("0123456789abcdef0123456789abcde\n", false),
            ("0123456789abcdef0123456789abcdef\n\n", false),
        ];
        for (text, want) in cases {
            assert_eq!(is_valid(text), want, "{text:?}");
        }
    }

    #[test]
    fn uuid_v4_bits() {
        let id = format_id([0xff; 16]);
        assert_eq!(id, "ffffffffffff4fffbfffffffffffffff");
        let id = format_id([0; 16]);
        assert_eq!(id, "00000000000040008000000000000000");
        assert!(is_valid(&id));
    }

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        d
    }

    #[test]
    fn outcomes_table() {
        let valid = "0123456789abcdef0123456789abcdef\n";
        // (existing content, command line, expected outcome kind)
        let cases: [(Option<&str>, &str, &str); 6] = [
            (None, "console=ttyS0", "written"),
            (Some(""), "", "written"),
            (Some("uninitialized\n"), "", "written"),
            (Some(valid), "", "kept"),
            (
                None,
                "quiet systemd.machine_id=0123456789abcdef0123456789abcdef",
                "systemd",
            ),
            (Some("garbage"), "systemd.machine_id=firmware", "systemd"),
        ];
        for (existing, cmdline, want) in cases {
            let d = root();
            let p = d.path().join(MACHINE_ID);
            if let Some(t) = existing {
                fs::write(&p, t).unwrap();
            }
            let out = ensure_with(d.path(), cmdline, || Ok([7u8; 16])).unwrap();
            let kind = match &out {
                Outcome::Written(id) => {
                    let text = fs::read_to_string(&p).unwrap();
                    assert_eq!(text, format!("{id}\n"));
                    assert!(is_valid(&text));
                    let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o444);
                    "written"
                }
                Outcome::Kept => "kept",
                Outcome::LeftToSystemd => "systemd",
            };
            assert_eq!(kind, want, "{existing:?} {cmdline:?}");
            let leftovers: Vec<_> = fs::read_dir(d.path().join("etc"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != "machine-id")
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }

    #[test]
    fn symlink_is_left_alone_and_random_failure_is_an_error() {
        let d = root();
        let p = d.path().join(MACHINE_ID);
        std::os::unix::fs::symlink("/run/machine-id", &p).unwrap();
        assert_eq!(
            ensure_with(d.path(), "", || Ok([1; 16])).unwrap(),
            Outcome::LeftToSystemd
        );
        let d = root();
        let err = ensure_with(d.path(), "", || Err(std::io::Error::other("no entropy")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("machine-id"), "{err}");
        assert!(!d.path().join(MACHINE_ID).exists());
    }
}
