//! The Python exception classes and the one mapping from engine errors to them.
//!
//! The classes are created here, once, and re-exported by `obj` (`python/obj/errors.py`), so
//! `obj.ObjError` and `obj._obj.ObjError` are the same object.

use obj_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

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
        Error::Io(_) | Error::ReadOnly(_) | Error::Closed(_) => ObjError::new_err(msg),
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
    Ok(())
}
