//! `obj.Vector`: a read-only sequence of 32-bit floats (an embedding), what a stored vector
//! reads back as. It exports its floats through the buffer protocol (format `f`, one
//! dimension, read-only), so `numpy.asarray(v)` and `memoryview(v)` share its memory.
//!
//! Values that store as a vector: an `obj.Vector`, an `array.array('f')` and a
//! one-dimensional `numpy.float32` array ([`floats_of`], the one place that says so). A
//! plain list of floats stays a list.

use crate::error::InvalidArgumentError;
use obj_core::codec::Datum;
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};
use pyo3::{intern, IntoPyObjectExt};

#[pyclass(frozen, sequence, module = "obj", name = "Vector")]
pub struct Vector {
    data: Vec<f32>,
    /// The buffer protocol's shape and strides, which must outlive every exported view.
    #[cfg_attr(feature = "abi3", allow(dead_code))]
    shape: [isize; 1],
    #[cfg_attr(feature = "abi3", allow(dead_code))]
    strides: [isize; 1],
}

impl Vector {
    pub(crate) fn new(data: Vec<f32>) -> Self {
        let len = isize::try_from(data.len()).unwrap_or(isize::MAX);
        Vector {
            data,
            shape: [len],
            strides: [4],
        }
    }

    /// A vector of the little-endian floats in `le` (a stored vector's bytes).
    pub(crate) fn from_le(le: &[u8]) -> Self {
        Vector::new(obj_core::codec::datum::floats_from_le(le))
    }
}

fn from_native_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The floats of `v` if it is a value that stores as a vector; None for any other value.
/// An `array.array` of another type code, or a numpy array of another dtype or shape, is
/// refused with a message that says what to pass.
pub(crate) fn floats_of(
    v: &Bound<'_, PyAny>,
    what: &dyn std::fmt::Display,
) -> PyResult<Option<Vec<f32>>> {
    let py = v.py();
    if let Ok(vec) = v.cast::<Vector>() {
        return Ok(Some(vec.get().data.clone()));
    }
    let ty = v.get_type();
    let module = ty.module()?;
    let module = module.to_cow()?;
    let name = ty.name()?;
    let name = name.to_cow()?;
    match (&*module, &*name) {
        ("array", "array") => {
            let code: String = v.getattr(intern!(py, "typecode"))?.extract()?;
            if code != "f" {
                return Err(crate::error::invalid_value(format!(
                    "{what}: an array.array of type code {code:?} cannot be stored; use type \
                     code 'f' for a float32 vector, or a list"
                )));
            }
            let b: Vec<u8> = v.call_method0(intern!(py, "tobytes"))?.extract()?;
            Ok(Some(from_native_bytes(&b)))
        }
        ("numpy", "ndarray") => {
            let dtype = v
                .getattr(intern!(py, "dtype"))?
                .str()?
                .to_cow()?
                .into_owned();
            let ndim: usize = v.getattr(intern!(py, "ndim"))?.extract()?;
            if dtype != "float32" || ndim != 1 {
                return Err(crate::error::invalid_value(format!(
                    "{what}: a numpy array of dtype {dtype} with {ndim} dimension(s) cannot be \
                     stored; a vector is a one-dimensional float32 array (or call .tolist())"
                )));
            }
            let b: Vec<u8> = v.call_method0(intern!(py, "tobytes"))?.extract()?;
            Ok(Some(from_native_bytes(&b)))
        }
        _ => Ok(None),
    }
}

