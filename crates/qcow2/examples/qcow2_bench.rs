//! Time `convert` on a 10 GiB sparse raw image holding 1 GiB of data,
//! against `qemu-img convert -O qcow2`. Usage: qcow2_bench SCRATCH_DIR

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: qcow2_bench SCRATCH_DIR")?,
    );
    fs::create_dir_all(&dir)?;
    let raw = dir.join("bench.raw");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&raw)?;
    f.set_len(10 << 30)?;
    let mut x = 0x1234_5678_9abc_def1u64;
    let chunk: Vec<u8> = (0..(1 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for piece in 0..4u64 {
        for mib in 0..256u64 {
            f.write_all_at(&chunk, piece * (2 << 30) + mib * (1 << 20) + 4096)?;
        }
    }
    f.sync_all()?;
    let ours = dir.join("ours.qcow2");
    let t = Instant::now();
    let stats = basalt_qcow2::convert(&raw, &ours)?;
    let ours_s = t.elapsed().as_secs_f64();
    let theirs = dir.join("theirs.qcow2");
    let t = Instant::now();
    let st = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&theirs)
        .status()?;
    let theirs_s = t.elapsed().as_secs_f64();
    println!(
        "10 GiB raw, 1 GiB data: basalt {ours_s:.2}s ({} data clusters, {} bytes), qemu-img convert {theirs_s:.2}s (ok: {}), ratio {:.2}",
        stats.data_clusters,
        stats.file_size(),
        st.success(),
        ours_s / theirs_s
    );
    for p in [&raw, &ours, &theirs] {
        fs::remove_file(p)?;
    }
    Ok(())
}
