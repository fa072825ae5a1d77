//! Merkle trees over flat-tree indexes, and the single proof format that
//! covers inclusion of a block, of a range, and upgrades (docs/PROTOCOL.md §3–4).

use rayon::prelude::*;

use crate::error::{invalid, Error, Result};
use crate::flat_tree::{self, MAX_LENGTH};
use crate::hash::{keyed_hash, leaf_hash, parent_hash, Hash, HEAD_KEY};

/// Batches with at least this many bytes hash their leaves on the rayon pool.
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// A node of the tree: its flat index, hash, and the bytes of block data under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub index: u64,
    pub hash: Hash,
    pub size: u64,
}

/// The parent of two sibling nodes.
pub fn parent_node(left: &Node, right: &Node) -> Result<Node> {
    let index = flat_tree::parent(left.index)?;
    if flat_tree::sibling(left.index)? != right.index || left.index > right.index {
        return Err(invalid(format!(
            "nodes {} and {} are not left and right siblings",
            left.index, right.index
        )));
    }
    let size = left
        .size
        .checked_add(right.size)
        .ok_or_else(|| invalid("node sizes overflow u64"))?;
    Ok(Node {
        index,
        hash: parent_hash(size, &left.hash, &right.hash),
        size,
    })
}

/// The number of blocks of the tree whose roots these are; errors unless
/// they are exactly `full_roots(n)` for some `n`.
pub fn roots_length(roots: &[Node]) -> Result<u64> {
    let mut covered = 0u64;
    let mut previous_width = u64::MAX;
    for root in roots {
        let depth = flat_tree::depth(root.index)?;
        if depth > 62 {
            return Err(invalid(format!(
                "node {} is too high to be a root",
                root.index
            )));
        }
        let width = 1u64 << depth;
        if width >= previous_width || root.index != 2 * covered + width - 1 {
            return Err(invalid(format!(
                "node {} is not the next root of a tree",
                root.index
            )));
        }
        covered += width;
        previous_width = width;
    }
    flat_tree::check_length(covered)
}

/// `KH(HEAD_KEY, u64le(n) ‖ for each root: hash ‖ u64le(size))`.
pub fn tree_hash(roots: &[Node]) -> Result<Hash> {
    let length = roots_length(roots)?;
    let mut buf = Vec::with_capacity(8 + roots.len() * 40);
    buf.extend_from_slice(&length.to_le_bytes());
    for root in roots {
        buf.extend_from_slice(&root.hash);
        buf.extend_from_slice(&root.size.to_le_bytes());
    }
    Ok(keyed_hash(&HEAD_KEY, &buf))
}

fn hash_leaves(first: u64, blocks: &[&[u8]], parallel: bool) -> Vec<Node> {
    let leaf = |(i, data): (usize, &&[u8])| {
        let block = first + i as u64;
        Node {
            index: 2 * block,
            hash: leaf_hash(block, data),
            size: data.len() as u64,
        }
    };
    let total: usize = blocks.iter().map(|b| b.len()).sum();
    if parallel && blocks.len() > 1 && total >= PARALLEL_MIN_BYTES {
        blocks.par_iter().enumerate().map(leaf).collect()
    } else {
        blocks.iter().enumerate().map(leaf).collect()
    }
}

/// Append `blocks` to the tree with `roots`. Returns every new node (leaves
/// and parents, in creation order) and the new roots.
pub fn append(roots: &[Node], blocks: &[&[u8]], parallel: bool) -> Result<(Vec<Node>, Vec<Node>)> {
    let length = roots_length(roots)?;
    if blocks.len() as u64 > MAX_LENGTH - length {
        return Err(invalid("appending would pass the maximum length 2^62"));
    }
    let leaves = hash_leaves(length, blocks, parallel);
    let mut nodes = Vec::with_capacity(2 * leaves.len());
    let mut stack: Vec<Node> = roots.to_vec();
    for leaf in leaves {
        nodes.push(leaf);
        stack.push(leaf);
        // Merge while the two rightmost roots are left and right siblings.
        while stack.len() >= 2 {
            let right = stack[stack.len() - 1];
            let left = stack[stack.len() - 2];
            if flat_tree::depth(left.index)? != flat_tree::depth(right.index)?
                || flat_tree::sibling(right.index)? != left.index
            {
                break;
            }
            let parent = parent_node(&left, &right)?;
            stack.truncate(stack.len() - 2);
            stack.push(parent);
            nodes.push(parent);
        }
    }
    Ok((nodes, stack))
}

