//! The whole assembly step on synthetic packages built in code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use basalt_deb::fixture::{DebBuilder, Item, scratch_dir};
use basalt_deb::{Compression, write_tar};
use basalt_tree::{ContentStore, Entry, Kind, Tree};

use super::report::Conflict;
use super::*;

const EPOCH: i64 = 1_700_000_000;

fn debs(dir: &Path) -> Vec<(String, PathBuf)> {
    let pkgs = vec![
        DebBuilder::new("base-files")
            .symlink("bin", "usr/bin")
            .symlink("lib", "usr/lib")
            .symlink("lib64", "usr/lib64")
            .dir("usr/bin")
            .dir("usr/lib64")
            .file("usr/lib/os-release", 0o644, b"ID=debian\n")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("etc/debian_version", 0o644, b"13.0\n")
            .file("usr/share/doc/base-files/copyright", 0o644, b"(c)")
            .file("usr/share/doc/base-files/changelog.gz", 0o644, b"log")
            .entry("var/log", Item::Dir, 0o755, 0, 0)
            .entry("var/mail", Item::Dir, 0o2775, 0, 8)
            .file("var/lib/misc/state", 0o644, b"s")
            .mtime(2_000_000_000),
        DebBuilder::new("base-passwd")
            .file("usr/share/base-passwd/passwd.master", 0o644, b"root:*:0:0:root:/root:/bin/bash\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
            .file("usr/share/base-passwd/group.master", 0o644, b"root:*:0:\nshadow:*:42:\nnogroup:*:65534:\n")
            .script("postinst", "#!/bin/sh\nupdate-passwd\n"),
        // An old-style package shipping /sbin as a real directory.
        DebBuilder::new("legacy")
            .file("sbin/legacy-tool", 0o755, b"tool")
            .hardlink("sbin/legacy-alias", "sbin/legacy-tool")
            .file("bin/shipped-in-bin", 0o755, b"bin")
            .compression(Compression::Gzip),
        DebBuilder::new("openssh-server")
            .file("usr/sbin/sshd", 0o755, b"sshd")
            .file("etc/ssh/sshd_config", 0o644, b"PermitRootLogin no\n")
            .file("usr/lib/systemd/system/ssh.service", 0o644, b"[Unit]\nDescription=ssh\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n")
            .file("usr/share/man/man8/sshd.8.gz", 0o644, b"man")
            .script("postinst", "#!/bin/sh\nadduser sshd\n")
            .compression(Compression::Zstd),
        DebBuilder::new("iptables").file("usr/sbin/iptables-nft", 0o755, b"nft").file("usr/sbin/iptables-legacy", 0o755, b"legacy"),
        DebBuilder::new("ca-certificates")
            .file("usr/share/ca-certificates/mozilla/B_Root.crt", 0o644, b"-----B-----\n")
            .file("usr/share/ca-certificates/mozilla/A_Root.crt", 0o644, b"-----A-----")
            .script("postinst", "#!/bin/sh\nupdate-ca-certificates\n"),
        DebBuilder::new("linux-image")
            .file("boot/vmlinuz-6.12.0-1-amd64", 0o644, b"kernel")
            .file("usr/lib/modules/6.12.0-1-amd64/kernel/fs/ext4/ext4.ko.xz", 0o644, b"ext4")
            .file("usr/lib/modules/6.12.0-1-amd64/kernel/drivers/net/virtio_net.ko.xz", 0o644, b"vnet")
            .file("usr/lib/modules/6.12.0-1-amd64/kernel/sound/core/snd.ko.xz", 0o644, b"snd")
            .file("usr/lib/modules/6.12.0-1-amd64/modules.order", 0o644, b"order"),
        DebBuilder::new("docker.io")
            .file("usr/sbin/dockerd", 0o755, b"dockerd")
            .file("usr/lib/systemd/system/docker.service", 0o644, b"[Service]\nExecStart=/usr/sbin/dockerd\n[Install]\nWantedBy=multi-user.target\nAlso=docker.socket\n")
            .file("usr/lib/systemd/system/docker.socket", 0o644, b"[Socket]\nListenStream=/run/docker.sock\n[Install]\nWantedBy=sockets.target\n")
            .file("usr/sbin/iptables-legacy", 0o755, b"overwritten"),
    ];
    pkgs.into_iter()
        .map(|p| {
            let path = p.write_to(dir).expect("write deb");
            let name = basalt_deb::DebPackage::open(&path)
                .expect("open")
                .name()
                .expect("name");
            (name, path)
        })
        .collect()
}

fn overlay(dir: &Path) -> PathBuf {
    let o = dir.join("overlay");
    let w = |p: &str, body: &str| {
        let f = o.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, body).unwrap();
    };
    w(
        "usr/lib/systemd/system/basalt-firstboot.service",
        "[Service]\nType=oneshot\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    );
    w("etc/motd.j2", "Welcome to {{ name }} {{ version }}\n");
    w("usr/sbin/iptables-legacy", "from overlay\n");
    w("usr/lib/basalt/secret", "s\n");
    w(
        ".basalt-meta",
        "# path mode uid gid\n/usr/lib/basalt/secret 0600 0 42\n",
    );
    std::os::unix::fs::symlink("../lib/basalt/secret", o.join("usr/sbin/secret-link")).unwrap();
    o
}

fn config<'a>(dir: &Path, store: &'a ContentStore) -> AssemblyConfig<'a> {
    let os = [
        ("ID", "basalt"),
        ("NAME", "Basalt"),
        ("VERSION_ID", "1"),
        ("PRETTY_NAME", "Basalt 1"),
    ];
    AssemblyConfig {
        debs: debs(&dir.join("debs")),
        excludes: ["/usr/share/doc/**", "/usr/share/man/**"]
            .map(String::from)
            .to_vec(),
        keep: vec!["/usr/share/doc/*/copyright".into()],
        kernel_modules: Some(vec![
            "fs/ext4/**".into(),
            "drivers/net/virtio_net.ko*".into(),
        ]),
        users: vec![SysUser {
            name: "sshd".into(),
            uid: 100,
            gid: 65534,
            gecos: "sshd".into(),
            home: "/run/sshd".into(),
            shell: "/usr/sbin/nologin".into(),
        }],
        groups: vec![SysGroup {
            name: "docker".into(),
            gid: 999,
            members: vec!["sshd".into()],
        }],
        presets: Presets {
            enable: vec![
                "ssh.service".into(),
                "docker.service".into(),
                "basalt-firstboot.service".into(),
            ],
            disable: vec!["*".into()],
        },
        alternatives: vec![("/usr/sbin/iptables".into(), "/usr/sbin/iptables-nft".into())],
        overlays: vec![overlay(dir)],
        template_vars: serde_json::json!({"name": "basalt", "version": "1.2"}),
        os_release: os
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        source_date_epoch: EPOCH,
        store,
    }
}

