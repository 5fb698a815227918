//! The module lists the builder writes into the initramfs
//! (builder/src/output/initramfs.rs, `basalt_kmod::initramfs_lists`), and
//! when /init loads them. Each is one module a line, dependencies first:
//! an absolute path to a `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`,
//! optionally followed by [`ASYNC_PROBE`] and by `needs=a,b` (the earlier
//! modules of the list it must follow; `parload.rs` loads the others side
//! by side); `#` comments and blank lines are ignored.
//!
//! * [`LOAD_ORDER`], every boot, before the disk wait: what reaches and
//!   verifies /usr. The disk controller drivers (ahci, nvme, virtio_scsi)
//!   come last, with `async_probe`: their devices are probed in the
//!   background while /init waits for the boot disk (`disk.rs`, which
//!   rescans until `basalt.disk_timeout`, so a disk behind them that
//!   appears late is still found). Loaded any earlier, the next
//!   synchronous load would wait for their probes and nothing would be
//!   gained (under QEMU TCG AHCI's probe of q35's six SATA ports took
//!   ~0.4 s of the ~1.4 s this list took).
//! * [`CONFIG_LOAD_ORDER`], first boot only, just before the provision
//!   hook searches the config sources: `qemu_fw_cfg`, `isofs`, `vfat` and
//!   what they need beyond the first list. Later boots read no config
//!   source and skip it.
//! * `load-order.diskless` (`diskless.rs`), diskless boots only.

use std::path::PathBuf;

use thiserror::Error;

use super::error::{InitError, Result};
use super::fatal;
use super::modules::{self, ASYNC_PROBE, Params, method_for};
use super::parload::{self, Job};

/// The disk path's modules, loaded on every boot.
pub const LOAD_ORDER: &str = "/lib/modules/load-order";
/// The config sources' modules, loaded on the first boot only.
pub const CONFIG_LOAD_ORDER: &str = "/lib/modules/load-order.config";

/// One line of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub params: Params,
    /// Indices of the earlier entries named in its `needs=` field.
    pub needs: Vec<usize>,
}

/// The field naming what a module must follow.
pub const NEEDS: &str = "needs=";

/// Why a list is malformed (a build bug: fatal).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ListError {
    #[error("{file}:{line}: {text:?} is not an absolute path to a .ko, .ko.xz, .ko.zst or .ko.gz")]
    NotAModule {
        file: String,
        line: usize,
        text: String,
    },
    #[error(
        "{file}:{line}: module parameter {param:?} is not one /init passes (only {ASYNC_PROBE}, once)"
    )]
    BadParam {
        file: String,
        line: usize,
        param: String,
    },
    #[error("{file}:{line}: needs {name:?}, which no earlier line of the list loads")]
    UnknownNeed {
        file: String,
        line: usize,
        name: String,
    },
}

/// The entries of list `file` (named in errors) with content `text`.
pub fn parse_load_order(file: &str, text: &str) -> std::result::Result<Vec<Entry>, ListError> {
    let mut out = Vec::new();
    // The module name of each entry in `out`, for `needs=`.
    let mut names_so_far: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let path = PathBuf::from(words.next().unwrap_or_default());
        if !path.is_absolute() || method_for(&path).is_none() {
            return Err(ListError::NotAModule {
                file: file.to_string(),
                line: n + 1,
                text: line.to_string(),
            });
        }
        let mut params = Params::None;
        let mut needs: Option<Vec<usize>> = None;
        for w in words {
            if let Some(names) = w.strip_prefix(NEEDS)
                && needs.is_none()
            {
                let mut idx = Vec::new();
                for name in names.split(',') {
                    let i = names_so_far.iter().position(|m| m == name).ok_or_else(|| {
                        ListError::UnknownNeed {
                            file: file.to_string(),
                            line: n + 1,
                            name: name.to_string(),
                        }
                    })?;
                    idx.push(i);
                }
                needs = Some(idx);
                continue;
            }
            if w != ASYNC_PROBE || params != Params::None {
                return Err(ListError::BadParam {
                    file: file.to_string(),
                    line: n + 1,
                    param: w.to_string(),
                });
            }
            params = Params::AsyncProbe;
        }
        names_so_far.push(modules::module_name(&path));
        out.push(Entry {
            path,
            params,
            needs: needs.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// What loading one list did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Modules loaded now (not counting ones already loaded).
    pub loaded: usize,
    /// Lines in the list.
    pub listed: usize,
    /// Names of the modules loaded with [`ASYNC_PROBE`].
    pub probing: Vec<String>,
}

/// Read and parse list `file`; `None` if it does not exist.
fn read_list(file: &str) -> Result<Option<Vec<Entry>>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(InitError::io("reading", file)(e)),
    };
    parse_load_order(file, &text)
        .map(Some)
        .map_err(|e| InitError::Io {
            what: "parsing",
            path: file.into(),
            source: std::io::Error::other(e),
        })
}

/// Load the entries, each after what it needs (`parload.rs`). A module
/// that fails to load is reported and skipped (what needs it reports what
/// is missing: the disk wait, the config source search).
fn load_entries(entries: &[Entry]) -> Loaded {
    let mut done = Loaded {
        listed: entries.len(),
        ..Loaded::default()
    };
    let jobs: Vec<Job> = entries
        .iter()
        .map(|e| Job {
            needs: e.needs.clone(),
            barrier: e.params == Params::AsyncProbe,
        })
        .collect();
    let results = parload::run(&jobs, parload::workers(), |i| {
        modules::load_with(&entries[i].path, entries[i].params)
    });
    for (e, result) in entries.iter().zip(results) {
        match result {
            Ok(true) => {
                done.loaded += 1;
                if e.params == Params::AsyncProbe {
                    done.probing.push(modules::module_name(&e.path));
                }
            }
            Ok(false) => {}
            Err(err) => fatal::warn(format!("{err}")),
        }
    }
    done
}

