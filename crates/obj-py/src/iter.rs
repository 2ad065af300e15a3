//! `obj._obj.DocumentIterator`: the lazy `(id, document)` iterator behind `all` and
//! `iter_all`.
//!
//! It fetches documents in batches with the engine's resumable scan (from the last id
//! yielded plus one), so memory stays bounded by one batch whatever the collection size.
//! Batches start small (a caller may want only the first few) and grow up to about
//! `BATCH_BYTES`. Over a write transaction, a change made while iterating discards the rest
//! of the batch, so the iterator sees the transaction as it is at each step. An iterator
//! that owns its snapshot (from `Db.all`) releases it once exhausted.
//! Where it reads from is a [`Source`] (`source.rs`).

use crate::error::to_py;
use crate::source::{on_snap, Source};
use crate::stored::{At, Decode, Ready};
use obj_core::Reader;
use pyo3::prelude::*;
use std::collections::VecDeque;

const FIRST_BATCH: usize = 16;
const MAX_BATCH: usize = 1024;
/// Rough upper bound on the payload bytes held by one batch (a single larger document is
/// still fetched whole).
const BATCH_BYTES: usize = 256 << 10;

#[pyclass(module = "obj._obj", name = "DocumentIterator")]
pub struct DocumentIterator {
    /// None once exhausted.
    source: Option<Source>,
    collection: String,
    decode: Decode,
    /// Id the next fetch starts from; None once the collection is exhausted.
    resume: Option<u64>,
    batch: VecDeque<(u64, Ready)>,
    limit: usize,
}

impl DocumentIterator {
    pub(crate) fn new(source: Source, collection: String, decode: Decode) -> Self {
        DocumentIterator {
            source: Some(source),
            collection,
            decode,
            resume: Some(1),
            batch: VecDeque::new(),
            limit: FIRST_BATCH,
        }
    }

    /// Loads the next batch; false when the collection has no more documents.
    fn refill(&mut self, py: Python<'_>) -> PyResult<bool> {
        let (Some(from), Some(source)) = (self.resume, &self.source) else {
            return Ok(false);
        };
        let (name, limit, decode) = (self.collection.as_str(), self.limit, &self.decode);
        let (ready, bytes, count, last) = source.with(py, |snap, checks| {
            on_snap!(snap, |r| {
                let docs = py.detach(|| r.scan(name, from, limit)).map_err(to_py)?;
                let count = docs.len();
                let last = docs.last().map(|(id, _)| *id);
                let bytes: usize = docs.iter().map(|(_, v)| v.len()).sum();
                let mut ready = VecDeque::with_capacity(count);
                for (id, value) in docs {
                    ready.push_back((id, decode.ready(py, r, checks, name, At::Id(id), value)?));
                }
                Ok((ready, bytes, count, last))
            })
        })?;
        self.resume = match last {
            Some(id) if count == limit => id.checked_add(1),
            _ => None,
        };
        if count == 0 {
            return Ok(false);
        }
        let per_doc = (bytes / count).max(1);
        self.limit = (BATCH_BYTES / per_doc).clamp(1, (limit * 4).min(MAX_BATCH));
        self.batch = ready;
        Ok(true)
    }
}

#[pymethods]
impl DocumentIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyAny>)>> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        source.check_active(py)?;
        if self.batch.is_empty() && !self.refill(py)? {
            self.source = None;
            return Ok(None);
        }
        let Some((id, ready)) = self.batch.pop_front() else {
            self.source = None;
            return Ok(None);
        };
        Ok(Some((id, self.decode.build(py, ready)?)))
    }
}
