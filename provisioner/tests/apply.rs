//! Apply tests: the resulting tree, accounts, keys, units, mounts, records.

mod common;
use common::*;

const FULL: &str = r#"{
  "ignition": {"version": "3.4.0"},
  "passwd": {
    "groups": [{"name": "ops"}],
    "users": [
      {"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3 core@a", "ssh-rsa AAAAB3 core@b"], "groups": ["sudo", "ops"], "gecos": "CoreOS Admin"},
      {"name": "svc", "system": true, "noCreateHome": true, "shell": "/usr/sbin/nologin", "passwordHash": "$6$salt$hash"}
    ]
  },
  "storage": {
    "directories": [{"path": "/srv/app", "mode": 488, "user": {"name": "core"}, "group": {"name": "ops"}}],
    "files": [
      {"path": "/srv/app/config", "contents": {"source": "data:,port%3D80%0A"}, "mode": 384, "user": {"name": "core"}},
      {"path": "/etc/motd", "contents": {"source": "data:;base64,SGVsbG8K"}, "append": [{"source": "data:,more%0A"}]},
      {"path": "/etc/hostname", "contents": {"source": "data:,node1%0A"}, "overwrite": true}
    ],
    "links": [
      {"path": "/usr/local/bin/app", "target": "/srv/app/config"},
      {"path": "/srv/app/hard", "target": "/srv/app/config", "hard": true}
    ],
    "filesystems": [{"device": "/dev/vdb", "format": "ext4", "label": "data", "path": "/var/data"}]
  },
  "systemd": {
    "units": [
      {"name": "hello.service", "enabled": true, "contents": "[Unit]\nDescription=hi\n[Service]\nExecStart=/bin/echo hi\n[Install]\nWantedBy=multi-user.target\n"},
      {"name": "etcd.service", "enabled": true, "dropins": [{"name": "20-x.conf", "contents": "[Service]\nEnvironment=A=1\n"}]},
      {"name": "apt-daily.timer", "mask": true},
      {"name": "10-eth0.network", "contents": "[Match]\nName=eth0\n[Network]\nDHCP=yes\n"}
    ]
  },
  "kernelArguments": {"shouldExist": ["console=ttyS0"]}
}"#;

