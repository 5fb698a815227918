//! depmod over a tree: find the modules, analyse them, write the indexes.

use std::collections::HashMap;

use basalt_tree::{Content, Entry, Kind, Tree};

use crate::decompress::module_image;
use crate::elf::ModuleElf;
use crate::error::KmodError;
use crate::graph::{Graph, Module};
use crate::names::{is_module_path, modname, uncompressed_path};
use crate::output;

/// What [`depmod`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The module directory in the tree (`/usr/lib/modules/<kver>`).
    pub module_dir: String,
    pub modules: usize,
    pub aliases: usize,
    pub exported_symbols: usize,
    /// Undefined, non-weak symbols no module exports (provided by the kernel image).
    pub unresolved_symbols: usize,
    /// Module files ignored because a higher-priority one (`updates/`) has the same name.
    pub overridden: Vec<String>,
    /// Files written into the module directory, by name.
    pub files: Vec<String>,
}

/// Where the modules of `kver` live in `tree`.
pub fn module_dir(tree: &Tree, kver: &str) -> Result<String, KmodError> {
    for base in ["/usr/lib/modules", "/lib/modules"] {
        let d = format!("{base}/{kver}");
        if tree.get(&d).is_some_and(Entry::is_dir) {
            return Ok(d);
        }
    }
    Err(KmodError::NoModuleDir(kver.to_string()))
}

/// The bytes of a regular file (or hard link to one) of the tree.
pub(crate) fn file_bytes(tree: &Tree, path: &str) -> Result<Option<Vec<u8>>, KmodError> {
    let content: Option<&Content> = match tree.get(path).map(|e| &e.kind) {
        Some(Kind::File(c)) => Some(c),
        Some(Kind::HardLink(t)) => match tree.get(t).map(|e| &e.kind) {
            Some(Kind::File(c)) => Some(c),
            _ => None,
        },
        _ => None,
    };
    content
        .map(|c| {
            c.read_all().map_err(|source| KmodError::Read {
                path: path.to_string(),
                source,
            })
        })
        .transpose()
}

/// Read, decompress and parse one module.
fn analyse(tree: &Tree, prefix: &str, rel: &str) -> Result<Module, KmodError> {
    let path = format!("{prefix}{rel}");
    let raw = file_bytes(tree, &path)?.unwrap_or_default();
    let image = module_image(&path, raw)?;
    let elf = ModuleElf::parse(&image).map_err(|why| KmodError::BadElf {
        path: path.clone(),
        why,
    })?;
    Ok(Module {
        relpath: rel.to_string(),
        name: modname(rel),
        elf,
    })
}

/// [`analyse`] every module in `rels`, on every core (decompressing
/// thousands of `.ko.xz` files dominates depmod); the result is in `rels`
/// order and the first error in that order wins, as in a sequential loop.
fn analyse_all(tree: &Tree, prefix: &str, rels: &[&String]) -> Result<Vec<Module>, KmodError> {
    basalt_tree::parallel::map_ordered(rels, |rel| analyse(tree, prefix, rel))
        .into_iter()
        .collect()
}

/// Search priority of a module path: `updates/` first, like depmod's default
/// configuration (`search updates built-in`).
fn priority(relpath: &str) -> u8 {
    if relpath.starts_with("updates/") {
        0
    } else {
        1
    }
}

/// Run depmod for kernel `kver` on `tree`: write modules.dep, modules.alias,
/// modules.softdep, modules.symbols, modules.devname, modules.weakdep and
/// the binary indexes modules.{dep,alias,symbols,builtin,builtin.alias}.bin
/// into the module directory. modules.builtin and modules.builtin.modinfo
/// (shipped by the kernel package) are read and left as they are.
pub fn depmod(tree: &mut Tree, kver: &str) -> Result<Report, KmodError> {
    let dir = module_dir(tree, kver)?;
    let prefix = format!("{dir}/");
    let mut by_name: HashMap<String, String> = HashMap::new();
    let mut overridden = Vec::new();
    let mut mtime = 0i64;
    for (path, e) in tree.descendants(&dir) {
        let rel = &path[prefix.len()..];
        if !matches!(e.kind, Kind::File(_) | Kind::HardLink(_)) || !is_module_path(rel) {
            continue;
        }
        if rel.split('/').any(|c| c == "build" || c == "source") {
            continue;
        }
        mtime = mtime.max(e.mtime);
        let name = modname(rel);
        match by_name.get(&name) {
            None => {
                by_name.insert(name, rel.to_string());
            }
            Some(old) if priority(old) < priority(rel) => overridden.push(rel.to_string()),
            Some(old) if priority(rel) < priority(old) => {
                overridden.push(old.clone());
                by_name.insert(name, rel.to_string());
            }
            Some(old) => {
                return Err(KmodError::DuplicateModule {
                    name,
                    first: old.clone(),
                    second: rel.to_string(),
                });
            }
        }
    }
    // depmod order: modules.order position, then the rest by path.
    let order: HashMap<String, usize> = match file_bytes(tree, &format!("{dir}/modules.order"))? {
        Some(b) => String::from_utf8_lossy(&b)
            .lines()
            .enumerate()
            .map(|(i, l)| (l.to_string(), i))
            .collect(),
        None => HashMap::new(),
    };
    let mut rels: Vec<&String> = by_name.values().collect();
    rels.sort_by(|a, b| {
        let ka = order.get(uncompressed_path(a)).map_or((1, 0), |&i| (0, i));
        let kb = order.get(uncompressed_path(b)).map_or((1, 0), |&i| (0, i));
        ka.cmp(&kb).then_with(|| a.cmp(b))
    });
    let modules = analyse_all(tree, &prefix, &rels)?;
    let graph = Graph::build(modules)?;

    let builtin = file_bytes(tree, &format!("{dir}/modules.builtin"))?;
    let builtin_modinfo = file_bytes(tree, &format!("{dir}/modules.builtin.modinfo"))?;
    let files = output::render_all(&graph, builtin.as_deref(), builtin_modinfo.as_deref())?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = format!("{dir}/{name}");
        let entry = Entry::file(0o644, Content::from_bytes(bytes)).at(mtime);
        tree.insert(&path, entry)
            .map_err(|source| KmodError::Tree {
                path: path.clone(),
                source,
            })?;
        written.push(name.to_string());
    }
    overridden.sort();
    Ok(Report {
        module_dir: dir,
        modules: graph.modules.len(),
        aliases: graph
            .modules
            .iter()
            .map(|m| m.elf.modinfo.iter().filter(|(k, _)| k == "alias").count())
            .sum(),
        exported_symbols: graph.symbols.len(),
        unresolved_symbols: graph.unresolved,
        overridden,
        files: written,
    })
}
