//! An index of the packages available for one architecture, built from one or
//! more Packages files (several components or suites).

use std::collections::BTreeMap;

use crate::control::{ControlError, ParseOptions, paragraphs};
use crate::package::{Package, PackageError};
use crate::relation::ArchQual;
use crate::version::Version;

/// A package providing a (virtual) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider<'a> {
    /// Position of the provider in [`PackageIndex::packages`].
    pub index: usize,
    /// The provided version (`Provides: name (= version)`), if any.
    pub version: Option<&'a Version>,
}

/// Counts from one [`PackageIndex::add_packages_text`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddStats {
    /// Paragraphs added.
    pub added: usize,
    /// Paragraphs for other architectures, left out.
    pub other_arch: usize,
    /// Paragraphs identical (name, version, SHA256) to one already indexed.
    pub duplicates: usize,
}

/// Why a Packages text could not be indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("{origin}: {source}")]
    Syntax {
        origin: String,
        source: ControlError,
    },
    #[error("{origin}: {source}")]
    Package {
        origin: String,
        source: Box<PackageError>,
    },
    #[error(
        "{origin}: paragraph at line {line}: {name} {version} is already indexed with a different SHA256 ({first_origin})"
    )]
    Conflicting {
        origin: String,
        line: usize,
        name: String,
        version: String,
        first_origin: String,
    },
}

/// Packages for one architecture plus `Architecture: all`.
#[derive(Debug, Clone)]
pub struct PackageIndex {
    arch: String,
    packages: Vec<Package>,
    /// Origin names, and for each package the position of its origin there.
    origin_names: Vec<String>,
    origins: Vec<usize>,
    /// Package name → indices, highest version first.
    by_name: BTreeMap<String, Vec<usize>>,
    /// Provided name → (provider index, position in its `provides`), sorted.
    provided: BTreeMap<String, Vec<(usize, usize)>>,
}

impl PackageIndex {
    /// An empty index for `arch` (e.g. `amd64`).
    pub fn new(arch: &str) -> PackageIndex {
        PackageIndex {
            arch: arch.to_string(),
            packages: Vec::new(),
            origin_names: Vec::new(),
            origins: Vec::new(),
            by_name: BTreeMap::new(),
            provided: BTreeMap::new(),
        }
    }

    /// Builds an index from several `(origin, Packages text)` pairs, in order.
    pub fn from_texts<'a>(
        arch: &str,
        texts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<PackageIndex, IndexError> {
        let mut index = PackageIndex::new(arch);
        for (origin, text) in texts {
            index.add_packages_text(origin, text)?;
        }
        Ok(index)
    }

    /// Adds the paragraphs of one Packages file; `origin` names it in errors
    /// (e.g. `trixie/main/binary-amd64/Packages`). Paragraphs for other
    /// architectures are counted and left out. On error nothing is added.
    pub fn add_packages_text(&mut self, origin: &str, text: &str) -> Result<AddStats, IndexError> {
        let before = self.packages.len();
        let origin_id = self.origin_names.len();
        self.origin_names.push(origin.to_string());
        let result = self.add_all(origin, origin_id, text);
        if result.is_err() {
            self.truncate(before);
            self.origin_names.truncate(origin_id);
        }
        result
    }

