//! An independent consistency check of a package set, used to verify resolver
//! output and usable on a set loaded from a lockfile.

use std::collections::{BTreeMap, BTreeSet};

use crate::package::{MultiArch, Package};
use crate::relation::{ArchQual, Relation};
use crate::version::Version;

/// Lists what is wrong with installing exactly `packages` on `arch`: two
/// versions of one name, unmet Pre-Depends/Depends (an alternative naming an
/// excluded package counts as met), and Conflicts/Breaks between members.
/// Recommends are not checked. An empty result means the set is consistent.
pub fn check_closure<'a>(
    packages: impl IntoIterator<Item = &'a Package>,
    arch: &str,
    excludes: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_name: BTreeMap<&str, &Package> = BTreeMap::new();
    let mut provided: BTreeMap<&str, Vec<(&Package, Option<&Version>)>> = BTreeMap::new();
    for p in packages {
        if let Some(other) = by_name.insert(&p.name, p) {
            problems.push(format!(
                "{} appears twice ({} and {})",
                p.name, other.version, p.version
            ));
        }
        for prov in &p.provides {
            let version = prov.constraint.as_ref().map(|c| &c.version);
            provided.entry(&prov.name).or_default().push((p, version));
        }
    }
    let qual_ok = |rel: &Relation| match &rel.arch_qual {
        None | Some(ArchQual::Any) | Some(ArchQual::Native) => true,
        Some(ArchQual::Arch(a)) => a == arch,
    };
    let provides_match = |rel: &Relation, v: Option<&Version>| {
        rel.constraint
            .as_ref()
            .is_none_or(|c| v.is_some_and(|v| c.satisfied_by(v)))
    };
    let met = |rel: &Relation| {
        if excludes.contains(&rel.name) {
            return true;
        }
        if !qual_ok(rel) {
            return false;
        }
        let real = by_name.get(rel.name.as_str()).is_some_and(|p| {
            rel.matches_version(&p.version)
                && (rel.arch_qual != Some(ArchQual::Any) || p.multi_arch == MultiArch::Allowed)
        });
        real || provided
            .get(rel.name.as_str())
            .is_some_and(|list| list.iter().any(|&(_, v)| provides_match(rel, v)))
    };
    for p in by_name.values() {
        let fields = [("Pre-Depends", &p.pre_depends), ("Depends", &p.depends)];
        for (field, groups) in fields {
            for group in groups {
                let alts: Vec<&Relation> = group
                    .alternatives
                    .iter()
                    .filter(|r| r.applies_to_arch(arch))
                    .collect();
                if !alts.is_empty() && !alts.iter().any(|r| met(r)) {
                    problems.push(format!("{p}: unmet {field}: {group}"));
                }
            }
        }
        let negatives = p
            .conflicts
            .iter()
            .map(|r| ("Conflicts", r))
            .chain(p.breaks.iter().map(|r| ("Breaks", r)));
        for (field, rel) in negatives {
            if let Some(q) = by_name.get(rel.name.as_str())
                && q.name != p.name
                && rel.matches_version(&q.version)
            {
                problems.push(format!("{p} {field}: {rel}, but {q} is in the set"));
            }
            for &(q, v) in provided.get(rel.name.as_str()).into_iter().flatten() {
                if q.name != p.name && provides_match(rel, v) {
                    problems.push(format!(
                        "{p} {field}: {rel}, but {q} (providing {}) is in the set",
                        rel.name
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::parse;

    fn pkgs(specs: &[(&str, &str)]) -> Vec<Package> {
        specs
            .iter()
            .map(|(head, extra)| {
                let mut parts = head.split_whitespace();
                let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
                let text = format!(
                    "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: f\nSize: 1\nSHA256: {}\n{extra}",
                    "ab".repeat(32)
                );
                Package::from_paragraph(&parse(&text).unwrap()[0]).unwrap()
            })
            .collect()
    }

    #[test]
    fn finds_unmet_and_conflicting() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let table: &[Case] = &[
            (&[("a 1", "Depends: b (>= 2)"), ("b 2", "")], &[]),
            (
                &[("a 1", "Depends: b (>= 2)"), ("b 1", "")],
                &["a 1 (amd64): unmet Depends: b (>= 2)"],
            ),
            (&[("a 1", "Depends: x | v"), ("b 1", "Provides: v")], &[]),
            (
                &[("a 1", "Depends: v (>= 1)"), ("b 1", "Provides: v")],
                &["a 1 (amd64): unmet Depends: v (>= 1)"],
            ),
            (&[("a 1", "Depends: gone")], &[]),
            (
                &[("a 1", "Pre-Depends: c:any"), ("c 1", "")],
                &["a 1 (amd64): unmet Pre-Depends: c:any"],
            ),
            (&[("a 1", "Depends: c [i386]")], &[]),
            (
                &[("a 1", "Conflicts: b"), ("b 1", "")],
                &["a 1 (amd64) Conflicts: b, but b 1 (amd64) is in the set"],
            ),
            (&[("a 1", "Breaks: b (<< 1)"), ("b 1", "")], &[]),
            (
                &[
                    ("a 1", "Provides: mta\nConflicts: mta"),
                    ("b 1", "Provides: mta"),
                ],
                &["a 1 (amd64) Conflicts: mta, but b 1 (amd64) (providing mta) is in the set"],
            ),
            (&[("a 1", "Provides: mta\nConflicts: mta")], &[]),
            (&[("a 1", ""), ("a 2", "")], &["a appears twice (1 and 2)"]),
        ];
        let excludes = BTreeSet::from(["gone".to_string()]);
        for (specs, want) in table {
            let set = pkgs(specs);
            assert_eq!(check_closure(&set, "amd64", &excludes), *want, "{specs:?}");
        }
    }
}
