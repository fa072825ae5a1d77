//! `hyphal._core.sign`: ed25519 signing keys and (batch) verification (binds `sign.rs`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{fixed, many, maybe_detach, slices, Bytes};
use crate::sign;

/// An ed25519 signing key made from a 32-byte seed.
#[pyclass(module = "hyphal._core.sign", frozen)]
struct SigningKey {
    key: ed25519_dalek::SigningKey,
}

#[pymethods]
impl SigningKey {
    #[new]
    fn new(seed: &Bound<'_, PyAny>) -> PyResult<SigningKey> {
        Ok(SigningKey {
            key: sign::signing_key(&fixed(seed, "seed")?),
        })
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.key.verifying_key().as_bytes())
    }

    #[getter]
    fn seed<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.key.as_bytes())
    }

    fn sign<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let message = Bytes::get(message)?;
        let m = message.as_slice();
        let sig = maybe_detach(py, m.len(), || sign::sign(&self.key, m));
        Ok(PyBytes::new(py, &sig))
    }

    fn __repr__(&self) -> String {
        let hex: String = self
            .key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("SigningKey(public_key={hex})")
    }
}

#[pyfunction]
#[pyo3(name = "verify")]
fn ed25519_verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let pk: [u8; 32] = fixed(public_key, "public_key")?;
    let sig: [u8; 64] = fixed(signature, "signature")?;
    let message = Bytes::get(message)?;
    let m = message.as_slice();
    // A verification is ~30 µs: always worth letting other threads run.
    Ok(py.detach(|| sign::verify(&pk, m, &sig)))
}

#[pyfunction]
#[pyo3(name = "verify_batch")]
fn ed25519_verify_batch(
    py: Python<'_>,
    public_keys: Vec<Bound<'_, PyAny>>,
    messages: Vec<Bound<'_, PyAny>>,
    signatures: Vec<Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let pks = public_keys
        .iter()
        .map(|k| fixed::<32>(k, "public key"))
        .collect::<PyResult<Vec<_>>>()?;
    let sigs = signatures
        .iter()
        .map(|s| fixed::<64>(s, "signature"))
        .collect::<PyResult<Vec<_>>>()?;
    let bufs = many(&messages)?;
    let refs = slices(&bufs);
    Ok(py.detach(|| sign::verify_batch(&pks, &refs, &sigs))?)
}

/// The old flat names on `hyphal._core` of the names that differ here.
pub(super) const FLAT_NAMES: &[(&str, &str)] = &[
    ("verify", "ed25519_verify"),
    ("verify_batch", "ed25519_verify_batch"),
];

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SigningKey>()?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify_batch, m)?)?;
    Ok(())
}
