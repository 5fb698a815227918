//! udev's hardware database compiled at build time. Debian's udev ships the
//! hwdb sources (`/usr/lib/udev/hwdb.d/*.hwdb`) but no `hwdb.bin`, so without
//! this the first boot compiles it (`systemd-hwdb-update.service`, ~20 s
//! under QEMU TCG) while udevd, networkd and sshd wait. Here the tree's own
//! `systemd-hwdb` (run rootless through the tree's loader, `basalt_treeexec`)
//! compiles the tree's own sources into `/usr/lib/udev/hwdb.bin`; the unit's
//! `ConditionPathExists=|!/usr/lib/udev/hwdb.bin` then skips it at boot.
//!
//! The output depends only on the sources and the program with its
//! libraries (the compiler lives in libsystemd-shared), so it is cached
//! under `<cache>/hwdb/<key>.bin`, keyed by a digest of the sources (name
//! and content) and of every file the loader opens (path and content).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use basalt_tree::{ContentStore, Entry, Kind, Tree};
use basalt_treeexec::{Closure, Object, Staged, closure, treefs};
use sha2::{Digest, Sha256};

use super::rooted::ROOT_ALIAS;

/// The hwdb compiler (package udev).
pub const TOOL: &str = "/usr/bin/systemd-hwdb";
/// The sources it reads for `--usr` (only `*.hwdb` files).
pub const SOURCES: &str = "/usr/lib/udev/hwdb.d";
/// Where `systemd-hwdb update --usr` writes the database.
pub const OUTPUT: &str = "/usr/lib/udev/hwdb.bin";
/// Places whose content makes systemd-hwdb-update.service run at boot
/// anyway (its `ConditionPathExists=|/etc/udev/hwdb.bin` and
/// `ConditionDirectoryNotEmpty=|/etc/udev/hwdb.d/`), here and in the factory
/// copy of /etc.
const ETC_TRIGGERS: &[&str] = &[
    "/etc/udev/hwdb.bin",
    "/etc/udev/hwdb.d",
    "/usr/share/factory/etc/udev/hwdb.bin",
    "/usr/share/factory/etc/udev/hwdb.d",
];

/// hwdb.bin header (systemd's `struct trie_header_f`, all little-endian):
/// signature[8], tool_version u64, file_size u64, then sizes and offsets.
pub const MAGIC: &[u8; 8] = b"KSLPHHRH";
const TOOL_VERSION_OFF: usize = 8;
const FILE_SIZE_OFF: usize = 16;
/// header_size, node_size, child_entry_size, value_entry_size,
/// nodes_root_off, nodes_len, strings_len follow: 10 fields in all.
const HEADER_LEN: usize = 80;

/// Bump when the way hwdb.bin is produced changes for the same input.
const FORMAT: &str = "basalt hwdb cache 2";

/// What [`compile`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to compile; why.
    Skipped(String),
    Compiled {
        sources: usize,
        bytes: usize,
        tool_version: u64,
        cached: bool,
    },
}

/// The fields of an hwdb.bin header Basalt checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tool_version: u64,
    pub file_size: u64,
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Checks that `bytes` is a whole hwdb.bin: the signature, and a file size
/// field equal to the length.
pub fn check_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER_LEN {
        bail!(
            "hwdb.bin is {} bytes, shorter than its {HEADER_LEN}-byte header",
            bytes.len()
        );
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        bail!("hwdb.bin does not start with the signature {MAGIC:?}");
    }
    let h = Header {
        tool_version: le64(bytes, TOOL_VERSION_OFF),
        file_size: le64(bytes, FILE_SIZE_OFF),
    };
    if u64::try_from(bytes.len()).ok() != Some(h.file_size) {
        bail!(
            "hwdb.bin header says {} bytes, the file has {}",
            h.file_size,
            bytes.len()
        );
    }
    Ok(h)
}

/// hwdb source files: (file name, content), sorted by name.
type Sources = Vec<(String, Vec<u8>)>;

