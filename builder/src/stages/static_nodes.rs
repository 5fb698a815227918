//! The kernel's static device nodes, listed for systemd-tmpfiles at build
//! time.
//!
//! Some modules are loaded on the first open of a device node (`/dev/fuse`,
//! `/dev/net/tun`, `/dev/loop-control`, ...), so the nodes must exist before
//! the module does. depmod lists them in `modules.devname`; at every boot
//! kmod-static-nodes.service runs `kmod static-nodes` to turn that list
//! into `/run/tmpfiles.d/static-nodes.conf`, and
//! systemd-tmpfiles-setup-dev-early.service then creates the nodes. On
//! Basalt the list lives in the read-only /usr and never changes, so the
//! builder writes the same tmpfiles lines once, as
//! `/usr/lib/tmpfiles.d/static-nodes.conf`, and the overlay's drop-in
//! (`kmod-static-nodes.service.d/basalt-built.conf`) skips the unit when
//! that file exists. The unit sat first in the chain that ends in udevd
//! and networkd (under QEMU TCG about 0.5 s of it).
//!
//! The lines are what `kmod static-nodes --format=tmpfiles` prints (kmod's
//! tools/static-nodes.c): for a name with a directory, `d /dev/DIR 0755 - -
//! -` first (repeated per node, as kmod does), then `c! /dev/NAME 0600 - -
//! - MAJOR:MINOR` (`b!` for a block device).

use anyhow::{Context, Result, bail};
use basalt_tree::{Content, Entry, Tree};
use basalt_treeexec::treefs;

/// Where the builder writes the list (same name as kmod's runtime copy in
/// /run/tmpfiles.d, which would take precedence if the unit ever ran).
pub const OUTPUT: &str = "/usr/lib/tmpfiles.d/static-nodes.conf";

/// What [`write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing written; why.
    Skipped(String),
    Written {
        nodes: usize,
    },
}

/// The tmpfiles.d lines for `devname` (the text of modules.devname, named
/// `file` in errors).
pub fn tmpfiles_lines(file: &str, devname: &str) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut nodes = 0;
    for (n, line) in devname.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{file}:{}", n + 1);
        let mut w = line.split_whitespace();
        let (Some(_module), Some(name), Some(dev), None) = (w.next(), w.next(), w.next(), w.next())
        else {
            bail!(
                "{}: {line:?} is not `module devname {{c|b}}MAJOR:MINOR`",
                at()
            );
        };
        let kind = match dev.as_bytes().first() {
            Some(b'c') => 'c',
            Some(b'b') => 'b',
            _ => bail!("{}: device {dev:?} is neither c nor b", at()),
        };
        let numbers = dev.get(1..).unwrap_or_default();
        let valid = numbers
            .split_once(':')
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !valid {
            bail!("{}: device {dev:?} has no MAJOR:MINOR", at());
        }
        if name.starts_with('/') || name.split('/').any(|c| c.is_empty() || c == "..") {
            bail!("{}: device name {name:?} is not a path under /dev", at());
        }
        if let Some((dir, _)) = name.rsplit_once('/') {
            out.push_str(&format!("d /dev/{dir} 0755 - - -\n"));
        }
        out.push_str(&format!("{kind}! /dev/{name} 0600 - - - {numbers}\n"));
        nodes += 1;
    }
    Ok((out, nodes))
}

/// Writes [`OUTPUT`] from `kver`'s modules.devname (the booted kernel's).
pub fn write(tree: &mut Tree, kver: &str, epoch: i64) -> Result<Outcome> {
    let file = format!("/usr/lib/modules/{kver}/modules.devname");
    if !tree.contains(&file) {
        return Ok(Outcome::Skipped(format!("{file} does not exist")));
    }
    let bytes = treefs::read_file(tree, &file).with_context(|| format!("reading {file}"))?;
    let text = String::from_utf8(bytes).with_context(|| format!("{file} is not UTF-8"))?;
    let (lines, nodes) = tmpfiles_lines(&file, &text)?;
    if nodes == 0 {
        return Ok(Outcome::Skipped(format!("{file} lists no device")));
    }
    if tree.contains(OUTPUT) {
        bail!("{OUTPUT} is already in the tree (from a package or an overlay)");
    }
    let content = Content::from_bytes(lines.into_bytes());
    tree.insert_p(OUTPUT, Entry::file(0o644, content).at(epoch))
        .with_context(|| format!("adding {OUTPUT}"))?;
    Ok(Outcome::Written { nodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_kmod_static_nodes() {
        // The left column is modules.devname, the right what
        // `kmod static-nodes --format=tmpfiles` printed for it (kmod 30).
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("# Device nodes to trigger on-demand module loading.\n", ""),
            ("cuse cuse c10:203\n", "c! /dev/cuse 0600 - - - 10:203\n"),
            (
                "tun net/tun c10:200\nppp_generic ppp c108:0\n",
                "d /dev/net 0755 - - -\nc! /dev/net/tun 0600 - - - 10:200\nc! /dev/ppp 0600 - - - 108:0\n",
            ),
            (
                "snd_timer snd/timer c116:33\nsnd_seq snd/seq c116:1\n",
                "d /dev/snd 0755 - - -\nc! /dev/snd/timer 0600 - - - 116:33\nd /dev/snd 0755 - - -\nc! /dev/snd/seq 0600 - - - 116:1\n",
            ),
            ("loop loop b7:0\n", "b! /dev/loop 0600 - - - 7:0\n"),
        ];
        for (devname, want) in cases {
            let (got, _) = tmpfiles_lines("modules.devname", devname).unwrap();
            assert_eq!(got, *want, "{devname:?}");
        }
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for (text, why) in [
            ("cuse cuse\n", "modules.devname:1: "),
            (
                "# c\ncuse cuse x10:203\n",
                "modules.devname:2: device \"x10:203\"",
            ),
            ("cuse cuse c10\n", "no MAJOR:MINOR"),
            ("cuse cuse c10:x\n", "no MAJOR:MINOR"),
            ("evil ../etc/x c1:1\n", "not a path under /dev"),
            ("evil /x c1:1\n", "not a path under /dev"),
            ("a b c1:1 extra\n", "is not `module devname"),
        ] {
            let e = tmpfiles_lines("modules.devname", text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }
}
