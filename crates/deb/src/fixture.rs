//! Builds synthetic .deb packages in code, for this crate's tests and for
//! the tests of its users (no binary fixtures are committed).
//!
//! The data archive is written in GNU tar format with `./`-relative names,
//! as dpkg-deb does, so long names use GNU `L`/`K` records.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::ar::write_ar;
use crate::compression::{Compression, compress};

/// One data.tar entry of a synthetic package.
#[derive(Debug, Clone)]
pub enum Item {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// Hard link to another path of the same archive.
    HardLink(String),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
struct Spec {
    path: String,
    item: Item,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// A synthetic .deb under construction.
#[derive(Debug, Clone)]
pub struct DebBuilder {
    name: String,
    control_extra: Vec<(String, String)>,
    scripts: Vec<(String, Vec<u8>)>,
    conffiles: Vec<String>,
    items: Vec<Spec>,
    pub data_compression: Compression,
    pub control_compression: Compression,
}

impl DebBuilder {
    pub fn new(name: &str) -> DebBuilder {
        DebBuilder {
            name: name.to_string(),
            control_extra: Vec::new(),
            scripts: Vec::new(),
            conffiles: Vec::new(),
            items: Vec::new(),
            data_compression: Compression::Xz,
            control_compression: Compression::Gzip,
        }
    }

    pub fn field(mut self, k: &str, v: &str) -> Self {
        self.control_extra.push((k.to_string(), v.to_string()));
        self
    }

    pub fn script(mut self, name: &str, body: &str) -> Self {
        self.scripts
            .push((name.to_string(), body.as_bytes().to_vec()));
        self
    }

    pub fn conffile(mut self, path: &str) -> Self {
        self.conffiles.push(path.to_string());
        self
    }

    pub fn compression(mut self, data: Compression) -> Self {
        self.data_compression = data;
        self
    }

    /// Add an entry (path absolute or relative; stored as `./path`).
    pub fn entry(mut self, path: &str, item: Item, mode: u32, uid: u64, gid: u64) -> Self {
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        self.items.push(Spec {
            path,
            item,
            mode,
            uid,
            gid,
            mtime: 1_600_000_000,
        });
        self
    }

    pub fn dir(self, path: &str) -> Self {
        self.entry(path, Item::Dir, 0o755, 0, 0)
    }

    pub fn file(self, path: &str, mode: u32, data: &[u8]) -> Self {
        self.entry(path, Item::File(data.to_vec()), mode, 0, 0)
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(path, Item::Symlink(target.to_string()), 0o777, 0, 0)
    }

    pub fn hardlink(self, path: &str, target: &str) -> Self {
        let t = target.trim_start_matches('/').to_string();
        self.entry(path, Item::HardLink(t), 0o644, 0, 0)
    }

    /// Set the mtime of every entry added so far (and the default for none).
    pub fn mtime(mut self, mtime: u64) -> Self {
        for s in &mut self.items {
            s.mtime = mtime;
        }
        self
    }

