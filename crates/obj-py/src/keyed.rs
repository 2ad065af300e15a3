//! Keyed collections, for `obj.Store`: a read by key, the lazy key-order iterator
//! `obj._obj.KeyIterator`, and batches of writes by key.
//!
//! Values are converted the way the store asks ([`ValueMode`]): any dict-native value
//! (the Value codec), raw bytes, or a typed document of the target's class. Reads return
//! what was stored, by the same rules as every read (`stored.rs`).

use crate::args::{self, NewDoc, Payload, Target};
use crate::datum;
use crate::error::{to_py, InvalidArgumentError};
use crate::shared::{prepare, Checks, Local, Shared};
use crate::source::{on_snap, Source};
use crate::stored::{At, Decode, Ready};
use obj_core::{CollectionKind, DocKind, Reader, WriteTxn};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use std::collections::VecDeque;
use std::ops::Bound as Edge;

const FIRST_BATCH: usize = 16;
const MAX_BATCH: usize = 1024;

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
    Ok(r.kind(collection).map_err(to_py)?.map(|k| match k {
        CollectionKind::Keyed => "keyed",
        _ => "id",
    }))
}

/// The document under `key`, checked and ready to build.
pub(crate) fn get<R: Reader>(
    py: Python<'_>,
    r: &R,
    checks: &mut Checks<'_>,
    collection: &str,
    decode: &Decode,
    key: &[u8],
) -> PyResult<Option<Ready>> {
    match r.get_key(collection, key).map_err(to_py)? {
        Some(value) => Ok(Some(decode.ready(
            py,
            r,
            checks,
            collection,
            At::Key(key),
            value,
        )?)),
        None => Ok(None),
    }
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

fn as_ref(e: &Edge<Vec<u8>>) -> Edge<&[u8]> {
    match e {
        Edge::Included(k) => Edge::Included(k.as_slice()),
        Edge::Excluded(k) => Edge::Excluded(k.as_slice()),
        Edge::Unbounded => Edge::Unbounded,
    }
}

/// The lazy `key` or `(key, value)` iterator of a key range, in key order or in reverse,
/// over the source it was opened on (a snapshot of its own from a `Db`).
#[pyclass(module = "obj._obj", name = "KeyIterator")]
pub struct KeyIterator {
    /// None once exhausted.
    source: Option<Source>,
    collection: String,
    /// None: keys only.
    decode: Option<Decode>,
    lo: Edge<Vec<u8>>,
    hi: Edge<Vec<u8>>,
    reverse: bool,
    batch: VecDeque<(Vec<u8>, Ready)>,
    limit: usize,
    more: bool,
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
            source: Some(source),
            collection,
            decode,
            lo,
            hi,
            reverse,
            batch: VecDeque::new(),
            limit: FIRST_BATCH,
            more: true,
        }
    }

    /// Loads the next batch; false when the range has no more keys.
    fn refill(&mut self, py: Python<'_>) -> PyResult<bool> {
        let (true, Some(source)) = (self.more, &self.source) else {
            return Ok(false);
        };
        let (name, limit) = (self.collection.as_str(), self.limit);
        let (lo, hi, reverse, decode) = (
            as_ref(&self.lo),
            as_ref(&self.hi),
            self.reverse,
            &self.decode,
        );
        let ready = source.with(py, |snap, checks| {
            on_snap!(snap, |r| {
                let docs = py
                    .detach(|| r.scan_keys(name, lo, hi, reverse, limit))
                    .map_err(to_py)?;
                let mut ready = VecDeque::with_capacity(docs.len());
                for (key, value) in docs {
                    let item = match decode {
                        Some(d) => d.ready(py, r, checks, name, At::Key(&key), value)?,
                        None => Ready::Nothing,
                    };
                    ready.push_back((key, item));
                }
                Ok(ready)
            })
        })?;
        self.more = ready.len() == limit;
        if let Some((last, _)) = ready.back() {
            // Resume past the last key, the way the walk goes.
            if reverse {
                self.hi = Edge::Excluded(last.clone());
            } else {
                self.lo = Edge::Excluded(last.clone());
            }
        }
        if ready.is_empty() {
            return Ok(false);
        }
        self.limit = (limit * 4).min(MAX_BATCH);
        self.batch = ready;
        Ok(true)
    }
}

#[pymethods]
impl KeyIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        source.check_active(py)?;
        if self.batch.is_empty() && !self.refill(py)? {
            self.source = None;
            return Ok(None);
        }
        let Some((key, ready)) = self.batch.pop_front() else {
            self.source = None;
            return Ok(None);
        };
        let key = PyBytes::new(py, &key).into_any();
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

/// The converted batch of `(key, value)` pairs (`value is tombstone` deletes the key).
pub(crate) fn ops<'py>(
    target: &Target<'py>,
    pairs: &Bound<'py, PyAny>,
    mode: ValueMode,
    tombstone: &Bound<'py, PyAny>,
) -> PyResult<Vec<KeyOp<'py>>> {
    let mut out = Vec::new();
    for pair in pairs.try_iter()? {
        let pair = pair?;
        let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair.extract()?;
        let key = key_bytes(&key)?;
        let doc = if value.is(tombstone) {
            None
        } else {
            Some(new_doc(target, &value, mode)?)
        };
        out.push(KeyOp { key, doc });
    }
    Ok(out)
}

fn new_doc<'py>(
    target: &Target<'py>,
    value: &Bound<'py, PyAny>,
    mode: ValueMode,
) -> PyResult<NewDoc<'py>> {
    let collection = target.collection().to_owned();
    match (target, mode) {
        (_, ValueMode::Raw) => Ok(NewDoc {
            collection,
            kind: DocKind::Raw,
            version: 0,
            payload: Payload::Owned(args::with_value(value, <[u8]>::to_vec)?),
            doctype: None,
        }),
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
            payload: Payload::Owned(datum::to_datum(value, "value")?.to_bytes()),
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
