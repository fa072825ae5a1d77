//! The core's one error type. The Python bindings map each variant onto the
//! matching class of `hyphal.errors`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument is out of range or has the wrong length.
    InvalidInput(String),
    /// Encoded bytes do not parse.
    Decode(String),
    /// A proof does not lead to the trusted tree hash.
    Proof(String),
    /// An AEAD ciphertext failed authentication.
    Decryption,
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Decode(m) => write!(f, "malformed encoding: {m}"),
            Error::Proof(m) => write!(f, "proof rejected: {m}"),
            Error::Decryption => write!(
                f,
                "decryption failed: ciphertext, associated data, nonce or key differ"
            ),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}
