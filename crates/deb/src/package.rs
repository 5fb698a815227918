//! A .deb's outer structure and its control archive (deb(5)).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::ar::{ArMember, list_members, member_reader};
use crate::compression::Compression;
use crate::error::{DebError, Result};

/// Maintainer scripts a control archive may hold (deb(5), Debian Policy 6).
pub const MAINTAINER_SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm", "config"];

/// Largest control member file read into memory.
const MAX_CONTROL_FILE: u64 = 64 << 20;

/// The metadata of one .deb, read without unpacking its data.
#[derive(Debug, Clone)]
pub struct DebPackage {
    pub path: PathBuf,
    /// Contents of `debian-binary` without the newline (`2.0`).
    pub format_version: String,
    /// The `control` file: one deb822 paragraph.
    pub control: String,
    /// Paths listed in `conffiles` (absolute, as written).
    pub conffiles: Vec<String>,
    /// Maintainer scripts present, by name (`postinst`, ...), for
    /// inspection only: Basalt never runs them.
    pub scripts: BTreeMap<String, Vec<u8>>,
    /// Names of the other control files (`md5sums`, `triggers`, `shlibs`...).
    pub other_control_files: Vec<String>,
    pub data_member: ArMember,
    pub data_compression: Compression,
}

impl DebPackage {
    /// Open and check the .deb at `path`: the ar layout, `debian-binary`
    /// 2.x, a control and a data member with supported compressions, and the
    /// control archive's contents.
    pub fn open(path: &Path) -> Result<DebPackage> {
        let io_err = |source| DebError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = BufReader::new(File::open(path).map_err(io_err)?);
        let members = list_members(path, &mut f)?;
        let first = members.first().ok_or_else(|| DebError::MissingMember {
            path: path.to_path_buf(),
            which: "debian-binary",
        })?;
        if first.name != "debian-binary" {
            return Err(DebError::NoDebianBinary {
                path: path.to_path_buf(),
                found: first.name.clone(),
            });
        }
        let mut version = String::new();
        member_reader(path, &mut f, first)?
            .take(64)
            .read_to_string(&mut version)
            .map_err(io_err)?;
        let version = version.trim_end().to_string();
        if !version.starts_with("2.") {
            return Err(DebError::BadFormatVersion {
                path: path.to_path_buf(),
                version,
            });
        }
        let mut control = None;
        let mut data = None;
        for m in &members[1..] {
            let unsupported = || DebError::UnsupportedCompression {
                path: path.to_path_buf(),
                member: m.name.clone(),
            };
            if let Some(c) =
                Compression::of_member(&m.name, "control.tar").map_err(|_| unsupported())?
            {
                if control.replace((m.clone(), c)).is_some() {
                    return Err(DebError::Tar {
                        path: path.to_path_buf(),
                        member: m.name.clone(),
                        what: "second control member".into(),
                    });
                }
            } else if let Some(c) =
                Compression::of_member(&m.name, "data.tar").map_err(|_| unsupported())?
            {
                if data.replace((m.clone(), c)).is_some() {
                    return Err(DebError::Tar {
                        path: path.to_path_buf(),
                        member: m.name.clone(),
                        what: "second data member".into(),
                    });
                }
            } else if !m.name.starts_with('_') {
                // deb(5): members starting with '_' are reserved and may be skipped.
                return Err(DebError::Tar {
                    path: path.to_path_buf(),
                    member: m.name.clone(),
                    what: "unknown ar member".into(),
                });
            }
        }
        let (cm, cc) = control.ok_or_else(|| DebError::MissingMember {
            path: path.to_path_buf(),
            which: "control.tar",
        })?;
        let (data_member, data_compression) = data.ok_or_else(|| DebError::MissingMember {
            path: path.to_path_buf(),
            which: "data.tar",
        })?;
        let raw = member_reader(path, &mut f, &cm)?;
        let files = read_control_files(path, &cm.name, cc.decoder(raw).map_err(io_err)?)?;
        let mut pkg = DebPackage {
            path: path.to_path_buf(),
            format_version: version,
            control: String::new(),
            conffiles: Vec::new(),
            scripts: BTreeMap::new(),
            other_control_files: Vec::new(),
            data_member,
            data_compression,
        };
        let text = |name: &str, bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| DebError::Tar {
                path: path.to_path_buf(),
                member: cm.name.clone(),
                what: format!("{name} is not UTF-8"),
            })
        };
        for (name, bytes) in files {
            match name.as_str() {
                "control" => pkg.control = text("control", bytes)?,
                "conffiles" => {
                    pkg.conffiles = text("conffiles", bytes)?
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                n if MAINTAINER_SCRIPTS.contains(&n) => {
                    pkg.scripts.insert(name, bytes);
                }
                _ => pkg.other_control_files.push(name),
            }
        }
        if pkg.control.trim().is_empty() {
            return Err(DebError::NoControl {
                path: path.to_path_buf(),
            });
        }
        Ok(pkg)
    }

    /// The value of control field `name` (case-insensitive), continuation
    /// lines joined with `\n`.
    pub fn field(&self, name: &str) -> Option<String> {
        control_field(&self.control, name)
    }

    /// The `Package:` name.
    pub fn name(&self) -> Option<String> {
        self.field("Package")
    }

    pub fn has_script(&self, name: &str) -> bool {
        self.scripts.contains_key(name)
    }
}

/// Field `name` of a deb822 paragraph (first paragraph only).
pub fn control_field(text: &str, name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(v) = out.as_mut() {
                v.push('\n');
                v.push_str(line.trim_start());
            }
            continue;
        }
        if out.is_some() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case(name)
        {
            out = Some(v.trim().to_string());
        }
    }
    out
}

/// Read the regular files of a control tar (names without `./`).
fn read_control_files<R: Read>(path: &Path, member: &str, r: R) -> Result<Vec<(String, Vec<u8>)>> {
    let err = |what: String| DebError::Tar {
        path: path.to_path_buf(),
        member: member.to_string(),
        what,
    };
    let mut archive = tar::Archive::new(r);
    let mut out = Vec::new();
    for item in archive.entries().map_err(|e| err(e.to_string()))? {
        let mut e = item.map_err(|e| err(format!("reading entry: {e}")))?;
        if !e.header().entry_type().is_file() {
            continue; // "./" and any directories carry no control data
        }
        let name = e
            .path()
            .map_err(|x| err(x.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if e.size() > MAX_CONTROL_FILE {
            return Err(err(format!(
                "control file {name} is {} bytes, larger than allowed",
                e.size()
            )));
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes)
            .map_err(|x| err(format!("reading {name}: {x}")))?;
        out.push((name, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_field_table() {
        let text = "Package: foo\nVersion: 1.0-1\nDescription: short\n more\n .\n last\nDepends: a, b\n\nPackage: other\n";
        let cases = [
            ("Package", Some("foo")),
            ("version", Some("1.0-1")),
            ("Description", Some("short\nmore\n.\nlast")),
            ("Depends", Some("a, b")),
            ("Missing", None),
        ];
        for (k, want) in cases {
            assert_eq!(control_field(text, k).as_deref(), want, "{k}");
        }
    }
}
