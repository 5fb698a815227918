//! Merged /usr: /bin, /sbin and /lib (and /lib32, /lib64, /libx32, /libo32
//! when either side exists) are only symlinks (`usr/bin`, ...) into /usr.
//!
//! Trixie's packages already ship their files under /usr and base-files
//! ships the symlinks; older-style packages that ship real /bin, /sbin or
//! /lib directories have their contents moved under /usr (the /usr copy wins
//! when both exist, and a differing legacy copy is reported). Relative
//! symlinks whose target would change by the move are made absolute.

use anyhow::{Result, bail};
use basalt_deb::join_clamped;
use basalt_tree::{Entry, Kind, Tree};

use super::relocate::{Winner, merge_move};
use super::report::AssemblyReport;

/// Always aliased into /usr.
pub const ALWAYS: &[&str] = &["bin", "sbin", "lib"];
/// Aliased only when the directory exists at / or in /usr.
pub const IF_PRESENT: &[&str] = &["lib32", "lib64", "libx32", "libo32"];

pub fn apply(tree: &mut Tree, epoch: i64, report: &mut AssemblyReport) -> Result<()> {
    for name in ALWAYS.iter().chain(IF_PRESENT) {
        let top = format!("/{name}");
        let usr = format!("/usr/{name}");
        if IF_PRESENT.contains(name) && !tree.contains(&top) && !tree.contains(&usr) {
            continue;
        }
        match tree.get(&top).map(|e| e.kind.clone()) {
            None => {}
            Some(Kind::Dir) => {
                let m = merge_move(tree, &top, &usr, Winner::Destination, true)?;
                report.merged_usr_moved += m.moved;
                report.merged_usr_dropped.extend(m.dropped);
            }
            Some(Kind::Symlink(t)) => {
                if join_clamped("/", &t) != usr {
                    bail!(
                        "{top} is a symlink to {t:?}, but merged /usr needs it to point to usr/{name}"
                    );
                }
                tree.remove(&top);
            }
            Some(k) => bail!(
                "{top} is a {}, but merged /usr needs a symlink to usr/{name}",
                k.name()
            ),
        }
        if !tree.contains(&usr) {
            tree.mkdir_p(&usr, epoch)?;
        }
        tree.insert(&top, Entry::symlink(format!("usr/{name}")).at(epoch))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::Content;

    #[test]
    fn cases_table() {
        // (setup, expected symlinks, error substring)
        type Setup = fn(&mut Tree);
        let cases: Vec<(&str, Setup, Vec<&str>, Option<&str>)> = vec![
            ("empty", |_| {}, vec!["/bin", "/sbin", "/lib"], None),
            (
                "already merged",
                |t| {
                    t.mkdir_p("/usr/lib64", 0).unwrap();
                    t.insert("/lib64", Entry::symlink("usr/lib64")).unwrap();
                    t.insert("/bin", Entry::symlink("/usr/bin")).unwrap();
                },
                vec!["/bin", "/sbin", "/lib", "/lib64"],
                None,
            ),
            (
                "legacy dirs",
                |t| {
                    t.insert_p(
                        "/sbin/init",
                        Entry::file(0o755, Content::from_bytes(b"x".to_vec())),
                    )
                    .unwrap();
                    t.insert_p(
                        "/lib32/ld.so",
                        Entry::file(0o755, Content::from_bytes(b"x".to_vec())),
                    )
                    .unwrap();
                },
                vec!["/bin", "/sbin", "/lib", "/lib32"],
                None,
            ),
            (
                "wrong link",
                |t| t.insert("/lib", Entry::symlink("opt/lib")).unwrap(),
                vec![],
                Some("/lib is a symlink to \"opt/lib\""),
            ),
        ];
        for (what, setup, links, err) in cases {
            let mut t = Tree::new();
            setup(&mut t);
            let mut r = AssemblyReport::default();
            match (apply(&mut t, 9, &mut r), err) {
                (Ok(()), None) => {
                    for l in &links {
                        let e = t.get(l).unwrap_or_else(|| panic!("{what}: {l} missing"));
                        assert_eq!(e.kind, Kind::Symlink(format!("usr{l}")), "{what}");
                        assert!(
                            t.get(&format!("/usr{l}")).is_some_and(Entry::is_dir),
                            "{what}: /usr{l}"
                        );
                    }
                    assert!(!t.contains("/libx32"), "{what}");
                }
                (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want error {want:?}"),
            }
        }
        let mut t = Tree::new();
        t.insert_p(
            "/sbin/init",
            Entry::file(0o755, Content::from_bytes(b"x".to_vec())),
        )
        .unwrap();
        apply(&mut t, 0, &mut AssemblyReport::default()).unwrap();
        assert!(t.contains("/usr/sbin/init"));
    }
}
