//! A program of the tree, copied out with its loader and libraries into a
//! private temporary directory and run through that loader:
//! `<tmp>/ld.so --inhibit-cache --library-path <tmp>/libs <tmp>/<name> ...`
//! with an empty environment (`LC_ALL=C` only). Rootless, no chroot, and no
//! library of the build host is used: `--inhibit-cache` skips the host's
//! ld.so.cache and every needed library is in `libs`, which the loader
//! searches before any `DT_RUNPATH` or default directory.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use basalt_tree::{Tree, file_name};

use crate::closure::{Closure, closure};
use crate::error::{ExecError, Result};

/// Names [`Staged`] takes inside its directory; callers put their own
/// inputs and outputs beside them under other names.
pub const RESERVED: &[&str] = &["ld.so", "libs"];

/// A staged program, reusable for several runs. The directory is removed on
/// drop.
pub struct Staged {
    tmp: tempfile::TempDir,
    name: String,
    ld: PathBuf,
    prog: PathBuf,
    libdir: PathBuf,
}

fn write_exec(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(ExecError::io("writing", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(ExecError::io("chmod", path))
}

impl Staged {
    /// Finds `program` (absolute tree path) and what it needs in `tree`, and
    /// stages it into a new temporary directory named `<prefix>…`.
    pub fn from_tree(tree: &Tree, program: &str, prefix: &str) -> Result<Staged> {
        Staged::stage(&closure(tree, program)?, prefix)
    }

    /// Stages an already computed [`Closure`].
    pub fn stage(c: &Closure, prefix: &str) -> Result<Staged> {
        let name = file_name(&c.program.path).to_string();
        if name.is_empty() || RESERVED.contains(&name.as_str()) {
            return Err(ExecError::Tree {
                path: c.program.path.clone(),
                why: "cannot be staged under this name".into(),
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(ExecError::io(
                "creating temporary directory",
                std::env::temp_dir(),
            ))?;
        let libdir = tmp.path().join("libs");
        fs::create_dir(&libdir).map_err(ExecError::io("creating", &libdir))?;
        for (soname, o) in &c.libs {
            let p = libdir.join(soname);
            fs::write(&p, &o.bytes).map_err(ExecError::io("writing", &p))?;
        }
        let ld = tmp.path().join("ld.so");
        write_exec(&ld, &c.interp.bytes)?;
        let prog = tmp.path().join(&name);
        write_exec(&prog, &c.program.bytes)?;
        Ok(Staged {
            tmp,
            name,
            ld,
            prog,
            libdir,
        })
    }

    /// The private directory (holds `ld.so`, `libs/` and the program).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The program's file name (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs the program through the tree's loader, with an
    /// empty environment except `LC_ALL=C`. Append the program's arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.ld);
        cmd.env_clear()
            .env("LC_ALL", "C")
            .arg("--inhibit-cache")
            .arg("--library-path")
            .arg(&self.libdir)
            .arg(&self.prog);
        cmd
    }

    /// Runs the program with `args`; a non-zero exit is an
    /// [`ExecError::Failed`] carrying its stderr.
    pub fn run<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.output(self.command().args(args))
    }

    /// [`Staged::run`] with `cwd` as the working directory.
    pub fn run_in<I, S>(&self, cwd: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.output(self.command().current_dir(cwd).args(args))
    }

    fn output(&self, cmd: &mut Command) -> Result<Output> {
        let output = cmd.output().map_err(ExecError::io("running", &self.ld))?;
        if !output.status.success() {
            return Err(ExecError::Failed {
                program: self.name.clone(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::LIB_DIRS;
    use crate::elf::dyn_info;
    use basalt_tree::{Content, Entry};

    /// A tree holding a host program with its loader and library closure, at
    /// the paths the host has them (contents copied, links followed).
    fn host_tree(program: &str) -> Option<Tree> {
        let mut t = Tree::new();
        let mut todo = vec![program.to_string()];
        let mut done = std::collections::BTreeSet::new();
        while let Some(p) = todo.pop() {
            if !done.insert(p.clone()) {
                continue;
            }
            let bytes = fs::read(&p).ok()?;
            let info = dyn_info(&bytes, &p).ok()?;
            todo.extend(info.interp.clone());
            for n in info.needed {
                let found = LIB_DIRS
                    .iter()
                    .map(|d| format!("{d}/{n}"))
                    .find(|c| Path::new(c).exists())?;
                todo.push(found);
            }
            t.insert_p(&p, Entry::file(0o755, Content::from_bytes(bytes)))
                .ok()?;
        }
        Some(t)
    }

    #[test]
    fn runs_a_real_program_from_the_tree() {
        let Some(tree) = host_tree("/usr/bin/xz") else {
            eprintln!("SKIPPED runs_a_real_program_from_the_tree: no /usr/bin/xz on the host");
            return;
        };
        let s = Staged::from_tree(&tree, "/usr/bin/xz", "treeexec-test-").unwrap();
        let libs: Vec<String> = fs::read_dir(s.dir().join("libs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(libs.contains(&"liblzma.so.5".to_string()), "{libs:?}");
        let out = s.run(["--version"]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("XZ Utils"), "{text}");

        // A round trip through a file in the staged directory.
        let input = s.dir().join("in.txt");
        fs::write(&input, b"hello from the tree\n").unwrap();
        s.run([OsStr::new("-k"), input.as_os_str()]).unwrap();
        let out = s
            .run([OsStr::new("-dc"), s.dir().join("in.txt.xz").as_os_str()])
            .unwrap();
        assert_eq!(out.stdout, b"hello from the tree\n");

        // Relative paths are taken from the working directory.
        let out = s.run_in(s.dir(), ["-dc", "in.txt.xz"]).unwrap();
        assert_eq!(out.stdout, b"hello from the tree\n");

        let e = s.run(["--no-such-option"]).unwrap_err().to_string();
        assert!(e.starts_with("xz failed (exit status: 1)"), "{e}");
        assert!(e.contains("no-such-option"), "{e}");
    }

    #[test]
    fn drops_the_directory() {
        let Some(tree) = host_tree("/usr/bin/xz") else {
            eprintln!("SKIPPED drops_the_directory: no /usr/bin/xz on the host");
            return;
        };
        let s = Staged::from_tree(&tree, "/usr/bin/xz", "treeexec-test-").unwrap();
        let dir = s.dir().to_path_buf();
        assert!(dir.join("ld.so").exists() && dir.join("xz").exists());
        drop(s);
        assert!(!dir.exists());
    }
}
