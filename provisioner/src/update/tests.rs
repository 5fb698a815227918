//! The agent against a generated GPT disk image and an ESP directory:
//! apply, status, mark-good, rollback, refusals and interrupted applies.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use basalt_gpt::{DiskLayout, Guid, PartSize, PartSpec, types};
use basalt_grub::BootState;
use basalt_grub::envfile::read_state;
use basalt_payload::{PayloadInfo, SigningKey, Source, VerityInfo};

use super::agent::slot_cmdline;
use super::*;

const MIB: u64 = 1 << 20;
const DATA_BLOCKS: u64 = 40;

pub(super) struct Rig {
    _dir: tempfile::TempDir,
    pub(super) root: PathBuf,
    pub(super) disk: PathBuf,
    pub(super) esp: PathBuf,
    pub(super) key: SigningKey,
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A slot image (data + verity hash area) and its verity fields.
fn slot_image(seed: u8) -> (Vec<u8>, VerityInfo) {
    let data = pattern((DATA_BLOCKS * 4096) as usize, seed);
    let f = tempfile::tempfile().unwrap();
    f.write_all_at(&data, 0).unwrap();
    let salt = [seed; 32];
    let v = basalt_verity::compute(&f, 0, data.len() as u64, &salt, [seed; 16]).unwrap();
    let mut img = data.clone();
    img.extend_from_slice(&v.hash_area);
    let info = VerityInfo {
        root_hash: v.root_hex(),
        hash_offset: data.len() as u64,
        data_blocks: DATA_BLOCKS,
        salt: hex::encode(salt),
    };
    (img, info)
}

pub(super) fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let specs = [
        PartSpec::new(
            1,
            "EFI-SYSTEM",
            types::ESP,
            Guid::from_u128(11),
            PartSize::Bytes(MIB),
        ),
        PartSpec::new(
            3,
            "USR-A",
            types::USR_X86_64,
            Guid::from_u128(13),
            PartSize::Bytes(MIB),
        ),
        PartSpec::new(
            4,
            "USR-B",
            types::USR_X86_64,
            Guid::from_u128(14),
            PartSize::Bytes(MIB),
        ),
        PartSpec::new(
            9,
            "ROOT",
            types::LINUX_DATA,
            Guid::from_u128(19),
            PartSize::Bytes(MIB),
        ),
    ];
    let layout = DiskLayout::plan(Guid::from_u128(1), &specs, None).unwrap();
    let disk = root.join("disk.img");
    let mut f = File::create(&disk).unwrap();
    layout.write_headers(&mut f).unwrap();
    let (a, _) = slot_image(1);
    f.write_all_at(&a, layout.partition(3).unwrap().offset())
        .unwrap();
    // Slot B: leftovers of an older system.
    f.write_all_at(
        &pattern(MIB as usize, 99),
        layout.partition(4).unwrap().offset(),
    )
    .unwrap();
    let esp = root.join("esp");
    fs::create_dir_all(esp.join("grub")).unwrap();
    fs::create_dir_all(esp.join("EFI/basalt")).unwrap();
    let env = BootState::factory(&SLOTS).unwrap().to_env_bytes().unwrap();
    fs::write(esp.join("grub/grubenv"), env).unwrap();
    fs::write(esp.join("EFI/basalt/vmlinuz-a"), b"kernel v1").unwrap();
    Rig {
        _dir: dir,
        root,
        disk,
        esp,
        key: SigningKey::from_bytes(&[42; 32]),
    }
}

impl Rig {
    pub(super) fn machine(&self, booted: char) -> Machine {
        Machine {
            disk: self.disk.clone(),
            esp: esp::Esp::new(&self.esp),
            booted,
        }
    }

    pub(super) fn payload(&self, version: &str, seed: u8) -> (PathBuf, Vec<u8>) {
        let (img, verity) = slot_image(seed);
        let p = self.root.join(format!("{version}.update"));
        let mut f = File::create(&p).unwrap();
        basalt_payload::write_payload(
            &mut f,
            &PayloadInfo {
                name: "basalt".into(),
                version: version.into(),
                verity,
                cmdline: "console=ttyS0,115200".into(),
            },
            Source::Bytes(&img),
            Source::Bytes(&pattern(9000, seed + 1)),
            Source::Bytes(&pattern(3000, seed + 2)),
            &self.key,
        )
        .unwrap();
        (p, img)
    }

