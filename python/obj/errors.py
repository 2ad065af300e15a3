"""The exceptions raised by obj.

Every error is an :class:`ObjError`; the subclasses say what went wrong, and each engine
failure maps to exactly one of them::

    try:
        db = obj.Db("app.obj", busy_timeout=0.5)
    except obj.BusyError:
        ...  # another process has the file open for writing
    except obj.ObjIOError as e:  # also an OSError: e.errno, e.filename
        ...  # the OS refused (a full disk, a read-only directory, ...)
    except obj.ObjError:
        ...  # anything else obj reports

The classes are defined by the native module, so ``obj.ObjError is obj._obj.ObjError``.
"""

from ._obj import (
    BusyError,
    ChangesExpiredError,
    ConditionFailedError,
    CorruptionError,
    DatabaseExistsError,
    DatabaseNotFoundError,
    EncryptionError,
    FeatureUnsupportedError,
    IntegrityError,
    InvalidArgumentError,
    InvalidValueError,
    NotFoundError,
    ObjError,
    ObjIOError,
)

__all__ = [
    "BusyError",
    "ChangesExpiredError",
    "ConditionFailedError",
    "CorruptionError",
    "DatabaseExistsError",
    "DatabaseNotFoundError",
    "EncryptionError",
    "FeatureUnsupportedError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidValueError",
    "NotFoundError",
    "ObjError",
    "ObjIOError",
]
