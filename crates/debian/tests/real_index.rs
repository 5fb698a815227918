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

/// Runs `apt-get -s install` of `roots` against `packages` alone (empty status,
/// no host configuration) and returns the `name version` lines it would install.
fn apt_simulation(packages: &std::path::Path, roots: &[String], recommends: bool) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("basalt-debian-aptsim-{}", std::process::id()));
    let lists = dir.join("lists");
    std::fs::create_dir_all(lists.join("partial")).expect("creating apt lists dir");
    std::fs::create_dir_all(dir.join("cache/archives/partial")).expect("creating apt cache dir");
    std::fs::create_dir_all(dir.join("preferences.d")).expect("creating apt preferences dir");
    std::fs::write(dir.join("status"), "").expect("writing empty status");
    std::fs::write(
        dir.join("sources.list"),
        "deb [trusted=yes] file:/x trixie main\n",
    )
    .expect("writing sources.list");
    std::fs::copy(
        packages,
        lists.join("_x_dists_trixie_main_binary-amd64_Packages"),
    )
    .expect("copying Packages");
    std::fs::write(
        lists.join("_x_dists_trixie_Release"),
        "Origin: Debian\nSuite: stable\nCodename: trixie\nArchitectures: amd64\nComponents: main\n",
    )
    .expect("writing Release");
    let opt = |k: &str, v: &std::path::Path| format!("-o{k}={}", v.display());
    let out = std::process::Command::new("apt-get")
        .arg("-s")
        .arg(opt("Dir::State::status", &dir.join("status")))
        .arg(opt("Dir::State::Lists", &lists))
        .arg(opt("Dir::Etc::SourceList", &dir.join("sources.list")))
        .arg(opt(
            "Dir::Etc::PreferencesParts",
            &dir.join("preferences.d"),
        ))
        .arg(opt("Dir::Cache", &dir.join("cache")))
        .args([
            "-oDir::Etc::SourceParts=/nonexistent",
            "-oDir::Etc::Preferences=/nonexistent",
            "-oAPT::Architecture=amd64",
            "-oAPT::Architectures::=amd64",
            "-oDebug::NoLocking=1",
        ])
        .arg(if recommends {
            "--install-recommends"
        } else {
            "--no-install-recommends"
        })
        .arg("install")
        .args(roots)
        .output()
        .expect("running apt-get -s");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apt-get -s failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(" (")?;
            Some(format!("{name} {}", rest.split_whitespace().next()?))
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn matches_apt_get_simulation_on_real_index() {
    use std::io::Write;
    let Some(path) = std::env::var_os("BASALT_TEST_PACKAGES") else {
        let _ = writeln!(
            std::io::stderr(),
            "!!! SKIPPED apt comparison: set BASALT_TEST_PACKAGES to an uncompressed trixie binary-amd64 Packages file !!!"
        );
        return;
    };
    if std::process::Command::new("apt-get")
        .arg("--version")
        .output()
        .is_err()
    {
        let _ = writeln!(
            std::io::stderr(),
            "!!! SKIPPED apt comparison: apt-get is not installed !!!"
        );
        return;
    }
    let path = std::path::PathBuf::from(path);
    let text = std::fs::read_to_string(&path).expect("reading BASALT_TEST_PACKAGES");
    let index = PackageIndex::from_texts("amd64", [("Packages", text.as_str())]).expect("indexing");
    // apt does not add the essential set by itself, so our essential/required
    // additions are passed to it as explicit roots.
    for (essential, recommends) in [(false, false), (true, false), (true, true)] {
        let request = Request {
            roots: ROOTS.iter().map(|s| s.to_string()).collect(),
            arch: "amd64".into(),
            include_essential: essential,
            with_recommends: recommends,
            ..Request::default()
        };
        let ours = resolve(&index, &request).unwrap_or_else(|e| panic!("{e}"));
        let mut apt_roots = request.roots.clone();
        for r in &ours.packages {
            if r.reasons
                .iter()
                .any(|x| matches!(x, Reason::Essential | Reason::Required))
            {
                apt_roots.push(r.package.name.clone());
            }
        }
        let theirs = apt_simulation(&path, &apt_roots, recommends);
        let mine: Vec<String> = ours
            .packages
            .iter()
            .map(|r| format!("{} {}", r.package.name, r.package.version))
            .collect();
        assert_eq!(
            mine, theirs,
            "essential={essential} recommends={recommends}"
        );
        eprintln!(
            "apt-get -s agrees: {} packages (essential={essential}, recommends={recommends})",
            mine.len()
        );
    }
}
