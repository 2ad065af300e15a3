//! `obj._obj.DocumentIterator`: the lazy `(id, bytes)` iterator behind `iter_all`.
//!
//! It fetches documents in batches with the engine's resumable scan (from the last id
//! yielded plus one), so memory stays bounded by one batch whatever the collection size.
//! Batches start small (a caller may want only the first few) and grow up to about
//! `BATCH_BYTES`. Over a write transaction, a change made while iterating discards the rest
//! of the batch, so the iterator sees the transaction as it is at each step.

use crate::error::to_py;
use crate::txn::{ReadTransaction, WriteTransaction};
use obj_core::{Reader, Value};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

const FIRST_BATCH: usize = 16;
const MAX_BATCH: usize = 1024;
/// Rough upper bound on the payload bytes held by one batch (a single larger document is
/// still fetched whole).
const BATCH_BYTES: usize = 256 << 10;

pub(crate) enum Source {
    Read(Py<ReadTransaction>),
    Write(Py<WriteTransaction>),
}

#[pyclass(module = "obj._obj", name = "DocumentIterator")]
pub struct DocumentIterator {
    source: Source,
    collection: String,
    /// Id the next fetch starts from; None once the collection is exhausted.
    resume: Option<u64>,
    batch: std::vec::IntoIter<(u64, Value)>,
    limit: usize,
    /// For a write source: its change count when the batch was fetched.
    fetched_at: u64,
}

impl DocumentIterator {
    pub(crate) fn new(source: Source, collection: String) -> Self {
        DocumentIterator {
            source,
            collection,
            resume: Some(1),
            batch: Vec::new().into_iter(),
            limit: FIRST_BATCH,
            fetched_at: 0,
        }
    }

    /// Raises ObjError once the source transaction has ended; drops a batch that a change
    /// in the source made stale.
    fn check_source(&mut self, py: Python<'_>) -> PyResult<()> {
        match &self.source {
            Source::Read(txn) => txn.get().check_active(py),
            Source::Write(txn) => {
                let txn = txn.get();
                txn.check_active(py)?;
                if txn.changes() != self.fetched_at {
                    if let Some(&(id, _)) = self.batch.as_slice().first() {
                        self.resume = Some(id);
                    }
                    self.batch = Vec::new().into_iter();
                }
                Ok(())
            }
        }
    }

    /// Loads the next batch; false when the collection has no more documents.
    fn refill(&mut self, py: Python<'_>) -> PyResult<bool> {
        let Some(from) = self.resume else {
            return Ok(false);
        };
        let (name, limit) = (self.collection.as_str(), self.limit);
        let docs = match &self.source {
            Source::Read(txn) => {
                let snap = txn.get().snapshot(py)?;
                py.detach(|| snap.scan(name, from, limit)).map_err(to_py)?
            }
            Source::Write(txn) => {
                let txn = txn.get();
                self.fetched_at = txn.changes();
                txn.with_txn(py, |w| py.detach(|| w.scan(name, from, limit)))?
            }
        };
        self.resume = match docs.last() {
            Some((id, _)) if docs.len() == limit => id.checked_add(1),
            _ => None,
        };
        if docs.is_empty() {
            return Ok(false);
        }
        let bytes: usize = docs.iter().map(|(_, v)| v.len()).sum();
        let per_doc = (bytes / docs.len()).max(1);
        self.limit = (BATCH_BYTES / per_doc).clamp(1, (limit * 4).min(MAX_BATCH));
        self.batch = docs.into_iter();
        Ok(true)
    }
}

#[pymethods]
impl DocumentIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyBytes>)>> {
        self.check_source(py)?;
        if self.batch.len() == 0 && !self.refill(py)? {
            return Ok(None);
        }
        let Some((id, value)) = self.batch.next() else {
            return Ok(None);
        };
        Ok(Some((id, PyBytes::new(py, &value))))
    }
}
