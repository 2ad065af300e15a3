//! Columns, for `obj.Column`: a handle on one column of a read source that converts
//! Python values to elements (`obj_core::column::Elem`) and back. Storage, dtypes and the
//! element encodings are the engine's; the sequence protocol is Python's
//! (`python/obj/columns.py`).

use crate::datum;
use crate::error::{to_py, InvalidArgumentError};
use crate::source::{on_snap, Origin, Place};
use crate::state::WriteState;
use crate::vector::{floats_of, Vector};
use obj_core::codec::Datum;
use obj_core::column::{self, ColumnInfo, ColumnReads, Dtype, Elem};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString};
use pyo3::IntoPyObjectExt;
use std::sync::Arc;

/// The stored encoding of `v` as element `at` of a `dtype` column.
fn encode(dtype: Dtype, v: &Bound<'_, PyAny>, at: u64, out: &mut Vec<u8>) -> PyResult<()> {
    let wrong = || {
        InvalidArgumentError::new_err(format!(
            "element {at}: {} does not fit a {} column",
            datum::type_name(v),
            dtype.name()
        ))
    };
    let r = match dtype {
        Dtype::I64 | Dtype::I32 => {
            if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
                return Err(wrong());
            }
            let n: i64 = v.extract().map_err(|_| {
                InvalidArgumentError::new_err(format!(
                    "element {at}: {} is out of range for {}",
                    v.repr().map_or_else(|_| "?".into(), |r| r.to_string()),
                    dtype.name()
                ))
            })?;
            dtype.encode(&Elem::Int(n), at, out)
        }
        Dtype::F64 | Dtype::F32 => {
            if v.is_instance_of::<PyBool>()
                || !(v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>())
            {
                return Err(wrong());
            }
            let f: f64 = v.extract().map_err(|_| wrong())?;
            dtype.encode(&Elem::Float(f), at, out)
        }
        Dtype::Bool => {
            if !v.is_instance_of::<PyBool>() {
                return Err(wrong());
            }
            dtype.encode(&Elem::Bool(v.extract()?), at, out)
        }
        Dtype::Bytes | Dtype::BytesN(_) => {
            let b = bytes_of(v).ok_or_else(wrong)?;
            dtype.encode(&Elem::Bytes(&b), at, out)
        }
        Dtype::Str | Dtype::StrN(_) => {
            let s = v.cast::<PyString>().map_err(|_| wrong())?;
            dtype.encode(&Elem::Str(s.to_str()?), at, out)
        }
        Dtype::VecF32(_) => {
            let what = format!("element {at}");
            let floats = match floats_of(v, &what)? {
                Some(f) => f,
                None if v.is_instance_of::<PyList>() => {
                    v.extract::<Vec<f32>>().map_err(|_| wrong())?
                }
                None => return Err(wrong()),
            };
            let le: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
            dtype.encode(&Elem::Vector(&le), at, out)
        }
        Dtype::Value => {
            let b = datum::encode(v, &format!("element {at}"))?;
            dtype.encode(&Elem::Value(&b), at, out)
        }
    };
    r.map_err(to_py)
}

fn bytes_of(v: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Some(b.as_bytes().to_vec());
    }
    if v.is_instance_of::<PyString>() {
        return None;
    }
    let buf = PyBuffer::<u8>::get(v).ok()?;
    buf.to_vec(v.py()).ok()
}

/// The Python value of a stored element.
fn decode<'py>(py: Python<'py>, dtype: Dtype, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match dtype.decode(b).map_err(to_py)? {
        Elem::Int(n) => n.into_bound_py_any(py),
        Elem::Float(f) => f.into_bound_py_any(py),
        Elem::Bool(v) => v.into_bound_py_any(py),
        Elem::Bytes(b) => Ok(PyBytes::new(py, b).into_any()),
        Elem::Str(s) => s.into_bound_py_any(py),
        Elem::Vector(le) => Vector::from_le(le).into_bound_py_any(py),
        Elem::Value(b) => datum::to_py(py, &Datum::decode(b).map_err(to_py)?),
    }
}

/// One column of a read source.
#[pyclass(frozen, module = "obj._obj", name = "ColumnHandle")]
pub struct ColumnHandle {
    origin: Origin,
    name: String,
}

impl ColumnHandle {
    pub(crate) fn new(origin: Origin, name: String) -> Self {
        ColumnHandle { origin, name }
    }

    fn write_state(&self) -> PyResult<&Arc<WriteState>> {
        match &self.origin {
            Origin::Write(state) => Ok(state),
            _ => Err(InvalidArgumentError::new_err(
                "column writes go through a write transaction",
            )),
        }
    }

    fn info(&self, py: Python<'_>) -> PyResult<ColumnInfo> {
        let name = self.name.as_str();
        self.origin
            .with(py, &Place::Here, |snap, _| {
                on_snap!(snap, |r| r.column_info(name).map_err(to_py))
            })?
            .ok_or_else(|| {
                crate::error::NotFoundError::new_err(format!("there is no column {name:?}"))
            })
    }

