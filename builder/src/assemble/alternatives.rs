//! update-alternatives links, declared by the profile instead of computed
//! by postinst scripts: `<link> → /etc/alternatives/<name> → <target>`,
//! where `<name>` is the link's file name. /etc/alternatives later becomes a
//! factory default (/usr/share/factory/etc/alternatives).

use anyhow::{Result, bail};
use basalt_deb::resolve;
use basalt_tree::{Entry, Tree, file_name, normalize};

pub fn apply(tree: &mut Tree, alternatives: &[(String, String)], epoch: i64) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (link, target) in alternatives {
        let link_key = normalize(link)?;
        let target_key = normalize(target)?;
        let name = file_name(&link_key).to_string();
        if name.is_empty() {
            bail!("alternative link {link:?} has no file name");
        }
        if !seen.insert(name.clone()) {
            bail!("alternative {name:?} is declared twice");
        }
        let exists =
            resolve(tree, &target_key, true).is_some_and(|k| tree.contains(&k) && k != "/");
        if !exists {
            bail!(
                "alternative {link} -> {target}: the target {target} does not exist in the tree (is its package installed?)"
            );
        }
        let real_link = resolve(tree, &link_key, false).unwrap_or(link_key.clone());
        if tree.get(&real_link).is_some_and(Entry::is_dir) {
            bail!("alternative link {link} is a directory in the tree");
        }
        let alt = format!("/etc/alternatives/{name}");
        tree.mkdir_p("/etc/alternatives", epoch)?;
        tree.insert(&alt, Entry::symlink(target_key).at(epoch))?;
        tree.insert_p(&real_link, Entry::symlink(alt).at(epoch))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_tree::{Content, Kind};

    #[test]
    fn links_and_errors_table() {
        let mut t = Tree::new();
        t.insert_p(
            "/usr/sbin/iptables-nft",
            Entry::file(0o755, Content::from_bytes(b"x".to_vec())),
        )
        .unwrap();
        t.insert("/sbin", Entry::symlink("usr/sbin")).unwrap();
        let ok = [(
            "/usr/sbin/iptables".to_string(),
            "/sbin/iptables-nft".to_string(),
        )];
        apply(&mut t, &ok, 3).unwrap();
        assert_eq!(
            t.get("/usr/sbin/iptables").unwrap().kind,
            Kind::Symlink("/etc/alternatives/iptables".into())
        );
        assert_eq!(
            t.get("/etc/alternatives/iptables").unwrap().kind,
            Kind::Symlink("/sbin/iptables-nft".into())
        );
        let cases = [
            (
                vec![("/usr/sbin/ip6tables", "/usr/sbin/ip6tables-nft")],
                "the target /usr/sbin/ip6tables-nft does not exist",
            ),
            (
                vec![
                    ("/usr/sbin/x", "/usr/sbin/iptables-nft"),
                    ("/usr/bin/x", "/usr/sbin/iptables-nft"),
                ],
                "declared twice",
            ),
            (
                vec![("/usr/sbin", "/usr/sbin/iptables-nft")],
                "is a directory",
            ),
        ];
        for (alts, want) in cases {
            let alts: Vec<(String, String)> = alts
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let err = apply(&mut t.clone(), &alts, 0).expect_err(want);
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
