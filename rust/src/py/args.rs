//! Argument parsing shared by every binding: any bytes-like object read in
//! place, fixed-size keys and hashes, unsigned integers, and when to release
//! the GIL.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::invalid;

/// Inputs at least this large are processed with the GIL released.
pub(super) const DETACH_BYTES: usize = 8 * 1024;

/// Run `f` with the GIL released when `len` bytes of work make that worth it.
pub(super) fn maybe_detach<T: Send>(py: Python<'_>, len: usize, f: impl Send + FnOnce() -> T) -> T {
    if len >= DETACH_BYTES {
        py.detach(f)
    } else {
        f()
    }
}

/// A borrowed bytes-like argument: `bytes` directly, anything else through the buffer protocol.
pub(super) enum Bytes<'py> {
    Object(Bound<'py, PyBytes>),
    Buffer(PyBuffer<u8>),
}

impl Bytes<'_> {
    pub(super) fn get<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bytes<'py>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Bytes::Object(b.clone()));
        }
        let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
            PyTypeError::new_err(format!(
                "expected a bytes-like object, got {}",
                type_name(obj)
            ))
        })?;
        if !buf.is_c_contiguous() {
            return Err(invalid("buffer is not C-contiguous".into()));
        }
        Ok(Bytes::Buffer(buf))
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Object(b) => b.as_bytes(),
            // SAFETY: the buffer is C-contiguous with byte items and stays
            // exported (so its memory stays put) for as long as `self` lives.
            Bytes::Buffer(b) => unsafe {
                std::slice::from_raw_parts(b.buf_ptr() as *const u8, b.len_bytes())
            },
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub(super) fn many<'py>(objs: &[Bound<'py, PyAny>]) -> PyResult<Vec<Bytes<'py>>> {
    objs.iter().map(Bytes::get).collect()
}

pub(super) fn slices<'a>(bufs: &'a [Bytes<'_>]) -> Vec<&'a [u8]> {
    bufs.iter().map(Bytes::as_slice).collect()
}

pub(super) fn fixed<const N: usize>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<[u8; N]> {
    let b = Bytes::get(obj)?;
    b.as_slice().try_into().map_err(|_| {
        invalid(format!(
            "{what} must be {N} bytes, not {}",
            b.as_slice().len()
        ))
    })
}

/// An unsigned 64-bit integer argument; out-of-range ints are `InvalidInput`, not `OverflowError`.
pub(super) fn uint(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    obj.extract::<u64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            invalid(format!("{what} must be an integer in [0, 2^64)"))
        } else {
            e
        }
    })
}

pub(super) fn total_len(bufs: &[&[u8]]) -> usize {
    bufs.iter().map(|b| b.len()).sum()
}