    /// Runs `f` on the column in the write transaction, then stores nothing more (the
    /// engine functions keep the header).
    fn write<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut obj_core::WriteTxn, &mut ColumnInfo) -> obj_core::Result<R> + Send,
    ) -> PyResult<R>
    where
        R: Send,
    {
        let name = self.name.as_str();
        self.write_state()?.with(py, |live| {
            py.detach(|| {
                let mut info = live.txn.column_info(name)?.ok_or_else(|| {
                    obj_core::Error::NotFound(format!("there is no column {name:?}"))
                })?;
                f(&mut live.txn, &mut info)
            })
            .map_err(to_py)
        })
    }

    fn encode_all(
        &self,
        dtype: Dtype,
        values: &Bound<'_, PyAny>,
        first: u64,
    ) -> PyResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for (k, v) in values.try_iter()?.enumerate() {
            let mut e = Vec::new();
            encode(dtype, &v?, first + k as u64, &mut e)?;
            out.push(e);
        }
        Ok(out)
    }
}

#[pymethods]
impl ColumnHandle {
    /// `(dtype, len)`, or None when there is no such column.
    fn header(&self, py: Python<'_>) -> PyResult<Option<(String, u64)>> {
        let name = self.name.as_str();
        let info = self.origin.with(py, &Place::Here, |snap, _| {
            on_snap!(snap, |r| r.column_info(name).map_err(to_py))
        })?;
        Ok(info.map(|i| (i.dtype.name(), i.len)))
    }

    /// Creates the column with `dtype` or checks an existing one's; returns its length.
    fn ensure(&self, py: Python<'_>, dtype: &str) -> PyResult<u64> {
        let dtype = Dtype::parse(dtype).map_err(to_py)?;
        let name = self.name.as_str();
        self.write_state()?.with(py, |live| {
            column::ensure(&mut live.txn, name, dtype)
                .map(|i| i.len)
                .map_err(to_py)
        })
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        usize::try_from(self.info(py)?.len)
            .map_err(|_| InvalidArgumentError::new_err("the column is longer than len() can say"))
    }

    /// Elements `a..b` (clamped) as a list.
    fn range<'py>(&self, py: Python<'py>, a: u64, b: u64) -> PyResult<Bound<'py, PyList>> {
        let name = self.name.as_str();
        let (dtype, elems) = self.origin.with(py, &Place::Here, |snap, _| {
            on_snap!(snap, |r| {
                let info = r.column_info(name).map_err(to_py)?.ok_or_else(|| {
                    crate::error::NotFoundError::new_err(format!("there is no column {name:?}"))
                })?;
                let elems = py
                    .detach(|| r.column_elements(name, &info, a, b))
                    .map_err(to_py)?;
                Ok((info.dtype, elems))
            })
        })?;
        let list = PyList::empty(py);
        for e in &elems {
            list.append(decode(py, dtype, e)?)?;
        }
        Ok(list)
    }

    /// Elements `a..b` (clamped) of a fixed-width column, packed little-endian.
    fn packed<'py>(&self, py: Python<'py>, a: u64, b: u64) -> PyResult<Bound<'py, PyBytes>> {
        let name = self.name.as_str();
        let bytes = self.origin.with(py, &Place::Here, |snap, _| {
            on_snap!(snap, |r| {
                let info = r.column_info(name).map_err(to_py)?.ok_or_else(|| {
                    crate::error::NotFoundError::new_err(format!("there is no column {name:?}"))
                })?;
                py.detach(|| r.column_packed(name, &info, a, b))
                    .map_err(to_py)
            })
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Appends `values`: an iterable of elements, or for numeric and bool columns packed
    /// little-endian bytes of whole elements (`packed=True`).
    #[pyo3(signature = (values, packed = false))]
    fn extend(&self, py: Python<'_>, values: &Bound<'_, PyAny>, packed: bool) -> PyResult<u64> {
        let info = self.info(py)?;
        if packed {
            let data = bytes_of(values)
                .ok_or_else(|| InvalidArgumentError::new_err("packed values must be bytes-like"))?;
            return self.write(py, move |txn, info| {
                column::extend_packed(txn, &self.name, info, &data).map(|()| info.len)
            });
        }
        let elems = self.encode_all(info.dtype, values, info.len)?;
        self.write(py, move |txn, info| {
            column::extend_elements(txn, &self.name, info, &elems).map(|()| info.len)
        })
    }

    /// Replaces elements from `a` on with `values` (as many as it has; they must exist).
    fn set(&self, py: Python<'_>, a: u64, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let info = self.info(py)?;
        let elems = self.encode_all(info.dtype, values, a)?;
        self.write(py, move |txn, info| {
            column::set_elements(txn, &self.name, info, a, &elems)
        })
    }

    /// Inserts `values` before element `at`.
    fn insert(&self, py: Python<'_>, at: u64, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let info = self.info(py)?;
        let elems = self.encode_all(info.dtype, values, at)?;
        self.write(py, move |txn, info| {
            column::insert_elements(txn, &self.name, info, at, &elems)
        })
    }

    /// Deletes elements `a..b`.
    fn delete(&self, py: Python<'_>, a: u64, b: u64) -> PyResult<()> {
        self.write(py, move |txn, info| {
            column::delete_range(txn, &self.name, info, a, b)
        })
    }

    /// Shortens the column to `len` elements.
    fn truncate(&self, py: Python<'_>, len: u64) -> PyResult<()> {
        self.write(py, move |txn, info| {
            column::truncate(txn, &self.name, info, len)
        })
    }
}
