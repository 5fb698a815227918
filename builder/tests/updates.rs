//! A/B updates on booted guests (issue 6 §3), under QEMU/TCG. Gated behind
//! BASALT_UPDATE_TESTS=1 (they build a v2 image and boot many times).
//!
//! `update_lifecycle`, one machine, six boots (one ends in the initramfs):
//! 1. v1 (slot A): a corrupted payload and a badly signed one are refused
//!    with the slot state and USR-B unchanged; `poll` with no server is a
//!    no-op; an apply stopped right before the grubenv switch leaves A the
//!    only bootable slot; then a real `poll` from `basalt serve-updates`
//!    (disk writes throttled) loses power in the middle of the slot write.
//! 2. Back on A, B not bootable. v2 applied and staged, its /usr then
//!    corrupted on disk, power cut right after the switch.
//! 3. The trial of B fails verity in the initramfs, which reboots;
//! 4. GRUB falls back to A by itself; status reports the failed attempt and
//!    `poll` does not apply that version again. An explicit apply + reboot:
//! 5. v2 on B, marked good, status shows both slots; `poll` is up to date;
//!    `rollback` + reboot:
//! 6. v1 on A again.
//!
//! `etcd_lock_two_machines`: two v1 machines with REBOOT_STRATEGY=etcd-lock
//! share an etcd on the host (reached at 10.0.2.2); both apply v2 at once;
//! the semaphore is watched the whole time: never two holders, both end on
//! v2 and the lock is free again.
//!
//! BASALT_BOOT_IMAGE_DIR reuses a v1 build, BASALT_UPDATE_V2_DIR a v2 build
//! (both made with the same default signing key).

mod common;
#[path = "common/update.rs"]
mod update;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::guest::keypair;
use common::image::{built, copy_image, flip_byte};
use update::{
    UpdateServer, Vm, build_version, cloud_config, file_server, payload_in, payload_layout,
};

const V2: &str = "0.2.0";
/// The agent's last line of a successful apply: too late for a power cut
/// in the slot write.
const INSTALLED: &str = "installed in slot B; it is tried at the next boot";
/// The tests boot several VMs each; one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());
const MARK_GOOD_TIMEOUT: Duration = Duration::from_secs(600);
/// Bytes added to each disk copy before its first boot (ROOT grows into
/// them): room for a downloaded payload next to the journal and docker.
const ROOM: u64 = 2 << 30;

fn enabled(what: &str) -> bool {
    if std::env::var("BASALT_UPDATE_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIPPED {what}: set BASALT_UPDATE_TESTS=1");
        return false;
    }
    for tool in ["qemu-system-x86_64", "ssh", "ssh-keygen"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!(
                "SKIPPED {what}: {tool} is not installed (apt install qemu-system-x86 openssh-client)"
            );
            return false;
        }
    }
    true
}

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("update-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the test dir");
    d
}

fn status(vm: &Vm, key: &Path) -> Value {
    let out = vm.must(key, "sudo basalt-update status --json");
    serde_json::from_str(&out).unwrap_or_else(|e| vm.fail(&format!("status --json {out:?}: {e}")))
}

fn slot<'a>(st: &'a Value, s: &str) -> &'a Value {
    st["slots"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["slot"] == s))
        .unwrap_or_else(|| panic!("no slot {s} in {st}"))
}

/// The slot the running kernel was booted from (A or B).
fn booted(vm: &Vm, key: &Path) -> String {
    let cl = vm.must(key, "cat /proc/cmdline");
    cl.split_whitespace()
        .find_map(|w| w.strip_prefix("basalt.slot="))
        .unwrap_or_else(|| vm.fail(&format!("no basalt.slot= in {cl}")))
        .to_ascii_uppercase()
}

fn os_version(vm: &Vm, key: &Path) -> String {
    vm.must(key, ". /usr/lib/os-release && echo \"$IMAGE_VERSION\"")
}

fn wait_marked_good(vm: &Vm, key: &Path) {
    vm.wait_for(
        key,
        "systemctl is-active basalt-mark-good.service",
        MARK_GOOD_TIMEOUT,
    );
}

/// Up on `want` (slot letter), marked good, with a consistent state: the
/// booted slot good and first, the next boot the booted slot.
fn check_settled_on(vm: &Vm, key: &Path, want: &str) -> Value {
    assert_eq!(booted(vm, key), want, "{}: booted slot", vm.tag);
    wait_marked_good(vm, key);
    let st = status(vm, key);
    assert_eq!(st["booted"], want, "{}: {st}", vm.tag);
    assert_eq!(st["next"], want, "{}: {st}", vm.tag);
    assert_eq!(slot(&st, want)["good"], true, "{}: {st}", vm.tag);
    st
}

