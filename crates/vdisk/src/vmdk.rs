//! VMDK streamOptimized: the sparse extent format VMware and clouds import
//! (VMware Virtual Disk Format 5.0, "Stream-Optimized Compressed Sparse
//! Extents"). One pass, in disk order: header, embedded descriptor,
//! deflate-compressed grains with their LBA, after every 512 grains a
//! grain-table marker and table, then the grain directory, footer and
//! end-of-stream marker. All-zero grains are left out (table entry 0).

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use crate::error::{Result, VdiskError, io_err};
use crate::source::RawDisk;

pub const SECTOR: u64 = 512;
/// `magicNumber`: "KDMV" read as a little-endian u32.
pub const MAGIC: u32 = 0x564d_444b;
/// `version` 3: stream-optimized with compressed grains.
pub const VERSION: u32 = 3;
/// `flags`: bit 0 valid new-line detection test, bit 16 grains are
/// compressed, bit 17 the stream carries markers.
pub const FLAGS: u32 = 1 | 1 << 16 | 1 << 17;
/// Grain size: 128 sectors (64 KiB), VMware's default.
pub const GRAIN_SECTORS: u64 = 128;
pub const GRAIN_BYTES: u64 = GRAIN_SECTORS * SECTOR;
/// `numGTEsPerGT`: 512 entries, so a grain table covers 32 MiB.
pub const GTES_PER_GT: u64 = 512;
/// `gdOffset` in the leading header of a stream: the directory is at the end.
pub const GD_AT_END: u64 = u64::MAX;
/// `compressAlgorithm` 1: deflate (an RFC 1950 zlib stream per grain).
pub const COMPRESS_DEFLATE: u16 = 1;
/// Marker types.
pub const MARKER_EOS: u32 = 0;
pub const MARKER_GT: u32 = 1;
pub const MARKER_GD: u32 = 2;
pub const MARKER_FOOTER: u32 = 3;
/// Size of a compressed grain's own header: `lba` u64 + `size` u32.
pub const GRAIN_HEADER: usize = 12;

/// Options of the VMDK writer.
#[derive(Debug, Clone)]
pub struct VmdkOptions {
    /// Content id written in the descriptor (derive it from the build seed).
    pub cid: u32,
    /// File name named by the descriptor's extent line (the .vmdk's own name).
    pub file_name: String,
    /// zlib level 0..=9.
    pub level: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmdkStats {
    pub capacity_sectors: u64,
    pub grains_written: u64,
    pub bytes_written: u64,
}

/// The 512-byte `SparseExtentHeader` (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseExtentHeader {
    pub capacity: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub gd_offset: u64,
    pub overhead: u64,
}

impl SparseExtentHeader {
    pub fn encode(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&FLAGS.to_le_bytes());
        b[12..20].copy_from_slice(&self.capacity.to_le_bytes());
        b[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
        b[28..36].copy_from_slice(&self.descriptor_offset.to_le_bytes());
        b[36..44].copy_from_slice(&self.descriptor_size.to_le_bytes());
        b[44..48].copy_from_slice(&(GTES_PER_GT as u32).to_le_bytes());
        // 48..56 rgdOffset: 0, no redundant directory in a stream.
        b[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        b[64..72].copy_from_slice(&self.overhead.to_le_bytes());
        // 72 uncleanShutdown: 0. 73..77 the new-line detection characters.
        b[73] = b'\n';
        b[74] = b' ';
        b[75] = b'\r';
        b[76] = b'\n';
        b[77..79].copy_from_slice(&COMPRESS_DEFLATE.to_le_bytes());
        b
    }
}

/// A 512-byte marker: `val` (sectors of the metadata that follows), size 0, type.
fn marker(val: u64, kind: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..8].copy_from_slice(&val.to_le_bytes());
    b[12..16].copy_from_slice(&kind.to_le_bytes());
    b
}

