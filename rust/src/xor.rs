//! XOR distance over 256-bit ids, compared as big-endian integers.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::error::{invalid, Result};

pub type Id = [u8; 32];
pub const ID_SIZE: usize = 32;

/// Inputs of at least this many ids are searched on the rayon pool.
const PARALLEL_IDS: usize = 1 << 16;

/// A distance as four big-endian words: ordering it orders the distances.
type Key = [u64; 4];

fn words(id: &[u8]) -> Key {
    std::array::from_fn(|i| u64::from_be_bytes(id[8 * i..8 * i + 8].try_into().expect("8 bytes")))
}

pub fn distance(a: &Id, b: &Id) -> Id {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Which of `a` and `b` is nearer `target`: `Less` when `a` is.
pub fn compare(target: &Id, a: &Id, b: &Id) -> Ordering {
    distance(target, a).cmp(&distance(target, b))
}

/// How many leading bits `a` and `b` share (256 when equal): the k-bucket index.
pub fn bucket_index(a: &Id, b: &Id) -> u32 {
    let d = words(&distance(a, b));
    d.iter()
        .position(|w| *w != 0)
        .map_or(256, |i| 64 * i as u32 + d[i].leading_zeros())
}

fn check_ids(ids: &[u8]) -> Result<usize> {
    if ids.len() % ID_SIZE != 0 {
        return Err(invalid(format!(
            "id buffer of {} bytes is not a whole number of 32-byte ids",
            ids.len()
        )));
    }
    Ok(ids.len() / ID_SIZE)
}

/// The `k` nearest of `ids[first..]` as (distance, position), nearest first.
fn closest_in(target: &Key, ids: &[u8], first: usize, k: usize) -> Vec<(Key, usize)> {
    let mut heap: BinaryHeap<(Key, usize)> = BinaryHeap::with_capacity(k + 1);
    for (i, id) in ids.chunks_exact(ID_SIZE).enumerate() {
        // Most ids lose on the first word alone once the heap is full.
        let hi = u64::from_be_bytes(id[..8].try_into().expect("8 bytes")) ^ target[0];
        if heap.len() == k && hi > heap.peek().expect("k > 0").0[0] {
            continue;
        }
        let w = words(id);
        let key = [hi, w[1] ^ target[1], w[2] ^ target[2], w[3] ^ target[3]];
        let entry = (key, first + i);
        if heap.len() < k {
            heap.push(entry);
        } else if entry < *heap.peek().expect("k > 0") {
            heap.pop();
            heap.push(entry);
        }
    }
    heap.into_sorted_vec()
}

/// Positions of the `k` ids nearest `target`, nearest first (ties by position).
pub fn closest(target: &Id, ids: &[u8], k: usize) -> Result<Vec<usize>> {
    let n = check_ids(ids)?;
    let k = k.min(n);
    if k == 0 {
        return Ok(Vec::new());
    }
    let t = words(target);
    let best = if n >= PARALLEL_IDS {
        let per = n.div_ceil(rayon::current_num_threads().max(1) * 4).max(k);
        let mut merged: Vec<(Key, usize)> = ids
            .par_chunks(per * ID_SIZE)
            .enumerate()
            .flat_map_iter(|(c, chunk)| closest_in(&t, chunk, c * per, k))
            .collect();
        merged.sort_unstable();
        merged.truncate(k);
        merged
    } else {
        closest_in(&t, ids, 0, k)
    };
    Ok(best.into_iter().map(|(_, i)| i).collect())
}

/// Positions of every id, nearest `target` first (ties by position).
pub fn sort(target: &Id, ids: &[u8]) -> Result<Vec<usize>> {
    let n = check_ids(ids)?;
    let t = words(target);
    let key = |(i, id): (usize, &[u8])| {
        let w = words(id);
        ([w[0] ^ t[0], w[1] ^ t[1], w[2] ^ t[2], w[3] ^ t[3]], i)
    };
    let mut keyed: Vec<(Key, usize)> = if n >= PARALLEL_IDS {
        ids.par_chunks_exact(ID_SIZE).enumerate().map(key).collect()
    } else {
        ids.chunks_exact(ID_SIZE).enumerate().map(key).collect()
    };
    if n >= PARALLEL_IDS {
        keyed.par_sort_unstable();
    } else {
        keyed.sort_unstable();
    }
    Ok(keyed.into_iter().map(|(_, i)| i).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, seed: u64) -> Vec<u8> {
        // A small xorshift: deterministic ids without a dependency.
        let mut x = seed | 1;
        (0..n * ID_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn reference(target: &Id, buf: &[u8]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..buf.len() / 32).collect();
        idx.sort_by(|&a, &b| {
            let da = distance(target, buf[a * 32..a * 32 + 32].try_into().unwrap());
            let db = distance(target, buf[b * 32..b * 32 + 32].try_into().unwrap());
            da.cmp(&db).then(a.cmp(&b))
        });
        idx
    }

    #[test]
    fn closest_and_sort_match_a_full_sort() {
        for (n, seed) in [(0, 1), (1, 2), (19, 3), (1000, 4), (70_000, 5)] {
            let buf = ids(n, seed);
            let target: Id = ids(1, seed + 100).try_into().unwrap();
            let want = reference(&target, &buf);
            assert_eq!(sort(&target, &buf).unwrap(), want);
            for k in [0, 1, 20, 5000] {
                assert_eq!(
                    closest(&target, &buf, k).unwrap(),
                    want[..k.min(n)].to_vec()
                );
            }
        }
    }

    #[test]
    fn duplicates_keep_input_order() {
        let mut buf = ids(3, 9);
        let first = buf[..32].to_vec();
        buf.extend_from_slice(&first);
        let target = [0u8; 32];
        let order = closest(&target, &buf, 4).unwrap();
        let a = order.iter().position(|&i| i == 0).unwrap();
        let b = order.iter().position(|&i| i == 3).unwrap();
        assert_eq!(b, a + 1);
    }

    #[test]
    fn bucket_index_counts_shared_prefix() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        assert_eq!(bucket_index(&a, &b), 256);
        b[0] = 0x80;
        assert_eq!(bucket_index(&a, &b), 0);
        b[0] = 0;
        b[9] = 0x01;
        assert_eq!(bucket_index(&a, &b), 79);
        assert_eq!(compare(&a, &a, &b), Ordering::Less);
        assert!(closest(&a, &[0u8; 31], 1).is_err());
    }
}