    pub(super) fn slot_bytes(&self, s: char) -> Vec<u8> {
        let mut f = File::open(&self.disk).unwrap();
        let r = disk::slot_range(&mut f, &self.disk, s).unwrap();
        let mut b = vec![0u8; (r.end - r.start) as usize];
        f.read_exact_at(&mut b, r.start).unwrap();
        b
    }

    pub(super) fn state(&self) -> BootState {
        read_state(&self.esp.join("grub/grubenv"), &SLOTS).unwrap()
    }

    /// Everything the agent may write: the disk and every ESP file.
    pub(super) fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut v = vec![(self.disk.clone(), fs::read(&self.disk).unwrap())];
        walk(&self.esp, &mut v);
        v.sort();
        v
    }

    fn apply(&self, booted: char, p: &Path, opts: &ApplyOptions) -> anyhow::Result<Apply> {
        apply(
            &self.machine(booted),
            File::open(p).unwrap(),
            &self.key.verifying_key(),
            opts,
        )
    }
}

fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn apply_boot_mark_good_rollback() {
    let r = rig();
    let (p, img) = r.payload("2.0", 7);
    let a_before = r.slot_bytes('A');
    let done = r.apply('A', &p, &ApplyOptions::default()).unwrap();
    assert_eq!((done.slot, done.version.as_str()), ('B', "2.0"));
    assert_eq!(&r.slot_bytes('B')[..img.len()], &img[..]);
    assert_eq!(r.slot_bytes('A'), a_before, "booted slot untouched");
    let st = r.state();
    assert_eq!(st.order, vec!['B', 'A']);
    assert_eq!(
        (st.slot('B').unwrap().ok, st.slot('B').unwrap().tries),
        (false, 1)
    );
    assert!(st.slot('A').unwrap().ok, "fallback kept");
    assert_eq!(
        fs::read(r.esp.join("EFI/basalt/vmlinuz-b")).unwrap(),
        pattern(9000, 8)
    );
    assert_eq!(
        fs::read(r.esp.join("EFI/basalt/initrd-b")).unwrap(),
        pattern(3000, 9)
    );
    let cfg = fs::read_to_string(r.esp.join("EFI/basalt/slot-b.cfg")).unwrap();
    let (_, verity) = slot_image(7);
    assert!(
        cfg.contains(&format!(
            "basalt.slot=b basalt.usrhash={} ",
            verity.root_hash
        )),
        "{cfg}"
    );
    assert!(
        cfg.contains("basalt.usr_data_blocks=40 ") && cfg.contains("console=ttyS0,115200'"),
        "{cfg}"
    );

    let s = status(&r.machine('A')).unwrap();
    assert_eq!(s.next, Some('B'));
    assert_eq!(s.slots[1].version.as_deref(), Some("2.0"));
    assert!(s.slots[0].booted && s.slots[1].active && s.slots[1].tries_left == 1);
    assert!(
        s.to_text()
            .contains("slot B (USR-B): version 2.0, active, not good, tries left 1"),
        "{}",
        s.to_text()
    );

    // GRUB boots B (one try used), the OS marks it good.
    let mut sim = r.state();
    assert_eq!(sim.select(), Some('B'));
    fs::write(r.esp.join("grub/grubenv"), sim.to_env_bytes().unwrap()).unwrap();
    assert_eq!(mark_good(&r.machine('B')).unwrap(), None);
    let st = r.state();
    assert!(st.slot('B').unwrap().ok && st.slot('A').unwrap().ok);
    let json: serde_json::Value =
        serde_json::from_str(&status(&r.machine('B')).unwrap().to_json()).unwrap();
    assert_eq!(json["next"], "B");
    assert_eq!(json["slots"][1]["good"], true);

    // rollback: A (good) boots next; a second apply now goes into A.
    assert_eq!(rollback(&r.machine('B')).unwrap(), Rollback::ToOther('A'));
    assert_eq!(r.state().order, vec!['A', 'B']);
    assert_eq!(r.state().clone().select(), Some('A'));
}

