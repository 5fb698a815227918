//! Predictable interface names given before systemd starts.
//!
//! When udev renames a NIC (eth0 → enp0s2) during its coldplug, the kernel
//! answers with a `move` uevent whose sequence number comes after every
//! event `udevadm trigger` has just queued, and systemd-networkd waits
//! ("Device is renaming") until udev has processed it: under QEMU TCG that
//! held the DHCP lease back by 3–5 s. So /init, once in the real root,
//! gives each NIC whose driver it loaded the name udev would give it: the
//! `net_id` builtin of the real root's own udevadm computes the candidates,
//! and the NamePolicy= of systemd's stock 99-default.link picks one. udev
//! then keeps that name (policy `keep`: a name userspace gave), and no
//! `move` event is needed.
//!
//! This runs in a child process that /init forks just before it execs
//! systemd, so the udevadm run (about 0.5 s under TCG) overlaps systemd's
//! own start-up, which takes longer than that before udevd even starts. If
//! udev does get to an interface first, it gives it the same name itself
//! and the rename here is skipped.
//!
//! Anything that could make udev choose differently leaves the NIC to udev
//! as usual: `net.ifnames=` on the command line, any .link file or udev
//! rule or hwdb entry besides the stock ones (for instance written by
//! Ignition), a device that is not a PCI function in PCI domain 0 (USB
//! NICs have hwdb and rule-based names; the domain prefix depends on hwdb),
//! or an interface that is already up. Nothing here is fatal.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fatal;
use super::sys::{self, IfReq};

/// The .link files systemd 257 and udev ship in /usr/lib/systemd/network:
/// 99-default.link matches every other device; the rest match USB NICs by
/// property or virtual devices by kind, never a PCI NIC.
pub const STOCK_LINKS: &[&str] = &[
    "73-usb-net-by-mac.link",
    "80-6rd-tunnel.link",
    "80-container-vb.link",
    "80-container-ve.link",
    "80-container-vz.link",
    "80-namespace-ns.link",
    "80-vm-vt.link",
    "99-default.link",
];
/// Directories whose .link files would override or precede the stock ones
/// (systemd.link(5)).
const LOCAL_LINK_DIRS: &[&str] = &[
    "etc/systemd/network",
    "run/systemd/network",
    "usr/local/lib/systemd/network",
];
/// Local udev rules and hwdb sources, which may name interfaces too.
const LOCAL_UDEV_DIRS: &[&str] = &["etc/udev/rules.d", "run/udev/rules.d", "etc/udev/hwdb.d"];
const USR_LINK_DIR: &str = "usr/lib/systemd/network";
const DEFAULT_LINK: &str = "usr/lib/systemd/network/99-default.link";
/// `name_assign_type` values (include/uapi/linux/netdevice.h).
const NET_NAME_PREDICTABLE: u8 = 2;
const NET_NAME_USER: u8 = 3;
const NET_NAME_RENAMED: u8 = 4;
/// IFF_UP (include/uapi/linux/if.h).
const IFF_UP: u32 = 0x1;
/// Bound for one `udevadm test-builtin net_id` run.
const NET_ID_TIMEOUT: Duration = Duration::from_secs(5);
/// The real root's udevadm (run after the chroot into it).
const UDEVADM: &str = "/usr/bin/udevadm";

/// What the name policy decides for one interface.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep the current name (why).
    Keep(&'static str),
    /// Rename to this name.
    Rename(String),
}

/// The NamePolicy= words of a .link file's [Link] section (the last
/// assignment wins; an empty one clears the list).
pub fn name_policy(link: &str) -> Vec<String> {
    let mut section = "";
    let mut out = Vec::new();
    for line in link.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Link]"
            && let Some(v) = line.strip_prefix("NamePolicy=")
        {
            out = v.split_whitespace().map(str::to_string).collect();
        }
    }
    out
}

/// Applies `policy` the way udev's net_setup_link does to an interface
/// named by the kernel with `assign_type`, given the ID_NET_NAME_* values
/// of the `net_id` builtin. `database` never applies: the stock hwdb names
/// only USB devices, which are never renamed here.
pub fn decide(policy: &[String], assign_type: u8, ids: &BTreeMap<String, String>) -> Decision {
    for p in policy {
        let key = match p.as_str() {
            "keep" if [NET_NAME_USER, NET_NAME_RENAMED].contains(&assign_type) => {
                return Decision::Keep("named by userspace already");
            }
            "kernel" if assign_type == NET_NAME_PREDICTABLE => {
                return Decision::Keep("the kernel's name is predictable");
            }
            "onboard" => "ID_NET_NAME_ONBOARD",
            "slot" => "ID_NET_NAME_SLOT",
            "path" => "ID_NET_NAME_PATH",
            "mac" => "ID_NET_NAME_MAC",
            _ => continue,
        };
        if let Some(name) = ids.get(key).filter(|n| !n.is_empty()) {
            return Decision::Rename(name.clone());
        }
    }
    Decision::Keep("no policy yields a name")
}

