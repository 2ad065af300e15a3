//! The Python exception classes and the one mapping from engine errors to them.
//!
//! The classes are created here, once, and re-exported by `obj` (`python/obj/errors.py`), so
//! `obj.ObjError` and `obj._obj.ObjError` are the same object.

use obj_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException, PyOSError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use std::path::Path;

create_exception!(
    obj,
    ObjError,
    PyException,
    "Base class of every error raised by obj."
);
create_exception!(
    obj,
    NotFoundError,
    ObjError,
    "A database file, namespace, collection or index that must exist does not."
);
create_exception!(
    obj,
    BusyError,
    ObjError,
    "Another writer (thread or process) held the lock for longer than busy_timeout."
);
create_exception!(
    obj,
    CorruptionError,
    ObjError,
    "The database or its write-ahead log is damaged."
);
create_exception!(
    obj,
    IntegrityError,
    ObjError,
    "An integrity check found at least one problem."
);
create_exception!(
    obj,
    InvalidArgumentError,
    ObjError,
    "The caller passed an argument of the wrong type or value."
);
create_exception!(
    obj,
    EncryptionError,
    ObjError,
    "An encryption key is missing, wrong or does not match the file."
);
create_exception!(
    obj,
    FeatureUnsupportedError,
    ObjError,
    "The file needs a feature this build of obj does not have."
);

const OBJ_IO_ERROR_DOC: &str =
    "An operating-system I/O error (a full disk, a file the process may not \
write, ...): both an ObjError and an OSError, with ``errno`` and, where known, ``filename``.";

/// `ObjIOError(ObjError, OSError)`. PyO3 exceptions have a single base, so this one is made
/// by calling `type`; its `str()` is the engine's message (OSError's would rebuild one from
/// `errno`, `strerror` and `filename`).
static OBJ_IO_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn obj_io_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let cls = OBJ_IO_ERROR.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let bases = PyTuple::new(py, [py.get_type::<ObjError>(), py.get_type::<PyOSError>()])?;
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "obj")?;
        namespace.set_item("__doc__", OBJ_IO_ERROR_DOC)?;
        namespace.set_item(
            "__str__",
            py.get_type::<PyBaseException>().getattr("__str__")?,
        )?;
        let cls = py
            .get_type::<PyType>()
            .call1(("ObjIOError", bases, namespace))?;
        Ok(cls.cast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py))
}

/// An `ObjIOError` saying `msg`, with `errno`, `strerror` and `filename` set when known.
fn io_error(msg: String, errno: Option<i32>, path: Option<&Path>) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let e = obj_io_error(py)?.call1((&msg,))?;
            if let Some(n) = errno {
                e.setattr("errno", n)?;
                e.setattr("strerror", py.import("os")?.call_method1("strerror", (n,))?)?;
            }
            if let Some(p) = path {
                e.setattr("filename", p.as_os_str())?;
            }
            Ok(PyErr::from_value(e))
        };
        build().unwrap_or_else(|_| ObjError::new_err(msg.clone()))
    })
}

/// The Python exception for an engine error: each variant maps to exactly one class.
pub(crate) fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::Corruption(_) => CorruptionError::new_err(msg),
        Error::Busy(_) => BusyError::new_err(msg),
        Error::NotFound(_) => NotFoundError::new_err(msg),
        Error::InvalidArgument(_) => InvalidArgumentError::new_err(msg),
        Error::Integrity(_) => IntegrityError::new_err(msg),
        Error::FeatureUnsupported(_) => FeatureUnsupportedError::new_err(msg),
        Error::Encryption(_) => EncryptionError::new_err(msg),
        Error::Io(_) => io_error(msg, err.os_error(), err.io_path()),
        Error::ReadOnly(_) | Error::Closed(_) => ObjError::new_err(msg),
        _ => ObjError::new_err(msg),
    }
}

/// Adds the exception classes to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ObjError", py.get_type::<ObjError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    m.add("CorruptionError", py.get_type::<CorruptionError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("EncryptionError", py.get_type::<EncryptionError>())?;
    m.add(
        "FeatureUnsupportedError",
        py.get_type::<FeatureUnsupportedError>(),
    )?;
    m.add("ObjIOError", obj_io_error(py)?)?;
    Ok(())
}
