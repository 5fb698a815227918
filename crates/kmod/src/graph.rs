//! The module graph: which module owns which exported symbol, which modules
//! each one needs, and the topological order depmod sorts dependencies by.
//!
//! The ordering follows depmod's documented behaviour so that our
//! modules.dep lists dependencies in the same order: modules are ranked by
//! modules.order (unlisted ones after, by path); each module's direct
//! dependencies are the owners of its undefined symbols in symbol-table
//! order; a Kahn topological sort that starts from modules nobody uses (a
//! stack, last root first) numbers the modules, and every dependency list
//! is the transitive closure sorted by that number (users before the
//! modules they use, so the last entry is the one to load first).

use std::collections::HashMap;

use crate::elf::ModuleElf;
use crate::error::KmodError;

/// One module as found in the tree.
#[derive(Debug, Clone)]
pub struct Module {
    /// Path relative to the module directory (`kernel/fs/ext4/ext4.ko.xz`).
    pub relpath: String,
    pub name: String,
    pub elf: ModuleElf,
}

/// The analysed set of modules, in depmod order.
#[derive(Debug)]
pub struct Graph {
    pub modules: Vec<Module>,
    /// Exported symbol -> owning module index (the last exporter wins).
    pub symbols: HashMap<String, usize>,
    /// Direct dependencies (indices), unique, in discovery order.
    pub deps: Vec<Vec<usize>>,
    /// Topological number of each module.
    pub topo: Vec<usize>,
    /// Undefined, non-weak symbols no module provides (the kernel's own).
    pub unresolved: usize,
}

impl Graph {
    /// `modules` must already be in depmod order.
    pub fn build(modules: Vec<Module>) -> Result<Graph, KmodError> {
        let n = modules.len();
        let mut symbols: HashMap<String, usize> = HashMap::new();
        for (i, m) in modules.iter().enumerate() {
            for s in &m.elf.exports {
                symbols.insert(s.clone(), i);
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut users = vec![0usize; n];
        let mut unresolved = 0;
        for (i, m) in modules.iter().enumerate() {
            for need in &m.elf.needs {
                let name = need.name.strip_prefix('.').unwrap_or(&need.name);
                match symbols.get(name) {
                    Some(&o) if o != i && !deps[i].contains(&o) => {
                        deps[i].push(o);
                        users[o] += 1;
                    }
                    Some(_) => {}
                    None if !need.weak => unresolved += 1,
                    None => {}
                }
            }
        }
        let mut topo = vec![usize::MAX; n];
        let mut stack: Vec<usize> = (0..n).filter(|&i| users[i] == 0).collect();
        let mut left = users.clone();
        let mut next = 0;
        while let Some(src) = stack.pop() {
            topo[src] = next;
            next += 1;
            for &d in &deps[src] {
                left[d] -= 1;
                if left[d] == 0 {
                    stack.push(d);
                }
            }
        }
        if next < n {
            let stuck: Vec<&str> = (0..n)
                .filter(|&i| topo[i] == usize::MAX)
                .map(|i| modules[i].name.as_str())
                .collect();
            return Err(KmodError::Cycle(stuck.join(", ")));
        }
        Ok(Graph {
            modules,
            symbols,
            deps,
            topo,
            unresolved,
        })
    }

    /// All modules `i` needs, directly or not, sorted by topological number.
    pub fn closure(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.modules.len()];
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.deps[i].clone();
        while let Some(d) = stack.pop() {
            if seen[d] {
                continue;
            }
            seen[d] = true;
            out.push(d);
            stack.extend(self.deps[d].iter().copied());
        }
        out.sort_by_key(|&d| self.topo[d]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::NeededSymbol;

    fn m(name: &str, exports: &[&str], needs: &[&str]) -> Module {
        Module {
            relpath: format!("kernel/{name}.ko"),
            name: name.into(),
            elf: ModuleElf {
                modinfo: vec![],
                exports: exports.iter().map(|s| s.to_string()).collect(),
                needs: needs
                    .iter()
                    .map(|s| NeededSymbol {
                        name: s.to_string(),
                        weak: false,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn closure_orders_users_first() {
        // top -> mid -> base, top -> base, other standalone.
        let g = Graph::build(vec![
            m("base", &["b"], &["printk"]),
            m("mid", &["m"], &["b"]),
            m("top", &[], &["m", "b", "printk"]),
            m("other", &[], &[]),
        ])
        .unwrap();
        assert_eq!(g.deps[2], vec![1, 0]);
        let names = |v: Vec<usize>| {
            v.into_iter()
                .map(|i| g.modules[i].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(g.closure(2)), vec!["mid", "base"]);
        assert_eq!(names(g.closure(1)), vec!["base"]);
        assert!(g.closure(3).is_empty());
        assert_eq!(g.unresolved, 2);
    }

    #[test]
    fn cycle_is_an_error() {
        let err = Graph::build(vec![m("a", &["x"], &["y"]), m("b", &["y"], &["x"])]).unwrap_err();
        assert!(err.to_string().contains("a, b"), "{err}");
    }
}
