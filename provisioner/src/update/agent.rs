//! apply, rollback, mark-good: every change of the boot-slot state.
//!
//! apply, in this order (issue 6; crates/grub/README.md "Update agent"):
//! 1. the payload is verified whole (signature, every SHA-256) before any
//!    write ([`basalt_payload::Payload::open`]);
//! 2. if the target slot could still be booted (OK=1 or tries left, e.g.
//!    after a rollback) it is invalidated in grubenv first, so a power cut
//!    during the write can never boot a half-written slot; otherwise grubenv
//!    is not touched until step 6;
//! 3. the slot image is streamed into the target partition (hashed again on
//!    the way), then fsynced;
//! 4. the written slot is read back (page cache dropped) and checked with
//!    dm-verity against the signed root hash;
//! 5. kernel, initrd, slot command line and the slot record go onto the ESP
//!    (temp file + rename each);
//! 6. one in-place grubenv write stages the slot: `X_TRY=1`, X first in
//!    ORDER. The running slot keeps `OK=1` as the fallback.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use basalt_grub::envfile::{read_state, update_state};
use basalt_grub::{BootState, SlotBoot};
use basalt_payload::{Metadata, Payload, Section, VerifyingKey};
use sha2::{Digest, Sha256};

use super::esp::{Esp, FailureRecord, SlotRecord, write_atomic, write_json};
use super::{SLOTS, TRIAL_TRIES, disk, other, write};

/// The slot write logs a progress line every this many bytes.
const PROGRESS_STEP: u64 = 64 << 20;

/// The machine the agent acts on: the boot disk, the mounted ESP and the
/// slot the running system was booted from.
#[derive(Debug, Clone)]
pub struct Machine {
    pub disk: PathBuf,
    pub esp: Esp,
    pub booted: char,
}

