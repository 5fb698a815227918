//! Resolves the default Basalt package set against a real trixie Packages file.
//! Runs only when BASALT_TEST_PACKAGES names an uncompressed Packages file
//! (binary-amd64); otherwise it says loudly that it was skipped.

use std::collections::BTreeSet;
use std::time::Instant;

use basalt_debian::{PackageIndex, Reason, Request, check_closure, resolve};

const ROOTS: &[&str] = &[
    "linux-image-amd64",
    "systemd",
    "systemd-sysv",
    "udev",
    "openssh-server",
    "etcd-server",
    "etcd-client",
    "docker.io",
    "iproute2",
    "kmod",
    "e2fsprogs",
    "ca-certificates",
    "iptables",
    "sudo",
    "curl",
    "dbus",
    "systemd-resolved",
];

#[test]
fn resolves_default_set_from_real_trixie_index() {
    let Some(path) = std::env::var_os("BASALT_TEST_PACKAGES") else {
        // Written straight to stderr so the test harness does not capture it.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "!!! SKIPPED real_index: set BASALT_TEST_PACKAGES to an uncompressed trixie binary-amd64 Packages file to run it !!!"
        );
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (it must be the uncompressed Packages file)",
            path.to_string_lossy()
        )
    });
    let t0 = Instant::now();
    let index = PackageIndex::from_texts("amd64", [("Packages", text.as_str())])
        .expect("indexing the real Packages file");
    let parse_time = t0.elapsed();
    let request = Request {
        roots: ROOTS.iter().map(|s| s.to_string()).collect(),
        arch: "amd64".into(),
        include_essential: true,
        ..Request::default()
    };
    let t1 = Instant::now();
    let resolution = resolve(&index, &request).unwrap_or_else(|e| panic!("{e}"));
    let resolve_time = t1.elapsed();
    let again = resolve(&index, &request).expect("second resolution");
    assert_eq!(resolution, again, "resolution must be deterministic");

    let problems = check_closure(
        resolution.packages.iter().map(|r| &r.package),
        "amd64",
        &BTreeSet::new(),
    );
    assert!(problems.is_empty(), "inconsistent set: {problems:#?}");
    let names: BTreeSet<&str> = resolution.names().collect();
    for must in [
        "linux-image-amd64",
        "systemd",
        "udev",
        "openssh-server",
        "etcd-server",
        "etcd-client",
        "docker.io",
        "containerd",
        "runc",
        "libc6",
        "bash",
        "coreutils",
        "dpkg",
    ] {
        assert!(names.contains(must), "{must} missing from the resolved set");
    }
    for p in &resolution.packages {
        assert!(!p.reasons.is_empty(), "{} has no reason", p.package.name);
        assert!(p.package.architecture == "amd64" || p.package.architecture == "all");
    }
    let essential = index
        .packages()
        .iter()
        .filter(|p| p.essential)
        .map(|p| p.name.as_str());
    for e in essential {
        assert!(names.contains(e), "essential {e} missing");
        let r = resolution.get(e).expect("essential package present");
        assert!(
            r.reasons.contains(&Reason::Essential),
            "{e} lacks the essential reason"
        );
    }
    let with_rec = Request {
        with_recommends: true,
        ..request.clone()
    };
    let t2 = Instant::now();
    let rec = resolve(&index, &with_rec).unwrap_or_else(|e| panic!("{e}"));
    let rec_time = t2.elapsed();
    assert!(rec.packages.len() > resolution.packages.len());
    let problems = check_closure(
        rec.packages.iter().map(|r| &r.package),
        "amd64",
        &BTreeSet::new(),
    );
    assert!(
        problems.is_empty(),
        "inconsistent set with recommends: {problems:#?}"
    );
    let kib: u64 = resolution
        .packages
        .iter()
        .filter_map(|p| p.package.installed_size)
        .sum();
    eprintln!(
        "real index: {} packages indexed in {parse_time:?}; default set: {} packages ({} MiB installed) resolved in {resolve_time:?}; \
         with recommends: {} packages in {rec_time:?} ({} unsatisfied recommends); waived {}",
        index.len(),
        resolution.packages.len(),
        kib / 1024,
        rec.packages.len(),
        rec.unsatisfied_recommends.len(),
        resolution.waived.len(),
    );
    for line in resolution.explain("libc6").iter().take(3) {
        eprintln!("why libc6: {line}");
    }
    for line in resolution.explain("runc") {
        eprintln!("why runc: {line}");
    }
}