/// The `*.hwdb` files of `/usr/lib/udev/hwdb.d`, by name (sorted); None
/// when the directory does not exist. A symlink to /dev/null masks a file,
/// as systemd does; other names are not read by systemd-hwdb either.
fn sources(tree: &Tree) -> Result<Option<Sources>> {
    let idx = tree.children_index();
    let Some(names) = idx.get(SOURCES) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in names.iter().filter(|n| n.ends_with(".hwdb")) {
        let path = format!("{SOURCES}/{name}");
        if let Some(Entry {
            kind: Kind::Symlink(t),
            ..
        }) = tree.get(&path)
            && t == "/dev/null"
        {
            crate::log::detail(&format!("hwdb: {path} is masked (-> /dev/null)"));
            continue;
        }
        let bytes = treefs::read_file(tree, &path).with_context(|| format!("reading {path}"))?;
        out.push((name.to_string(), bytes));
    }
    Ok(Some(out))
}

/// The cache key of compiling `sources` with the program `tool`.
fn key<'a>(sources: &[(String, Vec<u8>)], tool: impl Iterator<Item = &'a Object>) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update(u64::try_from(b.len()).unwrap_or(u64::MAX).to_le_bytes());
        h.update(b);
    };
    field(FORMAT.as_bytes());
    for (name, bytes) in sources {
        field(b"source");
        field(name.as_bytes());
        field(bytes);
    }
    for o in tool {
        field(b"object");
        field(o.path.as_bytes());
        field(&o.bytes);
    }
    hex::encode(h.finalize())
}

fn entry_path(cache: &Path, key: &str) -> PathBuf {
    cache.join(format!("{key}.bin"))
}

/// A cached hwdb.bin, when present and whole (else the tool runs again).
fn load(cache: &Path, key: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(entry_path(cache, key)).ok()?;
    check_header(&bytes).ok()?;
    Some(bytes)
}

/// Stores `bytes` under `key`: a temporary file renamed into place.
fn store(cache: &Path, key: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".hwdb-")
        .tempfile_in(cache)
        .context("creating a cache entry")?;
    std::io::Write::write_all(&mut tmp, bytes).context("writing a cache entry")?;
    let dst = entry_path(cache, key);
    tmp.persist(&dst)
        .with_context(|| format!("storing {}", dst.display()))?;
    Ok(())
}

