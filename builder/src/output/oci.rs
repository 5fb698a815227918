//! `--format oci`: the tree as a container image, an OCI image layout in a tar
//! archive (`<name>.oci.tar`) that `docker load` reads.
//!
//! The archive holds (OCI image-spec v1.1, "Image Layout"):
//! - `oci-layout` and `index.json`, whose one manifest carries the
//!   `org.opencontainers.image.ref.name` (the tag) and
//!   `io.containerd.image.name` (`name:tag`) annotations;
//! - `blobs/sha256/<hex>`: the image manifest, the image config (Env, Cmd,
//!   `rootfs.diff_ids`) and one layer, the container tree as a gzip'd tar;
//! - `manifest.json`, the `docker save` index (`Config`, `RepoTags`,
//!   `Layers` naming blob paths), for loaders without OCI layout support.
//!
//! The container tree is the image tree with `/etc` restored from the
//! factory copy (`/usr/share/factory/etc`, which the image boot restores at
//! boot and a container never would) and the scratch directories a root
//! filesystem needs (`/tmp`, `/var/tmp`, `/run`, ...). The name and tag come
//! from the profile's name and version. Everything is deterministic: tree
//! order, fixed gzip header (mtime 0), times from SOURCE_DATE_EPOCH.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Kind, Tree};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::assemble::factory_etc::FACTORY_ETC;
use crate::atomic::TempFile;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;

/// Media types (OCI image-spec v1.1, media-types.md).
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The `imageLayoutVersion` of the `oci-layout` file (image-layout.md).
pub const LAYOUT_VERSION: &str = "1.0.0";
/// The container's PATH (Debian's default for root).
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Directories a container root needs that the image tree leaves to boot time.
const SCRATCH_DIRS: [(&str, u32); 10] = [
    ("/dev", 0o755),
    ("/proc", 0o555),
    ("/sys", 0o555),
    ("/run", 0o755),
    ("/tmp", 0o1777),
    ("/root", 0o700),
    ("/var", 0o755),
    ("/var/tmp", 0o1777),
    ("/var/cache", 0o755),
    ("/var/log", 0o755),
];

/// The image reference (`name:tag`) for `name` and `version`, or why they
/// cannot be one (docker reference grammar: lowercase path component,
/// tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn image_reference(name: &str, version: &str) -> Result<String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let sep_ok = !name.contains("..") && !name.contains("._") && !name.contains("_.");
    if name.is_empty()
        || !name.chars().all(|c| alnum(c) || "._-".contains(c))
        || !name.starts_with(alnum)
        || !name.ends_with(alnum)
        || !sep_ok
    {
        bail!(
            "profile name {name:?} cannot be an image name: use lowercase letters and digits, \
             separated by '.', '_' or '-'"
        );
    }
    if version.is_empty()
        || version.len() > 128
        || !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        || version.starts_with(['.', '-'])
    {
        bail!(
            "version {version:?} cannot be an image tag: use up to 128 letters, digits, '_', '.' \
             or '-', not starting with '.' or '-'"
        );
    }
    Ok(format!("{name}:{version}"))
}

