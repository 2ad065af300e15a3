//! `obj._obj.DocumentIterator`: the lazy `(id, document)` iterator behind `all` and
//! `iter_all`.
//!
//! It fetches documents in batches (`batch.rs`) with the engine's resumable scan (from the
//! last id yielded plus one), so memory stays bounded by one batch whatever the collection
//! size. Over a write transaction, a change made while iterating discards the rest
//! of the batch, so the iterator sees the transaction as it is at each step. An iterator
//! that owns its snapshot (from `Db.all`) releases it once exhausted.
//! Where it reads from is a [`Source`] (`source.rs`).

use crate::at::At;
use crate::batch::{Batches, Fetched};
use crate::error::to_py;
use crate::source::{on_snap, Source};
use crate::stored::Decode;
use obj_core::Reader;
use pyo3::prelude::*;
use std::collections::VecDeque;

#[pyclass(module = "obj._obj", name = "DocumentIterator")]
pub struct DocumentIterator {
    batches: Batches<u64>,
    collection: String,
    decode: Decode,
    /// Id the next fetch starts from; None once every id has been passed.
    resume: Option<u64>,
}

impl DocumentIterator {
    pub(crate) fn new(source: Source, collection: String, decode: Decode) -> Self {
        DocumentIterator {
            batches: Batches::new(source),
            collection,
            decode,
            resume: Some(1),
        }
    }
}

#[pymethods]
impl DocumentIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyAny>)>> {
        let (name, decode, resume) = (self.collection.as_str(), &self.decode, &mut self.resume);
        let next = self.batches.next(py, |source, limit| {
            let Some(from) = *resume else {
                return Ok(Fetched {
                    items: VecDeque::new(),
                    bytes: 0,
                });
            };
            let fetched = source.with(py, |snap, checks| {
                on_snap!(snap, |r| {
                    let docs = py.detach(|| r.scan(name, from, limit)).map_err(to_py)?;
                    let bytes = docs.iter().map(|(_, v)| v.len()).sum();
                    let mut items = VecDeque::with_capacity(docs.len());
                    for (id, value) in docs {
                        items
                            .push_back((id, decode.ready(py, r, checks, name, At::Id(id), value)?));
                    }
                    Ok(Fetched { items, bytes })
                })
            })?;
            *resume = fetched.items.back().and_then(|(id, _)| id.checked_add(1));
            Ok(fetched)
        })?;
        match next {
            Some((id, ready)) => Ok(Some((id, self.decode.build(py, ready)?))),
            None => Ok(None),
        }
    }
}
