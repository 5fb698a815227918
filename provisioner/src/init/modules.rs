//! Loading the kernel modules the builder put into the initramfs, in the
//! order it wrote to /lib/modules/load-order (one absolute path a line,
//! dependencies first). `.ko` files go to finit_module(2); `.ko.xz` is
//! decompressed here (pure Rust) and passed to init_module(2), so no kernel
//! support for compressed modules is needed; `.ko.zst` and `.ko.gz` are
//! handed to finit_module with MODULE_INIT_COMPRESSED_FILE, which needs
//! CONFIG_MODULE_DECOMPRESS and gives a clear error without it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::error::{InitError, Result};
use super::fatal;

pub const LOAD_ORDER: &str = "/lib/modules/load-order";
/// finit_module flag: the file is compressed, the kernel decompresses it
/// (include/uapi/linux/module.h).
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

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

/// The paths of a load-order file: one per line, `#` comments and blank
/// lines ignored; every path must be absolute and name a module.
pub fn parse_load_order(text: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let p = PathBuf::from(line);
        if !p.is_absolute() || method_for(&p).is_none() {
            return Err(format!(
                "{LOAD_ORDER}:{}: {line:?} is not an absolute path to a .ko, .ko.xz, .ko.zst or .ko.gz",
                n + 1
            ));
        }
        out.push(p);
    }
    Ok(out)
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

/// Load one module. `Ok(false)` if it was already loaded.
pub fn load(path: &Path) -> Result<bool> {
    let res = match method_for(path) {
        Some(Method::Plain) => {
            let f = File::open(path).map_err(InitError::io("opening module", path))?;
            rustix::system::finit_module(&f, c"", 0)
        }
        Some(Method::KernelDecompress) => {
            let f = File::open(path).map_err(InitError::io("opening module", path))?;
            rustix::system::finit_module(&f, c"", MODULE_INIT_COMPRESSED_FILE)
        }
        Some(Method::Xz) => rustix::system::init_module(&decompress_xz(path)?, c""),
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

/// Load every module of the load-order file. A module that fails to load
/// is reported and skipped (the disk wait that follows names what is
/// missing); a malformed load-order file is an error.
pub fn load_all() -> Result<usize> {
    let text = match std::fs::read_to_string(LOAD_ORDER) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fatal::warn(format!(
                "{LOAD_ORDER} is missing: loading no modules (drivers must be built in)"
            ));
            return Ok(0);
        }
        Err(e) => return Err(InitError::io("reading", LOAD_ORDER)(e)),
    };
    let paths = parse_load_order(&text).map_err(|why| InitError::Io {
        what: "parsing",
        path: LOAD_ORDER.into(),
        source: std::io::Error::other(why),
    })?;
    let mut loaded = 0;
    for p in &paths {
        match load(p) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(e) => fatal::warn(format!("{e}")),
        }
    }
    fatal::info(format!("loaded {loaded} of {} kernel modules", paths.len()));
    Ok(loaded)
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
    fn load_order_parsing() {
        let ok = "# generated\n/usr/lib/modules/6.12/kernel/a.ko.xz\n\n  /usr/lib/modules/6.12/kernel/b.ko  \n";
        assert_eq!(
            parse_load_order(ok).unwrap(),
            vec![
                PathBuf::from("/usr/lib/modules/6.12/kernel/a.ko.xz"),
                PathBuf::from("/usr/lib/modules/6.12/kernel/b.ko")
            ]
        );
        assert!(
            parse_load_order("kernel/a.ko\n")
                .unwrap_err()
                .contains(":1:")
        );
        assert!(
            parse_load_order("/a.ko\n/b.txt\n")
                .unwrap_err()
                .contains(":2:")
        );
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
