//! `hyphal._core.xor`: XOR distance over 256-bit ids, for the Kademlia DHT (binds `xor.rs`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{fixed, uint, Bytes};
use super::errors::invalid;
use crate::xor;

#[pyfunction]
#[pyo3(name = "distance")]
fn xor_distance<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(
        py,
        &xor::distance(&fixed(a, "a")?, &fixed(b, "b")?),
    ))
}

#[pyfunction]
#[pyo3(name = "compare")]
fn xor_compare(
    target: &Bound<'_, PyAny>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<i8> {
    Ok(xor::compare(&fixed(target, "target")?, &fixed(a, "a")?, &fixed(b, "b")?) as i8)
}

#[pyfunction]
fn bucket_index(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<u32> {
    Ok(xor::bucket_index(&fixed(a, "a")?, &fixed(b, "b")?))
}

#[pyfunction]
#[pyo3(name = "closest")]
fn xor_closest(
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    ids: &Bound<'_, PyAny>,
    k: &Bound<'_, PyAny>,
) -> PyResult<Vec<usize>> {
    let target: [u8; 32] = fixed(target, "target")?;
    let k = usize::try_from(uint(k, "k")?).map_err(|_| invalid("k is too large".into()))?;
    let ids = Bytes::get(ids)?;
    let s = ids.as_slice();
    Ok(py.detach(|| xor::closest(&target, s, k))?)
}

#[pyfunction]
#[pyo3(name = "sort")]
fn xor_sort(
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    ids: &Bound<'_, PyAny>,
) -> PyResult<Vec<usize>> {
    let target: [u8; 32] = fixed(target, "target")?;
    let ids = Bytes::get(ids)?;
    let s = ids.as_slice();
    Ok(py.detach(|| xor::sort(&target, s))?)
}

/// The old flat names on `hyphal._core` of the names that differ here.
pub(super) const FLAT_NAMES: &[(&str, &str)] = &[
    ("distance", "xor_distance"),
    ("compare", "xor_compare"),
    ("closest", "xor_closest"),
    ("sort", "xor_sort"),
];

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(xor_distance, m)?)?;
    m.add_function(wrap_pyfunction!(xor_compare, m)?)?;
    m.add_function(wrap_pyfunction!(bucket_index, m)?)?;
    m.add_function(wrap_pyfunction!(xor_closest, m)?)?;
    m.add_function(wrap_pyfunction!(xor_sort, m)?)?;
    Ok(())
}