#[test]
fn refused_payloads_change_nothing() {
    let r = rig();
    let (p, _) = r.payload("2.0", 7);
    let before = r.snapshot();
    let len = fs::metadata(&p).unwrap().len();
    // A flipped byte in the slot image, in the kernel, in the metadata; a
    // truncated file.
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    let good = fs::read(&p).unwrap();
    for (at, want) in [
        (4096 + 100, "slot section"),
        (len as usize - 3000 - 12288 + 5, "kernel section"),
        (100, "signature"),
    ] {
        let mut b = good.clone();
        b[at] ^= 1;
        cases.push((b, want));
    }
    cases.push((good[..good.len() - 1].to_vec(), "truncated"));
    for (i, (bytes, want)) in cases.iter().enumerate() {
        let bad = r.root.join(format!("bad{i}.update"));
        fs::write(&bad, bytes).unwrap();
        let e = format!(
            "{:#}",
            r.apply('A', &bad, &ApplyOptions::default()).unwrap_err()
        );
        assert!(e.contains(want), "case {i}: {e}");
        assert!(r.snapshot() == before, "case {i}: something was written");
    }
    // Signed by another key.
    let e = apply(
        &r.machine('A'),
        File::open(&p).unwrap(),
        &SigningKey::from_bytes(&[1; 32]).verifying_key(),
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("signature does not verify"),
        "{e:#}"
    );
    assert!(r.snapshot() == before);
}

