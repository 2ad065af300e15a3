//! Keyed collections, for `obj.Store`: a read by key, the lazy key-order iterator
//! `obj._obj.KeyIterator`, and batches of writes by key.
//!
//! Values are converted the way the store asks ([`ValueMode`]): any dict-native value
//! (the Value codec), raw bytes, or a typed document of the target's class. Reads return
//! what was stored, by the same rules as every read (`stored.rs`).

use crate::args::{self, NewDoc, Payload, Target};
use crate::at::At;
use crate::batch::{Batches, Fetched};
use crate::codec::DocType;
use crate::datum;
use crate::error::ObjError;
use crate::error::{to_py, InvalidArgumentError};
use crate::reads;
use crate::shared::{prepare, Local, Shared};
use crate::source::{on_snap, Origin, Place, Source};
use crate::stored::{Decode, Ready};
use obj_core::{CollectionKind, DocKind, Reader, WriteTxn, MAX_KEY_LEN};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString, PyTuple, PyType};
use std::collections::VecDeque;
use std::ops::Bound as Edge;

/// A key as the caller passed it: `bytes` (the store encodes `str` keys itself).
pub(crate) fn key_bytes(key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let bytes = key.cast::<PyBytes>().map_err(|_| {
        InvalidArgumentError::new_err(format!(
            "key must be bytes here, got {}",
            key.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    Ok(bytes.as_bytes().to_vec())
}

/// The kind of collection `collection` is in reader `r`: "keyed", "id", or None.
pub(crate) fn kind_name<R: Reader>(r: &R, collection: &str) -> PyResult<Option<&'static str>> {
    Ok(r.kind(collection).map_err(to_py)?.map(CollectionKind::name))
}

/// One end of a key range from Python: the key (None = open) and whether it is included.
pub(crate) fn edge(key: Option<&Bound<'_, PyAny>>, inclusive: bool) -> PyResult<Edge<Vec<u8>>> {
    Ok(match key {
        None => Edge::Unbounded,
        Some(k) if k.is_none() => Edge::Unbounded,
        Some(k) if inclusive => Edge::Included(key_bytes(k)?),
        Some(k) => Edge::Excluded(key_bytes(k)?),
    })
}

/// The lazy `key` or `(key, value)` iterator of a key range, in key order or in reverse,
/// over the source it was opened on (a snapshot of its own from a `Db`), fetched in batches
/// (`batch.rs`).
#[pyclass(module = "obj._obj", name = "KeyIterator")]
pub struct KeyIterator {
    batches: Batches<Vec<u8>>,
    collection: String,
    /// None: keys only.
    decode: Option<Decode>,
    lo: Edge<Vec<u8>>,
    hi: Edge<Vec<u8>>,
    reverse: bool,
    /// Keys come out as `str`, decoded with this error handler (None: as `bytes`).
    key_errors: Option<String>,
}

impl KeyIterator {
    pub(crate) fn new(
        source: Source,
        collection: String,
        decode: Option<Decode>,
        (lo, hi): (Edge<Vec<u8>>, Edge<Vec<u8>>),
        reverse: bool,
    ) -> Self {
        KeyIterator {
            batches: Batches::new(source),
            collection,
            decode,
            lo,
            hi,
            reverse,
            key_errors: None,
        }
    }
}

#[pymethods]
impl KeyIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (name, reverse, decode) = (self.collection.as_str(), self.reverse, &self.decode);
        let (lo, hi) = (&mut self.lo, &mut self.hi);
        let next = self.batches.next(py, |source, limit| {
            let fetched = source.with(py, |snap, checks| {
                on_snap!(snap, |r| {
                    let docs = py
                        .detach(|| {
                            r.scan_keys(
                                name,
                                lo.as_ref().map(Vec::as_slice),
                                hi.as_ref().map(Vec::as_slice),
                                reverse,
                                limit,
                            )
                        })
                        .map_err(to_py)?;
                    let bytes = docs.iter().map(|(k, v)| k.len() + v.len()).sum();
                    let mut items = VecDeque::with_capacity(docs.len());
                    for (key, value) in docs {
                        let item = match decode {
                            Some(d) => d.ready(py, r, checks, name, At::Key(&key), value)?,
                            None => Ready::Nothing,
                        };
                        items.push_back((key, item));
                    }
                    Ok(Fetched { items, bytes })
                })
            })?;
            if let Some((last, _)) = fetched.items.back() {
                // Resume past the last key, the way the walk goes.
                let past = Edge::Excluded(last.clone());
                if reverse {
                    *hi = past;
                } else {
                    *lo = past;
                }
            }
            Ok(fetched)
        })?;
        let Some((key, ready)) = next else {
            return Ok(None);
        };
        let key = match &self.key_errors {
            None => PyBytes::new(py, &key).into_any(),
            Some(errors) => match std::str::from_utf8(&key) {
                Ok(s) => PyString::new(py, s).into_any(),
                Err(_) => {
                    PyBytes::new(py, &key).call_method1("decode", ("utf-8", errors.as_str()))?
                }
            },
        };
        match &self.decode {
            None => Ok(Some(key)),
            Some(d) => Ok(Some(
                PyTuple::new(py, [key, d.build(py, ready)?])?.into_any(),
            )),
        }
    }
}

/// How a store's values are encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueMode {
    /// Any dict-native value (the Value codec), or typed documents for a class target.
    Native,
    /// Raw bytes, stored untouched.
    Raw,
}

