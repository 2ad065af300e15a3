//! The Python exception classes and the one mapping from engine errors to them.
//!
//! The classes are created here, once, and re-exported by `obj` (`python/obj/errors.py`), so
//! `obj.ObjError` and `obj._obj.ObjError` are the same object.

use obj_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyBaseException, PyException, PyFileExistsError, PyFileNotFoundError, PyOSError, PyValueError,
};
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
    ConditionFailedError,
    ObjError,
    "A conditional write found its condition false for the stored item; nothing was written."
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

create_exception!(
    obj,
    ChangesExpiredError,
    ObjError,
    "A change-log read asked for records retention already dropped; ``oldest`` is the seq \
of the oldest record kept (resync from a backup or a full export, then follow from there)."
);

const OBJ_IO_ERROR_DOC: &str =
    "An operating-system I/O error (a full disk, a file the process may not \
write, ...): both an ObjError and an OSError, with ``errno`` and, where known, ``filename``.";

/// `ObjIOError(ObjError, OSError)`, `DatabaseExistsError(InvalidArgumentError,
/// FileExistsError)`, `DatabaseNotFoundError(NotFoundError, FileNotFoundError)`: PyO3
/// exceptions have a single base, so these are made by calling `type`; their `str()` is the
/// engine's message (OSError's would rebuild one from `errno`, `strerror` and `filename`).
static OBJ_IO_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATABASE_EXISTS_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATABASE_NOT_FOUND_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_VALUE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const INVALID_VALUE_DOC: &str = "A value that cannot be stored (a complex number, an object of \
a class obj does not know, a dict with non-str keys, ...), named by its path in the value: \
both an InvalidArgumentError and a ValueError.";

const DATABASE_EXISTS_DOC: &str = "``Db.create`` found a file at the path: both an \
InvalidArgumentError and a FileExistsError.";
const DATABASE_NOT_FOUND_DOC: &str = "Opening found no database file at the path (``Db.open``, \
or ``read_only=True``): both a NotFoundError and a FileNotFoundError.";

/// The class `name(base, builtin_base)`, made once per interpreter.
fn os_flavoured<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    bases: [Bound<'py, PyType>; 2],
    doc: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    let cls = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let bases = PyTuple::new(py, bases)?;
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "obj")?;
        namespace.set_item("__doc__", doc)?;
        namespace.set_item(
            "__str__",
            py.get_type::<PyBaseException>().getattr("__str__")?,
        )?;
        let cls = py.get_type::<PyType>().call1((name, bases, namespace))?;
        Ok(cls.cast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py))
}

fn obj_io_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let bases = [py.get_type::<ObjError>(), py.get_type::<PyOSError>()];
    os_flavoured(py, &OBJ_IO_ERROR, "ObjIOError", bases, OBJ_IO_ERROR_DOC)
}

fn database_exists_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let bases = [
        py.get_type::<InvalidArgumentError>(),
        py.get_type::<PyFileExistsError>(),
    ];
    let name = "DatabaseExistsError";
    os_flavoured(py, &DATABASE_EXISTS_ERROR, name, bases, DATABASE_EXISTS_DOC)
}

fn database_not_found_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let bases = [
        py.get_type::<NotFoundError>(),
        py.get_type::<PyFileNotFoundError>(),
    ];
    let name = "DatabaseNotFoundError";
    os_flavoured(
        py,
        &DATABASE_NOT_FOUND_ERROR,
        name,
        bases,
        DATABASE_NOT_FOUND_DOC,
    )
}

fn invalid_value_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let bases = [
        py.get_type::<InvalidArgumentError>(),
        py.get_type::<PyValueError>(),
    ];
    let name = "InvalidValueError";
    os_flavoured(py, &INVALID_VALUE_ERROR, name, bases, INVALID_VALUE_DOC)
}

/// The error for a value the codecs cannot store: an `InvalidValueError`.
pub(crate) fn invalid_value(msg: String) -> PyErr {
    raise_as(invalid_value_error, msg)
}

/// An error of `cls` saying `msg` (an ObjError saying it if the class cannot be made).
fn raise_as(cls: fn(Python<'_>) -> PyResult<&Bound<'_, PyType>>, msg: String) -> PyErr {
    Python::attach(|py| match cls(py).and_then(|c| c.call1((&msg,))) {
        Ok(e) => PyErr::from_value(e),
        Err(_) => ObjError::new_err(msg),
    })
}

/// The Python exception for an error opening a database file: a missing file is also a
/// FileNotFoundError and one that must be new but exists also a FileExistsError.
pub(crate) fn open_to_py(err: Error) -> PyErr {
    match err {
        Error::NotFound(_) => raise_as(database_not_found_error, err.to_string()),
        other => to_py(other),
    }
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
        Error::Exists(_) => raise_as(database_exists_error, msg),
        Error::ConditionFailed(_) => ConditionFailedError::new_err(msg),
        Error::Integrity(_) => IntegrityError::new_err(msg),
        Error::FeatureUnsupported(_) => FeatureUnsupportedError::new_err(msg),
        Error::Encryption(_) => EncryptionError::new_err(msg),
        Error::Io(_) => io_error(msg, err.os_error(), err.io_path()),
        Error::ReadOnly(_) | Error::Closed(_) => ObjError::new_err(msg),
        Error::ChangesExpired { oldest, .. } => {
            let e = ChangesExpiredError::new_err(msg);
            Python::attach(|py| {
                let _ = e.value(py).setattr("oldest", oldest);
            });
            e
        }
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
        "ConditionFailedError",
        py.get_type::<ConditionFailedError>(),
    )?;
    m.add(
        "FeatureUnsupportedError",
        py.get_type::<FeatureUnsupportedError>(),
    )?;
    m.add("ChangesExpiredError", py.get_type::<ChangesExpiredError>())?;
    m.add("ObjIOError", obj_io_error(py)?)?;
    m.add("DatabaseExistsError", database_exists_error(py)?)?;
    m.add("DatabaseNotFoundError", database_not_found_error(py)?)?;
    m.add("InvalidValueError", invalid_value_error(py)?)?;
    Ok(())
}
