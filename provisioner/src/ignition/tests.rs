use super::*;
use crate::plan::*;

const H256: &str = "sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn cfg(version: &str, rest: &str) -> String {
    if rest.is_empty() {
        format!("{{\"ignition\": {{\"version\": \"{version}\"}}}}")
    } else {
        format!("{{\"ignition\": {{\"version\": \"{version}\"}}, {rest}}}")
    }
}

/// (config body after the ignition section, expected message fragment, expected path)
const NEGATIVE: &[(&str, &str, &str)] = &[
    (
        r#""storage": {"files": [{"path": "etc/x"}]}"#,
        "is not absolute",
        "storage.files[0].path",
    ),
    (
        r#""storage": {"files": [{"path": "/etc/../x"}]}"#,
        "\"..\" component",
        "storage.files[0].path",
    ),
    (
        r#""storage": {"files": [{"path": "/a"}, {"path": "/a"}]}"#,
        "duplicate path \"/a\"",
        "storage.files[1].path",
    ),
    (
        r#""storage": {"files": [{"path": "/a"}], "directories": [{"path": "/a"}]}"#,
        "duplicate path",
        "storage.directories[0].path",
    ),
    (
        r#""storage": {"directories": [{"path": "/a"}], "links": [{"path": "/a", "target": "/b"}]}"#,
        "duplicate path",
        "storage.links[0].path",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "mode": 4096}]}"#,
        "is not between 0 and 0o7777",
        "storage.files[0].mode",
    ),
    (
        r#""storage": {"directories": [{"path": "/d", "mode": -1}]}"#,
        "is not between",
        "storage.directories[0].mode",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "verification": {"hash": "md5-abc"}}}]}"#,
        "\"md5\" is not supported",
        "storage.files[0].contents.verification.hash",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "verification": {"hash": "sha256-abcd"}}}]}"#,
        "must have 64 hex digits",
        "storage.files[0].contents.verification.hash",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "verification": {"hash": "sha512-zz"}}}]}"#,
        "not hexadecimal",
        "storage.files[0].contents.verification.hash",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "ftp://h/x"}}]}"#,
        "unknown scheme \"ftp\"",
        "storage.files[0].contents.source",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "s3://b/k"}}]}"#,
        "\"s3\" is not supported",
        "storage.files[0].contents.source",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "tftp://h/x"}}]}"#,
        "\"tftp\" is not supported",
        "storage.files[0].contents.source",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "data:;base64,!!!"}}]}"#,
        "invalid base64",
        "storage.files[0].contents.source",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "compression": "bzip2"}}]}"#,
        "compression \"bzip2\" is not supported",
        "storage.files[0].contents.compression",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "overwrite": true}]}"#,
        "overwrite is true but contents.source is not set",
        "storage.files[0].overwrite",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "user": {"id": 1, "name": "core"}}]}"#,
        "both id and name",
        "storage.files[0].user",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "group": {"id": -5}}]}"#,
        "id -5 is out of range",
        "storage.files[0].group.id",
    ),
    (
        r#""storage": {"files": [{"path": "/a", "append": [{}]}]}"#,
        "resource has no source",
        "storage.files[0].append[0]",
    ),
    (
        r#""storage": {"links": [{"path": "/l"}]}"#,
        "link has no target",
        "storage.links[0].target",
    ),
    (
        r#""storage": {"links": [{"path": "/l", "target": "rel", "hard": true}]}"#,
        "hard link target",
        "storage.links[0].target",
    ),
    (
        r#""storage": {"links": [{"path": "/l", "target": "/x"}], "files": [{"path": "/l/f"}]}"#,
        "goes through the symlink \"/l\"",
        "storage.files[0].path",
    ),
    (
        r#""storage": {"luks": [{"name": "x", "device": "/dev/sda"}]}"#,
        "storage.luks is not supported",
        "storage.luks",
    ),
    (
        r#""storage": {"raid": [{"name": "md0", "level": "raid1", "devices": ["/dev/a", "/dev/b"]}]}"#,
        "storage.raid is not supported",
        "storage.raid",
    ),
    (
        r#""storage": {"filesystems": [{"device": "/dev/sdb", "format": "btrfs"}]}"#,
        "\"btrfs\" is not supported",
        "storage.filesystems[0].format",
    ),
    (
        r#""storage": {"filesystems": [{"device": "/dev/sdb", "format": "zfs"}]}"#,
        "unknown format \"zfs\"",
        "storage.filesystems[0].format",
    ),
    (
        r#""storage": {"filesystems": [{"device": "sdb", "format": "ext4"}]}"#,
        "device: path \"sdb\" is not absolute",
        "storage.filesystems[0].device",
    ),
    (
        r#""storage": {"filesystems": [{"device": "/dev/sdb", "path": "/var/data"}]}"#,
        "path is set but format is not",
        "storage.filesystems[0].format",
    ),
    (
        r#""storage": {"filesystems": [{"device": "/dev/sdb", "format": "vfat", "label": "MUCHTOOLONGLABEL"}]}"#,
        "longer than 11 bytes",
        "storage.filesystems[0].label",
    ),
    (
        r#""storage": {"filesystems": [{"device": "/dev/sdb", "format": "ext4", "uuid": "nope"}]}"#,
        "is not a UUID",
        "storage.filesystems[0].uuid",
    ),
    (
        r#""storage": {"disks": [{"device": "/dev/sdb", "partitions": [{"number": 1}, {"number": 1}]}]}"#,
        "duplicate partition number 1",
        "storage.disks[0].partitions[1].number",
    ),
    (
        r#""storage": {"disks": [{"device": "/dev/sdb", "partitions": [{"number": 1, "typeGuid": "xyz"}]}]}"#,
        "is not a UUID",
        "storage.disks[0].partitions[0].typeGuid",
    ),
    (
        r#""storage": {"disks": [{"device": "/dev/sdb", "partitions": [{"number": 1, "sizeMiB": -3}]}]}"#,
        "must not be negative",
        "storage.disks[0].partitions[0].sizeMiB",
    ),
    (
        r#""systemd": {"units": [{"name": "foo"}]}"#,
        "no valid unit type suffix",
        "systemd.units[0].name",
    ),
    (
        r#""systemd": {"units": [{"name": "a/b.service"}]}"#,
        "contains '/'",
        "systemd.units[0].name",
    ),
    (
        r#""systemd": {"units": [{"name": "a.service"}, {"name": "a.service"}]}"#,
        "duplicate unit \"a.service\"",
        "systemd.units[1].name",
    ),
    (
        r#""systemd": {"units": [{"name": "a.service", "dropins": [{"name": "x.txt"}]}]}"#,
        "must end in \".conf\"",
        "systemd.units[0].dropins[0].name",
    ),
    (
        r#""systemd": {"units": [{"name": "a.service", "contents": "ExecStart=/bin/true"}]}"#,
        "outside of any [Section]",
        "systemd.units[0].contents",
    ),
    (
        r#""systemd": {"units": [{"name": "a.service", "contents": "[Service]\nnonsense"}]}"#,
        "neither a [Section] nor Key=value",
        "systemd.units[0].contents",
    ),
    (
        r#""systemd": {"units": [{"name": "eth.network", "enabled": true}]}"#,
        "networkd files cannot be enabled",
        "systemd.units[0]",
    ),
    (
        r#""passwd": {"users": [{"name": "bad:name"}]}"#,
        "is not valid",
        "passwd.users[0].name",
    ),
    (
        r#""passwd": {"users": [{"name": "core"}, {"name": "core"}]}"#,
        "duplicate user \"core\"",
        "passwd.users[1].name",
    ),
    (
        r#""passwd": {"users": [{"name": "core", "homeDir": "home/core"}]}"#,
        "is not absolute",
        "passwd.users[0].homeDir",
    ),
    (
        r#""passwd": {"users": [{"name": "core", "uid": 65534}]}"#,
        "out of range or reserved",
        "passwd.users[0].uid",
    ),
    (
        r#""passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["a\nb"]}]}"#,
        "spans several lines",
        "passwd.users[0].sshAuthorizedKeys[0]",
    ),
    (
        r#""passwd": {"users": [{"name": "core", "passwordHash": "a:b"}]}"#,
        "contains ':'",
        "passwd.users[0].passwordHash",
    ),
    (
        r#""passwd": {"groups": [{"name": "ops"}, {"name": "ops"}]}"#,
        "duplicate group \"ops\"",
        "passwd.groups[1].name",
    ),
    (
        r#""passwd": {"users": [{"name": "gone", "shouldExist": false}]}"#,
        "removing users",
        "passwd.users[0].shouldExist",
    ),
    (
        r#""kernelArguments": {"shouldExist": ["quiet"], "shouldNotExist": ["quiet"]}"#,
        "both shouldExist and shouldNotExist",
        "kernelArguments.shouldNotExist[0]",
    ),
    (
        r#""ignition": {"version": "3.4.0", "config": {"replace": {}}}"#,
        "resource has no source",
        "ignition.config.replace",
    ),
    (
        r#""ignition": {"version": "3.4.0", "proxy": {"httpProxy": "socks5://p"}}"#,
        "must start with http://",
        "ignition.proxy.httpProxy",
    ),
    (
        r#""ignition": {"version": "3.4.0", "timeouts": {"httpTotal": -1}}"#,
        "must not be negative",
        "ignition.timeouts.httpTotal",
    ),
];

