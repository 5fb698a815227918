//! The module files an initramfs needs and the load-order lists that
//! Basalt's /init reads: one module a line, dependencies first, as an
//! absolute path, optionally followed by module parameters (only
//! [`ASYNC_PROBE_PARAM`]) and by `needs=` with the names of the earlier
//! modules of the same list that this one must follow (its dependencies
//! and pre-softdeps), comma-separated in list order; /init loads modules
//! whose needs are met side by side. provisioner/src/init/loadorder.rs
//! parses the lists.

use std::collections::HashSet;

use basalt_tree::{Content, Tree};

use crate::decompress::module_image;
use crate::depmod::file_bytes;
use crate::error::KmodError;
use crate::load_order::Resolver;
use crate::names::{modname, normalize_name, uncompressed_path};

/// Modules Basalt's /init needs to reach and verify /usr on virtio, NVMe
/// and SATA/AHCI disks: disk drivers, the SCSI disk layer, device-mapper
/// verity and ext4. Dependencies and pre-softdeps are added by
/// [`crate::load_order`]; names built into the kernel are skipped.
pub const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "nvme",
    "ahci",
    "sd_mod",
    "dm_verity",
    "ext4",
];

/// The disk controller drivers among [`BOOT_MODULES`] that /init loads
/// with [`ASYNC_PROBE_PARAM`], after every other module of the list:
/// their devices are probed in the background (AHCI's libata waits for
/// the link of every SATA port, ~0.4 s for QEMU q35's six ports under
/// TCG) while /init goes on. Not their libraries (libata, libahci,
/// nvme-core, scsi_mod), which probe nothing, and not virtio_blk, the
/// usual boot disk, which is quick.
pub const ASYNC_PROBE_MODULES: &[&str] = &["virtio_scsi", "nvme", "ahci"];

/// The field of a list line naming what the module must follow.
pub const NEEDS_FIELD: &str = "needs=";

/// The kernel's generic module parameter for asynchronous probing,
/// accepted by every module (kernel/module/main.c,
/// `unknown_module_param_cb`: sets `mod->async_probe_requested`; the
/// driver core then probes the module's devices asynchronously
/// (drivers/base/dd.c, `driver_allows_async_probing`) and
/// `do_init_module` does not wait for them with `async_synchronize_full`).
/// Any later module load without it does wait for them.
pub const ASYNC_PROBE_PARAM: &str = "async_probe";

/// One module file for the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitramfsModule {
    /// Absolute path inside the initramfs (same as in the tree, minus the
    /// compression suffix when decompressed).
    pub path: String,
    pub content: Content,
}

/// The module set of one load-order list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitramfsModules {
    pub modules: Vec<InitramfsModule>,
    /// Text of the list (`/lib/modules/load-order` and friends).
    pub load_order: String,
}

/// What one list loads.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec<'a> {
    /// Module names or aliases; the list holds them and what they need,
    /// minus what an earlier list loads.
    pub wanted: &'a [&'a str],
    /// Module names among `wanted` that are loaded with
    /// [`ASYNC_PROBE_PARAM`], after every module of the list that does
    /// not need them.
    pub async_probe: &'a [&'a str],
}

/// Collect `wanted` (and everything they need) from the tree, which must
/// have been through [`crate::depmod`]. With `decompress`, `.ko.xz` and
/// `.ko.zst` files are stored uncompressed (the whole archive is
/// compressed anyway, and /init can then use finit_module directly).
pub fn initramfs_modules(
    tree: &Tree,
    kver: &str,
    wanted: &[&str],
    decompress: bool,
) -> Result<InitramfsModules, KmodError> {
    let spec = ListSpec {
        wanted,
        async_probe: &[],
    };
    let resolver = Resolver::new(tree, kver)?;
    one_list(tree, &resolver, &spec, &mut HashSet::new(), decompress)
}

