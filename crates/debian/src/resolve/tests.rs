//! Resolver tests on synthetic indices generated here.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::index::PackageIndex;

/// One Packages paragraph: `spec` is `name version arch`, `fields` extra lines.
fn stanza(spec: &str, fields: &[&str]) -> String {
    let mut parts = spec.split_whitespace();
    let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
    let arch = parts.next().unwrap_or("amd64");
    // A deterministic fake digest (FNV-1a, repeated): fixtures are never downloaded.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in spec.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let sha = format!("{h:016x}").repeat(4);
    let mut s = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: pool/{name}_{version}_{arch}.deb\nSize: 100\nSHA256: {sha}\n"
    );
    for f in fields {
        s.push_str(f);
        s.push('\n');
    }
    s.push('\n');
    s
}

fn universe() -> Vec<String> {
    vec![
        stanza(
            "base-files 13",
            &["Essential: yes", "Priority: required", "Depends: libc6"],
        ),
        stanza("libc6 2.41-1", &["Priority: optional", "Multi-Arch: same"]),
        stanza("libc6 2.41-1 i386", &["Priority: optional"]),
        stanza(
            "mawk 1.3",
            &[
                "Priority: required",
                "Provides: awk",
                "Depends: libc6 (>= 2.36)",
            ],
        ),
        stanza("gawk 5.2", &["Priority: optional", "Provides: awk"]),
        stanza("apt 3.0", &["Priority: important", "Depends: libc6, awk"]),
        // Virtual with providers of different priorities and no real package.
        stanza(
            "postfix 3.9",
            &[
                "Priority: optional",
                "Provides: mail-transport-agent",
                "Conflicts: mail-transport-agent",
            ],
        ),
        stanza(
            "exim4 4.98",
            &[
                "Priority: standard",
                "Provides: mail-transport-agent",
                "Conflicts: mail-transport-agent",
            ],
        ),
        stanza("mailer 1", &["Depends: mail-transport-agent"]),
        // Alternatives.
        stanza(
            "alt-user 1",
            &["Depends: missing-thing | second-choice, third | fourth"],
        ),
        stanza("second-choice 1 all", &[]),
        stanza("third 1", &[]),
        stanza("fourth 1", &[]),
        // Versioned provides.
        stanza("vp-user 1", &["Depends: libvirt-api (>= 2)"]),
        stanza("vp-old 1", &["Provides: libvirt-api (= 1.5)"]),
        stanza("vp-new 1", &["Provides: libvirt-api (= 2.1)"]),
        stanza("vp-unversioned 1", &["Provides: libvirt-api"]),
        // Chain error: baz -> bar -> libfoo (>= 3), only 2.1 exists.
        stanza("baz 1", &["Depends: bar"]),
        stanza("bar 1", &["Depends: libfoo (>= 3)"]),
        stanza("libfoo 2.1", &[]),
        // Recommends.
        stanza("rec-user 1", &["Recommends: rec-target, rec-missing"]),
        stanza("rec-target 1", &[]),
        // Foreign arch only.
        stanza("only-i386 1 i386", &[]),
        stanza("wants-i386 1", &["Depends: only-i386"]),
        stanza("wants-qualified 1", &["Depends: libc6:i386"]),
        // Arch restrictions in relations.
        stanza(
            "restricted 1",
            &["Depends: only-i386 [i386], third [amd64]"],
        ),
        // Conflicts: picking an alternative that does not conflict.
        stanza("c-user 1", &["Depends: c-bad | c-good"]),
        stanza("c-bad 1", &["Conflicts: third"]),
        stanza("c-good 1", &[]),
        stanza("breaker 1", &["Breaks: victim (<< 2)"]),
        stanza("victim 1", &[]),
        // :any needs Multi-Arch: allowed.
        stanza("any-user 1", &["Depends: python3:any, perl:any"]),
        stanza("python3 3.13", &["Multi-Arch: allowed"]),
        stanza("perl 5.40", &[]),
        // Real package preferred over providers.
        stanza("editor 1", &["Priority: important"]),
        stanza("vim 9", &["Priority: required", "Provides: editor"]),
        stanza("editor-user 1", &["Depends: editor"]),
        // Pins and multiple versions.
        stanza("multi 1.0", &[]),
        stanza("multi 2.0", &[]),
        stanza("openssh-server 1:10.0p1-5", &["Depends: libc6"]),
        stanza("openssh-client 1:10.0p1-5", &[]),
        stanza("initramfs-tools 0.148", &[]),
        stanza(
            "kernel 6.12",
            &["Depends: initramfs-tools | linux-initramfs-tool, kmod"],
        ),
        stanza("kmod 34", &[]),
    ]
}

