//! `obj._obj.QueryCursor`: a query running in the engine, behind `Query` and `index_range`.
//!
//! The engine walks the collection (or an index slice), evaluates the filter on the stored
//! bytes with the interpreter released, and hands back only matching records; Python
//! objects are built only for those, a batch at a time, so memory stays bounded whatever
//! the number of records.

use crate::error::to_py;
use crate::source::{with_reader, Source};
use crate::stored::{Decode, Ready};
use obj_core::query::{Access, Plan, QueryScan};
use obj_core::Reader;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use std::collections::VecDeque;

/// Records the engine examines per detached step when counting.
const COUNT_BATCH: usize = 4096;

#[pyclass(module = "obj._obj", name = "QueryCursor")]
pub struct QueryCursor {
    /// None once exhausted.
    source: Option<Source>,
    collection: String,
    decode: Decode,
    plan: Plan,
    scan: Option<QueryScan>,
    pending: VecDeque<(u64, Ready)>,
}

impl QueryCursor {
    pub(crate) fn new<R: Reader>(
        r: &R,
        source: Source,
        collection: String,
        decode: Decode,
        plan: Plan,
    ) -> PyResult<Self> {
        let scan = QueryScan::new(r, &collection, &plan).map_err(to_py)?;
        Ok(QueryCursor {
            source: Some(source),
            collection,
            decode,
            plan,
            scan: Some(scan),
            pending: VecDeque::new(),
        })
    }

    /// Fetches at least `want` more matches (fewer at the end); false when none are left.
    fn fetch(&mut self, py: Python<'_>, want: usize) -> PyResult<bool> {
        let (Some(source), Some(scan)) = (&self.source, &mut self.scan) else {
            return Ok(false);
        };
        source.check_active(py)?;
        let (name, decode) = (self.collection.as_str(), &self.decode);
        let ready = with_reader!(source, py, |r, checks| {
            let found = py.detach(|| scan.next_batch(r, want)).map_err(to_py)?;
            let mut ready = Vec::with_capacity(found.len());
            for (id, value) in found {
                let item = match value {
                    Some(v) => decode.ready(py, r, checks, name, id, v)?,
                    None => Ready::Nothing,
                };
                ready.push((id, item));
            }
            ready
        });
        if ready.is_empty() {
            self.scan = None;
            self.source = None;
            return Ok(false);
        }
        self.pending.extend(ready);
        Ok(true)
    }
}

#[pymethods]
impl QueryCursor {
    /// Up to `n` more `(id, document)` pairs; an empty list at the end.
    fn next_batch<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let n = n.max(1);
        if self.pending.len() < n {
            self.fetch(py, n - self.pending.len())?;
        }
        let take = n.min(self.pending.len());
        let out = PyList::empty(py);
        for (id, ready) in self.pending.drain(..take) {
            let doc = self.decode.build(py, ready)?;
            out.append(PyTuple::new(py, [id.into_pyobject(py)?.into_any(), doc])?)?;
        }
        Ok(out)
    }

    /// How many records match, counted in the engine without building documents. Consumes
    /// the cursor.
    fn count(&mut self, py: Python<'_>) -> PyResult<u64> {
        let Some(source) = self.source.take() else {
            return Ok(self.pending.len() as u64);
        };
        source.check_active(py)?;
        let name = self.collection.as_str();
        let plan = &self.plan;
        let counted = with_reader!(&source, py, |r, _checks| {
            py.detach(|| -> obj_core::Result<u64> {
                match (&plan.filter, &plan.access) {
                    (None, Access::Scan) => r.count(name),
                    (
                        None,
                        Access::Index {
                            name: index,
                            lo,
                            hi,
                        },
                    ) => {
                        let mut scan = r.index_scan(name, index, lo.as_deref(), hi.as_deref())?;
                        let mut n = 0u64;
                        loop {
                            let ids = scan.next_batch(r, COUNT_BATCH)?;
                            if ids.is_empty() {
                                return Ok(n);
                            }
                            n += ids.len() as u64;
                        }
                    }
                    _ => {
                        let mut scan = QueryScan::new(r, name, plan)?;
                        let mut n = 0u64;
                        loop {
                            let found = scan.next_batch(r, COUNT_BATCH)?;
                            if found.is_empty() {
                                return Ok(n);
                            }
                            n += found.len() as u64;
                        }
                    }
                }
            })
            .map_err(to_py)?
        });
        self.scan = None;
        self.pending.clear();
        Ok(counted)
    }

    /// The chosen plan: `"index <name> [lo .. hi]"` or `"scan"`, plus `" + filter"` when a
    /// filter runs on the candidates.
    fn explain(&self) -> String {
        self.plan.explain()
    }

    /// True when results come in the requested sort order straight from an index.
    #[getter]
    fn sorted_by_index(&self) -> bool {
        self.plan.sorted_by_index
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyAny>)>> {
        if self.pending.is_empty() && !self.fetch(py, 64)? {
            return Ok(None);
        }
        let Some((id, ready)) = self.pending.pop_front() else {
            return Ok(None);
        };
        Ok(Some((id, self.decode.build(py, ready)?)))
    }
}