/// The slot state and the first 8 MiB of USR-B, for "nothing changed".
fn fingerprint(vm: &Vm, key: &Path) -> (Value, String) {
    let usr_b = vm.must(
        key,
        "sudo head -c 8388608 /dev/disk/by-partlabel/USR-B | sha256sum",
    );
    (status(vm, key), usr_b)
}

struct Payloads {
    good: PathBuf,
    corrupt: String,
    badsig: String,
    slot_size: u64,
}

/// v2, and two bad copies of it: one flipped byte in the slot section
/// (hash mismatch) and one in the signed metadata (signature fails).
fn payloads(work: &Path) -> Payloads {
    let v2 = build_version(work, V2);
    let good = payload_in(&v2);
    let lay = payload_layout(&good);
    let bad = work.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let corrupt = bad.join("corrupt.update");
    let badsig = bad.join("badsig.update");
    copy_image(&good, &corrupt, 0);
    copy_image(&good, &badsig, 0);
    flip_byte(&corrupt, lay.data_offset + lay.slot_size / 2);
    // A byte of the version value inside the metadata JSON.
    flip_byte(&badsig, lay.meta_start + 20);
    Payloads {
        good,
        corrupt: "corrupt.update".into(),
        badsig: "badsig.update".into(),
        slot_size: lay.slot_size,
    }
}

