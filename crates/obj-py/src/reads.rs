//! The reads `Db`, `ReadTransaction` and `WriteTransaction` share, written once over the
//! engine's `Reader`. Python arguments are converted before a transaction's lock is taken
//! ([`UniqueLookup::new`], [`QueryArgs::new`]); the engine work runs under it.

use crate::args::Target;
use crate::at::At;
use crate::error::{to_py, InvalidArgumentError, NotFoundError};
use crate::filter;
use crate::shared::{check_current, Checks, Shared};
use crate::stored::{Decode, Ready};
use obj_core::codec::Datum;
use obj_core::query::{self, Access, Expr, Plan, SortOrder};
use obj_core::Reader;
use pyo3::prelude::*;

/// The document at `at` (an id, or a key of a keyed collection), checked and ready to
/// build; None when there is none.
pub(crate) fn get<R: Reader>(
    py: Python<'_>,
    r: &R,
    checks: &mut Checks<'_>,
    collection: &str,
    decode: &Decode,
    at: At<'_>,
) -> PyResult<Option<Ready>> {
    let value = match at {
        At::Id(id) => r.get(collection, id),
        At::Key(key) => r.get_key(collection, key),
    }
    .map_err(to_py)?;
    value
        .map(|v| decode.ready(py, r, checks, collection, at, v))
        .transpose()
}

/// An engine error about `index`, with a hint when the class declares that index but the
/// snapshot predates it.
pub(crate) fn index_error(
    py: Python<'_>,
    err: obj_core::Error,
    target: &Target<'_>,
    index: &str,
) -> PyErr {
    if let (obj_core::Error::NotFound(msg), Target::Typed(dt)) = (&err, target) {
        let dt = dt.get();
        if dt.index_specs().iter().any(|s| s.name == index) {
            return NotFoundError::new_err(format!(
                "{msg}: {} declares it, but it is not built in this snapshot yet; it is built \
                 by the first write of a {} or the first index read on the Db itself",
                dt.class_name(py),
                dt.class_name(py)
            ));
        }
    }
    to_py(err)
}

/// The converted arguments of `find_unique`.
pub(crate) struct UniqueLookup {
    pub(crate) index: String,
    values: Vec<Datum>,
}

impl UniqueLookup {
    pub(crate) fn new(
        target: &Target<'_>,
        index: &str,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let (dt, paths) = declared_paths(target, index);
        Ok(UniqueLookup {
            index: index.to_owned(),
            values: filter::lookup(value, &paths, dt)?,
        })
    }

    pub(crate) fn run<R: Reader>(
        &self,
        py: Python<'_>,
        r: &R,
        checks: &mut Checks<'_>,
        target: &Target<'_>,
        decode: &Decode,
    ) -> PyResult<Option<Ready>> {
        if let Target::Typed(dt) = target {
            check_current(py, r, checks.shared, dt.get())?;
        }
        let collection = target.collection();
        let pk = r
            .find_unique_pk(collection, &self.index, &self.values)
            .map_err(|e| index_error(py, e, target, &self.index))?;
        match pk {
            Some(pk) => get(py, r, checks, collection, decode, At::from(&pk)),
            None => Ok(None),
        }
    }
}

/// The paths of an index the class declares (empty when it is not one of its own).
fn declared_paths<'a>(
    target: &'a Target<'_>,
    index: &str,
) -> (Option<&'a crate::codec::DocType>, Vec<String>) {
    match target {
        Target::Typed(dt) => {
            let dt = dt.get();
            let paths = dt
                .index_specs()
                .iter()
                .find(|s| s.name == index)
                .map(|s| s.paths.clone())
                .unwrap_or_default();
            (Some(dt), paths)
        }
        Target::Name(_) => (None, Vec::new()),
    }
}

/// A slice of an index: its name and inclusive bounds (None = open).
pub(crate) struct IndexSlice {
    pub(crate) index: String,
    lo: Option<Vec<Datum>>,
    hi: Option<Vec<Datum>>,
}