/// Load [`LOAD_ORDER`] (every boot). Absent: a warning, the drivers must
/// be built in. Malformed: an error.
pub fn load_disk_modules() -> Result<Loaded> {
    let Some(entries) = read_list(LOAD_ORDER)? else {
        fatal::warn(format!(
            "{LOAD_ORDER} is missing: loading no modules (drivers must be built in)"
        ));
        return Ok(Loaded::default());
    };
    let done = load_entries(&entries);
    let mut line = format!("loaded {} of {} kernel modules", done.loaded, done.listed);
    if !done.probing.is_empty() {
        line.push_str(&format!(
            " ({} probing in the background)",
            done.probing.join(", ")
        ));
    }
    fatal::info(line);
    Ok(done)
}

/// Load [`CONFIG_LOAD_ORDER`] (first boot, before the config sources are
/// searched). Absent means nothing to load. Malformed: an error.
///
/// These loads are synchronous, so each one ends in the kernel's
/// `async_synchronize_full()` (kernel/module/main.c, `do_init_module`):
/// the first module loaded here returns only once the background probes
/// of the disk controllers ([`load_disk_modules`]) are done, so a config
/// drive or NoCloud disk behind AHCI, NVMe or virtio-scsi exists before
/// the provisioner looks for its label. When nothing is loaded here (the
/// list is empty or its modules were already loaded) there is no such
/// wait.
pub fn load_config_source_modules() -> Result<Loaded> {
    let Some(entries) = read_list(CONFIG_LOAD_ORDER)? else {
        return Ok(Loaded::default());
    };
    let done = load_entries(&entries);
    fatal::info(format!(
        "config sources: loaded {} of {} kernel modules",
        done.loaded, done.listed
    ));
    Ok(done)
}

/// Load the diskless list `file` (`diskless.rs`): absent means nothing to
/// load; here a module that fails is an error (the loop driver is needed).
pub fn load_all_or_fail(file: &str) -> Result<usize> {
    let Some(entries) = read_list(file)? else {
        return Ok(0);
    };
    let mut loaded = 0;
    for e in &entries {
        if modules::load_with(&e.path, e.params)? {
            loaded += 1;
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, params: Params) -> Entry {
        Entry {
            path: PathBuf::from(path),
            params,
            needs: Vec::new(),
        }
    }

    #[test]
    fn parsing_table() {
        let ok = "# generated\n/usr/lib/modules/6.12/kernel/a.ko.xz\n\n  /usr/lib/modules/6.12/kernel/b.ko  \n/k/ahci.ko async_probe\n/k/nvme.ko.zst\tasync_probe \n";
        assert_eq!(
            parse_load_order(LOAD_ORDER, ok).unwrap(),
            vec![
                entry("/usr/lib/modules/6.12/kernel/a.ko.xz", Params::None),
                entry("/usr/lib/modules/6.12/kernel/b.ko", Params::None),
                entry("/k/ahci.ko", Params::AsyncProbe),
                entry("/k/nvme.ko.zst", Params::AsyncProbe),
            ]
        );
        assert_eq!(parse_load_order(CONFIG_LOAD_ORDER, ""), Ok(vec![]));
        let with_needs = "/k/scsi_mod.ko\n/k/dm-mod.ko\n/k/sd_mod.ko needs=scsi_mod\n/k/dm-verity.ko needs=dm_mod\n/k/ahci.ko async_probe needs=scsi_mod\n";
        let needs: Vec<(Params, Vec<usize>)> = parse_load_order(LOAD_ORDER, with_needs)
            .unwrap()
            .into_iter()
            .map(|e| (e.params, e.needs))
            .collect();
        assert_eq!(
            needs,
            vec![
                (Params::None, vec![]),
                (Params::None, vec![]),
                (Params::None, vec![0]),
                (Params::None, vec![1]),
                (Params::AsyncProbe, vec![0]),
            ]
        );
        let bad = [
            ("kernel/a.ko\n", 1, "not an absolute path"),
            ("/a.ko\n/b.txt\n", 2, "not an absolute path"),
            ("/a.ko\nasync_probe /b.ko\n", 2, "not an absolute path"),
            ("/a.ko foo=1\n", 1, "\"foo=1\" is not one /init passes"),
            (
                "/a.ko\n\n/b.ko async_probe async_probe\n",
                3,
                "\"async_probe\"",
            ),
            ("/a.ko async_probe=1\n", 1, "\"async_probe=1\""),
            (
                "/a.ko needs=b\n/b.ko\n",
                1,
                "needs \"b\", which no earlier line",
            ),
            (
                "/a.ko\n/b.ko needs=a needs=a\n",
                2,
                "\"needs=a\" is not one",
            ),
            ("/a.ko\n/b.ko needs=a,\n", 2, "needs \"\""),
        ];
        for (text, line, why) in bad {
            let e = parse_load_order(CONFIG_LOAD_ORDER, text)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("{CONFIG_LOAD_ORDER}:{line}: ")) && e.contains(why),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn absent_lists_load_nothing() {
        let dir = std::env::temp_dir().join(format!("basalt-init-lists-{}", std::process::id()));
        let missing = dir.join("load-order.diskless");
        assert_eq!(load_all_or_fail(&missing.to_string_lossy()).unwrap(), 0);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&missing, "relative.ko\n").unwrap();
        let e = load_all_or_fail(&missing.to_string_lossy())
            .unwrap_err()
            .to_string();
        assert!(e.contains("load-order.diskless:1:"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
