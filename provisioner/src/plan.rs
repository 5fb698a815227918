//! The typed internal plan both config formats translate into. The apply step
//! only ever sees a `Plan`; it never knows which format it came from.
//!
//! Paths are absolute and normalised ("/etc/hostname"). Contents are either
//! inline bytes (already decoded) or a remote resource fetched and verified in
//! the fetch phase, before anything is written.

use serde::Serialize;
use std::collections::BTreeMap;

/// A whole first-boot configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub groups: Vec<GroupPlan>,
    pub users: Vec<UserPlan>,
    pub directories: Vec<DirPlan>,
    pub files: Vec<FilePlan>,
    pub links: Vec<LinkPlan>,
    pub units: Vec<UnitPlan>,
    pub filesystems: Vec<FsPlan>,
    pub disks: Vec<DiskPlan>,
    pub kernel_args: KernelArgs,
    /// CA certificates to trust when fetching (PEM bytes or resources).
    pub tls_cas: Vec<Source>,
    pub proxy: Proxy,
    pub timeouts: Timeouts,
}

/// Where content comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Source {
    /// Already decoded bytes.
    Inline(Vec<u8>),
    /// A URL (`data:`, `http:`, `https:`), fetched in the fetch phase.
    Remote(Resource),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub url: String,
    pub gzip: bool,
    pub hash: Option<Hash>,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Hash {
    Sha256([u8; 32]),
    Sha512(Vec<u8>),
}

/// A file or group owner, by id or by name (resolved after users are created).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Owner {
    Id(u32),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilePlan {
    pub path: String,
    /// None: keep existing contents (or create empty).
    pub contents: Option<Source>,
    pub append: Vec<Source>,
    pub mode: Option<u32>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
    /// Ignition's `overwrite`: replace an existing node at `path`.
    pub overwrite: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirPlan {
    pub path: String,
    pub mode: Option<u32>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
    pub overwrite: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkPlan {
    pub path: String,
    pub target: String,
    pub hard: bool,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
    pub overwrite: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserPlan {
    pub name: String,
    pub uid: Option<u32>,
    pub password_hash: Option<String>,
    pub ssh_keys: Vec<String>,
    pub groups: Vec<String>,
    pub primary_group: Option<String>,
    pub home_dir: Option<String>,
    pub no_create_home: bool,
    pub shell: Option<String>,
    pub system: bool,
    pub gecos: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupPlan {
    pub name: String,
    pub gid: Option<u32>,
    pub password_hash: Option<String>,
    pub system: bool,
}

/// Which systemd directory a unit goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UnitKind {
    /// /etc/systemd/system
    Systemd,
    /// /etc/systemd/network (.network, .netdev, .link)
    Networkd,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitPlan {
    pub name: String,
    pub kind: UnitKind,
    pub contents: Option<String>,
    /// Some(true) enable, Some(false) disable, None leave alone.
    pub enabled: Option<bool>,
    pub mask: bool,
    pub dropins: Vec<DropinPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropinPlan {
    pub name: String,
    pub contents: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum FsFormat {
    Ext4,
    Xfs,
    Vfat,
    Swap,
    /// Given by a cloud-config `mounts` entry: mount only, never formatted.
    Other(String),
}

impl FsFormat {
    pub fn name(&self) -> &str {
        match self {
            FsFormat::Ext4 => "ext4",
            FsFormat::Xfs => "xfs",
            FsFormat::Vfat => "vfat",
            FsFormat::Swap => "swap",
            FsFormat::Other(s) => s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FsPlan {
    pub device: String,
    /// None: do not format, only mount.
    pub format: Option<FsFormat>,
    /// Filesystem type for the mount unit, when it differs from `format`.
    pub mount_type: Option<String>,
    pub wipe: bool,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub options: Vec<String>,
    pub mount_options: Vec<String>,
    /// Mount point; generates a mount (or swap) unit.
    pub path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskPlan {
    pub device: String,
    pub wipe_table: bool,
    pub partitions: Vec<PartitionPlan>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartitionPlan {
    pub number: u32,
    pub label: Option<String>,
    pub size_mib: Option<u64>,
    pub start_mib: Option<u64>,
    pub type_guid: Option<String>,
    pub guid: Option<String>,
    pub wipe_entry: bool,
    pub should_exist: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelArgs {
    pub should_exist: Vec<String>,
    pub should_not_exist: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Proxy {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    pub http_response_headers_s: Option<u64>,
    pub http_total_s: Option<u64>,
}

impl Plan {
    /// A short count of what the plan does, for the result file.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("groups", self.groups.len()),
            ("users", self.users.len()),
            ("directories", self.directories.len()),
            ("files", self.files.len()),
            ("links", self.links.len()),
            ("units", self.units.len()),
            ("filesystems", self.filesystems.len()),
            ("disks", self.disks.len()),
            ("kernel_args", self.kernel_args.should_exist.len()),
        ])
    }
}

/// Unit suffixes systemd knows (systemd.unit(5)).
pub const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

/// Suffixes of systemd-networkd / udev link files (systemd.network(5) etc.).
pub const NETWORK_SUFFIXES: &[&str] = &[".network", ".netdev", ".link"];