#[test]
fn ignition_full_apply() {
    let t = fake_root();
    let r = t.path();
    let out = apply_text(FULL, r).unwrap();
    assert!(!out.skipped);

    // accounts
    let passwd = read(r, "/etc/passwd");
    assert!(
        passwd.contains("core:x:1000:1001:CoreOS Admin:/home/core:/bin/bash\n"),
        "{passwd}"
    );
    assert!(
        passwd.contains("svc:x:999:999::/home/svc:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    let group = read(r, "/etc/group");
    assert!(
        group.contains("sudo:x:27:core\n")
            && group.contains("ops:x:1000:core\n")
            && group.contains("core:x:1001:\n"),
        "{group}"
    );
    let shadow = read(r, "/etc/shadow");
    assert!(
        shadow.contains("core:*:19675:0:99999:7:::\n")
            && shadow.contains("svc:$6$salt$hash:19675:"),
        "{shadow}"
    );
    assert_eq!(meta(r, "/etc/shadow"), (0o640, 0, 42));
    assert!(read(r, "/etc/gshadow").contains("ops:!::core\n"));

    // home, skel, keys
    assert_eq!(meta(r, "/home/core"), (0o700, 1000, 1001));
    assert_eq!(read(r, "/home/core/.profile"), "# profile\n");
    assert_eq!(meta(r, "/home/core/.profile").1, 1000);
    assert!(!r.join("home/svc").exists());
    assert_eq!(meta(r, "/home/core/.ssh"), (0o700, 1000, 1001));
    let keys = "ssh-ed25519 AAAAC3 core@a\nssh-rsa AAAAB3 core@b\n";
    assert_eq!(read(r, "/home/core/.ssh/authorized_keys.d/ignition"), keys);
    assert_eq!(read(r, "/home/core/.ssh/authorized_keys"), keys);
    assert_eq!(
        meta(r, "/home/core/.ssh/authorized_keys"),
        (0o600, 1000, 1001)
    );

    // nodes
    assert_eq!(meta(r, "/srv/app"), (0o750, 1000, 1000));
    assert_eq!(read(r, "/srv/app/config"), "port=80\n");
    assert_eq!(meta(r, "/srv/app/config"), (0o600, 1000, 0));
    assert_eq!(read(r, "/etc/motd"), "Hello\nmore\n");
    assert_eq!(meta(r, "/etc/motd"), (0o644, 0, 0));
    assert_eq!(
        std::fs::read_link(r.join("usr/local/bin/app"))
            .unwrap()
            .to_str(),
        Some("/srv/app/config")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(r.join("srv/app/hard")).unwrap().ino(),
        std::fs::metadata(r.join("srv/app/config")).unwrap().ino()
    );

    // units
    let link = |p: &str| std::fs::read_link(r.join(p)).unwrap().display().to_string();
    assert!(read(r, "/etc/systemd/system/hello.service").contains("ExecStart=/bin/echo hi"));
    assert_eq!(
        link("etc/systemd/system/multi-user.target.wants/hello.service"),
        "/etc/systemd/system/hello.service"
    );
    assert_eq!(
        link("etc/systemd/system/multi-user.target.wants/etcd.service"),
        "/usr/lib/systemd/system/etcd.service"
    );
    assert_eq!(
        read(r, "/etc/systemd/system/etcd.service.d/20-x.conf"),
        "[Service]\nEnvironment=A=1\n"
    );
    assert_eq!(link("etc/systemd/system/apt-daily.timer"), "/dev/null");
    assert!(read(r, "/etc/systemd/network/10-eth0.network").contains("DHCP=yes"));
    let preset = read(r, "/etc/systemd/system-preset/20-basalt-provision.preset");
    assert!(
        preset.contains("enable hello.service\n")
            && preset.contains("enable etcd.service\n")
            && preset.contains("enable var-data.mount\n"),
        "{preset}"
    );

    // storage: mount unit, script, recorded commands
    let mount = read(r, "/etc/systemd/system/var-data.mount");
    assert!(
        mount.contains("What=/dev/vdb\nWhere=/var/data\nType=ext4\n")
            && mount.contains("After=basalt-storage.service"),
        "{mount}"
    );
    assert_eq!(
        link("etc/systemd/system/local-fs.target.requires/var-data.mount"),
        "/etc/systemd/system/var-data.mount"
    );
    assert!(
        read(r, "/var/lib/basalt/firstboot/storage.sh").contains("mkfs.ext4 -F -L data /dev/vdb")
    );
    assert_eq!(out.storage_commands.len(), 1);

    // records
    let res: serde_json::Value =
        serde_json::from_str(&read(r, "/etc/.basalt-provision.json")).unwrap();
    assert_eq!(res["time"], 1_700_000_000);
    assert_eq!(res["applied"]["users"], 2);
    assert_eq!(res["storage_commands"][0]["argv"][0], "mkfs.ext4");
    let kargs: serde_json::Value =
        serde_json::from_str(&read(r, "/etc/basalt/kernel-args.json")).unwrap();
    assert_eq!(kargs["shouldExist"][0], "console=ttyS0");
    assert!(r.join("etc/.basalt-first-boot-done").exists());
    // no temp or backup files left behind
    let snap = snapshot(r);
    assert!(
        !snap
            .keys()
            .any(|k| k.contains(".basalt-tmp") || k.contains(".basalt-old")),
        "{:?}",
        snap.keys()
    );

    // second run: a no-op, even with a different config
    let before = snapshot(r);
    let out2 = apply_text(r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/new","contents":{"source":"data:,x"}}]}}"#, r).unwrap();
    assert!(out2.skipped);
    assert_eq!(before, snapshot(r));
}

#[test]
fn reproducible() {
    let (a, b) = (fake_root(), fake_root());
    apply_text(FULL, a.path()).unwrap();
    apply_text(FULL, b.path()).unwrap();
    assert_eq!(snapshot(a.path()), snapshot(b.path()));
}

/// Configs that pass validation but fail at apply: the root is unchanged
/// except for the failure record.
#[test]
fn failures_leave_root_unchanged() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core"}]},"storage":{"files":[{"path":"/a","contents":{"source":"data:,x"}},{"path":"/etc/passwd","contents":{"source":"data:,x"}}]}}"#,
            "file exists and overwrite is false",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/a","contents":{"source":"data:,x"},"user":{"name":"nobody-here"}}]}}"#,
            "owner user \"nobody-here\" does not exist",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"x","groups":["nope"]}]}}"#,
            "supplementary group \"nope\" does not exist",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core"}]},"storage":{"directories":[{"path":"/etc/passwd"}]}}"#,
            "exists and is not a directory",
        ),
        (
            r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/a","contents":{"source":"data:,x"}}],"links":[{"path":"/h","target":"/missing","hard":true}]}}"#,
            "hard link target /missing does not exist",
        ),
        (
            "#cloud-config\nwrite_files:\n  - path: /x\n    owner: ghost\n",
            "owner user \"ghost\" does not exist",
        ),
    ];
    for (cfg, want) in cases {
        let t = fake_root();
        let before = snapshot(t.path());
        let e = apply_text(cfg, t.path()).unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
        let mut after = snapshot(t.path());
        let rec = after
            .remove("/etc/.basalt-provision-failed.json")
            .expect("failure record");
        if let Ent::File { data, .. } = rec {
            let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
            assert!(v["error"].as_str().unwrap().contains(want), "{v}");
        }
        assert_eq!(before, after, "{want}");
    }
}