/// The embedded descriptor text.
pub fn descriptor(opts: &VmdkOptions, capacity: u64) -> Result<String> {
    if opts.file_name.is_empty() || opts.file_name.contains(['"', '\n', '/']) {
        return Err(VdiskError::BadOption(format!(
            "VMDK extent file name {:?} must be a plain, non-empty file name",
            opts.file_name
        )));
    }
    // BIOS geometry as VMware records it for large disks: 255 heads, 63 sectors.
    let cylinders = (capacity / (255 * 63)).clamp(1, 65535);
    Ok(format!(
        "# Disk DescriptorFile\nversion=1\nCID={cid:08x}\nparentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\n# Extent description\nRW {capacity} SPARSE \"{name}\"\n\n\
         # The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\nddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\nddb.virtualHWVersion = \"4\"\n",
        cid = opts.cid,
        name = opts.file_name,
    ))
}

/// Counts sectors as they are written.
struct Out<W: Write> {
    w: W,
    pos: u64,
}

impl<W: Write> Out<W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w
            .write_all(b)
            .map_err(io_err(format!("writing the VMDK at byte {}", self.pos)))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Zero-pad to the next sector boundary.
    fn pad(&mut self) -> Result<()> {
        let rem = self.pos % SECTOR;
        if rem != 0 {
            let zeros = [0u8; SECTOR as usize];
            let n = usize::try_from(SECTOR - rem).unwrap_or(0);
            self.put(&zeros[..n])?;
        }
        Ok(())
    }

    fn sector(&self) -> u64 {
        self.pos / SECTOR
    }
}

/// Write `disk` as a streamOptimized VMDK to `out` (written sequentially).
pub fn write_vmdk<W: Write>(disk: &RawDisk, opts: &VmdkOptions, out: W) -> Result<VmdkStats> {
    if opts.level > 9 {
        return Err(VdiskError::BadOption(format!(
            "zlib level {} is not 0..=9",
            opts.level
        )));
    }
    let capacity = disk.len() / SECTOR;
    let grains = capacity.div_ceil(GRAIN_SECTORS);
    let tables = grains.div_ceil(GTES_PER_GT);
    let gd_sectors = (tables * 4).div_ceil(SECTOR);
    if tables > u64::from(u32::MAX) {
        return Err(VdiskError::TooLarge {
            format: "VMDK",
            size: disk.len(),
            why: "too many grain tables",
        });
    }
    let desc = descriptor(opts, capacity)?;
    let desc_sectors = (desc.len() as u64).div_ceil(SECTOR);
    // Metadata before the first grain, rounded up to a whole grain.
    let overhead = (1 + desc_sectors).div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS;
    let mut header = SparseExtentHeader {
        capacity,
        descriptor_offset: 1,
        descriptor_size: desc_sectors,
        gd_offset: GD_AT_END,
        overhead,
    };

    let mut o = Out { w: out, pos: 0 };
    o.put(&header.encode())?;
    o.put(desc.as_bytes())?;
    o.pad()?;
    let gap = usize::try_from((overhead - o.sector()) * SECTOR).map_err(|_| too_big(disk))?;
    o.put(&vec![0u8; gap])?;

    let mut gd: Vec<u32> = Vec::with_capacity(usize::try_from(tables).unwrap_or(0));
    let mut gt = vec![0u32; GTES_PER_GT as usize];
    let mut table = 0u64;
    let mut written = 0u64;
    // Grains of the current table, compressed in parallel once it is complete.
    let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
    let flush_table = |o: &mut Out<W>,
                       gd: &mut Vec<u32>,
                       gt: &mut Vec<u32>,
                       pending: &mut Vec<(u64, Vec<u8>)>,
                       written: &mut u64,
                       table: u64|
     -> Result<()> {
        for (grain, data) in compress_all(pending, opts.level)? {
            let idx = usize::try_from(grain - table * GTES_PER_GT).map_err(|_| too_big(disk))?;
            gt[idx] = u32::try_from(o.sector()).map_err(|_| too_big(disk))?;
            let mut head = [0u8; GRAIN_HEADER];
            head[0..8].copy_from_slice(&(grain * GRAIN_SECTORS).to_le_bytes());
            let size = u32::try_from(data.len()).map_err(|_| too_big(disk))?;
            head[8..12].copy_from_slice(&size.to_le_bytes());
            o.put(&head)?;
            o.put(&data)?;
            o.pad()?;
            *written += 1;
        }
        pending.clear();
        o.put(&marker(GTES_PER_GT * 4 / SECTOR, MARKER_GT))?;
        gd.push(u32::try_from(o.sector()).map_err(|_| too_big(disk))?);
        let bytes: Vec<u8> = gt.iter().flat_map(|e| e.to_le_bytes()).collect();
        o.put(&bytes)?;
        gt.iter_mut().for_each(|e| *e = 0);
        Ok(())
    };

    disk.for_each_nonzero(GRAIN_BYTES, |off, bytes| {
        let grain = off / GRAIN_BYTES;
        while grain / GTES_PER_GT > table {
            flush_table(&mut o, &mut gd, &mut gt, &mut pending, &mut written, table)?;
            table += 1;
        }
        // A short last grain is compressed as a whole, zero-padded grain.
        let mut g = bytes.to_vec();
        g.resize(GRAIN_BYTES as usize, 0);
        pending.push((grain, g));
        Ok(())
    })?;
    while table < tables {
        flush_table(&mut o, &mut gd, &mut gt, &mut pending, &mut written, table)?;
        table += 1;
    }

    o.put(&marker(gd_sectors, MARKER_GD))?;
    header.gd_offset = o.sector();
    let bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    o.put(&bytes)?;
    o.pad()?;
    o.put(&marker(1, MARKER_FOOTER))?;
    o.put(&header.encode())?;
    o.put(&marker(0, MARKER_EOS))?;
    o.w.flush().map_err(io_err("flushing the VMDK"))?;
    Ok(VmdkStats {
        capacity_sectors: capacity,
        grains_written: written,
        bytes_written: o.pos,
    })
}

