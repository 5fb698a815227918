//! The archive plan: an ordered list of members, inode numbers and link
//! counts assigned deterministically, then written as newc.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use basalt_tree::{Content, Entry, Kind, Tree};

use crate::error::CpioError;
use crate::header::{NewcHeader, TRAILER_NAME, pad_len};

// File type bits of st_mode (POSIX <sys/stat.h>).
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;

/// What a member is, with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    Dir,
    File(Content),
    Symlink(String),
    /// Another name for a regular-file member of the archive (by name).
    HardLink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

impl MemberKind {
    fn type_bits(&self) -> u32 {
        match self {
            MemberKind::Dir => S_IFDIR,
            MemberKind::File(_) | MemberKind::HardLink(_) => S_IFREG,
            MemberKind::Symlink(_) => S_IFLNK,
            MemberKind::CharDevice { .. } => S_IFCHR,
            MemberKind::BlockDevice { .. } => S_IFBLK,
            MemberKind::Fifo => S_IFIFO,
        }
    }
}

/// One archive member. `name` is relative (`usr/bin/ls`; `.` is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub kind: MemberKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch; must fit 32 unsigned bits.
    pub mtime: i64,
}

impl Member {
    /// A root-owned member with mtime 0.
    pub fn new(name: &str, kind: MemberKind, mode: u32) -> Member {
        Member {
            name: name.to_string(),
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    pub fn at(mut self, mtime: i64) -> Member {
        self.mtime = mtime;
        self
    }

    pub fn owned(mut self, uid: u32, gid: u32) -> Member {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// Turn a path (`/usr/bin`, `usr/bin`, `./usr/bin/`) into an archive name.
fn archive_name(path: &str) -> Result<String, CpioError> {
    let key = basalt_tree::normalize(path).map_err(|_| CpioError::BadName {
        path: path.to_string(),
        why: "NUL byte, '..' escape or over-long component",
    })?;
    Ok(if key == "/" {
        ".".to_string()
    } else {
        key[1..].to_string()
    })
}

fn parent_name(name: &str) -> Option<&str> {
    if name == "." {
        return None;
    }
    Some(name.rfind('/').map_or(".", |i| &name[..i]))
}

/// An ordered list of members (parents before children).
#[derive(Debug, Clone, Default)]
pub struct Archive {
    members: Vec<Member>,
    index: HashMap<String, usize>,
}

/// Per-member numbers decided before any byte is written.
struct Plan {
    ino: Vec<u32>,
    nlink: Vec<u32>,
    /// Whether this member carries the data of its inode (first of its links).
    carries_data: Vec<bool>,
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Append a member. Its name is normalised; its parent directory must
    /// already be a member (the kernel creates members in archive order),
    /// except for top-level names and the root `.` itself.
    pub fn push(&mut self, mut m: Member) -> Result<(), CpioError> {
        m.name = archive_name(&m.name)?;
        m.mode &= 0o7777;
        if self.index.contains_key(&m.name) {
            return Err(CpioError::Duplicate(m.name));
        }
        if let Some(p) = parent_name(&m.name)
            && p != "."
        {
            match self.index.get(p).map(|&i| &self.members[i].kind) {
                Some(MemberKind::Dir) => {}
                _ => {
                    return Err(CpioError::BadName {
                        path: m.name,
                        why: "parent directory is not an earlier member",
                    });
                }
            }
        }
        if let MemberKind::HardLink(t) = &mut m.kind {
            *t = archive_name(t)?;
        }
        self.index.insert(m.name.clone(), self.members.len());
        self.members.push(m);
        Ok(())
    }

    /// Append a member, first adding its missing parent directories
    /// (mode 0755, root-owned, with the member's mtime).
    pub fn push_p(&mut self, m: Member) -> Result<(), CpioError> {
        let name = archive_name(&m.name)?;
        let mut missing = Vec::new();
        let mut p = parent_name(&name);
        while let Some(dir) = p.filter(|d| *d != ".") {
            if self.index.contains_key(dir) {
                break;
            }
            missing.push(dir.to_string());
            p = parent_name(dir);
        }
        for dir in missing.into_iter().rev() {
            self.push(Member::new(&dir, MemberKind::Dir, 0o755).at(m.mtime))?;
        }
        self.push(m)
    }

    /// Every entry of `tree`, in its path order, including the root as `.`.
    pub fn from_tree(tree: &Tree) -> Result<Archive, CpioError> {
        let mut a = Archive::new();
        for (path, e) in tree.iter() {
            a.push(member_from_entry(path, e))?;
        }
        Ok(a)
    }

    fn plan(&self) -> Result<Plan, CpioError> {
        let n = self.members.len();
        let mut ino = vec![0u32; n];
        let mut nlink = vec![1u32; n];
        let mut carries_data = vec![false; n];
        // Which member owns each inode (the hard-link target, or itself).
        let mut owner = vec![0usize; n];
        for (i, m) in self.members.iter().enumerate() {
            owner[i] = match &m.kind {
                MemberKind::HardLink(t) => match self.index.get(t) {
                    Some(&j) if matches!(self.members[j].kind, MemberKind::File(_)) => j,
                    _ => {
                        return Err(CpioError::BadHardLink {
                            path: m.name.clone(),
                            target: t.clone(),
                        });
                    }
                },
                _ => i,
            };
        }
        // Inode numbers count up from 1 in archive order of first appearance.
        let mut next = 1u32;
        let mut assigned: BTreeMap<usize, u32> = BTreeMap::new();
        let mut links: BTreeMap<usize, u32> = BTreeMap::new();
        for i in 0..n {
            let o = owner[i];
            *links.entry(o).or_insert(0) += 1;
            if let Some(&v) = assigned.get(&o) {
                ino[i] = v;
            } else {
                assigned.insert(o, next);
                ino[i] = next;
                carries_data[i] = true;
                next = next
                    .checked_add(1)
                    .ok_or_else(|| CpioError::FieldOverflow {
                        path: self.members[i].name.clone(),
                        field: "ino",
                        value: i128::from(u32::MAX) + 1,
                    })?;
            }
        }
        // Directories: 2 + number of subdirectories (like a real filesystem).
        let mut subdirs: HashMap<&str, u32> = HashMap::new();
        for m in &self.members {
            if matches!(m.kind, MemberKind::Dir)
                && let Some(p) = parent_name(&m.name)
            {
                *subdirs.entry(p).or_insert(0) += 1;
            }
        }
        for (i, m) in self.members.iter().enumerate() {
            nlink[i] = match m.kind {
                MemberKind::Dir => 2 + subdirs.get(m.name.as_str()).copied().unwrap_or(0),
                _ => links[&owner[i]],
            };
        }
        Ok(Plan {
            ino,
            nlink,
            carries_data,
        })
    }

    /// Write the archive, trailer included; returns the bytes written.
    pub fn write_to(&self, w: &mut dyn Write) -> Result<u64, CpioError> {
        let plan = self.plan()?;
        let mut out = Counting {
            inner: w,
            written: 0,
        };
        for (i, m) in self.members.iter().enumerate() {
            let mut h = NewcHeader {
                ino: plan.ino[i],
                mode: m.kind.type_bits() | m.mode,
                uid: m.uid,
                gid: m.gid,
                nlink: plan.nlink[i],
                mtime: fit(&m.name, "mtime", m.mtime)?,
                ..Default::default()
            };
            match &m.kind {
                MemberKind::CharDevice { major, minor }
                | MemberKind::BlockDevice { major, minor } => {
                    h.rdevmajor = *major;
                    h.rdevminor = *minor;
                }
                MemberKind::File(c) if plan.carries_data[i] => {
                    h.filesize = fit(&m.name, "filesize", c.len())?
                }
                MemberKind::Symlink(t) => h.filesize = fit(&m.name, "filesize", t.len() as u64)?,
                _ => {}
            }
            write_header(&mut out, &h, &m.name)?;
            match &m.kind {
                MemberKind::File(c) if plan.carries_data[i] => copy_content(&mut out, &m.name, c)?,
                MemberKind::Symlink(t) => out.put(t.as_bytes())?,
                _ => {}
            }
            out.pad()?;
        }
        let trailer = NewcHeader {
            nlink: 1,
            ..Default::default()
        };
        write_header(&mut out, &trailer, TRAILER_NAME)?;
        Ok(out.written)
    }

    /// The uncompressed archive in memory.
    pub fn to_vec(&self) -> Result<Vec<u8>, CpioError> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }
}

fn member_from_entry(path: &str, e: &Entry) -> Member {
    let kind = match &e.kind {
        Kind::Dir => MemberKind::Dir,
        Kind::File(c) => MemberKind::File(c.clone()),
        Kind::Symlink(t) => MemberKind::Symlink(t.clone()),
        Kind::HardLink(t) => MemberKind::HardLink(t.clone()),
        Kind::CharDevice { major, minor } => MemberKind::CharDevice {
            major: *major,
            minor: *minor,
        },
        Kind::BlockDevice { major, minor } => MemberKind::BlockDevice {
            major: *major,
            minor: *minor,
        },
        Kind::Fifo => MemberKind::Fifo,
    };
    Member {
        name: path.to_string(),
        kind,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime,
    }
}

fn fit<T: Copy + Into<i128> + TryInto<u32>>(
    path: &str,
    field: &'static str,
    v: T,
) -> Result<u32, CpioError> {
    v.try_into().map_err(|_| CpioError::FieldOverflow {
        path: path.to_string(),
        field,
        value: v.into(),
    })
}

fn write_header(out: &mut Counting<'_>, h: &NewcHeader, name: &str) -> Result<(), CpioError> {
    let mut h = *h;
    h.namesize = fit(name, "namesize", name.len() as u64 + 1)?;
    out.put(&h.encode())?;
    out.put(name.as_bytes())?;
    out.put(&[0])?;
    out.pad()
}

fn copy_content(out: &mut Counting<'_>, name: &str, c: &Content) -> Result<(), CpioError> {
    let read_err = |source| CpioError::ReadContent {
        path: name.to_string(),
        source,
    };
    let mut r = c.open().map_err(read_err)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        total += n as u64;
        if total > c.len() {
            break;
        }
        out.put(&buf[..n])?;
    }
    if total != c.len() {
        return Err(CpioError::SizeMismatch {
            path: name.to_string(),
            declared: c.len(),
            read: total,
        });
    }
    Ok(())
}

/// A writer that counts bytes so padding can be computed.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Counting<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), CpioError> {
        self.inner.write_all(b).map_err(CpioError::Write)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<(), CpioError> {
        let n = pad_len(self.written);
        self.put(&[0u8; 4][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, data: &[u8]) -> Member {
        Member::new(
            name,
            MemberKind::File(Content::from_bytes(data.to_vec())),
            0o644,
        )
    }

    fn sample() -> Archive {
        let mut a = Archive::new();
        a.push(Member::new("/", MemberKind::Dir, 0o755)).unwrap();
        a.push(Member::new("/bin", MemberKind::Dir, 0o755)).unwrap();
        a.push(file("/bin/a", b"hello")).unwrap();
        a.push(Member::new(
            "/bin/b",
            MemberKind::HardLink("/bin/a".into()),
            0o644,
        ))
        .unwrap();
        a.push(Member::new(
            "/init",
            MemberKind::Symlink("bin/a".into()),
            0o777,
        ))
        .unwrap();
        a
    }

    #[test]
    fn push_errors_table() {
        let cases: Vec<(Member, &str)> = vec![
            (file("/bin/a", b""), "appears twice"),
            (file("/nope/x", b""), "parent directory"),
            (file("/init/x", b""), "parent directory"),
            (file("../x", b""), "invalid name"),
        ];
        for (m, want) in cases {
            let mut a = sample();
            let err = a.push(m.clone()).expect_err(&m.name).to_string();
            assert!(err.contains(want), "{}: {err}", m.name);
        }
    }

    #[test]
    fn push_p_creates_parents() {
        let mut a = Archive::new();
        a.push_p(file("/usr/lib/modules/k/a.ko", b"x").at(5))
            .unwrap();
        a.push_p(file("usr/lib/modules/k/b.ko", b"y")).unwrap();
        let names: Vec<&str> = a.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "usr",
                "usr/lib",
                "usr/lib/modules",
                "usr/lib/modules/k",
                "usr/lib/modules/k/a.ko",
                "usr/lib/modules/k/b.ko"
            ]
        );
        assert_eq!(a.members()[0].mtime, 5);
        a.push(Member::new("/f", MemberKind::Fifo, 0o644)).unwrap();
        assert!(
            a.push_p(file("/f/x", b"")).is_err(),
            "a non-directory parent is not replaced"
        );
    }

    #[test]
    fn plan_inodes_links_and_data() {
        let a = sample();
        let p = a.plan().unwrap();
        assert_eq!(p.ino, vec![1, 2, 3, 3, 4]);
        assert_eq!(p.nlink, vec![3, 2, 2, 2, 1]);
        assert_eq!(p.carries_data, vec![true, true, true, false, true]);
    }

    #[test]
    fn bad_hard_link_and_overflow() {
        let mut a = sample();
        a.push(Member::new(
            "/l",
            MemberKind::HardLink("/init".into()),
            0o644,
        ))
        .unwrap();
        assert!(matches!(a.to_vec(), Err(CpioError::BadHardLink { .. })));
        let mut a = sample();
        a.push(file("/late", b"").at(i64::from(u32::MAX) + 1))
            .unwrap();
        assert!(matches!(
            a.to_vec(),
            Err(CpioError::FieldOverflow { field: "mtime", .. })
        ));
        let mut a = sample();
        a.push(file("/early", b"").at(-1)).unwrap();
        assert!(matches!(
            a.to_vec(),
            Err(CpioError::FieldOverflow { field: "mtime", .. })
        ));
    }

    #[test]
    fn bytes_are_aligned_and_end_with_trailer() {
        let v = sample().to_vec().unwrap();
        assert_eq!(v.len() % 4, 0);
        assert_eq!(&v[..6], b"070701");
        // The trailer: header (ino 0, nlink 1), "TRAILER!!!\0", padded.
        let tail_at = v.len() - 124;
        assert_eq!(&v[tail_at..tail_at + 14], b"07070100000000");
        assert_eq!(&v[tail_at + 110..tail_at + 121], b"TRAILER!!!\0");
        // Hard link second name carries no data: its filesize field is 0.
        let at_b = v.windows(6).position(|w| w == b"bin/b\0").unwrap() - 110;
        assert_eq!(&v[at_b + 54..at_b + 62], b"00000000");
    }

    #[test]
    fn from_tree_covers_every_kind() {
        let mut t = Tree::new();
        t.insert_p(
            "/dev/console",
            Entry {
                kind: Kind::CharDevice { major: 5, minor: 1 },
                ..Entry::dir(0o600)
            },
        )
        .unwrap();
        t.insert(
            "/dev/sda",
            Entry {
                kind: Kind::BlockDevice { major: 8, minor: 0 },
                ..Entry::dir(0o660)
            },
        )
        .unwrap();
        t.insert(
            "/dev/fifo",
            Entry {
                kind: Kind::Fifo,
                ..Entry::dir(0o644)
            },
        )
        .unwrap();
        let a = Archive::from_tree(&t).unwrap();
        let names: Vec<&str> = a.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            vec![".", "dev", "dev/console", "dev/fifo", "dev/sda"]
        );
        let v = a.to_vec().unwrap();
        let at = v.windows(12).position(|w| w == b"dev/console\0").unwrap() - 110;
        // mode 020600, rdevmajor 5, rdevminor 1.
        assert_eq!(&v[at + 14..at + 22], b"00002180");
        assert_eq!(&v[at + 78..at + 94], b"0000000500000001");
    }
}
