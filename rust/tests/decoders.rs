//! Property tests of every decoder in the core that reads bytes from outside
//! (issue 21 §1): proofs, verified blob ranges, sealed blob sizes and groups,
//! outboards, AEAD and signatures. Two kinds of property:
//!
//! - round trip: what the encoders make decodes (or verifies) back to the same thing;
//! - no panic: any bytes, any sizes and any mutation of a real encoding end in
//!   `Ok` or a typed `Err`, and whatever is accepted as verified is the real data.
//!
//! The atheris targets in `fuzz/` drive the same decoders through the Python
//! binding; these run under `cargo test` at proptest's default case count.

use proptest::prelude::*;

use hyphal_core::blob::{self, Order, RangeDecoder, GROUP_SIZE};
use hyphal_core::blob_seal::{self, Sealer};
use hyphal_core::error::Error;
use hyphal_core::merkle::{self, Node, Proof};
use hyphal_core::{aead, flat_tree, sign};

const GS: usize = GROUP_SIZE;

fn blocks(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| vec![i as u8; (i % 5) as usize * 3])
        .collect()
}

/// Every node of a tree of `n` blocks, and its roots.
fn tree(n: u64) -> (Vec<Node>, Vec<Node>) {
    let data = blocks(n);
    let refs: Vec<&[u8]> = data.iter().map(|b| b.as_slice()).collect();
    merkle::append(&[], &refs, false).expect("a small tree")
}

fn node_at(nodes: &[Node], index: u64) -> Node {
    *nodes
        .iter()
        .find(|n| n.index == index)
        .expect("the tree holds it")
}

/// A proof request within a tree: (length, upgrade_from, start, end).
fn proof_shape() -> impl Strategy<Value = (u64, u64, u64, u64)> {
    (1u64..48).prop_flat_map(|length| {
        (Just(length), 0..=length, 0..=length).prop_flat_map(|(length, upgrade_from, start)| {
            (
                Just(length),
                Just(upgrade_from),
                Just(start),
                start..=length,
            )
        })
    })
}

fn blob_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 251) as u8).collect()
}

/// A blob size of up to four groups, and a group range in it.
fn range_shape() -> impl Strategy<Value = (usize, u64, u64)> {
    (0usize..4 * GS + 100).prop_flat_map(|size| {
        let groups = blob::group_count(size as u64);
        (Just(size), 0..groups)
            .prop_flat_map(move |(size, start)| (Just(size), Just(start), start + 1..=groups))
    })
}

/// Feed `pieces` of a response; check that everything verified is the blob's own.
fn feed_checked(
    decoder: &mut RangeDecoder,
    pieces: &[&[u8]],
    data: &[u8],
    outboard: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut groups = Vec::new();
    for piece in pieces {
        let verified = decoder.feed(piece)?;
        for (offset, bytes) in &verified.nodes {
            let at = *offset as usize;
            assert_eq!(
                &outboard[at..at + bytes.len()],
                bytes.as_slice(),
                "a foreign node verified"
            );
        }
        for (first, bytes) in verified.groups {
            let at = first as usize * GS;
            assert_eq!(
                &data[at..at + bytes.len()],
                bytes.as_slice(),
                "foreign bytes verified"
            );
            groups.extend(bytes);
        }
    }
    Ok(groups)
}

/// `data` cut at the given sizes (each taken modulo what is left, plus one), then the rest.
fn cut<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut at = 0;
    for size in sizes {
        if at >= data.len() {
            break;
        }
        let end = (at + size % (data.len() - at) + 1).min(data.len());
        pieces.push(&data[at..end]);
        at = end;
    }
    pieces.push(&data[at..]);
    pieces
}

