//! Sparse capture of a file that streams by once.
//!
//! A layer is a compressed tar stream: a file's bytes pass exactly once and cannot be
//! revisited. ELF inspection needs scattered pieces of a file (headers at the start, the
//! section table wherever the linker put it, the dynamic section, the Go build info in the
//! data segment). [`Capture`] keeps a buffer as large as the file but writes only the byte
//! ranges someone asked for before they passed. Files up to a threshold are kept whole in a
//! `Vec`; larger ones live in an anonymous memory map whose untouched pages are never
//! resident, so resident memory is the captured bytes, not the file size.

use std::ops::Range;

/// A set of disjoint, sorted, non-adjacent half-open ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<Range<u64>>,
}

impl RangeSet {
    pub(crate) fn insert(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        // Find the first range that could touch `r`.
        let i = self.ranges.partition_point(|x| x.end < r.start);
        let mut start = r.start;
        let mut end = r.end;
        let mut j = i;
        while j < self.ranges.len() && self.ranges[j].start <= end {
            start = start.min(self.ranges[j].start);
            end = end.max(self.ranges[j].end);
            j += 1;
        }
        self.ranges.splice(i..j, std::iter::once(start..end));
    }

    /// Whether every byte of `r` is in the set (an empty range is covered).
    pub(crate) fn covers(&self, r: &Range<u64>) -> bool {
        if r.start >= r.end {
            return true;
        }
        let i = self.ranges.partition_point(|x| x.end <= r.start);
        self.ranges
            .get(i)
            .is_some_and(|x| x.start <= r.start && x.end >= r.end)
    }

    /// The parts of the set inside `within`, in order.
    pub(crate) fn intersecting(&self, within: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let i = self.ranges.partition_point(|x| x.end <= within.start);
        self.ranges[i..]
            .iter()
            .take_while(move |x| x.start < within.end)
            .map(move |x| x.start.max(within.start)..x.end.min(within.end))
    }

    /// Removes `r` from the set.
    pub(crate) fn remove(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for x in self.ranges.drain(..) {
            if x.end <= r.start || x.start >= r.end {
                out.push(x);
                continue;
            }
            if x.start < r.start {
                out.push(x.start..r.start);
            }
            if x.end > r.end {
                out.push(r.end..x.end);
            }
        }
        self.ranges = out;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes in the set.
    pub(crate) fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }
}

enum Buf {
    Vec(Vec<u8>),
    Map(memmap2::MmapMut),
}

/// The file-sized buffer and the record of which bytes are real.
pub(crate) struct Capture {
    buf: Buf,
    size: u64,
    /// Bytes already written.
    captured: RangeSet,
    /// Bytes wanted that have not arrived yet.
    pending: RangeSet,
    /// Bytes wanted after they had already passed (or past the budget): lost.
    missed: RangeSet,
    /// How many more bytes may be captured.
    budget: u64,
    /// Stream position: bytes before this have passed.
    pos: u64,
}

