//! Tables, for `obj.Table`: the binding's side of `obj_core::table`. Python keys, items,
//! conditions and updates are converted here before the engine runs; the engine does the
//! rest (key encoding, key types, conditions inside the write, ranges, pages).

use crate::datum;
use crate::error::{to_py, InvalidArgumentError, ObjError};
use crate::filter;
use crate::source::{on_snap, Origin, Place};
use crate::surface::Reads;
use crate::{args, codec};
use obj_core::codec::Datum;
use obj_core::query::Expr;
use obj_core::table::{self, Select, SortCondition, Update};
use obj_core::WriteTxn;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

/// A key part as Python gave it: a str, bytes-like or int, converted by the same rules as
/// every value (`datum.rs`); other types go through the general conversion, and the engine
/// refuses them as keys.
fn part(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Datum> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Datum::Str(datum::utf8(s, what)?.into_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Datum::Bytes(b.as_bytes().to_vec()));
    }
    if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() {
        return Ok(Datum::Int(datum::int_value(v, what)?));
    }
    if let Ok(b) = args::with_value(v, <[u8]>::to_vec) {
        return Ok(Datum::Bytes(b));
    }
    datum::to_datum(v, what)
}

fn sort_key(sk: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Datum>> {
    sk.filter(|s| !s.is_none())
        .map(|s| part(s, "sort key"))
        .transpose()
}

/// A condition or filter: an `obj.Expr` (its `node` is converted by `filter.rs`).
fn condition(cond: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Expr>> {
    let Some(cond) = cond.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    let node = cond
        .getattr(pyo3::intern!(cond.py(), "node"))
        .map_err(|_| {
            InvalidArgumentError::new_err(format!(
                "{what} must be an obj.field(...) expression (such as obj.field('version') == 3), \
             got {}",
                datum::type_name(cond)
            ))
        })?;
    filter::expr(&node, None).map(Some)
}

/// An item's payload: a dict, encoded by the one dict-native encoder.
fn item_payload(item: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if !item.is_instance_of::<PyDict>() {
        return Err(InvalidArgumentError::new_err(format!(
            "a table item must be a dict, got {}",
            datum::type_name(item)
        )));
    }
    datum::encode(item, "item")
}

/// When an item given `ttl` expires, in microseconds since the Unix epoch: `ttl` is seconds
/// from now (an int, a float or a `timedelta`, above 0), or the `datetime` to expire at (a
/// naive one is local time, as `datetime.timestamp()` has it). "Now" is the engine's clock.
fn expires_at(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(ttl) = ttl.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    let py = ttl.py();
    let types = datum::types(py)?;
    let bad = || {
        InvalidArgumentError::new_err(format!(
            "ttl must be seconds to live (an int, float or timedelta above 0) or the datetime \
             to expire at, got {}",
            ttl.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ))
    };
    let micros = |seconds: f64| -> PyResult<u64> {
        if !seconds.is_finite() {
            return Err(bad());
        }
        Ok((seconds * 1e6).clamp(0.0, u64::MAX as f64) as u64)
    };
    if ttl.is_instance(types.datetime.bind(py))? {
        let at: f64 = ttl.call_method0("timestamp")?.extract()?;
        return micros(at).map(Some);
    }
    let seconds: f64 = if ttl.is_instance(types.timedelta.bind(py))? {
        ttl.call_method0("total_seconds")?.extract()?
    } else if (ttl.is_instance_of::<PyInt>() && !ttl.is_instance_of::<PyBool>())
        || ttl.is_instance_of::<pyo3::types::PyFloat>()
    {
        ttl.extract()?
    } else {
        return Err(bad());
    };
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(bad());
    }
    let now = obj_core::clock::now_micros();
    Ok(Some(now.saturating_add(micros(seconds)?)))
}

/// A key as pages and `batch_get` take it: `pk` or `(pk, sk)`.
fn key_arg(key: &Bound<'_, PyAny>, what: &str) -> PyResult<(Datum, Option<Datum>)> {
    if let Ok(t) = key.cast::<PyTuple>() {
        return match t.len() {
            2 => Ok((
                part(&t.get_item(0)?, what)?,
                sort_key(Some(&t.get_item(1)?))?,
            )),
            1 => Ok((part(&t.get_item(0)?, what)?, None)),
            n => Err(InvalidArgumentError::new_err(format!(
                "{what} must be a partition key or a (pk, sk) tuple; got a tuple of {n}"
            ))),
        };
    }
    Ok((part(key, what)?, None))
}

/// A stored key as Python sees it: `(pk, sk)`, `sk` None for a table without sort keys.
pub(crate) fn key_to_py<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
    let (pk, sk) = table::decode_key(key).map_err(to_py)?;
    let sk = match sk {
        Some(sk) => datum::to_py(py, &sk)?,
        None => py.None().into_bound(py),
    };
    PyTuple::new(py, [datum::to_py(py, &pk)?, sk])
}

