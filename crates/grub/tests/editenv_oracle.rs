//! Oracles from GRUB's own tools (package grub-common): grub-editenv reads
//! our blocks and writes blocks byte-identical to ours; grub-script-check
//! accepts the generated grub.cfg and slot files.

use std::process::Command;

use basalt_grub::config::{GrubConfig, grub_cfg, slot_cfg};
use basalt_grub::grubenv::EnvBlock;
use basalt_grub::slots::BootState;

fn have_editenv() -> bool {
    if Command::new("grub-editenv")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    eprintln!("SKIPPED: grub-editenv not installed (apt-get install grub-common); oracle not run");
    false
}

const CASES: &[&[(&str, &str)]] = &[
    &[],
    &[
        ("ORDER", "A B"),
        ("A_OK", "1"),
        ("A_TRY", "0"),
        ("B_OK", "0"),
        ("B_TRY", "3"),
    ],
    &[
        ("back", "a\\b\\\\c"),
        ("nl", "line1\nline2"),
        ("empty", ""),
        ("eq", "x=y#z"),
    ],
];

#[test]
fn grub_editenv_agrees_both_ways() {
    if !have_editenv() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, vars) in CASES.iter().enumerate() {
        let mut ours = EnvBlock::new();
        for (k, v) in *vars {
            ours.set(k, v).unwrap();
        }
        let bytes = ours.to_bytes().unwrap();

        // Ours -> theirs.
        let f = dir.path().join(format!("ours{i}"));
        std::fs::write(&f, &bytes).unwrap();
        let out = Command::new("grub-editenv")
            .arg(&f)
            .arg("list")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "case {i}");

        // Theirs -> ours, and byte-identical.
        let g = dir.path().join(format!("theirs{i}"));
        let st = Command::new("grub-editenv")
            .arg(&g)
            .arg("create")
            .status()
            .unwrap();
        assert!(st.success());
        if !vars.is_empty() {
            let mut cmd = Command::new("grub-editenv");
            cmd.arg(&g).arg("set");
            for (k, v) in *vars {
                cmd.arg(format!("{k}={v}"));
            }
            assert!(cmd.status().unwrap().success());
        }
        let theirs = std::fs::read(&g).unwrap();
        assert_eq!(EnvBlock::parse(&theirs).unwrap(), ours, "case {i}");
        assert_eq!(theirs, bytes, "case {i}: byte-identical to grub-editenv");
    }
}

#[test]
fn grub_editenv_reads_slot_state() {
    if !have_editenv() {
        return;
    }
    let mut st = BootState::factory(&['A', 'B']).unwrap();
    st.stage_trial('B', 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("grubenv");
    std::fs::write(&f, st.to_env_bytes().unwrap()).unwrap();
    // The update agent's counterpart: GRUB's save_env rewrites a value in place.
    let ok = Command::new("grub-editenv")
        .arg(&f)
        .args(["set", "B_TRY=2"])
        .status()
        .unwrap();
    assert!(ok.success());
    let env = EnvBlock::parse(&std::fs::read(&f).unwrap()).unwrap();
    let back = BootState::from_env(&env, &['A', 'B']).unwrap();
    assert_eq!(back.slot('B').unwrap().tries, 2);
    assert_eq!(back.order, vec!['B', 'A']);
}

#[test]
fn grub_script_check_accepts_generated_config() {
    if Command::new("grub-script-check")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: grub-script-check not installed (apt-get install grub-common)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = GrubConfig::ab(
        "basalt.slot=A basalt.usrhash=00ff console=ttyS0,115200n8",
        "basalt.slot=B basalt.usrhash=ff00 console=ttyS0,115200n8",
    );
    let mut texts = vec![("grub.cfg", grub_cfg(&cfg).unwrap())];
    for s in &cfg.slots {
        texts.push(("slot.cfg", slot_cfg(s).unwrap()));
    }
    // The checker must be able to fail: a truncated grub.cfg is rejected.
    let full = &texts[0].1;
    texts.push(("truncated", full[..full.len() - 4].to_string()));
    for (name, text) in texts {
        let f = dir.path().join(name);
        std::fs::write(&f, &text).unwrap();
        let out = Command::new("grub-script-check").arg(&f).output().unwrap();
        let ok = name != "truncated";
        assert_eq!(
            out.status.success(),
            ok,
            "{name}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
