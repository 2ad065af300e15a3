//! obj-py: the PyO3 binding of obj, built as the native module `obj._obj`.
//!
//! The binding converts arguments, releases the interpreter around engine work that can
//! block or run long, and maps engine errors to Python exceptions; nothing else. The public
//! package `obj` (python/obj/) re-exports these classes and adds the pure-Python ergonomics.
//! One file per Python class: `db.rs`, `txn.rs` (the two transaction kinds), `iter.rs`,
//! `error.rs` (the exception classes), plus `args.rs` for argument conversion.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod args;
mod db;
mod error;
mod iter;
mod txn;

use pyo3::prelude::*;

#[pymodule]
fn _obj(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<db::Db>()?;
    m.add_class::<txn::WriteTransaction>()?;
    m.add_class::<txn::ReadTransaction>()?;
    m.add_class::<iter::DocumentIterator>()?;
    error::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("WAL_HEADER_SIZE", obj_core::WAL_HEADER_SIZE)?;
    Ok(())
}
