//! BLAKE3 in its three modes, and the domain-separated hashes of the Merkle
//! tree (docs/PROTOCOL.md §1 and §3).

/// `derive_key("hyphal 2026-11 merkle leaf", b"")`.
pub const LEAF_KEY: [u8; 32] = [
    0xfa, 0xf7, 0x7c, 0xbd, 0x57, 0xa2, 0x7f, 0x3a, 0x8c, 0x3d, 0x67, 0xa5, 0xa9, 0x89, 0xd6, 0xd8,
    0x6d, 0xb9, 0xfe, 0xf9, 0xf4, 0xf7, 0x95, 0x18, 0x8b, 0x11, 0x82, 0xce, 0x30, 0x9e, 0x79, 0xc3,
];
/// `derive_key("hyphal 2026-11 merkle parent", b"")`.
pub const PARENT_KEY: [u8; 32] = [
    0x43, 0xd6, 0xbd, 0x6b, 0x29, 0xc6, 0x44, 0x89, 0xcc, 0x22, 0x6b, 0x13, 0x30, 0xc8, 0x85, 0xcd,
    0x80, 0xac, 0xde, 0xf1, 0x92, 0x66, 0x3e, 0x09, 0xbf, 0x8a, 0x6f, 0x4c, 0x7e, 0x72, 0x35, 0x89,
];
/// `derive_key("hyphal 2026-11 merkle tree head", b"")`.
pub const HEAD_KEY: [u8; 32] = [
    0xd3, 0x62, 0x7e, 0x93, 0xdf, 0xd0, 0x00, 0x64, 0xea, 0x0a, 0x49, 0x24, 0x4d, 0x54, 0x52, 0xb6,
    0x5b, 0x1c, 0xe0, 0x7f, 0x3a, 0x41, 0xf2, 0x47, 0x5b, 0xe3, 0x1a, 0x69, 0xc2, 0x05, 0x28, 0xa4,
];
/// `derive_key("hyphal 2026-11 feed head signature", b"")`: the first 32 bytes of every signed feed head.
pub const FEED_HEAD_NAMESPACE: [u8; 32] = [
    0xe1, 0x32, 0x1c, 0xff, 0xc1, 0x2c, 0x74, 0x5e, 0xd4, 0xae, 0x96, 0x33, 0xd9, 0xf0, 0x60, 0x2e,
    0x04, 0x84, 0x06, 0x86, 0xc8, 0xe7, 0xed, 0x94, 0x6b, 0x71, 0x42, 0x87, 0x95, 0xa8, 0xb3, 0xa8,
];

pub type Hash = [u8; 32];

/// Plain BLAKE3, equal to `b3sum`. `parallel` spreads large inputs over the rayon pool.
pub fn blake3(data: &[u8], parallel: bool) -> Hash {
    if parallel {
        let mut h = blake3::Hasher::new();
        h.update_rayon(data);
        *h.finalize().as_bytes()
    } else {
        *blake3::hash(data).as_bytes()
    }
}

pub fn keyed_hash(key: &[u8; 32], data: &[u8]) -> Hash {
    *blake3::keyed_hash(key, data).as_bytes()
}

pub fn derive_key(context: &str, material: &[u8]) -> Hash {
    blake3::derive_key(context, material)
}

/// `KH(LEAF_KEY, data ‖ u64le(index) ‖ u64le(len))`. The suffix keeps the
/// data chunk-aligned, so BLAKE3 hashes it at full SIMD width.
pub fn leaf_hash(index: u64, data: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&LEAF_KEY);
    h.update(data);
    h.update(&index.to_le_bytes());
    h.update(&(data.len() as u64).to_le_bytes());
    *h.finalize().as_bytes()
}

/// `KH(PARENT_KEY, u64le(size) ‖ left ‖ right)`, `size` being what both children cover.
pub fn parent_hash(size: u64, left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 72];
    buf[..8].copy_from_slice(&size.to_le_bytes());
    buf[8..40].copy_from_slice(left);
    buf[40..].copy_from_slice(right);
    keyed_hash(&PARENT_KEY, &buf)
}

/// `FEED_HEAD_NAMESPACE ‖ feed_key ‖ tree_hash ‖ u64le(length) ‖ u64le(fork)`.
pub fn head_signable(feed_key: &Hash, tree_hash: &Hash, length: u64, fork: u64) -> [u8; 112] {
    let mut out = [0u8; 112];
    out[..32].copy_from_slice(&FEED_HEAD_NAMESPACE);
    out[32..64].copy_from_slice(feed_key);
    out[64..96].copy_from_slice(tree_hash);
    out[96..104].copy_from_slice(&length.to_le_bytes());
    out[104..].copy_from_slice(&fork.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_keys_are_what_protocol_md_says() {
        assert_eq!(LEAF_KEY, derive_key("hyphal 2026-11 merkle leaf", b""));
        assert_eq!(PARENT_KEY, derive_key("hyphal 2026-11 merkle parent", b""));
        assert_eq!(HEAD_KEY, derive_key("hyphal 2026-11 merkle tree head", b""));
        assert_eq!(
            FEED_HEAD_NAMESPACE,
            derive_key("hyphal 2026-11 feed head signature", b"")
        );
    }

    #[test]
    fn leaf_hash_binds_index_and_content() {
        let a = leaf_hash(0, b"block");
        assert_ne!(a, leaf_hash(1, b"block"));
        assert_ne!(a, leaf_hash(0, b"blocK"));
        assert_ne!(a, blake3(b"block", false));
        let mut manual = b"block".to_vec();
        manual.extend_from_slice(&0u64.to_le_bytes());
        manual.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(a, keyed_hash(&LEAF_KEY, &manual));
    }

    #[test]
    fn parallel_and_serial_blake3_agree() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(blake3(&data, true), blake3(&data, false));
    }

    #[test]
    fn signable_layout() {
        let s = head_signable(&[1; 32], &[2; 32], 3, 4);
        assert_eq!(&s[..32], &FEED_HEAD_NAMESPACE);
        assert_eq!(&s[32..64], &[1; 32]);
        assert_eq!(&s[64..96], &[2; 32]);
        assert_eq!(&s[96..104], &3u64.to_le_bytes());
        assert_eq!(&s[104..], &4u64.to_le_bytes());
    }
}
