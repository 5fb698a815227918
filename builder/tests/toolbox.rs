//! The toolbox debug container: `basalt build -p profiles/toolbox.yaml
//! --format oci`, and `toolbox` on a booted machine.
//!
//! - BASALT_NETWORK_TESTS=1: builds the toolbox OCI archive (twice: the
//!   bytes must match), checks its layout and blobs, refuses a disk format
//!   for the kernel-less profile; with a reachable docker daemon on the host,
//!   `docker load` + `docker run ... strace -V` (skipped loudly otherwise).
//! - BASALT_TOOLBOX_TESTS=1 in addition: builds a host image from the
//!   default profile with the archive baked in (an overlay holding
//!   /usr/share/basalt/toolbox.oci.tar), boots it once, and over ssh:
//!   `toolbox strace -V` from the baked image, a host file read under
//!   /media/root; then /etc/basalt/toolbox.conf points TOOLBOX_URL at the
//!   archive served over HTTP on the host's loopback (10.0.2.2 from the
//!   guest) and the toolbox is fetched (SHA-256 checked, a wrong one
//!   refused) and used again; finally the guest's docker loads the baked
//!   archive and runs it (the daemon the host may lack).
//!
//! Needs qemu-system-x86, ovmf, openssh-client; docker.io optional (host).

#[path = "common/cloud.rs"]
mod cloud;
mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::guest;
use common::image::EPOCH;
use serde_json::{Value, json};

/// The image reference `profiles/toolbox.yaml` gets (name:version).
const REFERENCE: &str = "basalt-toolbox:0.1.0";
const SSH_TIMEOUT: Duration = Duration::from_secs(600);

fn enabled(var: &str, what: &str) -> bool {
    let on = std::env::var(var).as_deref() == Ok("1");
    if !on {
        eprintln!("SKIPPED {what}: set {var}=1");
    }
    on
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/toolbox.yaml")
}

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("toolbox-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the test dir");
    d
}

fn basalt(args: &[&str], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .arg("-o")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("running basalt")
}

/// The toolbox archive, built once per test binary.
fn archive() -> &'static PathBuf {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let work = workdir("build");
        let start = Instant::now();
        let p = profile();
        let out = basalt(
            &["build", "-p", p.to_str().expect("utf-8 path"), "-f", "oci"],
            &work.join("out"),
        );
        assert!(
            out.status.success(),
            "basalt build --format oci failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = work.join("out/basalt-toolbox.oci.tar");
        eprintln!(
            "toolbox tests: built {} ({} MiB) in {:.0?}",
            path.display(),
            std::fs::metadata(&path).expect("archive").len() >> 20,
            start.elapsed()
        );
        path
    })
}

