//! Seeding /etc from the factory defaults the image ships in
//! /usr/share/factory/etc: everything missing in /etc is copied (files,
//! directories, symlinks, with modes, owners and mtimes); anything already
//! in /etc is left alone, so local changes survive updates. Directories
//! that exist on both sides are descended into to fill in missing entries.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use super::error::{InitError, Result};

/// What populating did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EtcReport {
    /// Paths (relative to /etc) created.
    pub created: Vec<PathBuf>,
    /// Factory entries that are neither file, directory nor symlink (not copied).
    pub skipped_special: Vec<PathBuf>,
}

fn etc_err(factory: &Path, what: &str, p: &Path, e: io::Error) -> InitError {
    InitError::Etc {
        factory: factory.to_path_buf(),
        why: format!("{what} {}: {e}", p.display()),
    }
}

/// Copy what is missing from `factory` into `etc`.
pub fn populate(factory: &Path, etc: &Path) -> Result<EtcReport> {
    let mut report = EtcReport::default();
    if !factory.is_dir() {
        return Ok(report);
    }
    if fs::symlink_metadata(etc).is_err() {
        fs::create_dir_all(etc).map_err(|e| etc_err(factory, "creating", etc, e))?;
    }
    let mut pending = Vec::new();
    walk(
        factory,
        factory,
        etc,
        Path::new(""),
        &mut report,
        &mut pending,
    )?;
    if pending.is_empty() {
        return Ok(report);
    }
    sync_fs(etc).map_err(|e| etc_err(factory, "syncing the file system of", etc, e))?;
    for (tmp, dst) in &pending {
        fs::rename(tmp, dst).map_err(|e| etc_err(factory, "renaming into place", dst, e))?;
    }
    sync_fs(etc).map_err(|e| etc_err(factory, "syncing the file system of", etc, e))?;
    Ok(report)
}

/// Flushes the file system that holds `dir` (syncfs(2)).
fn sync_fs(dir: &Path) -> io::Result<()> {
    rustix::fs::syncfs(File::open(dir)?).map_err(io::Error::from)
}

fn walk(
    root: &Path,
    src_dir: &Path,
    dst_dir: &Path,
    rel: &Path,
    report: &mut EtcReport,
    pending: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(src_dir)
        .map_err(|e| etc_err(root, "reading", src_dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| etc_err(root, "reading", src_dir, e))?;
    names.sort();
    for name in names {
        let src = src_dir.join(&name);
        let dst = dst_dir.join(&name);
        let rel = rel.join(&name);
        let meta = fs::symlink_metadata(&src).map_err(|e| etc_err(root, "inspecting", &src, e))?;
        let existing = fs::symlink_metadata(&dst).ok();
        let ft = meta.file_type();
        if ft.is_dir() {
            match existing {
                None => {
                    fs::create_dir(&dst).map_err(|e| etc_err(root, "creating", &dst, e))?;
                    walk(root, &src, &dst, &rel, report, pending)?;
                    apply_meta(&dst, &meta)
                        .map_err(|e| etc_err(root, "setting owner/mode of", &dst, e))?;
                    report.created.push(rel);
                }
                Some(m) if m.is_dir() => walk(root, &src, &dst, &rel, report, pending)?,
                Some(_) => {}
            }
            continue;
        }
        if existing.is_some() {
            continue;
        }
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| etc_err(root, "reading link", &src, e))?;
            std::os::unix::fs::symlink(&target, &dst)
                .map_err(|e| etc_err(root, "creating link", &dst, e))?;
            lchown(&dst, Some(meta.uid()), Some(meta.gid()))
                .map_err(|e| etc_err(root, "chowning", &dst, e))?;
        } else if ft.is_file() {
            let tmp = copy_to_temp(&src, &dst, &meta)
                .map_err(|e| etc_err(root, "copying to", &dst, e))?;
            pending.push((tmp, dst));
        } else {
            report.skipped_special.push(rel);
            continue;
        }
        report.created.push(rel);
    }
    Ok(())
}