fn index_of(stanzas: &[String]) -> PackageIndex {
    PackageIndex::from_texts("amd64", [("synthetic", stanzas.concat().as_str())])
        .expect("synthetic index")
}

fn request(roots: &[&str]) -> Request {
    Request {
        roots: roots.iter().map(|r| r.to_string()).collect(),
        arch: "amd64".into(),
        ..Request::default()
    }
}

fn names(res: &Resolution) -> Vec<&str> {
    res.names().collect()
}

fn run(roots: &[&str]) -> Result<Resolution, ResolveError> {
    resolve(&index_of(&universe()), &request(roots))
}

#[test]
fn selections_table() {
    // roots -> exact resolved set
    let table: &[(&[&str], &[&str])] = &[
        (&["alt-user"], &["alt-user", "second-choice", "third"]),
        (
            &["fourth", "alt-user"],
            &["alt-user", "fourth", "second-choice"],
        ),
        (&["mailer"], &["exim4", "mailer"]),
        (&["postfix", "mailer"], &["mailer", "postfix"]),
        (&["vp-user"], &["vp-new", "vp-user"]),
        (&["rec-user"], &["rec-user"]),
        (&["restricted"], &["restricted", "third"]),
        (&["third", "c-user"], &["c-good", "c-user", "third"]),
        (&["c-user"], &["c-bad", "c-user"]),
        (&["editor-user"], &["editor", "editor-user"]),
        (&["vim", "editor-user"], &["editor-user", "vim"]),
        (&["multi"], &["multi"]),
        (&["apt"], &["apt", "libc6", "mawk"]),
        (&["gawk", "apt"], &["apt", "gawk", "libc6"]),
        (&["third | fourth"], &["third"]),
        (&["only-i386 | fourth"], &["fourth"]),
    ];
    for (roots, want) in table {
        let res = run(roots).unwrap_or_else(|e| panic!("{roots:?}: {e}"));
        assert_eq!(names(&res), *want, "{roots:?}");
        let set = res.packages.iter().map(|r| &r.package);
        assert_eq!(
            check_closure(set, "amd64", &BTreeSet::new()),
            Vec::<String>::new(),
            "{roots:?}"
        );
        for p in &res.packages {
            assert!(
                !p.reasons.is_empty(),
                "{roots:?}: {} without reason",
                p.package.name
            );
        }
    }
}

#[test]
fn versions_pins_and_root_pins() {
    let idx = index_of(&universe());
    let version_of = |res: &Resolution, n: &str| res.get(n).unwrap().package.version.to_string();
    let res = resolve(&idx, &request(&["multi"])).unwrap();
    assert_eq!(version_of(&res, "multi"), "2.0");
    let res = resolve(&idx, &request(&["multi=1.0"])).unwrap();
    assert_eq!(version_of(&res, "multi"), "1.0");
    let res = resolve(&idx, &request(&["multi (<< 2)"])).unwrap();
    assert_eq!(version_of(&res, "multi"), "1.0");
    let mut req = request(&["multi", "third"]);
    req.pins = BTreeMap::from([
        ("multi".to_string(), Version::parse("1.0").unwrap()),
        ("gone".to_string(), Version::parse("1").unwrap()),
    ]);
    let res = resolve(&idx, &req).unwrap();
    assert_eq!(version_of(&res, "multi"), "1.0");
    assert_eq!(res.unused_pins, ["gone"]);
    req.pins
        .insert("multi".into(), Version::parse("3.0").unwrap());
    let e = resolve(&idx, &req).unwrap_err().to_string();
    assert_eq!(
        e,
        "cannot satisfy root \"multi\": it is pinned to 3.0 (lockfile), which does not fit (index has 2.0, 1.0)"
    );
}

