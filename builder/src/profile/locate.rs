//! Find where a key sits in a YAML file, so that semantic errors found after
//! parsing can still name `file:line:column`.

/// The 1-based (line, column) of the key at `path` (e.g. `["disk", "usr"]`)
/// in a block-style YAML document, or `None` when it cannot be found.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut want = path.iter();
    let mut key = want.next()?;
    let mut min_indent: Option<usize> = None;
    let mut parent_indent: Option<usize> = None;
    for (no, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        if let (Some(p), Some(_)) = (parent_indent, min_indent)
            && indent <= p
        {
            // Left the parent's block without finding the key.
            return None;
        }
        if min_indent.is_some_and(|m| indent < m) {
            continue;
        }
        let body = body.strip_prefix("- ").unwrap_or(body);
        let matches = body
            .strip_prefix(*key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
            || body
                .strip_prefix(&format!("\"{key}\""))
                .is_some_and(|r| r.trim_start().starts_with(':'));
        if matches {
            match want.next() {
                None => return Some((no + 1, indent + 1)),
                Some(next) => {
                    key = next;
                    parent_indent = Some(indent);
                    min_indent = Some(indent + 1);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\n# comment\ndisk:\n  esp: 1GiB\n  usr: 0\nother:\n  usr: 5\n";

    #[test]
    fn locate_table() {
        let cases: &[(&[&str], Option<(usize, usize)>)] = &[
            (&["name"], Some((1, 1))),
            (&["disk"], Some((3, 1))),
            (&["disk", "usr"], Some((5, 3))),
            (&["other", "usr"], Some((7, 3))),
            (&["disk", "root"], None),
            (&["missing"], None),
        ];
        for (path, want) in cases {
            assert_eq!(locate(DOC, path), *want, "{path:?}");
        }
    }
}