fn text(t: &Tree, p: &str) -> String {
    match &t.get(p).unwrap_or_else(|| panic!("{p} missing")).kind {
        Kind::File(c) => String::from_utf8(c.read_all().expect("read")).expect("utf8"),
        k => panic!("{p} is {k:?}"),
    }
}

fn link(t: &Tree, p: &str) -> String {
    match &t.get(p).unwrap_or_else(|| panic!("{p} missing")).kind {
        Kind::Symlink(s) => s.clone(),
        k => panic!("{p} is {k:?}"),
    }
}

#[test]
fn assembles_every_rule() {
    let dir = scratch_dir("assemble-all");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let cfg = config(&dir, &store);
    let (t, r) = assemble(&cfg).expect("assemble");

    // packages: files, conflicts, postinst list
    assert!(r.package_files["openssh-server"].contains(&"/usr/sbin/sshd".to_string()));
    assert_eq!(
        r.conflicts,
        [Conflict {
            path: "/usr/sbin/iptables-legacy".into(),
            earlier: "iptables".into(),
            later: "docker.io".into()
        }]
    );
    assert_eq!(
        r.postinst_packages,
        ["base-passwd", "openssh-server", "ca-certificates"]
    );
    // merged /usr
    for (top, want) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/sbin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
    ] {
        assert_eq!(link(&t, top), want);
    }
    assert!(!t.contains("/lib32"));
    assert_eq!(text(&t, "/usr/sbin/legacy-tool"), "tool");
    assert_eq!(
        t.get("/usr/sbin/legacy-alias").unwrap().kind,
        Kind::HardLink("/usr/sbin/legacy-tool".into())
    );
    assert_eq!(text(&t, "/usr/bin/shipped-in-bin"), "bin");
    // /etc → factory + tmpfiles; /var dropped
    assert!(!t.contains("/etc"));
    let f = "/usr/share/factory/etc";
    assert_eq!(
        text(&t, &format!("{f}/ssh/sshd_config")),
        "PermitRootLogin no\n"
    );
    let tmpfiles = text(&t, "/usr/lib/tmpfiles.d/basalt-etc.conf");
    for name in [
        "alternatives",
        "debian_version",
        "group",
        "gshadow",
        "motd",
        "os-release",
        "passwd",
        "shadow",
        "ssh",
        "ssl",
    ] {
        assert!(
            tmpfiles.contains(&format!("C /etc/{name} - - - - {f}/{name}\n")),
            "{name}: {tmpfiles}"
        );
    }
    assert!(!t.contains("/var"));
    assert_eq!(r.var_dropped, ["/var/lib/misc/state"]);
    // users
    assert!(
        text(&t, &format!("{f}/passwd"))
            .contains("sshd:x:100:65534:sshd:/run/sshd:/usr/sbin/nologin\n")
    );
    assert!(text(&t, &format!("{f}/group")).contains("docker:x:999:sshd\n"));
    assert!(
        text(&t, &format!("{f}/shadow"))
            .contains(&format!("sshd:!*:{}:0:99999:7:::\n", EPOCH / 86400))
    );
    assert!(
        text(&t, "/usr/lib/sysusers.d/basalt.conf")
            .contains("u sshd 100:65534 \"sshd\" /run/sshd /usr/sbin/nologin\n")
    );
    // alternatives
    assert_eq!(link(&t, "/usr/sbin/iptables"), "/etc/alternatives/iptables");
    assert_eq!(
        link(&t, &format!("{f}/alternatives/iptables")),
        "/usr/sbin/iptables-nft"
    );
    // presets and enablement links
    let preset = text(&t, "/usr/lib/systemd/system-preset/10-basalt.preset");
    assert!(preset.contains("enable ssh.service\nenable docker.service\nenable basalt-firstboot.service\ndisable *\n"), "{preset}");
    let u = "/usr/lib/systemd/system";
    assert_eq!(
        link(&t, &format!("{u}/multi-user.target.wants/ssh.service")),
        "../ssh.service"
    );
    assert_eq!(link(&t, &format!("{u}/sshd.service")), "ssh.service");
    assert_eq!(
        link(&t, &format!("{u}/sockets.target.wants/docker.socket")),
        "../docker.socket"
    );
    assert_eq!(
        link(
            &t,
            &format!("{u}/multi-user.target.wants/basalt-firstboot.service")
        ),
        "../basalt-firstboot.service"
    );
    assert_eq!(
        r.enabled_units,
        [
            "ssh.service",
            "docker.service",
            "docker.socket",
            "basalt-firstboot.service"
        ]
    );
    // CA bundle
    assert_eq!(
        text(&t, &format!("{f}/ssl/certs/ca-certificates.crt")),
        "-----A-----\n-----B-----\n"
    );
    assert_eq!(r.ca_certificates, 2);
    // excludes and modules
    assert!(t.contains("/usr/share/doc/base-files/copyright"));
    assert!(
        !t.contains("/usr/share/doc/base-files/changelog.gz") && !t.contains("/usr/share/man/man8")
    );
    let k = "/usr/lib/modules/6.12.0-1-amd64";
    assert!(
        t.contains(&format!("{k}/kernel/fs/ext4/ext4.ko.xz"))
            && t.contains(&format!("{k}/modules.order"))
    );
    assert!(!t.contains(&format!("{k}/kernel/sound")));
    assert_eq!(r.modules_removed, 1);
    // os-release
    assert_eq!(
        text(&t, "/usr/lib/os-release"),
        "ID=\"basalt\"\nNAME=\"Basalt\"\nPRETTY_NAME=\"Basalt 1\"\nVERSION_ID=\"1\"\n"
    );
    assert_eq!(link(&t, &format!("{f}/os-release")), "/usr/lib/os-release");
    // overlays: template, override, metadata, symlink
    assert_eq!(text(&t, &format!("{f}/motd")), "Welcome to basalt 1.2\n");
    assert!(!t.contains(&format!("{f}/motd.j2")));
    assert_eq!(text(&t, "/usr/sbin/iptables-legacy"), "from overlay\n");
    let secret = t.get("/usr/lib/basalt/secret").unwrap();
    assert_eq!((secret.mode, secret.uid, secret.gid), (0o600, 0, 42));
    assert_eq!(link(&t, "/usr/sbin/secret-link"), "../lib/basalt/secret");
    assert_eq!(r.overlay_files, 4);
    // mtimes clamped
    assert!(t.iter().all(|(_, e)| e.mtime <= EPOCH));
    assert_eq!(t.get("/usr/lib/os-release").unwrap().mtime, EPOCH);
    assert_eq!(t.get("/usr/sbin/sshd").unwrap().mtime, 1_600_000_000);
    assert_eq!(r.entries, t.len());

    // Determinism: a second run gives the same tree and the same tar bytes.
    let (t2, r2) = assemble(&config(&dir.join("again"), &store)).expect("assemble again");
    assert_eq!(r.package_files, r2.package_files);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    write_tar(&t, &mut a).expect("tar");
    write_tar(&t2, &mut b).expect("tar");
    assert!(a == b, "two assemblies differ");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_name_the_problem() {
    let dir = scratch_dir("assemble-errors");
    let store = ContentStore::new(dir.join("store")).expect("store");
    type Tweak = fn(&mut AssemblyConfig, &Path);
    let cases: Vec<(&str, Tweak, &str)> = vec![
        (
            "alternative",
            |c, _| {
                c.alternatives.push((
                    "/usr/sbin/ip6tables".into(),
                    "/usr/sbin/ip6tables-nft".into(),
                ))
            },
            "the target /usr/sbin/ip6tables-nft does not exist",
        ),
        (
            "unit",
            |c, _| c.presets.enable.push("etcd.service".into()),
            "cannot enable unit etcd.service: no unit file",
        ),
        (
            "alias",
            |c, _| c.presets.enable = vec!["sshd.service".into()],
            "it is an Alias= of ssh.service",
        ),
        (
            "template",
            |c, d| {
                let o = d.join("bad-overlay/etc");
                std::fs::create_dir_all(&o).unwrap();
                std::fs::write(o.join("hosts.j2"), "{{ hostname }}\n").unwrap();
                c.overlays.push(d.join("bad-overlay"));
            },
            "bad-overlay/etc/hosts.j2:1: undefined value",
        ),
        (
            "name",
            |c, _| c.debs[0].0 = "base-filez".into(),
            "is package \"base-files\", but the install list calls it \"base-filez\"",
        ),
        (
            "group",
            |c, _| c.groups[0].members.push("ghost".into()),
            "member \"ghost\" is not a user",
        ),
        (
            "modules",
            |c, _| c.debs.retain(|(n, _)| n != "linux-image"),
            "kernel_modules is set but the tree has no",
        ),
        (
            "corrupt deb",
            |c, d| {
                let p = d.join("cut.deb");
                let bytes = std::fs::read(&c.debs[3].1).unwrap();
                std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
                c.debs[3].1 = p;
            },
            "reading package openssh-server: ",
        ),
    ];
    for (what, tweak, want) in cases {
        let sub = dir.join(what);
        let mut cfg = config(&sub, &store);
        tweak(&mut cfg, &sub);
        let err = assemble(&cfg).map(|_| ()).expect_err(what);
        let msg = format!("{err:#}");
        assert!(msg.contains(want), "{what}: {msg}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn empty_etc_and_var_are_fine() {
    let dir = scratch_dir("assemble-min");
    let store = ContentStore::new(dir.join("store")).expect("store");
    let deb = DebBuilder::new("tiny")
        .file("usr/bin/true", 0o755, b"t")
        .write_to(&dir)
        .expect("deb");
    let cfg = AssemblyConfig {
        debs: vec![("tiny".into(), deb)],
        excludes: vec![],
        keep: vec![],
        kernel_modules: None,
        users: vec![],
        groups: vec![],
        presets: Presets::default(),
        alternatives: vec![],
        overlays: vec![],
        template_vars: serde_json::Value::Null,
        os_release: [("ID".to_string(), "tiny".to_string())].into(),
        source_date_epoch: 0,
        store: &store,
    };
    let (t, r) = assemble(&cfg).expect("assemble");
    assert!(t.iter().all(|(_, e)| e.mtime == 0));
    assert_eq!(
        r.factory_etc,
        ["group", "gshadow", "os-release", "passwd", "shadow"]
    );
    assert!(
        t.get("/usr/share/factory/etc/passwd")
            .is_some_and(|e| matches!(e.kind, Kind::File(ref c) if c.is_empty()))
    );
    assert!(!t.contains("/usr/lib/sysusers.d/basalt.conf"));
    let _ = Entry::dir(0);
    std::fs::remove_dir_all(&dir).ok();
}
