//! Profile loading: the shipped profiles, inheritance, and errors with
//! `file:line:column`.

use std::path::{Path, PathBuf};

use super::*;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-profile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write profile");
    p
}

const PARENT: &str = "name: parent\nversion: \"1\"\npackages:\n  include: [systemd, sudo]\n";

#[test]
fn embedded_default_loads() {
    let p = Profile::load(None, &Overrides::default()).expect("default profile");
    assert_eq!(p.name, "basalt-qemu");
    assert_eq!(p.distribution.suite, "trixie");
    for pkg in [
        "linux-image-amd64",
        "systemd",
        "udev",
        "openssh-server",
        "etcd-server",
        "etcd-client",
        "docker.io",
    ] {
        assert!(p.packages.iter().any(|x| x == pkg), "{pkg} missing");
    }
    assert_eq!(p.disk.esp, 1 << 30);
    assert_eq!(p.os_release["ID"], "basalt");
    assert_eq!(p.os_release["PRETTY_NAME"], "Basalt 0.1.0 (Debian trixie)");
    // The parent's overlays first, then the QEMU profile's own.
    assert_eq!(
        p.overlays,
        vec![
            Location::Embedded("overlays/base".into()),
            Location::Embedded("overlays/qemu".into())
        ]
    );
}

#[test]
fn shipped_profiles_on_disk_match_embedded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/qemu.yaml");
    let disk = Profile::load(Some(&dir), &Overrides::default()).expect("on-disk default");
    let emb = Profile::load(None, &Overrides::default()).expect("embedded");
    assert_eq!(disk.packages, emb.packages);
    assert_eq!(disk.os_release, emb.os_release);
}

#[test]
fn overrides_apply() {
    let ov = Overrides {
        version: Some("9.9".into()),
        mirror: Some("file:///srv/mirror".into()),
    };
    let p = Profile::load(None, &ov).expect("load");
    assert_eq!(p.version, "9.9");
    assert_eq!(p.os_release["VERSION_ID"], "9.9");
    assert_eq!(p.os_release["IMAGE_VERSION"], "9.9");
    assert_eq!(p.distribution.mirror.as_deref(), Some("file:///srv/mirror"));
}

#[test]
fn inheritance_merges() {
    let d = scratch("merge");
    write(&d, "parent.yaml", PARENT);
    let child = write(
        &d,
        "child.yaml",
        "extends: parent.yaml\nname: child\npackages:\n  include: [curl]\n  exclude: [sudo]\ndisk:\n  usr: 512MiB\n",
    );
    let p = Profile::load(Some(&child), &Overrides::default()).expect("load");
    assert_eq!(p.name, "child");
    assert_eq!(p.version, "1");
    assert_eq!(p.packages, vec!["curl", "systemd"]);
    assert_eq!(p.excluded_packages, vec!["sudo"]);
    assert_eq!(p.disk.usr, 512 << 20);
    assert_eq!(p.files.len(), 2);
}

/// Each bad profile, and the `file:line:col: key: message` prefix it must give.
#[test]
fn bad_profiles_table() {
    let d = scratch("bad");
    write(&d, "parent.yaml", PARENT);
    write(&d, "loop-a.yaml", "extends: loop-b.yaml\n");
    write(&d, "loop-b.yaml", "extends: loop-a.yaml\n");
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-top",
            "extends: parent.yaml\nnmae: x\n",
            ":2:1: (document): unknown field `nmae`",
        ),
        (
            "unknown-nested",
            "extends: parent.yaml\ndistribution:\n  suit: trixie\n",
            ":3:3: distribution: unknown field `suit`",
        ),
        (
            "bad-type",
            "extends: parent.yaml\npackages:\n  include: 5\n",
            ":3:12: packages.include: invalid type",
        ),
        (
            "bad-size",
            "extends: parent.yaml\ndisk:\n  usr: 2 parsecs\n",
            ":3:3: disk.usr: \"2 parsecs\" is not a size",
        ),
        (
            "tiny-size",
            "extends: parent.yaml\ndisk:\n  usr: 1MiB\n",
            ":3:3: disk.usr: 1.0 MiB is impossible",
        ),
        (
            "odd-size",
            "extends: parent.yaml\ndisk:\n  esp: 100000000\n",
            ":3:3: disk.esp: 95.4 MiB is impossible",
        ),
        (
            "no-name",
            "version: \"1\"\npackages:\n  include: [a]\n",
            ": name: is required",
        ),
        (
            "bad-arch",
            "extends: parent.yaml\ndistribution:\n  architecture: arm64\n",
            ":3:3: distribution.architecture: \"arm64\" is not supported",
        ),
        ("missing-parent", "extends: nope.yaml\n", "reading"),
        (
            "loop",
            "extends: loop-a.yaml\n",
            "extends: inheritance loop",
        ),
        (
            "dup-uid",
            "extends: parent.yaml\nusers:\n  - {name: a, uid: 5, gid: 5}\n  - {name: b, uid: 5, gid: 5}\n",
            ":2:1: users: users a and b share uid 5",
        ),
        (
            "user-unknown-key",
            "extends: parent.yaml\nusers:\n  - {name: a, uid: 5, gid: 5, hme: /}\n",
            "unknown field `hme`",
        ),
        (
            "rel-alt",
            "extends: parent.yaml\nalternatives:\n  iptables: /usr/sbin/x\n",
            ":3:3: alternatives.iptables: link and target must be absolute",
        ),
        (
            "bad-name",
            "extends: parent.yaml\nname: \"a b\"\n",
            ":2:1: name: may only hold",
        ),
        (
            "template",
            "extends: parent.yaml\nos_release:\n  NAME: \"{{ nope }}\"\n",
            "os_release.NAME: template error",
        ),
        (
            "no-packages",
            "name: x\nversion: \"1\"\n",
            "packages.include: no packages",
        ),
    ];
    for (tag, text, want) in cases {
        let p = write(&d, &format!("{tag}.yaml"), text);
        let err = match Profile::load(Some(&p), &Overrides::default()) {
            Ok(_) => panic!("{tag}: expected an error"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains(want),
            "{tag}: {err:?} does not contain {want:?}"
        );
    }
}