impl Capture {
    /// A capture for a file of `size` bytes. Files up to `whole_max` are captured entirely;
    /// larger ones sparsely, with at most `budget` bytes resident.
    pub(crate) fn new(size: u64, whole_max: u64, budget: u64) -> std::io::Result<Self> {
        let whole = size <= whole_max;
        let len = usize::try_from(size)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::OutOfMemory, "file too large"))?;
        let buf = if whole || len == 0 {
            Buf::Vec(vec![0; len])
        } else {
            Buf::Map(memmap2::MmapMut::map_anon(len)?)
        };
        let mut pending = RangeSet::default();
        if whole {
            pending.insert(0..size);
        }
        Ok(Self {
            buf,
            size,
            captured: RangeSet::default(),
            pending,
            missed: RangeSet::default(),
            budget: if whole { size } else { budget },
            pos: 0,
        })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Position of the stream: every byte before it has passed.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// The whole buffer (uncaptured bytes read as zero; check [`Self::has`] first).
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.buf {
            Buf::Vec(v) => v,
            Buf::Map(m) => m,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Buf::Vec(v) => v,
            Buf::Map(m) => m,
        }
    }

    /// Asks for `r` (clamped to the file) to be kept. Returns false when some of it has
    /// already passed and was not kept, or the budget cannot hold it.
    pub(crate) fn want(&mut self, r: Range<u64>) -> bool {
        let r = r.start.min(self.size)..r.end.min(self.size);
        if r.start >= r.end || self.captured.covers(&r) {
            return true;
        }
        let mut complete = true;
        if r.start < self.pos {
            // The part before the stream position is gone unless it was captured.
            let gone = r.start..r.end.min(self.pos);
            let mut lost = RangeSet::default();
            lost.insert(gone.clone());
            for c in self.captured.intersecting(gone) {
                lost.remove(c);
            }
            if !lost.is_empty() {
                for l in lost.intersecting(0..u64::MAX).collect::<Vec<_>>() {
                    self.missed.insert(l);
                }
                complete = false;
            }
        }
        let ahead = r.start.max(self.pos)..r.end;
        if ahead.start < ahead.end {
            let mut new = RangeSet::default();
            new.insert(ahead);
            for c in self.pending.intersecting(0..u64::MAX).collect::<Vec<_>>() {
                new.remove(c);
            }
            let cost = new.len();
            if cost > self.budget {
                for l in new.intersecting(0..u64::MAX).collect::<Vec<_>>() {
                    self.missed.insert(l);
                }
                return false;
            }
            self.budget -= cost;
            for n in new.intersecting(0..u64::MAX).collect::<Vec<_>>() {
                self.pending.insert(n);
            }
        }
        complete
    }

    /// Copies the wanted parts of `data` (which starts at file offset `start`) into the
    /// buffer. Returns whether anything new was captured. Does not advance the position.
    pub(crate) fn absorb(&mut self, start: u64, data: &[u8]) -> bool {
        let end = (start + data.len() as u64).min(self.size);
        let todo: Vec<Range<u64>> = self.pending.intersecting(start..end).collect();
        if todo.is_empty() {
            return false;
        }
        for r in todo {
            let (a, b) = ((r.start - start) as usize, (r.end - start) as usize);
            let (fa, fb) = (r.start as usize, r.end as usize);
            self.bytes_mut()[fa..fb].copy_from_slice(&data[a..b]);
            self.pending.remove(r.clone());
            self.captured.insert(r);
        }
        true
    }

    /// Marks `[.., end)` as passed.
    pub(crate) fn advance(&mut self, end: u64) {
        self.pos = self.pos.max(end.min(self.size));
    }

    /// Whether all of `r` is available.
    pub(crate) fn has(&self, r: &Range<u64>) -> bool {
        r.end <= self.size && self.captured.covers(r)
    }

    /// The bytes of `r`, if captured.
    pub(crate) fn get(&self, r: Range<u64>) -> Option<&[u8]> {
        self.has(&r)
            .then(|| &self.bytes()[r.start as usize..r.end as usize])
    }

    /// Bytes wanted but lost.
    pub(crate) fn missed_bytes(&self) -> u64 {
        self.missed.len()
    }

    /// Bytes captured so far.
    #[cfg(test)]
    pub(crate) fn captured_bytes(&self) -> u64 {
        self.captured.len()
    }

    /// Whether the whole file is being kept.
    pub(crate) fn is_whole(&self) -> bool {
        matches!(self.buf, Buf::Vec(_))
    }

    /// Keeps `data`, bytes of the file at `start` that the caller still holds although the
    /// stream has passed them (a look-back buffer). Charged to the budget like [`Self::want`];
    /// returns false (keeping nothing) when the budget cannot hold them.
    pub(crate) fn put(&mut self, start: u64, data: &[u8]) -> bool {
        let end = (start + data.len() as u64).min(self.size);
        if start >= end {
            return true;
        }
        let mut new = RangeSet::default();
        new.insert(start..end);
        for c in self.captured.intersecting(start..end).collect::<Vec<_>>() {
            new.remove(c);
        }
        let cost = new.len();
        if cost > self.budget {
            return false;
        }
        self.budget -= cost;
        for r in new.intersecting(0..u64::MAX).collect::<Vec<_>>() {
            let a = (r.start - start) as usize;
            let b = (r.end - start) as usize;
            self.bytes_mut()[r.start as usize..r.end as usize].copy_from_slice(&data[a..b]);
            self.pending.remove(r.clone());
            self.missed.remove(r.clone());
            self.captured.insert(r);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rangeset_merges_and_covers() {
        let mut s = RangeSet::default();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(20..25);
        assert_eq!(s.ranges, vec![10..25, 30..40]);
        s.insert(0..100);
        assert_eq!(s.ranges, vec![0..100]);
        s.remove(40..60);
        assert_eq!(s.ranges, vec![0..40, 60..100]);
        assert!(s.covers(&(5..40)));
        assert!(!s.covers(&(35..61)));
        assert_eq!(
            s.intersecting(30..70).collect::<Vec<_>>(),
            vec![30..40, 60..70]
        );
        assert_eq!(s.len(), 80);
    }

    #[test]
    fn sparse_capture_keeps_only_wanted_ranges() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut c = Capture::new(data.len() as u64, 0, 1 << 20).unwrap();
        assert!(c.want(100..200));
        for (i, chunk) in data.chunks(777).enumerate() {
            let start = (i * 777) as u64;
            c.absorb(start, chunk);
            c.advance(start + chunk.len() as u64);
            if i == 3 {
                // Partly passed already.
                assert!(!c.want(2000..4000));
            }
        }
        assert_eq!(c.get(100..200).unwrap(), &data[100..200]);
        assert!(c.get(2000..4000).is_none());
        assert_eq!(c.get(3108..4000).unwrap(), &data[3108..4000]);
        assert_eq!(c.missed_bytes(), 3108 - 2000);
    }

    #[test]
    fn put_keeps_passed_bytes_within_budget() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 253) as u8).collect();
        let mut c = Capture::new(data.len() as u64, 0, 1000).unwrap();
        c.absorb(0, &data);
        c.advance(data.len() as u64);
        assert!(!c.want(100..200));
        assert!(c.put(100, &data[100..200]));
        assert_eq!(c.get(100..200).unwrap(), &data[100..200]);
        assert_eq!(c.missed_bytes(), 0);
        // Overlapping bytes are charged once; over the budget nothing is kept.
        assert!(c.put(150, &data[150..1050]));
        assert!(!c.put(2000, &data[2000..2100]));
        assert!(c.get(2000..2100).is_none());
    }

    #[test]
    fn budget_is_enforced() {
        let mut c = Capture::new(1 << 20, 0, 100).unwrap();
        assert!(c.want(0..100));
        assert!(!c.want(200..300));
        assert_eq!(c.missed_bytes(), 100);
    }
}
