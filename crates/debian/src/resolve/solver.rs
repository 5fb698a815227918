//! The resolver algorithm.
//!
//! A FIFO queue of requirements (relation groups with their origin) is
//! processed one at a time against the set chosen so far:
//!
//! 1. Alternatives whose architecture restriction excludes the target are
//!    dropped; a group with none left does not apply.
//! 2. If any alternative is already satisfied by a chosen package (by name and
//!    version, or through a chosen package's Provides), the requirement only
//!    adds a reason to that package.
//! 3. If any alternative names an excluded package, the requirement is waived
//!    and reported in [`Resolution::waived`].
//! 4. Otherwise the alternatives are tried in order. For each, a real package
//!    of that name is preferred (highest acceptable version, honouring pins);
//!    then providers, ordered by priority (required > important > standard >
//!    optional > extra > none), then name, then highest version. A candidate
//!    that conflicts with or breaks a chosen package (either direction,
//!    including through Provides) is skipped. The first usable candidate is
//!    chosen and its Pre-Depends, Depends (and Recommends when asked) are
//!    queued.
//! 5. If no alternative works, resolution fails with an error listing why each
//!    alternative failed and the chain of packages that needed it. For
//!    Recommends the failure is recorded instead.
//!
//! Roots are queued first (in request order), then the essential set and the
//! `Priority: required` packages (by name). There is no backtracking beyond
//! falling through to the next alternative or candidate: a choice, once made,
//! is final. Every collection is ordered (BTreeMap, Vec), so the result only
//! depends on the index and the request.

use std::collections::{BTreeMap, VecDeque};

use super::error::{AltFailure, Problem, ResolveError, Start, suggest};
use super::{DepKind, Reason, Request, Resolution, Resolved, Waived};
use crate::index::PackageIndex;
use crate::package::{MultiArch, Package, Priority};
use crate::relation::{
    ArchQual, Constraint, Group, Op, Relation, parse_relations, valid_package_name,
};
use crate::version::Version;

/// Where a queued requirement came from.
#[derive(Debug, Clone)]
enum From {
    Root(String),
    Essential,
    Required,
    Package(String, DepKind),
}

struct Job {
    group: Group,
    text: String,
    from: From,
}

/// A negative relation (Conflicts/Breaks) declared by a chosen package.
struct Negative {
    by: usize,
    relation: Relation,
    field: &'static str,
}

struct Solver<'a> {
    index: &'a PackageIndex,
    request: &'a Request,
    chosen: BTreeMap<String, usize>,
    reasons: BTreeMap<String, Vec<Reason>>,
    /// Provided name → (chosen provider, provided version).
    provided: BTreeMap<String, Vec<(usize, Option<Version>)>>,
    /// Target name → negative relations of chosen packages naming it.
    negative: BTreeMap<String, Vec<Negative>>,
    queue: VecDeque<Job>,
    waived: Vec<Waived>,
    unsatisfied_recommends: Vec<String>,
}

/// Resolves `request` against `index`. See the module documentation.
pub fn resolve(index: &PackageIndex, request: &Request) -> Result<Resolution, ResolveError> {
    if request.arch != index.arch() {
        return Err(ResolveError::ArchMismatch {
            request: request.arch.clone(),
            index: index.arch().to_string(),
        });
    }
    let mut solver = Solver {
        index,
        request,
        chosen: BTreeMap::new(),
        reasons: BTreeMap::new(),
        provided: BTreeMap::new(),
        negative: BTreeMap::new(),
        queue: VecDeque::new(),
        waived: Vec::new(),
        unsatisfied_recommends: Vec::new(),
    };
    for root in &request.roots {
        let group = parse_root(root)?;
        solver.push(group, From::Root(root.clone()));
    }
    if request.include_essential {
        let mut required = Vec::new();
        for (name, versions) in index.names_and_versions() {
            let pin = request.pins.get(name);
            let Some(candidate) = versions
                .iter()
                .map(|&i| &index.packages()[i])
                .find(|p| pin.is_none_or(|v| p.version == *v))
            else {
                continue;
            };
            if candidate.essential {
                solver.push(plain_group(name), From::Essential);
            } else if candidate.priority == Some(Priority::Required) {
                required.push(name);
            }
        }
        for name in required {
            solver.push(plain_group(name), From::Required);
        }
    }
    while let Some(job) = solver.queue.pop_front() {
        solver.process(job)?;
    }
    Ok(solver.finish())
}

fn plain_group(name: &str) -> Group {
    Group {
        alternatives: vec![Relation {
            name: name.to_string(),
            arch_qual: None,
            constraint: None,
            arches: Vec::new(),
            profiles: Vec::new(),
        }],
    }
}

