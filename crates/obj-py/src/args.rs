//! Conversion of Python arguments into engine arguments, and the dispatch by argument
//! type: a collection `str` with `bytes` (raw) or a `dict` (dict-native), or an
//! `@obj.document` class or instance (typed). Every failure is an `InvalidArgumentError`
//! (or `NotFoundError` for an unattached namespace) whose message names the argument.

use crate::codec::DocType;
use crate::datum::{self, type_name};
use crate::error::{InvalidArgumentError, NotFoundError};
use obj_core::DocKind;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyMemoryView, PyString, PyType};
use std::borrow::Cow;

/// A collection name: a `str`, any namespace prefix left in it. Emptiness and length are
/// checked by the engine.
///
/// A `.` separates an attached namespace from a collection (`"archive.orders"`). Reads
/// resolve the namespace against the database's attachments (`source::resolve`); every
/// other use of a name goes through [`collection`], which refuses a dotted one.
pub(crate) fn read_collection<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(InvalidArgumentError::new_err(format!(
            "collection must be a str, got {}",
            type_name(obj)
        )));
    };
    s.to_cow().map_err(|_| {
        InvalidArgumentError::new_err("collection must be valid UTF-8 (no lone surrogates)")
    })
}

/// A collection name of this database itself: a dotted name names a namespace that is
/// not attached here.
pub(crate) fn collection<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    let name = read_collection(obj)?;
    check_name(&name)?;
    Ok(name)
}

/// An index name: a `str`.
pub(crate) fn index_name(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(InvalidArgumentError::new_err(format!(
            "index must be the name of an index (a str), got {}",
            type_name(obj)
        ))),
    }
}

/// The error for a dotted collection name whose namespace is not attached.
pub(crate) fn unattached(name: &str, namespace: &str) -> PyErr {
    NotFoundError::new_err(format!(
        "collection {name:?} is in namespace {namespace:?}, which is not attached here: \
         attach it with db.attach(path, {namespace:?}) first (\".\" in a collection name is \
         reserved for attached namespaces)"
    ))
}

/// A document id: an int from 1 to 2**64 - 1 (anything with `__index__` counts, but not
/// a bool: `True` is not a document id).
pub(crate) fn doc_id(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(InvalidArgumentError::new_err(
            "id must be an int, got bool (True/False are not document ids)",
        ));
    }
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

/// The codec of an `@obj.document` class, or None for any other type — a subclass of a
/// document class included: it inherits the codec, but the codec would drop what the
/// subclass adds.
pub(crate) fn doctype_of_class<'py>(cls: &Bound<'py, PyType>) -> Option<Bound<'py, DocType>> {
    let attr = cls.getattr(intern!(cls.py(), "__obj_doctype__")).ok()?;
    let dt = attr.cast_into::<DocType>().ok()?;
    dt.get().is_owned_by(cls).then_some(dt)
}

/// Why `cls` is not a document class, for the messages below.
fn not_a_document(cls: &Bound<'_, PyType>) -> String {
    let name = cls.name().map(|n| n.to_string()).unwrap_or_default();
    let inherited = cls
        .getattr(intern!(cls.py(), "__obj_doctype__"))
        .ok()
        .and_then(|a| a.cast_into::<DocType>().ok());
    match inherited {
        Some(dt) => format!(
            "{name} is not an @obj.document class itself: it inherits from {}, whose codec \
             would not store what {name} adds; decorate {name} with @obj.document(collection=...)",
            dt.get().class_name(cls.py())
        ),
        None => format!(
            "{name} is not an @obj.document class; decorate it with \
             @obj.document(collection=...) or pass a collection name (str)"
        ),
    }
}

/// What the first argument of a read names: a collection, or a document class.
pub(crate) enum Target<'py> {
    /// Reads return what was written (bytes, dict, or a dict decoded by its stored schema).
    Name(String),
    /// Reads decode into instances of the class.
    Typed(Bound<'py, DocType>),
}

impl Target<'_> {
    pub(crate) fn collection(&self) -> &str {
        match self {
            Target::Name(n) => n,
            Target::Typed(dt) => dt.get().collection(),
        }
    }
}

/// A collection name (`str`) or an `@obj.document` class of this database itself (a
/// dotted name names a namespace that is not attached here).
pub(crate) fn target<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Target<'py>> {
    let target = read_target(obj)?;
    check_name(target.collection())?;
    Ok(target)
}

