//! How core errors cross into Python: each `Error` kind becomes its
//! `hyphal.errors` exception, so callers catch one small set of classes.

use pyo3::prelude::*;

use crate::error::Error;

pyo3::import_exception!(hyphal.errors, InvalidInput);
pyo3::import_exception!(hyphal.errors, DecodeError);
pyo3::import_exception!(hyphal.errors, ProofError);
pyo3::import_exception!(hyphal.errors, DecryptionError);

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::InvalidInput(_) => InvalidInput::new_err(msg),
            Error::Decode(_) => DecodeError::new_err(msg),
            Error::Proof(_) => ProofError::new_err(msg),
            Error::Decryption => DecryptionError::new_err(msg),
        }
    }
}

/// An argument the core never saw was wrong: `hyphal.errors.InvalidInput`.
pub(super) fn invalid(msg: String) -> PyErr {
    InvalidInput::new_err(msg)
}