    fn add_all(
        &mut self,
        origin: &str,
        origin_id: usize,
        text: &str,
    ) -> Result<AddStats, IndexError> {
        let mut stats = AddStats::default();
        let mut touched = Vec::new();
        for para in paragraphs(text, ParseOptions::default()) {
            let para = para.map_err(|source| IndexError::Syntax {
                origin: origin.to_string(),
                source,
            })?;
            let arch = para.get("Architecture");
            if arch.is_some_and(|a| a != self.arch && a != "all") {
                stats.other_arch += 1;
                continue;
            }
            let pkg = Package::from_paragraph(&para).map_err(|source| IndexError::Package {
                origin: origin.to_string(),
                source: Box::new(source),
            })?;
            let same = self
                .versions_of(&pkg.name)
                .iter()
                .copied()
                .find(|&i| self.packages[i].version == pkg.version);
            if let Some(i) = same {
                if self.packages[i].sha256 == pkg.sha256 {
                    stats.duplicates += 1;
                    continue;
                }
                return Err(IndexError::Conflicting {
                    origin: origin.to_string(),
                    line: para.line,
                    name: pkg.name,
                    version: pkg.version.to_string(),
                    first_origin: self.origin_names[self.origins[i]].clone(),
                });
            }
            let index = self.packages.len();
            match self.by_name.get_mut(&pkg.name) {
                Some(list) => {
                    list.push(index);
                    touched.push(index);
                }
                None => {
                    self.by_name.insert(pkg.name.clone(), vec![index]);
                }
            }
            for (k, prov) in pkg.provides.iter().enumerate() {
                match self.provided.get_mut(&prov.name) {
                    Some(list) => list.push((index, k)),
                    None => {
                        self.provided.insert(prov.name.clone(), vec![(index, k)]);
                    }
                }
            }
            self.packages.push(pkg);
            self.origins.push(origin_id);
            stats.added += 1;
        }
        let packages = &self.packages;
        for i in touched {
            if let Some(list) = self.by_name.get_mut(&packages[i].name) {
                // Highest version first; equal versions cannot occur (duplicates are merged).
                list.sort_by(|&a, &b| packages[b].version.cmp(&packages[a].version));
            }
        }
        Ok(stats)
    }

    /// Drops packages from position `len` on (undoing a failed add).
    fn truncate(&mut self, len: usize) {
        self.packages.truncate(len);
        self.origins.truncate(len);
        for list in self.by_name.values_mut() {
            list.retain(|&i| i < len);
        }
        self.by_name.retain(|_, list| !list.is_empty());
        for list in self.provided.values_mut() {
            list.retain(|&(i, _)| i < len);
        }
        self.provided.retain(|_, list| !list.is_empty());
    }

    /// The index architecture.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// All indexed packages, in insertion order.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// Number of indexed packages.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The package at `index`.
    pub fn get(&self, index: usize) -> Option<&Package> {
        self.packages.get(index)
    }

    /// Origin (as passed to [`PackageIndex::add_packages_text`]) of the package at `index`.
    pub fn origin(&self, index: usize) -> Option<&str> {
        self.origins
            .get(index)
            .map(|&o| self.origin_names[o].as_str())
    }

    /// Indices of the real packages called `name`, highest version first.
    pub fn versions_of(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The candidate (highest version) of `name`.
    pub fn candidate(&self, name: &str) -> Option<&Package> {
        self.versions_of(name).first().map(|&i| &self.packages[i])
    }

    /// Packages providing `name`, in a stable order (index order).
    pub fn providers(&self, name: &str) -> Vec<Provider<'_>> {
        self.provided.get(name).map_or_else(Vec::new, |list| {
            list.iter()
                .map(|&(index, k)| Provider {
                    index,
                    version: self.packages[index].provides[k]
                        .constraint
                        .as_ref()
                        .map(|c| &c.version),
                })
                .collect()
        })
    }

    /// Real package names (sorted) with their indices, highest version first.
    pub fn names_and_versions(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.by_name.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Names of the real packages, sorted.
    pub fn real_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Whether `name` is a real package or provided by one.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.provided.contains_key(name)
    }

