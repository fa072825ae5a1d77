//! The PyO3 bindings, `hyphal._core`: one submodule per topic, each binding the
//! core module of the same name. Bindings only parse arguments (any buffer,
//! without a copy), release the GIL around real work and map core errors onto
//! `hyphal.errors`.
//!
//! Every name is also on `hyphal._core` itself under its older flat name
//! (`ft_parent` for `flat_tree.parent`), the same object, so callers written
//! against the flat module keep working.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

mod aead;
mod args;
mod blob;
mod errors;
mod flat_tree;
mod hash;
mod merkle;
mod sign;
mod xor;

/// A submodule's name, how to fill it, and its names that the flat module spells differently.
type Submodule = (
    &'static str,
    fn(&Bound<'_, PyModule>) -> PyResult<()>,
    &'static [(&'static str, &'static str)],
);

const SUBMODULES: &[Submodule] = &[
    ("hash", hash::register, &[]),
    ("flat_tree", flat_tree::register, flat_tree::FLAT_NAMES),
    ("merkle", merkle::register, &[]),
    ("sign", sign::register, sign::FLAT_NAMES),
    ("xor", xor::register, xor::FLAT_NAMES),
    ("aead", aead::register, &[]),
    ("blob", blob::register, blob::FLAT_NAMES),
];

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    for &(name, register, renames) in SUBMODULES {
        let sub = add_submodule(m, name, register)?;
        add_flat_names(m, &sub, renames)?;
    }
    // The Merkle node's name before it became `TreeNode`.
    m.add("Node", m.getattr("TreeNode")?)?;
    Ok(())
}

/// Make `<parent>.<name>`, filled by `register`, importable as `import hyphal._core.<name>`.
///
/// An extension module is not a package, so the import system finds its
/// submodules only in `sys.modules`; `__name__` is set first so the functions
/// added to it report the dotted name as their `__module__`.
fn add_submodule<'py>(
    parent: &Bound<'py, PyModule>,
    name: &str,
    register: fn(&Bound<'_, PyModule>) -> PyResult<()>,
) -> PyResult<Bound<'py, PyModule>> {
    let py = parent.py();
    let dotted = format!("{}.{name}", parent.name()?);
    let sub = PyModule::new(py, name)?;
    sub.setattr("__name__", &dotted)?;
    register(&sub)?;
    parent.add(name, &sub)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item(&dotted, &sub)?;
    Ok(sub)
}

/// Put every public name of `sub` on `parent` too, renamed by `renames` (submodule name, flat name).
fn add_flat_names(
    parent: &Bound<'_, PyModule>,
    sub: &Bound<'_, PyModule>,
    renames: &[(&str, &str)],
) -> PyResult<()> {
    for (key, value) in sub.dict() {
        let name: String = key.extract()?;
        if name.starts_with('_') {
            continue;
        }
        let flat = renames
            .iter()
            .find(|(inner, _)| *inner == name)
            .map_or(name.as_str(), |(_, flat)| flat);
        // Two submodules giving one flat name would silently shadow one another.
        if parent.hasattr(flat)? {
            return Err(PyRuntimeError::new_err(format!(
                "hyphal._core.{flat} is defined twice"
            )));
        }
        parent.add(flat, value)?;
    }
    Ok(())
}