/// The target of a read: a collection name (`str`) or an `@obj.document` class, its
/// collection possibly in an attached namespace (resolved by `source::resolve`).
pub(crate) fn read_target<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Target<'py>> {
    if obj.is_instance_of::<PyString>() {
        return Ok(Target::Name(read_collection(obj)?.into_owned()));
    }
    if let Ok(cls) = obj.cast::<PyType>() {
        if let Some(dt) = doctype_of_class(cls) {
            return Ok(Target::Typed(dt));
        }
        return Err(InvalidArgumentError::new_err(not_a_document(cls)));
    }
    if doctype_of_class(&obj.get_type()).is_some() {
        return Err(InvalidArgumentError::new_err(format!(
            "pass the document class ({}), not one of its instances",
            type_name(obj)
        )));
    }
    Err(InvalidArgumentError::new_err(format!(
        "collection must be a str or an @obj.document class, got {}",
        type_name(obj)
    )))
}

/// The target of a write: like [`target`], but a name in an attached namespace (which is
/// read-only) is an `InvalidArgumentError` rather than an unknown namespace.
pub(crate) fn write_target<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Target<'py>> {
    if let Ok(s) = obj.cast::<PyString>() {
        if let Ok(name) = s.to_cow() {
            check_writable(&name)?;
        }
    } else if let Ok(cls) = obj.cast::<PyType>() {
        if let Some(dt) = doctype_of_class(cls) {
            check_writable(dt.get().collection())?;
        }
    }
    target(obj)
}

/// Refuses a write to a collection of an attached namespace (`"archive.orders"`).
pub(crate) fn check_writable(name: &str) -> PyResult<()> {
    if let Some((namespace, _)) = name.split_once('.') {
        return Err(InvalidArgumentError::new_err(format!(
            "collection {name:?} is in namespace {namespace:?}: attached databases are \
             read-only, so it cannot be written (\".\" in a collection name is reserved for \
             attached namespaces)"
        )));
    }
    Ok(())
}

/// The collection name of a write: a `str` outside the attached namespaces.
pub(crate) fn write_collection<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    if let Ok(s) = obj.cast::<PyString>() {
        if let Ok(name) = s.to_cow() {
            check_writable(&name)?;
        }
    }
    collection(obj)
}

/// Checks a collection name that did not come from a Python `str` argument.
pub(crate) fn check_name(name: &str) -> PyResult<()> {
    if let Some((namespace, _)) = name.split_once('.') {
        return Err(unattached(name, namespace));
    }
    Ok(())
}

/// The encoded bytes of a document about to be written.
pub(crate) enum Payload<'py> {
    /// The caller's own `bytes` object (no copy).
    Bytes(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Bytes(b) => b.as_bytes(),
            Payload::Owned(v) => v,
        }
    }
}

/// A document ready to be written: where, how it is encoded, and by which class.
pub(crate) struct NewDoc<'py> {
    pub(crate) collection: String,
    pub(crate) kind: DocKind,
    pub(crate) version: u32,
    pub(crate) payload: Payload<'py>,
    pub(crate) doctype: Option<Bound<'py, DocType>>,
}

/// Raw bytes or a dict-native document for a collection named by the caller.
fn by_name<'py>(collection: String, value: &Bound<'py, PyAny>) -> PyResult<NewDoc<'py>> {
    let (kind, payload) = if let Ok(b) = value.cast::<PyBytes>() {
        (DocKind::Raw, Payload::Bytes(b.clone()))
    } else if value.is_instance_of::<PyDict>() {
        (
            DocKind::Value,
            Payload::Owned(datum::encode(value, "document")?),
        )
    } else if value.is_instance_of::<PyByteArray>() || value.is_instance_of::<PyMemoryView>() {
        (
            DocKind::Raw,
            Payload::Owned(with_value(value, <[u8]>::to_vec)?),
        )
    } else if !value.is_instance_of::<PyString>() && PyMemoryView::from(value).is_ok() {
        // Any other object with the buffer protocol (array.array, mmap, ...).
        (
            DocKind::Raw,
            Payload::Owned(with_value(value, <[u8]>::to_vec)?),
        )
    } else if value.is_instance_of::<PyString>() {
        return Err(InvalidArgumentError::new_err(
            "value must be bytes or a dict, got str (encode it first, for example with \
             value.encode())",
        ));
    } else if doctype_of_class(&value.get_type()).is_some() {
        return Err(InvalidArgumentError::new_err(format!(
            "a {} document is written without a collection name: insert(doc) or \
             upsert({}, id, doc)",
            type_name(value),
            type_name(value)
        )));
    } else {
        return Err(InvalidArgumentError::new_err(format!(
            "value must be bytes (raw) or a dict (dict-native document), got {}",
            type_name(value)
        )));
    };
    Ok(NewDoc {
        collection,
        kind,
        version: 0,
        payload,
        doctype: None,
    })
}

