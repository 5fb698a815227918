//! The default image, built once per test binary and shared by every test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Fixed build time, as the reproducibility test uses.
pub const EPOCH: &str = "1767225600";

pub struct Built {
    pub dir: PathBuf,
    pub image: PathBuf,
    pub manifest: Value,
}

impl Built {
    /// (offset, size) in bytes of a GPT partition named in the manifest.
    pub fn partition(&self, name: &str) -> (u64, u64) {
        let parts = self.manifest["partitions"]
            .as_array()
            .expect("manifest partitions");
        let p = parts
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no partition {name} in the manifest"));
        (
            p["offset"].as_u64().expect("offset"),
            p["size"].as_u64().expect("size"),
        )
    }

    pub fn usr_root_hash(&self) -> String {
        self.manifest["usr"]["root_hash"]
            .as_str()
            .expect("usr.root_hash")
            .to_string()
    }
}

static BUILT: OnceLock<Built> = OnceLock::new();

/// The default image, built once for every test binary of this build: the
/// first caller builds under an exclusive file lock, later callers (in this
/// binary or another one) reuse the output while the `basalt` binary is
/// unchanged. `BASALT_BOOT_IMAGE_DIR=DIR` reuses a finished build (DIR holds
/// basalt-qemu.img and manifest.json) instead, for iterating on the tests.
pub fn built() -> &'static Built {
    BUILT.get_or_init(|| {
        let dir = match std::env::var_os("BASALT_BOOT_IMAGE_DIR") {
            Some(d) => PathBuf::from(d),
            None => shared_build(),
        };
        let image = dir.join("basalt-qemu.img");
        assert!(image.is_file(), "{} missing", image.display());
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(dir.join("manifest.json")).expect("reading manifest.json"),
        )
        .expect("parsing manifest.json");
        Built {
            dir,
            image,
            manifest,
        }
    })
}

/// What identifies the `basalt` binary the shared image was built with.
fn binary_stamp() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_basalt"));
    let meta = std::fs::metadata(bin).expect("stat basalt");
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{} {} {mtime}\n", bin.display(), meta.len())
}

fn shared_build() -> PathBuf {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot-image");
    std::fs::create_dir_all(&work).expect("creating the build dir");
    let lock = std::fs::File::create(work.join(".lock")).expect("creating the build lock");
    lock.lock().expect("locking the shared build");
    let out_dir = work.join("out");
    let stamp = work.join("stamp");
    let want = binary_stamp();
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str())
        && out_dir.join("manifest.json").is_file()
    {
        eprintln!(
            "boot tests: reusing the default image in {}",
            out_dir.display()
        );
        return out_dir;
    }
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_dir_all(&out_dir);
    let start = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(["build", "-o", "out"])
        .current_dir(&work)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("running basalt build");
    assert!(
        out.status.success(),
        "basalt build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "boot tests: built the default image in {:.0?}",
        start.elapsed()
    );
    std::fs::write(&stamp, want).expect("writing the build stamp");
    out_dir
}

/// A private, sparse copy of the image, optionally grown by `grow` bytes
/// (as a user would enlarge the disk before the first boot).
pub fn copy_image(src: &Path, dst: &Path, grow: u64) {
    let st = Command::new("cp")
        .args(["--sparse=always", "--"])
        .arg(src)
        .arg(dst)
        .status()
        .expect("cp");
    assert!(st.success(), "copying {} failed", src.display());
    if grow > 0 {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dst)
            .expect("opening the copy");
        let len = f.metadata().expect("metadata").len();
        f.set_len(len + grow).expect("growing the copy");
    }
}

/// Flips every bit of the byte at `offset` in `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("opening for the flip");
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0xff;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}
