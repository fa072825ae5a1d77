//! Blobs: bao-style verified streaming over 16 KiB chunk groups
//! (docs/PROTOCOL.md §12).
//!
//! A blob's id is plain BLAKE3 (`b3sum`). The BLAKE3 tree above the 1 KiB
//! chunks is cut at chunk groups of 16 chunks: a blob of `n` groups has
//! `n - 1` parent nodes, each the 64-byte pair `left CV ‖ right CV`. The
//! outboard stores them in *in-order* layout: slot `j` holds the lowest
//! common ancestor of groups `j` and `j + 1`, so every node has a fixed
//! offset given only its position, whatever the blob's size, and a node can
//! be written the moment it is known (import, or a verified download).
//!
//! Chaining values come from the `blake3` crate's `hazmat` module; nothing
//! here re-implements the compression function.

use std::collections::BTreeMap;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use rayon::prelude::*;

use crate::error::{invalid, Error, Result};
use crate::hash::Hash;

/// log2 of the chunks in a group: 16 chunks of 1 KiB.
pub const CHUNK_LOG: u32 = 4;
pub const GROUP_SIZE: usize = 1024 << CHUNK_LOG;
/// A parent node: `left CV ‖ right CV`.
pub const NODE_SIZE: usize = 64;
/// The largest blob handled: 2^62 bytes (offsets and lengths then never overflow).
pub const MAX_SIZE: u64 = 1 << 62;
/// Below this many bytes of whole groups, hashing stays on the calling thread.
const PARALLEL_BYTES: usize = 256 * 1024;

const GS: u64 = GROUP_SIZE as u64;

/// Chunk groups in a blob of `size` bytes; the empty blob has one (empty) group.
pub fn group_count(size: u64) -> u64 {
    size.div_ceil(GS).max(1)
}

/// Bytes of the outboard of a blob of `size` bytes.
pub fn outboard_size(size: u64) -> u64 {
    (group_count(size) - 1) * NODE_SIZE as u64
}

/// Length in bytes of group `index` of a blob of `size` bytes.
pub fn group_len(size: u64, index: u64) -> usize {
    (size.saturating_sub(index.saturating_mul(GS))).min(GS) as usize
}

/// Where a group range `[start, end)` lies in the blob's bytes.
pub fn byte_range(size: u64, start: u64, end: u64) -> (u64, u64) {
    (
        start.saturating_mul(GS).min(size),
        end.saturating_mul(GS).min(size),
    )
}

/// Check `start < end <= group_count(size)`.
pub fn check_range(size: u64, start: u64, end: u64) -> Result<()> {
    if size > MAX_SIZE {
        return Err(invalid(format!("blob size {size} is over 2^62")));
    }
    let n = group_count(size);
    if start >= end || end > n {
        return Err(invalid(format!(
            "group range [{start}, {end}) is empty or outside a blob of {n} groups"
        )));
    }
    Ok(())
}

/// The first group of the right child of the node over groups `[start, end)`
/// (`end - start >= 2`): the left child holds the largest power of two of
/// groups that is less than the span, as in BLAKE3 itself.
fn split(start: u64, end: u64) -> u64 {
    let n = end - start;
    start + (1u64 << (63 - (n - 1).leading_zeros()))
}

fn group_cv(index: u64, data: &[u8], is_root: bool) -> ChainingValue {
    if is_root {
        *blake3::hash(data).as_bytes()
    } else {
        let mut h = blake3::Hasher::new();
        h.set_input_offset(index * GS);
        h.update(data);
        h.finalize_non_root()
    }
}