impl ValueMode {
    pub(crate) fn of(raw: bool) -> Self {
        if raw {
            ValueMode::Raw
        } else {
            ValueMode::Native
        }
    }
}

/// One write of a batch: put a document under the key, or (None) delete the key.
pub(crate) struct KeyOp<'py> {
    key: Vec<u8>,
    doc: Option<NewDoc<'py>>,
}

fn new_doc<'py>(
    target: &Target<'py>,
    value: &Bound<'py, PyAny>,
    mode: ValueMode,
) -> PyResult<NewDoc<'py>> {
    let collection = target.collection().to_owned();
    match (target, mode) {
        (_, ValueMode::Raw) => {
            let bytes = args::with_value(value, <[u8]>::to_vec).map_err(|_| {
                InvalidArgumentError::new_err(format!(
                    "this store holds raw bytes (values=bytes); got a {} value",
                    value
                        .get_type()
                        .name()
                        .map_or_else(|_| "?".into(), |n| n.to_string())
                ))
            })?;
            Ok(NewDoc {
                collection,
                kind: DocKind::Raw,
                version: 0,
                payload: Payload::Owned(bytes),
                doctype: None,
            })
        }
        (Target::Typed(dt), ValueMode::Native) => {
            if !dt.get().is_instance(value)? {
                return Err(InvalidArgumentError::new_err(format!(
                    "this store holds {} documents; got a {} value",
                    dt.get().class_name(value.py()),
                    value.get_type().name()?
                )));
            }
            args::typed(dt.clone(), value)
        }
        (Target::Name(_), ValueMode::Native) => Ok(NewDoc {
            collection,
            kind: DocKind::Value,
            version: 0,
            payload: Payload::Owned(datum::encode(value, "value")?),
            doctype: None,
        }),
    }
}

