//! Both formats produce the same result for the same intent, and
//! `translate` (cloud-config → Ignition) preserves it.

mod common;
use basalt_provisioner::{translate, userdata};
use common::*;

const CLOUD: &str = r#"#cloud-config
hostname: box1
ssh_authorized_keys:
  - ssh-ed25519 AAAA admin
users:
  - name: web
    groups: [docker]
    shell: /bin/sh
    gecos: Web
write_files:
  - path: /etc/app/app.conf
    permissions: '0640'
    owner: web:docker
    content: |
      listen = 8080
  - path: /etc/app/blob
    encoding: b64
    content: AAECAw==
coreos:
  units:
    - name: app.service
      enable: true
      content: |
        [Service]
        ExecStart=/usr/bin/app
        [Install]
        WantedBy=multi-user.target
      drop_ins:
        - name: 10-env.conf
          content: |
            [Service]
            Environment=X=1
    - name: telnet.socket
      mask: true
    - name: 20-lan.network
      content: |
        [Match]
        Name=en*
        [Network]
        DHCP=yes
"#;

const IGN: &str = r#"{
  "ignition": {"version": "3.4.0"},
  "passwd": {"users": [
    {"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA admin"]},
    {"name": "web", "groups": ["docker"], "shell": "/bin/sh", "gecos": "Web"}
  ]},
  "storage": {"files": [
    {"path": "/etc/hostname", "contents": {"source": "data:,box1%0A"}, "mode": 420, "overwrite": true},
    {"path": "/etc/app/app.conf", "contents": {"source": "data:,listen%20%3D%208080%0A"}, "mode": 416, "user": {"name": "web"}, "group": {"name": "docker"}, "overwrite": true},
    {"path": "/etc/app/blob", "contents": {"source": "data:;base64,AAECAw=="}, "mode": 420, "overwrite": true},
    {"path": "/etc/systemd/network/20-lan.network", "contents": {"source": "data:,%5BMatch%5D%0AName%3Den*%0A%5BNetwork%5D%0ADHCP%3Dyes%0A"}, "mode": 420, "overwrite": true}
  ]},
  "systemd": {"units": [
    {"name": "app.service", "enabled": true, "contents": "[Service]\nExecStart=/usr/bin/app\n[Install]\nWantedBy=multi-user.target\n",
     "dropins": [{"name": "10-env.conf", "contents": "[Service]\nEnvironment=X=1\n"}]},
    {"name": "telnet.socket", "mask": true}
  ]}
}"#;

/// Snapshot without the result file (it names the format).
fn result_tree(text: &str) -> std::collections::BTreeMap<String, Ent> {
    let t = fake_root();
    apply_text(text, t.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut s = snapshot(t.path());
    assert!(s.remove("/etc/.basalt-provision.json").is_some());
    s
}

#[test]
fn same_intent_same_tree() {
    let a = result_tree(CLOUD);
    let b = result_tree(IGN);
    let only_a: Vec<_> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    let only_b: Vec<_> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "differ: cloud {only_a:?} vs ignition {only_b:?}"
    );
    assert!(
        a.contains_key("/home/web/.ssh") == false
            && a.contains_key("/home/core/.ssh/authorized_keys")
    );
}

#[test]
fn translate_preserves_the_result() {
    let loaded = userdata::load_str(CLOUD).unwrap();
    let json = translate::to_ignition(&loaded.plan).unwrap();
    let text = serde_json::to_string_pretty(&json).unwrap();
    // The output is valid Ignition with no warnings...
    let parsed = basalt_provisioner::ignition::parse(&text)
        .unwrap_or_else(|r| panic!("{}", r.render("out")));
    assert_eq!(parsed.warnings.diagnostics, vec![]);
    // ...and applies to the same tree.
    assert_eq!(result_tree(CLOUD), result_tree(&text));
}

#[test]
fn translate_more_cloud_configs() {
    let cases = [
        "#cloud-config\nruncmd:\n  - echo hi\nbootcmd:\n  - [echo, early]\n",
        "#cloud-config\nmounts:\n  - [vdb, /data, xfs, \"noatime,nofail\"]\n",
        "#cloud-config\ncoreos:\n  etcd2:\n    name: e1\n  update:\n    group: beta\n  units:\n    - name: etcd.service\n      command: restart\n",
        "#cloud-config\nhostname: h\nmanage_etc_hosts: true\n",
    ];
    for c in cases {
        let loaded = userdata::load_str(c).unwrap();
        let text = serde_json::to_string(&translate::to_ignition(&loaded.plan).unwrap()).unwrap();
        assert_eq!(result_tree(c), result_tree(&text), "{c}");
    }
}
