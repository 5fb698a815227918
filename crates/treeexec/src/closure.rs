//! The files a dynamically linked program of the tree needs to run: the
//! program itself, its ELF interpreter and every library in the `DT_NEEDED`
//! closure, found inside the tree the way the tree's own loader would find
//! them (the needing object's `DT_RUNPATH`, with `$ORIGIN`, then the Debian
//! multiarch library directories).
//!
//! `DT_RPATH` is refused: the loader searches it *before* `--library-path`,
//! so its absolute directories would be looked up on the build host.

use std::collections::{BTreeMap, BTreeSet};

use basalt_tree::{Tree, normalize, parent};

use crate::elf::dyn_info;
use crate::error::{ExecError, Result};
use crate::treefs::{read_file, resolve};

/// Library directories searched in the tree after an object's `DT_RUNPATH`,
/// in order (Debian multiarch, then the plain ones).
pub const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib",
    "/lib",
];

/// One file of the closure: where it was found in the tree, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The tree path it was found at (before following links).
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A program of the tree with everything its loader will open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub program: Object,
    /// The `PT_INTERP` loader.
    pub interp: Object,
    /// Needed libraries by soname (sorted).
    pub libs: BTreeMap<String, Object>,
}

impl Closure {
    /// Every file in a stable order: program, interpreter, then the
    /// libraries by soname. For digests of "the program as it will run".
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        [&self.program, &self.interp]
            .into_iter()
            .chain(self.libs.values())
    }
}

fn elf_err(path: &str, why: impl Into<String>) -> ExecError {
    ExecError::Elf {
        path: path.to_string(),
        why: why.into(),
    }
}

/// The directories `DT_RUNPATH` names, with `$ORIGIN` expanded to the
/// directory `object` was found in.
fn runpath_dirs(runpath: &str, object: &str) -> Result<Vec<String>> {
    let origin = parent(object).unwrap_or("/");
    let mut dirs = Vec::new();
    for raw in runpath.split(':') {
        if raw.is_empty() {
            return Err(elf_err(
                object,
                format!("DT_RUNPATH {runpath:?} has an empty entry (the current directory)"),
            ));
        }
        let dir = raw.replace("${ORIGIN}", origin).replace("$ORIGIN", origin);
        if dir.contains('$') {
            return Err(elf_err(
                object,
                format!("DT_RUNPATH {runpath:?}: only $ORIGIN is supported"),
            ));
        }
        if !dir.starts_with('/') {
            return Err(elf_err(
                object,
                format!("DT_RUNPATH {runpath:?}: {dir:?} is relative"),
            ));
        }
        dirs.push(normalize(&dir).map_err(|e| elf_err(object, format!("DT_RUNPATH: {e}")))?);
    }
    Ok(dirs)
}

