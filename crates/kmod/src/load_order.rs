//! The modules an initramfs must load, in order, for a list of wanted ones.

use std::collections::{HashMap, HashSet};

use basalt_tree::Tree;

use crate::depmod::{file_bytes, module_dir};
use crate::error::KmodError;
use crate::names::{modname, normalize_name};

struct DepFile {
    /// module name -> (relpath, dependency relpaths as listed).
    lines: HashMap<String, (String, Vec<String>)>,
}

fn parse_dep(dir: &str, bytes: &[u8]) -> Result<DepFile, KmodError> {
    let file = format!("{dir}/modules.dep");
    let mut lines = HashMap::new();
    for (n, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (path, deps) = line.split_once(':').ok_or_else(|| KmodError::BadDepFile {
            file: file.clone(),
            line: n + 1,
            why: "no ':' after the module path".into(),
        })?;
        let deps = deps.split_whitespace().map(str::to_string).collect();
        lines.insert(modname(path), (path.to_string(), deps));
    }
    Ok(DepFile { lines })
}

/// Pre-softdeps of each module from modules.softdep (`softdep m pre: a b post: c`).
fn parse_softdep_pre(bytes: &[u8]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8_lossy(bytes).lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            continue;
        }
        let Some(m) = words.next() else { continue };
        let mut in_pre = false;
        for w in words {
            match w {
                "pre:" => in_pre = true,
                "post:" => in_pre = false,
                name if in_pre => out
                    .entry(normalize_name(m))
                    .or_default()
                    .push(normalize_name(name)),
                _ => {}
            }
        }
    }
    out
}

/// `alias <pattern> <module>` lines of modules.alias, in file order.
fn parse_aliases(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("alias")).then_some(())?;
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

/// Module names for `name`: itself if it is a module, else every module
/// with a matching alias (as modprobe resolves names).
fn resolve(name: &str, dep: &DepFile, aliases: &[(String, String)]) -> Vec<String> {
    let norm = normalize_name(name);
    if dep.lines.contains_key(&norm) {
        return vec![norm];
    }
    let mut out: Vec<String> = Vec::new();
    // Like libkmod's alias index, compare with '-' and '_' made equal.
    for (pattern, module) in aliases {
        let Some(pattern) = crate::names::normalize_alias(pattern) else {
            continue;
        };
        if basalt_fnmatch::matches(&pattern, &norm)
            && !out.contains(module)
            && dep.lines.contains_key(module)
        {
            out.push(module.clone());
        }
    }
    out
}

/// The absolute tree paths of `wanted` (module names) and everything they
/// need, in an order that loads every module after its dependencies.
/// Modules built into the kernel (modules.builtin) are skipped silently; a
/// name that is neither a module nor built in is an error. Pre-softdeps
/// (`softdep x pre: y`) that exist as modules are loaded before `x`; ones
/// that do not exist are skipped, as modprobe does. Needs depmod's output
/// (modules.dep) in the tree.
pub fn load_order(tree: &Tree, kver: &str, wanted: &[&str]) -> Result<Vec<String>, KmodError> {
    let r = Resolver::new(tree, kver)?;
    r.order(wanted, &[], &HashSet::new())
}

/// The module indexes a load order is computed from (depmod's output in
/// the tree), read once for several lists.
pub(crate) struct Resolver {
    dep: DepFile,
    soft: HashMap<String, Vec<String>>,
    aliases: Vec<(String, String)>,
    builtin: HashSet<String>,
    dir: String,
}

impl Resolver {
    pub(crate) fn new(tree: &Tree, kver: &str) -> Result<Resolver, KmodError> {
        let dir = module_dir(tree, kver)?;
        let dep_bytes = file_bytes(tree, &format!("{dir}/modules.dep"))?.ok_or_else(|| {
            KmodError::BadDepFile {
                file: format!("{dir}/modules.dep"),
                line: 0,
                why: "missing; run depmod first".into(),
            }
        })?;
        let dep = parse_dep(&dir, &dep_bytes)?;
        let soft = parse_softdep_pre(
            &file_bytes(tree, &format!("{dir}/modules.softdep"))?.unwrap_or_default(),
        );
        let aliases =
            parse_aliases(&file_bytes(tree, &format!("{dir}/modules.alias"))?.unwrap_or_default());
        let builtin: HashSet<String> = file_bytes(tree, &format!("{dir}/modules.builtin"))?
            .map(|b| String::from_utf8_lossy(&b).lines().map(modname).collect())
            .unwrap_or_default();
        Ok(Resolver {
            dep,
            soft,
            aliases,
            builtin,
            dir,
        })
    }

