//! Loading one kernel module file. `.ko` files go to finit_module(2);
//! `.ko.xz` is decompressed here (pure Rust) and passed to init_module(2),
//! so no kernel support for compressed modules is needed; `.ko.zst` and
//! `.ko.gz` are handed to finit_module with MODULE_INIT_COMPRESSED_FILE,
//! which needs CONFIG_MODULE_DECOMPRESS and gives a clear error without it.
//! The lists of modules the initramfs loads are in `loadorder.rs`.

use std::ffi::CStr;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use rustix::io::Errno;

use super::error::{InitError, Result};

/// finit_module flag: the file is compressed, the kernel decompresses it
/// (include/uapi/linux/module.h).
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

/// The kernel's generic module parameter for asynchronous probing: every
/// module accepts it (kernel/module/main.c, `unknown_module_param_cb` sets
/// `mod->async_probe_requested`). The driver core then probes the
/// module's devices in the background (drivers/base/dd.c,
/// `driver_allows_async_probing`), and `do_init_module` returns without
/// `async_synchronize_full()`. Every later module load without it that
/// runs the module's init makes that call and so waits for those probes
/// (a load that ends in `EEXIST` does not).
pub const ASYNC_PROBE: &str = "async_probe";
const ASYNC_PROBE_C: &CStr = c"async_probe";

/// The parameters /init passes to a module (the `param_values` string of
/// finit_module/init_module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Params {
    #[default]
    None,
    /// [`ASYNC_PROBE`].
    AsyncProbe,
}

impl Params {
    fn values(self) -> &'static CStr {
        match self {
            Params::None => c"",
            Params::AsyncProbe => ASYNC_PROBE_C,
        }
    }
}

/// The module name of a module file, as the kernel spells it
/// (`/x/dm-verity.ko.xz` -> `dm_verity`).
pub fn module_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    base.split('.').next().unwrap_or_default().replace('-', "_")
}

/// How a module file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// finit_module on the file as is.
    Plain,
    /// Decompress xz in /init, then init_module.
    Xz,
    /// finit_module with MODULE_INIT_COMPRESSED_FILE.
    KernelDecompress,
}

pub fn method_for(path: &Path) -> Option<Method> {
    let s = path.to_str()?;
    if s.ends_with(".ko") {
        Some(Method::Plain)
    } else if s.ends_with(".ko.xz") {
        Some(Method::Xz)
    } else if s.ends_with(".ko.zst") || s.ends_with(".ko.gz") {
        Some(Method::KernelDecompress)
    } else {
        None
    }
}

/// The uncompressed image of an xz-compressed module.
pub fn decompress_xz(path: &Path) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(InitError::io("opening module", path))?;
    let mut out = Vec::new();
    lzma_rs::xz_decompress(&mut BufReader::new(f), &mut out).map_err(|e| InitError::Io {
        what: "decompressing module",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(out)
}

/// Load one module without parameters. `Ok(false)` if it was already
/// loaded (or is built in).
pub fn load(path: &Path) -> Result<bool> {
    load_with(path, Params::None)
}

/// Load one module with `params`. `Ok(false)` if it was already loaded
/// (the parameters are then not applied).
pub fn load_with(path: &Path, params: Params) -> Result<bool> {
    let values = params.values();
    let res = match method_for(path) {
        Some(Method::Plain) => {
            let f = File::open(path).map_err(InitError::io("opening module", path))?;
            rustix::system::finit_module(&f, values, 0)
        }
        Some(Method::KernelDecompress) => {
            let f = File::open(path).map_err(InitError::io("opening module", path))?;
            rustix::system::finit_module(&f, values, MODULE_INIT_COMPRESSED_FILE)
        }
        Some(Method::Xz) => rustix::system::init_module(&decompress_xz(path)?, values),
        None => {
            return Err(InitError::io("not a module", path)(std::io::Error::other(
                "unknown extension",
            )));
        }
    };
    match res {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(InitError::Io {
            what: "loading module",
            path: path.to_path_buf(),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_table() {
        let cases = [
            ("/lib/modules/k/a.ko", Some(Method::Plain)),
            ("/lib/modules/k/a.ko.xz", Some(Method::Xz)),
            ("/lib/modules/k/a.ko.zst", Some(Method::KernelDecompress)),
            ("/lib/modules/k/a.ko.gz", Some(Method::KernelDecompress)),
            ("/lib/modules/k/a.o", None),
        ];
        for (p, want) in cases {
            assert_eq!(method_for(Path::new(p)), want, "{p}");
        }
    }

    #[test]
    fn module_names_and_params() {
        let cases = [
            ("/lib/modules/k/kernel/drivers/md/dm-verity.ko", "dm_verity"),
            ("/lib/modules/k/kernel/drivers/ata/ahci.ko.xz", "ahci"),
            ("virtio_scsi.ko.zst", "virtio_scsi"),
        ];
        for (p, want) in cases {
            assert_eq!(module_name(Path::new(p)), want, "{p}");
        }
        assert_eq!(Params::None.values(), c"");
        assert_eq!(Params::AsyncProbe.values().to_str(), Ok(ASYNC_PROBE));
        assert_eq!(Params::default(), Params::None);
    }

    #[test]
    fn xz_modules_decompress_in_process() {
        let dir = std::env::temp_dir().join(format!("basalt-init-mod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &image[..], &mut xz).unwrap();
        let p = dir.join("m.ko.xz");
        std::fs::write(&p, &xz).unwrap();
        assert_eq!(decompress_xz(&p).unwrap(), image);
        std::fs::write(&p, b"not xz").unwrap();
        assert!(
            decompress_xz(&p)
                .unwrap_err()
                .to_string()
                .contains("m.ko.xz")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