/// A condition tuple from `obj.sk` (`("lt", v)`, `("between", a, b)`, ...); operands are
/// converted by `value` (key parts for a partition's sort keys, any value for an index).
fn sort_condition(
    cond: &Bound<'_, PyAny>,
    value: fn(&Bound<'_, PyAny>, &str) -> PyResult<Datum>,
) -> PyResult<SortCondition> {
    let bad = || {
        InvalidArgumentError::new_err(format!(
            "sk must be a sort key value or a condition on obj.sk (obj.sk < v, \
             obj.sk.between(a, b), obj.sk.begins_with(p), ...), got {}",
            cond.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ))
    };
    let t = cond.cast::<PyTuple>().map_err(|_| bad())?;
    let op: String = t.get_item(0)?.extract().map_err(|_| bad())?;
    let v = |i: usize| value(&t.get_item(i)?, "condition value");
    Ok(match op.as_str() {
        "eq" => SortCondition::Eq(v(1)?),
        "lt" => SortCondition::Lt(v(1)?),
        "le" => SortCondition::Le(v(1)?),
        "gt" => SortCondition::Gt(v(1)?),
        "ge" => SortCondition::Ge(v(1)?),
        "between" => SortCondition::Between(v(1)?, v(2)?),
        "begins_with" => SortCondition::BeginsWith(v(1)?),
        _ => return Err(bad()),
    })
}

/// An index condition's operand: a value, or a tuple (a prefix of a composite index).
fn index_operand(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Datum> {
    if let Ok(t) = v.cast::<PyTuple>() {
        let values = t
            .iter()
            .map(|x| datum::to_datum(&x, what))
            .collect::<PyResult<_>>()?;
        return Ok(Datum::List(values));
    }
    datum::to_datum(v, what)
}

fn pairs(
    arg: Option<&Bound<'_, PyAny>>,
    what: &str,
    value: impl Fn(&Bound<'_, PyAny>, &str) -> PyResult<Datum>,
) -> PyResult<Vec<(String, Datum)>> {
    let Some(arg) = arg.filter(|a| !a.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = arg.cast::<PyDict>().map_err(|_| {
        InvalidArgumentError::new_err(format!(
            "{what} must be a dict of attribute → value, got {}",
            datum::type_name(arg)
        ))
    })?;
    dict.iter()
        .map(|(k, v)| {
            let path: String = k.extract().map_err(|_| {
                InvalidArgumentError::new_err(format!(
                    "{what} names attributes with str keys, got {}",
                    datum::type_name(&k)
                ))
            })?;
            let d = value(&v, &format!("{what}[{path:?}]"))?;
            Ok((path, d))
        })
        .collect()
}

/// A page as Python gets it: `(items, last_key)`.
type PyPage<'py> = (Bound<'py, PyList>, Option<Bound<'py, PyTuple>>);

fn page_to_py<'py>(py: Python<'py>, page: table::Page) -> PyResult<PyPage<'py>> {
    let last = page
        .last_key
        .as_deref()
        .map(|k| key_to_py(py, k))
        .transpose()?;
    Ok((page_items(py, &page)?, last))
}

/// A page's items, as dicts.
fn page_items<'py>(py: Python<'py>, page: &table::Page) -> PyResult<Bound<'py, PyList>> {
    let items = PyList::empty(py);
    for (_, value) in &page.items {
        items.append(codec::value_to_py(py, value)?)?;
    }
    Ok(items)
}

/// A table's binding to one keyed collection of one origin (a `Db` or a transaction).
#[pyclass(frozen, subclass, module = "obj._obj", name = "TableHandle")]
pub struct TableHandle {
    origin: Origin,
    place: Place,
    collection: String,
}