/// Applies a batch inside `txn`: creates the keyed collection if needed, prepares a typed
/// target's class (schema, declared indexes), then puts and deletes in order.
pub(crate) fn apply(
    py: Python<'_>,
    txn: &mut WriteTxn,
    local: &mut Local,
    shared: &Shared,
    target: &Target<'_>,
    ops: &[KeyOp<'_>],
) -> PyResult<()> {
    let collection = target.collection();
    txn.create_collection(collection, CollectionKind::Keyed)
        .map_err(to_py)?;
    if let Target::Typed(dt) = target {
        prepare(py, txn, local, shared, dt.get())?;
    }
    for op in ops {
        match &op.doc {
            Some(doc) => {
                txn.put_key_doc(
                    collection,
                    &op.key,
                    doc.kind,
                    doc.version,
                    doc.payload.as_slice(),
                )
                .map_err(to_py)?;
            }
            None => {
                txn.delete_key(collection, &op.key).map_err(to_py)?;
            }
        }
    }
    Ok(())
}

/// A store's binding to one keyed collection of one origin (a `Db` or a transaction):
/// keys checked and encoded, values converted and written, reads and iteration, all
/// without resolving the target or parsing options again on each call.
#[pyclass(frozen, module = "obj._obj", name = "KeyedHandle")]
pub struct KeyedHandle {
    origin: Origin,
    place: Place,
    collection: String,
    typed: Option<Py<DocType>>,
    mode: ValueMode,
    /// The exception class for a key of the wrong type (`obj.KeyTypeError`).
    key_type_error: Py<PyType>,
    /// The codec error handler for decoding keys to `str` (iteration with `keys="str"`).
    key_errors: String,
}

impl KeyedHandle {
    pub(crate) fn open(
        origin: &Origin,
        target: Target<'_>,
        raw: bool,
        key_type_error: Py<PyType>,
        key_errors: String,
    ) -> PyResult<Self> {
        let (place, target) = origin.resolve(target)?;
        let (collection, typed) = match target {
            Target::Name(name) => (name, None),
            Target::Typed(dt) => (dt.get().collection().to_owned(), Some(dt.unbind())),
        };
        Ok(KeyedHandle {
            origin: origin.clone(),
            place,
            collection,
            typed,
            mode: ValueMode::of(raw),
            key_type_error,
            key_errors,
        })
    }

    fn target<'py>(&self, py: Python<'py>) -> Target<'py> {
        match &self.typed {
            Some(dt) => Target::Typed(dt.bind(py).clone()),
            None => Target::Name(self.collection.clone()),
        }
    }

    fn decode(&self, py: Python<'_>) -> Decode {
        match &self.typed {
            Some(dt) => Decode::Typed(dt.clone_ref(py)),
            None => Decode::ByName,
        }
    }

    /// The stored bytes of a key: the one place a key's type and length are checked.
    fn encode_key(&self, key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        let py = key.py();
        let bytes = if let Ok(s) = key.cast::<PyString>() {
            match s.to_cow() {
                Ok(s) => s.as_bytes().to_vec(),
                Err(_) => {
                    return Err(InvalidArgumentError::new_err(format!(
                        "key {} cannot be encoded as UTF-8 (it holds a lone surrogate); pass \
                         key_errors='surrogateescape' to keep such keys",
                        key.repr()?
                    )))
                }
            }
        } else if let Ok(b) = key.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if key.is_instance_of::<PyByteArray>() || key.is_instance_of::<PyMemoryView>() {
            args::with_value(key, <[u8]>::to_vec)?
        } else {
            return Err(PyErr::from_type(
                self.key_type_error.bind(py).clone(),
                format!(
                    "store keys are str or bytes-like (bytes, bytearray, memoryview); got {} {}",
                    key.get_type().name()?,
                    key.repr()?
                ),
            ));
        };
        if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
            return Err(InvalidArgumentError::new_err(format!(
                "key must be 1 to {MAX_KEY_LEN} bytes long; {} is {} bytes",
                key.repr()?,
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Why a store of a read transaction refuses every write.
    fn read_only(&self) -> PyErr {
        ObjError::new_err(format!(
            "store {:?} belongs to a read transaction, which cannot write; write through \
             db.store(...) or tx.store(...) in db.transaction()",
            self.collection
        ))
    }

    fn write(&self, py: Python<'_>, ops: &[KeyOp<'_>]) -> PyResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let target = self.target(py);
        match &self.origin {
            Origin::Db(shared) => {
                args::check_writable(&self.collection)?;
                let shared = &**shared;
                shared.write_with(py, |txn, local| apply(py, txn, local, shared, &target, ops))
            }
            Origin::Write(state) => {
                args::check_writable(&self.collection)?;
                let shared = &*state.shared;
                state.with(py, |live| {
                    apply(py, &mut live.txn, &mut live.local, shared, &target, ops)
                })
            }
            Origin::Read(_) => Err(self.read_only()),
        }
    }

    fn op<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        value: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<KeyOp<'py>> {
        let key = self.encode_key(key)?;
        let doc = match value {
            Some(v) => Some(new_doc(&self.target(py), v, self.mode)?),
            None => None,
        };
        Ok(KeyOp { key, doc })
    }
}

