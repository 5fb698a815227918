//! The one grub.cfg on the ESP (shared by BIOS and UEFI GRUB) and the
//! per-slot command-line files it sources.
//!
//! grub.cfg never changes after the image is built: the state it acts on is in
//! the environment block ([`crate::slots`]) and each slot's kernel command line
//! is in its own file (`/EFI/basalt/slot-a.cfg`), so the update agent can
//! rewrite one slot's kernel, initrd and command line without touching the
//! other slot. See README.md for the state machine.

use std::fmt::Write as _;

use crate::error::{GrubError, Result};
use crate::slots::{BootState, MAX_TRIES, check_slot_name, ok_var, try_var};

/// ESP directory GRUB uses as `$prefix` on both platforms.
pub const ESP_GRUB_DIR: &str = "/grub";
/// The environment block (`$prefix/grubenv`, GRUB's default location).
pub const ESP_GRUBENV: &str = "/grub/grubenv";
/// The generated configuration (`$prefix/grub.cfg`, read by `normal`).
pub const ESP_GRUB_CFG: &str = "/grub/grub.cfg";
/// Directory of the per-slot kernels, initrds and command lines.
pub const ESP_SLOT_DIR: &str = "/EFI/basalt";

/// ESP path of slot `name`'s kernel.
pub fn kernel_path(name: char) -> String {
    format!("{ESP_SLOT_DIR}/vmlinuz-{}", name.to_ascii_lowercase())
}

/// ESP path of slot `name`'s initrd.
pub fn initrd_path(name: char) -> String {
    format!("{ESP_SLOT_DIR}/initrd-{}", name.to_ascii_lowercase())
}

/// ESP path of slot `name`'s command-line file.
pub fn slot_cfg_path(name: char) -> String {
    format!("{ESP_SLOT_DIR}/slot-{}.cfg", name.to_ascii_lowercase())
}

/// ESP path of slot `name`'s record (JSON: name, version, root_hash), which
/// the builder writes for the factory slot and the update agent for every
/// slot it installs.
pub fn slot_record_path(name: char) -> String {
    format!("{ESP_SLOT_DIR}/slot-{}.json", name.to_ascii_lowercase())
}

/// One bootable /usr slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotBoot {
    /// `'A'`, `'B'`: one uppercase ASCII letter.
    pub name: char,
    /// Kernel arguments (slot identity, verity root hash ...). Printable ASCII
    /// without `'`.
    pub cmdline: String,
}

/// Inputs of the generated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubConfig {
    /// Slots in factory preference order; the first is the factory-good slot.
    pub slots: Vec<SlotBoot>,
    /// Seconds to wait (Esc shows a manual menu) before the automatic choice.
    pub timeout_secs: u32,
    /// Speed of the serial terminal on COM1/ttyS0.
    pub serial_speed: u32,
    /// Seconds to show the "no bootable slot" message before rebooting.
    pub fallback_reboot_secs: u32,
}

impl GrubConfig {
    /// Two slots A and B with the given command lines, 1 s, 115200 baud.
    pub fn ab(cmdline_a: impl Into<String>, cmdline_b: impl Into<String>) -> GrubConfig {
        GrubConfig {
            slots: vec![
                SlotBoot {
                    name: 'A',
                    cmdline: cmdline_a.into(),
                },
                SlotBoot {
                    name: 'B',
                    cmdline: cmdline_b.into(),
                },
            ],
            timeout_secs: 1,
            serial_speed: 115_200,
            fallback_reboot_secs: 30,
        }
    }

    /// Slot names in declared order.
    pub fn names(&self) -> Vec<char> {
        self.slots.iter().map(|s| s.name).collect()
    }

    /// Checks names, uniqueness and command lines.
    pub fn validate(&self) -> Result<()> {
        BootState::factory(&self.names())?;
        for s in &self.slots {
            check_slot_name(s.name)?;
            check_cmdline(s.name, &s.cmdline)?;
        }
        if self.serial_speed == 0 {
            return Err(GrubError::Config("serial speed must be positive".into()));
        }
        Ok(())
    }
}

