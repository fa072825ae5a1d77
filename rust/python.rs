//! Thin PyO3 bindings: parse arguments (any buffer, without a copy), release
//! the GIL around real work, map core errors onto `hyphal.errors`.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::Error;
use crate::{aead, flat_tree, hash, merkle, sign, xor};

#[path = "python_blob.rs"]
mod blob_bindings;

pyo3::import_exception!(hyphal.errors, InvalidInput);
pyo3::import_exception!(hyphal.errors, DecodeError);
pyo3::import_exception!(hyphal.errors, ProofError);
pyo3::import_exception!(hyphal.errors, DecryptionError);

/// Inputs at least this large are processed with the GIL released.
const DETACH_BYTES: usize = 8 * 1024;

/// Run `f` with the GIL released when `len` bytes of work make that worth it.
fn maybe_detach<T: Send>(py: Python<'_>, len: usize, f: impl Send + FnOnce() -> T) -> T {
    if len >= DETACH_BYTES {
        py.detach(f)
    } else {
        f()
    }
}

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

fn invalid(msg: String) -> PyErr {
    InvalidInput::new_err(msg)
}

/// A borrowed bytes-like argument: `bytes` directly, anything else through the buffer protocol.
enum Bytes<'py> {
    Object(Bound<'py, PyBytes>),
    Buffer(PyBuffer<u8>),
}

impl Bytes<'_> {
    fn get<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bytes<'py>> {
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

    fn as_slice(&self) -> &[u8] {
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

fn many<'py>(objs: &[Bound<'py, PyAny>]) -> PyResult<Vec<Bytes<'py>>> {
    objs.iter().map(Bytes::get).collect()
}

fn slices<'a>(bufs: &'a [Bytes<'_>]) -> Vec<&'a [u8]> {
    bufs.iter().map(Bytes::as_slice).collect()
}

fn fixed<const N: usize>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<[u8; N]> {
    let b = Bytes::get(obj)?;
    b.as_slice().try_into().map_err(|_| {
        invalid(format!(
            "{what} must be {N} bytes, not {}",
            b.as_slice().len()
        ))
    })
}

/// An unsigned 64-bit integer argument; out-of-range ints are `InvalidInput`, not `OverflowError`.
fn uint(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    obj.extract::<u64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            invalid(format!("{what} must be an integer in [0, 2^64)"))
        } else {
            e
        }
    })
}

fn total_len(bufs: &[&[u8]]) -> usize {
    bufs.iter().map(|b| b.len()).sum()
}

// -- hashing ------------------------------------------------------------------

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
#[pyclass(module = "hyphal._core")]
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

// -- flat tree ----------------------------------------------------------------

