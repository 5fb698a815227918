//! Hostile configs and hostile roots: nothing may be written outside the root.

mod common;
use common::*;
use std::os::unix::fs::symlink;

/// Each case gets a fresh root plus an "outside" directory next to it, and
/// may plant symlinks in the root that point outside (absolute, relative, ..).
struct Case {
    name: &'static str,
    /// (link path in root, target; "{OUT}" is replaced by the outside dir)
    plant: &'static [(&'static str, &'static str)],
    config: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "absolute symlink in an existing parent",
        plant: &[("etc/evil", "{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/evil/pwned","contents":{"source":"data:,x"}}]}}"#,
    },
    Case {
        name: "relative .. symlink in an existing parent",
        plant: &[("etc/up", "../../../../../../../../{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/up/pwned","contents":{"source":"data:,x"}}]}}"#,
    },
    Case {
        name: "final component is a symlink to an outside file",
        plant: &[("etc/motd", "{OUT}/victim")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","overwrite":true,"contents":{"source":"data:,x"}}]}}"#,
    },
    Case {
        name: "append through a symlinked final component",
        plant: &[("etc/app", "{OUT}/victim")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/app","overwrite":true,"contents":{"source":"data:,"},"append":[{"source":"data:,x"}]}]}}"#,
    },
    Case {
        name: "directory through a symlink",
        plant: &[("srv", "{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"directories":[{"path":"/srv/d/e","mode":511}]}}"#,
    },
    Case {
        name: "config link pointing outside, then a unit named through nothing",
        plant: &[],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"links":[{"path":"/etc/out","target":"{OUT}"}],"files":[{"path":"/etc/other","contents":{"source":"data:,x"}}]}}"#,
    },
    Case {
        name: "home directory is a symlink to outside",
        plant: &[("home", "{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA x"]}]}}"#,
    },
    Case {
        name: ".ssh of an existing user is a symlink to outside",
        plant: &[("root/.ssh", "{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"root","sshAuthorizedKeys":["ssh-ed25519 AAAA x"]}]}}"#,
    },
    Case {
        name: "systemd unit directory is a symlink to outside",
        plant: &[("etc/systemd", "{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"x.service","enabled":true,"contents":"[Service]\nExecStart=/x\n[Install]\nWantedBy=multi-user.target\n"}]}}"#,
    },
    Case {
        name: "hard link to an outside file via a symlink",
        plant: &[("etc/victim", "{OUT}/victim")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"links":[{"path":"/etc/h","target":"/etc/victim","hard":true}]}}"#,
    },
    Case {
        name: "cloud-config write_files through symlinks",
        plant: &[("var", "{OUT}"), ("opt", "/../../../{OUT}")],
        config: "#cloud-config\nwrite_files:\n  - path: /var/lib/x\n    content: x\n  - path: /opt/y\n    content: y\n",
    },
    Case {
        name: "/etc itself is a symlink to outside",
        plant: &[("etc2", "{OUT}")],
        config: r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc2/passwd","contents":{"source":"data:,x"}}]}}"#,
    },
];

#[test]
fn nothing_escapes_the_root() {
    for c in CASES {
        let t = fake_root();
        let outside = tempfile::tempdir().unwrap();
        let out = outside.path().display().to_string();
        std::fs::write(outside.path().join("victim"), "untouched").unwrap();
        std::fs::create_dir_all(t.path().join("root")).unwrap();
        for (p, target) in c.plant {
            let dst = t.path().join(p);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if dst.is_dir() {
                std::fs::remove_dir_all(&dst).unwrap();
            }
            symlink(target.replace("{OUT}", &out), &dst).unwrap();
        }
        let before = common::snapshot(outside.path());
        let config = c.config.replace("{OUT}", &out);
        // Success or failure are both fine; escaping is not.
        let _ = apply_text(&config, t.path());
        assert_eq!(
            before,
            common::snapshot(outside.path()),
            "case {:?} wrote outside the root",
            c.name
        );
        assert_eq!(
            std::fs::read_to_string(outside.path().join("victim")).unwrap(),
            "untouched",
            "{}",
            c.name
        );
    }
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    let t = fake_root();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    symlink(&out, t.path().join("etc/evil")).unwrap();
    let cfg = r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/evil/f","contents":{"source":"data:,x"}}]}}"#;
    // The link's target does not exist inside the root: a clear error, nothing written.
    let e = apply_text(cfg, t.path()).unwrap_err();
    assert!(
        e.contains("symlink whose target (inside the root) does not exist"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    std::fs::create_dir_all(t.path().join(out.trim_start_matches('/'))).unwrap();
    std::fs::remove_file(t.path().join("etc/.basalt-provision-failed.json")).unwrap();
    apply_text(cfg, t.path()).unwrap();
    // The absolute link resolved as if the root were "/": the file is inside the root.
    let inside = t.path().join(out.trim_start_matches('/')).join("f");
    assert_eq!(std::fs::read_to_string(inside).unwrap(), "x");
}

#[test]
fn final_symlink_is_replaced_not_followed() {
    let t = fake_root();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    symlink(&victim, t.path().join("etc/motd")).unwrap();
    let cfg = r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","overwrite":true,"contents":{"source":"data:,hello"}}]}}"#;
    apply_text(cfg, t.path()).unwrap();
    assert!(!t.path().join("etc/motd").is_symlink());
    assert_eq!(read(t.path(), "/etc/motd"), "hello");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
}

#[test]
fn hostile_names_are_rejected_at_validation() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/../../etc/x"}]}}"#,
            "\"..\" component",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"../../x.service"}]}}"#,
            "contains '/'",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"x.service","dropins":[{"name":"../../a.conf"}]}]}}"#,
            "contains '/'",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"x","homeDir":"/home/../../tmp"}]}}"#,
            "\"..\" component",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"x\nroot"}]}}"#,
            "is not valid",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"x","gecos":"a\nroot::0:0::/:/bin/sh"}]}}"#,
            "newline",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"storage":{"links":[{"path":"/l","target":"/"}],"files":[{"path":"/l/etc/passwd"}]}}"#,
            "goes through the symlink",
        ),
        (
            "#cloud-config\nwrite_files:\n  - path: /a/../../b\n",
            "\"..\" component",
        ),
        (
            "#cloud-config\ncoreos:\n  units:\n    - name: ../x.service\n",
            "contains '/'",
        ),
    ];
    for (cfg, want) in cases {
        let t = fake_root();
        let before = common::snapshot(t.path());
        let e = apply_text(cfg, t.path()).unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
        assert_eq!(
            before,
            common::snapshot(t.path()),
            "validation failures write nothing"
        );
    }
}