/// Member name (without `./`) → bytes, for the small members; the layer by size.
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = path.with_extension("extract");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(path)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("running tar");
    assert!(st.success(), "GNU tar cannot extract {}", path.display());
    let mut out = Vec::new();
    for name in ["oci-layout", "index.json", "manifest.json"] {
        out.push((name.to_string(), std::fs::read(dir.join(name)).unwrap()));
    }
    for e in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = format!("blobs/sha256/{}", e.file_name().to_string_lossy());
        out.push((name, std::fs::read(e.path()).unwrap()));
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn oci_archive() {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "toolbox OCI build (needs the Debian mirror)",
    ) {
        return;
    }
    let path = archive();
    let m = members(path);
    let get = |n: &str| -> &[u8] {
        &m.iter()
            .find(|(k, _)| k == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .1
    };
    for (name, bytes) in &m {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(
                sha256_hex(bytes),
                hex,
                "{name}: content does not match its name"
            );
        }
    }
    let index: Value = serde_json::from_slice(get("index.json")).unwrap();
    let desc = &index["manifests"][0];
    assert_eq!(desc["annotations"]["io.containerd.image.name"], REFERENCE);
    let digest = |v: &Value| v.as_str().unwrap()["sha256:".len()..].to_string();
    let manifest: Value =
        serde_json::from_slice(get(&format!("blobs/sha256/{}", digest(&desc["digest"])))).unwrap();
    let config: Value = serde_json::from_slice(get(&format!(
        "blobs/sha256/{}",
        digest(&manifest["config"]["digest"])
    )))
    .unwrap();
    assert_eq!(config["config"]["Cmd"], json!(["/bin/bash"]));
    let layer = get(&format!(
        "blobs/sha256/{}",
        digest(&manifest["layers"][0]["digest"])
    ));
    // The layer: gzip'd tar whose uncompressed digest is the config's diff id.
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer)
        .read_to_end(&mut tar)
        .expect("the layer is gzip");
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", sha256_hex(&tar))
    );
    let layer_tar = path.with_extension("layer.tar");
    std::fs::write(&layer_tar, &tar).unwrap();
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&layer_tar)
        .output()
        .expect("listing the layer with tar");
    let _ = std::fs::remove_file(&layer_tar);
    assert!(listing.status.success(), "GNU tar cannot list the layer");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for (want, what) in [
        ("./usr/bin/strace", "strace"),
        ("./usr/bin/tcpdump", "tcpdump"),
        ("./usr/bin/bash", "bash"),
        ("./etc/passwd", "/etc/passwd restored from the factory copy"),
        ("./tmp/", "/tmp"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().nth(5) == Some(want)),
            "the layer lacks {what} ({want})"
        );
    }
    assert!(
        !listing.contains("/usr/lib/modules/") && !listing.contains("/boot/vmlinuz"),
        "the toolbox carries a kernel"
    );

    // Reproducible: a second build gives the same bytes.
    let again = workdir("again");
    let p = profile();
    let out = basalt(
        &["build", "-p", p.to_str().unwrap(), "-f", "oci"],
        &again.join("out"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(path).unwrap()
            == std::fs::read(again.join("out/basalt-toolbox.oci.tar")).unwrap(),
        "two builds of the toolbox archive differ"
    );

    // A disk format needs a kernel: a clear error, and nothing written.
    let out = basalt(
        &["build", "-p", p.to_str().unwrap(), "-f", "raw"],
        &again.join("disk"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a raw image from a kernel-less profile"
    );
    assert!(
        err.contains("has no kernel") && err.contains("--format oci"),
        "unclear error: {err}"
    );
    assert!(!again.join("disk/basalt-toolbox.img").exists());
    let _ = std::fs::remove_dir_all(&again);

    skopeo(path);
    docker_on_host(path);
}

/// skopeo reads the archive both ways docker may: as an OCI layout
/// (index.json) and as a `docker save` archive (manifest.json), and checks
/// every blob's digest while copying it.
fn skopeo(path: &Path) {
    if !have("skopeo") {
        eprintln!(
            "SKIPPED skopeo checks of the OCI archive: skopeo is not installed (apt install skopeo)"
        );
        return;
    }
    let p = path.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("skopeo")
            .args(args)
            .output()
            .expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for transport in ["oci-archive", "docker-archive"] {
        let v: Value = serde_json::from_str(&run(&["inspect", &format!("{transport}:{p}")]))
            .expect("skopeo inspect JSON");
        assert_eq!(v["Architecture"], "amd64", "{transport}: {v}");
        assert_eq!(
            v["Layers"].as_array().map(Vec::len),
            Some(1),
            "{transport}: {v}"
        );
        assert!(
            v["Env"].as_array().is_some_and(|e| e
                .iter()
                .any(|e| e.as_str().is_some_and(|s| s.starts_with("PATH=")))),
            "{transport}: no PATH in Env: {v}"
        );
    }
    let copy = path.with_extension("copied");
    let _ = std::fs::remove_dir_all(&copy);
    run(&[
        "copy",
        "--quiet",
        &format!("oci-archive:{p}"),
        &format!("oci:{}", copy.display()),
    ]);
    let _ = std::fs::remove_dir_all(&copy);
}

/// `docker load` + `docker run` on the host, when a daemon answers.
fn docker_on_host(path: &Path) {
    let up = have("docker")
        && Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !up {
        eprintln!(
            "SKIPPED docker load on the host: no reachable docker daemon (the boot test loads the archive with the guest's docker)"
        );
        return;
    }
    let out = Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("docker")
        .args(["run", "--rm", REFERENCE, "strace", "-V"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("strace -- version"),
        "docker run {REFERENCE} strace -V: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Command::new("docker")
        .args(["image", "rm", REFERENCE])
        .output();
}

/// Serves `file` to every GET on 127.0.0.1 (HTTP/1.0, one request per
/// connection) until the process ends; returns the port and a counter of
/// the GETs served.
fn serve(file: PathBuf) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("binding the HTTP server");
    let port = l.local_addr().unwrap().port();
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&gets);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let file = file.clone();
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut line = String::new();
                let mut r = BufReader::new(c.try_clone().unwrap());
                if r.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).map_or(true, |n| n == 0) || h.trim().is_empty() {
                        break;
                    }
                }
                if !line.starts_with("GET ") {
                    let _ = c
                        .write_all(b"HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = std::fs::read(&file).unwrap_or_default();
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/x-tar\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            });
        }
    });
    (port, gets)
}