#[test]
fn bad_fetch_writes_nothing() {
    let t = fake_root();
    let before = snapshot(t.path());
    let cfg = r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[
        {"path":"/a","contents":{"source":"data:,x"}},
        {"path":"/b","contents":{"source":"data:,y","verification":{"hash":"sha256-0000000000000000000000000000000000000000000000000000000000000000"}}}]}}"#;
    let e = apply_text(cfg, t.path()).unwrap_err();
    assert!(e.contains("sha256 mismatch"), "{e}");
    assert_eq!(before, snapshot(t.path()));
}

#[test]
fn existing_files_and_overwrite_semantics() {
    let t = fake_root();
    let r = t.path();
    std::fs::write(r.join("etc/keep"), "old\n").unwrap();
    std::fs::write(r.join("etc/repl"), "old\n").unwrap();
    let cfg = r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[
        {"path":"/etc/keep","append":[{"source":"data:,new%0A"}]},
        {"path":"/etc/repl","overwrite":true,"contents":{"source":"data:,new%0A"},"mode":256}]}}"#;
    apply_text(cfg, r).unwrap();
    assert_eq!(read(r, "/etc/keep"), "old\nnew\n");
    assert_eq!(read(r, "/etc/repl"), "new\n");
    assert_eq!(meta(r, "/etc/repl").0, 0o400);
}

#[test]
fn merge_and_replace() {
    use base64::Engine;
    let child = r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/a","contents":{"source":"data:,child"},"overwrite":true},{"path":"/etc/c","contents":{"source":"data:,c"}}]}}"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(child);
    let parent = format!(
        r#"{{"ignition":{{"version":"3.4.0","config":{{"merge":[{{"source":"data:;base64,{b64}"}}]}}}},"storage":{{"files":[{{"path":"/etc/a","contents":{{"source":"data:,parent"}},"mode":384}},{{"path":"/etc/b","contents":{{"source":"data:,b"}}}}]}}}}"#
    );
    let t = fake_root();
    apply_text(&parent, t.path()).unwrap();
    assert_eq!(read(t.path(), "/etc/a"), "child");
    assert_eq!(
        meta(t.path(), "/etc/a").0,
        0o600,
        "parent's mode kept, child's contents win"
    );
    assert_eq!(read(t.path(), "/etc/b"), "b");
    assert_eq!(read(t.path(), "/etc/c"), "c");

    let replace = format!(
        r#"{{"ignition":{{"version":"3.4.0","config":{{"replace":{{"source":"data:;base64,{b64}"}}}}}},"storage":{{"files":[{{"path":"/etc/b","contents":{{"source":"data:,b"}}}}]}}}}"#
    );
    let t = fake_root();
    apply_text(&replace, t.path()).unwrap();
    assert_eq!(read(t.path(), "/etc/a"), "child");
    assert!(!t.path().join("etc/b").exists());
}

#[test]
fn script_user_data_runs_once_after_network() {
    let t = fake_root();
    let r = t.path();
    apply_text("#!/bin/sh\necho provisioned > /root/x\n", r).unwrap();
    assert_eq!(
        read(r, "/var/lib/basalt/firstboot/late/30-user-data"),
        "#!/bin/sh\necho provisioned > /root/x\n"
    );
    assert_eq!(
        meta(r, "/var/lib/basalt/firstboot/late/30-user-data").0,
        0o700
    );
    let unit = read(r, "/etc/systemd/system/basalt-firstboot.service");
    assert!(
        unit.contains("After=network-online.target")
            && unit.contains("ConditionPathExists=!/var/lib/basalt/firstboot/late.done"),
        "{unit}"
    );
    assert!(
        r.join("etc/systemd/system/multi-user.target.wants/basalt-firstboot.service")
            .is_symlink()
    );
}