    /// The data.tar bytes (uncompressed). Missing parent directories are
    /// listed first, like dpkg-deb's archives do.
    pub fn data_tar(&self) -> io::Result<Vec<u8>> {
        let listed: BTreeSet<&str> = self
            .items
            .iter()
            .map(|s| s.path.trim_end_matches('/'))
            .collect();
        let mut parents: BTreeSet<String> = BTreeSet::new();
        for s in &self.items {
            let mut p = s.path.trim_end_matches('/');
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                if !listed.contains(p) && !p.split('/').any(|c| c == "..") {
                    parents.insert(p.to_string());
                }
            }
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut root = tar::Header::new_gnu();
        root.set_entry_type(tar::EntryType::Directory);
        root.set_mode(0o755);
        root.set_size(0);
        root.set_uid(0);
        root.set_gid(0);
        root.set_mtime(1_600_000_000);
        b.append_data(&mut root, "./", io::empty())?;
        for p in &parents {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_600_000_000);
            b.append_data(&mut h, format!("./{p}/"), io::empty())?;
        }
        for s in &self.items {
            let mut h = tar::Header::new_gnu();
            h.set_mode(s.mode);
            h.set_uid(s.uid);
            h.set_gid(s.gid);
            h.set_mtime(s.mtime);
            h.set_size(0);
            let name = format!("./{}", s.path);
            match &s.item {
                Item::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    b.append_data(
                        &mut h,
                        format!("{}/", name.trim_end_matches('/')),
                        io::empty(),
                    )?;
                }
                Item::File(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    if name.split('/').any(|c| c == "..") && name.len() <= 100 {
                        // A hostile name the tar crate refuses to write: set it raw.
                        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                        h.set_cksum();
                        b.append(&h, &d[..])?;
                    } else {
                        b.append_data(&mut h, &name, &d[..])?;
                    }
                }
                Item::Symlink(t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, &name, t)?;
                }
                Item::HardLink(t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut h, &name, format!("./{t}"))?;
                }
                Item::CharDevice(ma, mi) | Item::BlockDevice(ma, mi) => {
                    let t = if matches!(s.item, Item::CharDevice(..)) {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    };
                    h.set_entry_type(t);
                    h.set_device_major(*ma)?;
                    h.set_device_minor(*mi)?;
                    b.append_data(&mut h, &name, io::empty())?;
                }
                Item::Fifo => {
                    h.set_entry_type(tar::EntryType::Fifo);
                    b.append_data(&mut h, &name, io::empty())?;
                }
            }
        }
        b.into_inner()
    }

    fn control_tar(&self) -> io::Result<Vec<u8>> {
        let mut control = format!(
            "Package: {}\nVersion: 1.0-1\nArchitecture: amd64\n",
            self.name
        );
        for (k, v) in &self.control_extra {
            control.push_str(&format!("{k}: {v}\n"));
        }
        control.push_str("Description: synthetic test package\n");
        let mut files: Vec<(String, Vec<u8>, u32)> =
            vec![("control".into(), control.into_bytes(), 0o644)];
        if !self.conffiles.is_empty() {
            files.push((
                "conffiles".into(),
                self.conffiles
                    .iter()
                    .map(|c| format!("{c}\n"))
                    .collect::<String>()
                    .into_bytes(),
                0o644,
            ));
        }
        for (n, body) in &self.scripts {
            files.push((n.clone(), body.clone(), 0o755));
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut root = tar::Header::new_gnu();
        root.set_entry_type(tar::EntryType::Directory);
        root.set_mode(0o755);
        root.set_size(0);
        root.set_uid(0);
        root.set_gid(0);
        root.set_mtime(0);
        b.append_data(&mut root, "./", io::empty())?;
        for (n, body, mode) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(body.len() as u64);
            b.append_data(&mut h, format!("./{n}"), &body[..])?;
        }
        b.into_inner()
    }

    /// The .deb bytes.
    pub fn build(&self) -> io::Result<Vec<u8>> {
        let ext = |c: Compression| match c {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        };
        let control = compress(self.control_compression, &self.control_tar()?)?;
        let data = compress(self.data_compression, &self.data_tar()?)?;
        let cname = format!("control.tar{}", ext(self.control_compression));
        let dname = format!("data.tar{}", ext(self.data_compression));
        Ok(write_ar(&[
            ("debian-binary", b"2.0\n"),
            (&cname, &control),
            (&dname, &data),
        ]))
    }

    /// Write the .deb as `<dir>/<name>.deb` and return its path.
    pub fn write_to(&self, dir: &Path) -> io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let p = dir.join(format!("{}.deb", self.name));
        std::fs::write(&p, self.build()?)?;
        Ok(p)
    }
}

/// A fresh, empty scratch directory under the system temp dir, unique per
/// process and `tag`.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::create_dir_all(&d);
    d
}