/// Copies `src` to a temporary name beside `dst` (renamed into place by
/// [`populate`] once everything is durable); returns the temporary path.
fn copy_to_temp(src: &Path, dst: &Path, meta: &fs::Metadata) -> io::Result<PathBuf> {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dst.with_file_name(format!(".{name}.basalt-tmp"));
    fs::copy(src, &tmp)?;
    apply_meta(&tmp, meta)?;
    Ok(tmp)
}

fn apply_meta(p: &Path, meta: &fs::Metadata) -> io::Result<()> {
    lchown(p, Some(meta.uid()), Some(meta.gid()))?;
    // chown clears setuid/setgid, so the mode is set after it.
    fs::set_permissions(p, Permissions::from_mode(meta.mode() & 0o7777))?;
    let f = File::options().write(!meta.is_dir()).read(true).open(p)?;
    f.set_modified(meta.modified()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("basalt-init-etc-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn copies_only_what_is_missing() {
        let base = tmp("pop");
        let factory = base.join("factory/etc");
        let etc = base.join("etc");
        fs::create_dir_all(factory.join("ssh/sshd_config.d")).unwrap();
        fs::write(factory.join("hostname"), "factory\n").unwrap();
        fs::write(factory.join("ssh/sshd_config"), "Port 22\n").unwrap();
        fs::write(
            factory.join("ssh/sshd_config.d/basalt.conf"),
            "PasswordAuthentication no\n",
        )
        .unwrap();
        fs::set_permissions(
            factory.join("ssh/sshd_config"),
            Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            factory.join("resolv.conf"),
        )
        .unwrap();
        // Already present locally: must not be overwritten.
        fs::create_dir_all(etc.join("ssh")).unwrap();
        fs::write(etc.join("hostname"), "mine\n").unwrap();

        let r = populate(&factory, &etc).unwrap();
        let created: Vec<String> = r.created.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            created,
            [
                "resolv.conf",
                "ssh/sshd_config",
                "ssh/sshd_config.d/basalt.conf",
                "ssh/sshd_config.d"
            ]
        );
        assert_eq!(fs::read_to_string(etc.join("hostname")).unwrap(), "mine\n");
        assert_eq!(
            fs::read_to_string(etc.join("ssh/sshd_config")).unwrap(),
            "Port 22\n"
        );
        assert_eq!(
            fs::metadata(etc.join("ssh/sshd_config")).unwrap().mode() & 0o7777,
            0o600
        );
        assert_eq!(
            fs::read_link(etc.join("resolv.conf")).unwrap(),
            Path::new("../run/systemd/resolve/stub-resolv.conf")
        );
        assert_eq!(
            fs::metadata(etc.join("ssh/sshd_config")).unwrap().mtime(),
            fs::metadata(factory.join("ssh/sshd_config"))
                .unwrap()
                .mtime()
        );
        // Every temporary file was renamed into place.
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&etc), ["hostname", "resolv.conf", "ssh"]);
        assert_eq!(names(&etc.join("ssh/sshd_config.d")), ["basalt.conf"]);
        // A temporary file left by a crash is overwritten, then renamed.
        fs::remove_file(etc.join("ssh/sshd_config")).unwrap();
        fs::write(etc.join("ssh/.sshd_config.basalt-tmp"), "half").unwrap();
        let r = populate(&factory, &etc).unwrap();
        assert_eq!(r.created, [PathBuf::from("ssh/sshd_config")]);
        assert_eq!(
            fs::read_to_string(etc.join("ssh/sshd_config")).unwrap(),
            "Port 22\n"
        );
        assert_eq!(names(&etc.join("ssh")), ["sshd_config", "sshd_config.d"]);
        // Then nothing is left to do.
        assert_eq!(populate(&factory, &etc).unwrap(), EtcReport::default());
        fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn missing_factory_is_a_no_op_and_fifos_are_reported() {
        let base = tmp("none");
        assert_eq!(
            populate(&base.join("nope"), &base.join("etc")).unwrap(),
            EtcReport::default()
        );
        let factory = base.join("f");
        fs::create_dir_all(&factory).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &factory.join("pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let r = populate(&factory, &base.join("etc")).unwrap();
        assert_eq!(r.skipped_special, vec![PathBuf::from("pipe")]);
        fs::remove_dir_all(&base).ok();
    }
}
