//! `obj._obj.QueryCursor`: a query running in the engine, behind `Query` and `index_range`.
//!
//! The engine walks the collection (or an index slice), evaluates the filter on the stored
//! bytes with the interpreter released, and hands back only matching records; Python
//! objects are built only for those, a batch at a time, so memory stays bounded whatever
//! the number of records.
//!
//! Sorting follows the engine's one order ([`obj_core::query::sort_key`]): when a query
//! sorts by a field that no index yields in order, each match comes with its sort key, and
//! [`sort_key`] gives the same keys for what a Python key callable returns.

use crate::args::Target;
use crate::at::At;
use crate::datum;
use crate::error::to_py;
use crate::reads::QueryArgs;
use crate::source::{on_snap, Source};
use crate::stored::{Decode, Ready};
use obj_core::query::{self, Access, Plan, QueryScan};
use obj_core::{Pk, Reader};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
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
    /// Matches fetched but not handed out yet, with their sort keys when the caller sorts.
    pending: VecDeque<(Pk, Ready, Option<Vec<u8>>)>,
}

/// Where a match sits as Python is handed it, the first element of each pair: the id
/// (`int`), or the key (`bytes`) in a keyed collection.
fn pk_to_py<'py>(py: Python<'py>, pk: &Pk) -> PyResult<Bound<'py, PyAny>> {
    Ok(match pk {
        Pk::Id(id) => id.into_pyobject(py)?.into_any(),
        Pk::Key(key) => PyBytes::new(py, key).into_any(),
    })
}

impl QueryCursor {
    /// Plans `query` of `target` against the indexes `source` sees and starts it there.
    pub(crate) fn open(
        py: Python<'_>,
        source: Source,
        target: &Target<'_>,
        query: QueryArgs,
    ) -> PyResult<Self> {
        let collection = target.collection().to_owned();
        let (plan, scan) = source.with(py, |snap, checks| {
            on_snap!(snap, |r| {
                let plan = query.plan(py, r, checks.shared, target)?;
                let scan = QueryScan::new(r, &collection, &plan).map_err(to_py)?;
                Ok((plan, scan))
            })
        })?;
        Ok(QueryCursor {
            source: Some(source),
            collection,
            decode: query.decode,
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
        let ready = source.with(py, |snap, checks| {
            on_snap!(snap, |r| {
                let found = py.detach(|| scan.next_batch(r, want)).map_err(to_py)?;
                let mut ready = Vec::with_capacity(found.len());
                for f in found {
                    let item = decode.ready(py, r, checks, name, At::from(&f.pk), f.value)?;
                    ready.push((f.pk, item, f.sort_key));
                }
                Ok(ready)
            })
        })?;
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
    /// Up to `n` more `(id, document)` pairs (`(key, document)` in a keyed collection, the
    /// key as bytes); an empty list at the end. When the query
    /// sorts by a field its plan does not yield in order, each item is `(id, document,
    /// sort_key)` instead, `sort_key` being bytes to order by (ties by id).
    fn next_batch<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let n = n.max(1);
        if self.pending.len() < n {
            self.fetch(py, n - self.pending.len())?;
        }
        let take = n.min(self.pending.len());
        let out = PyList::empty(py);
        for (pk, ready, key) in self.pending.drain(..take) {
            let id = pk_to_py(py, &pk)?;
            let doc = self.decode.build(py, ready)?;
            let item = match key {
                Some(key) => PyTuple::new(py, [id, doc, PyBytes::new(py, &key).into_any()])?,
                None => PyTuple::new(py, [id, doc])?,
            };
            out.append(item)?;
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
        // Counting needs no order, so no sort keys either.
        let plan = &Plan::unsorted(self.plan.access.clone(), self.plan.filter.clone());
        let counted = source.with(py, |snap, _checks| {
            on_snap!(snap, |r| py.detach(|| count(r, name, plan)).map_err(to_py))
        })?;
        self.scan = None;
        self.pending.clear();
        Ok(counted)
    }

    /// The chosen plan: `"index <name> [lo .. hi]"` or `"scan"`, plus `" + filter"` when a
    /// filter runs on the candidates, and `" (sorted by index)"` (`", descending"`) when
    /// the index yields the requested order.
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

    fn __next__<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        if self.pending.is_empty() && !self.fetch(py, 64)? {
            return Ok(None);
        }
        let Some((pk, ready, _)) = self.pending.pop_front() else {
            return Ok(None);
        };
        Ok(Some((pk_to_py(py, &pk)?, self.decode.build(py, ready)?)))
    }
}

/// How many records of `collection` `plan` yields.
fn count<R: Reader>(r: &R, collection: &str, plan: &Plan) -> obj_core::Result<u64> {
    match (&plan.filter, &plan.access) {
        (None, Access::Scan) => r.count(collection),
        (None, Access::Index { name, lo, hi }) => {
            let mut scan = r.index_scan(collection, name, lo.as_deref(), hi.as_deref())?;
            let mut n = 0u64;
            loop {
                // (Primary keys, not ids: an index of a keyed collection refers to keys.)
                let pks = scan.next_keys(r, COUNT_BATCH)?;
                if pks.is_empty() {
                    return Ok(n);
                }
                n += pks.len() as u64;
            }
        }
        _ => {
            let mut scan = QueryScan::new(r, collection, plan)?;
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
}

/// The bytes a query orders `value` by: None < bools < numbers < str < bytes < dates <
/// datetimes < UUIDs < lists < dicts, ints and floats numerically, as index keys order them.
#[pyfunction]
#[pyo3(signature = (value, /))]
pub(crate) fn sort_key<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let d = datum::to_datum(value, "sort key")?;
    Ok(PyBytes::new(py, &query::sort_key(Some(&d))))
}