#[test]
fn negative_configs() {
    for (i, (body, want, path)) in NEGATIVE.iter().enumerate() {
        // Configs that carry their own "ignition" section replace the default one.
        let text = if body.starts_with("\"ignition\"") {
            format!("{{{body}}}")
        } else {
            cfg("3.4.0", body)
        };
        let r = match parse(&text) {
            Ok(_) => panic!("case {i} ({body}) parsed but should fail with {want:?}"),
            Err(r) => r,
        };
        let hit = r.errors().find(|d| d.message.contains(want));
        let Some(d) = hit else {
            panic!(
                "case {i}: no error containing {want:?}; got:\n{}",
                r.render("t")
            );
        };
        assert_eq!(
            d.path.as_deref(),
            Some(*path),
            "case {i}: {}",
            r.render("t")
        );
        assert!(d.line >= 1 && d.col >= 1, "case {i}: position");
    }
}

#[test]
fn syntax_and_version_errors() {
    let cases: &[(&str, &str, (usize, usize))] = &[
        (
            "{\n  \"ignition\": {\"version\": \"3.4.0\"},\n  \"storage\": {\n",
            "invalid JSON",
            (4, 0),
        ),
        (
            "{\"ignition\": {\"version\": \"2.2.0\"}}",
            "unsupported Ignition config version 2.2.0",
            (1, 26),
        ),
        (
            "{\"ignition\": {\"version\": \"banana\"}}",
            "invalid config version",
            (1, 26),
        ),
        ("{\"ignition\": {}}", "ignition.version is missing", (1, 14)),
        ("[1, 2]", "not a JSON object", (1, 1)),
        (
            "{\"ignition\": {\"version\": \"3.4.0\"}, \"storage\": {\"files\": [{\"path\": 5}]}}",
            "invalid config",
            (1, 0),
        ),
    ];
    for (text, want, (line, col)) in cases {
        let r = parse(text).unwrap_err();
        let d = r.errors().next().unwrap();
        assert!(d.message.contains(want), "{text}: {}", d.message);
        assert_eq!(d.line, *line, "{text}");
        if *col != 0 {
            assert_eq!(d.col, *col, "{text}");
        }
    }
}

