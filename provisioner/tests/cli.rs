//! The `basalt-provision` binary: validate output and exit codes, translate, apply.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_basalt-provision"))
}

#[test]
fn validate_reports_file_line_col() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("bad.ign");
    std::fs::write(
        &bad,
        "{\n  \"ignition\": {\"version\": \"3.4.0\"},\n  \"storage\": {\"files\": [\n    {\"path\": \"/a\", \"contents\": {\"source\": \"gopher://x\"}}\n  ]}\n}\n",
    )
    .unwrap();
    let out = bin().arg("validate").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:4:43: error: URL \"gopher://x\" has an unknown scheme \"gopher\" (at storage.files[0].contents.source)\n",
        bad.display()
    );
    assert_eq!(err, want);

    let yaml = t.path().join("u.yaml");
    std::fs::write(&yaml, "#cloud-config\nhostname: ok\nwat: 1\n").unwrap();
    let out = bin().arg("validate").arg(&yaml).output().unwrap();
    assert!(out.status.success(), "warnings alone pass");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}:3:1: warning: unknown key \"wat\"; it is ignored (at wat)\n",
            yaml.display()
        )
    );
    let out = bin()
        .args(["validate", "--strict"])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(!out.status.success(), "--strict fails on warnings");
}

#[test]
fn translate_and_apply() {
    let t = tempfile::tempdir().unwrap();
    let cc = t.path().join("c.yaml");
    std::fs::write(&cc, "#cloud-config\nhostname: cli\n").unwrap();
    let out = bin().arg("translate").arg(&cc).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ignition"]["version"], "3.4.0");
    assert_eq!(v["storage"]["files"][0]["path"], "/etc/hostname");

    let ign = t.path().join("c.ign");
    std::fs::write(&ign, &out.stdout).unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out = bin()
        .args(["apply", "--now", "0", "--root"])
        .arg(&root)
        .arg("--config")
        .arg(&ign)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "cli\n"
    );
    let res = std::fs::read_to_string(root.join("etc/.basalt-provision.json")).unwrap();
    assert!(
        res.contains("\"format\": \"ignition\"") && res.contains("\"time\": 0"),
        "{res}"
    );
}
