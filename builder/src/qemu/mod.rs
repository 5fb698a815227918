//! Running Basalt images under QEMU (`basalt boot` and the boot tests).
//!
//! `accel` decides KVM or TCG with a bounded probe, `firmware` finds OVMF,
//! `command` turns a [`VmSpec`] into QEMU's arguments, `port` picks the ssh
//! forward, `runner` checks the inputs and runs QEMU, `sys` holds the only
//! `unsafe` (parent-death signal).

mod accel;
mod command;
mod error;
mod firmware;
mod forward;
mod port;
mod pxe;
mod runner;
mod sys;

#[allow(unused_imports)]
pub use accel::{Accel, AccelChoice, PROBE_TIMEOUT, choose as choose_accel, probe as probe_accel};
#[allow(unused_imports)]
pub use command::{
    CONFIG_FW_CFG_KEY, Console, DiskFormat, FirmwareSetup, METADATA_NET, Network, VmSpec, qemu_args,
};
#[allow(unused_imports)]
pub use error::QemuError;
#[allow(unused_imports)]
pub use firmware::{Firmware, Ovmf, find_ovmf};
pub use forward::Forward;
#[allow(unused_imports)]
pub use port::{check_port, free_port};
#[allow(unused_imports)]
pub use pxe::{
    PXE_DEFAULT_MEMORY_MIB, PxeArtifacts, PxeBoot, PxeOptions, PxeSpec, PxeVm, parse_script,
    pxe_args,
};
#[allow(unused_imports)]
pub use runner::{BootOptions, ConsoleChoice, QEMU, SHARE, Vm, default_console_log};