/// The image tree as a container root: `/etc` back from the factory copy,
/// scratch directories added. `tree` is left as it is.
pub fn container_tree(tree: &Tree, epoch: i64) -> Result<Tree> {
    let mut t = tree.clone();
    let factory: Vec<(String, Entry)> = tree
        .descendants(FACTORY_ETC)
        .map(|(k, e)| (format!("/etc{}", &k[FACTORY_ETC.len()..]), e.clone()))
        .collect();
    if !t.contains("/etc") {
        let dir = tree
            .get(FACTORY_ETC)
            .cloned()
            .unwrap_or_else(|| Entry::dir(0o755).at(epoch));
        t.insert_p("/etc", dir)
            .context("creating /etc in the container tree")?;
    }
    for (key, mut e) in factory {
        if t.contains(&key) {
            continue;
        }
        // A hard link here would precede its target in tar order: copy the file.
        if let Kind::HardLink(target) = &e.kind {
            e = tree
                .get(target)
                .cloned()
                .with_context(|| format!("{key}: hard link target {target} is missing"))?;
        }
        t.insert_p(&key, e)
            .with_context(|| format!("restoring {key} from the factory /etc"))?;
    }
    for (dir, mode) in SCRATCH_DIRS {
        match t.get(dir) {
            Some(e) if e.is_dir() => {}
            Some(e) => bail!("{dir} is a {} in the tree, not a directory", e.kind.name()),
            None => t
                .insert_p(dir, Entry::dir(mode).at(epoch))
                .with_context(|| format!("creating {dir}"))?,
        }
    }
    t.validate().context("checking the container tree")?;
    Ok(t)
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A blob's descriptor fields: `sha256:<hex>` digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub hex: String,
    pub size: u64,
}

impl Blob {
    fn of(bytes: &[u8]) -> Blob {
        Blob {
            hex: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.hex)
    }
    fn path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }
}

/// Write the container tree's layer (gzip'd tar) to `dest`; returns the
/// blob (compressed) and the diff id (sha256 of the uncompressed tar).
fn write_layer(tree: &Tree, dest: &Path) -> Result<(Blob, String)> {
    let f = std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let outer = Hashing {
        inner: BufWriter::with_capacity(1 << 20, f),
        hash: Sha256::new(),
        len: 0,
    };
    // flate2's GzEncoder writes a fixed header (mtime 0, no name): deterministic.
    let gz = flate2::write::GzEncoder::new(outer, flate2::Compression::default());
    let mut inner = Hashing {
        inner: gz,
        hash: Sha256::new(),
        len: 0,
    };
    basalt_deb::write_tar(tree, &mut inner).context("writing the layer tar")?;
    let diff_id = format!("sha256:{}", hex::encode(inner.hash.finalize()));
    let mut outer = inner
        .inner
        .finish()
        .context("finishing the layer gzip stream")?;
    outer.flush().context("flushing the layer")?;
    let blob = Blob {
        hex: hex::encode(outer.hash.finalize()),
        size: outer.len,
    };
    let f = outer
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the layer")?;
    f.sync_all().context("syncing the layer")?;
    Ok((blob, diff_id))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (RFC 3339, UTC).
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The JSON documents of the image, given its layer.
pub struct Documents {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
    pub docker_manifest: Vec<u8>,
}

/// The container's default command: bash, else sh.
pub fn default_shell(tree: &Tree) -> Result<&'static str> {
    for (shell, key) in [("/bin/bash", "/usr/bin/bash"), ("/bin/sh", "/usr/bin/sh")] {
        if tree.contains(key) {
            return Ok(shell);
        }
    }
    bail!("the tree has no /usr/bin/bash or /usr/bin/sh for the container's default command")
}

/// Plan the config, manifest and indexes for one layer.
pub fn documents(
    reference: &str,
    layer: &Blob,
    diff_id: &str,
    shell: &str,
    epoch: i64,
) -> Result<Documents> {
    let created = rfc3339(epoch);
    let tag = reference
        .rsplit_once(':')
        .map(|(_, t)| t)
        .context("image reference without a tag")?;
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [PATH_ENV],
            "Cmd": [shell],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "basalt build --format oci" }],
    });
    let config = serde_json::to_vec(&config).context("serialising the image config")?;
    let config_blob = Blob::of(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": config_blob.digest(),
            "size": config_blob.size,
        },
        "layers": [{
            "mediaType": MEDIA_LAYER_GZIP,
            "digest": layer.digest(),
            "size": layer.size,
        }],
        "annotations": { "org.opencontainers.image.created": created },
    });
    let manifest = serde_json::to_vec(&manifest).context("serialising the image manifest")?;
    let manifest_blob = Blob::of(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_blob.digest(),
            "size": manifest_blob.size,
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    let docker_manifest = json!([{
        "Config": config_blob.path(),
        "RepoTags": [reference],
        "Layers": [layer.path()],
    }]);
    Ok(Documents {
        config,
        manifest,
        index: serde_json::to_vec(&index).context("serialising index.json")?,
        docker_manifest: serde_json::to_vec(&docker_manifest)
            .context("serialising manifest.json")?,
    })
}