fn check_cmdline(name: char, cmdline: &str) -> Result<()> {
    if let Some(bad) = cmdline
        .chars()
        .find(|&c| !(' '..='~').contains(&c) || c == '\'')
    {
        return Err(GrubError::Config(format!(
            "command line of slot {name} contains {bad:?}: only printable ASCII without ' is allowed"
        )));
    }
    if cmdline.trim().is_empty() {
        return Err(GrubError::Config(format!(
            "command line of slot {name} is empty"
        )));
    }
    Ok(())
}

/// Text of slot `slot`'s command-line file, sourced by grub.cfg.
pub fn slot_cfg(slot: &SlotBoot) -> Result<String> {
    check_slot_name(slot.name)?;
    check_cmdline(slot.name, &slot.cmdline)?;
    Ok(format!(
        "# Kernel arguments of slot {}; rewritten by the update agent.\nset basalt_cmdline='{}'\n",
        slot.name, slot.cmdline
    ))
}

/// Lines that load slot `n`'s kernel (with `$basalt_cmdline`) and initrd,
/// each indented by `indent`, and set `basalt_loaded=1` when both loaded.
///
/// BIOS GRUB (`$grub_platform` = pc) uses the 16-bit boot protocol
/// (`linux16`/`initrd16`): under QEMU TCG the kernel then reaches /init about
/// 4 s sooner than through `linux`'s 32-bit entry (measured with the default
/// image: /init at 10.9 s instead of 14.1 to 16.4 s after QEMU started). UEFI
/// GRUB has only `linux` (the EFI handover).
fn load_slot_lines(n: char, indent: &str) -> Vec<String> {
    let (k, i) = (kernel_path(n), initrd_path(n));
    let mut out = vec![
        "set basalt_loaded=0".to_string(),
        "if [ \"$grub_platform\" = pc ]; then".to_string(),
    ];
    for (linux, initrd, lead) in [("linux16", "initrd16", "  "), ("linux", "initrd", "  ")] {
        if linux == "linux" {
            out.push("else".to_string());
        }
        out.push(format!("{lead}if {linux} {k} $basalt_cmdline; then"));
        out.push(format!("{lead}  if {initrd} {i}; then"));
        out.push(format!("{lead}    set basalt_loaded=1"));
        out.push(format!("{lead}  fi"));
        out.push(format!("{lead}fi"));
    }
    out.push("fi".to_string());
    out.into_iter().map(|l| format!("{indent}{l}")).collect()
}

