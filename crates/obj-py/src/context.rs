//! The metadata a commit's change record carries (who, what, why), from Python: the
//! arguments of `transaction(action=, user=, meta=)` and the `db.context(...)` blocks
//! (python/obj/_changes.py), which every write transaction of a handle looks at when it
//! begins.

use crate::datum;
use crate::error::InvalidArgumentError;
use obj_core::changes::Context;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// The metadata a transaction records, from Python arguments: `meta` must be a dict.
pub(crate) fn context(
    action: Option<String>,
    user: Option<String>,
    meta: Option<&Bound<'_, PyAny>>,
) -> PyResult<Context> {
    let meta = match meta {
        None => None,
        Some(m) if m.is_none() => None,
        Some(m) => {
            if !m.is_instance_of::<PyDict>() {
                return Err(InvalidArgumentError::new_err(format!(
                    "meta must be a dict of metadata to record with the commit, not {}",
                    datum::type_name(m)
                )));
            }
            Some(datum::encode(m, "meta")?)
        }
    };
    Ok(Context {
        action,
        user,
        meta,
        time_micros: None,
    })
}

/// The metadata `with db.context(...)` set for the database `key` in the current thread
/// or task (python/obj/_changes.py keeps it in a ContextVar: `{key: (action, user,
/// meta)}`), if any.
pub(crate) fn current_context(py: Python<'_>, key: usize) -> PyResult<Option<Context>> {
    static VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let var = VAR.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("obj._changes")?.getattr("CURRENT")?.unbind())
    })?;
    let value = var.bind(py).call_method1("get", (py.None(),))?;
    if value.is_none() {
        return Ok(None);
    }
    let Some(entry) = value.cast::<PyDict>()?.get_item(key)? else {
        return Ok(None);
    };
    let (action, user, meta): (Option<String>, Option<String>, Bound<'_, PyAny>) =
        entry.extract()?;
    context(action, user, Some(&meta)).map(Some)
}