impl TableHandle {
    pub(crate) fn open(origin: &Origin, name: String) -> PyResult<Self> {
        let (place, target) = origin.resolve(args::Target::Name(name))?;
        Ok(TableHandle {
            origin: origin.clone(),
            place,
            collection: target.collection().to_owned(),
        })
    }

    /// Runs `f` in the write transaction of this origin (one of its own on a `Db`).
    fn write<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WriteTxn, &str) -> obj_core::Result<R>,
    ) -> PyResult<R> {
        let collection = self.collection.as_str();
        match &self.origin {
            Origin::Db(shared) => {
                args::check_writable(collection)?;
                shared.write_alone(py, None, |txn| f(txn, collection))
            }
            Origin::Write(state) => {
                args::check_writable(collection)?;
                state.with(py, |live| f(&mut live.txn, collection).map_err(to_py))
            }
            Origin::Read(_) => Err(ObjError::new_err(format!(
                "table {collection:?} belongs to a read transaction, which cannot write; \
                 write through db.table(...) or tx.table(...) in db.transaction()"
            ))),
        }
    }
}

#[pymethods]
impl TableHandle {
    /// The table `name` of a database or transaction (`obj.Table` extends this class).
    #[new]
    #[pyo3(signature = (owner, name, /))]
    fn new(owner: &Bound<'_, Reads>, name: String) -> PyResult<Self> {
        args::check_name(&name)?;
        TableHandle::open(owner.get().origin(), name)
    }

    /// The name of the table's collection.
    #[getter]
    fn name(&self) -> &str {
        &self.collection
    }
    /// Stores `item` under `pk` (and `sk`), replacing any item there.
    #[pyo3(signature = (pk, item, *, sk = None, condition = None, ttl = None))]
    fn put(
        &self,
        py: Python<'_>,
        pk: &Bound<'_, PyAny>,
        item: &Bound<'_, PyAny>,
        sk: Option<&Bound<'_, PyAny>>,
        condition: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let pk = part(pk, "partition key")?;
        let sk = sort_key(sk)?;
        let payload = item_payload(item)?;
        let cond = self::condition(condition, "condition")?;
        let expires = expires_at(ttl)?;
        self.write(py, |txn, c| {
            table::put(txn, c, &pk, sk.as_ref(), &payload, cond.as_ref(), expires)
        })
    }

