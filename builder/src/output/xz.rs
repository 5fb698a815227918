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

pub fn compress(raw: &Path, dest: &Path) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let stream = MtStreamBuilder::new()
        .preset(PRESET)
        .threads(u32::try_from(threads).unwrap_or(1))
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
