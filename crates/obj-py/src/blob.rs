//! Blob stores, for `obj.BlobStore`: a handle on one store of a read source (headers and
//! chunks, `obj_core::blob`), and `obj._obj.BlobWriter`, a blob being streamed into a write
//! transaction. The file objects, key rules and `Db`-level transactions are Python's
//! (`python/obj/blobs.py`).

use crate::datum;
use crate::error::{to_py, InvalidArgumentError};
use crate::source::{on_snap, Origin, Place};
use crate::state::WriteState;
use obj_core::blob::{self, BlobInfo, BlobReads};
use obj_core::codec::Datum;
use parking_lot::Mutex;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::IntoPyObjectExt;
use std::sync::Arc;

/// `(id, size, sha256, content_type, meta, created_micros, chunk_size)`.
fn info_to_py<'py>(py: Python<'py>, info: &BlobInfo) -> PyResult<Bound<'py, PyTuple>> {
    let meta = match &info.meta {
        Some(m) => datum::to_py(py, m)?,
        None => py.None().into_bound(py),
    };
    PyTuple::new(
        py,
        [
            info.id.into_bound_py_any(py)?,
            info.size.into_bound_py_any(py)?,
            PyBytes::new(py, &info.sha256).into_any(),
            info.content_type.clone().into_bound_py_any(py)?,
            meta,
            info.created_micros.into_bound_py_any(py)?,
            info.chunk_size.into_bound_py_any(py)?,
        ],
    )
}

fn meta_datum(meta: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Datum>> {
    match meta {
        None => Ok(None),
        Some(m) if m.is_none() => Ok(None),
        Some(m) if m.is_instance_of::<PyDict>() => Ok(Some(datum::to_datum(m, "meta")?)),
        Some(m) => Err(InvalidArgumentError::new_err(format!(
            "meta must be a dict of metadata to keep with the blob, not {}",
            datum::type_name(m)
        ))),
    }
}

/// The bytes of a buffer-protocol object, copied once.
fn buffer_bytes(data: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let buf = PyBuffer::<u8>::get(data).map_err(|_| {
        InvalidArgumentError::new_err(format!(
            "{what} must be bytes-like (bytes, bytearray, memoryview), got {}",
            datum::type_name(data)
        ))
    })?;
    buf.to_vec(data.py())
}

/// One blob store of a read source: `Db`, read transaction or write transaction.
#[pyclass(frozen, module = "obj._obj", name = "BlobHandle")]
pub struct BlobHandle {
    origin: Origin,
    store: String,
}

impl BlobHandle {
    pub(crate) fn new(origin: Origin, store: String) -> Self {
        BlobHandle { origin, store }
    }

    fn write_state(&self) -> PyResult<&Arc<WriteState>> {
        match &self.origin {
            Origin::Write(state) => Ok(state),
            _ => Err(InvalidArgumentError::new_err(
                "blob writes go through a write transaction",
            )),
        }
    }
}

#[pymethods]
impl BlobHandle {
    /// The header of the blob under `key` as a tuple (see `info_to_py`), or None.
    fn info<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let store = self.store.as_str();
        let info = self.origin.with(py, &Place::Here, |snap, _| {
            on_snap!(snap, |r| r.blob_info(store, key).map_err(to_py))
        })?;
        info.map(|i| info_to_py(py, &i)).transpose()
    }

    /// Chunk `index` of the blob with header fields `id`, `size`, `chunk_size`.
    fn chunk<'py>(
        &self,
        py: Python<'py>,
        id: u64,
        size: u64,
        chunk_size: u32,
        index: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let info = BlobInfo {
            id,
            size,
            sha256: [0; 32],
            content_type: None,
            meta: None,
            created_micros: 0,
            chunk_size,
        };
        let store = self.store.as_str();
        let bytes = self.origin.with(py, &Place::Here, |snap, _| {
            on_snap!(snap, |r| py
                .detach(|| r.blob_chunk(store, &info, index))
                .map_err(to_py))
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Writes `data` as the blob under `key` in the transaction; returns its header.
    #[pyo3(signature = (key, data, content_type = None, meta = None))]
    fn put<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        data: &Bound<'py, PyAny>,
        content_type: Option<String>,
        meta: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let meta = meta_datum(meta)?;
        let bytes = buffer_bytes(data, "a blob's value")?;
        let store = self.store.as_str();
        let info = self.write_state()?.with(py, |live| {
            py.detach(|| blob::put_blob(&mut live.txn, store, key, &bytes, content_type, meta))
                .map_err(to_py)
        })?;
        info_to_py(py, &info)
    }

    /// Deletes the blob under `key` in the transaction; returns whether there was one.
    fn delete(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        let store = self.store.as_str();
        self.write_state()?.with(py, |live| {
            py.detach(|| blob::delete_blob(&mut live.txn, store, key))
                .map_err(to_py)
        })
    }

    /// Starts streaming a blob under `key` into the transaction.
    #[pyo3(signature = (key, content_type = None, meta = None))]
    fn writer(
        &self,
        py: Python<'_>,
        key: &[u8],
        content_type: Option<String>,
        meta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<BlobWriter> {
        let meta = meta_datum(meta)?;
        let state = self.write_state()?.clone();
        let store = self.store.as_str();
        let w = state.with(py, |live| {
            blob::BlobWriter::begin(&mut live.txn, store, key, content_type, meta).map_err(to_py)
        })?;
        Ok(BlobWriter {
            state,
            inner: Mutex::new(Some(w)),
        })
    }
}

/// A blob being streamed into a write transaction: `write` chunks in, `finish` makes it
/// part of the transaction, `abort` takes back what was written.
#[pyclass(frozen, module = "obj._obj", name = "BlobWriter")]
pub struct BlobWriter {
    state: Arc<WriteState>,
    inner: Mutex<Option<blob::BlobWriter>>,
}

impl BlobWriter {
    fn take(&self) -> PyResult<blob::BlobWriter> {
        self.inner
            .lock()
            .take()
            .ok_or_else(|| InvalidArgumentError::new_err("the blob writer is closed"))
    }
}

#[pymethods]
impl BlobWriter {
    /// Appends `data` (bytes-like); returns how many bytes it took.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let bytes = buffer_bytes(data, "write()'s argument")?;
        let mut guard = self.inner.lock();
        let w = guard
            .as_mut()
            .ok_or_else(|| InvalidArgumentError::new_err("write to a closed blob writer"))?;
        self.state.with(py, |live| {
            py.detach(|| w.write(&mut live.txn, &bytes)).map_err(to_py)
        })?;
        Ok(bytes.len())
    }

    /// Bytes written so far.
    #[getter]
    fn size(&self) -> PyResult<u64> {
        self.inner
            .lock()
            .as_ref()
            .map(blob::BlobWriter::size)
            .ok_or_else(|| InvalidArgumentError::new_err("the blob writer is closed"))
    }

    /// Writes the rest and the header; returns the header tuple.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let w = self.take()?;
        let info = self.state.with(py, |live| {
            py.detach(|| w.finish(&mut live.txn)).map_err(to_py)
        })?;
        info_to_py(py, &info)
    }

    /// Deletes what was written (nothing when the transaction already ended).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let Some(w) = self.inner.lock().take() else {
            return Ok(());
        };
        if !self.state.is_active(py) {
            return Ok(());
        }
        self.state
            .with(py, |live| w.abort(&mut live.txn).map_err(to_py))
    }
}

/// The collection holding the chunks of blob store `store` (`obj_core::blob::chunks_of`).
#[pyfunction]
pub fn _blob_chunks_of(store: &str) -> String {
    blob::chunks_of(store)
}