/// The `ID_NET_NAME_*=` lines of `udevadm test-builtin net_id` output.
pub fn parse_ids(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.starts_with("ID_NET_NAME_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Why udev might name NICs differently from the stock policy under `root`
/// with this kernel command line, or None when the stock policy applies.
pub fn why_not(root: &Path, cmdline: &str) -> Option<String> {
    if let Some(w) = cmdline
        .split_whitespace()
        .find(|w| w.starts_with("net.ifnames="))
    {
        return Some(format!("`{w}` is on the kernel command line"));
    }
    let files = |dir: &str| sorted_names(&root.join(dir));
    let local = LOCAL_LINK_DIRS
        .iter()
        .flat_map(|d| {
            files(d)
                .into_iter()
                .filter(|f| f.ends_with(".link"))
                .map(move |f| (d, f))
        })
        .chain(
            LOCAL_UDEV_DIRS
                .iter()
                .flat_map(|d| files(d).into_iter().map(move |f| (d, f))),
        )
        .next();
    if let Some((dir, f)) = local {
        return Some(format!("/{dir}/{f} may name interfaces"));
    }
    let extra = files(USR_LINK_DIR)
        .into_iter()
        .find(|f| f.ends_with(".link") && !STOCK_LINKS.contains(&f.as_str()));
    if let Some(f) = extra {
        return Some(format!("/{USR_LINK_DIR}/{f} is not a stock .link file"));
    }
    None
}

/// Whether the device behind an interface (its canonical sysfs path) is a
/// PCI function in domain 0 and not on USB.
pub fn pci_domain0(device: &Path) -> bool {
    let s = device.to_string_lossy();
    s.starts_with("/sys/devices/pci0000:") && !s.contains("/usb")
}

/// The UTF-8 entry names of `dir`, sorted; none when it cannot be read.
fn sorted_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Runs the real root's `udevadm test-builtin net_id` on `iface`, bounded.
fn net_id(iface: &str) -> Result<BTreeMap<String, String>, String> {
    let mut child = Command::new(UDEVADM)
        .args(["test-builtin", "net_id"])
        .arg(format!("/sys/class/net/{iface}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("running {UDEVADM}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < NET_ID_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{UDEVADM} did not finish in {NET_ID_TIMEOUT:?}"));
            }
            Err(e) => return Err(format!("waiting for {UDEVADM}: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("reading {UDEVADM}'s output: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{UDEVADM} test-builtin net_id failed: {}",
            out.status
        ));
    }
    Ok(parse_ids(&String::from_utf8_lossy(&out.stdout)))
}

/// Renames `from` to `to` (SIOCSIFNAME; the interface must be down).
fn rename(from: &str, to: &str) -> Result<(), String> {
    let mut req = IfReq {
        name: [0; 16],
        data: [0; 24],
    };
    for (buf, name) in [(&mut req.name[..], from), (&mut req.data[..16], to)] {
        if name.is_empty() || name.len() >= 16 {
            return Err(format!("interface name {name:?} is not 1 to 15 bytes"));
        }
        buf[..name.len()].copy_from_slice(name.as_bytes());
    }
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("socket: {e}"))?;
    sys::if_ioctl(sock.as_fd(), sys::SIOCSIFNAME, &mut req).map_err(|e| e.to_string())
}

/// Gives the NICs in `ifaces` their predictable names (see the module
/// documentation). Runs in the real root, after the chroot into it;
/// returns the renames done. Never fails the boot.
pub fn name_present(cmdline: &str) -> Vec<(String, String)> {
    let root = Path::new("/");
    if let Some(why) = why_not(root, cmdline) {
        fatal::info(format!("interface names left to udev: {why}"));
        return Vec::new();
    }
    let policy = match std::fs::read_to_string(root.join(DEFAULT_LINK)) {
        Ok(t) => name_policy(&t),
        Err(e) => {
            fatal::info(format!(
                "interface names left to udev: /{DEFAULT_LINK}: {e}"
            ));
            return Vec::new();
        }
    };
    let mut done = Vec::new();
    for iface in sorted_names(Path::new("/sys/class/net")) {
        let dir = Path::new("/sys/class/net").join(&iface);
        let Ok(device) = std::fs::canonicalize(dir.join("device")) else {
            continue; // virtual (lo, ...)
        };
        if !pci_domain0(&device) {
            continue;
        }
        let flags = read_trimmed(&dir.join("flags"))
            .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
        let assign = read_trimmed(&dir.join("name_assign_type")).and_then(|t| t.parse().ok());
        let (Some(flags), Some(assign)) = (flags, assign) else {
            continue;
        };
        if flags & IFF_UP != 0 {
            continue;
        }
        let to = match net_id(&iface).map(|ids| decide(&policy, assign, &ids)) {
            Ok(Decision::Rename(to)) if to != iface => to,
            Ok(_) => continue,
            Err(e) => {
                fatal::warn(format!("naming {iface}: {e}; udev will name it"));
                continue;
            }
        };
        match rename(&iface, &to) {
            Ok(()) => {
                fatal::info(format!("{iface} renamed {to} (udev's predictable name)"));
                done.push((iface, to));
            }
            // udev was quicker (this runs beside systemd's start-up).
            Err(_) if Path::new("/sys/class/net").join(&to).exists() => {}
            Err(e) => fatal::warn(format!("renaming {iface} to {to}: {e}; udev will name it")),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn policy_from_link() {
        let stock = "[Match]\nOriginalName=*\n\n[Link]\n\
                     NamePolicy=keep kernel database onboard slot path\n\
                     AlternativeNamesPolicy=database onboard slot path mac\n";
        for (text, want) in [
            (
                stock,
                vec!["keep", "kernel", "database", "onboard", "slot", "path"],
            ),
            ("[Link]\nNamePolicy=mac\nNamePolicy=path\n", vec!["path"]),
            ("[Link]\nNamePolicy=path\nNamePolicy=\n", vec![]),
            ("[Match]\nNamePolicy=path\n", vec![]),
            ("", vec![]),
        ] {
            assert_eq!(name_policy(text), want, "{text:?}");
        }
    }

    #[test]
    fn decide_follows_the_policy_order() {
        let stock: Vec<String> = ["keep", "kernel", "database", "onboard", "slot", "path"]
            .map(String::from)
            .to_vec();
        let path = ids(&[("ID_NET_NAME_PATH", "enp0s2"), ("ID_NET_NAME_MAC", "enx52")]);
        let slot = ids(&[("ID_NET_NAME_SLOT", "ens5"), ("ID_NET_NAME_PATH", "enp0s5")]);
        let onboard = ids(&[
            ("ID_NET_NAME_ONBOARD", "eno1"),
            ("ID_NET_NAME_SLOT", "ens1"),
        ]);
        let rename = |n: &str| Decision::Rename(n.to_string());
        for (assign, found, want) in [
            (1, &path, rename("enp0s2")),
            (1, &slot, rename("ens5")),
            (1, &onboard, rename("eno1")),
            (0, &path, rename("enp0s2")),
            (
                NET_NAME_PREDICTABLE,
                &path,
                Decision::Keep("the kernel's name is predictable"),
            ),
            (
                NET_NAME_USER,
                &path,
                Decision::Keep("named by userspace already"),
            ),
            (
                NET_NAME_RENAMED,
                &slot,
                Decision::Keep("named by userspace already"),
            ),
            (
                1,
                &ids(&[("ID_NET_NAME_MAC", "enx52")]),
                Decision::Keep("no policy yields a name"),
            ),
        ] {
            assert_eq!(decide(&stock, assign, found), want, "{assign} {found:?}");
        }
        let mac: Vec<String> = vec!["mac".into()];
        assert_eq!(decide(&mac, 1, &path), rename("enx52"));
    }

    #[test]
    fn ids_from_udevadm_output() {
        let out = "ID_NET_NAMING_SCHEME=v257\nID_NET_NAME_MAC=enx525400123456\n\
                   ID_NET_NAME_PATH=enp0s2\nnoise\n";
        assert_eq!(
            parse_ids(out),
            ids(&[
                ("ID_NET_NAME_MAC", "enx525400123456"),
                ("ID_NET_NAME_PATH", "enp0s2")
            ])
        );
    }

    #[test]
    fn only_pci_domain0_devices() {
        for (path, want) in [
            ("/sys/devices/pci0000:00/0000:00:02.0/virtio0", true),
            ("/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0", true),
            ("/sys/devices/pci0001:00/0001:00:02.0", false),
            (
                "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0",
                false,
            ),
            ("/sys/devices/virtual/net/dummy0", false),
        ] {
            assert_eq!(pci_domain0(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn local_naming_config_leaves_names_to_udev() {
        let base = std::env::temp_dir().join(format!("basalt-ifname-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let usr = base.join(USR_LINK_DIR);
        std::fs::create_dir_all(&usr).unwrap();
        for f in STOCK_LINKS {
            std::fs::write(usr.join(f), "").unwrap();
        }
        std::fs::write(usr.join("80-basalt-dhcp.network"), "").unwrap();
        let etc = base.join("etc/systemd/network");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("50-dummy0.network"), "").unwrap();
        assert_eq!(why_not(&base, "console=ttyS0 panic=10"), None);
        assert!(
            why_not(&base, "net.ifnames=0")
                .unwrap()
                .contains("net.ifnames=0")
        );
        for (path, says) in [
            ("usr/lib/systemd/network/10-extra.link", "not a stock .link"),
            (
                "etc/udev/hwdb.d/70-names.hwdb",
                "/etc/udev/hwdb.d/70-names.hwdb",
            ),
            (
                "etc/udev/rules.d/70-net.rules",
                "/etc/udev/rules.d/70-net.rules",
            ),
            (
                "run/systemd/network/10-x.link",
                "/run/systemd/network/10-x.link",
            ),
            (
                "etc/systemd/network/10-lan.link",
                "/etc/systemd/network/10-lan.link",
            ),
        ] {
            let p = base.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
            let why = why_not(&base, "").unwrap();
            assert!(why.contains(says), "{path}: {why}");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