/// Text of grub.cfg.
pub fn grub_cfg(cfg: &GrubConfig) -> Result<String> {
    cfg.validate()?;
    let names = cfg.names();
    let factory = BootState::factory(&names)?;
    let state_vars: Vec<String> = std::iter::once("ORDER".to_string())
        .chain(names.iter().flat_map(|&n| [ok_var(n), try_var(n)]))
        .collect();
    let state_vars = state_vars.join(" ");
    let mut o = String::new();
    let w = &mut o;
    // `write!` into a String cannot fail; collect the results anyway.
    let mut r = Ok(());
    let mut line = |w: &mut String, s: &str| {
        if r.is_ok() {
            r = writeln!(w, "{s}");
        }
    };
    line(
        w,
        "# Generated by basalt-grub: A/B slot selection (see crates/grub/README.md).",
    );
    line(
        w,
        "# Do not edit: the slot state is in $prefix/grubenv, the kernel arguments in",
    );
    line(w, &format!("# {ESP_SLOT_DIR}/slot-*.cfg."));
    line(
        w,
        &format!(
            "serial --unit=0 --speed={} --word=8 --parity=no --stop=1",
            cfg.serial_speed
        ),
    );
    line(w, "terminal_input serial console");
    line(w, "terminal_output serial console");
    line(w, "");
    line(
        w,
        "# Factory state, used when the environment block cannot be read.",
    );
    let order: Vec<String> = factory.order.iter().map(|c| c.to_string()).collect();
    line(w, &format!("set ORDER=\"{}\"", order.join(" ")));
    for s in &factory.slots {
        line(w, &format!("set {}={}", ok_var(s.name), u8::from(s.ok)));
        line(w, &format!("set {}={}", try_var(s.name), s.tries));
    }
    line(
        w,
        &format!("if load_env --file $prefix/grubenv {state_vars}; then"),
    );
    line(w, "  set basalt_env=ok");
    line(w, "else");
    line(
        w,
        "  echo \"basalt: cannot read $prefix/grubenv; using the factory slot state\"",
    );
    line(w, "fi");
    line(w, "");
    for s in &cfg.slots {
        let lower = s.name.to_ascii_lowercase();
        line(
            w,
            &format!(
                "menuentry \"Basalt slot {} (no try counted)\" --id basalt-{lower} {{",
                s.name
            ),
        );
        line(w, &format!("  source {}", slot_cfg_path(s.name)));
        for l in load_slot_lines(s.name, "  ") {
            line(w, &l);
        }
        line(w, "}");
    }
    line(w, "");
    let mut status = String::from("ORDER=$ORDER");
    for &n in &names {
        for var in [ok_var(n), try_var(n)] {
            status.push_str(&format!(" {var}=${{{var}}}"));
        }
    }
    line(
        w,
        &format!("echo \"basalt: slot state {status}; press Esc for the menu\""),
    );
    line(
        w,
        &format!("if sleep --interruptible {}; then", cfg.timeout_secs),
    );
    line(w, "  for basalt_s in $ORDER; do");
    for s in &cfg.slots {
        let n = s.name;
        let (ok, tr) = (ok_var(n), try_var(n));
        line(w, &format!("    if [ \"$basalt_s\" = {n} ]; then"));
        line(w, "      set basalt_pick=0");
        for t in (1..=MAX_TRIES).rev() {
            let kw = if t == MAX_TRIES { "if" } else { "elif" };
            line(w, &format!("      {kw} [ \"${tr}\" = {t} ]; then"));
            line(w, &format!("        set {tr}={}", t - 1));
            line(w, "        set basalt_pick=try");
        }
        line(w, &format!("      elif [ \"${ok}\" = 1 ]; then"));
        line(w, "        set basalt_pick=good");
        line(w, "      fi");
        line(w, "      if [ \"$basalt_pick\" = try ]; then");
        line(
            w,
            &format!("        if save_env --file $prefix/grubenv {state_vars}; then"),
        );
        line(
            w,
            &format!("          echo \"basalt: trying slot {n}, ${tr} tries left after this one\""),
        );
        line(w, "        else");
        line(
            w,
            &format!(
                "          echo \"basalt: cannot record the try of slot {n} in $prefix/grubenv; skipping it\""
            ),
        );
        line(w, "          set basalt_pick=0");
        line(w, "        fi");
        line(w, "      fi");
        line(w, "      if [ \"$basalt_pick\" != 0 ]; then");
        line(w, "        set basalt_cmdline=");
        line(w, &format!("        if source {}; then", slot_cfg_path(n)));
        line(
            w,
            &format!(
                "          echo \"basalt: booting slot {n} ({})\"",
                kernel_path(n)
            ),
        );
        line(
            w,
            "          echo \"basalt: kernel arguments: $basalt_cmdline\"",
        );
        for l in load_slot_lines(n, "          ") {
            line(w, &l);
        }
        line(w, "          if [ \"$basalt_loaded\" = 1 ]; then");
        line(w, "            boot");
        line(w, "          fi");
        line(w, "        fi");
        line(
            w,
            &format!("        echo \"basalt: slot {n} failed to load; trying the next slot\""),
        );
        line(w, "      fi");
        line(w, "    fi");
    }
    line(w, "  done");
    line(
        w,
        &format!(
            "  echo \"basalt: no bootable slot ({status}); rebooting in {} s\"",
            cfg.fallback_reboot_secs
        ),
    );
    line(w, &format!("  sleep {}", cfg.fallback_reboot_secs));
    line(w, "  reboot");
    line(w, "fi");
    r.map_err(|e| GrubError::Config(format!("formatting grub.cfg: {e}")))?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfg_has_state_walk_and_paths() {
        let cfg = GrubConfig::ab("basalt.slot=A usrhash=aa", "basalt.slot=B usrhash=bb");
        let text = grub_cfg(&cfg).unwrap();
        for want in [
            "serial --unit=0 --speed=115200",
            "terminal_output serial console",
            "set ORDER=\"A B\"\nset A_OK=1\nset A_TRY=0\nset B_OK=0\nset B_TRY=0\n",
            "load_env --file $prefix/grubenv ORDER A_OK A_TRY B_OK B_TRY",
            "save_env --file $prefix/grubenv ORDER A_OK A_TRY B_OK B_TRY",
            "if [ \"$B_TRY\" = 9 ]; then\n        set B_TRY=8\n",
            "elif [ \"$A_TRY\" = 1 ]; then\n        set A_TRY=0\n",
            "elif [ \"$A_OK\" = 1 ]; then",
            "source /EFI/basalt/slot-b.cfg",
            "if [ \"$grub_platform\" = pc ]; then\n            if linux16 /EFI/basalt/vmlinuz-b $basalt_cmdline; then\n              if initrd16 /EFI/basalt/initrd-b; then\n                set basalt_loaded=1\n",
            "else\n            if linux /EFI/basalt/vmlinuz-a $basalt_cmdline; then\n              if initrd /EFI/basalt/initrd-a; then\n                set basalt_loaded=1\n",
            "if [ \"$basalt_loaded\" = 1 ]; then\n            boot\n",
            "  source /EFI/basalt/slot-a.cfg\n  set basalt_loaded=0\n  if [ \"$grub_platform\" = pc ]; then\n    if linux16 /EFI/basalt/vmlinuz-a",
            "sleep --interruptible 1",
            "reboot",
            "ORDER=$ORDER A_OK=${A_OK} A_TRY=${A_TRY} B_OK=${B_OK} B_TRY=${B_TRY}",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // Command lines live in the slot files, not in grub.cfg.
        assert!(!text.contains("usrhash"));
        assert_eq!(text, grub_cfg(&cfg).unwrap(), "deterministic");
    }

    #[test]
    fn slot_files() {
        let s = SlotBoot {
            name: 'B',
            cmdline: "basalt.slot=B ro".into(),
        };
        assert_eq!(
            slot_cfg(&s).unwrap(),
            "# Kernel arguments of slot B; rewritten by the update agent.\nset basalt_cmdline='basalt.slot=B ro'\n"
        );
        assert_eq!(kernel_path('B'), "/EFI/basalt/vmlinuz-b");
        assert_eq!(initrd_path('A'), "/EFI/basalt/initrd-a");
    }

    #[test]
    fn rejects_bad_config() {
        let cases: &[(GrubConfig, &str)] = &[
            (GrubConfig::ab("a'b", "x"), "contains '\\''"),
            (GrubConfig::ab("a\nb", "x"), "contains '\\n'"),
            (GrubConfig::ab("x", "é"), "slot B contains 'é'"),
            (GrubConfig::ab(" ", "x"), "slot A is empty"),
            (
                GrubConfig {
                    slots: vec![],
                    ..GrubConfig::ab("x", "y")
                },
                "at least one slot",
            ),
            (
                GrubConfig {
                    slots: vec![SlotBoot {
                        name: 'a',
                        cmdline: "x".into(),
                    }],
                    ..GrubConfig::ab("x", "y")
                },
                "uppercase",
            ),
            (
                GrubConfig {
                    slots: vec![
                        SlotBoot {
                            name: 'A',
                            cmdline: "x".into(),
                        },
                        SlotBoot {
                            name: 'A',
                            cmdline: "y".into(),
                        },
                    ],
                    ..GrubConfig::ab("x", "y")
                },
                "declared twice",
            ),
            (
                GrubConfig {
                    serial_speed: 0,
                    ..GrubConfig::ab("x", "y")
                },
                "serial speed",
            ),
        ];
        for (cfg, want) in cases {
            let err = grub_cfg(cfg).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }
}
