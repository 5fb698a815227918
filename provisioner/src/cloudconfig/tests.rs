use super::*;
use crate::plan::*;

fn cc(body: &str) -> String {
    format!("#cloud-config\n{body}")
}

fn file<'a>(p: &'a Plan, path: &str) -> &'a FilePlan {
    p.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no file {path}"))
}

fn inline(f: &FilePlan) -> &[u8] {
    match &f.contents {
        Some(Source::Inline(b)) => b,
        other => panic!("not inline: {other:?}"),
    }
}

/// (body, expected message fragment, expected line)
const NEGATIVE: &[(&str, &str, usize)] = &[
    ("hostname: [a]\n", "hostname must be a string", 2),
    ("hostname: \"bad host\"\n", "not a valid host name", 2),
    ("users: {name: x}\n", "users must be a list", 2),
    ("users:\n  - passwd: x\n", "user has no name", 3),
    ("users:\n  - name: \"9\"\n", "is not valid", 3),
    (
        "users:\n  - name: a\n  - name: a\n",
        "duplicate user \"a\"",
        4,
    ),
    (
        "users:\n  - name: a\n    homedir: rel\n",
        "is not absolute",
        4,
    ),
    (
        "users:\n  - name: a\n    system: maybe\n",
        "must be a boolean",
        4,
    ),
    (
        "users:\n  - name: a\n    passwd: \"x:y\"\n",
        "contains ':'",
        4,
    ),
    (
        "users:\n  - name: a\n    lock_passwd: true\n",
        "lock_passwd is not supported",
        4,
    ),
    (
        "users:\n  - name: a\n    uid: abc\n",
        "is not a valid user id",
        4,
    ),
    ("write_files:\n  - content: x\n", "has no path", 3),
    ("write_files:\n  - path: rel/x\n", "is not absolute", 3),
    (
        "write_files:\n  - path: /a\n    permissions: '0999'\n",
        "is not an octal mode",
        4,
    ),
    (
        "write_files:\n  - path: /a\n    encoding: rot13\n",
        "unknown encoding \"rot13\"",
        4,
    ),
    (
        "write_files:\n  - path: /a\n    encoding: b64\n    content: '!!!'\n",
        "not valid base64",
        5,
    ),
    (
        "write_files:\n  - path: /a\n    encoding: gzip\n    content: plain\n",
        "not valid gzip",
        5,
    ),
    (
        "write_files:\n  - path: /a\n  - path: /a\n",
        "duplicate path",
        4,
    ),
    (
        "hostname: h1\nwrite_files:\n  - path: /etc/hostname\n",
        "duplicate path \"/etc/hostname\"",
        4,
    ),
    (
        "write_files:\n  - path: /a\n    encoding: nope\n  - path: /a\n  - path: /b\n  - path: /b\n",
        "duplicate path \"/b\"",
        7,
    ),
    (
        "write_files:\n  - path: /a\n    owner: 'a b'\n",
        "must be \"user\" or \"user:group\"",
        4,
    ),
    (
        "write_files:\n  - path: /a\n    append: true\n",
        "append is not supported",
        4,
    ),
    ("manage_etc_hosts: localhost\n", "needs `hostname`", 2),
    (
        "manage_etc_hosts: maybe\n",
        "must be \"localhost\" or a boolean",
        2,
    ),
    (
        "coreos:\n  units:\n    - name: foo\n",
        "no valid unit type suffix",
        4,
    ),
    (
        "coreos:\n  units:\n    - content: x\n",
        "unit has no name",
        4,
    ),
    (
        "coreos:\n  units:\n    - name: a.service\n      command: explode\n",
        "command \"explode\" is not one of",
        5,
    ),
    (
        "coreos:\n  units:\n    - name: a.service\n      content: \"ExecStart=/x\"\n",
        "outside of any [Section]",
        5,
    ),
    (
        "coreos:\n  units:\n    - name: a.service\n      drop_ins:\n        - name: x\n",
        "must end in \".conf\"",
        6,
    ),
    (
        "coreos:\n  units:\n    - name: a.service\n    - name: a.service\n",
        "duplicate unit",
        5,
    ),
    (
        "coreos:\n  units:\n    - name: b.service\n    - name: a.service\n      mask: true\n    - name: b.service\n",
        "duplicate unit \"b.service\"",
        7,
    ),
    (
        "coreos:\n  units:\n    - name: e.network\n      enable: true\n",
        "networkd files cannot be enabled",
        4,
    ),
    (
        "coreos:\n  fleet:\n    metadata: x\n",
        "coreos.fleet is not supported",
        3,
    ),
    (
        "coreos:\n  flannel:\n    etcd_prefix: x\n",
        "coreos.flannel is not supported",
        3,
    ),
    (
        "coreos:\n  update:\n    reboot_strategy: sometimes\n",
        "is not one of reboot, etcd-lock",
        4,
    ),
    (
        "coreos:\n  update:\n    server: ftp://x\n",
        "is not an http(s) URL",
        4,
    ),
    ("coreos:\n  etcd2:\n    name: [x]\n", "must be a string", 4),
    ("coreos: [1]\n", "coreos must be a mapping", 2),
    ("runcmd:\n  - []\n", "command list is empty", 3),
    ("runcmd: echo\n", "runcmd must be a list", 2),
    ("mounts:\n  - [sdb]\n", "at least device and mountpoint", 3),
    ("mounts:\n  - [sdb, relative]\n", "mount point", 3),
    (
        "hostname: a\nhostname: b\n",
        "duplicate key \"hostname\"",
        3,
    ),
    ("a: [1, 2\n", "invalid YAML", 0),
    ("- just\n- a list\n", "must be a mapping of keys", 2),
];

