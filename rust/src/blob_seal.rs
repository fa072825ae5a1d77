//! Private blobs: chunked streaming XChaCha20-Poly1305 (docs/PROTOCOL.md §12).
//!
//! The plaintext is cut into segments of `GROUP_SIZE - 16` bytes, so each
//! sealed segment is exactly one 16 KiB chunk group of the ciphertext blob
//! and any verified group can be opened on its own. Each blob has its own
//! random key; segment `i` is sealed under the nonce
//! `u64le(i) ‖ u8(last) ‖ 0¹⁵`, so a nonce never repeats under a key and
//! truncation, reordering or extension of the segments fails to open. The
//! ciphertext blob's id is the BLAKE3 of the ciphertext; the plaintext hash
//! is known only to whoever holds the key.

use rayon::prelude::*;

use crate::aead::{self, KEY_SIZE, NONCE_SIZE, TAG_SIZE};
use crate::blob::GROUP_SIZE;
use crate::error::{invalid, Error, Result};
use crate::hash::Hash;

/// Plaintext bytes per segment.
pub const SEGMENT_SIZE: usize = GROUP_SIZE - TAG_SIZE;
const PARALLEL_BYTES: usize = 256 * 1024;
/// The largest sealed blob (and so plaintext) size handled: 2^62 bytes.
pub const MAX_SEALED_SIZE: u64 = 1 << 62;

pub fn segment_nonce(index: u64, last: bool) -> [u8; NONCE_SIZE] {
    let mut n = [0u8; NONCE_SIZE];
    n[..8].copy_from_slice(&index.to_le_bytes());
    n[8] = last as u8;
    n
}

/// Size of the ciphertext of a plaintext of `size` bytes.
pub fn sealed_size(size: u64) -> u64 {
    let segments = size.div_ceil(SEGMENT_SIZE as u64).max(1);
    size + segments * TAG_SIZE as u64
}

/// Size of the plaintext in a ciphertext of `size` bytes, if that size is possible.
pub fn opened_size(size: u64) -> Result<u64> {
    if size > MAX_SEALED_SIZE {
        return Err(Error::Decode(format!(
            "{size} bytes is too large a sealed blob"
        )));
    }
    let segments = size.div_ceil(GROUP_SIZE as u64).max(1);
    let plain = size
        .checked_sub(segments * TAG_SIZE as u64)
        .ok_or_else(|| Error::Decode(format!("{size} bytes cannot be a sealed blob")))?;
    if sealed_size(plain) != size {
        return Err(Error::Decode(format!(
            "{size} bytes cannot be a sealed blob"
        )));
    }
    Ok(plain)
}

fn seal_segments(
    key: &[u8; KEY_SIZE],
    first: u64,
    plain: &[u8],
    last_index: Option<u64>,
) -> Vec<u8> {
    let segments = plain.len().div_ceil(SEGMENT_SIZE).max(1);
    let mut out = vec![0u8; plain.len() + segments * TAG_SIZE];
    let work = |(i, seg): (usize, &mut [u8])| {
        let index = first + i as u64;
        let text = &plain[i * SEGMENT_SIZE..((i + 1) * SEGMENT_SIZE).min(plain.len())];
        seg[..text.len()].copy_from_slice(text);
        let nonce = segment_nonce(index, last_index == Some(index));
        aead::seal_in_place(key, &nonce, &[], seg);
    };
    if out.len() >= PARALLEL_BYTES {
        out.par_chunks_mut(GROUP_SIZE).enumerate().for_each(work);
    } else {
        out.chunks_mut(GROUP_SIZE).enumerate().for_each(work);
    }
    out
}

/// Streaming sealer: feed plaintext in pieces of any size, get ciphertext as
/// whole segments are ready. It also hashes the plaintext.
pub struct Sealer {
    key: [u8; KEY_SIZE],
    pending: Vec<u8>,
    next: u64,
    hasher: blake3::Hasher,
    finished: bool,
}

impl Sealer {
    pub fn new(key: &[u8; KEY_SIZE]) -> Sealer {
        Sealer {
            key: *key,
            pending: Vec::new(),
            next: 0,
            hasher: blake3::Hasher::new(),
            finished: false,
        }
    }

    /// Seal what `data` completes; the last (possibly whole) segment is held back for `finalize`.
    pub fn update(&mut self, mut data: &[u8]) -> Result<Vec<u8>> {
        if self.finished {
            return Err(invalid("sealer already finalized"));
        }
        if data.len() >= PARALLEL_BYTES {
            self.hasher.update_rayon(data);
        } else {
            self.hasher.update(data);
        }
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let take = (SEGMENT_SIZE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if data.is_empty() {
                return Ok(out);
            }
            out = seal_segments(&self.key, self.next, &self.pending, None);
            self.next += 1;
            self.pending.clear();
        }
        if data.len() > SEGMENT_SIZE {
            let whole = (data.len() - 1) / SEGMENT_SIZE * SEGMENT_SIZE;
            let sealed = seal_segments(&self.key, self.next, &data[..whole], None);
            self.next += (whole / SEGMENT_SIZE) as u64;
            out.extend_from_slice(&sealed);
            data = &data[whole..];
        }
        self.pending.extend_from_slice(data);
        Ok(out)
    }

