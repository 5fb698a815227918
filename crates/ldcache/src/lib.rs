//! glibc's dynamic linker cache, `/etc/ld.so.cache`, written at build time
//! byte for byte as the image's own `ldconfig` would write it.
//!
//! - [`format`]: the on-disk layout (glibc `sysdeps/generic/dl-cache.h`,
//!   "new" format 1.1 only, which is all glibc 2.32 and later reads).
//! - [`libcmp`]: the name ordering ld.so's binary search relies on.
//! - [`strtab`]: the deduplicated, suffix-merged string table.
//! - [`writer`]: plans and writes a cache from entries.
//! - [`conf`], [`elf`], [`scan`]: what ldconfig finds in a tree (ld.so.conf,
//!   library files, DT_SONAME), producing the entries.

pub mod conf;
pub mod elf;
pub mod error;
#[doc(hidden)]
pub mod fixture;
pub mod format;
pub mod libcmp;
pub mod scan;
pub mod strtab;
pub mod writer;

pub use error::{LdCacheError, Result};
pub use scan::{Scan, scan};
pub use writer::{CacheEntry, write_cache};
