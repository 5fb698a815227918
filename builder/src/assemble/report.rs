//! What the assembly step did, for `basalt packages`, verbose output and
//! the manifest.

use std::collections::BTreeMap;

/// A path shipped by two packages; the later one's copy was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: String,
    pub earlier: String,
    pub later: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssemblyReport {
    /// Every path each package listed (tree keys at unpack time).
    pub package_files: BTreeMap<String, Vec<String>>,
    /// Files replaced by a later package.
    pub conflicts: Vec<Conflict>,
    /// Packages that ship a postinst script (not run; its effects come from
    /// the profile's declarative config).
    pub postinst_packages: Vec<String>,
    /// Entries moved from /bin, /sbin, /lib* into /usr, and /usr copies that
    /// won over a differing copy in the legacy location.
    pub merged_usr_moved: usize,
    pub merged_usr_dropped: Vec<String>,
    /// Entries removed by `excludes`.
    pub excluded: usize,
    /// Kernel module files removed by `kernel_modules`, and the patterns
    /// that matched nothing.
    pub modules_removed: usize,
    pub module_patterns_unmatched: Vec<String>,
    /// Non-directory paths under /var that were dropped (created at boot).
    pub var_dropped: Vec<String>,
    /// Top-level /etc entries turned into factory defaults.
    pub factory_etc: Vec<String>,
    /// Units enabled, and the wants/alias links created for them.
    pub enabled_units: Vec<String>,
    pub unit_links: Vec<String>,
    /// Preset file lines skipped (as systemd skips them), with file:line.
    pub preset_warnings: Vec<String>,
    /// Certificates concatenated into the CA bundle.
    pub ca_certificates: usize,
    /// Overlay files copied (templates included).
    pub overlay_files: usize,
    /// Final counts.
    pub entries: usize,
    pub content_bytes: u64,
}
