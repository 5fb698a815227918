use super::*;

fn file(t: &mut Tree, p: &str, body: &str) {
    t.insert_p(
        p,
        Entry::file(0o644, Content::from_bytes(body.as_bytes().to_vec())),
    )
    .unwrap();
}

fn text(t: &Tree, p: &str) -> String {
    String::from_utf8(treefs::read_file(t, p).unwrap()).unwrap()
}

#[test]
fn config_files_override_and_mask_by_name() {
    let etc = FACTORY_ETC;
    let mut t = Tree::new();
    file(&mut t, "/usr/lib/sysusers.d/a.conf", "usr a");
    file(&mut t, "/usr/lib/sysusers.d/b.conf", "usr b");
    file(&mut t, "/usr/lib/sysusers.d/c.conf", "usr c");
    file(&mut t, "/usr/lib/sysusers.d/README", "not read");
    file(&mut t, "/usr/lib/sysusers.d/sub/d.conf", "not read");
    file(&mut t, "/usr/local/lib/sysusers.d/b.conf", "local b");
    file(&mut t, &format!("{etc}/sysusers.d/b.conf"), "etc b");
    file(&mut t, &format!("{etc}/sysusers.d/e.conf"), "etc e");
    t.insert_p(
        &format!("{etc}/sysusers.d/c.conf"),
        Entry::symlink("/dev/null"),
    )
    .unwrap();
    let got = config_files(&t, etc).unwrap();
    let want: Vec<(String, Vec<u8>)> = [
        ("a.conf", "usr a"),
        ("b.conf", "etc b"),
        ("e.conf", "etc e"),
    ]
    .iter()
    .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
    .collect();
    assert_eq!(got, want);
    // /etc/sysusers.d of the other location is not read.
    assert_eq!(config_files(&t, "/etc").unwrap().len(), 3);
}