/// A float32 from a Python number, refusing values out of float32's range.
fn f32_of(v: &Bound<'_, PyAny>, i: usize) -> PyResult<f32> {
    let x: f64 = v.extract().map_err(|_| {
        InvalidArgumentError::new_err(format!(
            "obj.Vector takes numbers; item {i} is a {}",
            v.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    let f = x as f32;
    if f.is_infinite() && x.is_finite() {
        return Err(InvalidArgumentError::new_err(format!(
            "obj.Vector: item {i} ({x}) is out of float32's range"
        )));
    }
    Ok(f)
}

#[pymethods]
impl Vector {
    /// A vector of the floats in `values` (any iterable of numbers, or a vector-like value).
    #[new]
    #[pyo3(signature = (values = None, /))]
    fn py_new(values: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let Some(values) = values else {
            return Ok(Vector::new(Vec::new()));
        };
        if let Some(floats) = floats_of(values, &"obj.Vector")? {
            return Ok(Vector::new(floats));
        }
        let mut data = Vec::new();
        for (i, item) in values.try_iter()?.enumerate() {
            data.push(f32_of(&item?, i)?);
        }
        Ok(Vector::new(data))
    }

    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = index.cast::<PySlice>() {
            let idx = slice.indices(isize::try_from(self.data.len()).unwrap_or(isize::MAX))?;
            let mut out = Vec::with_capacity(idx.slicelength);
            let mut at = idx.start;
            for _ in 0..idx.slicelength {
                out.push(self.data[at as usize]);
                at += idx.step;
            }
            return Vector::new(out).into_bound_py_any(py);
        }
        let i: isize = index.extract()?;
        let n = self.data.len() as isize;
        let at = if i < 0 { i + n } else { i };
        if !(0..n).contains(&at) {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "obj.Vector index out of range",
            ));
        }
        f64::from(self.data[at as usize]).into_bound_py_any(py)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.tolist(py)?.try_iter().map(Bound::into_any)
    }

    fn __contains__(&self, value: &Bound<'_, PyAny>) -> bool {
        value
            .extract::<f64>()
            .is_ok_and(|x| self.data.iter().any(|f| f64::from(*f) == x))
    }

    /// Equal to another vector with the same floats, or to a sequence of numbers that are
    /// the same float32 values (each compared after rounding to float32).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(o) = other.cast::<Vector>() {
            return Ok(o.get().data == self.data);
        }
        if other.is_instance_of::<pyo3::types::PyString>()
            || other.is_instance_of::<pyo3::types::PyBytes>()
        {
            return Ok(false);
        }
        let Ok(len) = other.len() else {
            return Ok(false);
        };
        if len != self.data.len() {
            return Ok(false);
        }
        let Ok(items) = other.try_iter() else {
            return Ok(false);
        };
        for (item, mine) in items.zip(&self.data) {
            match item?.extract::<f64>() {
                Ok(x) if (x as f32) == *mine => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    fn __ne__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.__eq__(other).map(|eq| !eq)
    }

    fn __repr__(&self) -> String {
        Datum::Vector(self.data.clone()).to_string()
    }

    /// The floats as a list.
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.data.iter().map(|f| f64::from(*f)))
    }

    /// The floats as little-endian float32 bytes (how they are stored).
    fn tobytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|f| f.to_le_bytes()).collect()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyList>,))> {
        let py = slf.py();
        Ok((slf.get_type().into_any(), (slf.get().tolist(py)?,)))
    }

    /// Exports the floats read-only (format `f`, native byte order, one dimension).
    #[cfg(not(feature = "abi3"))]
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        use pyo3::ffi;
        use std::ptr;
        if view.is_null() {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "the Py_buffer is NULL",
            ));
        }
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "obj.Vector is read-only (copy it, e.g. numpy.array(v), to change the floats)",
            ));
        }
        let me = slf.get();
        // Safety: `view` is the caller's Py_buffer to fill (checked non-NULL). The pointers
        // handed out point into `me`, which is frozen (never changes) and kept alive by the
        // new reference stored in `view.obj` until the view is released.
        unsafe {
            (*view).buf = me.data.as_ptr() as *mut std::os::raw::c_void;
            (*view).len = (me.data.len() * 4) as isize;
            (*view).readonly = 1;
            (*view).itemsize = 4;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"f".as_ptr() as *mut std::os::raw::c_char
            } else {
                ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                me.shape.as_ptr() as *mut isize
            } else {
                ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                me.strides.as_ptr() as *mut isize
            } else {
                ptr::null_mut()
            };
            (*view).suboffsets = ptr::null_mut();
            (*view).internal = ptr::null_mut();
            (*view).obj = slf.into_any().into_ptr();
        }
        Ok(())
    }

    #[cfg(not(feature = "abi3"))]
    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {}
}
