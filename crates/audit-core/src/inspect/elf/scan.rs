//! Pattern scans over a byte stream that arrives in arbitrary chunks.
//!
//! A match may straddle two chunks. Each [`StreamScan`] keeps the last `overlap - 1` bytes
//! it saw and re-checks the seam, so a match is reported exactly once whatever the chunking.

use std::ops::Range;

/// A scan of one file range.
pub(crate) struct StreamScan {
    /// File range scanned.
    pub(crate) range: Range<u64>,
    /// Next file offset not yet scanned.
    next: u64,
    /// The bytes just before `next` (at most `overlap - 1`).
    carry: Vec<u8>,
    /// The carry as it was when the last chunk was fed, and the offset it ended at: the
    /// passed part of a match that straddles that chunk's start.
    held: Vec<u8>,
    held_end: u64,
    /// Longest match length.
    overlap: usize,
    /// True when some of the range passed before the scan started or was skipped.
    pub(crate) gap: bool,
}

impl StreamScan {
    pub(crate) fn new(range: Range<u64>, overlap: usize, stream_pos: u64) -> Self {
        // An empty range cannot miss anything.
        let gap = stream_pos > range.start && range.start < range.end;
        Self {
            next: range.start.max(stream_pos),
            range,
            carry: Vec::new(),
            held: Vec::new(),
            held_end: 0,
            overlap: overlap.max(1),
            gap,
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.next >= self.range.end
    }

    /// Feeds the chunk `data` starting at file offset `start`. `find(slice, abs_offset, emit)`
    /// must call `emit(abs_start, len, tag)` for every match lying entirely inside `slice`; this
    /// function adds the matches that straddle the previous chunk and reports each match once,
    /// as sorted absolute start offsets.
    pub(crate) fn feed(
        &mut self,
        start: u64,
        data: &[u8],
        mut find: impl FnMut(&[u8], u64, &mut dyn FnMut(u64, usize, u32)),
    ) -> Vec<(u64, u32)> {
        let end = start + data.len() as u64;
        let lo = self.range.start.max(start).max(self.next);
        let hi = self.range.end.min(end);
        let mut hits = Vec::new();
        if lo >= hi {
            return hits;
        }
        if lo > self.next {
            // Bytes between `next` and `lo` never reached us.
            self.gap = true;
            self.carry.clear();
        }
        let region = &data[(lo - start) as usize..(hi - start) as usize];
        self.held.clear();
        self.held.extend_from_slice(&self.carry);
        self.held_end = lo;
        if !self.carry.is_empty() {
            let take = region.len().min(self.overlap - 1);
            let mut seam = Vec::with_capacity(self.carry.len() + take);
            seam.extend_from_slice(&self.carry);
            seam.extend_from_slice(&region[..take]);
            let seam_start = lo - self.carry.len() as u64;
            // Only matches that cross `lo`: those wholly before it were reported with the
            // previous chunk, those wholly after it are found in `region` below.
            find(&seam, seam_start, &mut |abs, len, tag| {
                if abs < lo && abs + len as u64 > lo {
                    hits.push((abs, tag));
                }
            });
        }
        find(region, lo, &mut |abs, _, tag| hits.push((abs, tag)));
        keep_last(&mut self.carry, region, self.overlap - 1);
        self.next = hi;
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}

impl StreamScan {
    /// The bytes from `from` up to the start of the chunk last fed, for a match reported at
    /// `from` that straddles that start: they had passed when the match was seen, and a
    /// sparse capture can only keep them from here. `None` when they are not all held.
    pub(crate) fn held_from(&self, from: u64) -> Option<&[u8]> {
        let held_start = self.held_end - self.held.len() as u64;
        (from >= held_start && from < self.held_end)
            .then(|| &self.held[(from - held_start) as usize..])
    }
}

/// Appends `data` to `tail` and keeps only the last `keep` bytes of the two.
pub(crate) fn keep_last(tail: &mut Vec<u8>, data: &[u8], keep: usize) {
    if data.len() >= keep {
        tail.clear();
        tail.extend_from_slice(&data[data.len() - keep..]);
    } else {
        tail.extend_from_slice(data);
        let excess = tail.len().saturating_sub(keep);
        tail.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Emit<'a> = &'a mut dyn FnMut(u64, usize, u32);

    fn finder(pat: &'static [u8]) -> impl FnMut(&[u8], u64, Emit<'_>) {
        move |s: &[u8], at: u64, emit: Emit<'_>| {
            for i in memchr::memmem::find_iter(s, pat) {
                emit(at + i as u64, pat.len(), 0);
            }
        }
    }

    #[test]
    fn finds_matches_across_any_chunking() {
        let mut data = vec![b'.'; 5000];
        let pat: &[u8] = b"NEEDLE";
        let spots = [0usize, 10, 511, 1020, 2047, 4994];
        for &p in &spots {
            data[p..p + pat.len()].copy_from_slice(pat);
        }
        for chunk in [1usize, 2, 3, 5, 7, 64, 1000, 5000] {
            let mut s = StreamScan::new(0..5000, pat.len(), 0);
            let mut all = Vec::new();
            for (i, c) in data.chunks(chunk).enumerate() {
                all.extend(
                    s.feed((i * chunk) as u64, c, finder(b"NEEDLE"))
                        .into_iter()
                        .map(|h| h.0),
                );
            }
            let want: Vec<u64> = spots.iter().map(|&p| p as u64).collect();
            assert_eq!(all, want, "chunk size {chunk}");
            assert!(s.done());
        }
    }

    /// A match across a seam: the scan still holds the part that passed with the previous
    /// chunk, from the match's start, and nothing before its carry.
    #[test]
    fn holds_the_passed_part_of_a_straddling_match() {
        let data = b"....NEEDLE....";
        let mut s = StreamScan::new(0..data.len() as u64, 6, 0);
        assert!(s.feed(0, &data[..7], finder(b"NEEDLE")).is_empty());
        assert_eq!(s.feed(7, &data[7..], finder(b"NEEDLE")), [(4, 0)]);
        assert_eq!(s.held_from(4), Some(&b"NEE"[..]));
        assert_eq!(s.held_from(6), Some(&b"E"[..]));
        assert_eq!(s.held_from(1), None, "before the carry");
        assert_eq!(s.held_from(7), None, "not passed");
    }

    #[test]
    fn short_matches_inside_the_carry_are_not_repeated() {
        let pats: [&[u8]; 2] = [b"LONGPATTERN!", b"ab"];
        let data = b"....ab....LONGPATTERN!..ab".to_vec();
        for chunk in 1..data.len() {
            let mut s = StreamScan::new(0..data.len() as u64, 12, 0);
            let mut all = Vec::new();
            for (i, c) in data.chunks(chunk).enumerate() {
                all.extend(s.feed((i * chunk) as u64, c, |sl, at, emit| {
                    for (tag, p) in pats.iter().enumerate() {
                        for k in memchr::memmem::find_iter(sl, p) {
                            emit(at + k as u64, p.len(), tag as u32);
                        }
                    }
                }));
            }
            assert_eq!(all, vec![(4, 1), (10, 0), (24, 1)], "chunk {chunk}");
        }
    }

    #[test]
    fn respects_range_and_reports_gaps() {
        let data = b"xxNEEDLExxNEEDLExx".to_vec();
        let mut s = StreamScan::new(4..18, 6, 0);
        let hits = s.feed(0, &data, finder(b"NEEDLE"));
        assert_eq!(hits, vec![(10, 0)]);
        let s2 = StreamScan::new(0..10, 6, 5);
        assert!(s2.gap);
    }
}
