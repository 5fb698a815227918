//! Where profile files and overlays are read from: the filesystem, or the
//! copy of `profiles/` and `overlays/` embedded in the binary.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};

static EMBEDDED_PROFILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../profiles");
static EMBEDDED_OVERLAYS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../overlays");

/// The profile `basalt build` uses when none is given.
pub const DEFAULT_PROFILE: &str = "profiles/qemu.yaml";

/// A file location: on disk, or inside the embedded tree (paths like
/// `profiles/base.yaml`, `overlays/base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Disk(PathBuf),
    Embedded(PathBuf),
}

impl Location {
    /// Resolve `rel` against the directory holding this location.
    pub fn join(&self, rel: &str) -> Location {
        match self {
            Location::Disk(p) => {
                let base = p.parent().unwrap_or(Path::new("."));
                if Path::new(rel).is_absolute() {
                    Location::Disk(PathBuf::from(rel))
                } else {
                    Location::Disk(lexical_normalize(&base.join(rel)))
                }
            }
            Location::Embedded(p) => {
                let base = p.parent().unwrap_or(Path::new(""));
                Location::Embedded(lexical_normalize(&base.join(rel)))
            }
        }
    }

    pub fn read_to_string(&self) -> Result<String> {
        match self {
            Location::Disk(p) => {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            }
            Location::Embedded(p) => {
                let Some(f) = embedded_file(p) else {
                    bail!("no embedded profile file {}", p.display())
                };
                f.contents_utf8()
                    .map(str::to_string)
                    .with_context(|| format!("embedded {} is not UTF-8", p.display()))
            }
        }
    }

    /// The name shown in messages.
    pub fn display(&self) -> String {
        match self {
            Location::Disk(p) => p.display().to_string(),
            Location::Embedded(p) => format!("<embedded>/{}", p.display()),
        }
    }

    /// Materialise an overlay directory on disk: disk locations are used
    /// as they are; embedded ones are written below `scratch`.
    pub fn overlay_dir(&self, scratch: &Path) -> Result<PathBuf> {
        match self {
            Location::Disk(p) => {
                if !p.is_dir() {
                    bail!("overlay directory {} does not exist", p.display());
                }
                Ok(p.clone())
            }
            Location::Embedded(p) => {
                let rel = p.strip_prefix("overlays").with_context(|| {
                    format!("embedded overlay {} is not under overlays/", p.display())
                })?;
                let dir = if rel.as_os_str().is_empty() {
                    &EMBEDDED_OVERLAYS
                } else {
                    EMBEDDED_OVERLAYS
                        .get_dir(rel)
                        .with_context(|| format!("no embedded overlay directory {}", p.display()))?
                };
                let out = scratch.join(p);
                write_embedded(dir, rel, &out)?;
                Ok(out)
            }
        }
    }
}

fn embedded_file(p: &Path) -> Option<&'static include_dir::File<'static>> {
    if let Ok(rel) = p.strip_prefix("profiles") {
        return EMBEDDED_PROFILES.get_file(rel);
    }
    if let Ok(rel) = p.strip_prefix("overlays") {
        return EMBEDDED_OVERLAYS.get_file(rel);
    }
    None
}

fn write_embedded(dir: &Dir<'static>, base: &Path, out: &Path) -> Result<()> {
    // Paths inside `dir` are relative to the embedded root; `base` is the
    // overlay's own path there, and `out` stays the overlay's destination.
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for f in dir.files() {
        let rel = f.path().strip_prefix(base).unwrap_or(f.path());
        let dest = out.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&dest, f.contents())
            .with_context(|| format!("writing {}", dest.display()))?;
    }
    for d in dir.dirs() {
        write_embedded(d, base, out)?;
    }
    Ok(())
}

/// Resolve `.` and `..` without touching the filesystem.
pub fn lexical_normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_table() {
        let cases = [
            (
                Location::Embedded("profiles/qemu.yaml".into()),
                "base.yaml",
                Location::Embedded("profiles/base.yaml".into()),
            ),
            (
                Location::Embedded("profiles/base.yaml".into()),
                "../overlays/base",
                Location::Embedded("overlays/base".into()),
            ),
            (
                Location::Disk("/a/b/p.yaml".into()),
                "../c.yaml",
                Location::Disk("/a/c.yaml".into()),
            ),
            (
                Location::Disk("/a/b/p.yaml".into()),
                "/etc/x.yaml",
                Location::Disk("/etc/x.yaml".into()),
            ),
        ];
        for (base, rel, want) in cases {
            assert_eq!(base.join(rel), want, "{base:?} + {rel}");
        }
    }

    #[test]
    fn embedded_overlay_materialises_with_its_layout() {
        let scratch = std::env::temp_dir().join(format!("basalt-overlay-{}", std::process::id()));
        let dir = Location::Embedded("overlays/base".into())
            .overlay_dir(&scratch)
            .expect("materialise");
        let want = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays/base");
        let mut stack = vec![want.clone()];
        let mut n = 0;
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&want).expect("prefix");
                    assert_eq!(
                        std::fs::read(dir.join(rel)).ok(),
                        std::fs::read(&p).ok(),
                        "{}",
                        rel.display()
                    );
                    n += 1;
                }
            }
        }
        assert!(n > 3, "overlay has only {n} files");
        std::fs::remove_dir_all(&scratch).ok();
    }

    #[test]
    fn embedded_default_profile_is_present() {
        let loc = Location::Embedded(DEFAULT_PROFILE.into());
        assert!(loc.read_to_string().expect("embedded").contains("extends"));
    }
}
