//! /usr/lib/os-release from the profile's fields, replacing Debian's, and
//! /etc/os-release → ../usr/lib/os-release (a factory default like the rest
//! of /etc). Values are written double-quoted with `\`, `"`, `$` and `` ` ``
//! escaped (os-release(5)).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use basalt_tree::{Content, Entry, Tree};

pub const OS_RELEASE: &str = "/usr/lib/os-release";
pub const ETC_LINK: &str = "/etc/os-release";

/// The os-release text, keys in sorted order.
pub fn render(fields: &BTreeMap<String, String>) -> Result<String> {
    if !fields.contains_key("ID") {
        bail!("os_release needs at least an ID field");
    }
    let mut out = String::new();
    for (k, v) in fields {
        let key_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !k.as_bytes()[0].is_ascii_digit();
        if !key_ok {
            bail!(
                "os_release key {k:?} must be upper-case letters, digits and '_' (os-release(5))"
            );
        }
        if v.contains('\n') {
            bail!("os_release {k} value contains a newline");
        }
        let mut esc = String::with_capacity(v.len());
        for c in v.chars() {
            if matches!(c, '\\' | '"' | '$' | '`') {
                esc.push('\\');
            }
            esc.push(c);
        }
        out.push_str(&format!("{k}=\"{esc}\"\n"));
    }
    Ok(out)
}

pub fn apply(tree: &mut Tree, fields: &BTreeMap<String, String>, epoch: i64) -> Result<()> {
    let text = render(fields)?;
    tree.remove(OS_RELEASE);
    tree.insert_p(
        OS_RELEASE,
        Entry::file(0o644, Content::from_bytes(text.into_bytes())).at(epoch),
    )?;
    tree.remove(ETC_LINK);
    tree.insert_p(ETC_LINK, Entry::symlink("../usr/lib/os-release").at(epoch))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_table() {
        let m = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        type Case<'a> = (BTreeMap<String, String>, Result<&'a str, &'a str>);
        let cases: Vec<Case> = vec![
            (
                m(&[
                    ("ID", "basalt"),
                    ("NAME", "Basalt"),
                    ("PRETTY_NAME", "Basalt \"1\" $x"),
                ]),
                Ok("ID=\"basalt\"\nNAME=\"Basalt\"\nPRETTY_NAME=\"Basalt \\\"1\\\" \\$x\"\n"),
            ),
            (m(&[("NAME", "x")]), Err("needs at least an ID")),
            (
                m(&[("ID", "x"), ("bad-key", "y")]),
                Err("must be upper-case"),
            ),
            (m(&[("ID", "x\ny")]), Err("contains a newline")),
        ];
        for (fields, want) in cases {
            match (render(&fields), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e}"),
                (got, w) => panic!("{fields:?}: {got:?} vs {w:?}"),
            }
        }
    }
}