fn parent_cv(left: &ChainingValue, right: &ChainingValue, is_root: bool) -> ChainingValue {
    if is_root {
        *merge_subtrees_root(left, right, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(left, right, Mode::Hash)
    }
}

fn node_halves(node: &[u8]) -> (ChainingValue, ChainingValue) {
    (
        node[..32].try_into().expect("32 bytes"),
        node[32..64].try_into().expect("32 bytes"),
    )
}

/// The chaining values of whole groups, the first at group `first`.
fn group_cvs(first: u64, data: &[u8]) -> Vec<ChainingValue> {
    debug_assert_eq!(data.len() % GROUP_SIZE, 0);
    if data.len() >= PARALLEL_BYTES {
        data.par_chunks(GROUP_SIZE)
            .enumerate()
            .map(|(i, g)| group_cv(first + i as u64, g, false))
            .collect()
    } else {
        data.chunks(GROUP_SIZE)
            .enumerate()
            .map(|(i, g)| group_cv(first + i as u64, g, false))
            .collect()
    }
}

/// Incremental outboard: feed the blob in pieces of any size, take finished
/// outboard nodes as they appear, then finalize for the root (= BLAKE3).
///
/// The last group seen is held back unhashed until more data arrives or
/// `finalize`, because it is hashed with the root flag if it is the only one.
#[derive(Default)]
pub struct OutboardBuilder {
    /// Bytes of the current group, not hashed yet (at most one group).
    pending: Vec<u8>,
    /// Groups hashed so far.
    groups: u64,
    /// Roots of the complete subtrees so far: (chaining value, first group).
    stack: Vec<(ChainingValue, u64)>,
    /// Outboard nodes not yet taken, by slot.
    nodes: BTreeMap<u64, [u8; NODE_SIZE]>,
    /// Bytes fed so far.
    fed: u64,
    finished: bool,
}

impl OutboardBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.fed
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn update(&mut self, mut data: &[u8]) -> Result<()> {
        if self.finished {
            return Err(invalid("outboard builder already finalized"));
        }
        self.fed += data.len() as u64;
        while !data.is_empty() {
            if self.pending.len() == GROUP_SIZE {
                let cv = group_cv(self.groups, &self.pending, false);
                self.push(cv);
                self.pending.clear();
            }
            if self.pending.is_empty() && data.len() > GROUP_SIZE {
                // Hash whole groups in place, keeping back the last 1..=GROUP_SIZE bytes.
                let whole = (data.len() - 1) / GROUP_SIZE * GROUP_SIZE;
                for cv in group_cvs(self.groups, &data[..whole]) {
                    self.push(cv);
                }
                data = &data[whole..];
            }
            let take = (GROUP_SIZE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Push the CV of group `self.groups`, known not to be the last, merging
    /// every subtree it completes (BLAKE3's reference merge rule).
    fn push(&mut self, cv: ChainingValue) {
        let mut entry = (cv, self.groups);
        self.groups += 1;
        let mut total = self.groups;
        while total & 1 == 0 {
            let (left, first) = self.stack.pop().expect("a left subtree");
            entry = (self.merge(&left, &entry.0, entry.1, false), first);
            total >>= 1;
        }
        self.stack.push(entry);
    }

    /// Record the node `left ‖ right` (right starting at group `right_first`) and return its CV.
    fn merge(
        &mut self,
        left: &ChainingValue,
        right: &ChainingValue,
        right_first: u64,
        is_root: bool,
    ) -> ChainingValue {
        let mut node = [0u8; NODE_SIZE];
        node[..32].copy_from_slice(left);
        node[32..].copy_from_slice(right);
        self.nodes.insert(right_first - 1, node);
        parent_cv(left, right, is_root)
    }

    /// Finished nodes as runs of consecutive slots: `(byte offset in the outboard, bytes)`.
    pub fn take_nodes(&mut self) -> Vec<(u64, Vec<u8>)> {
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut next_slot = u64::MAX;
        for (slot, node) in std::mem::take(&mut self.nodes) {
            match runs.last_mut() {
                Some((_, bytes)) if slot == next_slot => bytes.extend_from_slice(&node),
                _ => runs.push((slot * NODE_SIZE as u64, node.to_vec())),
            }
            next_slot = slot + 1;
        }
        runs
    }

    /// The root hash, equal to `blake3(data)`. The last nodes become available to `take_nodes`.
    pub fn finalize(&mut self) -> Result<Hash> {
        if self.finished {
            return Err(invalid("outboard builder already finalized"));
        }
        self.finished = true;
        let last = self.groups;
        if last == 0 {
            return Ok(group_cv(0, &self.pending, true));
        }
        let mut right = (group_cv(last, &self.pending, false), last);
        self.pending = Vec::new();
        while let Some((left, first)) = self.stack.pop() {
            let is_root = self.stack.is_empty();
            right = (self.merge(&left, &right.0, right.1, is_root), first);
        }
        Ok(right.0)
    }
}

/// The outboard of a whole blob in memory, and its root.
pub fn outboard(data: &[u8]) -> (Hash, Vec<u8>) {
    let mut b = OutboardBuilder::new();
    b.update(data).expect("fresh builder");
    let root = b.finalize().expect("fresh builder");
    let mut out = vec![0u8; outboard_size(data.len() as u64) as usize];
    for (offset, bytes) in b.take_nodes() {
        out[offset as usize..offset as usize + bytes.len()].copy_from_slice(&bytes);
    }
    (root, out)
}

/// Node order of an outboard layout other than hyphal's in-order one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Each parent before its children (bao's and bao-tree's pre-order outboard).
    Pre,
    /// Each parent after its children (bao-tree's post-order outboard).
    Post,
}

/// Rearrange an in-order outboard (§12.1) into pre- or post-order, the
/// layouts of bao-tree's `PreOrderMemOutboard` / `PostOrderMemOutboard`
/// (without their size prefix or suffix) at chunk log 4.
pub fn reorder_outboard(size: u64, in_order: &[u8], order: Order) -> Result<Vec<u8>> {
    if size > MAX_SIZE || in_order.len() as u64 != outboard_size(size) {
        return Err(invalid(format!(
            "an outboard of a {size}-byte blob is {} bytes, not {}",
            outboard_size(size.min(MAX_SIZE)),
            in_order.len()
        )));
    }
    fn visit(s: u64, e: u64, in_order: &[u8], order: Order, out: &mut Vec<u8>) {
        if e - s < 2 {
            return;
        }
        let mid = split(s, e);
        let at = (mid - 1) as usize * NODE_SIZE;
        let node = &in_order[at..at + NODE_SIZE];
        if order == Order::Pre {
            out.extend_from_slice(node);
        }
        visit(s, mid, in_order, order, out);
        visit(mid, e, in_order, order, out);
        if order == Order::Post {
            out.extend_from_slice(node);
        }
    }
    let mut out = Vec::with_capacity(in_order.len());
    visit(0, group_count(size), in_order, order, &mut out);
    Ok(out)
}

/// A node still to visit in pre-order: groups `[start, end)`, the CV it must have, whether it is the root.
#[derive(Clone, Copy, Debug)]
struct Pending {
    start: u64,
    end: u64,
    cv: ChainingValue,
    is_root: bool,
}

/// Walk of the tree of a blob restricted to a group range, in wire order.
#[derive(Clone, Debug)]
struct Walk {
    size: u64,
    start: u64,
    end: u64,
    stack: Vec<Pending>,
}

enum Step {
    /// The parent node in outboard slot `slot` comes next.
    Parent(Pending, u64),
    /// Group `index` comes next.
    Group(Pending, u64),
}

impl Walk {
    fn new(root: &Hash, size: u64, start: u64, end: u64) -> Result<Walk> {
        check_range(size, start, end)?;
        let top = Pending {
            start: 0,
            end: group_count(size),
            cv: *root,
            is_root: true,
        };
        Ok(Walk {
            size,
            start,
            end,
            stack: vec![top],
        })
    }

    fn next(&mut self) -> Option<Step> {
        self.stack.pop().map(step_of)
    }

    fn len_of(&self, step: &Step) -> usize {
        match step {
            Step::Parent(..) => NODE_SIZE,
            Step::Group(_, i) => group_len(self.size, *i),
        }
    }

    /// Check a parent node against its expected CV and queue the children that meet the range.
    fn descend(&mut self, p: &Pending, node: &[u8]) -> Result<()> {
        let (left, right) = node_halves(node);
        if parent_cv(&left, &right, p.is_root) != p.cv {
            return Err(Error::Proof(format!(
                "parent node over groups [{}, {}) does not match",
                p.start, p.end
            )));
        }
        for (start, end) in self.children(p) {
            let cv = if start == p.start { left } else { right };
            self.stack.push(Pending {
                start,
                end,
                cv,
                is_root: false,
            });
        }
        Ok(())
    }

    /// The children of `p` that meet the range, right first (the order they are pushed).
    fn children(&self, p: &Pending) -> impl Iterator<Item = (u64, u64)> {
        let mid = split(p.start, p.end);
        let (lo, hi) = (self.start, self.end);
        [(mid, p.end), (p.start, mid)]
            .into_iter()
            .filter(move |&(start, end)| start < hi && end > lo)
    }

    fn check_group(p: &Pending, data: &[u8]) -> Result<()> {
        if group_cv(p.start, data, p.is_root) != p.cv {
            return Err(Error::Proof(format!("group {} does not match", p.start)));
        }
        Ok(())
    }
}

/// Bytes of the encoded response for groups `[start, end)` of a blob of `size` bytes.
pub fn encoded_len(size: u64, start: u64, end: u64) -> Result<u64> {
    check_range(size, start, end)?;
    let (lo, hi) = byte_range(size, start, end);
    let parents = parents_meeting(0, group_count(size), start, end);
    Ok(hi - lo + parents * NODE_SIZE as u64)
}

/// Parent nodes under the node over `[s, e)` whose span meets `[start, end)`:
/// O(log n) steps, as only the nodes the range cuts are descended into.
fn parents_meeting(s: u64, e: u64, start: u64, end: u64) -> u64 {
    if e - s < 2 || s >= end || e <= start {
        0
    } else if start <= s && e <= end {
        e - s - 1
    } else {
        let mid = split(s, e);
        1 + parents_meeting(s, mid, start, end) + parents_meeting(mid, e, start, end)
    }
}

/// Encode the verified response for groups `[start, end)`: in pre-order,
/// each parent node whose span meets the range, then the groups' bytes.
///
/// `outboard` is the whole outboard (only the nodes on the range's paths are
/// read); `data` holds exactly the bytes of the range. Everything sent is
/// checked against `root` first, so a corrupt store is caught here.
pub fn encode_range(
    root: &Hash,
    size: u64,
    outboard: &[u8],
    data: &[u8],
    start: u64,
    end: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    walk_stored(root, size, outboard, data, start, end, Some(&mut out))?;
    Ok(out)
}

/// Check stored groups `[start, end)` and the nodes above them against `root`,
/// as [`encode_range`] does, without encoding anything.
pub fn verify_range(
    root: &Hash,
    size: u64,
    outboard: &[u8],
    data: &[u8],
    start: u64,
    end: u64,
) -> Result<()> {
    walk_stored(root, size, outboard, data, start, end, None)
}

fn walk_stored(
    root: &Hash,
    size: u64,
    outboard: &[u8],
    data: &[u8],
    start: u64,
    end: u64,
    mut out: Option<&mut Vec<u8>>,
) -> Result<()> {
    let mut walk = Walk::new(root, size, start, end)?;
    let (lo, hi) = byte_range(size, start, end);
    if data.len() as u64 != hi - lo {
        return Err(invalid(format!(
            "range data is {} bytes, groups [{start}, {end}) hold {}",
            data.len(),
            hi - lo
        )));
    }
    if (outboard.len() as u64) < outboard_size(size) {
        return Err(invalid(format!(
            "outboard is {} bytes, a blob of {size} bytes needs {}",
            outboard.len(),
            outboard_size(size)
        )));
    }
    if let Some(out) = out.as_deref_mut() {
        out.reserve(encoded_len(size, start, end)? as usize);
    }
    while let Some(step) = walk.next() {
        let item = match step {
            Step::Parent(p, slot) => {
                let at = slot as usize * NODE_SIZE;
                let node = &outboard[at..at + NODE_SIZE];
                walk.descend(&p, node)?;
                node
            }
            Step::Group(p, index) => {
                let at = ((index - start) * GS) as usize;
                let bytes = &data[at..at + group_len(size, index)];
                Walk::check_group(&p, bytes)?;
                bytes
            }
        };
        if let Some(out) = out.as_deref_mut() {
            out.extend_from_slice(item);
        }
    }
    Ok(())
}

/// Items a [`RangeDecoder`] has verified.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Parent nodes: (outboard byte offset, 64 bytes), each run of consecutive slots joined.
    pub nodes: Vec<(u64, Vec<u8>)>,
    /// Groups: (first group index, bytes), each run of consecutive groups joined.
    pub groups: Vec<(u64, Vec<u8>)>,
}

impl Verified {
    fn push_node(&mut self, slot: u64, node: &[u8]) {
        let offset = slot * NODE_SIZE as u64;
        match self.nodes.last_mut() {
            Some((o, b)) if *o + b.len() as u64 == offset => b.extend_from_slice(node),
            _ => self.nodes.push((offset, node.to_vec())),
        }
    }

    fn push_group(&mut self, index: u64, data: &[u8], capacity: usize) {
        match self.groups.last_mut() {
            Some((first, b)) if *first + (b.len() as u64).div_ceil(GS) == index => {
                b.extend_from_slice(data)
            }
            _ => {
                let mut run = Vec::with_capacity(capacity);
                run.extend_from_slice(data);
                self.groups.push((index, run))
            }
        }
    }

    /// Sort the node runs by offset and join the adjacent ones: fewer, larger writes.
    fn join_nodes(&mut self) {
        if self.nodes.len() < 2 {
            return;
        }
        let mut runs = std::mem::take(&mut self.nodes);
        runs.sort_unstable_by_key(|(offset, _)| *offset);
        for (offset, bytes) in runs {
            match self.nodes.last_mut() {
                Some((o, b)) if *o + b.len() as u64 == offset => b.extend_from_slice(&bytes),
                _ => self.nodes.push((offset, bytes)),
            }
        }
    }
}

/// Streaming verifier of an encoded response for groups `[start, end)`.
///
/// Feed the response in pieces of any size; each group is checked against
/// the root as soon as its last byte arrives and only then returned. The
/// first mismatch is an error and the decoder accepts nothing more.
#[derive(Debug)]
pub struct RangeDecoder {
    walk: Walk,
    buf: Vec<u8>,
    failed: bool,
}

impl RangeDecoder {
    pub fn new(root: &Hash, size: u64, start: u64, end: u64) -> Result<RangeDecoder> {
        Ok(RangeDecoder {
            walk: Walk::new(root, size, start, end)?,
            buf: Vec::new(),
            failed: false,
        })
    }

    /// Whether every item of the response has been verified.
    pub fn is_done(&self) -> bool {
        self.walk.stack.is_empty()
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<Verified> {
        if self.failed {
            return Err(Error::Proof("decoder already rejected its input".into()));
        }
        let r = self.feed_inner(data);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn feed_inner(&mut self, data: &[u8]) -> Result<Verified> {
        // 1. Which items the input completes. The walk's shape depends only on
        //    the spans, not on the hashes, so it can be traced ahead.
        let mut shape = self.walk.stack.clone();
        let mut items: Vec<(Step, Option<(usize, usize)>)> = Vec::new(); // None: the item is in `buf`
        let mut at = 0usize;
        let mut trailing = false;
        while let Some(p) = shape.pop() {
            let step = step_of(p);
            let need = self.walk.len_of(&step);
            let src = if items.is_empty() && !self.buf.is_empty() {
                let take = (need - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                at = take;
                if self.buf.len() < need {
                    shape.push(p);
                    break;
                }
                None
            } else if data.len() - at >= need {
                at += need;
                Some((at - need, at))
            } else {
                shape.push(p);
                break;
            };
            if let Step::Parent(p, _) = step {
                for (start, end) in self.walk.children(&p) {
                    shape.push(Pending {
                        start,
                        end,
                        cv: p.cv,
                        is_root: false,
                    });
                }
            }
            items.push((step, src));
        }
        if shape.is_empty() && at < data.len() {
            trailing = true;
        }
        let bytes = |src: &Option<(usize, usize)>| -> &[u8] {
            match src {
                Some((a, b)) => &data[*a..*b],
                None => &self.buf,
            }
        };
        // 2. Hash the groups, in parallel when there is enough of them.
        let groups: Vec<(u64, &[u8], bool)> = items
            .iter()
            .filter_map(|(step, src)| match step {
                Step::Group(p, i) => Some((*i, bytes(src), p.is_root)),
                Step::Parent(..) => None,
            })
            .collect();
        let group_bytes: usize = groups.iter().map(|g| g.1.len()).sum();
        let cvs: Vec<ChainingValue> = if group_bytes >= PARALLEL_BYTES {
            groups
                .par_iter()
                .map(|(i, d, r)| group_cv(*i, d, *r))
                .collect()
        } else {
            groups.iter().map(|(i, d, r)| group_cv(*i, d, *r)).collect()
        };
        // 3. Check every item against what its parent says, in order.
        let mut out = Verified::default();
        let mut cv_at = 0;
        for (step, src) in &items {
            let item = bytes(src);
            let p = self.walk.stack.pop().expect("traced ahead");
            match step {
                Step::Parent(_, slot) => {
                    self.walk.descend(&p, item)?;
                    out.push_node(*slot, item);
                }
                Step::Group(_, index) => {
                    if cvs[cv_at] != p.cv {
                        return Err(Error::Proof(format!("group {index} does not match")));
                    }
                    cv_at += 1;
                    out.push_group(*index, item, group_bytes);
                }
            }
        }
        if trailing {
            return Err(Error::Decode(format!(
                "{} bytes past the end of the response",
                data.len() - at
            )));
        }
        // Keep the start of an incomplete item for the next call.
        if items.first().is_some_and(|(_, src)| src.is_none()) {
            self.buf.clear();
        }
        self.buf.extend_from_slice(&data[at..]);
        out.join_nodes();
        Ok(out)
    }
}

fn step_of(p: Pending) -> Step {
    if p.end - p.start == 1 {
        Step::Group(p, p.start)
    } else {
        Step::Parent(p, split(p.start, p.end) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n as u64)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect()
    }

    const SIZES: [usize; 14] = [
        0,
        1,
        1023,
        1024,
        16383,
        16384,
        16385,
        32768,
        49153,
        65536,
        100_000,
        5 * 16384 + 7,
        1 << 20,
        3 * (1 << 20) + 12345,
    ];

    #[test]
    fn root_is_blake3_for_any_feeding() {
        for size in SIZES {
            let d = data(size);
            let (root, ob) = outboard(&d);
            assert_eq!(root, *blake3::hash(&d).as_bytes(), "size {size}");
            assert_eq!(ob.len() as u64, outboard_size(size as u64));
            for piece in [1usize, 1000, 16384, 16385, 70_000] {
                let mut b = OutboardBuilder::new();
                let mut nodes = vec![0u8; ob.len()];
                for c in d.chunks(piece) {
                    b.update(c).unwrap();
                    for (o, bytes) in b.take_nodes() {
                        nodes[o as usize..o as usize + bytes.len()].copy_from_slice(&bytes);
                    }
                }
                assert_eq!(b.finalize().unwrap(), root);
                for (o, bytes) in b.take_nodes() {
                    nodes[o as usize..o as usize + bytes.len()].copy_from_slice(&bytes);
                }
                assert_eq!(nodes, ob, "size {size} piece {piece}");
            }
        }
    }

    #[test]
    fn outboard_nodes_are_in_order_lcas() {
        // 3 groups: slot 0 = (g0, g1), slot 1 = (P01, g2) and the root merges slot 1.
        let d = data(3 * GROUP_SIZE);
        let (root, ob) = outboard(&d);
        let g: Vec<_> = (0..3)
            .map(|i| group_cv(i, &d[i as usize * GROUP_SIZE..][..GROUP_SIZE], false))
            .collect();
        assert_eq!(&ob[..32], &g[0]);
        assert_eq!(&ob[32..64], &g[1]);
        let p01 = parent_cv(&g[0], &g[1], false);
        assert_eq!(&ob[64..96], &p01);
        assert_eq!(&ob[96..128], &g[2]);
        assert_eq!(parent_cv(&p01, &g[2], true), root);
    }

    fn ranges(n: u64) -> Vec<(u64, u64)> {
        let mut r = vec![(0, n), (n - 1, n), (0, 1)];
        if n > 2 {
            r.push((1, n - 1));
            r.push((n / 2, n / 2 + 1));
        }
        r
    }

    #[test]
    fn encode_decode_every_range() {
        for size in SIZES {
            let d = data(size);
            let (root, ob) = outboard(&d);
            let n = group_count(size as u64);
            for (s, e) in ranges(n) {
                let (lo, hi) = byte_range(size as u64, s, e);
                let slice = &d[lo as usize..hi as usize];
                let enc = encode_range(&root, size as u64, &ob, slice, s, e).unwrap();
                assert_eq!(enc.len() as u64, encoded_len(size as u64, s, e).unwrap());
                for piece in [1usize, 64, 5000, 1 << 20] {
                    let mut dec = RangeDecoder::new(&root, size as u64, s, e).unwrap();
                    let mut got = Vec::new();
                    let mut nodes = Vec::new();
                    for c in enc.chunks(piece) {
                        let v = dec.feed(c).unwrap();
                        for (i, b) in v.groups {
                            assert_eq!(i * GS, lo + got.len() as u64);
                            got.extend_from_slice(&b);
                        }
                        nodes.extend(v.nodes);
                    }
                    assert!(dec
                        .feed(&[])
                        .unwrap()
                        .groups
                        .iter()
                        .all(|(_, b)| b.is_empty()));
                    assert!(dec.is_done());
                    assert_eq!(got, slice, "size {size} range {s}..{e}");
                    for (o, b) in nodes {
                        assert_eq!(&ob[o as usize..o as usize + b.len()], &b[..]);
                    }
                }
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let size = 5 * GROUP_SIZE + 100;
        let d = data(size);
        let (root, ob) = outboard(&d);
        let enc = encode_range(&root, size as u64, &ob, &d, 0, 6).unwrap();
        for i in (0..enc.len()).step_by(97).chain([0, enc.len() - 1]) {
            let mut bad = enc.clone();
            bad[i] ^= 0x40;
            let mut dec = RangeDecoder::new(&root, size as u64, 0, 6).unwrap();
            let mut ok_bytes = 0;
            let mut failed = false;
            for c in bad.chunks(4096) {
                match dec.feed(c) {
                    Ok(v) => {
                        for (idx, b) in v.groups {
                            // Whatever was released is genuine.
                            let at = idx as usize * GROUP_SIZE;
                            assert_eq!(&d[at..at + b.len()], &b[..]);
                            ok_bytes += b.len();
                        }
                    }
                    Err(e) => {
                        assert!(matches!(e, Error::Proof(_)));
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "flip at {i} not caught");
            assert!(ok_bytes < size);
            assert!(dec.feed(b"x").is_err());
        }
        // A corrupt store is refused by the encoder.
        let mut bad_data = d.clone();
        bad_data[3 * GROUP_SIZE + 5] ^= 1;
        assert!(encode_range(&root, size as u64, &ob, &bad_data, 0, 6).is_err());
        assert!(verify_range(&root, size as u64, &ob, &bad_data, 0, 6).is_err());
        assert!(verify_range(&root, size as u64, &ob, &bad_data[..3 * GROUP_SIZE], 0, 3).is_ok());
        let mut bad_ob = ob.clone();
        bad_ob[70] ^= 1;
        assert!(encode_range(&root, size as u64, &bad_ob, &d, 0, 6).is_err());
    }

    #[test]
    fn wrong_size_or_trailing_bytes_rejected() {
        let size = 4 * GROUP_SIZE;
        let d = data(size);
        let (root, ob) = outboard(&d);
        let enc = encode_range(&root, size as u64, &ob, &d[3 * GROUP_SIZE..], 3, 4).unwrap();
        let mut dec = RangeDecoder::new(&root, size as u64 - 1, 3, 4).unwrap();
        assert!(dec.feed(&enc).is_err());
        let mut dec = RangeDecoder::new(&root, size as u64 * 2, 3, 4).unwrap();
        assert!(dec.feed(&enc).is_err());
        let mut dec = RangeDecoder::new(&root, size as u64, 3, 4).unwrap();
        let mut long = enc.clone();
        long.push(0);
        assert!(matches!(dec.feed(&long), Err(Error::Decode(_))));
        assert!(RangeDecoder::new(&root, size as u64, 2, 2).is_err());
        assert!(RangeDecoder::new(&root, size as u64, 0, 5).is_err());
        assert!(encode_range(&root, size as u64, &ob[..64], &d, 0, 4).is_err());
        assert!(encode_range(&root, size as u64, &ob, &d[1..], 0, 4).is_err());
    }

    #[test]
    fn encoded_len_is_arithmetic_even_for_huge_blobs() {
        assert!(encoded_len(u64::MAX, 0, 1).is_err());
        assert!(RangeDecoder::new(&[0; 32], MAX_SIZE + 1, 0, 1).is_err());
        let huge = MAX_SIZE;
        let n = group_count(huge);
        assert_eq!(
            encoded_len(huge, 0, n).unwrap(),
            huge + (n - 1) * NODE_SIZE as u64
        );
        assert!(encoded_len(huge, 5, n / 2).unwrap() > (n / 2 - 5) * GS);
    }

    #[test]
    fn outboards_and_encodings_equal_bao_tree() {
        use bao_tree::io::outboard::{PostOrderMemOutboard, PreOrderMemOutboard};
        use bao_tree::io::sync::encode_ranges_validated;
        use bao_tree::{BlockSize, ChunkNum, ChunkRanges};
        for size in SIZES {
            let d = data(size);
            let (root, ob) = outboard(&d);
            let pre = PreOrderMemOutboard::create(&d, BlockSize::from_chunk_log(4));
            let post = PostOrderMemOutboard::create(&d, BlockSize::from_chunk_log(4));
            assert_eq!(pre.root.as_bytes(), &root);
            let ours_pre = reorder_outboard(size as u64, &ob, Order::Pre).unwrap();
            let ours_post = reorder_outboard(size as u64, &ob, Order::Post).unwrap();
            assert_eq!(ours_pre, pre.data, "pre-order, size {size}");
            assert_eq!(ours_post, post.data, "post-order, size {size}");
            for (s, e) in ranges(group_count(size as u64)) {
                let chunks = ChunkRanges::from(ChunkNum(s * 16)..ChunkNum(e * 16));
                let mut theirs = Vec::new();
                encode_ranges_validated(&d[..], &pre, &chunks, &mut theirs).unwrap();
                let (lo, hi) = byte_range(size as u64, s, e);
                let ours =
                    encode_range(&root, size as u64, &ob, &d[lo as usize..hi as usize], s, e);
                assert_eq!(ours.unwrap(), theirs, "size {size} groups {s}..{e}");
            }
        }
        assert!(reorder_outboard(100_000, &[0; 64], Order::Pre).is_err());
    }

    #[test]
    fn builder_refuses_use_after_finalize() {
        let mut b = OutboardBuilder::new();
        b.update(b"abc").unwrap();
        assert_eq!(b.len(), 3);
        b.finalize().unwrap();
        assert_eq!(b.len(), 3);
        assert!(b.update(b"d").is_err());
        assert!(b.finalize().is_err());
    }
}