#[test]
fn essential_and_required_sets() {
    let idx = index_of(&universe());
    let mut req = request(&[]);
    req.include_essential = true;
    let res = resolve(&idx, &req).unwrap();
    assert_eq!(names(&res), ["base-files", "libc6", "mawk", "vim"]);
    assert_eq!(res.get("base-files").unwrap().reasons, [Reason::Essential]);
    assert_eq!(res.get("mawk").unwrap().reasons, [Reason::Required]);
    assert_eq!(res.get("libc6").unwrap().package.architecture, "amd64");
    assert_eq!(
        res.explain("libc6"),
        [
            "depended on by base-files via \"libc6\" [base-files <- essential]",
            "depended on by mawk via \"libc6 (>= 2.36)\" [mawk <- priority required]",
        ]
    );
    let plain = resolve(&idx, &request(&[])).unwrap();
    assert!(plain.packages.is_empty());
}

#[test]
fn recommends_only_when_asked() {
    let idx = index_of(&universe());
    let mut req = request(&["rec-user"]);
    req.with_recommends = true;
    let res = resolve(&idx, &req).unwrap();
    assert_eq!(names(&res), ["rec-target", "rec-user"]);
    assert_eq!(
        res.explain("rec-target"),
        ["recommended by rec-user via \"rec-target\" [rec-user <- root \"rec-user\"]"]
    );
    assert_eq!(res.unsatisfied_recommends.len(), 1);
    assert!(
        res.unsatisfied_recommends[0]
            .starts_with("cannot satisfy \"rec-missing\" needed by rec-user <- root \"rec-user\""),
        "{}",
        res.unsatisfied_recommends[0]
    );
}

#[test]
fn reasons_record_provides_and_every_dependent() {
    let res = run(&["vp-user", "mailer", "apt", "base-files"]).unwrap();
    assert_eq!(
        res.get("vp-new").unwrap().reasons,
        [Reason::Dependency {
            by: "vp-user".into(),
            kind: DepKind::Depends,
            relation: "libvirt-api (>= 2)".into(),
            provides: Some("libvirt-api".into()),
        }]
    );
    assert_eq!(
        res.explain("exim4"),
        [
            "depended on by mailer via \"mail-transport-agent\" (provides mail-transport-agent) [mailer <- root \"mailer\"]"
        ]
    );
    let libc_by: Vec<String> = res
        .get("libc6")
        .unwrap()
        .reasons
        .iter()
        .map(|r| match r {
            Reason::Dependency { by, .. } => by.clone(),
            other => other.to_string(),
        })
        .collect();
    // Breadth-first: base-files (a root) is reached before mawk (a dependency).
    assert_eq!(libc_by, ["apt", "base-files", "mawk"]);
    assert_eq!(res.explain("base-files"), ["root \"base-files\""]);
    assert!(res.explain("not-there").is_empty());
}