#[test]
fn semantic_error_positions() {
    let text = "{\n  \"ignition\": {\"version\": \"3.4.0\"},\n  \"storage\": {\n    \"files\": [\n      {\"path\": \"/ok\"},\n      {\"path\": \"relative\"}\n    ]\n  }\n}\n";
    let r = parse(text).unwrap_err();
    let d = r.errors().next().unwrap();
    assert_eq!((d.line, d.col), (6, 16));
    assert_eq!(
        d.render("c.ign"),
        "c.ign:6:16: error: path \"relative\" is not absolute (at storage.files[1].path)"
    );
}

#[test]
fn unknown_keys_warn_with_position() {
    let text = "{\"ignition\": {\"version\": \"3.0.0\"},\n \"kernelArguments\": {\"shouldExist\": [\"x\"]},\n \"bogus\": 1}";
    let p = parse(text).unwrap();
    let w: Vec<_> = p.warnings.warnings().collect();
    assert_eq!(w.len(), 2, "{}", p.warnings.render("t"));
    assert_eq!((w[0].line, w[0].col), (2, 2));
    assert_eq!(w[0].path.as_deref(), Some("kernelArguments"));
    assert_eq!((w[1].line, w[1].col), (3, 2));
}

/// A big, pretty-printed config with problems far down: each is reported at
/// the line and column where its value starts (the location map is built
/// lazily, on the first error, from the whole text).
#[test]
fn errors_deep_in_a_big_config_have_exact_positions() {
    let mut files = Vec::new();
    for i in 0..3000 {
        let path = match i {
            2345 => "relative".to_string(),
            2999 => "/big/7".to_string(),
            _ => format!("/big/{i}"),
        };
        files.push(serde_json::json!({
            "path": path,
            "contents": {"source": format!("data:,{}", "\u{e9}".repeat(150))},
            "mode": if i == 1500 { 0o17777 } else { 0o644 },
        }));
    }
    let mut doc =
        serde_json::json!({"ignition": {"version": "3.4.0"}, "storage": {"files": files}});
    doc["storage"]["files"][2100]["bogus"] = serde_json::json!(true);
    let text = serde_json::to_string_pretty(&doc).unwrap();
    assert!(text.len() > 1 << 20, "{} bytes", text.len());
    // (line, column) of the n-th occurrence of `needle`, columns in characters.
    let pos = |needle: &str, n: usize| {
        let at = text.match_indices(needle).nth(n).unwrap().0;
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |x| x + 1)..]
            .chars()
            .count()
            + 1;
        (line, col)
    };
    let r = parse(&text).unwrap_err();
    let found: Vec<(usize, usize, &str)> = r
        .errors()
        .map(|d| (d.line, d.col, d.path.as_deref().unwrap_or("")))
        .collect();
    let want_mode = pos("\"mode\": 8191", 0);
    let want_rel = pos("\"relative\"", 0);
    // The value of the second "/big/7" path (the first is file 7's).
    let want_dup = pos("\"/big/7\"", 1);
    assert_eq!(
        found,
        vec![
            (want_mode.0, want_mode.1 + 8, "storage.files[1500].mode"),
            (want_rel.0, want_rel.1, "storage.files[2345].path"),
            (want_dup.0, want_dup.1, "storage.files[2999].path"),
        ],
        "{}",
        r.render("big.ign")
    );
    // The unknown key deep inside is a warning at its key.
    let w: Vec<_> = r.warnings().collect();
    assert_eq!(w.len(), 1, "{}", r.render("big.ign"));
    assert_eq!((w[0].line, w[0].col), pos("\"bogus\"", 0));
    assert_eq!(w[0].path.as_deref(), Some("storage.files[2100].bogus"));
}