    /// The item under `pk` (and `sk`), or None.
    #[pyo3(signature = (pk, *, sk = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        pk: &Bound<'py, PyAny>,
        sk: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let pk = part(pk, "partition key")?;
        let sk = sort_key(sk)?;
        let key = table::encode_key(&pk, sk.as_ref()).map_err(to_py)?;
        let collection = self.collection.as_str();
        let value = self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| table::get(r, collection, &key).map_err(to_py))
        })?;
        value.map(|v| codec::value_to_py(py, &v)).transpose()
    }

    /// Removes the item under `pk` (and `sk`); True if there was one.
    #[pyo3(signature = (pk, *, sk = None, condition = None))]
    fn delete(
        &self,
        py: Python<'_>,
        pk: &Bound<'_, PyAny>,
        sk: Option<&Bound<'_, PyAny>>,
        condition: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let pk = part(pk, "partition key")?;
        let sk = sort_key(sk)?;
        let cond = self::condition(condition, "condition")?;
        self.write(py, |txn, c| {
            table::delete(txn, c, &pk, sk.as_ref(), cond.as_ref())
        })
    }

    #[pyo3(signature = (pk, sk, set, remove, add, condition, /))]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(name = "_update")]
    fn update<'py>(
        &self,
        py: Python<'py>,
        pk: &Bound<'py, PyAny>,
        sk: Option<&Bound<'py, PyAny>>,
        set: Option<&Bound<'py, PyAny>>,
        remove: Option<&Bound<'py, PyAny>>,
        add: Option<&Bound<'py, PyAny>>,
        condition: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pk = part(pk, "partition key")?;
        let sk = sort_key(sk)?;
        let mut upd = Update {
            set: pairs(set, "set", datum::to_datum)?,
            add: pairs(add, "add", datum::to_datum)?,
            remove: Vec::new(),
        };
        if let Some(remove) = remove.filter(|r| !r.is_none()) {
            if remove.is_instance_of::<PyString>() {
                return Err(InvalidArgumentError::new_err(
                    "remove takes a list of attribute names, not one str",
                ));
            }
            for name in remove.try_iter()? {
                let name = name?;
                upd.remove.push(name.extract().map_err(|_| {
                    InvalidArgumentError::new_err(format!(
                        "remove names attributes by str, got {}",
                        datum::type_name(&name)
                    ))
                })?);
            }
        }
        let cond = self::condition(condition, "condition")?;
        let item = self.write(py, |txn, c| {
            table::update(txn, c, &pk, sk.as_ref(), &upd, cond.as_ref())
        })?;
        datum::to_py(py, &item)
    }

    /// The items of partition `pk` whose sort keys meet `sk` (a condition tuple from
    /// `obj.sk`, or None): `(items, last_key)`.
    #[pyo3(signature = (pk, sk, filter, reverse, limit, start_after, /))]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(name = "_query")]
    fn query<'py>(
        &self,
        py: Python<'py>,
        pk: &Bound<'py, PyAny>,
        sk: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
        reverse: bool,
        limit: Option<usize>,
        start_after: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyPage<'py>> {
        let pk = part(pk, "partition key")?;
        let cond = sk
            .filter(|s| !s.is_none())
            .map(|c| sort_condition(c, part))
            .transpose()?;
        let filter = condition(filter, "filter")?;
        let after = self.start_after(start_after, Some(&pk))?;
        let select = Select {
            filter: filter.as_ref(),
            reverse,
            limit,
            start_after: after.as_deref(),
        };
        let collection = self.collection.as_str();
        let page = self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| table::query(
                r,
                collection,
                &pk,
                cond.as_ref(),
                &select
            )
            .map_err(to_py))
        })?;
        page_to_py(py, page)
    }

    /// Every item, in key order: `(items, last_key)`.
    #[pyo3(signature = (filter, limit, start_after, /))]
    #[pyo3(name = "_scan")]
    fn scan<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
        limit: Option<usize>,
        start_after: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyPage<'py>> {
        let filter = condition(filter, "filter")?;
        let after = self.start_after(start_after, None)?;
        let select = Select {
            filter: filter.as_ref(),
            reverse: false,
            limit,
            start_after: after.as_deref(),
        };
        let collection = self.collection.as_str();
        let page = self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| table::scan(r, collection, &select).map_err(to_py))
        })?;
        page_to_py(py, page)
    }

    #[pyo3(signature = (pk, /))]
    #[pyo3(name = "_count")]
    fn count(&self, py: Python<'_>, pk: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let pk = pk
            .filter(|p| !p.is_none())
            .map(|p| part(p, "partition key"))
            .transpose()?;
        let collection = self.collection.as_str();
        self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| table::count(r, collection, pk.as_ref())
                .map_err(to_py))
        })
    }

    /// Makes sure the table has an index on each list of fields (in this origin's write).
    #[pyo3(name = "_ensure_indexes", signature = (indexes, /))]
    fn ensure_indexes(&self, py: Python<'_>, indexes: Vec<Vec<String>>) -> PyResult<()> {
        let specs = indexes
            .iter()
            .map(|fields| table::index_spec(fields))
            .collect::<obj_core::Result<Vec<_>>>()
            .map_err(to_py)?;
        self.write(py, |txn, c| {
            for spec in &specs {
                table::ensure_index(txn, c, spec)?;
            }
            Ok(())
        })
    }

    /// The items whose values in index `index` meet `cond`: `(items, last_key)`, the key an
    /// opaque `bytes` cursor into the index.
    #[pyo3(name = "_query_index", signature = (index, cond, filter, reverse, limit, start_after, /))]
    #[allow(clippy::too_many_arguments)]
    fn query_index<'py>(
        &self,
        py: Python<'py>,
        index: &str,
        cond: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
        reverse: bool,
        limit: Option<usize>,
        start_after: Option<Vec<u8>>,
    ) -> PyResult<(Bound<'py, PyList>, Option<Bound<'py, PyBytes>>)> {
        let cond = cond
            .filter(|c| !c.is_none())
            .map(|c| sort_condition(c, index_operand))
            .transpose()?;
        let filter = condition(filter, "filter")?;
        let select = Select {
            filter: filter.as_ref(),
            reverse,
            limit,
            start_after: start_after.as_deref(),
        };
        let collection = self.collection.as_str();
        let page = self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| table::query_index(
                r,
                collection,
                index,
                cond.as_ref(),
                &select
            )
            .map_err(to_py))
        })?;
        let last = page.last_key.as_deref().map(|k| PyBytes::new(py, k));
        Ok((page_items(py, &page)?, last))
    }

    /// The items at `keys` (each `pk` or `(pk, sk)`), None where there is none, read on one
    /// snapshot.
    #[pyo3(signature = (keys, /))]
    #[pyo3(name = "_batch_get")]
    fn batch_get<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut encoded = Vec::new();
        for key in keys.try_iter()? {
            let (pk, sk) = key_arg(&key?, "a key of batch_get")?;
            encoded.push(table::encode_key(&pk, sk.as_ref()).map_err(to_py)?);
        }
        let collection = self.collection.as_str();
        let values = self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| encoded
                .iter()
                .map(|k| table::get(r, collection, k))
                .collect::<obj_core::Result<Vec<_>>>()
                .map_err(to_py))
        })?;
        let out = PyList::empty(py);
        for v in values {
            match v {
                Some(v) => out.append(codec::value_to_py(py, &v)?)?,
                None => out.append(py.None())?,
            }
        }
        Ok(out)
    }

    /// Puts (`(pk, item)` or `(pk, sk, item)`, each expiring after `ttl` when given) then
    /// deletes (`pk` or `(pk, sk)`), all in one transaction: every one is checked before
    /// anything is written.
    #[pyo3(signature = (puts, deletes, ttl, /))]
    #[pyo3(name = "_batch_write")]
    fn batch_write(
        &self,
        py: Python<'_>,
        puts: &Bound<'_, PyAny>,
        deletes: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let expires = expires_at(ttl)?;
        let mut put_ops = Vec::new();
        for (n, put) in puts.try_iter()?.enumerate() {
            let put = put?;
            let bad = || {
                InvalidArgumentError::new_err(format!(
                    "puts[{n}] must be a (pk, item) or (pk, sk, item) tuple, got {}",
                    datum::type_name(&put)
                ))
            };
            let t = put.cast::<PyTuple>().map_err(|_| bad())?;
            let (pk, sk, item) = match t.len() {
                2 => (t.get_item(0)?, None, t.get_item(1)?),
                3 => (t.get_item(0)?, Some(t.get_item(1)?), t.get_item(2)?),
                _ => return Err(bad()),
            };
            put_ops.push((
                part(&pk, "partition key")?,
                sort_key(sk.as_ref())?,
                item_payload(&item)?,
            ));
        }
        let mut delete_ops = Vec::new();
        for key in deletes.try_iter()? {
            delete_ops.push(key_arg(&key?, "a key of deletes")?);
        }
        self.write(py, |txn, c| {
            for (pk, sk, payload) in &put_ops {
                table::put(txn, c, pk, sk.as_ref(), payload, None, expires)?;
            }
            for (pk, sk) in &delete_ops {
                table::delete(txn, c, pk, sk.as_ref(), None)?;
            }
            Ok(())
        })
    }
}

