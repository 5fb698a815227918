//! Converting a raw image to qcow2 in one streaming pass: the header goes
//! in cluster 0, non-zero data clusters follow in guest order, and the
//! metadata (L2 tables, L1 table, refcount table, refcount blocks) goes at
//! the end, once the number of data clusters is known.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use crate::error::{Qcow2Error, Result, io_err};
use crate::extents::data_extents;
use crate::header::{CLUSTER_SIZE, Header, OFLAG_COPIED};

/// Guest clusters read per I/O (4 MiB).
const READ_CLUSTERS: u64 = 64;
/// L2 entries per table: 8 bytes each.
const L2_ENTRIES: u64 = CLUSTER_SIZE / 8;
/// 16-bit refcounts per refcount block.
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER_SIZE / 2;
/// Host offsets must fit bits 9..=55 of L1/L2 entries.
const MAX_HOST_BYTES: u64 = 1 << 56;
const C: usize = CLUSTER_SIZE as usize;

/// What a conversion produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcow2Stats {
    pub virtual_size: u64,
    /// Guest clusters stored (the others read as zeros).
    pub data_clusters: u64,
    /// Clusters in the qcow2 file, metadata included.
    pub total_clusters: u64,
}

impl Qcow2Stats {
    pub fn file_size(&self) -> u64 {
        self.total_clusters * CLUSTER_SIZE
    }
}

/// True if every byte of `b` is zero (compared 16 bytes at a time).
fn is_zero(b: &[u8]) -> bool {
    let mut it = b.chunks_exact(16);
    it.by_ref()
        .all(|c| <[u8; 16]>::try_from(c).is_ok_and(|a| u128::from_ne_bytes(a) == 0))
        && it.remainder().iter().all(|&x| x == 0)
}