/// What the proof walk does at a node (PROTOCOL.md §4).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// A leaf inside the range: the verifier hashes the block.
    RangeLeaf,
    /// One of the verifier's roots at `upgrade_from`.
    Known,
    /// Carried in the proof.
    Carried,
    /// Visit both children.
    Descend,
}

struct Walk {
    upgrade_from: u64,
    start: u64,
    end: u64,
    known: Vec<u64>,
}

impl Walk {
    fn new(length: u64, upgrade_from: u64, start: u64, end: u64) -> Result<Walk> {
        flat_tree::check_length(length)?;
        if upgrade_from > length {
            return Err(invalid(format!(
                "upgrade_from {upgrade_from} is past length {length}"
            )));
        }
        if start > end || end > length {
            return Err(invalid(format!(
                "range [{start}, {end}) is not within length {length}"
            )));
        }
        Ok(Walk {
            upgrade_from,
            start,
            end,
            known: flat_tree::full_roots(upgrade_from)?,
        })
    }

    fn step(&self, index: u64) -> Result<Step> {
        let (s, e) = flat_tree::block_range(index)?;
        let overlaps = self.start < self.end && s < self.end && self.start < e;
        let straddles = s < self.upgrade_from && self.upgrade_from < e;
        Ok(if overlaps && s + 1 == e {
            Step::RangeLeaf
        } else if !overlaps && !straddles {
            if self.known.contains(&index) {
                Step::Known
            } else {
                Step::Carried
            }
        } else {
            Step::Descend
        })
    }

    fn children(index: u64) -> Result<(u64, u64)> {
        flat_tree::children(index)?
            .ok_or_else(|| Error::Proof(format!("walk descended into leaf {index}")))
    }

    fn carried(&self, index: u64, out: &mut Vec<u64>) -> Result<()> {
        // Below a node wholly inside the range every leaf is a range leaf and
        // every parent descends, so nothing is carried. Skipping it keeps the
        // walk O(log n) for any range, which matters when decoding a hostile
        // header that claims a range of 2^62 blocks.
        let (s, e) = flat_tree::block_range(index)?;
        if self.start <= s && e <= self.end {
            return Ok(());
        }
        match self.step(index)? {
            Step::Carried => out.push(index),
            Step::Descend => {
                let (left, right) = Self::children(index)?;
                self.carried(left, out)?;
                self.carried(right, out)?;
            }
            Step::RangeLeaf | Step::Known => {}
        }
        Ok(())
    }
}

/// The flat indexes of the nodes a proof carries, in proof order.
pub fn proof_indices(length: u64, upgrade_from: u64, start: u64, end: u64) -> Result<Vec<u64>> {
    let walk = Walk::new(length, upgrade_from, start, end)?;
    let mut out = Vec::new();
    for root in flat_tree::full_roots(length)? {
        walk.carried(root, &mut out)?;
    }
    Ok(out)
}

/// A decoded proof. `nodes` carry the flat indexes the walk assigns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub length: u64,
    pub upgrade_from: u64,
    pub start: u64,
    pub end: u64,
    pub nodes: Vec<Node>,
}

pub const PROOF_VERSION: u8 = 1;
const PROOF_HEADER: usize = 1 + 8 * 4 + 4;
const PROOF_NODE: usize = 32 + 8;

