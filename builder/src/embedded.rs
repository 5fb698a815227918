//! The on-machine programs, built statically by build.rs and embedded here.

/// The initramfs `/init` (provisioner crate, `basalt-init`).
pub static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/basalt-init"));
/// The first-boot provisioner CLI, installed as /usr/bin/basalt-provision.
pub static PROVISION: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/basalt-provision"));
/// The A/B update agent, installed as /usr/bin/basalt-update.
pub static UPDATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/basalt-update"));