#[test]
fn errors_name_the_chain_and_suggest() {
    let table: &[(&[&str], &str)] = &[
        (
            &["baz"],
            "cannot satisfy \"libfoo (>= 3)\" needed by bar <- baz <- root \"baz\": only 2.1 is available",
        ),
        (
            &["openssh-sever"],
            "cannot satisfy root \"openssh-sever\": no package or provider of that name in the index (did you mean \"openssh-server\"?)",
        ),
        (
            &["zzzzzzzzzzzz"],
            "cannot satisfy root \"zzzzzzzzzzzz\": no package or provider of that name in the index",
        ),
        (
            &["wants-i386"],
            "cannot satisfy \"only-i386\" needed by wants-i386 <- root \"wants-i386\": no package or provider of that name in the index",
        ),
        (
            &["wants-qualified"],
            "cannot satisfy \"libc6:i386\" needed by wants-qualified <- root \"wants-qualified\": architecture i386 is not in the index",
        ),
        (
            &["any-user"],
            "cannot satisfy \"perl:any\" needed by any-user <- root \"any-user\": \":any\" needs Multi-Arch: allowed, which perl 5.40 (amd64) does not declare",
        ),
        (
            &["third", "c-bad"],
            "cannot satisfy root \"c-bad\": candidate c-bad 1 (amd64) declares Conflicts: third, but third 1 (amd64) is in the set",
        ),
        (
            &["breaker", "victim"],
            "cannot satisfy root \"victim\": candidate victim 1 (amd64) is excluded by breaker 1 (amd64) in the set, which declares Breaks: victim (<< 2)",
        ),
        (
            &["postfix", "exim4"],
            "cannot satisfy root \"exim4\": candidate exim4 4.98 (amd64) declares Conflicts: mail-transport-agent, but postfix 3.9 (amd64) (which provides mail-transport-agent) is in the set",
        ),
        (
            &["multi", "multi (<< 2)"],
            "cannot satisfy root \"multi (<< 2)\": version 2.0 is already in the set",
        ),
        (
            &["missing-thing | libfoo (>= 9)"],
            "cannot satisfy root \"missing-thing | libfoo (>= 9)\": missing-thing: no package or provider of that name in the index; libfoo: only 2.1 is available",
        ),
        (
            &["libvirt-api (>= 3)"],
            "cannot satisfy root \"libvirt-api (>= 3)\": it is virtual and its providers give vp-old (= 1.5), vp-new (= 2.1), vp-unversioned (unversioned)",
        ),
        (
            &["a b"],
            "invalid root \"a b\": in \"a b\" at column 3: expected ',' or '|' but found 'b'",
        ),
        (
            &["a, b"],
            "invalid root \"a, b\": it holds several requirements; give each as its own root",
        ),
        (
            &["multi=1.0_x"],
            "invalid root \"multi=1.0_x\": invalid character '_' in upstream version of \"1.0_x\" (allowed: letters, digits, . + ~ - :)",
        ),
    ];
    for (roots, want) in table {
        let e = run(roots).unwrap_err();
        assert_eq!(e.to_string(), *want, "{roots:?}");
    }
    let mut req = request(&["third"]);
    req.arch = "arm64".into();
    let e = resolve(&index_of(&universe()), &req).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the request is for architecture arm64 but the index holds amd64"
    );
}

#[test]
fn excludes_waive_and_filter() {
    let idx = index_of(&universe());
    let mut req = request(&["kernel", "mailer"]);
    req.excludes = BTreeSet::from(["initramfs-tools".to_string(), "exim4".to_string()]);
    let res = resolve(&idx, &req).unwrap();
    assert_eq!(names(&res), ["kernel", "kmod", "mailer", "postfix"]);
    assert_eq!(
        res.waived,
        [Waived {
            by: "kernel".into(),
            relation: "initramfs-tools | linux-initramfs-tool".into(),
            excluded: "initramfs-tools".into(),
        }]
    );
    req.excludes.insert("postfix".into());
    let e = resolve(&idx, &req).unwrap_err().to_string();
    assert_eq!(
        e,
        "cannot satisfy \"mail-transport-agent\" needed by mailer <- root \"mailer\": its only candidates (postfix, exim4) are excluded"
    );
}

#[test]
fn deterministic_whatever_the_index_order() {
    let roots = [
        "apt",
        "mailer",
        "alt-user",
        "vp-user",
        "kernel",
        "editor-user",
        "third | any-user",
    ];
    let mut req = request(&roots);
    req.include_essential = true;
    req.with_recommends = true;
    let mut stanzas = universe();
    let first = resolve(&index_of(&stanzas), &req).unwrap();
    assert!(first.packages.len() > 10);
    let set = first.packages.iter().map(|r| &r.package);
    assert_eq!(
        check_closure(set, "amd64", &BTreeSet::new()),
        Vec::<String>::new()
    );
    for step in 0..4 {
        stanzas.reverse();
        let shift = step * 7 % stanzas.len();
        stanzas.rotate_left(shift);
        let again = resolve(&index_of(&stanzas), &req).unwrap();
        assert_eq!(again, first, "index order permutation {step}");
    }
}
