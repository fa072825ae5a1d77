//! hyphal's cryptographic core: pure functions, no I/O, no clocks, no state.
//!
//! Python reaches it through the thin bindings in `py/` (feature
//! `python`, on when maturin builds the extension `hyphal._core`).

pub mod aead;
pub mod blob;
pub mod blob_seal;
pub mod error;
pub mod flat_tree;
pub mod hash;
pub mod merkle;
pub mod sign;
pub mod xor;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};
