//! Seeded random layouts: whatever `plan` accepts must satisfy sgdisk and
//! read back identically; whatever it refuses must be refused with a reason.

use std::fs::{self, File};
use std::process::Command;

use basalt_gpt::{
    Attributes, DiskLayout, Guid, PartSize, PartSpec, guid_from_seed, read_gpt, types,
};

const MIB: u64 = 1 << 20;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn random_specs(rng: &mut Rng, seed: u64) -> (Vec<PartSpec>, Option<u64>) {
    let kinds = [
        types::ESP,
        types::BIOS_BOOT,
        types::USR_X86_64,
        types::LINUX_DATA,
        types::ROOT_X86_64,
    ];
    let count = 1 + rng.below(8);
    let mut numbers: Vec<u32> = (1..=128).collect();
    let mut specs = Vec::new();
    for i in 0..count {
        let n = numbers.remove(rng.below(numbers.len() as u64) as usize);
        let size = match rng.below(4) {
            0 => PartSize::Bytes((1 + rng.below(8)) * MIB),
            1 => PartSize::Bytes((1 + rng.below(4000)) * 512),
            2 if i + 1 == count => PartSize::Fill,
            _ => PartSize::Bytes((1 + rng.below(3)) * MIB + 512 * rng.below(3)),
        };
        let name = format!("P{n}-{}", "x".repeat(rng.below(30) as usize));
        let attrs = Attributes(1u64 << [0, 2, 59, 60, 63][rng.below(5) as usize]);
        specs.push(
            PartSpec::new(
                n,
                &name,
                kinds[rng.below(kinds.len() as u64) as usize],
                guid_from_seed(&seed.to_le_bytes(), &name),
                size,
            )
            .with_attributes(attrs),
        );
    }
    let disk = match rng.below(3) {
        0 => None,
        _ => Some((8 + rng.below(40)) * MIB + 512 * rng.below(2)),
    };
    (specs, disk)
}

#[test]
fn random_layouts() {
    let have_sgdisk = Command::new("sgdisk")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_sgdisk {
        eprintln!(
            "SKIPPING sgdisk part of random layouts: sgdisk not installed (apt-get install gdisk)"
        );
    }
    let dir = std::env::temp_dir().join(format!("basalt-gpt-random-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let (mut accepted, mut refused) = (0, 0);
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (specs, disk) = random_specs(&mut rng, seed);
        let layout = match DiskLayout::plan(Guid::from_u128(u128::from(seed)), &specs, disk) {
            Ok(l) => l,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
                continue;
            }
        };
        accepted += 1;
        let img = dir.join(format!("{seed}.img"));
        let mut f = File::create(&img).expect("create");
        layout.write_headers(&mut f).expect("write");
        drop(f);
        let gpt = read_gpt(&mut File::open(&img).expect("open")).expect("read back");
        let mut want: Vec<_> = layout
            .partitions
            .iter()
            .map(|p| (p.number, p.entry.clone()))
            .collect();
        want.sort_by_key(|(n, _)| *n);
        assert_eq!(gpt.partitions, want, "seed {seed}");
        if have_sgdisk {
            let out = Command::new("sgdisk")
                .arg("-v")
                .arg(&img)
                .output()
                .expect("sgdisk");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("No problems found"),
                "seed {seed}: {text}"
            );
        }
        fs::remove_file(&img).ok();
    }
    fs::remove_dir_all(&dir).ok();
    // Both paths are exercised.
    assert!(
        accepted >= 20 && refused >= 3,
        "accepted {accepted}, refused {refused}"
    );
}