impl TableHandle {
    /// The stored key of a `start_after` (a `(pk, sk)` tuple as pages give it, or a sort
    /// key alone for a query of partition `pk`).
    fn start_after(
        &self,
        after: Option<&Bound<'_, PyAny>>,
        pk: Option<&Datum>,
    ) -> PyResult<Option<Vec<u8>>> {
        let Some(after) = after.filter(|a| !a.is_none()) else {
            return Ok(None);
        };
        let (apk, ask) = match (after.cast::<PyTuple>(), pk) {
            (Ok(_), _) | (Err(_), None) => key_arg(after, "start_after")?,
            (Err(_), Some(pk)) => (pk.clone(), Some(part(after, "start_after")?)),
        };
        table::encode_key(&apk, ask.as_ref())
            .map(Some)
            .map_err(to_py)
    }
}

/// Sets the clock expiry checks read, in seconds since the Unix epoch (None: the system
/// time again). For tests: it is the whole process's clock.
#[pyfunction]
#[pyo3(signature = (seconds, /))]
pub(crate) fn _set_clock(seconds: Option<f64>) -> PyResult<()> {
    let micros = match seconds {
        None => None,
        Some(s) if s.is_finite() && s >= 0.0 => Some((s * 1e6) as u64),
        Some(s) => {
            return Err(InvalidArgumentError::new_err(format!(
                "the clock is seconds since the Unix epoch (0 or more), got {s}"
            )))
        }
    };
    obj_core::clock::set_for_tests(micros);
    Ok(())
}
