//! Flat-tree (in-order) index math: leaves are even, parents odd.
//! See docs/PROTOCOL.md §2. Indexes live in `[0, 2^63)`; any result that
//! would leave that range is an `InvalidInput` error instead of a wrap.

use crate::error::{invalid, Result};

/// The largest feed length, in blocks: every flat index then fits in 63 bits.
pub const MAX_LENGTH: u64 = 1 << 62;
/// One past the largest valid flat index.
pub const INDEX_LIMIT: u64 = 1 << 63;

fn check(index: u64) -> Result<u64> {
    if index < INDEX_LIMIT {
        Ok(index)
    } else {
        Err(invalid(format!("flat index {index} is not below 2^63")))
    }
}

pub fn depth(index: u64) -> Result<u32> {
    Ok(check(index)?.trailing_ones())
}

pub fn offset(index: u64) -> Result<u64> {
    let d = depth(index)?;
    Ok(index.checked_shr(d + 1).unwrap_or(0))
}

pub fn index(depth: u32, offset: u64) -> Result<u64> {
    if depth >= 63 && !(depth == 63 && offset == 0) {
        return Err(invalid(format!(
            "no node at depth {depth}, offset {offset}"
        )));
    }
    let wide = ((offset as u128) << (depth + 1)) | ((1u128 << depth) - 1);
    if wide >= INDEX_LIMIT as u128 {
        return Err(invalid(format!(
            "node at depth {depth}, offset {offset} is past 2^63"
        )));
    }
    Ok(wide as u64)
}

pub fn parent(index_: u64) -> Result<u64> {
    let d = depth(index_)?;
    index(d + 1, offset(index_)? >> 1)
}

pub fn sibling(index_: u64) -> Result<u64> {
    let d = depth(index_)?;
    index(d, offset(index_)? ^ 1)
}

pub fn children(index: u64) -> Result<Option<(u64, u64)>> {
    let d = depth(index)?;
    if d == 0 {
        return Ok(None);
    }
    let half = 1u64 << (d - 1);
    let right = check(index + half)?; // index < 2^63, half <= 2^62: no u64 overflow
    Ok(Some((index - half, right)))
}

/// First and last leaf (flat indexes) under `index`.
pub fn span(index: u64) -> Result<(u64, u64)> {
    let d = depth(index)?;
    let reach = (1u64 << d) - 1;
    let last = index
        .checked_add(reach)
        .filter(|&l| l < INDEX_LIMIT)
        .ok_or_else(|| invalid(format!("span of {index} is past 2^63")))?;
    Ok((index - reach, last))
}

/// Blocks under `index`, as a half-open range.
pub fn block_range(index: u64) -> Result<(u64, u64)> {
    let (first, last) = span(index)?;
    Ok((first / 2, last / 2 + 1))
}

pub fn check_length(length: u64) -> Result<u64> {
    if length <= MAX_LENGTH {
        Ok(length)
    } else {
        Err(invalid(format!(
            "length {length} is above the maximum 2^62"
        )))
    }
}

/// The roots of a tree of `length` blocks, left to right.
pub fn full_roots(length: u64) -> Result<Vec<u64>> {
    check_length(length)?;
    let mut roots = Vec::with_capacity(length.count_ones() as usize);
    let mut covered = 0u64;
    for bit in (0..63).rev() {
        let size = 1u64 << bit;
        if length & size != 0 {
            roots.push(2 * covered + size - 1);
            covered += size;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tree_layout() {
        assert_eq!(depth(0).unwrap(), 0);
        assert_eq!(depth(3).unwrap(), 2);
        assert_eq!(offset(5).unwrap(), 1);
        assert_eq!(index(1, 2).unwrap(), 9);
        assert_eq!(parent(0).unwrap(), 1);
        assert_eq!(parent(2).unwrap(), 1);
        assert_eq!(parent(1).unwrap(), 3);
        assert_eq!(parent(5).unwrap(), 3);
        assert_eq!(sibling(4).unwrap(), 6);
        assert_eq!(sibling(1).unwrap(), 5);
        assert_eq!(children(3).unwrap(), Some((1, 5)));
        assert_eq!(children(8).unwrap(), None);
        assert_eq!(span(3).unwrap(), (0, 6));
        assert_eq!(block_range(3).unwrap(), (0, 4));
        assert_eq!(block_range(8).unwrap(), (4, 5));
    }

    #[test]
    fn full_roots_match_the_seed_example() {
        assert_eq!(full_roots(0).unwrap(), Vec::<u64>::new());
        assert_eq!(full_roots(5).unwrap(), vec![3, 8]);
        assert_eq!(full_roots(6).unwrap(), vec![3, 9]);
        assert_eq!(full_roots(7).unwrap(), vec![3, 9, 12]);
        assert_eq!(full_roots(MAX_LENGTH).unwrap(), vec![MAX_LENGTH - 1]);
        assert!(full_roots(MAX_LENGTH + 1).is_err());
    }

    #[test]
    fn parent_child_round_trip() {
        for i in 0..4096u64 {
            let p = parent(i).unwrap();
            let (l, r) = children(p).unwrap().unwrap();
            assert!(l == i || r == i);
            assert_eq!(sibling(i).unwrap(), if l == i { r } else { l });
            assert_eq!(index(depth(i).unwrap(), offset(i).unwrap()).unwrap(), i);
        }
    }

    #[test]
    fn edges_error_instead_of_wrapping() {
        assert!(depth(INDEX_LIMIT).is_err());
        assert!(depth(u64::MAX).is_err());
        let top = INDEX_LIMIT - 1; // depth 63, the root of everything
        assert_eq!(depth(top).unwrap(), 63);
        assert!(parent(top).is_err());
        assert!(span(top).is_err());
        assert!(children(top).is_err());
        assert!(index(64, 0).is_err());
        assert!(index(0, 1 << 62).is_err());
        assert!(sibling((1 << 62) - 1).is_err()); // its sibling would start at block 2^62
        assert_eq!(sibling((1 << 61) - 1).unwrap(), (1 << 62) + (1 << 61) - 1);
    }
}