/// Keys the fast path must not miss: an escaped `luks`, and a literal
/// top-level "ignition.version" key that hides the real version.
#[test]
fn escaped_and_dotted_keys_are_still_checked() {
    let cases = [
        (
            r#"{"ignition": {"version": "3.4.0"}, "storage": {"\u006cuks": []}}"#,
            "storage.luks is not supported",
        ),
        (
            r#"{"ignition": {"version": "3.4.0"}, "storage": {"r\u0061id": []}}"#,
            "storage.raid is not supported",
        ),
        (
            r#"{"ignition": {"version": "3.4.0"}, "ignition.version": null}"#,
            "ignition.version is missing",
        ),
    ];
    for (text, want) in cases {
        let r = parse(text).unwrap_err();
        assert!(
            r.errors().any(|d| d.message.contains(want)),
            "{text}: {}",
            r.render("t")
        );
    }
}

/// Nodes under symbolic links the config creates: one error per (node, link),
/// in the links' order, nested links included.
#[test]
fn nodes_through_config_symlinks() {
    let text = cfg(
        "3.4.0",
        r#""storage": {"links": [{"path": "/a/b", "target": "/x"}, {"path": "/a", "target": "/y"}, {"path": "/h", "target": "/a/b/c", "hard": true}], "files": [{"path": "/a/b/c"}, {"path": "/ab/c"}, {"path": "/h/x"}]}"#,
    );
    let r = parse(&text).unwrap_err();
    let got: Vec<(String, String)> = r
        .errors()
        .map(|d| (d.path.clone().unwrap_or_default(), d.message.clone()))
        .collect();
    let m = |p: &str, l: &str| {
        format!("path {p:?} goes through the symlink {l:?} that this config creates")
    };
    assert_eq!(
        got,
        vec![
            ("storage.links[0].path".to_string(), m("/a/b", "/a")),
            ("storage.files[0].path".to_string(), m("/a/b/c", "/a/b")),
            ("storage.files[0].path".to_string(), m("/a/b/c", "/a")),
        ],
        "{}",
        r.render("t")
    );
}

