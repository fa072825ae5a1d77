//! `hyphal._core.flat_tree`: flat-tree (in-order) index math (binds `flat_tree.rs`).

use pyo3::prelude::*;

use super::args::uint;
use super::errors::invalid;
use crate::flat_tree;

#[pyfunction]
#[pyo3(name = "depth")]
fn ft_depth(index: &Bound<'_, PyAny>) -> PyResult<u32> {
    Ok(flat_tree::depth(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "offset")]
fn ft_offset(index: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(flat_tree::offset(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "index")]
fn ft_index(depth: &Bound<'_, PyAny>, offset: &Bound<'_, PyAny>) -> PyResult<u64> {
    let depth = uint(depth, "depth")?;
    let depth = u32::try_from(depth).map_err(|_| invalid(format!("depth {depth} is too large")))?;
    Ok(flat_tree::index(depth, uint(offset, "offset")?)?)
}

#[pyfunction]
#[pyo3(name = "parent")]
fn ft_parent(index: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(flat_tree::parent(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "sibling")]
fn ft_sibling(index: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(flat_tree::sibling(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "children")]
fn ft_children(index: &Bound<'_, PyAny>) -> PyResult<Option<(u64, u64)>> {
    Ok(flat_tree::children(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "span")]
fn ft_span(index: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
    Ok(flat_tree::span(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "block_range")]
fn ft_block_range(index: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
    Ok(flat_tree::block_range(uint(index, "index")?)?)
}

#[pyfunction]
#[pyo3(name = "full_roots")]
fn ft_full_roots(length: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    Ok(flat_tree::full_roots(uint(length, "length")?)?)
}

/// The old flat names on `hyphal._core` of the names that differ here.
pub(super) const FLAT_NAMES: &[(&str, &str)] = &[
    ("depth", "ft_depth"),
    ("offset", "ft_offset"),
    ("index", "ft_index"),
    ("parent", "ft_parent"),
    ("sibling", "ft_sibling"),
    ("children", "ft_children"),
    ("span", "ft_span"),
    ("block_range", "ft_block_range"),
    ("full_roots", "ft_full_roots"),
];

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_LENGTH", flat_tree::MAX_LENGTH)?;
    m.add_function(wrap_pyfunction!(ft_depth, m)?)?;
    m.add_function(wrap_pyfunction!(ft_offset, m)?)?;
    m.add_function(wrap_pyfunction!(ft_index, m)?)?;
    m.add_function(wrap_pyfunction!(ft_parent, m)?)?;
    m.add_function(wrap_pyfunction!(ft_sibling, m)?)?;
    m.add_function(wrap_pyfunction!(ft_children, m)?)?;
    m.add_function(wrap_pyfunction!(ft_span, m)?)?;
    m.add_function(wrap_pyfunction!(ft_block_range, m)?)?;
    m.add_function(wrap_pyfunction!(ft_full_roots, m)?)?;
    Ok(())
}