#[test]
fn update_lifecycle() {
    if !enabled("update lifecycle test") {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t0 = Instant::now();
    let work = workdir("lifecycle");
    let b = built();
    let p = payloads(&work);
    let serve_dir = work.join("serve");
    std::fs::create_dir_all(&serve_dir).unwrap();
    copy_image(&p.good, &serve_dir.join(p.good.file_name().unwrap()), 0);
    let server = UpdateServer::start(&serve_dir, &work.join("serve.log"));
    let url = server.guest_url();
    let bad_url = format!("http://10.0.2.2:{}", file_server(&work.join("bad")));
    let img = work.join("disk.img");
    copy_image(&b.image, &img, ROOM);
    let (key, public) = keypair(&work);
    let cfg = work.join("config.yaml");
    std::fs::write(&cfg, cloud_config(&public, "upd", None)).unwrap();
    let v1 = b.manifest["version"]
        .as_str()
        .expect("manifest version")
        .to_string();

    let name = p.good.file_name().unwrap().to_string_lossy().into_owned();

    // Boot 1 (v1 on A): refusals; an apply stopped right before the switch;
    // then a power cut during the slot write.
    let mut vm = Vm::boot(&img, &cfg, &work, "boot1", 2048);
    vm.wait_up(&key, 1);
    let st = check_settled_on(&vm, &key, "A");
    assert_eq!(os_version(&vm, &key), v1);
    assert_eq!(slot(&st, "B")["good"], false, "{st}");
    let before = fingerprint(&vm, &key);
    for (file, want) in [
        (&p.corrupt, "slot section is corrupt"),
        (&p.badsig, "signature does not verify"),
    ] {
        let (ok, out, err) = vm.ssh(
            &key,
            &format!("sudo basalt-update apply {bad_url}/{file} --no-reboot"),
        );
        assert!(!ok, "{file} was applied: {out}");
        assert!(err.contains(want), "{file}: expected {want:?} in: {err}");
        assert!(
            fingerprint(&vm, &key) == before,
            "{file}: slot state or USR-B changed"
        );
    }
    let out = vm.must(&key, "sudo basalt-update poll");
    assert!(out.contains("no update server configured"), "{out}");
    // Everything but the switch: slot written and verified, ESP files in
    // place; the state must still boot A only.
    let t = Instant::now();
    let (ok, _, err) = vm.ssh(
        &key,
        &format!("sudo basalt-update apply {url}/{name} --no-reboot --stop-after esp-written"),
    );
    assert!(
        !ok && err.contains("stopped after EspWritten"),
        "stop-after: {err}"
    );
    eprintln!(
        "update tests: apply up to the switch took {:.0?} in the guest",
        t.elapsed()
    );
    let st = status(&vm, &key);
    assert_eq!(st["next"], "A", "{st}");
    assert_eq!(slot(&st, "B")["good"], false, "{st}");
    assert_eq!(slot(&st, "B")["tries_left"], 0, "{st}");
    // A real poll, its disk writes throttled, its log also on the console:
    // the agent logs a line per 64 MiB of the slot write, and the power is
    // cut as soon as the console shows the first one past a quarter of the
    // slot (the host reads the console file; no ssh round trip).
    vm.must(
        &key,
        &format!(
            "sudo systemd-run --unit=upd-poll -p 'IOWriteBandwidthMax=/dev/vda 24M' \
             -p StandardError=journal+console /usr/bin/basalt-update poll {url} --no-reboot"
        ),
    );
    let step = 64u64 << 20;
    let quarter_mib = (p.slot_size / 4).div_ceil(step) * 64;
    let needle = format!("basalt-update: slot B: {quarter_mib} of ");
    vm.wait_console_unless(&needle, &[INSTALLED], Duration::from_secs(900));
    vm.power_cut();

    // Boot 2: still A, B not bootable. v2 applied for real, then its /usr
    // corrupted on disk, and a power cut right after the switch.
    let mut vm = Vm::boot(&img, &cfg, &work, "boot2", 2048);
    vm.wait_up(&key, 1);
    let st = check_settled_on(&vm, &key, "A");
    assert_eq!(slot(&st, "B")["good"], false, "{st}");
    assert_eq!(slot(&st, "B")["tries_left"], 0, "{st}");
    vm.must(
        &key,
        &format!("sudo basalt-update apply {url}/{name} --no-reboot"),
    );
    let st = status(&vm, &key);
    assert_eq!(st["next"], "B", "staged: {st}");
    assert_eq!(slot(&st, "B")["tries_left"], 1, "{st}");
    assert_eq!(slot(&st, "B")["version"], V2, "{st}");
    // One byte in B's ext4 superblock (data block 0): verity must refuse it.
    vm.must(
        &key,
        "printf '\\377' | sudo dd of=/dev/disk/by-partlabel/USR-B bs=1 seek=1120 conv=notrunc,fsync status=none && sync",
    );
    vm.power_cut();

    // Boots 3 and 4: the trial of B fails verity in the initramfs, which
    // reboots; GRUB falls back to A by itself.
    let mut vm = Vm::boot(&img, &cfg, &work, "boot3", 2048);
    vm.wait_console("basalt-init: FATAL", 1, update::BOOT_TIMEOUT);
    vm.wait_up(&key, 1);
    let st = check_settled_on(&vm, &key, "A");
    assert_eq!(os_version(&vm, &key), v1);
    let f = &st["last_failure"];
    assert_eq!(f["slot"], "B", "{st}");
    assert_eq!(f["version"], V2, "{st}");
    assert_eq!(slot(&st, "B")["tries_left"], 0, "{st}");
    let text = vm.must(&key, "sudo basalt-update status");
    assert!(
        text.contains("last failed attempt: slot B (version 0.2.0)"),
        "{text}"
    );
    let out = vm.must(&key, &format!("sudo basalt-update poll {url}"));
    assert!(out.contains("failed its trial boot before"), "{out}");
    // An explicit apply of the same (good) payload, then a reboot.
    vm.must(
        &key,
        &format!("sudo basalt-update apply {url}/{name} --no-reboot"),
    );
    let _ = vm.ssh(&key, "sudo systemctl reboot");

    // Boot 5: v2 on B, marked good; status shows both slots.
    vm.wait_up(&key, 2);
    let st = check_settled_on(&vm, &key, "B");
    assert_eq!(os_version(&vm, &key), V2);
    assert_eq!(slot(&st, "B")["version"], V2, "{st}");
    assert_eq!(slot(&st, "A")["good"], true, "{st}");
    let text = vm.must(&key, "sudo basalt-update status");
    assert!(
        text.contains("slot A (USR-A)")
            && text.contains("slot B (USR-B): version 0.2.0, booted, active, good"),
        "{text}"
    );
    let out = vm.must(&key, &format!("sudo basalt-update poll {url}"));
    assert!(out.contains("up to date"), "{out}");
    vm.must(&key, "sudo basalt-update rollback");
    let st = status(&vm, &key);
    assert_eq!(st["next"], "A", "after rollback: {st}");
    let _ = vm.ssh(&key, "sudo systemctl reboot");

    // Boot 6: rollback took: v1 on A.
    vm.wait_up(&key, 3);
    let st = check_settled_on(&vm, &key, "A");
    assert_eq!(os_version(&vm, &key), v1);
    assert_eq!(slot(&st, "B")["good"], true, "{st}");
    vm.power_cut();
    eprintln!(
        "update tests: update_lifecycle passed in {:.0?} (6 boots, one stopped in the initramfs)",
        t0.elapsed()
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
}

/// etcd on host loopback ports; killed on drop.
struct Etcd {
    child: std::process::Child,
    client: u16,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_etcd(work: &Path) -> Option<Etcd> {
    let (client, peer) = (free_port(), free_port());
    let log = std::fs::File::create(work.join("etcd.log")).unwrap();
    let child = Command::new("etcd")
        .args(["--name", "upd-test", "--data-dir"])
        .arg(work.join("etcd-data"))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-cluster",
            &format!("upd-test=http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn();
    let Ok(child) = child else {
        eprintln!("SKIPPED etcd-lock test: etcd is not installed (apt install etcd-server)");
        return None;
    };
    let e = Etcd { child, client };
    let deadline = Instant::now() + Duration::from_secs(30);
    while semaphore(e.client).is_err() {
        assert!(Instant::now() < deadline, "host etcd did not come up");
        std::thread::sleep(Duration::from_millis(300));
    }
    Some(e)
}

/// The reboot semaphore's holders (empty when the key does not exist yet).
fn semaphore(client: u16) -> Result<Vec<String>, String> {
    let key = base64_encode(b"coreos.com/updateengine/rebootlock/semaphore");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-X", "POST"])
        .arg(format!("http://127.0.0.1:{client}/v3/kv/range"))
        .args(["-d", &format!("{{\"key\":\"{key}\"}}")])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let Some(kv) = v["kvs"].as_array().and_then(|a| a.first()) else {
        return Ok(Vec::new());
    };
    let raw = base64_decode(kv["value"].as_str().unwrap_or(""));
    let sem: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
    Ok(sem["holders"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for ch in s.bytes().filter(|&b| b != b'=') {
        let v = B64.iter().position(|&x| x == ch).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_round_trip() {
    for s in [&b""[..], b"a", b"ab", b"abc", b"coreos.com/updateengine"] {
        assert_eq!(base64_decode(&base64_encode(s)), s);
    }
    assert_eq!(base64_encode(b"ab"), "YWI=");
}

#[test]
fn etcd_lock_two_machines() {
    if !enabled("etcd-lock test") {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t0 = Instant::now();
    let work = workdir("etcd-lock");
    let Some(etcd) = start_etcd(&work) else {
        return;
    };
    let b = built();
    let v2 = build_version(&work, V2);
    let serve_dir = work.join("serve");
    std::fs::create_dir_all(&serve_dir).unwrap();
    let good = payload_in(&v2);
    copy_image(&good, &serve_dir.join(good.file_name().unwrap()), 0);
    let server = UpdateServer::start(&serve_dir, &work.join("serve.log"));
    let (key, public) = keypair(&work);
    let conf = format!(
        "REBOOT_STRATEGY=\"etcd-lock\"\nETCD_ENDPOINT=\"http://10.0.2.2:{}\"\nSERVER=\"{}\"\n",
        etcd.client,
        server.guest_url()
    );
    let mut vms = Vec::new();
    for i in 1..=2 {
        let img = work.join(format!("disk{i}.img"));
        copy_image(&b.image, &img, ROOM);
        let cfg = work.join(format!("config{i}.yaml"));
        std::fs::write(
            &cfg,
            cloud_config(&public, &format!("node{i}"), Some(&conf)),
        )
        .unwrap();
        vms.push(Vm::boot(&img, &cfg, &work, &format!("node{i}"), 1536));
    }
    let mut ids = Vec::new();
    for vm in vms.iter_mut() {
        vm.wait_up(&key, 1);
        check_settled_on(vm, &key, "A");
        ids.push(vm.must(&key, "cat /etc/machine-id"));
    }
    assert_ne!(ids[0], ids[1], "both machines have the same machine-id");
    // Both poll (the timer's service) at once; each waits for the lock.
    for vm in &vms {
        vm.must(
            &key,
            "sudo systemctl start --no-block basalt-update.service",
        );
    }
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let holders = semaphore(etcd.client).unwrap_or_else(|e| panic!("reading etcd: {e}"));
        assert!(
            holders.len() <= 1,
            "two machines hold the reboot lock at once: {holders:?}"
        );
        for h in holders {
            if !seen.contains(&h) {
                eprintln!("update tests: reboot lock taken by {h}");
                seen.push(h);
            }
        }
        let rebooting = vms.iter().filter(|v| v.boots() >= 2).count();
        if rebooting == 2 && seen.len() == 2 && semaphore(etcd.client).unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd-lock: both machines did not update in 1 h"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    ids.sort();
    assert_eq!(sorted, ids, "lock holders are not the two machines");
    for vm in vms.iter_mut() {
        vm.wait_up(&key, 2);
        check_settled_on(vm, &key, "B");
        assert_eq!(os_version(vm, &key), V2);
        assert_eq!(vm.boots(), 2, "{}: rebooted more than once", vm.tag);
    }
    assert!(
        semaphore(etcd.client).unwrap().is_empty(),
        "lock still held"
    );
    eprintln!(
        "update tests: etcd_lock_two_machines passed in {:.0?}",
        t0.elapsed()
    );
    drop(vms);
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
}