/// (version, body, check)
type Check = fn(&Plan);
const POSITIVE: &[(&str, &str, Check)] = &[
    ("3.0.0", "", |p| assert_eq!(p, &Plan::default())),
    ("3.1.0", "", |p| assert!(p.files.is_empty())),
    ("3.2.0", "", |p| assert!(p.units.is_empty())),
    ("3.3.0", "", |p| assert!(p.users.is_empty())),
    ("3.4.0", "", |p| assert!(p.links.is_empty())),
    ("3.5.0", "", |p| assert!(p.disks.is_empty())),
    ("3.6.0", "", |p| assert!(p.groups.is_empty())),
    (
        "3.0.0",
        r#""storage": {"files": [{"path": "/etc/motd", "contents": {"source": "data:,hi"}, "mode": 420}]}"#,
        |p| {
            assert_eq!(p.files[0].mode, Some(0o644));
            assert!(matches!(&p.files[0].contents, Some(Source::Remote(r)) if r.url == "data:,hi"));
        },
    ),
    (
        "3.4.0",
        r#""storage": {"files": [{"path": "/z", "contents": {"source": "data:,x", "compression": "gzip", "verification": {"hash": "sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}}]}"#,
        |p| {
            assert!(
                matches!(&p.files[0].contents, Some(Source::Remote(r)) if matches!(r.hash, Some(Hash::Sha256(_))) && r.gzip)
            )
        },
    ),
    (
        "3.4.0",
        r#""storage": {"files": [{"path": "/a//b/", "append": [{"source": "data:,x"}, {"source": "https://example.invalid/y"}]}]}"#,
        |p| {
            assert_eq!(p.files[0].path, "/a/b");
            assert_eq!(p.files[0].append.len(), 2);
        },
    ),
    (
        "3.4.0",
        r#""storage": {"files": [{"path": "/a", "user": {"name": "core"}, "group": {"id": 10}}]}"#,
        |p| {
            assert_eq!(p.files[0].user, Some(Owner::Name("core".into())));
            assert_eq!(p.files[0].group, Some(Owner::Id(10)));
        },
    ),
    (
        "3.4.0",
        r#""storage": {"files": [{"path": "/a", "overwrite": true, "contents": {"source": "data:,"}}]}"#,
        |p| assert!(p.files[0].overwrite),
    ),
    (
        "3.4.0",
        r#""storage": {"directories": [{"path": "/srv/x", "mode": 448}]}"#,
        |p| assert_eq!(p.directories[0].mode, Some(0o700)),
    ),
    (
        "3.4.0",
        r#""storage": {"links": [{"path": "/l", "target": "../rel"}]}"#,
        |p| assert_eq!(p.links[0].target, "../rel"),
    ),
    (
        "3.4.0",
        r#""storage": {"links": [{"path": "/h", "target": "/etc/hostname", "hard": true}]}"#,
        |p| assert!(p.links[0].hard),
    ),
    (
        "3.4.0",
        r#""storage": {"filesystems": [{"device": "/dev/vdb", "format": "xfs", "path": "/var/data", "label": "data", "wipeFilesystem": true}]}"#,
        |p| {
            let f = &p.filesystems[0];
            assert_eq!(f.format, Some(FsFormat::Xfs));
            assert!(f.wipe);
            assert_eq!(f.path.as_deref(), Some("/var/data"));
        },
    ),
    (
        "3.4.0",
        r#""storage": {"filesystems": [{"device": "/dev/vdc", "format": "swap"}]}"#,
        |p| assert_eq!(p.filesystems[0].format, Some(FsFormat::Swap)),
    ),
    (
        "3.4.0",
        r#""storage": {"filesystems": [{"device": "/dev/vdd", "format": "vfat", "options": ["-F", "32"], "uuid": "12345678-1234-1234-1234-123456789abc"}]}"#,
        |p| assert_eq!(p.filesystems[0].options, vec!["-F", "32"]),
    ),
    (
        "3.4.0",
        r#""storage": {"disks": [{"device": "/dev/vdb", "wipeTable": true, "partitions": [{"number": 1, "label": "data", "sizeMiB": 1024, "typeGuid": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}]}]}"#,
        |p| {
            assert!(p.disks[0].wipe_table);
            assert_eq!(p.disks[0].partitions[0].size_mib, Some(1024));
        },
    ),
    (
        "3.4.0",
        r#""systemd": {"units": [{"name": "hello.service", "enabled": true, "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]}"#,
        |p| {
            assert_eq!(p.units[0].enabled, Some(true));
            assert_eq!(p.units[0].kind, UnitKind::Systemd);
        },
    ),
    (
        "3.4.0",
        r#""systemd": {"units": [{"name": "bad.service", "mask": true}]}"#,
        |p| assert!(p.units[0].mask),
    ),
    (
        "3.4.0",
        r#""systemd": {"units": [{"name": "sshd.service", "dropins": [{"name": "10-x.conf", "contents": "[Service]\nEnvironment=A=1\n"}]}]}"#,
        |p| assert_eq!(p.units[0].dropins[0].name, "10-x.conf"),
    ),
    (
        "3.4.0",
        r#""systemd": {"units": [{"name": "eth0.network", "contents": "[Match]\nName=eth0\n"}]}"#,
        |p| assert_eq!(p.units[0].kind, UnitKind::Networkd),
    ),
    (
        "3.4.0",
        r#""passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA k"], "groups": ["sudo"], "uid": 1500, "shell": "/bin/sh", "gecos": "Core", "homeDir": "/var/home/core", "system": false, "noCreateHome": false, "primaryGroup": "users", "passwordHash": "$6$x$y"}]}"#,
        |p| {
            let u = &p.users[0];
            assert_eq!(u.uid, Some(1500));
            assert_eq!(u.home_dir.as_deref(), Some("/var/home/core"));
            assert_eq!(u.ssh_keys.len(), 1);
        },
    ),
    (
        "3.4.0",
        r#""passwd": {"groups": [{"name": "ops", "gid": 2000, "system": true}]}"#,
        |p| assert_eq!(p.groups[0].gid, Some(2000)),
    ),
    (
        "3.4.0",
        r#""kernelArguments": {"shouldExist": ["console=ttyS0"], "shouldNotExist": ["quiet"]}"#,
        |p| {
            assert_eq!(p.kernel_args.should_exist, vec!["console=ttyS0"]);
            assert_eq!(p.kernel_args.should_not_exist, vec!["quiet"]);
        },
    ),
    (
        "3.4.0",
        r#""ignition": {"version": "3.4.0", "timeouts": {"httpTotal": 30}, "proxy": {"httpsProxy": "http://proxy:3128", "noProxy": ["localhost"]}}"#,
        |p| {
            assert_eq!(p.timeouts.http_total_s, Some(30));
            assert_eq!(p.proxy.no_proxy, vec!["localhost"]);
        },
    ),
    (
        "3.4.0",
        r#""ignition": {"version": "3.4.0", "security": {"tls": {"certificateAuthorities": [{"source": "data:,pem"}]}}}"#,
        |p| assert_eq!(p.tls_cas.len(), 1),
    ),
    (
        "3.6.0",
        r#""storage": {"files": [{"path": "/x", "contents": {"source": "https://h/x", "httpHeaders": [{"name": "Authorization", "value": "Bearer t"}]}}]}"#,
        |p| {
            assert!(matches!(&p.files[0].contents, Some(Source::Remote(r)) if r.headers.len() == 1))
        },
    ),
];

#[test]
fn positive_configs() {
    for (i, (v, body, check)) in POSITIVE.iter().enumerate() {
        let text = if body.starts_with("\"ignition\"") {
            format!("{{{body}}}")
        } else {
            cfg(v, body)
        };
        let p = match parse(&text) {
            Ok(p) => p,
            Err(r) => panic!("case {i} failed:\n{}", r.render("t")),
        };
        assert!(!p.warnings.has_errors());
        check(&p.plan);
    }
}

#[test]
fn merge_and_replace_references_are_collected() {
    let text = format!(
        r#"{{"ignition": {{"version": "3.4.0", "config": {{"merge": [{{"source": "data:,a"}}], "replace": {{"source": "https://h/c", "verification": {{"hash": "{H256}"}}}}}}}}}}"#
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.merge.len(), 1);
    assert!(matches!(&p.replace, Some(Source::Remote(r)) if r.hash.is_some()));
}
