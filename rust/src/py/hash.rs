//! `hyphal._core.hash`: BLAKE3 in its three modes and the domain-separated
//! hashes of the Merkle tree (binds `hash.rs`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{fixed, maybe_detach, uint, Bytes, DETACH_BYTES};
use super::errors::invalid;
use crate::{flat_tree, hash};

#[pyfunction]
#[pyo3(name = "blake3", signature = (data, parallel = false))]
fn blake3_hash<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    parallel: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = Bytes::get(data)?;
    let s = data.as_slice();
    let out = if s.len() >= DETACH_BYTES {
        py.detach(|| hash::blake3(s, parallel))
    } else {
        hash::blake3(s, false)
    };
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn keyed_hash<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key: [u8; 32] = fixed(key, "key")?;
    let data = Bytes::get(data)?;
    let s = data.as_slice();
    let out = maybe_detach(py, s.len(), || hash::keyed_hash(&key, s));
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn derive_key<'py>(
    py: Python<'py>,
    context: &str,
    material: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let material = Bytes::get(material)?;
    Ok(PyBytes::new(
        py,
        &hash::derive_key(context, material.as_slice()),
    ))
}

/// Incremental BLAKE3.
#[pyclass(module = "hyphal._core.hash")]
struct Hasher {
    inner: ::blake3::Hasher,
}

#[pymethods]
impl Hasher {
    #[new]
    #[pyo3(signature = (key = None, derive_key_context = None))]
    fn new(key: Option<&Bound<'_, PyAny>>, derive_key_context: Option<&str>) -> PyResult<Hasher> {
        let inner = match (key, derive_key_context) {
            (None, None) => ::blake3::Hasher::new(),
            (Some(k), None) => ::blake3::Hasher::new_keyed(&fixed(k, "key")?),
            (None, Some(c)) => ::blake3::Hasher::new_derive_key(c),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give at most one of key and derive_key_context".into(),
                ))
            }
        };
        Ok(Hasher { inner })
    }

    fn update(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = Bytes::get(data)?;
        let s = data.as_slice();
        let inner = &mut self.inner;
        maybe_detach(py, s.len(), || {
            inner.update(s);
        });
        Ok(())
    }

    #[pyo3(signature = (length = None))]
    fn finalize<'py>(
        &self,
        py: Python<'py>,
        length: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let length = match length {
            None => 32,
            Some(obj) => uint(obj, "output length")?,
        };
        if length == 0 || length > 65536 {
            return Err(invalid(format!(
                "output length {length} is not in [1, 65536]"
            )));
        }
        PyBytes::new_with(py, length as usize, |out| {
            self.inner.finalize_xof().fill(out);
            Ok(())
        })
    }

    fn copy(&self) -> Hasher {
        Hasher {
            inner: self.inner.clone(),
        }
    }
}

#[pyfunction]
fn leaf_hash<'py>(
    py: Python<'py>,
    index: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let index = uint(index, "index")?;
    if index >= flat_tree::MAX_LENGTH {
        return Err(invalid(format!("block index {index} is not below 2^62")));
    }
    let data = Bytes::get(data)?;
    let s = data.as_slice();
    let out = maybe_detach(py, s.len(), || hash::leaf_hash(index, s));
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn parent_hash<'py>(
    py: Python<'py>,
    size: &Bound<'py, PyAny>,
    left: &Bound<'py, PyAny>,
    right: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = hash::parent_hash(
        uint(size, "size")?,
        &fixed(left, "left")?,
        &fixed(right, "right")?,
    );
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
fn head_signable<'py>(
    py: Python<'py>,
    feed_key: &Bound<'py, PyAny>,
    tree_hash: &Bound<'py, PyAny>,
    length: &Bound<'py, PyAny>,
    fork: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let length = flat_tree::check_length(uint(length, "length")?)?;
    let out = hash::head_signable(
        &fixed(feed_key, "feed_key")?,
        &fixed(tree_hash, "tree_hash")?,
        length,
        uint(fork, "fork")?,
    );
    Ok(PyBytes::new(py, &out))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("LEAF_KEY", PyBytes::new(py, &hash::LEAF_KEY))?;
    m.add("PARENT_KEY", PyBytes::new(py, &hash::PARENT_KEY))?;
    m.add("HEAD_KEY", PyBytes::new(py, &hash::HEAD_KEY))?;
    m.add(
        "FEED_HEAD_NAMESPACE",
        PyBytes::new(py, &hash::FEED_HEAD_NAMESPACE),
    )?;
    m.add_class::<Hasher>()?;
    m.add_function(wrap_pyfunction!(blake3_hash, m)?)?;
    m.add_function(wrap_pyfunction!(keyed_hash, m)?)?;
    m.add_function(wrap_pyfunction!(derive_key, m)?)?;
    m.add_function(wrap_pyfunction!(leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(parent_hash, m)?)?;
    m.add_function(wrap_pyfunction!(head_signable, m)?)?;
    Ok(())
}