    /// The last segment's ciphertext and the plaintext's BLAKE3 hash.
    pub fn finalize(&mut self) -> Result<(Vec<u8>, Hash)> {
        if self.finished {
            return Err(invalid("sealer already finalized"));
        }
        self.finished = true;
        let last = seal_segments(&self.key, self.next, &self.pending, Some(self.next));
        self.pending = Vec::new();
        Ok((last, *self.hasher.finalize().as_bytes()))
    }
}

/// Open whole ciphertext groups `first..` of a sealed blob of `sealed_size`
/// bytes; `data` is those groups' bytes.
pub fn open_groups(
    key: &[u8; KEY_SIZE],
    sealed_size: u64,
    first: u64,
    data: &[u8],
) -> Result<Vec<u8>> {
    opened_size(sealed_size)?;
    let segments = crate::blob::group_count(sealed_size);
    if first >= segments {
        return Err(invalid(format!(
            "group {first} is past the {segments} groups of the sealed blob"
        )));
    }
    let start = first * GROUP_SIZE as u64;
    if start + data.len() as u64 > sealed_size
        || (data.len() % GROUP_SIZE != 0 && start + data.len() as u64 != sealed_size)
        || (data.is_empty() && sealed_size != 0)
    {
        return Err(invalid(format!(
            "{} bytes at group {first} are not whole groups of a {sealed_size}-byte sealed blob",
            data.len()
        )));
    }
    let count = data.len().div_ceil(GROUP_SIZE);
    let mut out = vec![0u8; data.len() - count * TAG_SIZE];
    let work = |(i, text): (usize, &mut [u8])| -> Result<()> {
        let index = first + i as u64;
        let sealed = &data[i * GROUP_SIZE..((i + 1) * GROUP_SIZE).min(data.len())];
        let nonce = segment_nonce(index, index + 1 == segments);
        aead::open_into(key, &nonce, &[], sealed, text)
    };
    if out.is_empty() {
        // One empty segment (the empty plaintext): no output chunk to iterate over.
        work((0, &mut []))?;
    } else if data.len() >= PARALLEL_BYTES {
        out.par_chunks_mut(SEGMENT_SIZE)
            .enumerate()
            .try_for_each(work)?;
    } else {
        out.chunks_mut(SEGMENT_SIZE)
            .enumerate()
            .try_for_each(work)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(key: &[u8; 32], plain: &[u8], piece: usize) -> (Vec<u8>, Hash) {
        let mut s = Sealer::new(key);
        let mut out = Vec::new();
        for c in plain.chunks(piece.max(1)) {
            out.extend(s.update(c).unwrap());
        }
        let (last, h) = s.finalize().unwrap();
        out.extend(last);
        (out, h)
    }

    #[test]
    fn round_trip_sizes_and_pieces() {
        let key = [3u8; 32];
        for size in [
            0usize,
            1,
            SEGMENT_SIZE - 1,
            SEGMENT_SIZE,
            SEGMENT_SIZE + 1,
            3 * SEGMENT_SIZE,
            1 << 20,
        ] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (reference, h) = seal_all(&key, &plain, size.max(1));
            assert_eq!(h, *blake3::hash(&plain).as_bytes());
            assert_eq!(reference.len() as u64, sealed_size(size as u64));
            assert_eq!(opened_size(reference.len() as u64).unwrap(), size as u64);
            for piece in [1, 1000, SEGMENT_SIZE, 300_000] {
                assert_eq!(
                    seal_all(&key, &plain, piece).0,
                    reference,
                    "size {size} piece {piece}"
                );
            }
            let total = reference.len() as u64;
            assert_eq!(open_groups(&key, total, 0, &reference).unwrap(), plain);
            if reference.len() > GROUP_SIZE {
                // One group alone opens.
                let g1 = &reference[GROUP_SIZE..(2 * GROUP_SIZE).min(reference.len())];
                let got = open_groups(&key, total, 1, g1).unwrap();
                assert_eq!(got, &plain[SEGMENT_SIZE..SEGMENT_SIZE + got.len()]);
            }
        }
    }

    #[test]
    fn tamper_truncate_and_wrong_key_fail() {
        let key = [5u8; 32];
        let plain = vec![7u8; 3 * SEGMENT_SIZE];
        let (sealed, _) = seal_all(&key, &plain, 4096);
        let total = sealed.len() as u64;
        for i in [0, 100, GROUP_SIZE, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open_groups(&key, total, 0, &bad), Err(Error::Decryption));
        }
        assert!(open_groups(&[6u8; 32], total, 0, &sealed).is_err());
        let (empty, _) = seal_all(&key, b"", 1);
        assert!(open_groups(&[6u8; 32], 16, 0, &empty).is_err());
        let mut bad = empty.clone();
        bad[3] ^= 1;
        assert!(open_groups(&key, 16, 0, &bad).is_err());
        assert_eq!(open_groups(&key, 16, 0, &empty).unwrap(), b"");
        // Dropping the last segment: the new last one was not sealed as last.
        let cut = &sealed[..2 * GROUP_SIZE];
        assert_eq!(
            open_groups(&key, cut.len() as u64, 0, cut),
            Err(Error::Decryption)
        );
        // Impossible sizes.
        assert!(opened_size(5).is_err());
        assert!(opened_size(GROUP_SIZE as u64 + 3).is_err());
        assert!(open_groups(&key, total, 0, &sealed[..100]).is_err());
    }
}