#[pymethods]
impl KeyedHandle {
    /// The stored bytes of `key` (checked: str or bytes-like, 1 to MAX_KEY_LEN bytes).
    fn key<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.encode_key(key)?))
    }

    /// The smallest key above every key that starts with `prefix` (None: no such key), the
    /// exclusive upper bound of a prefix scan (the engine's rule, `keys::prefix_successor`).
    #[staticmethod]
    fn prefix_end<'py>(py: Python<'py>, prefix: &[u8]) -> Option<Bound<'py, PyBytes>> {
        obj_core::codec::prefix_successor(prefix).map(|end| PyBytes::new(py, &end))
    }

    /// Refuses `value` now if `set` would (a buffered write is checked when it is buffered,
    /// by the same conversion).
    fn check(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        new_doc(&self.target(py), value, self.mode).map(drop)
    }

    /// Stores `value` under `key` (one transaction on a `Db`, in the transaction otherwise).
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let op = self.op(py, key, Some(value))?;
        self.write(py, std::slice::from_ref(&op))
    }

    /// Deletes `key`; True if it was there.
    fn delete(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = self.encode_key(key)?;
        let collection = self.collection.as_str();
        match &self.origin {
            Origin::Db(shared) => {
                shared.write_alone(py, None, |txn| txn.delete_key(collection, &key))
            }
            Origin::Write(state) => state.with(py, |live| {
                live.txn.delete_key(collection, &key).map_err(to_py)
            }),
            Origin::Read(_) => Err(self.read_only()),
        }
    }

    /// `(key, value)` pairs (`value is tombstone` deletes) in one transaction.
    fn write_many(
        &self,
        py: Python<'_>,
        pairs: &Bound<'_, PyAny>,
        tombstone: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut ops = Vec::new();
        for (n, pair) in pairs.try_iter()?.enumerate() {
            let pair = pair?;
            // Any two-item iterable is a pair, as for dict.update.
            let (key, value) = match pair.cast::<PyTuple>() {
                Ok(t) if t.len() == 2 => (t.get_item(0)?, t.get_item(1)?),
                _ => {
                    let items = pair
                        .try_iter()
                        .and_then(|it| it.collect::<PyResult<Vec<_>>>())
                        .ok();
                    let Some([key, value]) = items.and_then(|v| <[_; 2]>::try_from(v).ok()) else {
                        return Err(InvalidArgumentError::new_err(format!(
                            "item {n} is not a (key, value) pair: {}",
                            pair.repr()?
                        )));
                    };
                    (key, value)
                }
            };
            let value = (!value.is(tombstone)).then_some(&value);
            ops.push(self.op(py, &key, value)?);
        }
        self.write(py, &ops)
    }

    /// The value under `key`, or `default`.
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self.encode_key(key)?;
        let decode = self.decode(py);
        let collection = self.collection.as_str();
        let ready = self.origin.with(py, &self.place, |snap, checks| {
            on_snap!(snap, |r| reads::get(
                py,
                r,
                checks,
                collection,
                &decode,
                At::Key(&key)
            ))
        })?;
        match ready {
            Some(r) => decode.build(py, r),
            None => Ok(default),
        }
    }

    /// Documents in the collection (the engine's maintained count).
    fn count(&self, py: Python<'_>) -> PyResult<u64> {
        let collection = self.collection.as_str();
        self.origin.with(py, &self.place, |snap, _| {
            on_snap!(snap, |r| r.count(collection).map_err(to_py))
        })
    }

    /// Lazy keys (or `(key, value)` pairs) between `lo` and `hi` (stored bytes, None =
    /// open), in key order or reverse, over one snapshot; keys come as `str` (decoded with
    /// the store's error handler) when `str_keys`, else as `bytes`.
    #[pyo3(signature = (lo, lo_inclusive, hi, hi_inclusive, reverse, values, str_keys))]
    #[allow(clippy::too_many_arguments)]
    fn iter(
        &self,
        py: Python<'_>,
        lo: Option<&Bound<'_, PyAny>>,
        lo_inclusive: bool,
        hi: Option<&Bound<'_, PyAny>>,
        hi_inclusive: bool,
        reverse: bool,
        values: bool,
        str_keys: bool,
    ) -> PyResult<KeyIterator> {
        let range = (edge(lo, lo_inclusive)?, edge(hi, hi_inclusive)?);
        let source = self.origin.source(py, &self.place)?;
        let decode = values.then(|| self.decode(py));
        let mut it = KeyIterator::new(source, self.collection.clone(), decode, range, reverse);
        if str_keys {
            it.key_errors = Some(self.key_errors.clone());
        }
        Ok(it)
    }
}