    /// All real and provided names, sorted, without duplicates.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut real = self.by_name.keys().map(String::as_str).peekable();
        let mut virt = self.provided.keys().map(String::as_str).peekable();
        std::iter::from_fn(move || match (real.peek(), virt.peek()) {
            (Some(a), Some(b)) if a == b => {
                virt.next();
                real.next()
            }
            (Some(a), Some(b)) if a < b => real.next(),
            (Some(_), Some(_)) | (None, Some(_)) => virt.next(),
            (Some(_), None) => real.next(),
            (None, None) => None,
        })
    }

    /// Whether an architecture qualifier can be satisfied by packages of this
    /// index (which holds only the native architecture and `all`).
    pub fn qualifier_is_native(&self, qual: Option<&ArchQual>) -> bool {
        match qual {
            None | Some(ArchQual::Any) | Some(ArchQual::Native) => true,
            Some(ArchQual::Arch(a)) => *a == self.arch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, version: &str, arch: &str, sha: char, extra: &str) -> String {
        let sha: String = std::iter::repeat_n(sha, 64).collect();
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: pool/{name}_{version}.deb\n\
             Size: 10\nSHA256: {sha}\n{extra}\n"
        )
    }

    #[test]
    fn indexes_versions_providers_and_filters_arch() {
        let main = [
            stanza("foo", "1.0", "amd64", 'a', "Provides: virt (= 1.0)\n"),
            stanza("foo", "2.0", "amd64", 'b', ""),
            stanza("foo", "3.0", "i386", 'c', ""),
            stanza("bar", "1", "all", 'd', "Provides: virt, foo\n"),
        ]
        .concat();
        let updates = [
            stanza("foo", "1.5", "amd64", 'e', ""),
            stanza("bar", "1", "all", 'd', "Provides: virt, foo\n"),
        ]
        .concat();
        let mut idx = PackageIndex::new("amd64");
        let s1 = idx.add_packages_text("main", &main).unwrap();
        assert_eq!(
            s1,
            AddStats {
                added: 3,
                other_arch: 1,
                duplicates: 0
            }
        );
        let s2 = idx.add_packages_text("updates", &updates).unwrap();
        assert_eq!(
            s2,
            AddStats {
                added: 1,
                other_arch: 0,
                duplicates: 1
            }
        );
        let versions: Vec<String> = idx
            .versions_of("foo")
            .iter()
            .map(|&i| idx.packages()[i].version.to_string())
            .collect();
        assert_eq!(versions, ["2.0", "1.5", "1.0"]);
        assert_eq!(
            idx.candidate("foo")
                .map(|p| p.version.to_string())
                .as_deref(),
            Some("2.0")
        );
        assert_eq!(idx.origin(idx.versions_of("foo")[1]), Some("updates"));
        let prov: Vec<(String, Option<String>)> = idx
            .providers("virt")
            .iter()
            .map(|p| {
                (
                    idx.packages()[p.index].to_string(),
                    p.version.map(|v| v.to_string()),
                )
            })
            .collect();
        assert_eq!(
            prov,
            [
                ("foo 1.0 (amd64)".to_string(), Some("1.0".to_string())),
                ("bar 1 (all)".to_string(), None)
            ]
        );
        assert_eq!(idx.names().collect::<Vec<_>>(), ["bar", "foo", "virt"]);
        assert!(idx.knows("virt") && idx.knows("bar") && !idx.knows("baz"));
        assert_eq!(idx.len(), 4);
    }

    #[test]
    fn errors_name_origin_and_line_and_add_nothing() {
        let mut idx = PackageIndex::new("amd64");
        idx.add_packages_text("one", &stanza("foo", "1", "amd64", 'a', ""))
            .unwrap();
        let conflicting = [
            stanza("bar", "1", "all", 'b', ""),
            stanza("foo", "1", "amd64", 'f', ""),
        ]
        .concat();
        let e = idx.add_packages_text("two", &conflicting).unwrap_err();
        assert_eq!(
            e.to_string(),
            "two: paragraph at line 8: foo 1 is already indexed with a different SHA256 (one)"
        );
        assert_eq!(idx.len(), 1, "a failed add must not add anything");
        let bad = [
            stanza("bar", "1", "all", 'b', ""),
            stanza("baz", "1", "all", 'b', "Depends: (x)\n"),
        ]
        .concat();
        let e = idx.add_packages_text("three", &bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("three: paragraph at line 8 (package baz): field Depends:"),
            "{e}"
        );
        let e = idx
            .add_packages_text("four", "Package: x\n bad\nno colon\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "four: line 3: expected `Name: value`, found no colon"
        );
        assert_eq!(idx.len(), 1);
    }
}
