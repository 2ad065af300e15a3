//! obj-py: the PyO3 binding of obj, built as the native module `obj._obj`.
//!
//! The binding converts arguments, releases the interpreter around engine work that can
//! block or run long, and maps engine errors to Python exceptions; nothing else. The public
//! package `obj` (python/obj/) subclasses and re-exports these classes and adds the
//! pure-Python ergonomics.
//!
//! One file per Python class: `surface.rs` (`Reads`, the read surface the next three
//! extend), `db.rs`, `write_txn.rs`, `read_txn.rs`, `iter.rs` (`DocumentIterator`), `keyed.rs` (`KeyIterator` and the keyed reads and writes of `obj.Store`),
//! `cursor.rs` (`QueryCursor`), `codec.rs` (`DocType`, the typed codec) and `error.rs` (the
//! exception classes). The rest is conversion: `args.rs` (arguments and the dispatch by
//! argument type), `options.rs` (the open options), `datum.rs` (Python values ↔ the
//! engine's `Datum`), `filter.rs` (query filters and index bounds), `stored.rs` (records →
//! Python), plus the shared pieces `shared.rs` (per-database caches and attachments),
//! `state.rs` (the transactions' state), `source.rs` (where a read reads from) and
//! `reads.rs` (the reads over the engine's `Reader`).
//!
//! Layers point down: the classes (`db`, then `read_txn` and `write_txn`) over `surface`,
//! over `cursor` and `iter`, over `source` and `reads`, over `state`, over `shared`.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod args;
mod at;
mod batch;
mod blob;
mod changes;
mod codec;
mod column;
mod context;
mod cursor;
mod datum;
mod db;
mod error;
mod filter;
mod iter;
mod keyed;
mod options;
mod read_txn;
mod reads;
mod shared;
mod source;
mod state;
mod stored;
mod surface;
mod table;
mod vector;
mod write_txn;

use pyo3::prelude::*;

#[pymodule]
fn _obj(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<surface::Reads>()?;
    m.add_class::<db::Db>()?;
    m.add_class::<write_txn::WriteTransaction>()?;
    m.add_class::<read_txn::ReadTransaction>()?;
    m.add_class::<iter::DocumentIterator>()?;
    m.add_class::<keyed::KeyIterator>()?;
    m.add_class::<keyed::KeyedHandle>()?;
    m.add_class::<table::TableHandle>()?;
    m.add_class::<blob::BlobHandle>()?;
    m.add_class::<blob::BlobWriter>()?;
    m.add_class::<column::ColumnHandle>()?;
    m.add_class::<vector::Vector>()?;
    m.add_class::<cursor::QueryCursor>()?;
    m.add_class::<codec::DocType>()?;
    m.add_class::<changes::Change>()?;
    m.add_class::<changes::DocumentChange>()?;
    m.add_function(wrap_pyfunction!(cursor::sort_key, m)?)?;
    m.add_function(wrap_pyfunction!(blob::_blob_chunks_of, m)?)?;
    m.add_function(wrap_pyfunction!(options::_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(table::_set_clock, m)?)?;
    m.add_function(wrap_pyfunction!(db::_before_fork, m)?)?;
    m.add_function(wrap_pyfunction!(db::_after_fork_anywhere, m)?)?;
    error::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("WAL_HEADER_SIZE", obj_core::WAL_HEADER_SIZE)?;
    m.add("MAX_KEY_LEN", obj_core::MAX_KEY_LEN)?;
    Ok(())
}
