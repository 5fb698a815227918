//! Finding the non-zero 4 KiB blocks of a file: all-zero blocks become
//! holes.

use std::io::Read;

use basalt_tree::Content;

use crate::error::Error;
use crate::format::BLOCK_SIZE;

const BS: usize = BLOCK_SIZE as usize;
static ZERO: [u8; BS] = [0; BS];
/// Bytes read per call when scanning stored contents.
const SCAN_CHUNK: usize = 1 << 20;

/// Runs `(first logical block, block count)` of blocks that hold a non-zero
/// byte, in order. The tail of the last partial block counts as zeros.
pub fn data_runs(content: &Content, path: &str) -> Result<Vec<(u64, u64)>, Error> {
    let mut runs = RunBuilder::default();
    match content {
        Content::Inline(bytes) => runs.feed(bytes),
        Content::Stored { len, .. } => {
            let err = |source| Error::ReadContent {
                path: path.to_string(),
                source,
            };
            let mut r = content.open().map_err(err)?;
            let mut buf = vec![0u8; SCAN_CHUNK];
            let mut total = 0u64;
            loop {
                // Fill whole chunks so block boundaries line up.
                let mut filled = 0;
                while filled < buf.len() {
                    let n = r.read(&mut buf[filled..]).map_err(err)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                runs.feed(&buf[..filled]);
                total += filled as u64;
                if filled < buf.len() {
                    break;
                }
            }
            if total != *len {
                return Err(Error::ContentChanged {
                    path: path.to_string(),
                    expected: *len,
                });
            }
        }
    }
    Ok(runs.finish())
}

/// Runs `(first logical block, count)` of non-zero blocks.
pub type Runs = Vec<(u64, u64)>;
type Indexed = (usize, Result<Runs, Error>);

/// [`data_runs`] of many files, on up to 8 threads; results in input
/// order, the first error (in input order) wins.
pub fn data_runs_all(files: &[(&str, &Content)]) -> Result<Vec<Runs>, Error> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads == 1 || files.len() < 64 {
        return files.iter().map(|(p, c)| data_runs(c, p)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Runs, Error>>> = Vec::new();
    results.resize_with(files.len(), || None);
    let per_thread: Vec<Vec<Indexed>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((p, c)) = files.get(i) else { break };
                        out.push((i, data_runs(c, p)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in per_thread.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .zip(files)
        .map(|(r, (p, _))| {
            r.unwrap_or_else(|| {
                Err(Error::ContentChanged {
                    path: p.to_string(),
                    expected: 0,
                })
            })
        })
        .collect()
}

#[derive(Default)]
struct RunBuilder {
    next_block: u64,
    runs: Vec<(u64, u64)>,
}

impl RunBuilder {
    /// Feed bytes that start at block `next_block` (a multiple of the
    /// block size, except possibly the final call).
    fn feed(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(BS) {
            if chunk != &ZERO[..chunk.len()] {
                match self.runs.last_mut() {
                    Some(last) if last.0 + last.1 == self.next_block => last.1 += 1,
                    _ => self.runs.push((self.next_block, 1)),
                }
            }
            self.next_block += 1;
        }
    }

    fn finish(self) -> Vec<(u64, u64)> {
        self.runs
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    fn pattern(blocks: &[u8], tail: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for &b in blocks {
            v.extend(std::iter::repeat_n(b, BS));
        }
        v.truncate(v.len() - tail);
        v
    }

    #[test]
    fn runs_table() {
        let cases: Vec<(Vec<u8>, Vec<(u64, u64)>)> = vec![
            (vec![], vec![]),
            (vec![0; 10], vec![]),
            (vec![1], vec![(0, 1)]),
            (pattern(&[1, 1, 0, 1], 0), vec![(0, 2), (3, 1)]),
            (pattern(&[0, 0, 1, 0], 100), vec![(2, 1)]),
            (pattern(&[1, 0, 0, 0, 1], 4095), vec![(0, 1), (4, 1)]),
        ];
        for (bytes, want) in cases {
            let got = data_runs(&Content::from_bytes(bytes.clone()), "/x").expect("scan");
            assert_eq!(got, want, "{} bytes", bytes.len());
        }
    }

    #[test]
    fn parallel_scan_keeps_order() {
        let contents: Vec<Content> = (0..200u8)
            .map(|i| Content::from_bytes(pattern(&[i % 2, 1, 0, i % 3], 0)))
            .collect();
        let files: Vec<(&str, &Content)> = contents.iter().map(|c| ("/f", c)).collect();
        let all = data_runs_all(&files).expect("scan");
        for (c, got) in contents.iter().zip(all) {
            assert_eq!(got, data_runs(c, "/f").expect("scan"));
        }
    }

    #[test]
    fn stored_content_matches_inline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = basalt_tree::ContentStore::new(dir.path()).expect("store");
        let mut bytes = pattern(&[1, 0, 2, 0, 0, 3], 7);
        bytes.extend(vec![0u8; 3 * SCAN_CHUNK]);
        bytes.extend(vec![9u8; 5]);
        let stored = store.put_bytes(&bytes).expect("put");
        assert!(matches!(stored, Content::Stored { .. }));
        let a = data_runs(&stored, "/s").expect("scan");
        let b = data_runs(&Content::from_bytes(bytes.clone()), "/s").expect("scan");
        assert_eq!(a, b);
        assert_eq!(
            a.last().map(|r| r.0),
            Some((bytes.len() as u64 - 1) / BLOCK_SIZE)
        );
    }
}
