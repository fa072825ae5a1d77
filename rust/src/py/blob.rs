//! `hyphal._core.blob`: outboards, verified ranges and private (sealed) blobs
//! (binds `blob.rs` and `blob_seal.rs`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{fixed, maybe_detach, uint, Bytes};
use super::errors::invalid;
use crate::{blob, blob_seal};

type Runs<'py> = Vec<(u64, Bound<'py, PyBytes>)>;

fn py_runs<'py>(py: Python<'py>, runs: Vec<(u64, Vec<u8>)>) -> Runs<'py> {
    runs.into_iter()
        .map(|(at, bytes)| (at, PyBytes::new(py, &bytes)))
        .collect()
}

/// Incremental outboard and BLAKE3 root of a blob.
#[pyclass(module = "hyphal._core.blob", name = "OutboardBuilder")]
struct PyOutboardBuilder {
    inner: blob::OutboardBuilder,
}

#[pymethods]
impl PyOutboardBuilder {
    #[new]
    fn new() -> Self {
        PyOutboardBuilder {
            inner: blob::OutboardBuilder::new(),
        }
    }

    fn update(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = Bytes::get(data)?;
        let s = data.as_slice();
        let inner = &mut self.inner;
        Ok(maybe_detach(py, s.len(), || inner.update(s))?)
    }

    fn take_nodes<'py>(&mut self, py: Python<'py>) -> Runs<'py> {
        py_runs(py, self.inner.take_nodes())
    }

    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.finalize()?))
    }

    #[getter]
    fn length(&self) -> u64 {
        self.inner.len()
    }
}

/// Streaming verifier of one encoded range response.
#[pyclass(module = "hyphal._core.blob", name = "RangeDecoder")]
struct PyRangeDecoder {
    inner: blob::RangeDecoder,
}

#[pymethods]
impl PyRangeDecoder {
    #[new]
    fn new(
        root: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let root: [u8; 32] = fixed(root, "root")?;
        let inner = blob::RangeDecoder::new(
            &root,
            uint(size, "size")?,
            uint(start, "start")?,
            uint(end, "end")?,
        )?;
        Ok(PyRangeDecoder { inner })
    }

    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<(Runs<'py>, Runs<'py>)> {
        let data = Bytes::get(data)?;
        let s = data.as_slice();
        let inner = &mut self.inner;
        let v = maybe_detach(py, s.len(), || inner.feed(s))?;
        Ok((py_runs(py, v.nodes), py_runs(py, v.groups)))
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.is_done()
    }
}

/// Streaming sealer of a private blob.
#[pyclass(module = "hyphal._core.blob", name = "BlobSealer")]
struct PyBlobSealer {
    inner: blob_seal::Sealer,
}

#[pymethods]
impl PyBlobSealer {
    #[new]
    fn new(key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let key: [u8; 32] = fixed(key, "key")?;
        Ok(PyBlobSealer {
            inner: blob_seal::Sealer::new(&key),
        })
    }

    fn update<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data = Bytes::get(data)?;
        let s = data.as_slice();
        let inner = &mut self.inner;
        let out = maybe_detach(py, s.len(), || inner.update(s))?;
        Ok(PyBytes::new(py, &out))
    }

    fn finalize<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let (last, hash) = self.inner.finalize()?;
        Ok((PyBytes::new(py, &last), PyBytes::new(py, &hash)))
    }
}

#[pyfunction]
#[pyo3(name = "group_count")]
fn blob_group_count(size: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(blob::group_count(uint(size, "size")?))
}

#[pyfunction]
#[pyo3(name = "outboard_size")]
fn blob_outboard_size(size: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(blob::outboard_size(uint(size, "size")?))
}

#[pyfunction]
#[pyo3(name = "encoded_len")]
fn blob_encoded_len(
    size: &Bound<'_, PyAny>,
    start: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
) -> PyResult<u64> {
    Ok(blob::encoded_len(
        uint(size, "size")?,
        uint(start, "start")?,
        uint(end, "end")?,
    )?)
}

#[pyfunction]
#[pyo3(name = "outboard")]
fn blob_outboard<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let data = Bytes::get(data)?;
    let s = data.as_slice();
    let (root, ob) = maybe_detach(py, s.len(), || blob::outboard(s));
    Ok((PyBytes::new(py, &root), PyBytes::new(py, &ob)))
}

/// The arguments of a walk over stored groups: root, size, outboard, range data, start, end.
type StoredArgs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
);
type StoredFn<T> = fn(&[u8; 32], u64, &[u8], &[u8], u64, u64) -> crate::Result<T>;

fn walk_stored<T: Send>(
    py: Python<'_>,
    (root, size, outboard, data, start, end): StoredArgs<'_, '_>,
    walk: StoredFn<T>,
) -> PyResult<T> {
    let root: [u8; 32] = fixed(root, "root")?;
    let (size, start, end) = (
        uint(size, "size")?,
        uint(start, "start")?,
        uint(end, "end")?,
    );
    let outboard = Bytes::get(outboard)?;
    let data = Bytes::get(data)?;
    let (ob, d) = (outboard.as_slice(), data.as_slice());
    Ok(maybe_detach(py, d.len(), || {
        walk(&root, size, ob, d, start, end)
    })?)
}

