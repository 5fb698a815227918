//! Firmware selection: SeaBIOS (QEMU's built-in default) or OVMF for UEFI.
//!
//! OVMF comes either split (a read-only CODE image plus a VARS template, both
//! attached as pflash; each run gets its own writable copy of the VARS) or as
//! one combined image passed with `-bios` (variables then live in RAM only).

use std::path::{Path, PathBuf};

use super::error::QemuError;

/// The firmware the guest boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Firmware {
    /// OVMF (EDK II): boots EFI/BOOT/BOOTX64.EFI from the ESP.
    Uefi,
    /// SeaBIOS: boots the protective MBR's boot code.
    Bios,
}

impl Firmware {
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Uefi => "uefi",
            Firmware::Bios => "bios",
        }
    }
}

/// Where the OVMF images are on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ovmf {
    /// Separate code (read-only) and variable-store template.
    Split { code: PathBuf, vars: PathBuf },
    /// One image holding both, for `-bios`.
    Combined(PathBuf),
}

/// Split layouts, most preferred first, relative to the data directory
/// (`/usr/share`). The 4 MiB build is the only one Debian trixie ships.
const SPLIT: [(&str, &str); 3] = [
    ("OVMF/OVMF_CODE_4M.fd", "OVMF/OVMF_VARS_4M.fd"),
    ("OVMF/OVMF_CODE.fd", "OVMF/OVMF_VARS.fd"),
    ("edk2/ovmf/OVMF_CODE.fd", "edk2/ovmf/OVMF_VARS.fd"),
];
/// Combined images, tried after every split layout.
const COMBINED: [&str; 2] = ["ovmf/OVMF.fd", "qemu/OVMF.fd"];

/// Finds OVMF under `share` (normally `/usr/share`). Secure-boot builds are
/// never chosen: they need SMM and enrolled keys, and Basalt's loader is unsigned.
pub fn find_ovmf(share: &Path) -> Result<Ovmf, QemuError> {
    for (code, vars) in SPLIT {
        let (code, vars) = (share.join(code), share.join(vars));
        if code.is_file() && vars.is_file() {
            return Ok(Ovmf::Split { code, vars });
        }
    }
    for combined in COMBINED {
        let p = share.join(combined);
        if p.is_file() {
            return Ok(Ovmf::Combined(p));
        }
    }
    let looked = SPLIT
        .iter()
        .map(|(c, _)| *c)
        .chain(COMBINED)
        .map(|p| share.join(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(QemuError::NoOvmf { looked })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"fd").unwrap();
        }
        dir
    }

    #[test]
    fn picks_the_preferred_layout_present() {
        // (files present, expected choice: Some((code, vars)) or Err)
        /// (files present, expected (code or combined image, vars template), None = error)
        type Case<'a> = (&'a [&'a str], Option<(&'a str, Option<&'a str>)>);
        let cases: &[Case] = &[
            (
                &[
                    "OVMF/OVMF_CODE_4M.fd",
                    "OVMF/OVMF_VARS_4M.fd",
                    "OVMF/OVMF_CODE.fd",
                    "OVMF/OVMF_VARS.fd",
                ],
                Some(("OVMF/OVMF_CODE_4M.fd", Some("OVMF/OVMF_VARS_4M.fd"))),
            ),
            // A CODE image without its VARS template is not usable as a pair.
            (
                &[
                    "OVMF/OVMF_CODE_4M.fd",
                    "OVMF/OVMF_CODE.fd",
                    "OVMF/OVMF_VARS.fd",
                ],
                Some(("OVMF/OVMF_CODE.fd", Some("OVMF/OVMF_VARS.fd"))),
            ),
            (
                &["OVMF/OVMF_CODE_4M.fd", "ovmf/OVMF.fd"],
                Some(("ovmf/OVMF.fd", None)),
            ),
            (&["qemu/OVMF.fd"], Some(("qemu/OVMF.fd", None))),
            // Secure-boot-only installs are refused.
            (
                &["OVMF/OVMF_CODE_4M.secboot.fd", "OVMF/OVMF_VARS_4M.ms.fd"],
                None,
            ),
            (&[], None),
        ];
        for (files, want) in cases {
            let dir = layout(files);
            let got = find_ovmf(dir.path());
            match want {
                Some((code, Some(vars))) => assert_eq!(
                    got.unwrap(),
                    Ovmf::Split {
                        code: dir.path().join(code),
                        vars: dir.path().join(vars)
                    },
                    "{files:?}"
                ),
                Some((combined, None)) => assert_eq!(
                    got.unwrap(),
                    Ovmf::Combined(dir.path().join(combined)),
                    "{files:?}"
                ),
                None => {
                    let e = got.unwrap_err().to_string();
                    assert!(
                        e.contains("no OVMF firmware found") && e.contains("OVMF_CODE_4M.fd"),
                        "{files:?}: {e}"
                    );
                }
            }
        }
    }
}
