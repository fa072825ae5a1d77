//! `hyphal._core.aead`: XChaCha20-Poly1305 and RFC 8439 ChaCha20-Poly1305, whole
//! or over a message in parts (binds `aead.rs`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{fixed, many, maybe_detach, slices, total_len, Bytes};
use crate::aead;
use crate::error::Error;

/// The arguments every AEAD call takes: key, nonce, input text and optional associated data.
type AeadArgs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);
/// Key, nonce and optional associated data, for the calls whose text comes in parts.
type KeyArgs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);
type SealFn<const N: usize> = fn(&[u8; 32], &[u8; N], &[u8], &mut [u8]);
/// Opens `ciphertext ‖ tag` given as consecutive parts.
type OpenFn<const N: usize> =
    fn(&[u8; 32], &[u8; N], &[u8], &[&[u8]], &mut [u8]) -> crate::Result<()>;

fn seal_py<'py, const N: usize>(
    py: Python<'py>,
    (key, nonce, plaintext, associated_data): AeadArgs<'_, 'py>,
    seal: SealFn<N>,
) -> PyResult<Bound<'py, PyBytes>> {
    seal_parts_py(
        py,
        (key, nonce, associated_data),
        &[Bytes::get(plaintext)?],
        &[],
        seal,
    )
}

/// `prefix ‖ ciphertext ‖ tag` of the concatenated `parts`, in one new bytes object:
/// gathering the parts is the copy sealing needs anyway, and the prefix (left in the
/// clear, not authenticated) lets a caller frame the result without another copy.
fn seal_parts_py<'py, const N: usize>(
    py: Python<'py>,
    (key, nonce, associated_data): KeyArgs<'_, 'py>,
    parts: &[Bytes<'py>],
    prefix: &[u8],
    seal: SealFn<N>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (key, nonce): ([u8; 32], [u8; N]) = (fixed(key, "key")?, fixed(nonce, "nonce")?);
    let ad = associated_data.map(Bytes::get).transpose()?;
    let (ad, refs) = (ad.as_ref().map_or(&[][..], Bytes::as_slice), slices(parts));
    let total = total_len(&refs);
    PyBytes::new_with(py, prefix.len() + total + aead::TAG_SIZE, |out| {
        let (head, body) = out.split_at_mut(prefix.len());
        head.copy_from_slice(prefix);
        let mut pos = 0;
        for part in &refs {
            body[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
        }
        maybe_detach(py, body.len(), || seal(&key, &nonce, ad, body));
        Ok(())
    })
}

fn open_py<'py, const N: usize>(
    py: Python<'py>,
    (key, nonce, ciphertext, associated_data): AeadArgs<'_, 'py>,
    open: OpenFn<N>,
) -> PyResult<Bound<'py, PyBytes>> {
    open_parts_py(
        py,
        (key, nonce, associated_data),
        &[Bytes::get(ciphertext)?],
        open,
    )
}

fn open_parts_py<'py, const N: usize>(
    py: Python<'py>,
    (key, nonce, associated_data): KeyArgs<'_, 'py>,
    parts: &[Bytes<'py>],
    open: OpenFn<N>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (key, nonce): ([u8; 32], [u8; N]) = (fixed(key, "key")?, fixed(nonce, "nonce")?);
    let ad = associated_data.map(Bytes::get).transpose()?;
    let (ad, refs) = (ad.as_ref().map_or(&[][..], Bytes::as_slice), slices(parts));
    let total = total_len(&refs);
    if total < aead::TAG_SIZE {
        return Err(Error::Decryption.into());
    }
    PyBytes::new_with(py, total - aead::TAG_SIZE, |out| {
        let result = maybe_detach(py, total, || open(&key, &nonce, ad, &refs, out));
        Ok(result?)
    })
}

#[pyfunction]
#[pyo3(signature = (key, nonce, plaintext, associated_data = None))]
fn xchacha20poly1305_encrypt<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    plaintext: &Bound<'py, PyAny>,
    associated_data: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    seal_py::<{ aead::NONCE_SIZE }>(
        py,
        (key, nonce, plaintext, associated_data),
        aead::seal_in_place,
    )
}

#[pyfunction]
#[pyo3(signature = (key, nonce, ciphertext, associated_data = None))]
fn xchacha20poly1305_decrypt<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    ciphertext: &Bound<'py, PyAny>,
    associated_data: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    open_py::<{ aead::NONCE_SIZE }>(
        py,
        (key, nonce, ciphertext, associated_data),
        aead::open_parts_into,
    )
}

#[pyfunction]
#[pyo3(signature = (key, nonce, plaintext, associated_data = None))]
fn chacha20poly1305_encrypt<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    plaintext: &Bound<'py, PyAny>,
    associated_data: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    seal_py::<{ aead::IETF_NONCE_SIZE }>(
        py,
        (key, nonce, plaintext, associated_data),
        aead::ietf_seal_in_place,
    )
}

#[pyfunction]
#[pyo3(signature = (key, nonce, ciphertext, associated_data = None))]
fn chacha20poly1305_decrypt<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    ciphertext: &Bound<'py, PyAny>,
    associated_data: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    open_py::<{ aead::IETF_NONCE_SIZE }>(
        py,
        (key, nonce, ciphertext, associated_data),
        aead::ietf_open_parts_into,
    )
}

/// ChaCha20-Poly1305 (RFC 8439) of the concatenation of `parts`, returned as
/// `prefix ‖ ciphertext ‖ tag` (see [`seal_parts_py`]).
#[pyfunction]
#[pyo3(signature = (key, nonce, parts, associated_data = None, prefix = None))]
fn chacha20poly1305_encrypt_parts<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    parts: Vec<Bound<'py, PyAny>>,
    associated_data: Option<&Bound<'py, PyAny>>,
    prefix: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let prefix = prefix.map(Bytes::get).transpose()?;
    seal_parts_py::<{ aead::IETF_NONCE_SIZE }>(
        py,
        (key, nonce, associated_data),
        &many(&parts)?,
        prefix.as_ref().map_or(&[][..], Bytes::as_slice),
        aead::ietf_seal_in_place,
    )
}

/// ChaCha20-Poly1305 (RFC 8439) over `ciphertext ‖ tag` given as consecutive parts,
/// so a frame that arrived in several reads is opened without first joining it.
#[pyfunction]
#[pyo3(signature = (key, nonce, parts, associated_data = None))]
fn chacha20poly1305_decrypt_parts<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    parts: Vec<Bound<'py, PyAny>>,
    associated_data: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    open_parts_py::<{ aead::IETF_NONCE_SIZE }>(
        py,
        (key, nonce, associated_data),
        &many(&parts)?,
        aead::ietf_open_parts_into,
    )
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(xchacha20poly1305_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(xchacha20poly1305_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_encrypt_parts, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_decrypt_parts, m)?)?;
    Ok(())
}
