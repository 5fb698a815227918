//! Time `basalt_verity::format` against `veritysetup format` on one file.
//! Usage: verity_bench DATA_FILE (size a multiple of 4096).

use std::fs::{self, File};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: verity_bench DATA_FILE")?;
    let len = fs::metadata(&path)?.len();
    let data = File::open(&path)?;
    let ours = format!("{path}.ours-hash");
    let theirs = format!("{path}.theirs-hash");
    let salt = [7u8; 32];
    let uuid = [0x11u8; 16];
    let t = Instant::now();
    let v = basalt_verity::format(&data, 0, len, &salt, uuid, &File::create(&ours)?, 0)?;
    let ours_s = t.elapsed().as_secs_f64();
    if std::env::var_os("ONLY_OURS").is_some() {
        println!("basalt {ours_s:.3}s root {}", v.root_hex());
        fs::remove_file(&ours)?;
        return Ok(());
    }
    let t = Instant::now();
    let st = Command::new("veritysetup")
        .args([
            "format",
            "--salt",
            &hex::encode(salt),
            "--uuid",
            "11111111-1111-1111-1111-111111111111",
            &path,
            &theirs,
        ])
        .output()?;
    let theirs_s = t.elapsed().as_secs_f64();
    if !st.status.success() {
        return Err("veritysetup format failed".into());
    }
    let same = fs::read(&ours)? == fs::read(&theirs)?;
    println!(
        "data {len} bytes: basalt {ours_s:.3}s, veritysetup {theirs_s:.3}s, ratio {:.2}, identical {same}, root {}",
        ours_s / theirs_s,
        v.root_hex()
    );
    fs::remove_file(&ours)?;
    fs::remove_file(&theirs)?;
    Ok(())
}
