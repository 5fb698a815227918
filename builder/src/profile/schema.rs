//! The YAML schema of one profile file, exactly as written (every field
//! optional, unknown keys rejected). Files are merged into a [`super::Profile`]
//! by [`super::merge`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Parent profile, relative to this file (or an embedded profile name).
    pub extends: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub distribution: Distribution,
    #[serde(default)]
    pub packages: Packages,
    #[serde(default)]
    pub paths: Paths,
    #[serde(default)]
    pub kernel: Kernel,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub alternatives: BTreeMap<String, String>,
    #[serde(default)]
    pub services: Services,
    #[serde(default)]
    pub overlays: Vec<String>,
    #[serde(default)]
    pub os_release: BTreeMap<String, String>,
    /// Extra variables for templated overlay files.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    pub disk: Disk,
    #[serde(default)]
    pub update: Update,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    pub suite: Option<String>,
    pub components: Option<Vec<String>>,
    pub architecture: Option<String>,
    pub mirror: Option<String>,
    pub keyring: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// Packages to install (added to the parent's list).
    #[serde(default)]
    pub include: Vec<String>,
    /// Packages removed from the inherited list and never pulled in.
    #[serde(default)]
    pub exclude: Vec<String>,
    pub recommends: Option<bool>,
    pub essential: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub keep: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub modules: Option<Vec<String>>,
    pub cmdline: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub gecos: String,
    #[serde(default = "default_home")]
    pub home: String,
    #[serde(default = "default_shell")]
    pub shell: String,
}

fn default_home() -> String {
    "/nonexistent".into()
}

fn default_shell() -> String {
    "/usr/sbin/nologin".into()
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    #[serde(default)]
    pub enable: Vec<String>,
    #[serde(default)]
    pub disable: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub seed: Option<String>,
    pub esp: Option<String>,
    pub bios_boot: Option<String>,
    pub usr: Option<String>,
    pub oem: Option<String>,
    pub root: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// Ed25519 key (PKCS#8 PEM) that signs update payloads, relative to the profile.
    pub signing_key: Option<String>,
}
