//! Slot-write entry: how fast `basalt-update apply` writes a /usr slot
//! into the inactive partition of a disk image (its own "slot B written: N
//! bytes in S s" line: the streaming write plus fsync), against `dd bs=4M
//! conv=fsync` writing the same bytes to the same byte range of the same
//! file. Target: ratio >= 0.8.
//!
//! Everything is generated here: a 256 MiB verity slot (basalt-verity), a
//! payload laid out by the format in crates/payload/README.md and signed by
//! `openssl pkeyutl` with an Ed25519 key from `openssl genpkey` (so the
//! agent's verification doubles as an interop check), a GPT disk file made
//! by `sgdisk`, and an ESP directory with a factory grubenv.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::report::{Better, Entry, TargetOn};
use crate::run::{Cmd, timed};
use crate::verity::write_data;

/// Runs a helper tool; its stdout, or an error with its stderr.
fn tool(prog: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
    let out = std::process::Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("running {prog}"))?;
    if !out.status.success() {
        bail!(
            "{prog} {:?} failed: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

macro_rules! tool {
    ($prog:expr, $($a:expr),* $(,)?) => {
        tool($prog, &[$(std::ffi::OsStr::new($a)),*])
    };
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Slot file-system bytes (the hash area comes on top).
const SLOT_DATA: u64 = 256 << 20;
/// Partition size for USR-A and USR-B (MiB): slot + hash area + slack.
const USR_MIB: u64 = 272;
/// Payload sections are 4096-aligned (crates/payload/README.md).
const ALIGN: u64 = 4096;
const HEADER: usize = 64;
const SALT: [u8; 32] = [0x33; 32];
const UUID: [u8; 16] = [7; 16];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn align(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

fn sha256_file(path: &Path) -> Result<String> {
    let out = tool!("sha256sum", path)?;
    out.split_whitespace()
        .next()
        .map(String::from)
        .with_context(|| format!("sha256sum {}: {out}", path.display()))
}

fn sha256_bytes(work: &Path, b: &[u8]) -> Result<String> {
    let p = work.join("section.tmp");
    fs::write(&p, b)?;
    sha256_file(&p)
}

/// The inputs: key, payload, slot image, disk and ESP paths.
struct Rig {
    payload: PathBuf,
    slot: PathBuf,
    disk: PathBuf,
    esp: PathBuf,
    public: PathBuf,
    usr_b_offset: u64,
}

fn factory_grubenv() -> Vec<u8> {
    // GRUB's environment block: a header line, NAME=value lines, '#'
    // padding to 1024 bytes; the slot state as crates/grub writes it.
    let mut s =
        String::from("# GRUB Environment Block\nORDER=A B\nA_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=0\n");
    while s.len() < 1024 {
        s.push('#');
    }
    s.into_bytes()
}

fn rig(work: &Path) -> Result<Rig> {
    let dir = work.join("slot-write");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;

    // The slot: data, then its verity hash area.
    let slot = dir.join("slot.img");
    write_data(&slot, SLOT_DATA)?;
    let f = fs::OpenOptions::new().read(true).write(true).open(&slot)?;
    let v = basalt_verity::format(&f, 0, SLOT_DATA, &SALT, UUID, &f, SLOT_DATA)
        .context("verity over the slot")?;
    f.sync_all()?;
    let slot_len = f.metadata()?.len();
    drop(f);
    let kernel = vec![0x4bu8; 4096 * 3 + 17];
    let initrd = vec![0x49u8; 4096 + 5];

    // Metadata (compact JSON, the format's field order).
    let slot_sha = sha256_file(&slot)?;
    let k_off = align(slot_len);
    let i_off = align(k_off + kernel.len() as u64);
    let meta = json!({
        "name": "bench", "version": "2.0",
        "slot": {"offset": 0, "size": slot_len, "sha256": slot_sha},
        "verity": {"root_hash": v.root_hex(), "hash_offset": SLOT_DATA,
                   "data_blocks": SLOT_DATA / 4096, "salt": hex(&SALT)},
        "kernel": {"offset": k_off, "size": kernel.len(), "sha256": sha256_bytes(&dir, &kernel)?},
        "initrd": {"offset": i_off, "size": initrd.len(), "sha256": sha256_bytes(&dir, &initrd)?},
        "cmdline": "console=ttyS0,115200"
    });
    let meta = serde_json::to_vec(&meta)?;
    let meta_len = meta.len() as u64;
    let data_offset = align(HEADER as u64 + meta_len + 64);
    let total = data_offset + i_off + initrd.len() as u64;
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(b"BASALTUP");
    head.extend_from_slice(&1u32.to_le_bytes());
    head.extend_from_slice(&(HEADER as u32).to_le_bytes());
    head.extend_from_slice(&meta_len.to_le_bytes());
    head.extend_from_slice(&64u32.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&data_offset.to_le_bytes());
    head.extend_from_slice(&total.to_le_bytes());
    head.resize(HEADER, 0);
    let mut signed = head;
    signed.extend_from_slice(&meta);

    // Ed25519 key and signature from openssl.
    let key = dir.join("bench.key");
    let public = dir.join("bench.pub");
    tool!("openssl", "genpkey", "-algorithm", "ed25519", "-out", &key)?;
    tool!("openssl", "pkey", "-pubout", "-in", &key, "-out", &public)?;
    let msg = dir.join("signed.bin");
    let sig = dir.join("sig.bin");
    fs::write(&msg, &signed)?;
    tool!(
        "openssl", "pkeyutl", "-sign", "-rawin", "-inkey", &key, "-in", &msg, "-out", &sig
    )?;
    let sig = fs::read(&sig)?;
    if sig.len() != 64 {
        bail!("openssl wrote a {}-byte signature", sig.len());
    }

    let payload = dir.join("bench.update");
    let mut p = File::create(&payload)?;
    p.write_all(&signed)?;
    p.write_all(&sig)?;
    p.set_len(data_offset)?;
    drop(p);
    let p = fs::OpenOptions::new().write(true).open(&payload)?;
    let src = File::open(&slot)?;
    let mut buf = vec![0u8; 4 << 20];
    let mut at = 0u64;
    while at < slot_len {
        let n = usize::try_from((slot_len - at).min(buf.len() as u64))?;
        src.read_exact_at(&mut buf[..n], at)?;
        p.write_all_at(&buf[..n], data_offset + at)?;
        at += n as u64;
    }
    p.write_all_at(&kernel, data_offset + k_off)?;
    p.write_all_at(&initrd, data_offset + i_off)?;
    p.set_len(total)?;
    p.sync_all()?;

    // Disk: GPT with the names the agent looks for.
    let disk = dir.join("disk.img");
    File::create(&disk)?.set_len((2 * USR_MIB + 8) << 20)?;
    let (n3, n4) = (format!("3:0:+{USR_MIB}M"), format!("4:0:+{USR_MIB}M"));
    tool!(
        "sgdisk",
        "-n",
        "1:2048:+2M",
        "-c",
        "1:EFI-SYSTEM",
        "-n",
        &n3,
        "-c",
        "3:USR-A",
        "-n",
        &n4,
        "-c",
        "4:USR-B",
        &disk
    )?;
    let info = tool!("sgdisk", "-i", "4", &disk)?;
    let first: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("sgdisk -i 4 printed no first sector:\n{info}"))?;

    let esp = dir.join("esp");
    fs::create_dir_all(esp.join("grub"))?;
    fs::create_dir_all(esp.join("EFI/basalt"))?;
    Ok(Rig {
        payload,
        slot,
        disk,
        esp,
        public,
        usr_b_offset: first * 512,
    })
}

/// Seconds of the agent's slot write, from its "written: N bytes in S s" line.
fn agent_seconds(stderr: &str, want_bytes: u64) -> Result<f64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("slot B written: "))
        .with_context(|| format!("basalt-update printed no slot-write line:\n{stderr}"))?;
    let rest = line.split("written: ").nth(1).unwrap_or("");
    let bytes: u64 = rest
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no byte count in {line:?}"))?;
    if bytes != want_bytes {
        bail!("the agent wrote {bytes} bytes, the slot has {want_bytes}");
    }
    rest.split(" in ")
        .nth(1)
        .and_then(|s| s.split(" s").next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no duration in {line:?}"))
}

fn agent_once(update: &Path, r: &Rig, slot_len: u64) -> Result<f64> {
    fs::write(r.esp.join("grub/grubenv"), factory_grubenv())?;
    let out = std::process::Command::new(update)
        .arg("--disk")
        .arg(&r.disk)
        .arg("--esp")
        .arg(&r.esp)
        .args(["--booted", "A", "--config", "/nonexistent", "apply"])
        .arg(&r.payload)
        .arg("--key")
        .arg(&r.public)
        .args(["--no-reboot", "--stop-after", "slot-written"])
        .output()
        .context("running basalt-update")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.contains("stopped after SlotWritten") {
        bail!("basalt-update apply did not stop after the slot write:\n{stderr}");
    }
    agent_seconds(&stderr, slot_len)
}

/// The agent binary: the one builder/build.rs built next to `basalt`.
pub fn find_update_bin(basalt: &Path) -> Result<PathBuf> {
    let dir = basalt.parent().context("basalt has no directory")?;
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir.join("build"))
        .with_context(|| format!("reading {}/build", dir.display()))?
    {
        let base = e?.path().join("out/machine-target");
        let Ok(targets) = fs::read_dir(&base) else {
            continue;
        };
        for t in targets.flatten() {
            let p = t.path().join("machine/basalt-update");
            if let Ok(m) = fs::metadata(&p) {
                found.push((m.modified()?, p));
            }
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p).with_context(|| {
        format!(
            "no basalt-update under {}/build/*/out/machine-target",
            dir.display()
        )
    })
}

pub fn bench(basalt: &Path, work: &Path, runs: usize) -> Result<Entry> {
    let update = find_update_bin(basalt)?;
    let r = rig(work)?;
    let slot_len = fs::metadata(&r.slot)?.len();
    eprintln!(
        "bench: slot write: {} MiB slot, {} against dd bs=4M conv=fsync",
        slot_len >> 20,
        update.display()
    );
    let dd = Cmd::new("dd")
        .arg(format!("if={}", r.slot.display()))
        .arg(format!("of={}", r.disk.display()))
        .args([
            "bs=4M",
            "conv=notrunc,fsync",
            "oflag=seek_bytes",
            "status=none",
        ])
        .arg(format!("seek={}", r.usr_b_offset));
    // Untimed first pass: allocates the (sparse) USR-B range, so neither
    // side pays for block allocation; then alternate who goes first.
    timed(&dd, work)?;
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for i in 0..runs {
        if i % 2 == 0 {
            ours.push(agent_once(&update, &r, slot_len)?);
            base.push(timed(&dd, work)?.secs);
        } else {
            base.push(timed(&dd, work)?.secs);
            ours.push(agent_once(&update, &r, slot_len)?);
        }
    }
    let mib = slot_len as f64 / f64::from(1u32 << 20);
    let (o, b) = (mib / median(ours), mib / median(base));
    if std::env::var_os("BENCH_KEEP_SLOT_WRITE").is_none() {
        let _ = fs::remove_dir_all(work.join("slot-write"));
    }
    let mut e = Entry::new(
        "slot write: basalt-update apply vs dd bs=4M conv=fsync (same bytes, same range)",
        Some(o),
        "MiB/s",
    )
    .baseline(Some(b))
    .target(TargetOn::Ratio, 0.8)
    .note(format!(
        "{mib:.0} MiB verity slot into USR-B of a GPT disk file, write + fsync; median of {runs}; payload signed by openssl"
    ));
    e.better = Better::Higher;
    Ok(e)
}
