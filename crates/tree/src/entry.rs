//! One node of the tree model.

use std::collections::BTreeMap;

use crate::Content;

/// What kind of inode an entry is, with the kind-specific payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file.
    File(Content),
    /// A symbolic link with its target, stored verbatim.
    Symlink(String),
    /// A hard link to another entry of the tree, named by its normalised
    /// key. The target is always a regular file (never another hard link).
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

impl Kind {
    /// The `S_IFMT` file type bits for this kind (hard links report the
    /// regular-file type of their target).
    pub fn type_bits(&self) -> u32 {
        match self {
            Kind::Dir => 0o040000,
            Kind::File(_) | Kind::HardLink(_) => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::CharDevice { .. } => 0o020000,
            Kind::BlockDevice { .. } => 0o060000,
            Kind::Fifo => 0o010000,
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File(_) => "file",
            Kind::Symlink(_) => "symlink",
            Kind::HardLink(_) => "hard link",
            Kind::CharDevice { .. } => "character device",
            Kind::BlockDevice { .. } => "block device",
            Kind::Fifo => "fifo",
        }
    }
}

/// One path of the tree: kind, permissions, owner, time and xattrs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits only (`0o7777`: rwx, setuid, setgid, sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time in seconds since the epoch (used for atime, ctime
    /// and crtime too; nanoseconds are always zero after clamping).
    pub mtime: i64,
    /// Extended attributes by full name (`security.capability`, `user.x`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    fn with(kind: Kind, mode: u32) -> Entry {
        Entry {
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// A root-owned directory.
    pub fn dir(mode: u32) -> Entry {
        Entry::with(Kind::Dir, mode)
    }

    /// A root-owned regular file.
    pub fn file(mode: u32, content: Content) -> Entry {
        Entry::with(Kind::File(content), mode)
    }

    /// A root-owned symlink (mode 0777, as Linux reports them).
    pub fn symlink(target: impl Into<String>) -> Entry {
        Entry::with(Kind::Symlink(target.into()), 0o777)
    }

    pub fn owned(mut self, uid: u32, gid: u32) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn at(mut self, mtime: i64) -> Entry {
        self.mtime = mtime;
        self
    }

    /// Full `st_mode`: type bits plus permission bits.
    pub fn st_mode(&self) -> u32 {
        self.kind.type_bits() | (self.mode & 0o7777)
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st_mode_table() {
        let cases = [
            (Entry::dir(0o755), 0o040755),
            (Entry::file(0o4755, Content::from_bytes(vec![])), 0o104755),
            (Entry::symlink("x"), 0o120777),
            (Entry::with(Kind::Fifo, 0o644), 0o010644),
            (
                Entry::with(Kind::CharDevice { major: 1, minor: 3 }, 0o666),
                0o020666,
            ),
            (
                Entry::with(Kind::BlockDevice { major: 8, minor: 0 }, 0o660),
                0o060660,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.st_mode(), want, "{e:?}");
        }
    }
}
