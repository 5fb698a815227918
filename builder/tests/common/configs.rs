//! The test's first-boot configs: one Ignition config and a cloud-config with
//! the same intent, and what the guest must show for them.

use serde_json::json;

pub const HELLO: &str = "hello basalt";
pub const ETCD_NAME: &str = "basalt-e2e";
pub const DUMMY_ADDR: &str = "10.254.0.1";

const TEST_UNIT: &str = "[Unit]\nDescription=Basalt boot test unit\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'mkdir -p /var/lib/basalt-test && echo \"$GREETING\" > /var/lib/basalt-test/ran'\n\n[Install]\nWantedBy=multi-user.target\n";
const TEST_DROPIN: &str = "[Service]\nEnvironment=GREETING=from-dropin\n";
const MOUNT_UNIT: &str = "[Unit]\nDescription=Basalt boot test mount\n\n[Mount]\nWhat=tmpfs\nWhere=/mnt/scratch\nType=tmpfs\nOptions=size=16m\n\n[Install]\nWantedBy=multi-user.target\n";
const NETDEV: &str = "[NetDev]\nName=dummy0\nKind=dummy\n";
const NETWORK: &str = "[Match]\nName=dummy0\n\n[Network]\nAddress=10.254.0.1/24\n";
/// A .link file naming the NIC (the cloud-config boot): /init must leave
/// naming to udev, which applies it.
pub const LAN_LINK_PATH: &str = "/etc/systemd/network/10-basalt-lan.link";
pub const LAN_NAME: &str = "lan0";
const LAN_LINK: &str = "[Match]\nDriver=virtio_net\n\n[Link]\nName=lan0\n";
const GREET: &str = "#!/bin/sh\necho greetings\n";
pub const MOUNT_UNIT_NAME: &str = "mnt-scratch.mount";

fn data_url(s: &str) -> String {
    let mut out = String::from("data:,");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Ignition 3.4.0: files, directories, links, units (enabled + started via
/// WantedBy), drop-ins, masks, networkd files, a mount unit, users, groups,
/// ssh keys for core, hostname and etcd settings.
pub fn ignition(pubkey: &str, hostname: &str) -> String {
    let file = |path: &str, contents: &str, mode: u32| json!({"path": path, "mode": mode, "overwrite": true, "contents": {"source": data_url(contents)}});
    let cfg = json!({
        "ignition": {"version": "3.4.0"},
        "passwd": {
            "users": [
                {"name": "core", "sshAuthorizedKeys": [pubkey]},
                {"name": "tester", "groups": ["testers"]}
            ],
            "groups": [{"name": "testers", "gid": 4242}]
        },
        "storage": {
            "files": [
                file("/etc/hostname", &format!("{hostname}\n"), 0o644),
                file("/etc/basalt-test/hello.txt", HELLO, 0o644),
                file("/opt/bin/greet", GREET, 0o755),
                file("/etc/default/etcd", &format!("ETCD_NAME=\"{ETCD_NAME}\"\n"), 0o644),
                file("/etc/systemd/network/50-dummy0.netdev", NETDEV, 0o644),
                file("/etc/systemd/network/50-dummy0.network", NETWORK, 0o644)
            ],
            "directories": [{"path": "/var/lib/basalt-test", "mode": 0o750, "user": {"name": "tester"}}],
            "links": [{"path": "/etc/basalt-test/link", "target": "/etc/basalt-test/hello.txt"}]
        },
        "systemd": {
            "units": [
                {"name": "basalt-test.service", "enabled": true, "contents": TEST_UNIT,
                 "dropins": [{"name": "10-greeting.conf", "contents": TEST_DROPIN}]},
                {"name": MOUNT_UNIT_NAME, "enabled": true, "contents": MOUNT_UNIT},
                {"name": "basalt-masked.service", "mask": true}
            ]
        }
    });
    serde_json::to_string_pretty(&cfg).expect("serialising the Ignition config")
}

fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The same intent as #cloud-config (coreos-cloudinit keys). cloud-config has
/// no group creation: tester gets the existing `docker` group instead.
pub fn cloud_config(pubkey: &str, hostname: &str) -> String {
    let wf = |path: &str, perm: &str, content: &str| {
        format!(
            "  - path: {path}\n    permissions: \"{perm}\"\n    content: |\n{}\n",
            indent(content, 6)
        )
    };
    let mut s = String::from("#cloud-config\n");
    s += &format!("hostname: {hostname}\n");
    s += &format!("ssh_authorized_keys:\n  - \"{pubkey}\"\n");
    s += "users:\n  - name: tester\n    groups: [docker]\n";
    s += "write_files:\n";
    s += &wf("/etc/basalt-test/hello.txt", "0644", HELLO);
    s += &wf("/opt/bin/greet", "0755", GREET);
    s += &wf("/etc/systemd/network/50-dummy0.netdev", "0644", NETDEV);
    s += &wf("/etc/systemd/network/50-dummy0.network", "0644", NETWORK);
    s += &wf(LAN_LINK_PATH, "0644", LAN_LINK);
    s += "coreos:\n";
    s += &format!("  etcd2:\n    name: {ETCD_NAME}\n");
    s += "  units:\n";
    s += "    - name: basalt-test.service\n      enable: true\n      command: start\n      content: |\n";
    s += &indent(TEST_UNIT, 8);
    s += "\n      drop_ins:\n        - name: 10-greeting.conf\n          content: |\n";
    s += &indent(TEST_DROPIN, 12);
    s += &format!(
        "\n    - name: {MOUNT_UNIT_NAME}\n      enable: true\n      command: start\n      content: |\n"
    );
    s += &indent(MOUNT_UNIT, 8);
    s += "\n    - name: basalt-masked.service\n      mask: true\n";
    s
}

/// A config the provisioner must refuse: a relative file path.
pub const BROKEN_PATH: &str = "etc/not-absolute.txt";
pub fn broken_ignition() -> String {
    json!({
        "ignition": {"version": "3.4.0"},
        "storage": {"files": [{"path": BROKEN_PATH, "contents": {"source": "data:,x"}}]}
    })
    .to_string()
}