/// One [`InitramfsModules`] per spec, in order; a module is in the first
/// list that needs it only (a later list takes it as loaded). Lines of
/// modules named in a spec's `async_probe` end in ` async_probe`.
pub fn initramfs_lists(
    tree: &Tree,
    kver: &str,
    specs: &[ListSpec<'_>],
    decompress: bool,
) -> Result<Vec<InitramfsModules>, KmodError> {
    let resolver = Resolver::new(tree, kver)?;
    let mut loaded: HashSet<String> = HashSet::new();
    specs
        .iter()
        .map(|spec| one_list(tree, &resolver, spec, &mut loaded, decompress))
        .collect()
}

/// The list of `spec` without the modules in `loaded`, which it extends
/// by the ones it adds.
fn one_list(
    tree: &Tree,
    resolver: &Resolver,
    spec: &ListSpec<'_>,
    loaded: &mut HashSet<String>,
    decompress: bool,
) -> Result<InitramfsModules, KmodError> {
    let paths = resolver.order(spec.wanted, spec.async_probe, loaded)?;
    let asynchronous: HashSet<String> =
        spec.async_probe.iter().map(|n| normalize_name(n)).collect();
    let mut modules = Vec::with_capacity(paths.len());
    let mut text = String::new();
    let mut earlier: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        let name = modname(&p);
        let needs = resolver.needs(&name);
        let needs: Vec<&str> = earlier
            .iter()
            .filter(|n| needs.contains(*n))
            .map(String::as_str)
            .collect();
        let raw = file_bytes(tree, &p)?.ok_or_else(|| KmodError::Read {
            path: p.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "listed in modules.dep but not a file in the tree",
            ),
        })?;
        let (path, bytes) = if decompress {
            (uncompressed_path(&p).to_string(), module_image(&p, raw)?)
        } else {
            (p, raw)
        };
        text.push_str(&path);
        if asynchronous.contains(&name) {
            text.push(' ');
            text.push_str(ASYNC_PROBE_PARAM);
        }
        if !needs.is_empty() {
            text.push(' ');
            text.push_str(NEEDS_FIELD);
            text.push_str(&needs.join(","));
        }
        text.push('\n');
        modules.push(InitramfsModule {
            path,
            content: Content::from_bytes(bytes),
        });
        earlier.push(name.clone());
        loaded.insert(name);
    }
    Ok(InitramfsModules {
        modules,
        load_order: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depmod;
    use crate::tests::{KVER, sample_tree};

    /// The list texts with the module directory and the `kernel/` prefix
    /// cut, one string per list.
    fn lists(specs: &[ListSpec<'_>]) -> Result<Vec<String>, KmodError> {
        let mut t = sample_tree();
        depmod(&mut t, KVER).unwrap();
        let prefix = format!("/usr/lib/modules/{KVER}/kernel/");
        Ok(initramfs_lists(&t, KVER, specs, true)?
            .into_iter()
            .map(|l| {
                for m in &l.modules {
                    assert!(l.load_order.contains(&m.path), "{}", m.path);
                }
                l.load_order.replace(&prefix, "")
            })
            .collect())
    }

    fn spec<'a>(wanted: &'a [&'a str], async_probe: &'a [&'a str]) -> ListSpec<'a> {
        ListSpec {
            wanted,
            async_probe,
        }
    }

    #[test]
    fn lists_place_async_modules_last_and_split_by_first_use() {
        // sample_tree: top needs virtio-mid and base, virtio-mid needs base
        // and has `softdep pre: extra`; lonely stands alone; ext4 is built in.
        let cases: &[(&[ListSpec<'_>], &[&str])] = &[
            (
                &[spec(&["top", "lonely"], &[])],
                &[
                    "lib/base.ko\nlib/extra.ko\ndrivers/virtio/virtio-mid.ko needs=base,extra\ndrivers/block/top.ko needs=base,virtio_mid\nmisc/lonely.ko\n",
                ],
            ),
            // The async one after everything else, its needs just before it.
            (
                &[spec(&["top", "lonely"], &["top"])],
                &[
                    "misc/lonely.ko\nlib/base.ko\nlib/extra.ko\ndrivers/virtio/virtio-mid.ko needs=base,extra\ndrivers/block/top.ko async_probe needs=base,virtio_mid\n",
                ],
            ),
            // An async module another async one needs comes before it.
            (
                &[spec(&["top", "ext4"], &["top", "virtio_mid"])],
                &[
                    "lib/base.ko\nlib/extra.ko\ndrivers/virtio/virtio-mid.ko async_probe needs=base,extra\ndrivers/block/top.ko async_probe needs=base,virtio_mid\n",
                ],
            ),
            // A module that needs an async one is still loaded after it.
            (
                &[spec(&["top", "virtio-mid"], &["virtio_mid"])],
                &[
                    "lib/base.ko\nlib/extra.ko\ndrivers/virtio/virtio-mid.ko async_probe needs=base,extra\ndrivers/block/top.ko needs=base,virtio_mid\n",
                ],
            ),
            // A later list leaves out what an earlier one loads.
            (
                &[
                    spec(&["virtio_mid"], &[]),
                    spec(&["top", "lonely", "extra"], &[]),
                ],
                &[
                    "lib/extra.ko\nlib/base.ko\ndrivers/virtio/virtio-mid.ko needs=extra,base\n",
                    "drivers/block/top.ko\nmisc/lonely.ko\n",
                ],
            ),
            (
                &[spec(&["top"], &[]), spec(&["base", "ext4"], &[])],
                &[
                    "lib/base.ko\nlib/extra.ko\ndrivers/virtio/virtio-mid.ko needs=base,extra\ndrivers/block/top.ko needs=base,virtio_mid\n",
                    "",
                ],
            ),
        ];
        for (specs, want) in cases {
            assert_eq!(lists(specs).unwrap(), *want, "{specs:?}");
        }
        let e = lists(&[spec(&["top"], &[]), spec(&["nonexistent"], &[])]).unwrap_err();
        assert!(e.to_string().contains("nonexistent"), "{e}");
    }
}