proptest! {
    // -- proofs -----------------------------------------------------------------------

    #[test]
    fn a_proof_round_trips_and_verifies((length, upgrade_from, start, end) in proof_shape()) {
        let (nodes, roots) = tree(length);
        let indices = merkle::proof_indices(length, upgrade_from, start, end).unwrap();
        let carried = indices.iter().map(|&i| node_at(&nodes, i)).collect();
        let proof = Proof::new(length, upgrade_from, start, end, carried).unwrap();
        let encoded = proof.encode();
        prop_assert_eq!(Proof::decode(&encoded).unwrap(), proof.clone());
        let data = blocks(length);
        let range: Vec<&[u8]> = data[start as usize..end as usize].iter().map(|b| b.as_slice()).collect();
        let known: Vec<Node> = flat_tree::full_roots(upgrade_from)
            .unwrap()
            .into_iter()
            .map(|i| node_at(&nodes, i))
            .collect();
        let trusted = merkle::tree_hash(&roots).unwrap();
        prop_assert!(merkle::verify(&proof, &range, &trusted, &known, false).is_ok());
    }

    #[test]
    fn any_bytes_decode_as_a_proof_or_a_decode_error(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        match Proof::decode(&data) {
            Ok(proof) => prop_assert_eq!(proof.encode(), data),
            Err(e) => prop_assert!(matches!(e, Error::Decode(_)), "{e:?}"),
        }
    }

    #[test]
    fn any_proof_header_decodes_or_is_refused_and_never_panics_in_verify(
        fields in any::<[u64; 4]>(),
        small in any::<[u8; 4]>(),
        count in 0u32..12,
        use_small in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..12 * 40),
        trusted in any::<[u8; 32]>(),
    ) {
        // Small fields reach the walk; any u64 reaches the range checks.
        let f = if use_small { small.map(u64::from) } else { fields };
        let mut data = vec![merkle::PROOF_VERSION];
        for v in f {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&count.to_le_bytes());
        data.extend_from_slice(&body[..body.len().min(count as usize * 40)]);
        if let Ok(proof) = Proof::decode(&data) {
            prop_assert_eq!(proof.encode(), data);
            if proof.end - proof.start <= 64 {
                let stand_in = vec![b"x".as_slice(); (proof.end - proof.start) as usize];
                let _ = merkle::verify(&proof, &stand_in, &trusted, &[], false);
            }
        }
    }

    #[test]
    fn a_mutated_proof_never_verifies_foreign_data(
        (length, upgrade_from, start, end) in proof_shape(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
    ) {
        let (nodes, roots) = tree(length);
        let indices = merkle::proof_indices(length, upgrade_from, start, end).unwrap();
        let proof = Proof::new(length, upgrade_from, start, end, indices.iter().map(|&i| node_at(&nodes, i)).collect())
            .unwrap();
        let mut encoded = proof.encode();
        for (at, xor) in flips {
            let at = at % encoded.len();
            encoded[at] ^= xor;
        }
        if let Ok(mutated) = Proof::decode(&encoded) {
            let data = blocks(length);
            let n = (mutated.end - mutated.start).min(64) as usize;
            let range: Vec<&[u8]> = data.iter().cycle().take(n).map(|b| b.as_slice()).collect();
            let known: Vec<Node> = flat_tree::full_roots(mutated.upgrade_from.min(length))
                .unwrap()
                .into_iter()
                .map(|i| node_at(&nodes, i))
                .collect();
            let trusted = merkle::tree_hash(&roots).unwrap();
            if merkle::verify(&mutated, &range, &trusted, &known, false).is_ok() {
                // Only a change that left the proof's meaning intact may verify.
                prop_assert_eq!(mutated, proof);
            }
        }
    }

    // -- verified blob ranges ------------------------------------------------------------

    #[test]
    fn a_blob_range_round_trips_in_any_pieces(
        (size, start, end) in range_shape(),
        sizes in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let data = blob_bytes(size);
        let (root, outboard) = blob::outboard(&data);
        let (lo, hi) = blob::byte_range(size as u64, start, end);
        let response = blob::encode_range(&root, size as u64, &outboard, &data[lo as usize..hi as usize], start, end)
            .unwrap();
        prop_assert_eq!(response.len() as u64, blob::encoded_len(size as u64, start, end).unwrap());
        let mut decoder = RangeDecoder::new(&root, size as u64, start, end).unwrap();
        let got = feed_checked(&mut decoder, &cut(&response, &sizes), &data, &outboard).unwrap();
        prop_assert!(decoder.is_done());
        prop_assert_eq!(got.as_slice(), &data[lo as usize..hi as usize]);
    }

    #[test]
    fn a_mutated_blob_range_is_refused_and_never_yields_foreign_bytes(
        (size, start, end) in range_shape(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        truncate in proptest::option::of(any::<usize>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
        sizes in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let data = blob_bytes(size);
        let (root, outboard) = blob::outboard(&data);
        let (lo, hi) = blob::byte_range(size as u64, start, end);
        let mut response =
            blob::encode_range(&root, size as u64, &outboard, &data[lo as usize..hi as usize], start, end).unwrap();
        let changed = !flips.is_empty() || truncate.is_some() || !extra.is_empty();
        for (at, xor) in flips {
            if !response.is_empty() {
                let at = at % response.len();
                response[at] ^= xor;
            }
        }
        if let Some(t) = truncate {
            response.truncate(t % (response.len() + 1));
        }
        response.extend_from_slice(&extra);
        let mut decoder = RangeDecoder::new(&root, size as u64, start, end).unwrap();
        let result = feed_checked(&mut decoder, &cut(&response, &sizes), &data, &outboard);
        if let Err(e) = &result {
            prop_assert!(matches!(e, Error::Proof(_) | Error::Decode(_)), "{e:?}");
        }
        if !changed {
            prop_assert!(result.is_ok() && decoder.is_done());
        }
    }

    #[test]
    fn any_bytes_for_any_range_are_refused_or_verified_without_panic(
        root in any::<[u8; 32]>(),
        size in prop_oneof![0u64..5 * GS as u64, any::<u64>()],
        start in 0u64..8,
        len in 1u64..8,
        data in proptest::collection::vec(any::<u8>(), 0..300),
        sizes in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        if let Ok(mut decoder) = RangeDecoder::new(&root, size, start, start + len) {
            for piece in cut(&data, &sizes) {
                if decoder.feed(piece).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn outboard_reorder_refuses_wrong_sizes_without_panic(
        size in prop_oneof![0u64..5 * GS as u64, any::<u64>()],
        outboard in proptest::collection::vec(any::<u8>(), 0..400),
        pre in any::<bool>(),
    ) {
        let order = if pre { Order::Pre } else { Order::Post };
        if let Ok(out) = blob::reorder_outboard(size, &outboard, order) {
            prop_assert_eq!(out.len(), outboard.len());
        }
    }

    // -- private (sealed) blobs ------------------------------------------------------

    #[test]
    fn opened_size_inverts_sealed_size(size in prop_oneof![0u64..1 << 20, any::<u64>()]) {
        if let Ok(plain) = blob_seal::opened_size(size) {
            prop_assert_eq!(blob_seal::sealed_size(plain), size);
        }
        if size <= 1 << 61 {
            prop_assert_eq!(blob_seal::opened_size(blob_seal::sealed_size(size)).unwrap(), size);
        }
    }

    #[test]
    fn sealed_groups_open_back_and_any_others_are_refused(
        key in any::<[u8; 32]>(),
        size in 0usize..3 * GS,
        first in any::<u64>(),
        sealed_size in prop_oneof![0u64..4 * GS as u64, any::<u64>()],
        junk in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let plain = blob_bytes(size);
        let mut sealer = Sealer::new(&key);
        let mut sealed = sealer.update(&plain).unwrap();
        let (last, _) = sealer.finalize().unwrap();
        sealed.extend(last);
        let opened = blob_seal::open_groups(&key, sealed.len() as u64, 0, &sealed).unwrap();
        prop_assert_eq!(opened, plain);
        // Arbitrary sizes, positions and bytes: a typed error (or, by luck of sizes, no panic).
        let _ = blob_seal::open_groups(&key, sealed_size, first % 8, &junk);
        let _ = blob_seal::open_groups(&key, sealed_size, first, &junk);
    }

    // -- AEAD and signatures -------------------------------------------------------------

    #[test]
    fn aead_opens_what_it_sealed_and_refuses_anything_else(
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
        ad in proptest::collection::vec(any::<u8>(), 0..40),
        plain in proptest::collection::vec(any::<u8>(), 0..200),
        junk in proptest::collection::vec(any::<u8>(), 0..60),
    ) {
        let sealed = aead::seal(&key, &nonce, &ad, &plain);
        prop_assert_eq!(aead::open(&key, &nonce, &ad, &sealed).unwrap(), plain);
        prop_assert!(matches!(aead::open(&key, &nonce, &ad, &junk), Err(Error::Decryption)));
    }

    #[test]
    fn signature_checks_of_any_bytes_answer_without_panic(
        public_key in any::<[u8; 32]>(),
        signature in any::<[u8; 64]>(),
        message in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Random keys and signatures: a forgery would be a finding of its own.
        prop_assert!(!sign::verify(&public_key, &message, &signature));
    }

    // -- flat-tree arithmetic on any index ---------------------------------------------

    #[test]
    fn flat_tree_functions_answer_any_index_without_panic(index in any::<u64>(), depth in any::<u32>()) {
        let _ = flat_tree::depth(index);
        let _ = flat_tree::offset(index);
        let _ = flat_tree::parent(index);
        let _ = flat_tree::sibling(index);
        let _ = flat_tree::children(index);
        let _ = flat_tree::span(index);
        let _ = flat_tree::block_range(index);
        let _ = flat_tree::index(depth, index);
        if index <= 1 << 20 {
            prop_assert!(flat_tree::full_roots(index).is_ok());
        }
    }
}