/// `name=version`, or one relation group (`a (>= 1) | b`).
fn parse_root(root: &str) -> Result<Group, ResolveError> {
    let text = root.trim();
    let bad = |message: &str| ResolveError::BadRootPin {
        root: root.to_string(),
        message: message.to_string(),
    };
    if !text.contains('(')
        && let Some((name, version)) = text.split_once('=')
    {
        let name = name.trim();
        if !valid_package_name(name) {
            return Err(bad("the part before '=' is not a valid package name"));
        }
        let version = Version::parse(version).map_err(|e| bad(&e.to_string()))?;
        let mut group = plain_group(name);
        group.alternatives[0].constraint = Some(Constraint {
            op: Op::Eq,
            version,
        });
        return Ok(group);
    }
    let mut groups = parse_relations(text).map_err(|source| ResolveError::BadRoot {
        root: root.to_string(),
        source,
    })?;
    match groups.len() {
        1 => Ok(groups.remove(0)),
        0 => Err(bad("it is empty")),
        _ => Err(bad(
            "it holds several requirements; give each as its own root",
        )),
    }
}

fn priority_rank(p: Option<Priority>) -> u8 {
    match p {
        Some(Priority::Required) => 0,
        Some(Priority::Important) => 1,
        Some(Priority::Standard) => 2,
        Some(Priority::Optional) => 3,
        Some(Priority::Extra) => 4,
        None => 5,
    }
}

