//! The toolbox debug container: `basalt build -p profiles/toolbox.yaml
//! --format oci`, and `toolbox` on a booted machine.
//!
//! - BASALT_NETWORK_TESTS=1: builds the toolbox OCI archive (twice: the
//!   bytes must match), checks its layout and blobs, refuses a disk format
//!   for the kernel-less profile; with a reachable docker daemon on the host,
//!   `docker load` + `docker run ... strace -V` (skipped loudly otherwise).
//! - BASALT_TOOLBOX_TESTS=1 in addition (not yet in CI): boots the default image with an
//!   Ignition config whose /etc/basalt/toolbox.conf points TOOLBOX_URL at the
//!   archive served over HTTP on the host's loopback (10.0.2.2 from the
//!   guest), then over ssh: `toolbox strace -V`, a host file read under
//!   /media/root, and (the daemon the host may lack) `docker load` +
//!   `docker run` of the same archive in the guest.
//!
//! Needs qemu-system-x86, ovmf, openssh-client; docker.io optional (host).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::guest;
use common::image::{self, EPOCH, built};
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
/// connection) until the process ends; returns the port.
fn serve(file: PathBuf) -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("binding the HTTP server");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let file = file.clone();
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
                let body = std::fs::read(&file).unwrap_or_default();
                let head = if line.starts_with("GET ") {
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/x-tar\r\n\r\n",
                        body.len()
                    )
                } else {
                    "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".into()
                };
                let _ = c.write_all(head.as_bytes());
                if line.starts_with("GET ") {
                    let _ = c.write_all(&body);
                }
            });
        }
    });
    port
}

/// Ignition: the ssh key, and toolbox.conf naming the served archive.
fn ignition(pubkey: &str, url: &str, sha256: &str) -> String {
    let conf = format!("TOOLBOX_URL={url}\nTOOLBOX_SHA256={sha256}\n");
    let cfg = json!({
        "ignition": {"version": "3.4.0"},
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [pubkey]}]},
        "storage": {"files": [{
            "path": "/etc/basalt/toolbox.conf",
            "mode": 0o644,
            "contents": {"source": format!("data:,{}", conf.replace(':', "%3A").replace('/', "%2F").replace('\n', "%0A").replace('=', "%3D"))}
        }]}
    });
    serde_json::to_string_pretty(&cfg).unwrap()
}

#[test]
fn toolbox_in_a_booted_machine() {
    if !enabled(
        "BASALT_NETWORK_TESTS",
        "toolbox boot test (needs the Debian mirror)",
    ) || !enabled(
        "BASALT_TOOLBOX_TESTS",
        "toolbox boot test (full boot to sshd; not yet seen to pass end to end)",
    ) {
        return;
    }
    for tool in ["qemu-system-x86_64", "ssh", "ssh-keygen"] {
        if !have(tool) {
            eprintln!(
                "SKIPPED toolbox boot test: {tool} is not installed (apt install qemu-system-x86 ovmf openssh-client)"
            );
            return;
        }
    }
    let start = Instant::now();
    let path = archive().clone();
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let b = built();
    let work = workdir("boot");
    let port = serve(path);
    let url = format!("http://10.0.2.2:{port}/basalt-toolbox.oci.tar");
    let (key, pubkey) = guest::keypair(&work);
    let cfg = work.join("config.ign");
    std::fs::write(&cfg, ignition(&pubkey, &url, &sha)).unwrap();
    let img = work.join("disk.img");
    image::copy_image(&b.image, &img, 2 << 30);
    let mut g = guest::boot(&img, "bios", Some(&cfg), &work, "toolbox");
    let up = g
        .wait_ssh(&key, SSH_TIMEOUT)
        .unwrap_or_else(|e| panic!("toolbox boot: {e}"));
    eprintln!("toolbox tests: sshd up {up:.1?} after QEMU started");

    // First use fetches and unpacks the image, then runs the command.
    let t = Instant::now();
    let out = g.must(&key, "toolbox strace -V 2>&1");
    assert!(
        out.contains("strace -- version"),
        "toolbox strace -V: {out}"
    );
    eprintln!(
        "toolbox tests: first `toolbox strace -V` (fetch + unpack) took {:.1?}",
        t.elapsed()
    );
    // The host's root is at /media/root; the container's own /etc is the toolbox's.
    let nonce = format!("host-file-{}", std::process::id());
    g.must(
        &key,
        &format!("echo {nonce} | sudo tee /var/lib/toolbox-probe >/dev/null"),
    );
    let t = Instant::now();
    assert_eq!(
        g.must(&key, "toolbox cat /media/root/var/lib/toolbox-probe"),
        nonce
    );
    eprintln!(
        "toolbox tests: a second toolbox command took {:.1?}",
        t.elapsed()
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

    // The same archive through the guest's docker: `docker load` accepts it.
    let t = Instant::now();
    let out = g.must(
        &key,
        &format!("curl -fsS -o /var/tmp/toolbox.oci.tar {url} && docker load -i /var/tmp/toolbox.oci.tar && docker run --rm {REFERENCE} strace -V"),
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