/// The archive's own tree: layout files and blobs, in tree order.
fn archive_tree(docs: &Documents, layer: (&Blob, Content), epoch: i64) -> Result<Tree> {
    let mut t = Tree::new();
    if let Some(root) = t.get_mut("/") {
        root.mtime = epoch;
    }
    let file = |c: Content| Entry::file(0o644, c).at(epoch);
    let bytes = |b: &[u8]| file(Content::from_bytes(b.to_vec()));
    t.mkdir_p("/blobs/sha256", epoch)?;
    let layout = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
    t.insert("/oci-layout", bytes(layout.as_bytes()))?;
    t.insert("/index.json", bytes(&docs.index))?;
    t.insert("/manifest.json", bytes(&docs.docker_manifest))?;
    for doc in [&docs.config, &docs.manifest] {
        t.insert(&format!("/{}", Blob::of(doc).path()), bytes(doc))?;
    }
    t.insert(&format!("/{}", layer.0.path()), file(layer.1))?;
    Ok(t)
}

/// Write `OUTDIR/<name>.oci.tar` from the image tree.
pub fn write(
    profile: &Profile,
    tree: &Tree,
    out: &Path,
    work: &Path,
    epoch: i64,
    manifest: &mut Manifest,
) -> Result<()> {
    let reference = image_reference(&profile.name, &profile.version)?;
    let dest = out.join(format!("{}.oci.tar", profile.name));
    crate::log::step(&format!("writing {} ({reference})", dest.display()));
    write_archive(tree, &reference, &dest, work, epoch)?;
    manifest.artifacts.push(Artifact::of(&dest, "oci")?);
    Ok(())
}