/// Finds `program` (an absolute tree path), its interpreter and its library
/// closure in `tree`.
pub fn closure(tree: &Tree, program: &str) -> Result<Closure> {
    let exe = read_file(tree, program)?;
    let info = dyn_info(&exe, program)?;
    let interp_path = info
        .interp
        .clone()
        .ok_or_else(|| elf_err(program, "no PT_INTERP (static?)"))?;
    // (soname, needed by, that object's search directories); a stack of
    // sorted inputs, so the order (and the result) is stable.
    let mut queue: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut push = |queue: &mut Vec<_>, path: &str, info: &crate::elf::DynInfo| -> Result<()> {
        if info.rpath.is_some() && info.runpath.is_none() {
            return Err(elf_err(
                path,
                "has DT_RPATH, which the loader searches on the build host before \
                 the staged libraries; not supported",
            ));
        }
        let mut dirs = match &info.runpath {
            Some(r) => runpath_dirs(r, path)?,
            None => Vec::new(),
        };
        dirs.extend(LIB_DIRS.iter().map(|d| d.to_string()));
        for n in &info.needed {
            if seen.insert(n.clone()) {
                queue.push((n.clone(), path.to_string(), dirs.clone()));
            }
        }
        Ok(())
    };
    push(&mut queue, program, &info)?;
    let mut libs = BTreeMap::new();
    while let Some((soname, needed_by, dirs)) = queue.pop() {
        if soname.contains('/') {
            return Err(elf_err(
                &needed_by,
                format!("DT_NEEDED {soname:?} contains '/'"),
            ));
        }
        let path = dirs
            .iter()
            .map(|d| match d.as_str() {
                "/" => format!("/{soname}"),
                d => format!("{d}/{soname}"),
            })
            .find(|p| resolve(tree, p).is_ok())
            .ok_or_else(|| ExecError::Tree {
                path: soname.clone(),
                why: format!(
                    "library needed by {needed_by} is not in the tree under {}",
                    dirs.join(", ")
                ),
            })?;
        let bytes = read_file(tree, &path)?;
        push(&mut queue, &path, &dyn_info(&bytes, &path)?)?;
        libs.insert(soname, Object { path, bytes });
    }
    Ok(Closure {
        program: Object {
            path: program.to_string(),
            bytes: exe,
        },
        interp: Object {
            bytes: read_file(tree, &interp_path)?,
            path: interp_path,
        },
        libs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::{synth_elf, synth_elf_with};
    use basalt_tree::{Content, Entry};

    const DT_RPATH: u64 = 15;
    const DT_RUNPATH: u64 = 29;

    fn file(t: &mut Tree, p: &str, bytes: Vec<u8>) {
        t.insert_p(p, Entry::file(0o755, Content::from_bytes(bytes)))
            .unwrap();
    }

    /// A program needing libdm (symlinked), libudev (under /lib), libc and
    /// a private library found through `$ORIGIN` in its DT_RUNPATH.
    fn tree() -> Tree {
        let mut t = Tree::new();
        file(
            &mut t,
            "/usr/bin/prog",
            synth_elf_with(
                Some("/lib64/ld-linux-x86-64.so.2"),
                &["libdm.so.1", "libc.so.6", "libpriv-1.so"],
                &[(DT_RUNPATH, "$ORIGIN/../lib/x86_64-linux-gnu/prog")],
            ),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/prog/libpriv-1.so",
            synth_elf(None, &["libc.so.6"]),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/libdm.so.1.2",
            synth_elf(None, &["libudev.so.1", "libc.so.6"]),
        );
        t.insert_p(
            "/usr/lib/x86_64-linux-gnu/libdm.so.1",
            Entry::symlink("libdm.so.1.2"),
        )
        .unwrap();
        file(
            &mut t,
            "/lib/x86_64-linux-gnu/libudev.so.1",
            synth_elf(None, &["libc.so.6"]),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            synth_elf(None, &[]),
        );
        file(
            &mut t,
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            b"loader".to_vec(),
        );
        t.insert_p("/lib64", Entry::symlink("usr/lib/x86_64-linux-gnu"))
            .unwrap();
        t
    }

    #[test]
    fn finds_interp_and_library_closure() {
        let c = closure(&tree(), "/usr/bin/prog").unwrap();
        assert_eq!(c.interp.bytes, b"loader");
        assert_eq!(c.interp.path, "/lib64/ld-linux-x86-64.so.2");
        let libs: Vec<(&str, &str)> = c
            .libs
            .iter()
            .map(|(k, o)| (k.as_str(), o.path.as_str()))
            .collect();
        assert_eq!(
            libs,
            [
                ("libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
                ("libdm.so.1", "/usr/lib/x86_64-linux-gnu/libdm.so.1"),
                (
                    "libpriv-1.so",
                    "/usr/lib/x86_64-linux-gnu/prog/libpriv-1.so"
                ),
                ("libudev.so.1", "/lib/x86_64-linux-gnu/libudev.so.1"),
            ]
        );
        assert_eq!(c.objects().count(), 6);
        // Same input, same result.
        assert_eq!(closure(&tree(), "/usr/bin/prog").unwrap(), c);
    }

    #[test]
    fn refuses_what_it_cannot_stage_faithfully() {
        type Edit = fn(&mut Tree);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "missing library",
                |t| {
                    t.remove("/lib/x86_64-linux-gnu/libudev.so.1");
                },
                "libudev.so.1: library needed by /usr/lib/x86_64-linux-gnu/libdm.so.1",
            ),
            (
                "private library without the runpath",
                |t| {
                    let bytes = synth_elf(
                        Some("/lib64/ld-linux-x86-64.so.2"),
                        &["libc.so.6", "libpriv-1.so"],
                    );
                    file(t, "/usr/bin/prog", bytes);
                },
                "libpriv-1.so: library needed by /usr/bin/prog",
            ),
            (
                "DT_RPATH",
                |t| {
                    let bytes = synth_elf_with(
                        Some("/lib64/ld-linux-x86-64.so.2"),
                        &["libc.so.6"],
                        &[(DT_RPATH, "/opt/lib")],
                    );
                    file(t, "/usr/bin/prog", bytes);
                },
                "DT_RPATH",
            ),
            (
                "other dynamic string token",
                |t| {
                    let bytes = synth_elf_with(
                        Some("/lib64/ld-linux-x86-64.so.2"),
                        &["libc.so.6"],
                        &[(DT_RUNPATH, "/usr/$LIB")],
                    );
                    file(t, "/usr/bin/prog", bytes);
                },
                "only $ORIGIN",
            ),
            (
                "static program",
                |t| file(t, "/usr/bin/prog", synth_elf(None, &[])),
                "no PT_INTERP",
            ),
            (
                "missing interpreter",
                |t| {
                    t.remove("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
                },
                "ld-linux-x86-64.so.2",
            ),
        ];
        for (what, edit, want) in cases {
            let mut t = tree();
            edit(&mut t);
            let e = closure(&t, "/usr/bin/prog").unwrap_err().to_string();
            assert!(e.contains(want), "{what}: {e}");
        }
    }
}