impl<'a> Solver<'a> {
    fn pkg(&self, i: usize) -> &'a Package {
        &self.index.packages()[i]
    }

    fn push(&mut self, group: Group, from: From) {
        let text = group.to_string();
        self.queue.push_back(Job { group, text, from });
    }

    fn any_ok(rel: &Relation, p: &Package) -> bool {
        rel.arch_qual != Some(ArchQual::Any) || p.multi_arch == MultiArch::Allowed
    }

    /// A chosen package satisfying `rel`: (its name, provided name if via Provides).
    fn satisfied(&self, rel: &Relation) -> Option<(String, Option<String>)> {
        if !self.index.qualifier_is_native(rel.arch_qual.as_ref()) {
            return None;
        }
        if let Some(&i) = self.chosen.get(&rel.name) {
            let p = self.pkg(i);
            if rel.matches_version(&p.version) && Self::any_ok(rel, p) {
                return Some((p.name.clone(), None));
            }
        }
        let providers = self.provided.get(&rel.name)?;
        providers
            .iter()
            .find(|(_, v)| {
                rel.constraint.is_none() || v.as_ref().is_some_and(|v| rel.matches_version(v))
            })
            .map(|&(i, _)| (self.pkg(i).name.clone(), Some(rel.name.clone())))
    }

    /// Why `candidate` cannot join the chosen set, if it cannot.
    fn conflict(&self, c: usize) -> Option<String> {
        let cand = self.pkg(c);
        let own = cand
            .conflicts
            .iter()
            .map(|r| (r, "Conflicts"))
            .chain(cand.breaks.iter().map(|r| (r, "Breaks")));
        for (rel, field) in own {
            if let Some(&i) = self.chosen.get(&rel.name) {
                let p = self.pkg(i);
                if p.name != cand.name && rel.matches_version(&p.version) {
                    return Some(format!("declares {field}: {rel}, but {p} is in the set"));
                }
            }
            for (i, v) in self.provided.get(&rel.name).into_iter().flatten() {
                let p = self.pkg(*i);
                let hit =
                    rel.constraint.is_none() || v.as_ref().is_some_and(|v| rel.matches_version(v));
                if hit && p.name != cand.name {
                    return Some(format!(
                        "declares {field}: {rel}, but {p} (which provides {}) is in the set",
                        rel.name
                    ));
                }
            }
        }
        let mut targets: Vec<(&str, Option<&Version>)> =
            vec![(cand.name.as_str(), Some(&cand.version))];
        for prov in &cand.provides {
            targets.push((
                prov.name.as_str(),
                prov.constraint.as_ref().map(|c| &c.version),
            ));
        }
        for (is_real, (name, version)) in targets.into_iter().enumerate().map(|(k, t)| (k == 0, t))
        {
            for neg in self.negative.get(name).into_iter().flatten() {
                let p = self.pkg(neg.by);
                if p.name == cand.name {
                    continue;
                }
                let rel = &neg.relation;
                let hit = if is_real {
                    version.is_some_and(|v| rel.matches_version(v))
                } else {
                    rel.constraint.is_none() || version.is_some_and(|v| rel.matches_version(v))
                };
                if hit {
                    return Some(format!(
                        "is excluded by {p} in the set, which declares {}: {rel}",
                        neg.field
                    ));
                }
            }
        }
        None
    }

    /// Picks a package for one alternative: (index, provided name if via Provides).
    fn choose(&self, rel: &Relation) -> Result<(usize, Option<String>), Problem> {
        if let Some(ArchQual::Arch(a)) = &rel.arch_qual
            && *a != self.index.arch()
        {
            return Err(Problem::ForeignArch { arch: a.clone() });
        }
        let mut problem = None;
        let versions = self.index.versions_of(&rel.name);
        let show = |list: &[usize]| {
            list.iter()
                .map(|&i| self.pkg(i).version.to_string())
                .collect::<Vec<_>>()
        };
        if !versions.is_empty() {
            if let Some(&i) = self.chosen.get(&rel.name) {
                problem = Some(Problem::AlreadyChosen {
                    version: self.pkg(i).version.to_string(),
                });
            } else {
                let pin = self.request.pins.get(&rel.name);
                let fitting: Vec<usize> = versions
                    .iter()
                    .copied()
                    .filter(|&i| rel.matches_version(&self.pkg(i).version))
                    .filter(|&i| pin.is_none_or(|v| self.pkg(i).version == *v))
                    .collect();
                if fitting.is_empty() {
                    problem = Some(match pin {
                        Some(v) => Problem::Pinned {
                            pin: v.to_string(),
                            available: show(versions),
                        },
                        None => Problem::Versions {
                            available: show(versions),
                        },
                    });
                }
                for c in fitting {
                    if !Self::any_ok(rel, self.pkg(c)) {
                        problem = Some(Problem::NotMultiArchAllowed {
                            candidate: self.pkg(c).to_string(),
                        });
                    } else if let Some(detail) = self.conflict(c) {
                        problem = Some(Problem::Conflict {
                            candidate: self.pkg(c).to_string(),
                            detail,
                        });
                    } else {
                        return Ok((c, None));
                    }
                }
            }
        }
        let providers = self.index.providers(&rel.name);
        if !providers.is_empty() {
            let mut excluded = Vec::new();
            let mut provided = Vec::new();
            let mut cands: Vec<(u8, &str, std::cmp::Reverse<&Version>, usize)> = Vec::new();
            for prov in &providers {
                let p = self.pkg(prov.index);
                provided.push(match prov.version {
                    Some(v) => format!("{} (= {v})", p.name),
                    None => format!("{} (unversioned)", p.name),
                });
                if rel.constraint.is_some() && !prov.version.is_some_and(|v| rel.matches_version(v))
                {
                    continue;
                }
                if self
                    .request
                    .pins
                    .get(&p.name)
                    .is_some_and(|v| p.version != *v)
                    || self.chosen.get(&p.name).is_some_and(|&ci| ci != prov.index)
                {
                    continue;
                }
                if self.request.excludes.contains(&p.name) {
                    excluded.push(p.name.clone());
                    continue;
                }
                cands.push((
                    priority_rank(p.priority),
                    &p.name,
                    std::cmp::Reverse(&p.version),
                    prov.index,
                ));
            }
            cands.sort();
            for &(_, _, _, c) in &cands {
                if let Some(detail) = self.conflict(c) {
                    problem.get_or_insert(Problem::Conflict {
                        candidate: self.pkg(c).to_string(),
                        detail,
                    });
                } else {
                    return Ok((c, Some(rel.name.clone())));
                }
            }
            if problem.is_none() {
                problem = Some(if excluded.is_empty() {
                    Problem::Providers { provided }
                } else {
                    Problem::OnlyExcluded {
                        candidates: excluded,
                    }
                });
            }
        }
        Err(problem.unwrap_or_else(|| Problem::Unknown {
            suggestions: suggest(self.index, &rel.name),
        }))
    }

    fn reason(from: &From, text: &str, provides: Option<String>) -> Reason {
        match from {
            From::Root(r) => Reason::Root { request: r.clone() },
            From::Essential => Reason::Essential,
            From::Required => Reason::Required,
            From::Package(by, kind) => Reason::Dependency {
                by: by.clone(),
                kind: *kind,
                relation: text.to_string(),
                provides,
            },
        }
    }

    fn add_reason(&mut self, name: &str, reason: Reason) {
        let list = self.reasons.entry(name.to_string()).or_default();
        if !list.contains(&reason) {
            list.push(reason);
        }
    }

    fn select(&mut self, c: usize, reason: Reason) {
        let p = self.pkg(c);
        self.chosen.insert(p.name.clone(), c);
        self.add_reason(&p.name, reason);
        for prov in &p.provides {
            let version = prov.constraint.as_ref().map(|k| k.version.clone());
            self.provided
                .entry(prov.name.clone())
                .or_default()
                .push((c, version));
        }
        let negatives = p
            .conflicts
            .iter()
            .map(|r| (r, "Conflicts"))
            .chain(p.breaks.iter().map(|r| (r, "Breaks")));
        for (relation, field) in negatives {
            self.negative
                .entry(relation.name.clone())
                .or_default()
                .push(Negative {
                    by: c,
                    relation: relation.clone(),
                    field,
                });
        }
        let mut fields = vec![
            (DepKind::PreDepends, &p.pre_depends),
            (DepKind::Depends, &p.depends),
        ];
        if self.request.with_recommends {
            fields.push((DepKind::Recommends, &p.recommends));
        }
        for (kind, groups) in fields {
            for group in groups {
                self.push(group.clone(), From::Package(p.name.clone(), kind));
            }
        }
    }

    fn start(&self, from: &From) -> Start {
        match from {
            From::Root(r) => Start::Root(r.clone()),
            From::Essential => Start::Essential,
            From::Required => Start::Required,
            From::Package(name, _) => {
                let mut chain = vec![name.clone()];
                let mut current = name.clone();
                loop {
                    match self.reasons.get(&current).and_then(|r| r.first()) {
                        Some(Reason::Dependency { by, .. }) if !chain.contains(by) => {
                            chain.push(by.clone());
                            current = by.clone();
                        }
                        Some(Reason::Root { request }) => {
                            return Start::Package {
                                chain,
                                start: Box::new(Start::Root(request.clone())),
                            };
                        }
                        Some(Reason::Essential) => {
                            return Start::Package {
                                chain,
                                start: Box::new(Start::Essential),
                            };
                        }
                        // Only `Required` is expected here: a first reason always names a
                        // package chosen earlier, so the chain cannot loop or break off.
                        Some(Reason::Required) | Some(Reason::Dependency { .. }) | None => {
                            return Start::Package {
                                chain,
                                start: Box::new(Start::Required),
                            };
                        }
                    }
                }
            }
        }
    }

    fn process(&mut self, job: Job) -> Result<(), ResolveError> {
        let arch = self.index.arch();
        let alts: Vec<&Relation> = job
            .group
            .alternatives
            .iter()
            .filter(|r| r.applies_to_arch(arch))
            .collect();
        if alts.is_empty() {
            return Ok(());
        }
        for rel in &alts {
            if let Some((name, provides)) = self.satisfied(rel) {
                let reason = Self::reason(&job.from, &job.text, provides);
                self.add_reason(&name, reason);
                return Ok(());
            }
        }
        if let Some(rel) = alts
            .iter()
            .find(|r| self.request.excludes.contains(&r.name))
        {
            let by = match &job.from {
                From::Root(r) => format!("root {r:?}"),
                From::Essential => "essential".to_string(),
                From::Required => "priority required".to_string(),
                From::Package(name, _) => name.clone(),
            };
            self.waived.push(Waived {
                by,
                relation: job.text.clone(),
                excluded: rel.name.clone(),
            });
            return Ok(());
        }
        let mut failures = Vec::new();
        for rel in &alts {
            match self.choose(rel) {
                Ok((c, provides)) => {
                    let reason = Self::reason(&job.from, &job.text, provides);
                    self.select(c, reason);
                    return Ok(());
                }
                Err(problem) => failures.push(AltFailure {
                    name: rel.name.clone(),
                    problem,
                }),
            }
        }
        let error = ResolveError::Unsatisfiable {
            relation: job.text.clone(),
            needed_by: self.start(&job.from),
            failures,
        };
        match job.from {
            From::Package(_, DepKind::Recommends) => {
                self.unsatisfied_recommends.push(error.to_string());
                Ok(())
            }
            _ => Err(error),
        }
    }

    fn finish(mut self) -> Resolution {
        let index = self.index;
        let mut reasons = std::mem::take(&mut self.reasons);
        let packages = self
            .chosen
            .iter()
            .map(|(name, &i)| Resolved {
                package: index.packages()[i].clone(),
                reasons: reasons.remove(name).unwrap_or_default(),
            })
            .collect();
        let unused_pins = self
            .request
            .pins
            .keys()
            .filter(|n| !self.chosen.contains_key(*n))
            .cloned()
            .collect();
        Resolution {
            packages,
            waived: self.waived,
            unsatisfied_recommends: self.unsatisfied_recommends,
            unused_pins,
        }
    }
}
