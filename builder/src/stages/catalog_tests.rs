use super::*;

/// A well-formed database: header, `items` items of 8 bytes, a string.
fn database(items: u64) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b[..8].copy_from_slice(MAGIC);
    b[HEADER_SIZE_OFF..HEADER_SIZE_OFF + 8].copy_from_slice(&40u64.to_le_bytes());
    b[N_ITEMS_OFF..N_ITEMS_OFF + 8].copy_from_slice(&items.to_le_bytes());
    b[ITEM_SIZE_OFF..ITEM_SIZE_OFF + 8].copy_from_slice(&8u64.to_le_bytes());
    b.extend(std::iter::repeat_n(
        7u8,
        usize::try_from(items * 8).unwrap(),
    ));
    b.extend(b"text\0");
    b
}

#[test]
fn header_checks() {
    let good = database(3);
    let cases: Vec<(&str, Vec<u8>, std::result::Result<u64, &str>)> = vec![
        ("good", good.clone(), Ok(3)),
        ("short", good[..20].to_vec(), Err("shorter than")),
        (
            "magic",
            [b"KSLPHHRH", &good[8..]].concat(),
            Err("signature"),
        ),
        ("truncated", good[..60].to_vec(), Err("3 items of 8 bytes")),
        ("empty", database(0), Err("no entries")),
    ];
    for (what, bytes, want) in cases {
        match (check_header(&bytes), want) {
            (Ok(n), Ok(w)) => assert_eq!(n, w, "{what}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{what}: {e}"),
            (got, _) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

fn file(t: &mut Tree, p: &str, body: &str) {
    t.insert_p(
        p,
        Entry::file(0o644, Content::from_bytes(body.as_bytes().to_vec())),
    )
    .unwrap();
}

#[test]
fn sources_and_skips() {
    let mut t = Tree::new();
    match compile(&mut t, 0).unwrap() {
        Outcome::Skipped(why) => assert!(why.contains("no /usr/bin/journalctl"), "{why}"),
        o => panic!("{o:?}"),
    }
    file(&mut t, TOOL, "elf");
    file(&mut t, "/usr/lib/systemd/catalog/README", "x");
    match compile(&mut t, 0).unwrap() {
        Outcome::Skipped(why) => assert!(why.contains("no *.catalog files"), "{why}"),
        o => panic!("{o:?}"),
    }
    file(&mut t, "/usr/lib/systemd/catalog/systemd.catalog", "a");
    file(&mut t, "/usr/lib/systemd/catalog/systemd.de.catalog", "b");
    t.insert_p(
        "/usr/local/lib/systemd/catalog/systemd.de.catalog",
        Entry::symlink("/dev/null"),
    )
    .unwrap();
    let got: Vec<(&str, String, Vec<u8>)> = sources(&t).unwrap();
    let want = vec![
        (
            "/usr/lib/systemd/catalog",
            "systemd.catalog".to_string(),
            b"a".to_vec(),
        ),
        (
            "/usr/lib/systemd/catalog",
            "systemd.de.catalog".to_string(),
            b"b".to_vec(),
        ),
        (
            "/usr/local/lib/systemd/catalog",
            "systemd.de.catalog".to_string(),
            vec![],
        ),
    ];
    assert_eq!(got, want);
    assert!(!t.contains(DATABASE) && !t.contains(VAR_UPDATED));
}

#[test]
fn insert_creates_parents_and_refuses_clobbering() {
    let mut t = Tree::new();
    insert(&mut t, DATABASE, b"db".to_vec(), 77).unwrap();
    for d in [
        "/var",
        "/var/lib",
        "/var/lib/systemd",
        "/var/lib/systemd/catalog",
    ] {
        let e = t.get(d).unwrap();
        assert!(e.is_dir(), "{d}");
        assert_eq!((e.mode, e.uid, e.gid, e.mtime), (0o755, 0, 0, 77), "{d}");
    }
    let e = t.get(DATABASE).unwrap();
    assert_eq!((e.mode, e.mtime), (0o644, 77));
    let err = insert(&mut t, DATABASE, b"db".to_vec(), 77).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let mut t = Tree::new();
    file(&mut t, "/var/lib", "not a dir");
    let err = insert(&mut t, DATABASE, b"db".to_vec(), 77).unwrap_err();
    assert!(err.to_string().contains("/var/lib is a"), "{err}");
}

/// The staging, run and read-back path of [`compile`] with the host's
/// journalctl in place of the tree's, on catalog sources generated here:
/// a database with one item per (message id, language), the same bytes
/// from two runs, and an `.updated` written the way ldcache.rs writes it.
#[test]
fn oracle_host_journalctl_on_staged_sources() {
    let Some(prog) = ["/usr/bin/journalctl", "/bin/journalctl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPING the catalog oracle: no journalctl on this host (apt package systemd)");
        return;
    };
    let ids = [
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    ];
    let mut en = String::new();
    let mut de = String::new();
    for id in ids {
        en.push_str(&format!("-- {id}\nSubject: test {id}\n\nBody of {id}.\n\n"));
        de.push_str(&format!(
            "-- {id} de\nSubject: Test {id}\n\nText von {id}.\n\n"
        ));
    }
    let srcs = vec![
        (
            "/usr/lib/systemd/catalog",
            "t.catalog".to_string(),
            en.into_bytes(),
        ),
        (
            "/usr/lib/systemd/catalog",
            "t.de.catalog".to_string(),
            de.into_bytes(),
        ),
    ];
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(prog);
        cmd.env_clear();
        execute(cmd, &dir.path().join("root"), &srcs).unwrap()
    };
    let a = run();
    assert_eq!(check_header(&a).unwrap(), 4);
    assert!(
        a.windows(14).any(|w| w == b"Text von 01234"),
        "German body present"
    );
    assert_eq!(run(), a, "two runs differ");

    let mut t = Tree::new();
    t.insert("/usr", Entry::dir(0o755).at(5)).unwrap();
    insert(&mut t, DATABASE, a, 1000).unwrap();
    super::super::ldcache::write_updated(&mut t, VAR_UPDATED, "/var/", 1000).unwrap();
    assert_eq!(t.get("/usr").unwrap().mtime, 1000);
    let u = t.get(VAR_UPDATED).unwrap();
    assert_eq!((u.mode, u.mtime), (0o644, 1000));
    let text = String::from_utf8(treefs::read_file(&t, VAR_UPDATED).unwrap()).unwrap();
    assert!(text.contains("updates of /var/ have"), "{text}");
    assert!(text.ends_with("\nTIMESTAMP_NSEC=1000000000000\n"), "{text}");
}