#[test]
fn interrupted_apply_keeps_booted_slot() {
    for stage in [Stage::SlotWritten, Stage::SlotVerified, Stage::EspWritten] {
        let r = rig();
        let (p, _) = r.payload("2.0", 7);
        let env_before = fs::read(r.esp.join("grub/grubenv")).unwrap();
        let e = r
            .apply(
                'A',
                &p,
                &ApplyOptions {
                    stop_after: Some(stage),
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("fault injection"), "{e}");
        assert_eq!(
            fs::read(r.esp.join("grub/grubenv")).unwrap(),
            env_before,
            "{stage:?}"
        );
        let mut st = r.state();
        assert_eq!(st.select(), Some('A'), "{stage:?}");
        // The next apply completes normally.
        r.apply('A', &p, &ApplyOptions::default()).unwrap();
        assert_eq!(r.state().order, vec!['B', 'A']);
    }
}

#[test]
fn bootable_target_is_invalidated_before_the_write() {
    let r = rig();
    let (p1, _) = r.payload("2.0", 7);
    r.apply('A', &p1, &ApplyOptions::default()).unwrap();
    let mut sim = r.state();
    sim.select();
    fs::write(r.esp.join("grub/grubenv"), sim.to_env_bytes().unwrap()).unwrap();
    mark_good(&r.machine('B')).unwrap();
    rollback(&r.machine('B')).unwrap(); // A first, A and B good; B booted.
    // Applying into A (good, first in ORDER) while B runs: an interruption
    // must leave A unbootable, never half-written and bootable.
    let (p2, _) = r.payload("3.0", 20);
    r.apply(
        'B',
        &p2,
        &ApplyOptions {
            stop_after: Some(Stage::SlotWritten),
        },
    )
    .unwrap_err();
    let mut st = r.state();
    assert!(!st.slot('A').unwrap().ok);
    assert_eq!(st.select(), Some('B'));
}

#[test]
fn other_refusals() {
    let r = rig();
    // Booted slot not yet good.
    let (p, _) = r.payload("2.0", 7);
    r.apply('A', &p, &ApplyOptions::default()).unwrap();
    let (p2, _) = r.payload("3.0", 8);
    let e = format!(
        "{:#}",
        r.apply('B', &p2, &ApplyOptions::default()).unwrap_err()
    );
    assert!(e.contains("not marked good"), "{e}");
    // Rollback while B is staged cancels it.
    assert_eq!(rollback(&r.machine('A')).unwrap(), Rollback::Cancelled('B'));
    let st = r.state();
    assert_eq!((st.order[0], st.slot('B').unwrap().tries), ('A', 0));
    let e = rollback(&r.machine('A')).unwrap_err().to_string();
    assert!(e.contains("no good system"), "{e}");
    let e = status(&r.machine('C')).unwrap_err().to_string();
    assert!(e.contains("not one of"), "{e}");
    // No partition for the slot.
    let mut m = r.machine('A');
    m.disk = r.root.join("2.0.update");
    let e = format!(
        "{:#}",
        apply(
            &m,
            File::open(&p).unwrap(),
            &r.key.verifying_key(),
            &ApplyOptions::default()
        )
        .unwrap_err()
    );
    assert!(e.contains("reading the GPT"), "{e}");
}

#[test]
fn failed_trial_is_recorded() {
    let r = rig();
    let (p, _) = r.payload("2.0", 7);
    r.apply('A', &p, &ApplyOptions::default()).unwrap();
    // B is tried once and never marked good; GRUB then falls back to A.
    let mut sim = r.state();
    assert_eq!(sim.select(), Some('B'));
    assert_eq!(sim.select(), Some('A'));
    fs::write(r.esp.join("grub/grubenv"), sim.to_env_bytes().unwrap()).unwrap();
    let s = status(&r.machine('A')).unwrap();
    let f = s.last_failure.clone().unwrap();
    assert_eq!(
        (f.slot, f.version.as_deref(), f.fell_back_to),
        ('B', Some("2.0"), 'A')
    );
    let rec = mark_good(&r.machine('A')).unwrap().unwrap();
    assert_eq!(rec, f);
    assert_eq!(r.state().order, vec!['A', 'B']);
    let s = status(&r.machine('A')).unwrap();
    assert_eq!(s.last_failure, Some(f));
    assert!(
        s.to_text()
            .contains("last failed attempt: slot B (version 2.0)"),
        "{}",
        s.to_text()
    );
}

#[test]
fn slot_too_large_is_refused() {
    let r = rig();
    let big = (MIB / 4096 + 1) * 4096;
    let p = r.root.join("big.update");
    let mut f = File::create(&p).unwrap();
    basalt_payload::write_payload(
        &mut f,
        &PayloadInfo {
            name: "basalt".into(),
            version: "9".into(),
            verity: VerityInfo {
                root_hash: "00".repeat(32),
                hash_offset: 4096,
                data_blocks: 1,
                salt: String::new(),
            },
            cmdline: String::new(),
        },
        Source::Bytes(&vec![0u8; big as usize]),
        Source::Bytes(b"k"),
        Source::Bytes(b""),
        &r.key,
    )
    .unwrap();
    let before = r.snapshot();
    let e = format!(
        "{:#}",
        r.apply('A', &p, &ApplyOptions::default()).unwrap_err()
    );
    assert!(e.contains("partition USR-B holds"), "{e}");
    assert!(r.snapshot() == before);
}

#[test]
fn cmdline_parsing_and_slot_args() {
    let ok: &[(&str, Option<char>)] = &[
        ("", None),
        ("console=ttyS0 basalt.slot=a", Some('A')),
        ("basalt.slot=B quiet", Some('B')),
    ];
    for (line, want) in ok {
        assert_eq!(booted_slot(line).unwrap(), *want, "{line}");
    }
    assert!(booted_slot("basalt.slot=c").is_err());
    let (_, verity) = slot_image(3);
    let meta = basalt_payload::Metadata {
        name: "n".into(),
        version: "1".into(),
        slot: basalt_payload::SectionInfo {
            offset: 0,
            size: 0,
            sha256: String::new(),
        },
        verity: VerityInfo {
            salt: String::new(),
            ..verity
        },
        kernel: basalt_payload::SectionInfo {
            offset: 0,
            size: 0,
            sha256: String::new(),
        },
        initrd: basalt_payload::SectionInfo {
            offset: 0,
            size: 0,
            sha256: String::new(),
        },
        cmdline: " quiet ".into(),
    };
    let c = slot_cmdline('A', &meta);
    assert!(c.starts_with("basalt.slot=a basalt.usrhash="), "{c}");
    assert!(
        c.ends_with("basalt.usr_data_blocks=40 basalt.usr_salt=- quiet"),
        "{c}"
    );
}