impl Proof {
    /// Build a proof from its fields, checking that `nodes` are exactly the ones the walk carries.
    pub fn new(
        length: u64,
        upgrade_from: u64,
        start: u64,
        end: u64,
        nodes: Vec<Node>,
    ) -> Result<Proof> {
        let want = proof_indices(length, upgrade_from, start, end)?;
        if want.len() != nodes.len() {
            return Err(invalid(format!(
                "this proof carries {} nodes, not {}",
                want.len(),
                nodes.len()
            )));
        }
        if let Some((w, n)) = want.iter().zip(&nodes).find(|(w, n)| **w != n.index) {
            return Err(invalid(format!(
                "proof node {} given where node {w} belongs",
                n.index
            )));
        }
        Ok(Proof {
            length,
            upgrade_from,
            start,
            end,
            nodes,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_HEADER + PROOF_NODE * self.nodes.len());
        out.push(PROOF_VERSION);
        for field in [self.length, self.upgrade_from, self.start, self.end] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out.extend_from_slice(&(self.nodes.len() as u32).to_le_bytes());
        for node in &self.nodes {
            out.extend_from_slice(&node.hash);
            out.extend_from_slice(&node.size.to_le_bytes());
        }
        out
    }

    pub fn decode(data: &[u8]) -> Result<Proof> {
        let bad = |m: &str| Error::Decode(format!("proof: {m}"));
        if data.len() < PROOF_HEADER {
            return Err(bad("shorter than its header"));
        }
        if data[0] != PROOF_VERSION {
            return Err(bad("unknown version"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let (length, upgrade_from, start, end) = (u64_at(1), u64_at(9), u64_at(17), u64_at(25));
        let count = u32::from_le_bytes(data[33..37].try_into().expect("4 bytes")) as usize;
        if data.len() != PROOF_HEADER + PROOF_NODE * count {
            return Err(bad("length does not match its node count"));
        }
        let indices =
            proof_indices(length, upgrade_from, start, end).map_err(|e| bad(&e.to_string()))?;
        if indices.len() != count {
            return Err(bad("node count does not match its range and length"));
        }
        let nodes = indices
            .iter()
            .zip(data[PROOF_HEADER..].chunks_exact(PROOF_NODE))
            .map(|(&index, chunk)| Node {
                index,
                hash: chunk[..32].try_into().expect("32 bytes"),
                size: u64::from_le_bytes(chunk[32..].try_into().expect("8 bytes")),
            })
            .collect();
        Ok(Proof {
            length,
            upgrade_from,
            start,
            end,
            nodes,
        })
    }
}

struct Verifier<'a> {
    walk: Walk,
    leaves: Vec<Node>,
    known: &'a [Node],
    carried: std::slice::Iter<'a, Node>,
    verified: Vec<Node>,
}

impl Verifier<'_> {
    fn node(&mut self, index: u64) -> Result<Node> {
        let node = match self.walk.step(index)? {
            Step::RangeLeaf => self.leaves[(index / 2 - self.walk.start) as usize],
            Step::Known => *self
                .known
                .iter()
                .find(|n| n.index == index)
                .expect("known roots checked"),
            Step::Carried => *self
                .carried
                .next()
                .ok_or_else(|| Error::Proof("too few nodes".into()))?,
            Step::Descend => {
                let (left, right) = Walk::children(index)?;
                let left = self.node(left)?;
                let right = self.node(right)?;
                let size = left
                    .size
                    .checked_add(right.size)
                    .ok_or_else(|| Error::Proof("node sizes overflow".into()))?;
                Node {
                    index,
                    hash: parent_hash(size, &left.hash, &right.hash),
                    size,
                }
            }
        };
        // A recomputed node that the verifier already held must come out the
        // same: that is what proves the new tree extends the old one.
        if let Some(known) = self.known.iter().find(|n| n.index == index) {
            if *known != node {
                return Err(Error::Proof(format!(
                    "node {index} differs from the verifier's root"
                )));
            }
        }
        self.verified.push(node);
        Ok(node)
    }
}

/// Verify `proof` with the blocks of its range against a trusted tree hash.
/// `known_roots` are the verifier's roots at `proof.upgrade_from`. Returns
/// every node the walk visited (all now verified), the new roots included.
pub fn verify(
    proof: &Proof,
    blocks: &[&[u8]],
    trusted: &Hash,
    known_roots: &[Node],
    parallel: bool,
) -> Result<Vec<Node>> {
    let walk = Walk::new(proof.length, proof.upgrade_from, proof.start, proof.end)?;
    if blocks.len() as u64 != proof.end - proof.start {
        return Err(Error::Proof(format!(
            "proof covers {} blocks, {} given",
            proof.end - proof.start,
            blocks.len()
        )));
    }
    if known_roots.len() != walk.known.len()
        || known_roots
            .iter()
            .zip(&walk.known)
            .any(|(n, i)| n.index != *i)
    {
        return Err(Error::Proof(format!(
            "proof upgrades from length {}, but the known roots are not that tree's roots",
            proof.upgrade_from
        )));
    }
    let mut verifier = Verifier {
        leaves: hash_leaves(proof.start, blocks, parallel),
        walk,
        known: known_roots,
        carried: proof.nodes.iter(),
        verified: Vec::with_capacity(2 * blocks.len() + proof.nodes.len() + 64),
    };
    let roots = flat_tree::full_roots(proof.length)?
        .into_iter()
        .map(|r| verifier.node(r))
        .collect::<Result<Vec<_>>>()?;
    if verifier.carried.next().is_some() {
        return Err(Error::Proof("more nodes than the walk uses".into()));
    }
    if tree_hash(&roots)? != *trusted {
        return Err(Error::Proof(
            "tree hash differs from the trusted one".into(),
        ));
    }
    Ok(verifier.verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn blocks(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("block number {i}").into_bytes())
            .collect()
    }

    fn build(data: &[Vec<u8>]) -> (HashMap<u64, Node>, Vec<Node>) {
        let refs: Vec<&[u8]> = data.iter().map(|b| b.as_slice()).collect();
        let (nodes, roots) = append(&[], &refs, false).unwrap();
        (nodes.into_iter().map(|n| (n.index, n)).collect(), roots)
    }

    fn roots_at(all: &HashMap<u64, Node>, length: u64) -> Vec<Node> {
        flat_tree::full_roots(length)
            .unwrap()
            .iter()
            .map(|i| all[i])
            .collect()
    }

    fn prove(
        all: &HashMap<u64, Node>,
        length: u64,
        upgrade_from: u64,
        start: u64,
        end: u64,
    ) -> Proof {
        let nodes = proof_indices(length, upgrade_from, start, end)
            .unwrap()
            .iter()
            .map(|i| all[i])
            .collect();
        Proof::new(length, upgrade_from, start, end, nodes).unwrap()
    }

    #[test]
    fn batches_and_single_appends_agree() {
        let data = blocks(37);
        let refs: Vec<&[u8]> = data.iter().map(|b| b.as_slice()).collect();
        let (_, whole) = append(&[], &refs, true).unwrap();
        let mut roots = Vec::new();
        for chunk in refs.chunks(5) {
            roots = append(&roots, chunk, false).unwrap().1;
        }
        assert_eq!(roots, whole);
        assert_eq!(roots_length(&roots).unwrap(), 37);
        assert_eq!(
            roots.iter().map(|r| r.index).collect::<Vec<_>>(),
            flat_tree::full_roots(37).unwrap()
        );
        assert_eq!(
            roots.iter().map(|r| r.size).sum::<u64>(),
            data.iter().map(|b| b.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn every_range_and_upgrade_verifies_and_encodes() {
        let data = blocks(13);
        let (all, _) = build(&data);
        for length in 0..=13u64 {
            let trusted = tree_hash(&roots_at(&all, length)).unwrap();
            for upgrade_from in 0..=length {
                let known = roots_at(&all, upgrade_from);
                for start in 0..=length {
                    for end in start..=length {
                        let proof = prove(&all, length, upgrade_from, start, end);
                        let decoded = Proof::decode(&proof.encode()).unwrap();
                        assert_eq!(decoded, proof);
                        let refs: Vec<&[u8]> = data[start as usize..end as usize]
                            .iter()
                            .map(|b| b.as_slice())
                            .collect();
                        let verified = verify(&decoded, &refs, &trusted, &known, false).unwrap();
                        for node in &verified {
                            assert_eq!(all[&node.index], *node);
                        }
                        for root in roots_at(&all, length) {
                            assert!(verified.contains(&root));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_seed_example_fetches_only_block_10() {
        // A reader holding blocks 0-8 (and so the roots of a tree of 9) wants block 10 of 11.
        let data = blocks(11);
        let (all, roots) = build(&data);
        let proof = prove(&all, 11, 9, 10, 11);
        // Roots at 9 are 7 (blocks 0-7) and 16 (block 8); the new tree's roots are 7, 17 (blocks 8-9) and 20.
        // The reader hashes block 10 itself and needs only leaf 18 (block 9) to rebuild 17 from 16.
        assert_eq!(
            proof.nodes.iter().map(|n| n.index).collect::<Vec<_>>(),
            vec![18]
        );
        let verified = verify(
            &proof,
            &[&data[10]],
            &tree_hash(&roots).unwrap(),
            &roots_at(&all, 9),
            false,
        )
        .unwrap();
        assert!(verified.contains(&all[&20]));
    }

    #[test]
    fn any_changed_block_node_or_field_is_rejected() {
        let data = blocks(11);
        let (all, roots) = build(&data);
        let trusted = tree_hash(&roots).unwrap();
        let known = roots_at(&all, 3);
        let proof = prove(&all, 11, 3, 4, 7);
        let refs: Vec<&[u8]> = data[4..7].iter().map(|b| b.as_slice()).collect();
        assert!(verify(&proof, &refs, &trusted, &known, false).is_ok());
        let encoded = proof.encode();
        for bit in 0..encoded.len() * 8 {
            let mut bad = encoded.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let outcome = Proof::decode(&bad).and_then(|p| {
                let n = (p.end.saturating_sub(p.start) as usize).min(refs.len());
                verify(&p, &refs[..n], &trusted, &known, false)
            });
            assert!(
                outcome.is_err(),
                "bit {bit} of the proof flipped and it still verified"
            );
        }
        let mut block = data[5].clone();
        block[0] ^= 1;
        let changed: Vec<&[u8]> = vec![&data[4], &block, &data[6]];
        assert!(matches!(
            verify(&proof, &changed, &trusted, &known, false),
            Err(Error::Proof(_))
        ));
        let mut wrong_hash = trusted;
        wrong_hash[31] ^= 0x80;
        assert!(verify(&proof, &refs, &wrong_hash, &known, false).is_err());
    }

    #[test]
    fn a_fork_is_caught_by_the_known_roots() {
        let data = blocks(8);
        let mut forked = data.clone();
        forked[1] = b"rewritten history".to_vec();
        let (all, roots) = build(&data);
        let (forked_all, _) = build(&forked);
        let proof = prove(&all, 8, 3, 8, 8);
        let trusted = tree_hash(&roots).unwrap();
        assert!(verify(&proof, &[], &trusted, &roots_at(&all, 3), false).is_ok());
        let outcome = verify(&proof, &[], &trusted, &roots_at(&forked_all, 3), false);
        assert!(matches!(outcome, Err(Error::Proof(_))));
    }

    #[test]
    fn malformed_encodings_and_bad_arguments() {
        assert!(matches!(Proof::decode(b""), Err(Error::Decode(_))));
        let data = blocks(4);
        let (all, _) = build(&data);
        let mut encoded = prove(&all, 4, 0, 1, 2).encode();
        encoded.push(0);
        assert!(matches!(Proof::decode(&encoded), Err(Error::Decode(_))));
        assert!(proof_indices(4, 5, 0, 0).is_err());
        assert!(proof_indices(4, 0, 3, 2).is_err());
        assert!(proof_indices(MAX_LENGTH + 1, 0, 0, 0).is_err());
        assert!(Proof::new(4, 0, 1, 2, vec![]).is_err());
        // A header claiming a huge range must decode without walking every leaf.
        assert!(proof_indices(MAX_LENGTH, 0, 0, MAX_LENGTH)
            .unwrap()
            .is_empty());
        assert_eq!(
            proof_indices(MAX_LENGTH, 5, 1, MAX_LENGTH - 1)
                .unwrap()
                .len(),
            2
        );
        let leaf = all[&0];
        assert!(roots_length(&[all[&2]]).is_err());
        assert!(roots_length(&[leaf, leaf]).is_err());
        assert!(tree_hash(&[all[&1], all[&4], all[&5]]).is_err());
    }
}
