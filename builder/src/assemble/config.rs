//! The input of the assembly step. The profile loader maps a YAML profile
//! onto [`AssemblyConfig`]; this module knows nothing about YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;

use basalt_tree::ContentStore;

/// A system user created declaratively (instead of by a postinst script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysUser {
    pub name: String,
    pub uid: u32,
    /// Primary group id; a group with this id must exist (base-passwd's or
    /// the profile's).
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// A system group, with supplementary members (user names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysGroup {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Units to enable or disable through a preset file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presets {
    /// Unit names (`ssh.service`, `getty@tty1.service`); each must exist in
    /// the tree, and is enabled now (wants links) and in the preset file.
    pub enable: Vec<String>,
    /// Unit names or globs written as `disable` lines.
    pub disable: Vec<String>,
}

/// Everything the assembly step needs.
#[derive(Debug)]
pub struct AssemblyConfig<'a> {
    /// (package name, path of its verified .deb) in install order.
    pub debs: Vec<(String, PathBuf)>,
    /// Glob patterns on tree paths (`/usr/share/doc/**`); `*` and `?` stay
    /// within one path component, `**` spans any number of them.
    pub excludes: Vec<String>,
    /// Exceptions to `excludes` (`/usr/share/doc/*/copyright`).
    pub keep: Vec<String>,
    /// Glob patterns relative to `/usr/lib/modules/<kver>/kernel/`
    /// (`drivers/net/virtio_net.ko*`, `fs/ext4/**`); `None` keeps every module.
    pub kernel_modules: Option<Vec<String>>,
    pub users: Vec<SysUser>,
    pub groups: Vec<SysGroup>,
    pub presets: Presets,
    /// (link path, target path), e.g. (`/usr/sbin/iptables`, `/usr/sbin/iptables-nft`).
    pub alternatives: Vec<(String, String)>,
    /// Directories copied into the tree, in order (later ones win).
    pub overlays: Vec<PathBuf>,
    /// Context for `.j2` templates in overlays.
    pub template_vars: serde_json::Value,
    /// Fields of /usr/lib/os-release (`ID`, `NAME`, `VERSION_ID`, ...).
    pub os_release: BTreeMap<String, String>,
    /// SOURCE_DATE_EPOCH: every mtime is clamped to it and every generated
    /// file carries it.
    pub source_date_epoch: i64,
    pub store: &'a ContentStore,
}
