//! `obj._obj.ReadTransaction`: a read-only snapshot of the database as of the latest commit
//! when it began. It never blocks the writer and never sees uncommitted work. The snapshot
//! is released at the end of its `with` block (or by `close()`); any later use raises
//! `ObjError`. Its reads are those of every reader (`surface.rs`) over its snapshot
//! (`state.rs`).

use crate::db::Db;
use crate::source::Origin;
use crate::state::ReadState;
use crate::surface::Reads;
use pyo3::prelude::*;
use std::sync::Arc;

#[pyclass(frozen, extends = Reads, subclass, module = "obj._obj", name = "ReadTransaction")]
pub struct ReadTransaction {
    state: Arc<ReadState>,
}

#[pymethods]
impl ReadTransaction {
    /// Starts a snapshot of the latest commit of `db`.
    #[new]
    fn new(db: &Db) -> PyResult<PyClassInitializer<Self>> {
        let state = Arc::new(ReadState::begin(db.shared().clone())?);
        Ok(
            PyClassInitializer::from(Reads::new(Origin::Read(state.clone())))
                .add_subclass(ReadTransaction { state }),
        )
    }

    /// Releases the snapshot. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.state.release(py);
    }

    /// False once the snapshot has been released.
    #[getter]
    fn active(&self, py: Python<'_>) -> bool {
        self.state.is_active(py)
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().state.check_active(slf.py())?;
        Ok(slf.clone())
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) {
        self.state.release(py);
    }

    fn __repr__(&self, py: Python<'_>) -> &'static str {
        if self.state.is_active(py) {
            "<obj.ReadTransaction active>"
        } else {
            "<obj.ReadTransaction ended>"
        }
    }
}