/// hwdb.bin records each entry's source file name with systemd-hwdb's
/// `--root` prefix ([`ROOT_ALIAS`], fixed so the output is reproducible).
/// Turns the recorded source names `/proc/self/cwd/usr/lib/udev/hwdb.d/X`
/// into `///////////////usr/lib/udev/hwdb.d/X` (the same file on the
/// machine; same length, so no offset in the file moves). Returns how many
/// it rewrote.
fn unroot_filenames(bytes: &mut [u8]) -> usize {
    let needle = format!("{ROOT_ALIAS}{SOURCES}/");
    let needle = needle.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i + needle.len() <= bytes.len() {
        if &bytes[i..i + needle.len()] == needle {
            bytes[i..i + ROOT_ALIAS.len()].fill(b'/');
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    n
}

/// Runs `systemd-hwdb --root=<tmp> update --usr --strict` over `sources`
/// and returns the hwdb.bin it wrote.
fn run(tool: &Closure, sources: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let staged = Staged::stage(tool, "basalt-hwdb-").context("staging systemd-hwdb")?;
    let root = staged.dir().join("root");
    let rel = |p: &str| root.join(p.trim_start_matches('/'));
    let dir = rel(SOURCES);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in sources {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    }
    let root_arg = format!("--root={ROOT_ALIAS}");
    staged
        .run_in(&root, [root_arg.as_str(), "--strict", "update", "--usr"])
        .context("compiling the hardware database with the tree's systemd-hwdb")?;
    let out = rel(OUTPUT);
    let mut bytes = std::fs::read(&out)
        .with_context(|| format!("systemd-hwdb succeeded but wrote no {}", out.display()))?;
    check_header(&bytes).context("checking the hwdb.bin systemd-hwdb wrote")?;
    let n = unroot_filenames(&mut bytes);
    if n == 0 {
        bail!("hwdb.bin names no source file under {ROOT_ALIAS}{SOURCES}: unexpected format");
    }
    Ok(bytes)
}

/// Compiles the tree's hwdb sources into `/usr/lib/udev/hwdb.bin` (mode
/// 0644, root, mtime `epoch`), from `cache` when it holds the result for
/// exactly these sources and this systemd-hwdb.
pub fn compile(
    tree: &mut Tree,
    content: &ContentStore,
    epoch: i64,
    cache: Option<&Path>,
) -> Result<Outcome> {
    if treefs::resolve(tree, TOOL).is_err() {
        return Ok(Outcome::Skipped(format!("no {TOOL} in the tree")));
    }
    let sources = match sources(tree)? {
        None => return Ok(Outcome::Skipped(format!("no {SOURCES} in the tree"))),
        Some(s) if s.is_empty() => {
            return Ok(Outcome::Skipped(format!("no *.hwdb files in {SOURCES}")));
        }
        Some(s) => s,
    };
    let tool = closure(tree, TOOL).context("finding systemd-hwdb's libraries in the tree")?;
    let key = key(&sources, tool.objects());
    let (bytes, cached) = match cache.and_then(|c| load(c, &key)) {
        Some(b) => (b, true),
        None => {
            let b = run(&tool, &sources)?;
            if let Some(c) = cache
                && let Err(e) = store(c, &key, &b)
            {
                // A cache that cannot be written only costs the next build time.
                crate::log::detail(&format!("not caching hwdb.bin: {e:#}"));
            }
            (b, false)
        }
    };
    let header = check_header(&bytes)?;
    if tree.contains(OUTPUT) {
        crate::log::detail(&format!("hwdb: replacing {OUTPUT} from the packages"));
    }
    let stored = content
        .put_bytes(&bytes)
        .context("storing hwdb.bin in the content store")?;
    tree.insert(OUTPUT, Entry::file(0o644, stored).at(epoch))
        .with_context(|| format!("inserting {OUTPUT}"))?;
    for p in ETC_TRIGGERS {
        let nonempty = match tree.get(p) {
            Some(e) if e.is_dir() => tree.descendants(p).any(|(d, _)| d != *p),
            Some(_) => true,
            None => false,
        };
        if nonempty {
            crate::log::warn(&format!(
                "{p} exists: systemd-hwdb-update.service will still run at first boot"
            ));
        }
    }
    Ok(Outcome::Compiled {
        sources: sources.len(),
        bytes: bytes.len(),
        tool_version: header.tool_version,
        cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    /// A well-formed header followed by `body` bytes.
    fn hwdb_bin(body: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + body];
        b[..8].copy_from_slice(MAGIC);
        b[TOOL_VERSION_OFF..TOOL_VERSION_OFF + 8].copy_from_slice(&257u64.to_le_bytes());
        let len = u64::try_from(b.len()).unwrap();
        b[FILE_SIZE_OFF..FILE_SIZE_OFF + 8].copy_from_slice(&len.to_le_bytes());
        b
    }

    #[test]
    fn source_names_lose_the_root_alias() {
        let mut b = b"\0key\0/proc/self/cwd/usr/lib/udev/hwdb.d/20-OUI.hwdb\0v\0\
/proc/self/cwd/usr/lib/udev/hwdb.d/60-keyboard.hwdb\0/proc/self/cwd/etc/x\0"
            .to_vec();
        let len = b.len();
        assert_eq!(unroot_filenames(&mut b), 2);
        assert_eq!(b.len(), len);
        let want = b"\0key\0///////////////usr/lib/udev/hwdb.d/20-OUI.hwdb\0v\0\
///////////////usr/lib/udev/hwdb.d/60-keyboard.hwdb\0/proc/self/cwd/etc/x\0";
        assert_eq!(b, want.to_vec());
        assert_eq!(unroot_filenames(&mut b), 0);
    }

    #[test]
    fn header_checks() {
        let good = hwdb_bin(40);
        let cases: Vec<(&str, Vec<u8>, std::result::Result<u64, &str>)> = vec![
            ("good", good.clone(), Ok(257)),
            ("short", good[..40].to_vec(), Err("shorter than")),
            (
                "magic",
                [b"XXXXXXXX", &good[8..]].concat(),
                Err("signature"),
            ),
            ("truncated", good[..100].to_vec(), Err("header says 120")),
        ];
        for (what, bytes, want) in cases {
            match (check_header(&bytes), want) {
                (Ok(h), Ok(v)) => assert_eq!(h.tool_version, v, "{what}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{what}: {e}"),
                (got, _) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn file(t: &mut Tree, p: &str, body: &str) {
        t.insert_p(
            p,
            Entry::file(0o644, Content::from_bytes(body.as_bytes().to_vec())),
        )
        .unwrap();
    }

    #[test]
    fn skips_without_tool_or_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let content = ContentStore::new(tmp.path().join("store")).unwrap();
        let mut t = Tree::new();
        let cases: &[(&str, &str)] = &[
            ("", "no /usr/bin/systemd-hwdb"),
            ("/usr/bin/systemd-hwdb", "no /usr/lib/udev/hwdb.d in"),
            ("/usr/lib/udev/hwdb.d/README", "no *.hwdb files"),
        ];
        for (add, want) in cases {
            if !add.is_empty() {
                file(&mut t, add, "x");
            }
            match compile(&mut t, &content, 0, None).unwrap() {
                Outcome::Skipped(why) => assert!(why.contains(want), "{why}"),
                other => panic!("{add}: {other:?}"),
            }
        }
        assert!(!t.contains(OUTPUT));
    }

    #[test]
    fn lists_sources_like_systemd() {
        let mut t = Tree::new();
        file(&mut t, "/usr/lib/udev/hwdb.d/60-b.hwdb", "b");
        file(&mut t, "/usr/lib/udev/hwdb.d/20-a.hwdb", "a");
        file(&mut t, "/usr/lib/udev/hwdb.d/README", "not read");
        file(&mut t, "/usr/share/hwdb/70-c.hwdb", "c");
        t.insert(
            "/usr/lib/udev/hwdb.d/70-c.hwdb",
            Entry::symlink("../../../share/hwdb/70-c.hwdb"),
        )
        .unwrap();
        t.insert(
            "/usr/lib/udev/hwdb.d/80-m.hwdb",
            Entry::symlink("/dev/null"),
        )
        .unwrap();
        let got = sources(&t).unwrap().unwrap();
        let want: Vec<(String, Vec<u8>)> =
            [("20-a.hwdb", "a"), ("60-b.hwdb", "b"), ("70-c.hwdb", "c")]
                .iter()
                .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
                .collect();
        assert_eq!(got, want);

        t.insert("/usr/lib/udev/hwdb.d/90-d.hwdb", Entry::symlink("nowhere"))
            .unwrap();
        let e = format!("{:#}", sources(&t).unwrap_err());
        assert!(e.contains("reading /usr/lib/udev/hwdb.d/90-d.hwdb"), "{e}");
    }

    #[test]
    fn key_follows_every_input() {
        let src = |n: &str, b: &str| vec![(n.to_string(), b.as_bytes().to_vec())];
        let obj = |p: &str, b: &str| Object {
            path: p.to_string(),
            bytes: b.as_bytes().to_vec(),
        };
        let base = key(&src("a.hwdb", "x"), [obj(TOOL, "elf")].iter());
        let cases = [
            ("same", src("a.hwdb", "x"), obj(TOOL, "elf"), true),
            ("source name", src("b.hwdb", "x"), obj(TOOL, "elf"), false),
            (
                "source content",
                src("a.hwdb", "y"),
                obj(TOOL, "elf"),
                false,
            ),
            ("tool content", src("a.hwdb", "x"), obj(TOOL, "elf2"), false),
            (
                "tool path",
                src("a.hwdb", "x"),
                obj("/usr/bin/x", "elf"),
                false,
            ),
        ];
        for (what, s, o, same) in cases {
            assert_eq!(key(&s, [o].iter()) == base, same, "{what}");
        }
    }

    #[test]
    fn cache_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("hwdb");
        assert!(load(&cache, "k").is_none());
        let bin = hwdb_bin(1000);
        store(&cache, "k", &bin).unwrap();
        assert_eq!(load(&cache, "k").as_deref(), Some(bin.as_slice()));
        // A damaged entry is a miss, so the tool runs again.
        std::fs::write(entry_path(&cache, "k"), &bin[..500]).unwrap();
        assert!(load(&cache, "k").is_none());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["k.bin"]);
    }
}