#[test]
fn negative_configs() {
    for (i, (body, want, line)) in NEGATIVE.iter().enumerate() {
        let r = match parse(&cc(body)) {
            Ok(_) => panic!("case {i} ({body:?}) parsed but should fail with {want:?}"),
            Err(r) => r,
        };
        let Some(d) = r.errors().find(|d| d.message.contains(want)) else {
            panic!("case {i}: no error containing {want:?}:\n{}", r.render("t"));
        };
        if *line != 0 {
            assert_eq!(d.line, *line, "case {i}: {}", r.render("t"));
        }
        assert!(d.col >= 1, "case {i}");
    }
}

#[test]
fn unknown_keys_are_warnings_with_position() {
    let (_, w) = parse(&cc("hostname: h\nfrobnicate: 1\nusers:\n  - name: a\n    colour: blue\ncoreos:\n  units:\n    - name: a.service\n      wat: 1\n")).unwrap();
    let got: Vec<(usize, usize, String)> = w
        .warnings()
        .map(|d| (d.line, d.col, d.path.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, 1, "frobnicate".to_string()),
            (6, 5, "users[0].colour".to_string()),
            (10, 7, "coreos.units[0].wat".to_string()),
        ]
    );
}

type Check = fn(&Plan);
const POSITIVE: &[(&str, Check)] = &[
    ("", |p| assert_eq!(p, &Plan::default())),
    ("hostname: node1\n", |p| {
        assert_eq!(inline(file(p, "/etc/hostname")), b"node1\n")
    }),
    (
        "hostname: node1.example.org\nmanage_etc_hosts: localhost\n",
        |p| {
            let h = String::from_utf8(inline(file(p, "/etc/hosts")).to_vec()).unwrap();
            assert!(h.contains("127.0.1.1 node1.example.org node1\n"), "{h}");
        },
    ),
    ("hostname: n\nmanage_etc_hosts: yes\n", |p| {
        assert!(p.files.iter().any(|f| f.path == "/etc/hosts"))
    }),
    ("hostname: n\nmanage_etc_hosts: off\n", |p| {
        assert!(!p.files.iter().any(|f| f.path == "/etc/hosts"))
    }),
    ("ssh_authorized_keys:\n  - ssh-ed25519 AAAA one\n", |p| {
        assert_eq!(p.users[0].name, "core");
        assert_eq!(p.users[0].ssh_keys, vec!["ssh-ed25519 AAAA one"]);
    }),
    (
        "ssh_authorized_keys: [k1]\nusers:\n  - name: core\n    ssh_authorized_keys: [k2]\n",
        |p| {
            assert_eq!(p.users.len(), 1);
            assert_eq!(p.users[0].ssh_keys, vec!["k1", "k2"]);
        },
    ),
    (
        "users:\n  - name: alice\n    passwd: $6$s$h\n    groups: [sudo, docker]\n    homedir: /srv/alice\n    shell: /bin/zsh\n    system: no\n    primary_group: users\n    no_create_home: on\n    gecos: Alice\n",
        |p| {
            let u = &p.users[0];
            assert_eq!(u.groups, vec!["sudo", "docker"]);
            assert!(u.no_create_home && !u.system);
            assert_eq!(u.primary_group.as_deref(), Some("users"));
        },
    ),
    ("users:\n  - name: bob\n    groups: \"sudo, adm\"\n", |p| {
        assert_eq!(p.users[0].groups, vec!["sudo", "adm"])
    }),
    (
        "users:\n  - name: svc\n    system: yes\n    uid: 901\n",
        |p| {
            assert!(p.users[0].system);
            assert_eq!(p.users[0].uid, Some(901));
        },
    ),
    (
        "write_files:\n  - path: /etc/a\n    content: hello\n",
        |p| {
            let f = file(p, "/etc/a");
            assert_eq!(inline(f), b"hello");
            assert_eq!(f.mode, Some(0o644));
        },
    ),
    (
        "write_files:\n  - path: /etc/b\n    permissions: '0600'\n    owner: core:core\n",
        |p| {
            let f = file(p, "/etc/b");
            assert_eq!(f.mode, Some(0o600));
            assert_eq!(f.user, Some(Owner::Name("core".into())));
        },
    ),
    (
        "write_files:\n  - path: /etc/c\n    permissions: 0755\n    owner: 1000\n",
        |p| {
            let f = file(p, "/etc/c");
            assert_eq!(f.mode, Some(0o755));
            assert_eq!(f.user, Some(Owner::Id(1000)));
            assert_eq!(f.group, Some(Owner::Id(0)));
        },
    ),
    (
        "write_files:\n  - path: /etc/d\n    encoding: b64\n    content: aGVsbG8=\n",
        |p| assert_eq!(inline(file(p, "/etc/d")), b"hello"),
    ),
    (
        "write_files:\n  - path: /etc/e\n    encoding: base64\n    content: |\n      aGVs\n      bG8=\n",
        |p| assert_eq!(inline(file(p, "/etc/e")), b"hello"),
    ),
    (
        "write_files:\n  - path: /etc/f\n    encoding: gz+b64\n    content: H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==\n",
        |p| assert_eq!(inline(file(p, "/etc/f")), b"hello"),
    ),
    (
        "coreos:\n  units:\n    - name: etcd.service\n      command: start\n      enable: true\n",
        |p| {
            assert_eq!(p.units[0].enabled, Some(true));
            let s = String::from_utf8(
                inline(file(p, "/var/lib/basalt/firstboot/late/10-unit-commands")).to_vec(),
            )
            .unwrap();
            assert!(
                s.contains("systemctl --no-block start etcd.service\n"),
                "{s}"
            );
            assert!(
                p.units
                    .iter()
                    .any(|u| u.name == crate::intent::FIRSTBOOT_UNIT)
            );
        },
    ),
    (
        "coreos:\n  units:\n    - name: x.service\n      mask: true\n",
        |p| assert!(p.units[0].mask),
    ),
    (
        "coreos:\n  units:\n    - name: x.service\n      enable: false\n",
        |p| assert_eq!(p.units[0].enabled, None),
    ),
    (
        "coreos:\n  units:\n    - name: docker.service\n      drop_ins:\n        - name: 50-proxy.conf\n          content: |\n            [Service]\n            Environment=HTTP_PROXY=http://p\n",
        |p| assert_eq!(p.units[0].dropins[0].name, "50-proxy.conf"),
    ),
    (
        "coreos:\n  units:\n    - name: 10-eth.network\n      content: |\n        [Match]\n        Name=eth0\n",
        |p| assert_eq!(p.units[0].kind, UnitKind::Networkd),
    ),
    (
        "coreos:\n  units:\n    - name: x.service\n      runtime: true\n      content: \"[Service]\\nExecStart=/bin/true\\n\"\n",
        |p| assert!(p.units[0].contents.is_some()),
    ),
    (
        "coreos:\n  etcd2:\n    name: n1\n    advertise-client-urls: http://10.0.0.1:2379\n    initial_cluster_state: new\n",
        |p| {
            let s = String::from_utf8(inline(file(p, "/etc/default/etcd")).to_vec()).unwrap();
            assert!(
                s.contains("ETCD_NAME=\"n1\"\n")
                    && s.contains("ETCD_ADVERTISE_CLIENT_URLS=\"http://10.0.0.1:2379\"\n")
                    && s.contains("ETCD_INITIAL_CLUSTER_STATE=\"new\"\n"),
                "{s}"
            );
        },
    ),
    (
        "coreos:\n  update:\n    reboot_strategy: etcd-lock\n    group: stable\n    server: https://updates.example.org/v1\n",
        |p| {
            let s = String::from_utf8(inline(file(p, "/etc/basalt/update.conf")).to_vec()).unwrap();
            assert_eq!(
                s,
                "# Written by basalt-provision.\nGROUP=\"stable\"\nREBOOT_STRATEGY=\"etcd-lock\"\nSERVER=\"https://updates.example.org/v1\"\n"
            );
        },
    ),
    (
        "runcmd:\n  - echo hi > /tmp/x\n  - [touch, \"/tmp/a b\"]\n",
        |p| {
            let s = String::from_utf8(
                inline(file(p, "/var/lib/basalt/firstboot/late/20-runcmd")).to_vec(),
            )
            .unwrap();
            assert!(s.ends_with("echo hi > /tmp/x\ntouch '/tmp/a b'\n"), "{s}");
        },
    ),
    ("bootcmd:\n  - echo early\n", |p| {
        assert!(
            p.units
                .iter()
                .any(|u| u.name == crate::intent::BOOTCMD_UNIT)
        )
    }),
    (
        "mounts:\n  - [sdb1, /mnt/data, ext4, \"defaults,noatime\"]\n  - [LABEL=swap, none, swap]\n",
        |p| {
            assert_eq!(p.filesystems[0].device, "/dev/sdb1");
            assert_eq!(p.filesystems[0].mount_options, vec!["noatime"]);
            assert_eq!(p.filesystems[1].device, "/dev/disk/by-label/swap");
            assert_eq!(p.filesystems[1].mount_type.as_deref(), Some("swap"));
        },
    ),
    (
        "hostname: &h box\nwrite_files:\n  - path: /etc/name\n    content: *h\n",
        |p| assert_eq!(inline(file(p, "/etc/name")), b"box"),
    ),
];

#[test]
fn positive_configs() {
    for (i, (body, check)) in POSITIVE.iter().enumerate() {
        match parse(&cc(body)) {
            Ok((p, _)) => check(&p),
            Err(r) => panic!("case {i} failed:\n{}", r.render("t")),
        }
    }
}
