//! Conversion of Python arguments into engine arguments. Every failure is an
//! `InvalidArgumentError` (or `NotFoundError` for an unattached namespace) whose message
//! names the argument.

use crate::error::{InvalidArgumentError, NotFoundError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyMemoryView, PyString};
use std::borrow::Cow;

/// The name of an object's type, for error messages.
fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A collection name: a `str`. Emptiness and length are checked by the engine.
///
/// A `.` separates an attached namespace from a collection (`"archive.orders"`). No
/// namespace can be attached yet, so every dotted name is an unknown namespace.
pub(crate) fn collection<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(InvalidArgumentError::new_err(format!(
            "collection must be a str, got {}",
            type_name(obj)
        )));
    };
    let name = s.to_cow().map_err(|_| {
        InvalidArgumentError::new_err("collection must be valid UTF-8 (no lone surrogates)")
    })?;
    if let Some((namespace, _)) = name.split_once('.') {
        return Err(NotFoundError::new_err(format!(
            "collection {name:?} refers to namespace {namespace:?}, which is not attached \
             (\".\" in a collection name is reserved for attached namespaces)"
        )));
    }
    Ok(name)
}

/// A document id: an int from 1 to 2**64 - 1 (anything with `__index__` counts).
pub(crate) fn doc_id(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    match obj.extract::<u64>() {
        Ok(id) if id >= 1 => Ok(id),
        _ if obj.is_instance_of::<PyInt>() || obj.hasattr(intern!(obj.py(), "__index__"))? => {
            let shown = obj
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| "?".into());
            Err(InvalidArgumentError::new_err(format!(
                "id must be from 1 to 2**64 - 1, got {shown}"
            )))
        }
        _ => Err(InvalidArgumentError::new_err(format!(
            "id must be an int, got {}",
            type_name(obj)
        ))),
    }
}

/// Runs `f` over the bytes of a document value. `bytes` is passed without a copy; a
/// `bytearray`, `memoryview` or other buffer is copied once (it may change while the engine
/// works on it).
pub(crate) fn with_value<R>(value: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(f(&b.to_vec()));
    }
    if value.is_instance_of::<PyString>() {
        return Err(InvalidArgumentError::new_err(
            "value must be bytes, bytearray or memoryview, got str (encode it first, \
             for example with value.encode())",
        ));
    }
    // Any other object with the buffer protocol; the limited API of 3.9 has no direct
    // buffer access, so go through memoryview.tobytes().
    let Ok(view) = PyMemoryView::from(value) else {
        return Err(InvalidArgumentError::new_err(format!(
            "value must be bytes, bytearray or memoryview, got {}",
            type_name(value)
        )));
    };
    let copy = view.call_method0(intern!(value.py(), "tobytes"))?;
    let copy = copy.cast::<PyBytes>()?;
    Ok(f(copy.as_bytes()))
}