#[pyfunction]
fn ft_depth(index: &Bound<'_, PyAny>) -> PyResult<u32> {
    Ok(flat_tree::depth(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_offset(index: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(flat_tree::offset(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_index(depth: &Bound<'_, PyAny>, offset: &Bound<'_, PyAny>) -> PyResult<u64> {
    let depth = uint(depth, "depth")?;
    let depth = u32::try_from(depth).map_err(|_| invalid(format!("depth {depth} is too large")))?;
    Ok(flat_tree::index(depth, uint(offset, "offset")?)?)
}

#[pyfunction]
fn ft_parent(index: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(flat_tree::parent(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_sibling(index: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(flat_tree::sibling(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_children(index: &Bound<'_, PyAny>) -> PyResult<Option<(u64, u64)>> {
    Ok(flat_tree::children(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_span(index: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
    Ok(flat_tree::span(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_block_range(index: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
    Ok(flat_tree::block_range(uint(index, "index")?)?)
}

#[pyfunction]
fn ft_full_roots(length: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    Ok(flat_tree::full_roots(uint(length, "length")?)?)
}

// -- Merkle tree --------------------------------------------------------------

/// What `Node.__reduce__` returns for pickling: the class and its constructor arguments.
type Reduced<'py> = (Bound<'py, PyAny>, (u64, Bound<'py, PyBytes>, u64));

/// A Merkle tree node: flat index, 32-byte hash and the byte size it covers.
#[pyclass(
    module = "hyphal._core",
    name = "Node",
    frozen,
    eq,
    hash,
    skip_from_py_object
)]
#[derive(Clone, PartialEq, Eq, Hash)]
struct PyNode(merkle::Node);

#[pymethods]
impl PyNode {
    #[new]
    fn new(
        index: &Bound<'_, PyAny>,
        hash: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<PyNode> {
        let index = uint(index, "index")?;
        flat_tree::depth(index)?;
        Ok(PyNode(merkle::Node {
            index,
            hash: fixed(hash, "hash")?,
            size: uint(size, "size")?,
        }))
    }

    #[getter]
    fn index(&self) -> u64 {
        self.0.index
    }

    #[getter]
    fn hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.hash)
    }

    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }

    fn __repr__(&self) -> String {
        let hex: String = self.0.hash[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "Node(index={}, hash={hex}…, size={})",
            self.0.index, self.0.size
        )
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let node = slf.get().0;
        Ok((
            slf.get_type().into_any(),
            (node.index, PyBytes::new(slf.py(), &node.hash), node.size),
        ))
    }
}

fn nodes_of(objs: &[Bound<'_, PyNode>]) -> Vec<merkle::Node> {
    objs.iter().map(|n| n.get().0).collect()
}

fn py_nodes(nodes: Vec<merkle::Node>) -> Vec<PyNode> {
    nodes.into_iter().map(PyNode).collect()
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
fn tree_hash<'py>(
    py: Python<'py>,
    roots: Vec<Bound<'py, PyNode>>,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &merkle::tree_hash(&nodes_of(&roots))?))
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

#[pyfunction]
#[pyo3(signature = (roots, blocks, parallel = true))]
fn tree_append<'py>(
    py: Python<'py>,
    roots: Vec<Bound<'py, PyNode>>,
    blocks: Vec<Bound<'py, PyAny>>,
    parallel: bool,
) -> PyResult<(Vec<PyNode>, Vec<PyNode>)> {
    let roots = nodes_of(&roots);
    let bufs = many(&blocks)?;
    let refs = slices(&bufs);
    let (nodes, new_roots) = maybe_detach(py, total_len(&refs), || {
        merkle::append(&roots, &refs, parallel)
    })?;
    Ok((py_nodes(nodes), py_nodes(new_roots)))
}

#[pyfunction]
#[pyo3(signature = (length, start, end, upgrade_from = None))]
fn proof_indices(
    length: &Bound<'_, PyAny>,
    start: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
    upgrade_from: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<u64>> {
    let upgrade_from = upgrade_from
        .map(|a| uint(a, "upgrade_from"))
        .transpose()?
        .unwrap_or(0);
    Ok(merkle::proof_indices(
        uint(length, "length")?,
        upgrade_from,
        uint(start, "start")?,
        uint(end, "end")?,
    )?)
}

#[pyfunction]
fn encode_proof<'py>(
    py: Python<'py>,
    length: &Bound<'py, PyAny>,
    upgrade_from: &Bound<'py, PyAny>,
    start: &Bound<'py, PyAny>,
    end: &Bound<'py, PyAny>,
    nodes: Vec<Bound<'py, PyNode>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let proof = merkle::Proof::new(
        uint(length, "length")?,
        uint(upgrade_from, "upgrade_from")?,
        uint(start, "start")?,
        uint(end, "end")?,
        nodes_of(&nodes),
    )?;
    Ok(PyBytes::new(py, &proof.encode()))
}

type DecodedProof = (u64, u64, u64, u64, Vec<PyNode>);

#[pyfunction]
fn decode_proof(data: &Bound<'_, PyAny>) -> PyResult<DecodedProof> {
    let data = Bytes::get(data)?;
    let p = merkle::Proof::decode(data.as_slice())?;
    Ok((p.length, p.upgrade_from, p.start, p.end, py_nodes(p.nodes)))
}

#[pyfunction]
#[pyo3(signature = (proof, blocks, tree_hash, known_roots = Vec::new()))]
fn verify_proof<'py>(
    py: Python<'py>,
    proof: &Bound<'py, PyAny>,
    blocks: Vec<Bound<'py, PyAny>>,
    tree_hash: &Bound<'py, PyAny>,
    known_roots: Vec<Bound<'py, PyNode>>,
) -> PyResult<Vec<PyNode>> {
    let proof = merkle::Proof::decode(Bytes::get(proof)?.as_slice())?;
    let trusted: [u8; 32] = fixed(tree_hash, "tree_hash")?;
    let known = nodes_of(&known_roots);
    let bufs = many(&blocks)?;
    let refs = slices(&bufs);
    let verified = if total_len(&refs) >= DETACH_BYTES {
        py.detach(|| merkle::verify(&proof, &refs, &trusted, &known, true))?
    } else {
        merkle::verify(&proof, &refs, &trusted, &known, false)?
    };
    Ok(py_nodes(verified))
}

// -- ed25519 ------------------------------------------------------------------

/// An ed25519 signing key made from a 32-byte seed.
#[pyclass(module = "hyphal._core", frozen)]
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

// -- XOR distance -------------------------------------------------------------

#[pyfunction]
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

// -- AEAD ---------------------------------------------------------------------

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

// -- module -------------------------------------------------------------------

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_LENGTH", flat_tree::MAX_LENGTH)?;
    m.add("LEAF_KEY", PyBytes::new(m.py(), &hash::LEAF_KEY))?;
    m.add("PARENT_KEY", PyBytes::new(m.py(), &hash::PARENT_KEY))?;
    m.add("HEAD_KEY", PyBytes::new(m.py(), &hash::HEAD_KEY))?;
    m.add(
        "FEED_HEAD_NAMESPACE",
        PyBytes::new(m.py(), &hash::FEED_HEAD_NAMESPACE),
    )?;
    m.add_class::<Hasher>()?;
    m.add_class::<PyNode>()?;
    m.add_class::<SigningKey>()?;
    m.add_function(wrap_pyfunction!(blake3_hash, m)?)?;
    m.add_function(wrap_pyfunction!(keyed_hash, m)?)?;
    m.add_function(wrap_pyfunction!(derive_key, m)?)?;
    m.add_function(wrap_pyfunction!(ft_depth, m)?)?;
    m.add_function(wrap_pyfunction!(ft_offset, m)?)?;
    m.add_function(wrap_pyfunction!(ft_index, m)?)?;
    m.add_function(wrap_pyfunction!(ft_parent, m)?)?;
    m.add_function(wrap_pyfunction!(ft_sibling, m)?)?;
    m.add_function(wrap_pyfunction!(ft_children, m)?)?;
    m.add_function(wrap_pyfunction!(ft_span, m)?)?;
    m.add_function(wrap_pyfunction!(ft_block_range, m)?)?;
    m.add_function(wrap_pyfunction!(ft_full_roots, m)?)?;
    m.add_function(wrap_pyfunction!(leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(parent_hash, m)?)?;
    m.add_function(wrap_pyfunction!(tree_hash, m)?)?;
    m.add_function(wrap_pyfunction!(head_signable, m)?)?;
    m.add_function(wrap_pyfunction!(tree_append, m)?)?;
    m.add_function(wrap_pyfunction!(proof_indices, m)?)?;
    m.add_function(wrap_pyfunction!(encode_proof, m)?)?;
    m.add_function(wrap_pyfunction!(decode_proof, m)?)?;
    m.add_function(wrap_pyfunction!(verify_proof, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(xor_distance, m)?)?;
    m.add_function(wrap_pyfunction!(xor_compare, m)?)?;
    m.add_function(wrap_pyfunction!(bucket_index, m)?)?;
    m.add_function(wrap_pyfunction!(xor_closest, m)?)?;
    m.add_function(wrap_pyfunction!(xor_sort, m)?)?;
    m.add_function(wrap_pyfunction!(xchacha20poly1305_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(xchacha20poly1305_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_decrypt_parts, m)?)?;
    m.add_function(wrap_pyfunction!(chacha20poly1305_encrypt_parts, m)?)?;
    blob_bindings::register(m)?;
    Ok(())
}