/// Ignition: only the ssh key (the toolbox needs no config to use the
/// baked image).
fn ignition(pubkey: &str) -> String {
    let cfg = json!({
        "ignition": {"version": "3.4.0"},
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [pubkey]}]}
    });
    serde_json::to_string_pretty(&cfg).unwrap()
}

/// The default host image with `archive` baked in: a profile extending
/// profiles/qemu.yaml with an overlay that holds
/// /usr/share/basalt/toolbox.oci.tar (what the README shows users).
fn baked_host_image(archive: &Path, work: &Path) -> PathBuf {
    let overlay = work.join("toolbox-overlay/usr/share/basalt");
    std::fs::create_dir_all(&overlay).unwrap();
    let baked = overlay.join("toolbox.oci.tar");
    if std::fs::hard_link(archive, &baked).is_err() {
        std::fs::copy(archive, &baked).expect("copying the archive into the overlay");
    }
    let qemu = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/qemu.yaml");
    let profile = work.join("host-with-toolbox.yaml");
    std::fs::write(
        &profile,
        format!(
            "extends: {}\noverlays:\n  - toolbox-overlay\n",
            qemu.display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let out = basalt(
        &[
            "build",
            "-p",
            profile.to_str().expect("utf-8 path"),
            "-f",
            "raw",
        ],
        &work.join("out"),
    );
    assert!(
        out.status.success(),
        "building the host image with the toolbox baked in:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "toolbox tests: built the host image with the toolbox baked in, in {:.0?}",
        start.elapsed()
    );
    let img = work.join("out/basalt-qemu.img");
    assert!(img.is_file(), "{} missing", img.display());
    img
}

#[test]
fn toolbox_in_a_booted_machine() {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "toolbox boot test (needs the Debian mirror)",
    ) || !enabled("BASALT_TOOLBOX_TESTS", "toolbox boot test (QEMU)")
    {
        return;
    }
    if !cloud::tools_present(
        "toolbox boot test",
        &[
            ("qemu-system-x86_64", "qemu-system-x86"),
            ("ssh", "openssh-client"),
            ("ssh-keygen", "openssh-client"),
        ],
    ) {
        return;
    }
    let start = Instant::now();
    let path = archive().clone();
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let work = workdir("boot");
    let img = baked_host_image(&path, &work);
    let (port, gets) = serve(path);
    let url = format!("http://10.0.2.2:{port}/basalt-toolbox.oci.tar");
    let (key, pubkey) = guest::keypair(&work);
    let cfg = work.join("config.ign");
    std::fs::write(&cfg, ignition(&pubkey)).unwrap();
    let mut g = cloud::boot(
        &img,
        &[OsStr::new("--config"), cfg.as_os_str()],
        &work,
        "toolbox",
    );
    let up = g
        .wait_ssh(&key, SSH_TIMEOUT)
        .unwrap_or_else(|e| panic!("toolbox boot: {e}"));
    eprintln!("toolbox tests: sshd up {up:.1?} after QEMU started");

    // Baked: the first use unpacks /usr/share/basalt/toolbox.oci.tar.
    let t = Instant::now();
    let out = g.must(&key, "toolbox strace -V 2>&1");
    assert!(
        out.contains("strace -- version"),
        "toolbox strace -V: {out}"
    );
    assert!(
        g.must(&key, "cat /var/lib/toolbox/source")
            .starts_with("file /usr/share/basalt/toolbox.oci.tar "),
        "the toolbox did not come from the baked archive"
    );
    eprintln!(
        "toolbox tests: first `toolbox strace -V` (unpacking the baked image) took {:.1?}",
        t.elapsed()
    );
    // The host's root is at /media/root; the container's own /etc is the toolbox's.
    let nonce = format!("host-file-{}", std::process::id());
    g.must(
        &key,
        &format!("echo {nonce} | sudo tee /var/lib/toolbox-probe >/dev/null"),
    );
    assert_eq!(
        g.must(&key, "toolbox cat /media/root/var/lib/toolbox-probe"),
        nonce
    );
    assert_eq!(
        g.must(&key, "toolbox sh -c '. /etc/os-release; echo $ID; . /media/root/usr/lib/os-release; echo $ID'"),
        "basalt-toolbox\nbasalt"
    );
    // Privileged: raw sockets work (tcpdump lists the host's interfaces).
    let ifaces = g.must(&key, "toolbox tcpdump -D 2>&1");
    assert!(ifaces.contains("lo"), "tcpdump -D in the toolbox: {ifaces}");
    // A toolbox command's exit status is the command's.
    let (ok, _, _) = g.ssh(&key, "toolbox false");
    assert!(!ok, "toolbox false succeeded");

    // From a URL: a wrong SHA-256 is refused and keeps the current rootfs,
    // the right one is fetched and replaces it.
    let conf = |sha: &str| {
        format!(
            "printf 'TOOLBOX_URL=%s\\nTOOLBOX_SHA256=%s\\n' {url} {sha} | sudo tee /etc/basalt/toolbox.conf >/dev/null"
        )
    };
    g.must(
        &key,
        &format!("sudo mkdir -p /etc/basalt && {}", conf(&"0".repeat(64))),
    );
    let (ok, _, err) = g.ssh(&key, "toolbox true");
    assert!(
        !ok && err.contains("SHA-256 mismatch"),
        "a wrong TOOLBOX_SHA256 was not refused: {err}"
    );
    g.must(&key, &conf(&sha));
    let t = Instant::now();
    let (ok, out, err) = g.ssh(&key, "toolbox cat /media/root/var/lib/toolbox-probe");
    assert!(ok && out == nonce, "toolbox from the URL: {out}\n{err}");
    assert!(err.contains(&format!("fetching {url}")), "{err}");
    assert_eq!(
        g.must(&key, "cat /var/lib/toolbox/source"),
        format!("url {url} {sha}")
    );
    assert_eq!(gets.load(Ordering::SeqCst), 2, "HTTP GETs of the archive");
    eprintln!(
        "toolbox tests: fetching + unpacking from the URL and running took {:.1?}",
        t.elapsed()
    );

    // The baked archive through the guest's docker: `docker load` accepts it.
    let t = Instant::now();
    let out = g.must(
        &key,
        &format!("docker load -i /usr/share/basalt/toolbox.oci.tar && docker run --rm {REFERENCE} strace -V"),
    );
    assert!(
        out.contains(&format!("Loaded image: {REFERENCE}")) && out.contains("strace -- version"),
        "docker load/run in the guest: {out}"
    );
    eprintln!(
        "toolbox tests: docker load + run in the guest took {:.1?}",
        t.elapsed()
    );
    g.stop();
    eprintln!("toolbox tests: boot test took {:.1?}", start.elapsed());
    let _ = std::fs::remove_dir_all(&work);
}