    /// Module names `w` stands for; empty if it is built in; an error if
    /// it is neither a module nor built in.
    fn names(&self, w: &str) -> Result<Vec<String>, KmodError> {
        let names = resolve(w, &self.dep, &self.aliases);
        if names.is_empty() && !self.builtin.contains(&normalize_name(w)) {
            return Err(KmodError::UnknownModule(w.to_string()));
        }
        Ok(names)
    }

    /// The module names `name` must be loaded after: its dependencies in
    /// modules.dep (which lists them transitively) and its pre-softdeps
    /// that exist as modules. Unsorted, each once.
    pub(crate) fn needs(&self, name: &str) -> HashSet<String> {
        let mut out = HashSet::new();
        let Some((_, deps)) = self.dep.lines.get(name) else {
            return out;
        };
        out.extend(deps.iter().map(|d| modname(d)));
        for pre in self.soft.get(name).into_iter().flatten() {
            out.extend(resolve(pre, &self.dep, &self.aliases));
        }
        out
    }

    /// The load order of `wanted` (see [`load_order`]) without the modules
    /// named in `skip` (already loaded by an earlier list; their
    /// dependencies are taken as loaded too). The modules named in `last`
    /// come after every module of the list that does not need them: first
    /// everything else, then what the `last` ones need, then the `last`
    /// ones. The order stays a valid dependency order in any case (a
    /// module that needs a `last` one is loaded after it).
    pub(crate) fn order(
        &self,
        wanted: &[&str],
        last: &[&str],
        skip: &HashSet<String>,
    ) -> Result<Vec<String>, KmodError> {
        let last: HashSet<String> = last.iter().map(|n| normalize_name(n)).collect();
        let mut first = Vec::new();
        let mut deferred = Vec::new();
        for w in wanted {
            for name in self.names(w)? {
                if last.contains(&name) {
                    deferred.push(name);
                } else {
                    first.push(name);
                }
            }
        }
        let mut out: Vec<String> = Vec::new();
        let mut done: HashSet<String> = skip.clone();
        let mut visiting: HashSet<String> = HashSet::new();
        let ctx = Ctx {
            dep: &self.dep,
            soft: &self.soft,
            aliases: &self.aliases,
            dir: &self.dir,
        };
        for name in &first {
            add(name, &ctx, &mut out, &mut done, &mut visiting);
        }
        for name in &deferred {
            add_needs(name, &ctx, &mut out, &mut done, &mut visiting);
        }
        for name in &deferred {
            add(name, &ctx, &mut out, &mut done, &mut visiting);
        }
        Ok(out)
    }
}

struct Ctx<'a> {
    dep: &'a DepFile,
    soft: &'a HashMap<String, Vec<String>>,
    aliases: &'a [(String, String)],
    dir: &'a str,
}

/// What `name` needs before it: its pre-softdeps, then its dependencies.
fn add_needs(
    name: &str,
    ctx: &Ctx<'_>,
    out: &mut Vec<String>,
    done: &mut HashSet<String>,
    visiting: &mut HashSet<String>,
) {
    let Some((_, deps)) = ctx.dep.lines.get(name) else {
        return;
    };
    // Pre-softdeps name modules or aliases (`crc32c`); missing ones are skipped.
    for pre in ctx.soft.get(name).into_iter().flatten() {
        for m in resolve(pre, ctx.dep, ctx.aliases) {
            add(&m, ctx, out, done, visiting);
        }
    }
    // modules.dep lists users before what they use: load from the end.
    for d in deps.iter().rev() {
        add(&modname(d), ctx, out, done, visiting);
    }
}

fn add(
    name: &str,
    ctx: &Ctx<'_>,
    out: &mut Vec<String>,
    done: &mut HashSet<String>,
    visiting: &mut HashSet<String>,
) {
    if done.contains(name) || !visiting.insert(name.to_string()) {
        return;
    }
    let Some((path, _)) = ctx.dep.lines.get(name) else {
        return;
    };
    add_needs(name, ctx, out, done, visiting);
    out.push(format!("{}/{path}", ctx.dir));
    done.insert(name.to_string());
}