impl IndexSlice {
    pub(crate) fn new(
        target: &Target<'_>,
        index: &str,
        lo: &Bound<'_, PyAny>,
        hi: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let (dt, paths) = declared_paths(target, index);
        Ok(IndexSlice {
            index: index.to_owned(),
            lo: filter::bound(lo, "lo", &paths, dt)?,
            hi: filter::bound(hi, "hi", &paths, dt)?,
        })
    }
}

/// The converted arguments of a query.
pub(crate) struct QueryArgs {
    expr: Option<Expr>,
    slice: Option<IndexSlice>,
    sort: Option<SortOrder>,
    pub(crate) decode: Decode,
}

impl QueryArgs {
    /// `node` is the filter tree (or None), `index_range` a `(name, lo, hi)` tuple (or
    /// None), `sort_field` the field results are ordered by (descending when `reverse`).
    pub(crate) fn new(
        target: &Target<'_>,
        node: Option<&Bound<'_, PyAny>>,
        index_range: Option<&Bound<'_, PyAny>>,
        sort_field: Option<String>,
        reverse: bool,
        decode: bool,
    ) -> PyResult<Self> {
        let dt = match target {
            Target::Typed(dt) => Some(dt.get()),
            Target::Name(_) => None,
        };
        let expr = node.map(|n| filter::expr(n, dt)).transpose()?;
        let slice = match index_range {
            Some(t) => {
                let (index, lo, hi): (String, Bound<'_, PyAny>, Bound<'_, PyAny>) =
                    t.extract().map_err(|_| {
                        InvalidArgumentError::new_err("index_range must be (name, lo, hi)")
                    })?;
                Some(IndexSlice::new(target, &index, &lo, &hi)?)
            }
            None => None,
        };
        Ok(QueryArgs {
            expr,
            slice,
            sort: sort_field.map(|path| SortOrder {
                path,
                descending: reverse,
            }),
            decode: if decode {
                Decode::of(target)
            } else {
                Decode::Ids
            },
        })
    }

    /// Chooses the plan against the indexes the reader sees.
    pub(crate) fn plan<R: Reader>(
        &self,
        py: Python<'_>,
        r: &R,
        shared: &Shared,
        target: &Target<'_>,
    ) -> PyResult<Plan> {
        let engine_reads_fields =
            self.expr.is_some() || self.slice.is_some() || self.sort.is_some();
        if let (Target::Typed(dt), true) = (target, engine_reads_fields) {
            check_current(py, r, shared, dt.get())?;
        }
        let collection = target.collection();
        match &self.slice {
            Some(s) => {
                let def = r
                    .index(collection, &s.index)
                    .map_err(|e| index_error(py, e, target, &s.index))?;
                let sorted_by_index = self
                    .sort
                    .as_ref()
                    .is_some_and(|o| query::yields_order_of(&def, &o.path));
                Ok(Plan {
                    access: Access::Index {
                        name: s.index.clone(),
                        lo: s.lo.clone(),
                        hi: s.hi.clone(),
                    },
                    filter: self.expr.clone(),
                    sort: self.sort.clone(),
                    sorted_by_index,
                })
            }
            None => {
                let indexes = r.indexes(collection).map_err(to_py)?;
                Ok(query::plan(&indexes, self.expr.clone(), self.sort.clone()))
            }
        }
    }
}

/// `(name, kind, key_paths, ready)` of each index of a collection.
pub(crate) type IndexInfo = (String, &'static str, Vec<String>, bool);

pub(crate) fn indexes<R: Reader>(r: &R, collection: &str) -> PyResult<Vec<IndexInfo>> {
    Ok(r.indexes(collection)
        .map_err(to_py)?
        .iter()
        .map(|d| {
            (
                d.spec.name.clone(),
                d.spec.kind.name(),
                d.spec.paths.clone(),
                d.ready,
            )
        })
        .collect())
}
