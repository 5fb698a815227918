//! Loading the drivers of the network interfaces that are present before
//! switch_root, from the verified /usr (`/sysroot/usr/lib/modules`).
//!
//! Without this the real root's udev loads them during its coldplug, in
//! turn with every other device's driver (watchdog, SMBus, sound, DRM, ...),
//! and the interface appears, is renamed and gets configured by
//! systemd-networkd only once that queue reaches it: under QEMU TCG the
//! default image's NIC was renamed 34 s into userspace. With the driver
//! loaded here the interface exists when udev starts, and udev triggers the
//! `net` subsystem first.
//!
//! The loading runs on a thread of its own (`Loading`), started as soon as
//! /sysroot/usr is mounted and joined just before switch_root, so that it
//! overlaps seeding /etc and the first boot's provisioning (under QEMU TCG
//! loading virtio_net took about 0.3 s of /init's critical path).
//!
//! Only drivers whose `alias` patterns (modules.alias) match the modalias
//! of a PCI or virtio device present are loaded, so a machine without such
//! a NIC pays nothing. A failure is reported and never fatal: udev loads
//! the driver later as usual.

use std::path::Path;

use super::fatal;
use super::modules;
use super::net::{NIC_MODULES, dep_chain};

/// Buses whose devices' `modalias` files are matched.
const BUSES: &[&str] = &["/sys/bus/pci/devices", "/sys/bus/virtio/devices"];

/// The drivers among `wanted` that some device in `modaliases` needs,
/// according to `modules_alias` (lines `alias PATTERN MODULE`); sorted,
/// each once.
pub fn drivers_for(modules_alias: &str, modaliases: &[String], wanted: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in modules_alias.lines() {
        let mut f = line.split_whitespace();
        let (Some("alias"), Some(pat), Some(module), None) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if !wanted.contains(&module) || out.iter().any(|m| m == module) {
            continue;
        }
        if modaliases.iter().any(|m| basalt_fnmatch::matches(pat, m)) {
            out.push(module.to_string());
        }
    }
    out.sort();
    out
}

/// The modalias of every PCI and virtio device, sorted.
fn device_modaliases() -> Vec<String> {
    let mut out = Vec::new();
    for bus in BUSES {
        let Ok(rd) = std::fs::read_dir(bus) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = std::fs::read_to_string(e.path().join("modalias")) {
                out.push(m.trim().to_string());
            }
        }
    }
    out.sort();
    out
}

/// NIC drivers being loaded in the background (see the module
/// documentation).
pub struct Loading(Option<std::thread::JoinHandle<Vec<String>>>);

impl Loading {
    /// Starts loading the drivers of the NICs present from `sysroot`'s
    /// modules. If no thread can be started they are loaded at once.
    pub fn start(sysroot: &Path) -> Loading {
        let root = sysroot.to_path_buf();
        match std::thread::Builder::new()
            .name("nic-drivers".into())
            .spawn(move || load_present(&root))
        {
            Ok(h) => Loading(Some(h)),
            Err(e) => {
                fatal::warn(format!("network drivers: starting a thread: {e}"));
                Loading(None)
            }
        }
    }

    /// Waits for the loading to end; returns the drivers loaded or
    /// already present.
    pub fn finish(self) -> Vec<String> {
        match self.0.map(std::thread::JoinHandle::join) {
            None => Vec::new(),
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                fatal::warn("network drivers: the loading thread failed; udev will load them");
                Vec::new()
            }
        }
    }
}

/// Load the drivers of the NICs present (see the module documentation);
/// returns the drivers loaded or already present. Never fails the boot.
pub fn load_present(sysroot: &Path) -> Vec<String> {
    let uname = rustix::system::uname();
    let kver = uname.release().to_string_lossy().into_owned();
    let dir = sysroot.join("usr/lib/modules").join(&kver);
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let (alias, dep) = match (read("modules.alias"), read("modules.dep")) {
        (Ok(a), Ok(d)) => (a, d),
        (Err(e), _) | (_, Err(e)) => {
            fatal::warn(format!(
                "network drivers: reading {}: {e}; udev will load them",
                dir.display()
            ));
            return Vec::new();
        }
    };
    let mut loaded = Vec::new();
    for name in drivers_for(&alias, &device_modaliases(), NIC_MODULES) {
        let Some(chain) = dep_chain(&dep, &name) else {
            continue;
        };
        let failed = chain
            .iter()
            .find_map(|rel| modules::load(&dir.join(rel)).err());
        match failed {
            Some(e) => fatal::warn(format!("network drivers: {e}; udev will retry")),
            None => loaded.push(name),
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_for_present_devices_only() {
        let alias = "alias virtio:d00000001v* virtio_net\n\
                     alias pci:v00001D0Fd0000EC20sv*sd*bc*sc*i* ena\n\
                     alias virtio:d00000002v* virtio_blk\n\
                     alias virtio:d00000001v* virtio_net\n\
                     bogus line\n";
        let devs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (present, want) in [
            (
                devs(&["virtio:d00000001v00001AF4", "virtio:d00000002v00001AF4"]),
                vec!["virtio_net"],
            ),
            (
                devs(&["pci:v00001D0Fd0000EC20sv00001D0Fsd00000000bc02sc00i00"]),
                vec!["ena"],
            ),
            (devs(&["virtio:d00000002v00001AF4"]), vec![]),
            (devs(&[]), vec![]),
        ] {
            assert_eq!(
                drivers_for(alias, &present, &["virtio_net", "ena"]),
                want,
                "{present:?}"
            );
        }
    }
}