#[test]
fn cloud_config_apply() {
    let t = fake_root();
    let r = t.path();
    let cfg = "#cloud-config\nhostname: node7\nmanage_etc_hosts: localhost\nssh_authorized_keys:\n  - ssh-ed25519 AAAA k1\nusers:\n  - name: alice\n    groups: [docker]\n    ssh_authorized_keys: [ssh-ed25519 BBBB k2]\nwrite_files:\n  - path: /home/alice/notes\n    owner: alice:alice\n    permissions: '0640'\n    content: hi\ncoreos:\n  etcd2:\n    name: n7\n  update:\n    reboot_strategy: 'off'\n  units:\n    - name: etcd.service\n      command: start\n      enable: yes\nmounts:\n  - [vdc, /mnt/scratch, ext4, nofail]\n";
    apply_text(cfg, r).unwrap();
    assert_eq!(read(r, "/etc/hostname"), "node7\n");
    assert!(read(r, "/etc/hosts").contains("127.0.1.1 node7\n"));
    assert!(read(r, "/etc/passwd").contains("core:x:1000:1000::/home/core:/bin/bash\n"));
    assert!(read(r, "/etc/group").contains("docker:x:990:alice\n"));
    assert_eq!(
        read(r, "/home/core/.ssh/authorized_keys"),
        "ssh-ed25519 AAAA k1\n"
    );
    assert_eq!(
        read(r, "/home/alice/.ssh/authorized_keys"),
        "ssh-ed25519 BBBB k2\n"
    );
    // users exist before files are chowned to them
    assert_eq!(meta(r, "/home/alice/notes"), (0o640, 1001, 1001));
    assert_eq!(
        read(r, "/etc/default/etcd"),
        "# Written by basalt-provision.\nETCD_NAME=\"n7\"\n"
    );
    assert!(read(r, "/etc/basalt/update.conf").contains("REBOOT_STRATEGY=\"off\"\n"));
    assert!(
        read(r, "/var/lib/basalt/firstboot/late/10-unit-commands")
            .contains("systemctl --no-block start etcd.service")
    );
    assert!(
        r.join("etc/systemd/system/multi-user.target.wants/etcd.service")
            .is_symlink()
    );
    let m = read(r, "/etc/systemd/system/mnt-scratch.mount");
    assert!(
        m.contains("What=/dev/vdc\nWhere=/mnt/scratch\nType=ext4\nOptions=nofail\n")
            && m.contains("WantedBy=local-fs.target"),
        "{m}"
    );
    assert!(
        !r.join("etc/systemd/system/basalt-storage.service").exists(),
        "mount-only entries format nothing"
    );
}

#[test]
fn http_contents_gzip_sha512_and_headers() {
    use sha2::Digest;
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"remote payload\n").unwrap();
    let gz = e.finish().unwrap();
    let h = hex::encode(sha2::Sha512::digest(&gz));
    let (base, log) = serve(
        vec![("/p.gz", 200, gz), ("/plain", 200, b"plain\n".to_vec())],
        2,
    );
    let cfg = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"files":[
        {{"path":"/etc/remote","contents":{{"source":"{base}/p.gz","compression":"gzip","verification":{{"hash":"sha512-{h}"}},"httpHeaders":[{{"name":"Authorization","value":"Bearer t0k"}}]}}}},
        {{"path":"/etc/plain","contents":{{"source":"{base}/plain"}}}}]}}}}"#
    );
    let t = fake_root();
    apply_text(&cfg, t.path()).unwrap();
    assert_eq!(read(t.path(), "/etc/remote"), "remote payload\n");
    assert_eq!(read(t.path(), "/etc/plain"), "plain\n");
    assert_eq!(
        log.lock().unwrap().clone(),
        vec!["/p.gz Bearer t0k", "/plain "]
    );

    // A 404 fails the whole config before anything is written.
    let (base, _) = serve(vec![], 1);
    let t = fake_root();
    let before = snapshot(t.path());
    let cfg = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"files":[{{"path":"/a","contents":{{"source":"data:,x"}}}},{{"path":"/b","contents":{{"source":"{base}/missing"}}}}]}}}}"#
    );
    let e = apply_text(&cfg, t.path()).unwrap_err();
    assert!(e.contains("HTTP status 404"), "{e}");
    assert_eq!(before, snapshot(t.path()));
}

/// An image's default user exists in /etc/passwd but its home (on ROOT)
/// does not exist before the first boot: keys for it create the home.
#[test]
fn keys_for_existing_user_create_missing_home() {
    let t = fake_root();
    let r = t.path();
    let passwd = read(r, "/etc/passwd");
    std::fs::write(
        r.join("etc/passwd"),
        format!("{passwd}core:x:500:500:Basalt default user:/home/core:/bin/bash\n"),
    )
    .unwrap();
    let group = read(r, "/etc/group");
    std::fs::write(r.join("etc/group"), format!("{group}core:x:500:\n")).unwrap();
    assert!(!r.join("home/core").exists());
    let cfg = r#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAAC3 k@x"]}]}}"#;
    apply_text(cfg, r).unwrap();
    assert_eq!(meta(r, "/home/core").1, 500, "home owned by core");
    assert_eq!(
        read(r, "/home/core/.ssh/authorized_keys"),
        "ssh-ed25519 AAAAC3 k@x\n"
    );
    assert_eq!(meta(r, "/home/core/.ssh/authorized_keys").1, 500);
}