#[pyfunction]
#[pyo3(name = "encode_range")]
fn blob_encode_range<'py>(
    py: Python<'py>,
    root: &Bound<'py, PyAny>,
    size: &Bound<'py, PyAny>,
    outboard: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
    start: &Bound<'py, PyAny>,
    end: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let args = (root, size, outboard, data, start, end);
    let out = walk_stored(py, args, blob::encode_range)?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(name = "verify_range")]
fn blob_verify_range(
    py: Python<'_>,
    root: &Bound<'_, PyAny>,
    size: &Bound<'_, PyAny>,
    outboard: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    start: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
) -> PyResult<()> {
    walk_stored(
        py,
        (root, size, outboard, data, start, end),
        blob::verify_range,
    )
}

#[pyfunction]
#[pyo3(name = "outboard_reorder")]
fn blob_outboard_reorder<'py>(
    py: Python<'py>,
    size: &Bound<'py, PyAny>,
    outboard: &Bound<'py, PyAny>,
    order: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let order = match order {
        "pre" => blob::Order::Pre,
        "post" => blob::Order::Post,
        other => {
            return Err(invalid(format!(
                "order must be 'pre' or 'post', not {other:?}"
            )))
        }
    };
    let size = uint(size, "size")?;
    let outboard = Bytes::get(outboard)?;
    let ob = outboard.as_slice();
    let out = maybe_detach(py, ob.len(), || blob::reorder_outboard(size, ob, order))?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(name = "sealed_size")]
fn blob_sealed_size(size: &Bound<'_, PyAny>) -> PyResult<u64> {
    let size = uint(size, "size")?;
    // The limit is opened_size's, so every size opened_size gives back seals again.
    if size > blob_seal::MAX_SEALED_SIZE
        || blob_seal::sealed_size(size) > blob_seal::MAX_SEALED_SIZE
    {
        return Err(invalid(format!(
            "plaintext size {size} seals to more than 2^62 bytes"
        )));
    }
    Ok(blob_seal::sealed_size(size))
}

#[pyfunction]
#[pyo3(name = "opened_size")]
fn blob_opened_size(size: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(blob_seal::opened_size(uint(size, "size")?)?)
}

#[pyfunction]
#[pyo3(name = "open_groups")]
fn blob_open_groups<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    sealed_size: &Bound<'py, PyAny>,
    first: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key: [u8; 32] = fixed(key, "key")?;
    let (sealed_size, first) = (uint(sealed_size, "sealed_size")?, uint(first, "first")?);
    let data = Bytes::get(data)?;
    let d = data.as_slice();
    let out = maybe_detach(py, d.len(), || {
        blob_seal::open_groups(&key, sealed_size, first, d)
    })?;
    Ok(PyBytes::new(py, &out))
}

/// The old flat names on `hyphal._core` of the names that differ here.
pub(super) const FLAT_NAMES: &[(&str, &str)] = &[
    ("GROUP_SIZE", "BLOB_GROUP_SIZE"),
    ("SEGMENT_SIZE", "BLOB_SEGMENT_SIZE"),
    ("group_count", "blob_group_count"),
    ("outboard_size", "blob_outboard_size"),
    ("encoded_len", "blob_encoded_len"),
    ("outboard", "blob_outboard"),
    ("encode_range", "blob_encode_range"),
    ("verify_range", "blob_verify_range"),
    ("outboard_reorder", "blob_outboard_reorder"),
    ("sealed_size", "blob_sealed_size"),
    ("opened_size", "blob_opened_size"),
    ("open_groups", "blob_open_groups"),
];

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GROUP_SIZE", blob::GROUP_SIZE)?;
    m.add("SEGMENT_SIZE", blob_seal::SEGMENT_SIZE)?;
    m.add_class::<PyOutboardBuilder>()?;
    m.add_class::<PyRangeDecoder>()?;
    m.add_class::<PyBlobSealer>()?;
    m.add_function(wrap_pyfunction!(blob_group_count, m)?)?;
    m.add_function(wrap_pyfunction!(blob_outboard_size, m)?)?;
    m.add_function(wrap_pyfunction!(blob_encoded_len, m)?)?;
    m.add_function(wrap_pyfunction!(blob_outboard, m)?)?;
    m.add_function(wrap_pyfunction!(blob_encode_range, m)?)?;
    m.add_function(wrap_pyfunction!(blob_verify_range, m)?)?;
    m.add_function(wrap_pyfunction!(blob_outboard_reorder, m)?)?;
    m.add_function(wrap_pyfunction!(blob_sealed_size, m)?)?;
    m.add_function(wrap_pyfunction!(blob_opened_size, m)?)?;
    m.add_function(wrap_pyfunction!(blob_open_groups, m)?)?;
    Ok(())
}