/// Guest cluster ranges covering the data extents, merged.
fn cluster_ranges(extents: &[Range<u64>], guest_clusters: u64) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for e in extents {
        let r = e.start / CLUSTER_SIZE..e.end.div_ceil(CLUSTER_SIZE).min(guest_clusters);
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Refcount table and block cluster counts for `base` other clusters
/// (the blocks must count themselves and the table too).
fn refcount_clusters(base: u64) -> (u64, u64) {
    let (mut table, mut blocks) = (1u64, 1u64);
    loop {
        let total = base + table + blocks;
        let b = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let t = (b * 8).div_ceil(CLUSTER_SIZE);
        if (t, b) == (table, blocks) {
            return (table, blocks);
        }
        (table, blocks) = (t, b);
    }
}

fn entry_table(entries: &[(u64, u64)], clusters: u64) -> Vec<u8> {
    let mut t = vec![0u8; (clusters * CLUSTER_SIZE) as usize];
    for &(slot, value) in entries {
        let at = (slot * 8) as usize;
        t[at..at + 8].copy_from_slice(&value.to_be_bytes());
    }
    t
}

/// Write `raw` as a qcow2 image into `out` (from byte 0; `out` is
/// truncated to the image's size). Deterministic: same raw bytes, same
/// qcow2 bytes.
pub fn write_qcow2(raw: &File, out: &File) -> Result<Qcow2Stats> {
    let len = raw
        .metadata()
        .map_err(io_err("reading the raw image size"))?
        .len();
    if len == 0 {
        return Err(Qcow2Error::Empty);
    }
    if len % 512 != 0 {
        return Err(Qcow2Error::UnalignedSize(len));
    }
    let guest_clusters = len.div_ceil(CLUSTER_SIZE);
    let l1_size = guest_clusters.div_ceil(L2_ENTRIES);
    let l1_size_u32 = u32::try_from(l1_size).map_err(|_| Qcow2Error::TooLarge(len))?;

    // Data clusters, streamed right after the header cluster: each 4 MiB
    // read is compacted in place (zero clusters dropped) and written with
    // one positional write.
    let mut host = CLUSTER_SIZE;
    let mut mapped: Vec<u64> = Vec::new();
    let mut buf = vec![0u8; (READ_CLUSTERS * CLUSTER_SIZE) as usize];
    for r in cluster_ranges(&data_extents(raw, len)?, guest_clusters) {
        let mut g = r.start;
        while g < r.end {
            let n = (r.end - g).min(READ_CLUSTERS);
            let start = g * CLUSTER_SIZE;
            let want = (n * CLUSTER_SIZE).min(len - start) as usize;
            buf[want..].fill(0);
            raw.read_exact_at(&mut buf[..want], start)
                .map_err(io_err(format!("reading the raw image at byte {start}")))?;
            let mut kept = 0usize;
            for i in 0..n as usize {
                let cluster = &buf[i * C..(i + 1) * C];
                if is_zero(cluster) {
                    continue;
                }
                if kept != i {
                    buf.copy_within(i * C..(i + 1) * C, kept * C);
                }
                kept += 1;
                mapped.push(g + i as u64);
            }
            out.write_all_at(&buf[..kept * C], host)
                .map_err(io_err("writing qcow2 data"))?;
            host += (kept * C) as u64;
            g += n;
        }
    }
    let mut w = BufWriter::with_capacity(4 << 20, out);
    w.seek(SeekFrom::Start(host))
        .map_err(io_err("seeking in the qcow2 file"))?;

    // Metadata layout after the data.
    let data_clusters = mapped.len() as u64;
    let mut l1_entries: Vec<u64> = mapped.iter().map(|g| g / L2_ENTRIES).collect();
    l1_entries.dedup();
    let l2_first = 1 + data_clusters;
    let l1_first = l2_first + l1_entries.len() as u64;
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER_SIZE);
    let rt_first = l1_first + l1_clusters;
    let (rt_clusters, rb_clusters) = refcount_clusters(rt_first);
    let rb_first = rt_first + rt_clusters;
    let total = rb_first + rb_clusters;
    if total
        .checked_mul(CLUSTER_SIZE)
        .is_none_or(|b| b >= MAX_HOST_BYTES)
    {
        return Err(Qcow2Error::TooLarge(len));
    }

    // L2 tables, one per L1 entry in use, in L1 order.
    let mut next = 0usize;
    for (k, &l1) in l1_entries.iter().enumerate() {
        let mut slots = Vec::new();
        while next < mapped.len() && mapped[next] / L2_ENTRIES == l1 {
            slots.push((
                mapped[next] % L2_ENTRIES,
                ((1 + next as u64) * CLUSTER_SIZE) | OFLAG_COPIED,
            ));
            next += 1;
        }
        w.write_all(&entry_table(&slots, 1))
            .map_err(io_err(format!("writing L2 table {k}")))?;
    }
    let l1: Vec<(u64, u64)> = l1_entries
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, ((l2_first + k as u64) * CLUSTER_SIZE) | OFLAG_COPIED))
        .collect();
    w.write_all(&entry_table(&l1, l1_clusters))
        .map_err(io_err("writing the L1 table"))?;
    let rt: Vec<(u64, u64)> = (0..rb_clusters)
        .map(|k| (k, (rb_first + k) * CLUSTER_SIZE))
        .collect();
    w.write_all(&entry_table(&rt, rt_clusters))
        .map_err(io_err("writing the refcount table"))?;
    let mut refcounts = vec![0u8; (rb_clusters * CLUSTER_SIZE) as usize];
    for c in 0..total as usize {
        refcounts[2 * c..2 * c + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    w.write_all(&refcounts)
        .map_err(io_err("writing the refcount blocks"))?;

    let header = Header {
        size: len,
        l1_size: l1_size_u32,
        l1_table_offset: l1_first * CLUSTER_SIZE,
        refcount_table_offset: rt_first * CLUSTER_SIZE,
        refcount_table_clusters: u32::try_from(rt_clusters)
            .map_err(|_| Qcow2Error::TooLarge(len))?,
    };
    let mut cluster0 = vec![0u8; C];
    let h = header.encode();
    cluster0[..h.len()].copy_from_slice(&h);
    w.seek(SeekFrom::Start(0))
        .map_err(io_err("seeking to the qcow2 header"))?;
    w.write_all(&cluster0)
        .map_err(io_err("writing the qcow2 header"))?;
    w.flush().map_err(io_err("flushing the qcow2 file"))?;
    drop(w);
    out.set_len(total * CLUSTER_SIZE)
        .map_err(io_err("setting the qcow2 file size"))?;
    Ok(Qcow2Stats {
        virtual_size: len,
        data_clusters,
        total_clusters: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_zero_table() {
        let mut b = vec![0u8; 100];
        assert!(is_zero(&b) && is_zero(&[]));
        for at in [0, 15, 16, 95, 96, 99] {
            b[at] = 1;
            assert!(!is_zero(&b), "{at}");
            b[at] = 0;
        }
    }

    #[test]
    fn refcount_fixpoint_table() {
        // (other clusters, table clusters, block clusters)
        let cases = [
            (1, 1, 1),
            (32_766, 1, 1),
            (32_767, 1, 2),
            (65_532, 1, 2),
            (65_533, 1, 2),
            (65_534, 1, 3),
            (268_435_000, 2, 8193),
        ];
        for (base, t, b) in cases {
            let (gt, gb) = refcount_clusters(base);
            assert_eq!((gt, gb), (t, b), "{base}");
            assert!((base + gt + gb) <= gb * REFCOUNTS_PER_BLOCK);
            assert!(gb * 8 <= gt * CLUSTER_SIZE);
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init, clippy::type_complexity)]
    fn cluster_ranges_merge() {
        let c = CLUSTER_SIZE;
        let cases: Vec<(Vec<Range<u64>>, Vec<Range<u64>>)> = vec![
            (vec![0..1], vec![0..1]),
            (vec![0..4096, 8192..12288], vec![0..1]),
            (vec![0..c + 1, 3 * c..3 * c + 5], vec![0..2, 3..4]),
            (vec![c - 1..c + 1, c + 4096..2 * c], vec![0..2]),
            (vec![9 * c..100 * c], vec![9..10]),
        ];
        for (ext, want) in cases {
            assert_eq!(cluster_ranges(&ext, 10), want, "{ext:?}");
        }
    }
}
