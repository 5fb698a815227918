//! An order-preserving parallel map: the tree's producers and consumers
//! (cache checks, depmod) fan work out over a few cores and need the results
//! back in input order, as a sequential loop would give them.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Most worker threads [`map_ordered`] starts.
const MAX_WORKERS: usize = 8;

/// `f` applied to every item on up to [`MAX_WORKERS`] threads (at most one
/// per core and per item); the results are in `items` order. A panic in `f`
/// is resumed on the caller's thread.
pub fn map_ordered<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            break;
                        };
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::map_ordered;

    #[test]
    fn keeps_input_order() {
        for n in [0usize, 1, 7, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let out = map_ordered(&items, |x| x * 3);
            assert_eq!(
                out,
                items.iter().map(|x| x * 3).collect::<Vec<_>>(),
                "n={n}"
            );
        }
    }
}
