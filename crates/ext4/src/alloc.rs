//! Sequential block allocator that steps over the fixed metadata ranges.

/// Hands out blocks from a cursor that only moves forward, skipping the
/// reserved `[start, end)` ranges (sorted). Every allocation is recorded.
#[derive(Debug)]
pub struct Allocator {
    cursor: u64,
    fixed: Vec<(u64, u64)>,
    next_fixed: usize,
    /// Allocated runs `(start, len)` in increasing order.
    pub runs: Vec<(u64, u64)>,
}

impl Allocator {
    pub fn new(fixed: Vec<(u64, u64)>) -> Allocator {
        let mut a = Allocator {
            cursor: 0,
            fixed,
            next_fixed: 0,
            runs: Vec::new(),
        };
        a.skip_fixed();
        a
    }

    /// The first block never handed out (one past the highest used block,
    /// counting fixed ranges passed so far).
    pub fn end(&self) -> u64 {
        self.cursor
    }

    fn skip_fixed(&mut self) {
        while let Some(&(s, e)) = self.fixed.get(self.next_fixed) {
            if self.cursor >= e {
                self.next_fixed += 1;
            } else if self.cursor >= s {
                self.cursor = e;
                self.next_fixed += 1;
            } else {
                break;
            }
        }
    }

    fn record(&mut self, start: u64, len: u64) {
        if let Some(last) = self.runs.last_mut()
            && last.0 + last.1 == start
        {
            last.1 += len;
            return;
        }
        self.runs.push((start, len));
    }

    /// Up to `max` contiguous blocks (fewer if a fixed range interrupts).
    pub fn run(&mut self, max: u64) -> (u64, u64) {
        self.skip_fixed();
        let limit = self.fixed.get(self.next_fixed).map_or(u64::MAX, |r| r.0);
        let len = max.min(limit - self.cursor);
        let start = self.cursor;
        self.cursor += len;
        self.record(start, len);
        (start, len)
    }

    /// Exactly `n` contiguous blocks, skipping ahead past fixed ranges if
    /// needed (the skipped blocks stay free).
    pub fn contiguous(&mut self, n: u64) -> u64 {
        loop {
            self.skip_fixed();
            let limit = self.fixed.get(self.next_fixed).map_or(u64::MAX, |r| r.0);
            if limit - self.cursor >= n {
                let start = self.cursor;
                self.cursor += n;
                self.record(start, n);
                return start;
            }
            self.cursor = limit;
        }
    }

    /// `n` blocks as a list of runs.
    pub fn runs_of(&mut self, mut n: u64, max_run: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        while n > 0 {
            let (s, l) = self.run(n.min(max_run));
            out.push((s, l));
            n -= l;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_table() {
        let mut a = Allocator::new(vec![(0, 2), (10, 12)]);
        assert_eq!(a.run(3), (2, 3));
        assert_eq!(a.runs_of(7, 100), vec![(5, 5), (12, 2)]);
        assert_eq!(a.contiguous(2), 14);
        let mut b = Allocator::new(vec![(0, 2), (10, 12)]);
        b.run(5);
        assert_eq!(b.contiguous(4), 12, "skips to after the fixed range");
        assert_eq!(b.runs, vec![(2, 5), (12, 4)]);
        assert_eq!(b.end(), 16);
        let mut c = Allocator::new(vec![(0, 2)]);
        assert_eq!(c.runs_of(5, 2), vec![(2, 2), (4, 2), (6, 1)]);
        assert_eq!(c.runs, vec![(2, 5)]);
    }
}
