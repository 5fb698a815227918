//! Loading the modules of one list side by side.
//!
//! Each list line may name the earlier modules it needs (`needs=`, written
//! by the builder from modules.dep and the pre-softdeps). A module whose
//! needs are loaded can go while others are still loading: with one
//! worker per CPU, the independent chains of the disk list (virtio_blk;
//! scsi_mod and sd_mod; dm-mod, dm-bufio and dm-verity; jbd2, mbcache and
//! ext4; libata, nvme-core) load at the same time. A list without `needs=`
//! fields loads one module at a time, in order, as before.
//!
//! An entry with `async_probe`, and every entry after one, starts only
//! once everything before it is done: a synchronous load would otherwise
//! wait for the background probes (`loadorder.rs`), and the list order
//! is what keeps those probes last.

use std::sync::{Condvar, Mutex, PoisonError};

/// What the scheduler needs to know of one list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Indices of the earlier entries this one must follow.
    pub needs: Vec<usize>,
    /// Whether it is loaded with `async_probe`.
    pub barrier: bool,
}

/// Whether entry `i` may start, given which are done.
fn ready(jobs: &[Job], done: &[bool], i: usize, sequential_from: usize) -> bool {
    if i >= sequential_from {
        return done[..i].iter().all(|d| *d);
    }
    // A need that is not an earlier entry cannot be met by waiting: the
    // parser never makes one, and PID 1 must not hang on it.
    jobs[i].needs.iter().all(|&n| n >= i || done[n])
}

/// Runs `load` on every job's index with up to `workers` threads, each job
/// after the ones it needs (see the module documentation); returns the
/// results in list order. A job runs even when one it needs failed (the
/// kernel then reports what is missing, as a sequential load would).
pub fn run<T: Send>(jobs: &[Job], workers: usize, load: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let n = jobs.len();
    // From the first barrier on, one at a time in list order.
    let sequential_from = jobs.iter().position(|j| j.barrier).unwrap_or(n);
    let state = Mutex::new((vec![false; n], vec![false; n], Vec::new()));
    let wake = Condvar::new();
    let worker = || {
        loop {
            let next = {
                let mut g = state.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let (started, done, _) = &mut *g;
                    if started.iter().all(|s| *s) {
                        break None;
                    }
                    if let Some(i) =
                        (0..n).find(|&i| !started[i] && ready(jobs, done, i, sequential_from))
                    {
                        started[i] = true;
                        break Some(i);
                    }
                    g = wake.wait(g).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some(i) = next else { return };
            let out = load(i);
            let mut g = state.lock().unwrap_or_else(PoisonError::into_inner);
            g.1[i] = true;
            g.2.push((i, out));
            drop(g);
            wake.notify_all();
        }
    };
    let workers = workers.clamp(1, n.max(1));
    if workers == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(worker);
            }
        });
    }
    let (_, _, mut outs) = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    outs.sort_by_key(|(i, _)| *i);
    outs.into_iter().map(|(_, o)| o).collect()
}

/// How many modules to load at once: one per CPU /init may run on, at
/// most four.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(needs: &[usize], barrier: bool) -> Job {
        Job {
            needs: needs.to_vec(),
            barrier,
        }
    }

    /// Runs `jobs` and checks, for every job, that what it needed (and, from
    /// the first barrier on, everything before it) had finished first.
    fn check(jobs: &[Job], workers: usize) {
        let log = Mutex::new(Vec::new());
        let out = run(jobs, workers, |i| {
            log.lock().unwrap().push(("start", i));
            std::thread::sleep(Duration::from_millis(2 + (i as u64 * 7) % 5));
            log.lock().unwrap().push(("end", i));
            i * 10
        });
        assert_eq!(out, (0..jobs.len()).map(|i| i * 10).collect::<Vec<_>>());
        let log = log.into_inner().unwrap();
        let at = |what, i| log.iter().position(|e| *e == (what, i)).unwrap();
        let first_barrier = jobs.iter().position(|j| j.barrier).unwrap_or(jobs.len());
        for (i, j) in jobs.iter().enumerate() {
            for &n in &j.needs {
                assert!(
                    at("end", n) < at("start", i),
                    "{i} started before {n} ended"
                );
            }
            if i >= first_barrier {
                for k in 0..i {
                    assert!(
                        at("end", k) < at("start", i),
                        "{i} started before {k} ended"
                    );
                }
            }
        }
    }

    #[test]
    fn needs_and_barriers_hold_for_any_worker_count() {
        let lists: &[&[Job]] = &[
            &[],
            &[job(&[], false)],
            // two chains and a join: 0 -> 1, 2 -> 3, 4 needs 1 and 3
            &[
                job(&[], false),
                job(&[0], false),
                job(&[], false),
                job(&[2], false),
                job(&[1, 3], false),
            ],
            // async ones last, a module needing one after it
            &[
                job(&[], false),
                job(&[], false),
                job(&[0], true),
                job(&[], true),
                job(&[3], false),
            ],
        ];
        for jobs in lists {
            for workers in [1, 2, 4] {
                check(jobs, workers);
            }
        }
    }

    #[test]
    fn independent_jobs_overlap() {
        let jobs = [job(&[], false), job(&[], false)];
        let running = Mutex::new((0usize, 0usize));
        run(&jobs, 2, |_| {
            {
                let mut g = running.lock().unwrap();
                g.0 += 1;
                g.1 = g.1.max(g.0);
            }
            std::thread::sleep(Duration::from_millis(50));
            running.lock().unwrap().0 -= 1;
        });
        assert_eq!(running.into_inner().unwrap().1, 2);
    }
}