/// Steps of apply, for fault-injection (`ApplyOptions::stop_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// After the slot image was written and synced.
    SlotWritten,
    /// After the read-back verity check.
    SlotVerified,
    /// After kernel, initrd and command line are on the ESP.
    EspWritten,
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Stage, String> {
        match s {
            "slot-written" => Ok(Stage::SlotWritten),
            "slot-verified" => Ok(Stage::SlotVerified),
            "esp-written" => Ok(Stage::EspWritten),
            _ => Err(format!(
                "{s:?}: expected slot-written, slot-verified or esp-written"
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Abort with an error right after this stage (tests, power-cut drills).
    pub stop_after: Option<Stage>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    pub slot: char,
    pub name: String,
    pub version: String,
}

fn stop(opts: &ApplyOptions, at: Stage) -> Result<()> {
    if opts.stop_after == Some(at) {
        bail!("stopped after {at:?} as requested (fault injection)");
    }
    Ok(())
}

/// The kernel arguments for slot `s` holding the payload's /usr.
pub fn slot_cmdline(s: char, m: &Metadata) -> String {
    let salt = if m.verity.salt.is_empty() {
        "-"
    } else {
        m.verity.salt.as_str()
    };
    let mut c = format!(
        "basalt.slot={} basalt.usrhash={} basalt.usr_hash_offset={} basalt.usr_data_blocks={} basalt.usr_salt={salt}",
        s.to_ascii_lowercase(),
        m.verity.root_hash,
        m.verity.hash_offset,
        m.verity.data_blocks
    );
    if !m.cmdline.trim().is_empty() {
        c.push(' ');
        c.push_str(m.cmdline.trim());
    }
    c
}

/// The booted slot must be one of [`SLOTS`].
pub fn check_booted(m: &Machine) -> Result<()> {
    if !SLOTS.contains(&m.booted) {
        bail!("booted slot {:?} is not one of {SLOTS:?}", m.booted);
    }
    Ok(())
}

fn grub<T>(r: basalt_grub::Result<T>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// Verifies `payload` with `key` and installs it into the slot that is not
/// booted; see the module documentation for the order of steps.
pub fn apply(m: &Machine, payload: File, key: &VerifyingKey, opts: &ApplyOptions) -> Result<Apply> {
    check_booted(m)?;
    let p = Payload::open(payload, key).context("verifying the update payload")?;
    let meta = p.metadata().clone();
    let target = other(m.booted);
    let envp = m.esp.grubenv();
    let state = grub(read_state(&envp, &SLOTS), "reading grubenv")?;
    let booted = state
        .slot(m.booted)
        .context("booted slot missing from grubenv")?;
    if !booted.ok {
        bail!(
            "the booted slot {} is not marked good yet; run `basalt-update mark-good` (or wait for basalt-mark-good.service) before applying another update",
            m.booted
        );
    }
    let mut disk = File::options()
        .read(true)
        .write(true)
        .open(&m.disk)
        .with_context(|| format!("opening disk {}", m.disk.display()))?;
    let range = disk::slot_range(&mut disk, &m.disk, target)?;
    let part_size = range.end - range.start;
    if meta.slot.size > part_size {
        bail!(
            "slot image is {} bytes, partition {} holds {part_size}",
            meta.slot.size,
            disk::partition_name(target)
        );
    }
    let root = meta.root_hash().context("reading the root hash")?;
    let cfg = grub(
        basalt_grub::slot_cfg(&SlotBoot {
            name: target,
            cmdline: slot_cmdline(target, &meta),
        }),
        "slot command line",
    )?;
    let kernel = p.read_section(Section::Kernel)?;
    let initrd = p.read_section(Section::Initrd)?;
    for (what, b, want) in [
        ("kernel", &kernel, &meta.kernel.sha256),
        ("initrd", &initrd, &meta.initrd.sha256),
    ] {
        if hex::encode(Sha256::digest(b)) != *want {
            bail!("{what} changed since the payload was verified; refusing");
        }
    }

    // Step 2: a bootable target is made unbootable before it is overwritten.
    let t = state
        .slot(target)
        .context("target slot missing from grubenv")?;
    if t.ok || t.tries > 0 {
        grub(
            update_state(&envp, &SLOTS, |s| s.invalidate(target)),
            "invalidating the target slot",
        )?;
    }

    // Step 3: stream the slot image (pipelined; step 4 checks what landed).
    let started = std::time::Instant::now();
    // One line per PROGRESS_STEP for the journal (the QEMU tests cut the
    // power on one of them).
    let total = meta.slot.size;
    let mut next = PROGRESS_STEP;
    let mut progress = |done: u64| {
        if done >= next {
            eprintln!(
                "basalt-update: slot {target}: {} of {} MiB written",
                done >> 20,
                total >> 20
            );
            next = done.saturating_add(PROGRESS_STEP);
        }
    };
    let w = write::write_slot(
        p.section(Section::Slot),
        &disk,
        range.start,
        part_size,
        &mut progress,
    )
    .with_context(|| format!("writing slot {target}"))?;
    // Progress for the journal (and ci/bench's slot-write entry, which
    // parses this line): bytes written and synced, and how long it took.
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "basalt-update: slot {target} written: {} bytes in {secs:.3} s ({:.1} MiB/s)",
        w.bytes,
        w.bytes as f64 / (1u64 << 20) as f64 / secs.max(1e-9)
    );
    if w.bytes != meta.slot.size {
        bail!(
            "the payload file changed while it was written ({} slot bytes, {} signed); slot {target} is left unbootable",
            w.bytes,
            meta.slot.size
        );
    }
    stop(opts, Stage::SlotWritten)?;

    // Step 4: read back from the device and check against the root hash.
    disk::drop_cache(&disk, &range);
    let data_len = meta.verity.data_blocks * 4096;
    basalt_verity::verify(
        &disk,
        range.start,
        data_len,
        &disk,
        range.start + meta.verity.hash_offset,
        &root,
    )
    .with_context(|| {
        format!(
            "verifying slot {target} after writing it (dm-verity read-back; the payload file may have changed since it was verified); slot {target} is left unbootable"
        )
    })?;
    stop(opts, Stage::SlotVerified)?;

    // Step 5: the ESP.
    write_atomic(&m.esp.kernel(target), &kernel)?;
    write_atomic(&m.esp.initrd(target), &initrd)?;
    write_atomic(&m.esp.slot_cfg(target), cfg.as_bytes())?;
    write_json(
        &m.esp.record(target),
        &SlotRecord {
            name: meta.name.clone(),
            version: meta.version.clone(),
            root_hash: meta.verity.root_hash.clone(),
        },
    )?;
    stop(opts, Stage::EspWritten)?;

    // Step 6: the one atomic switch.
    grub(
        update_state(&envp, &SLOTS, |s| s.stage_trial(target, TRIAL_TRIES)),
        "staging the new slot in grubenv",
    )?;
    Ok(Apply {
        slot: target,
        name: meta.name,
        version: meta.version,
    })
}

/// A trial that ran out: ORDER's head is not the booted slot and has
/// neither tries left nor a good mark.
pub fn failed_trial(state: &BootState, booted: char) -> Option<char> {
    let head = *state.order.first()?;
    let s = state.slot(head)?;
    (head != booted && !s.ok && s.tries == 0).then_some(head)
}

/// For basalt-mark-good.service: confirm the booted slot, put it first in
/// ORDER, and record a trial that fell back to it. Returns the failure
/// recorded, if any.
pub fn mark_good(m: &Machine) -> Result<Option<FailureRecord>> {
    check_booted(m)?;
    let envp = m.esp.grubenv();
    let state = grub(read_state(&envp, &SLOTS), "reading grubenv")?;
    let failure = match failed_trial(&state, m.booted) {
        Some(f) => {
            let rec = FailureRecord {
                slot: f,
                version: m.esp.read_record(f)?.map(|r| r.version),
                fell_back_to: m.booted,
            };
            write_json(&m.esp.failure(), &rec)?;
            Some(rec)
        }
        None => None,
    };
    let booted = m.booted;
    grub(
        update_state(&envp, &SLOTS, |s| {
            s.mark_good(booted)?;
            s.order.retain(|&n| n != booted);
            s.order.insert(0, booted);
            Ok(())
        }),
        "marking the booted slot good",
    )?;
    Ok(failure)
}

/// What a rollback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    /// The other, good slot boots next.
    ToOther(char),
    /// A staged, never-booted update in the other slot was cancelled.
    Cancelled(char),
}

/// Makes the other good slot the one that boots next; a staged trial in the
/// other slot is cancelled instead (the booted slot stays first).
pub fn rollback(m: &Machine) -> Result<Rollback> {
    check_booted(m)?;
    let envp = m.esp.grubenv();
    let state = grub(read_state(&envp, &SLOTS), "reading grubenv")?;
    let o = other(m.booted);
    let os = *state.slot(o).context("slot missing from grubenv")?;
    let booted = m.booted;
    if os.ok {
        grub(
            update_state(&envp, &SLOTS, |s| {
                s.order.retain(|&n| n != o);
                s.order.insert(0, o);
                Ok(())
            }),
            "rolling back",
        )?;
        Ok(Rollback::ToOther(o))
    } else if os.tries > 0 {
        grub(
            update_state(&envp, &SLOTS, |s| {
                s.invalidate(o)?;
                s.order.retain(|&n| n != booted);
                s.order.insert(0, booted);
                Ok(())
            }),
            "cancelling the staged update",
        )?;
        Ok(Rollback::Cancelled(o))
    } else {
        bail!("slot {o} holds no good system to roll back to (not marked good, no trial staged)")
    }
}