#[test]
fn pending_accounts_table() {
    let etc = FACTORY_ETC;
    let conf = "#comment\nu systemd-network - \"systemd Network Management\"\n\
                g systemd-journal - -\nu sshd 100:nogroup\nm alice systemd-journal\nr - 500-900\n";
    let passwd_ok = "root:x:0:0::/root:/bin/sh\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n\
                     sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    let group_ok =
        "root:x:0:\nsystemd-network:x:998:\nsystemd-journal:x:999:alice\nnogroup:x:65534:\n";
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a [&'a str]);
    let cases: &[Case] = &[
        ("all present", conf, passwd_ok, group_ok, &[]),
        (
            "user and membership missing",
            conf,
            "root:x:0:0::/root:/bin/sh\nsshd:x:100:65534::/:/bin/false\n",
            "root:x:0:\nsystemd-network:x:998:\nsystemd-journal:x:999:\n",
            &["u systemd-network (x.conf)", "m alice (x.conf)"],
        ),
        (
            "same-named group missing",
            conf,
            passwd_ok,
            "systemd-journal:x:999:alice\n",
            &["u systemd-network (x.conf)"],
        ),
        (
            "membership by primary group",
            "m alice alice\n",
            passwd_ok,
            "alice:x:1000:\n",
            &[],
        ),
        (
            "specifier",
            "u %H-user -\n",
            passwd_ok,
            group_ok,
            &["u %H-user (x.conf)"],
        ),
    ];
    for (what, conf, passwd, group, want) in cases {
        let mut t = Tree::new();
        file(&mut t, "/usr/lib/sysusers.d/x.conf", conf);
        file(
            &mut t,
            "/usr/lib/sysusers.d/masked.conf",
            "u nobody-here -\n",
        );
        t.insert_p(
            &format!("{etc}/sysusers.d/masked.conf"),
            Entry::symlink("/dev/null"),
        )
        .unwrap();
        file(&mut t, &format!("{etc}/passwd"), passwd);
        file(&mut t, &format!("{etc}/group"), group);
        assert_eq!(pending(&t, etc).unwrap(), *want, "{what}");
    }
}

fn db(passwd: &str, group: &str, shadow: &str, gshadow: &str) -> Db {
    [
        ("passwd", passwd),
        ("group", group),
        ("shadow", shadow),
        ("gshadow", gshadow),
    ]
    .into_iter()
    .map(|(n, t)| (n, Some(t.to_string())))
    .collect()
}

fn files(d: &Db) -> BTreeMap<&'static str, String> {
    d.iter()
        .map(|(n, t)| (*n, t.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn normalize_sorts_and_dates_new_entries() {
    let before = db(
        "root:x:0:0:root:/root:/bin/sh\n",
        "root:x:0:\n",
        "root:*:19000:0:99999:7:::\n",
        "root:*::\n",
    );
    let after = db(
        "root:x:0:0:root:/root:/bin/sh\nb:x:998:998::/:/usr/sbin/nologin\na:x:999:999::/:/usr/sbin/nologin\nz:x:10:10::/:/bin/sh\n",
        "root:x:0:\nb:x:998:\na:x:999:\nz:x:10:\n",
        "root:*:19000:0:99999:7:::\nb:!*:12345::::::\na:!*:12345::::::\nz:!*:12345::::::\n",
        "root:*::\nb:!*::\na:!*::\nz:!*::\n",
    );
    let got = normalize(&before, &files(&after), 86_400 * 20_000 + 7).unwrap();
    let want = db(
        "root:x:0:0:root:/root:/bin/sh\nz:x:10:10::/:/bin/sh\nb:x:998:998::/:/usr/sbin/nologin\na:x:999:999::/:/usr/sbin/nologin\n",
        "root:x:0:\nz:x:10:\nb:x:998:\na:x:999:\n",
        "root:*:19000:0:99999:7:::\nz:!*:20000::::::\nb:!*:20000::::::\na:!*:20000::::::\n",
        "root:*::\nz:!*::\nb:!*::\na:!*::\n",
    );
    assert_eq!(got, want);
}

#[test]
fn normalize_errors_table() {
    let ok = db(
        "root:x:0:0::/:/bin/sh\n",
        "root:x:0:\n",
        "root:*:1::::::\n",
        "root:*::\n",
    );
    let cases: &[(&str, &str, &str)] = &[
        ("passwd", "root:x:0:0::/\n", "passwd:1: expected 7"),
        ("group", "root:x:zero:\n", "id \"zero\" is not a number"),
        ("passwd", "+::::::\n", "NIS compat"),
        ("shadow", "root:*:1\n", "shadow:1: expected 9"),
    ];
    for (name, bad, want) in cases {
        let mut after = files(&ok);
        after.insert(name, bad.to_string());
        let e = format!("{:#}", normalize(&ok, &after, 0).unwrap_err());
        assert!(e.contains(want), "{name}: {e}");
    }
    let mut after = files(&ok);
    after.remove("gshadow");
    let e = format!("{:#}", normalize(&ok, &after, 0).unwrap_err());
    assert!(e.contains("left no gshadow"), "{e}");
}

#[test]
fn skips_without_tool_passwd_or_config() {
    let mut t = Tree::new();
    let cases: &[(&str, &str)] = &[
        ("", "no /usr/bin/systemd-sysusers"),
        (TOOL, "no passwd"),
        ("/usr/share/factory/etc/passwd", "no sysusers.d files"),
    ];
    for (add, want) in cases {
        if !add.is_empty() {
            file(&mut t, add, "root:x:0:0::/:/bin/sh\n");
        }
        match apply(&mut t, 0).unwrap() {
            Outcome::Skipped(why) => assert!(why.contains(want), "{why}"),
            other => panic!("{add}: {other:?}"),
        }
    }
}

/// Debian-like factory files (base-passwd's static ids) for the oracle.
const BASE_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const BASE_GROUP: &str = "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nusers:x:100:\nnogroup:x:65534:\n";
const BASE_SHADOW: &str =
    "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";
const BASE_GSHADOW: &str = "root:*::\ndaemon:*::\nshadow:*::\nusers:*::\nnogroup:*::\n";
/// What the tree's sysusers.d typically declares: explicit ids, `-`
/// allocation (999 downwards, skipping taken ids), a user in an existing
/// group, a uid:gid pair, memberships and a group-only line.
const CONF: &[(&str, &str)] = &[
    (
        "basalt-test.conf",
        "g taken 998\nu messagebus - \"System Message Bus\" /nonexistent\n\
         u sshd -:nogroup - /run/sshd\nu fixed 300:300 \"Fixed\" /var/lib/fixed /bin/sh\n\
         g fixed 300\nm daemon users\n",
    ),
    (
        "systemd.conf",
        "g systemd-journal - -\nu systemd-network - \"systemd Network Management\"\n\
         m systemd-network systemd-journal\n",
    ),
];

fn host_sysusers(epoch: i64) -> Option<Db> {
    let prog = ["/usr/bin/systemd-sysusers", "/bin/systemd-sysusers"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(prog) = prog else {
        eprintln!(
            "SKIPPING the sysusers oracle: no systemd-sysusers on this host (apt package systemd)"
        );
        return None;
    };
    let before = db(BASE_PASSWD, BASE_GROUP, BASE_SHADOW, BASE_GSHADOW);
    let confs: Vec<(String, Vec<u8>)> = CONF
        .iter()
        .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    stage_root(&root, &before, Some(b"SYS_UID_MAX 999\n"), &confs).unwrap();
    let mut cmd = Command::new(prog);
    cmd.env_clear();
    let after = execute(cmd, &root, epoch).unwrap();
    Some(normalize(&before, &after, epoch).unwrap())
}

/// The staging, run and read-back path of [`apply`] with the host's
/// systemd-sysusers (bookworm: 252) in place of the tree's: the accounts
/// are created where systemd allocates them, sorted, dated from the epoch,
/// nothing is pending afterwards, and two runs are identical.
#[test]
fn oracle_host_sysusers_on_staged_fixture() {
    let epoch = 86_400 * 20_000 + 5;
    let Some(got) = host_sysusers(epoch) else {
        return;
    };
    let passwd = got["passwd"].clone().unwrap();
    let group = got["group"].clone().unwrap();
    let shadow = got["shadow"].clone().unwrap();
    for line in [
        "fixed:x:300:300:Fixed:/var/lib/fixed:/bin/sh\n",
        "systemd-network:x:995:995:systemd Network Management:/:/usr/sbin/nologin\n",
        "messagebus:x:997:997:System Message Bus:/nonexistent:/usr/sbin/nologin\n",
        "sshd:x:996:65534::/run/sshd:/usr/sbin/nologin\n",
    ] {
        assert!(passwd.contains(line), "{line}in\n{passwd}");
    }
    for line in [
        "users:x:100:daemon\n",
        "fixed:x:300:\n",
        "taken:x:998:\n",
        "messagebus:x:997:\n",
        "systemd-network:x:995:\n",
        "systemd-journal:x:999:systemd-network\n",
    ] {
        assert!(group.contains(line), "{line} in\n{group}");
    }
    let journal = group
        .lines()
        .find(|l| l.starts_with("systemd-journal:"))
        .unwrap();
    assert!(journal.ends_with(":systemd-network"), "{journal}");
    assert!(
        shadow.starts_with("root:*:19000:0:99999:7:::\n"),
        "{shadow}"
    );
    assert!(shadow.contains("sshd:!*:20000:"), "{shadow}");
    let ids = |t: &str| -> Vec<u32> {
        t.lines()
            .map(|l| l.split(':').nth(2).unwrap().parse().unwrap())
            .collect()
    };
    let mut sorted = ids(&passwd);
    sorted.sort();
    assert_eq!(ids(&passwd), sorted, "passwd is sorted by uid");

    // Nothing left for the boot-time sysusers.
    let mut t = Tree::new();
    for (name, text) in &got {
        file(
            &mut t,
            &format!("{FACTORY_ETC}/{name}"),
            text.as_ref().unwrap(),
        );
    }
    for (n, b) in CONF {
        file(&mut t, &format!("/usr/lib/sysusers.d/{n}"), b);
    }
    assert_eq!(pending(&t, FACTORY_ETC).unwrap(), Vec::<String>::new());
    assert_eq!(text(&t, &format!("{FACTORY_ETC}/passwd")), passwd);

    assert_eq!(host_sysusers(epoch), Some(got), "two runs differ");
}
