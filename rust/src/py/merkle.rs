//! `hyphal._core.merkle`: the tree node type, appends, and the proof format
//! (binds `merkle.rs`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{fixed, many, maybe_detach, slices, total_len, uint, Bytes, DETACH_BYTES};
use crate::{flat_tree, merkle};

/// What `TreeNode.__reduce__` returns for pickling: the class and its constructor arguments.
type Reduced<'py> = (Bound<'py, PyAny>, (u64, Bound<'py, PyBytes>, u64));

/// A Merkle tree node: flat index, 32-byte hash and the byte size it covers.
#[pyclass(
    module = "hyphal._core.merkle",
    name = "TreeNode",
    frozen,
    eq,
    hash,
    skip_from_py_object
)]
#[derive(Clone, PartialEq, Eq, Hash)]
struct PyTreeNode(merkle::Node);

#[pymethods]
impl PyTreeNode {
    #[new]
    fn new(
        index: &Bound<'_, PyAny>,
        hash: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<PyTreeNode> {
        let index = uint(index, "index")?;
        flat_tree::depth(index)?;
        Ok(PyTreeNode(merkle::Node {
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
            "TreeNode(index={}, hash={hex}…, size={})",
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

fn nodes_of(objs: &[Bound<'_, PyTreeNode>]) -> Vec<merkle::Node> {
    objs.iter().map(|n| n.get().0).collect()
}

fn py_nodes(nodes: Vec<merkle::Node>) -> Vec<PyTreeNode> {
    nodes.into_iter().map(PyTreeNode).collect()
}

#[pyfunction]
fn tree_hash<'py>(
    py: Python<'py>,
    roots: Vec<Bound<'py, PyTreeNode>>,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &merkle::tree_hash(&nodes_of(&roots))?))
}

#[pyfunction]
#[pyo3(signature = (roots, blocks, parallel = true))]
fn tree_append<'py>(
    py: Python<'py>,
    roots: Vec<Bound<'py, PyTreeNode>>,
    blocks: Vec<Bound<'py, PyAny>>,
    parallel: bool,
) -> PyResult<(Vec<PyTreeNode>, Vec<PyTreeNode>)> {
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
    nodes: Vec<Bound<'py, PyTreeNode>>,
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

type DecodedProof = (u64, u64, u64, u64, Vec<PyTreeNode>);

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
    known_roots: Vec<Bound<'py, PyTreeNode>>,
) -> PyResult<Vec<PyTreeNode>> {
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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTreeNode>()?;
    m.add_function(wrap_pyfunction!(tree_hash, m)?)?;
    m.add_function(wrap_pyfunction!(tree_append, m)?)?;
    m.add_function(wrap_pyfunction!(proof_indices, m)?)?;
    m.add_function(wrap_pyfunction!(encode_proof, m)?)?;
    m.add_function(wrap_pyfunction!(decode_proof, m)?)?;
    m.add_function(wrap_pyfunction!(verify_proof, m)?)?;
    Ok(())
}