/// Write the OCI archive of the image tree `tree` to `dest` (atomically);
/// `work` holds the layer while the archive is written.
pub fn write_archive(
    tree: &Tree,
    reference: &str,
    dest: &Path,
    work: &Path,
    epoch: i64,
) -> Result<()> {
    let root = container_tree(tree, epoch)?;
    let shell = default_shell(&root)?;
    let layer_path = work.join("oci-layer.tar.gz");
    let (layer, diff_id) = write_layer(&root, &layer_path).context("writing the image layer")?;
    let docs = documents(reference, &layer, &diff_id, shell, epoch)?;
    let content = Content::Stored {
        path: Arc::from(layer_path.as_path()),
        len: layer.size,
    };
    let archive = archive_tree(&docs, (&layer, content), epoch)?;
    let (tmp, f) = TempFile::create(dest)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    basalt_deb::write_tar(&archive, &mut w).context("writing the OCI archive")?;
    let f = w.into_inner().context("flushing the OCI archive")?;
    f.sync_all().context("syncing the OCI archive")?;
    tmp.commit()?;
    let _ = std::fs::remove_file(&layer_path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_deb::{DirPolicy, UnpackOptions, read_tar};
    use basalt_tree::ContentStore;
    use std::io::Read;

    const EPOCH: i64 = 1_767_225_600;

    #[test]
    fn references() {
        let cases = [
            ("basalt-toolbox", "0.1.0", Some("basalt-toolbox:0.1.0")),
            ("a.b_c", "v1_2-rc.3", Some("a.b_c:v1_2-rc.3")),
            ("Toolbox", "1", None),
            ("-toolbox", "1", None),
            ("toolbox-", "1", None),
            ("a..b", "1", None),
            ("", "1", None),
            ("toolbox", "1.0+deb1", None),
            ("toolbox", ".1", None),
            ("toolbox", "-1", None),
            ("toolbox", "", None),
        ];
        for (name, version, want) in cases {
            let got = image_reference(name, version).ok();
            assert_eq!(got.as_deref(), want, "{name:?} {version:?}");
        }
        let long = "1".repeat(129);
        assert!(image_reference("t", &long).is_err());
        assert!(image_reference("t", &long[..128]).is_ok());
    }

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (EPOCH, "2026-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(rfc3339(secs), want, "{secs}");
        }
    }

    fn f(s: &str) -> Entry {
        Entry::file(0o644, Content::from_bytes(s.as_bytes().to_vec())).at(EPOCH)
    }

    /// A small image tree: factory /etc (with a hard link), bash, /var gone.
    fn image_tree() -> Tree {
        let mut t = Tree::new();
        t.insert_p(
            "/usr/bin/bash",
            Entry::file(0o755, Content::from_bytes(b"\x7fELF".to_vec())),
        )
        .unwrap();
        t.insert_p(
            "/usr/share/factory/etc/passwd",
            f("root:x:0:0::/root:/bin/bash\n"),
        )
        .unwrap();
        t.insert_p("/usr/share/factory/etc/ssl/a.pem", f("pem"))
            .unwrap();
        t.insert(
            "/usr/share/factory/etc/ssl/b.pem",
            Entry {
                kind: Kind::HardLink("/usr/share/factory/etc/ssl/a.pem".into()),
                ..f("")
            },
        )
        .unwrap();
        t.insert(
            "/usr/share/factory/etc/os-release",
            Entry::symlink("/usr/lib/os-release"),
        )
        .unwrap();
        t.insert("/bin", Entry::symlink("usr/bin")).unwrap();
        t
    }

    #[test]
    fn container_root() {
        let t = container_tree(&image_tree(), EPOCH).unwrap();
        let kind = |k: &str| t.get(k).map(|e| e.kind.clone());
        assert_eq!(
            kind("/etc/passwd"),
            Some(Kind::File(Content::from_bytes(
                b"root:x:0:0::/root:/bin/bash\n".to_vec()
            )))
        );
        assert_eq!(
            kind("/etc/ssl/b.pem"),
            Some(Kind::File(Content::from_bytes(b"pem".to_vec())))
        );
        assert_eq!(
            kind("/etc/os-release"),
            Some(Kind::Symlink("/usr/lib/os-release".into()))
        );
        assert!(
            t.contains("/usr/share/factory/etc/passwd"),
            "factory copy kept"
        );
        for (dir, mode) in SCRATCH_DIRS {
            let e = t.get(dir).unwrap_or_else(|| panic!("{dir} missing"));
            assert!(
                e.is_dir() && e.mode == mode && e.mtime == EPOCH,
                "{dir}: {e:?}"
            );
        }
        assert_eq!(default_shell(&t).unwrap(), "/bin/bash");

        // An /etc already in the tree wins over the factory copy.
        let mut img = image_tree();
        img.insert_p("/etc/passwd", f("mine")).unwrap();
        let t = container_tree(&img, EPOCH).unwrap();
        assert_eq!(
            t.get("/etc/passwd").unwrap().kind,
            Kind::File(Content::from_bytes(b"mine".to_vec()))
        );

        // A scratch path that is not a directory is an error, not replaced.
        let mut img = image_tree();
        img.insert("/tmp", f("x")).unwrap();
        let err = container_tree(&img, EPOCH).unwrap_err().to_string();
        assert!(err.contains("/tmp is a"), "{err}");

        let mut img = Tree::new();
        img.insert_p("/usr/lib/x", f("x")).unwrap();
        assert!(default_shell(&container_tree(&img, EPOCH).unwrap()).is_err());
    }

    fn read_back(bytes: &[u8], scratch: &Path) -> Tree {
        let store = ContentStore::new(scratch).unwrap();
        let mut t = Tree::new();
        let opts = UnpackOptions {
            package: "oci".into(),
            dirs: DirPolicy::Replace,
        };
        read_tar(bytes, &mut t, &store, &opts).unwrap();
        t
    }

    fn json_at(t: &Tree, key: &str) -> serde_json::Value {
        match &t.get(key).unwrap_or_else(|| panic!("{key} missing")).kind {
            Kind::File(c) => serde_json::from_slice(&c.read_all().unwrap()).unwrap(),
            k => panic!("{key} is {k:?}"),
        }
    }

    fn blob(t: &Tree, digest: &serde_json::Value) -> Vec<u8> {
        let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        match &t.get(&format!("/blobs/sha256/{hex}")).unwrap().kind {
            Kind::File(c) => {
                let b = c.read_all().unwrap();
                assert_eq!(hex::encode(Sha256::digest(&b)), hex, "blob digest");
                b
            }
            k => panic!("blob is {k:?}"),
        }
    }

    #[test]
    fn archive_layout_and_reproducibility() {
        let dir = tempfile::tempdir().unwrap();
        let img = image_tree();
        let a = dir.path().join("a.oci.tar");
        let b = dir.path().join("b.oci.tar");
        write_archive(&img, "toolbox:1.0", &a, dir.path(), EPOCH).unwrap();
        write_archive(&img, "toolbox:1.0", &b, dir.path(), EPOCH).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap(), "two writes differ");
        assert!(
            !dir.path().join("oci-layer.tar.gz").exists(),
            "layer left behind"
        );

        let t = read_back(&bytes, &dir.path().join("s1"));
        assert_eq!(
            json_at(&t, "/oci-layout")["imageLayoutVersion"],
            LAYOUT_VERSION
        );
        let index = json_at(&t, "/index.json");
        assert_eq!(index["schemaVersion"], 2);
        let desc = &index["manifests"][0];
        assert_eq!(
            desc["annotations"]["io.containerd.image.name"],
            "toolbox:1.0"
        );
        assert_eq!(
            desc["annotations"]["org.opencontainers.image.ref.name"],
            "1.0"
        );
        let m: serde_json::Value = serde_json::from_slice(&blob(&t, &desc["digest"])).unwrap();
        assert_eq!(m["mediaType"], MEDIA_MANIFEST);
        let config_bytes = blob(&t, &m["config"]["digest"]);
        assert_eq!(m["config"]["size"], config_bytes.len());
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(config["config"]["Cmd"][0], "/bin/bash");
        assert_eq!(config["config"]["Env"][0], PATH_ENV);
        assert_eq!(config["created"], "2026-01-01T00:00:00Z");
        let layer = &m["layers"][0];
        assert_eq!(layer["mediaType"], MEDIA_LAYER_GZIP);
        let gz = blob(&t, &layer["digest"]);
        assert_eq!(layer["size"], gz.len());
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
        );
        let root = read_back(&tar, &dir.path().join("s2"));
        let want = container_tree(&img, EPOCH).unwrap();
        let keys = |t: &Tree| t.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&root), keys(&want));
        assert_eq!(root.get("/tmp").unwrap().mode, 0o1777);

        // docker save's index names the same blobs.
        let docker = json_at(&t, "/manifest.json");
        assert_eq!(docker[0]["RepoTags"][0], "toolbox:1.0");
        let hex_of = |d: &serde_json::Value| d.as_str().unwrap()[7..].to_string();
        assert_eq!(
            docker[0]["Config"],
            format!("blobs/sha256/{}", hex_of(&m["config"]["digest"]))
        );
        assert_eq!(
            docker[0]["Layers"][0],
            format!("blobs/sha256/{}", hex_of(&layer["digest"]))
        );

        // Another epoch gives other bytes (times are inputs, not the clock).
        write_archive(&img, "toolbox:1.0", &b, dir.path(), EPOCH + 1).unwrap();
        assert_ne!(bytes, std::fs::read(&b).unwrap());
    }
}