fn too_big(disk: &RawDisk) -> VdiskError {
    VdiskError::TooLarge {
        format: "VMDK",
        size: disk.len(),
        why: "sector offsets exceed 32 bits",
    }
}

/// A grain number and its (raw or compressed) bytes.
type Grain = (u64, Vec<u8>);

/// Compress grains on every core; the result keeps the input order.
fn compress_all(grains: &[Grain], level: u32) -> Result<Vec<Grain>> {
    if grains.is_empty() {
        return Ok(Vec::new());
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let per = grains.len().div_ceil(threads);
    let parts: Vec<Result<Vec<Grain>>> = std::thread::scope(|s| {
        let handles: Vec<_> = grains
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(g, data)| Ok((*g, deflate(data, level)?)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(VdiskError::BadOption(
                        "a compression thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(grains.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

fn deflate(data: &[u8], level: u32) -> Result<Vec<u8>> {
    let mut e = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::new(level));
    e.write_all(data).map_err(io_err("compressing a grain"))?;
    e.finish().map_err(io_err("compressing a grain"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = SparseExtentHeader {
            capacity: 0x0102,
            descriptor_offset: 1,
            descriptor_size: 2,
            gd_offset: GD_AT_END,
            overhead: 128,
        }
        .encode();
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8"));
        let cases: &[(usize, u64)] = &[
            (12, 0x0102),
            (20, GRAIN_SECTORS),
            (28, 1),
            (36, 2),
            (48, 0),
            (56, GD_AT_END),
            (64, 128),
        ];
        for (off, want) in cases {
            assert_eq!(u64_at(*off), *want, "field at {off}");
        }
        assert_eq!(&h[0..4], b"KDMV");
        assert_eq!(&h[73..77], b"\n \r\n");
        assert_eq!(u16::from_le_bytes([h[77], h[78]]), COMPRESS_DEFLATE);
        assert!(h[79..].iter().all(|&b| b == 0));
    }

    #[test]
    fn descriptor_rejects_odd_names() {
        for bad in ["", "a\"b", "dir/x.vmdk", "x\n"] {
            let o = VmdkOptions {
                cid: 1,
                file_name: bad.into(),
                level: 6,
            };
            assert!(descriptor(&o, 2048).is_err(), "{bad:?}");
        }
    }
}