/// A typed document of `dt`'s class, encoded.
pub(crate) fn typed<'py>(
    dt: Bound<'py, DocType>,
    doc: &Bound<'py, PyAny>,
) -> PyResult<NewDoc<'py>> {
    let codec = dt.get();
    check_writable(codec.collection())?;
    Ok(NewDoc {
        collection: codec.collection().to_owned(),
        kind: DocKind::Typed,
        version: codec.version(),
        payload: Payload::Owned(codec.encode_doc(doc)?),
        doctype: Some(dt),
    })
}

/// An optional positional argument that tells "not given" from an explicit None.
pub(crate) enum Given<'py> {
    Missing,
    Value(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Given<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Given::Value(obj.to_owned()))
    }
}

/// The arguments of `insert`: `(doc)` for a typed document, `(collection, value)` otherwise.
pub(crate) fn insert_args<'py>(
    first: &Bound<'py, PyAny>,
    value: Given<'py>,
) -> PyResult<NewDoc<'py>> {
    let value = match value {
        Given::Missing => None,
        Given::Value(v) => Some(v),
    };
    if first.is_instance_of::<PyString>() {
        let name = write_collection(first)?.into_owned();
        let Some(value) = value else {
            return Err(PyTypeError::new_err(format!(
                "insert({name:?}, value) is missing its value (bytes or a dict)"
            )));
        };
        return by_name(name, &value);
    }
    if let Some(dt) = doctype_of_class(&first.get_type()) {
        if value.is_some() {
            return Err(InvalidArgumentError::new_err(format!(
                "insert(doc) takes one {} document and nothing else",
                type_name(first)
            )));
        }
        return typed(dt, first);
    }
    if let Ok(cls) = first.cast::<PyType>() {
        if doctype_of_class(cls).is_some() {
            return Err(InvalidArgumentError::new_err(format!(
                "insert() takes a document instance, got the class {}; \
                 pass an instance such as {}(...)",
                cls.name()?,
                cls.name()?
            )));
        }
    }
    let cls = first.get_type();
    if cls.hasattr(intern!(first.py(), "__obj_doctype__"))? {
        return Err(InvalidArgumentError::new_err(not_a_document(&cls)));
    }
    Err(InvalidArgumentError::new_err(format!(
        "collection must be a str, or the document an @obj.document instance; got {} \
         (decorate its class with @obj.document(collection=...), or pass a collection name \
         and bytes or a dict)",
        type_name(first)
    )))
}

/// The arguments of `upsert(target, id, value)` once the target is known.
pub(crate) fn upsert_args<'py>(
    target: Target<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<NewDoc<'py>> {
    match target {
        Target::Name(name) => by_name(name, value),
        Target::Typed(dt) => typed(dt, value),
    }
}

/// An encryption key: 32 `bytes` used as the key, or a `str` passphrase (stretched with
/// Argon2id and the file's salt).
pub(crate) fn encryption_key(obj: &Bound<'_, PyAny>) -> PyResult<obj_core::EncryptionKey> {
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        if s.is_empty() {
            return Err(InvalidArgumentError::new_err(
                "encryption_key passphrase must not be empty",
            ));
        }
        return Ok(obj_core::EncryptionKey::Passphrase(s.into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        let raw: [u8; 32] = b.as_bytes().try_into().map_err(|_| {
            InvalidArgumentError::new_err(format!(
                "encryption_key bytes must be exactly 32 bytes long (got {}); pass a str to use a passphrase",
                b.as_bytes().len()
            ))
        })?;
        return Ok(obj_core::EncryptionKey::Raw(raw));
    }
    Err(InvalidArgumentError::new_err(format!(
        "encryption_key must be 32 bytes or a str passphrase, got {}",
        type_name(obj)
    )))
}
