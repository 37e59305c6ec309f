//! A vector in fixed-size chunks, so that growing it never copies everything at once.
//!
//! A `Vec` of a million links doubles by copying all of them while its tenant's lock is
//! held: 100 MB moved and a pause of a hundred milliseconds for every request of that tenant.
//! Here no chunk moves once full, and an index is a shift and a mask. The first chunk grows
//! as a `Vec` does, up to [`CHUNK`] elements, so a tenant holding a few elements holds room
//! for a few. Every later chunk is allocated whole when the one before it is full: a table
//! that filled a chunk is growing, and a chunk allocated whole is never copied. Grown by
//! doubling, each element of a later chunk was copied about once, into memory the caches no
//! longer held: under callgrind's cache model, about a fifth of a create's last-level misses
//! while a partner grows. Spare room stays at most what is held; allocated whole, later
//! chunks cost a million-link partner 20–30 B a link of resident memory
//! (`docs/benchmarks.md`).
//! Like [`super::index::ShardedMap`], it serves the stores' per-tenant tables, whose elements
//! are only ever appended or replaced in place.

use std::ops::{Index, IndexMut};

/// Elements per chunk: a power of two, so an index splits with a shift and a mask.
const CHUNK: usize = 1 << 14;

/// A `Vec<T>` that grows a chunk at a time; elements never move once their chunk is full.
#[derive(Debug, Clone)]
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, value: T) {
        let at = self.len / CHUNK;
        if at == self.chunks.len() {
            let chunk = if at == 0 {
                Vec::new()
            } else {
                Vec::with_capacity(CHUNK)
            };
            self.chunks.push(chunk);
        }
        let chunk = &mut self.chunks[at];
        if chunk.len() == chunk.capacity() {
            // Doubling, as a `Vec` grows, but never past a chunk.
            let grown = (chunk.capacity() * 2).clamp(4, CHUNK);
            chunk.reserve_exact(grown - chunk.len());
        }
        chunk.push(value);
        self.len += 1;
    }

    /// The elements in order, as a `Vec`'s `iter`.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Room for `additional` more elements, allocated to fit: a table read back whole from a
    /// state file holds no spare capacity.
    pub fn reserve_exact(&mut self, additional: usize) {
        let total = self.len.saturating_add(additional);
        for at in 0..total.div_ceil(CHUNK) {
            let size = (total - at * CHUNK).min(CHUNK);
            match self.chunks.get_mut(at) {
                Some(chunk) if chunk.capacity() < size => chunk.reserve_exact(size - chunk.len()),
                Some(_) => {}
                None => self.chunks.push(Vec::with_capacity(size)),
            }
        }
    }
}

impl<T> Index<usize> for ChunkedVec<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

impl<T> IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.chunks[index / CHUNK][index % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_vec_across_chunk_boundaries() {
        let mut chunked = ChunkedVec::default();
        assert!(chunked.is_empty());
        let n = 3 * CHUNK + 5;
        for i in 0..n {
            chunked.push(i);
        }
        assert_eq!(chunked.len(), n);
        assert_eq!(chunked.chunks.len(), 4);
        assert!((0..n).all(|i| chunked[i] == i));
        chunked[CHUNK] = 7;
        chunked[CHUNK + 1] = 8;
        assert_eq!(
            (chunked[CHUNK - 1], chunked[CHUNK], chunked[CHUNK + 1]),
            (CHUNK - 1, 7, 8)
        );
        assert!(chunked.iter().copied().eq((0..n).map(|i| match i {
            i if i == CHUNK => 7,
            i if i == CHUNK + 1 => 8,
            i => i,
        })));
        assert_eq!(chunked.iter().next_back(), Some(&(n - 1)));
    }

    #[test]
    fn growing_never_moves_a_full_chunk() {
        let mut chunked = ChunkedVec::default();
        for i in 0..CHUNK {
            chunked.push(i);
        }
        let first: *const usize = &chunked[0];
        for i in CHUNK..2 * CHUNK {
            chunked.push(i);
        }
        let second: *const usize = &chunked[CHUNK];
        for i in 2 * CHUNK..4 * CHUNK {
            chunked.push(i);
        }
        // A `Vec` would have moved every element at each doubling; these stay put.
        assert!(std::ptr::eq(first, &chunked[0]));
        assert!(std::ptr::eq(second, &chunked[CHUNK]));
        assert!(chunked.chunks.iter().all(|chunk| chunk.capacity() == CHUNK));
    }

    #[test]
    fn spare_room_stays_in_proportion_to_what_is_held() {
        let mut chunked = ChunkedVec::default();
        for i in 0..3 {
            chunked.push(i);
        }
        // A few elements: room for a few, not a chunk's worth.
        assert!(chunked.chunks[0].capacity() < 64);
        for i in 3..CHUNK + 3 {
            chunked.push(i);
        }
        // Past a full chunk the next is allocated whole: at most as much room as is held.
        assert_eq!(chunked.chunks.len(), 2);
        assert_eq!(chunked.chunks[1].capacity(), CHUNK);
        let room: usize = chunked.chunks.iter().map(|c| c.capacity() - c.len()).sum();
        assert!(room <= chunked.len());
    }

    #[test]
    fn chunks_after_the_first_are_never_reallocated_while_they_fill() {
        let mut chunked = ChunkedVec::default();
        for i in 0..CHUNK + 1 {
            chunked.push(i);
        }
        let start: *const usize = &chunked[CHUNK];
        for i in CHUNK + 1..2 * CHUNK {
            chunked.push(i);
            // Doubling would have moved the chunk's elements 14 times by now.
            assert!(std::ptr::eq(start, &chunked[CHUNK]), "moved at {i}");
        }
    }

    #[test]
    fn reserving_exactly_allocates_to_fit() {
        let mut chunked: ChunkedVec<u32> = ChunkedVec::default();
        chunked.reserve_exact(CHUNK + 10);
        let capacities: Vec<usize> = chunked.chunks.iter().map(Vec::capacity).collect();
        assert_eq!(capacities, [CHUNK, 10]);
        let first: *const Vec<u32> = &chunked.chunks[0];
        for i in 0..(CHUNK + 10) as u32 {
            chunked.push(i);
        }
        assert!(std::ptr::eq(first, &chunked.chunks[0]));
        assert_eq!(chunked.len(), CHUNK + 10);
        assert_eq!(chunked[CHUNK + 9], (CHUNK + 9) as u32);
        let capacities: Vec<usize> = chunked.chunks.iter().map(Vec::capacity).collect();
        assert_eq!(capacities, [CHUNK, 10]);

        // Reserved chunks beyond the filled ones are filled in order.
        let mut chunked: ChunkedVec<u32> = ChunkedVec::default();
        chunked.push(0);
        chunked.reserve_exact(2 * CHUNK);
        assert_eq!((chunked.len(), chunked[0]), (1, 0));
        for i in 1..=(2 * CHUNK) as u32 {
            chunked.push(i);
        }
        assert!(chunked.iter().copied().eq(0..=(2 * CHUNK) as u32));
        let capacities: Vec<usize> = chunked.chunks.iter().map(Vec::capacity).collect();
        assert_eq!(capacities, [CHUNK, CHUNK, 1]);
    }
}
