//! `raw.xz`: the raw image compressed with multithreaded xz (liblzma).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use liblzma::stream::{Check, MtStreamBuilder};
use liblzma::write::XzEncoder;

use crate::atomic::TempFile;

/// xz preset: 6 is xz's default, a good size/time balance for disk images.
const PRESET: u32 = 6;
/// Fixed xz block size (preset 6's own default, 3 x its 8 MiB dictionary).
/// Blocks are cut at fixed offsets, so the output is the same whatever the
/// number of threads: reproducible across machines.
const BLOCK_SIZE: u64 = 24 << 20;

pub fn compress(raw: &Path, dest: &Path) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    compress_with(raw, dest, u32::try_from(threads).unwrap_or(1))
}

fn compress_with(raw: &Path, dest: &Path, threads: u32) -> Result<()> {
    let stream = MtStreamBuilder::new()
        .preset(PRESET)
        .block_size(BLOCK_SIZE)
        .threads(threads.max(1))
        .check(Check::Crc64)
        .encoder()
        .context("starting the xz encoder")?;
    let (tmp, f) = TempFile::create(dest)?;
    let mut enc = XzEncoder::new_stream(BufWriter::with_capacity(1 << 20, f), stream);
    let mut src = BufReader::with_capacity(
        1 << 20,
        File::open(raw).with_context(|| format!("opening {}", raw.display()))?,
    );
    std::io::copy(&mut src, &mut enc).context("compressing the disk image")?;
    let mut w = enc.finish().context("finishing the xz stream")?;
    w.flush().context("flushing the xz file")?;
    let f = w.into_inner().context("flushing the xz file")?;
    f.sync_all().context("syncing the xz file")?;
    tmp.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64 MiB sparse "disk" with data in a few places, compressed with
    /// 1, 2 and 4 threads: byte-identical, and it decompresses to the input.
    #[test]
    fn output_is_independent_of_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.img");
        {
            use std::io::{Seek, SeekFrom};
            let mut f = File::create(&raw).unwrap();
            f.set_len(64 << 20).unwrap();
            let mut x: u32 = 0x1234_5678;
            for off in [0u64, 5 << 20, 30 << 20, (64 << 20) - 4096] {
                f.seek(SeekFrom::Start(off)).unwrap();
                let block: Vec<u8> = (0..4096)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x.to_le_bytes()[0] & 0x3f
                    })
                    .collect();
                f.write_all(&block).unwrap();
            }
        }
        let mut outs = Vec::new();
        for threads in [1u32, 2, 4] {
            let dest = dir.path().join(format!("disk-{threads}.img.xz"));
            compress_with(&raw, &dest, threads).unwrap();
            outs.push(std::fs::read(&dest).unwrap());
        }
        assert_eq!(outs[0], outs[1], "1 vs 2 threads");
        assert_eq!(outs[0], outs[2], "1 vs 4 threads");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(&outs[0][..]), &mut back)
            .unwrap();
        assert_eq!(back, std::fs::read(&raw).unwrap());
    }
}
