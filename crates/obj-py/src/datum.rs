//! Conversion between Python values and [`Datum`], the engine's self-describing value:
//! dict-native documents, `Any` fields, index bounds, and typed records read as dicts.

use crate::error::InvalidArgumentError;
use obj_core::codec::calendar::{civil_from_days, days_from_civil, MICROS_PER_DAY};
use obj_core::codec::Datum;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType,
};
use pyo3::{intern, IntoPyObjectExt};
use std::borrow::Cow;

/// Days from 0001-01-01 (ordinal 1) to 1970-01-01.
pub const EPOCH_ORDINAL: i64 = 719_163;

/// The standard-library types the codecs recognise, imported once.
pub struct Types {
    pub datetime: Py<PyType>,
    pub date: Py<PyType>,
    pub timezone: Py<PyType>,
    pub timedelta: Py<PyType>,
    pub uuid: Py<PyType>,
    pub enum_base: Py<PyType>,
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

pub fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let dt = py.import("datetime")?;
        let ty = |m: &Bound<'_, PyModule>, name: &str| -> PyResult<Py<PyType>> {
            Ok(m.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Types {
            datetime: ty(&dt, "datetime")?,
            date: ty(&dt, "date")?,
            timezone: ty(&dt, "timezone")?,
            timedelta: ty(&dt, "timedelta")?,
            uuid: ty(&py.import("uuid")?, "UUID")?,
            enum_base: ty(&py.import("enum")?, "Enum")?,
        })
    })
}

fn invalid(msg: impl Into<String>) -> PyErr {
    InvalidArgumentError::new_err(msg.into())
}

/// Converts a Python value to a Datum; `what` names it in error messages.
pub fn to_datum(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Datum> {
    to_datum_at(v, what, 0)
}

fn to_datum_at(v: &Bound<'_, PyAny>, what: &str, depth: usize) -> PyResult<Datum> {
    let py = v.py();
    if depth > obj_core::codec::MAX_NESTING {
        return Err(invalid(format!(
            "{what}: nested deeper than {} levels",
            obj_core::codec::MAX_NESTING
        )));
    }
    if v.is_none() {
        return Ok(Datum::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Datum::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(Datum::Int(int_value(v, what)?));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Datum::Float(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Datum::Str(utf8(s, what)?.into_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Datum::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Datum::Bytes(b.to_vec()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(d.len());
        for (k, item) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                invalid(format!(
                    "{what}: dict keys must be str, got {}",
                    type_name(&k)
                ))
            })?;
            let key = utf8(key, what)?.into_owned();
            let item = to_datum_at(&item, &format!("{what}[{key:?}]"), depth + 1)?;
            entries.push((key, item));
        }
        return Ok(Datum::Map(entries));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in v.try_iter()?.enumerate() {
            items.push(to_datum_at(&item?, &format!("{what}[{i}]"), depth + 1)?);
        }
        return Ok(Datum::List(items));
    }
    let t = types(py)?;
    if v.is_instance(t.datetime.bind(py))? {
        let (micros, offset_secs) = datetime_parts(v)?;
        return Ok(Datum::DateTime {
            micros,
            offset_secs,
        });
    }
    if v.is_instance(t.date.bind(py))? {
        return Ok(Datum::Date(date_days(v)?));
    }
    if v.is_instance(t.uuid.bind(py))? {
        return Ok(Datum::Uuid(uuid_bytes(v)?));
    }
    if v.is_instance(t.enum_base.bind(py))? {
        return to_datum_at(&v.getattr(intern!(py, "value"))?, what, depth + 1);
    }
    if let Ok(m) = v.cast::<pyo3::types::PyMemoryView>() {
        let b: Vec<u8> = m.call_method0(intern!(py, "tobytes"))?.extract()?;
        return Ok(Datum::Bytes(b));
    }
    Err(invalid(format!(
        "{what}: cannot store a value of type {} (supported: None, bool, int, float, str, bytes, list, tuple, dict with str keys, datetime, date, UUID, Enum)",
        type_name(v)
    )))
}

/// The UTF-8 text of a str (a str with lone surrogates cannot be stored).
pub fn utf8<'a>(s: &'a Bound<'_, PyString>, what: &str) -> PyResult<Cow<'a, str>> {
    s.to_cow().map_err(|_| {
        invalid(format!(
            "{what}: str is not valid UTF-8 (it has lone surrogates)"
        ))
    })
}

pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A Python int as i64, refusing bools and out-of-range values with a clear message.
pub fn int_value(v: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    v.extract::<i64>().map_err(|_| {
        if v.is_instance_of::<PyInt>() {
            invalid(format!(
                "{what}: int {} is outside the 64-bit range [-2**63, 2**63-1]",
                v
            ))
        } else {
            invalid(format!("{what}: expected int, got {}", type_name(v)))
        }
    })
}

pub fn date_days(v: &Bound<'_, PyAny>) -> PyResult<i32> {
    let ordinal: i64 = v.call_method0(intern!(v.py(), "toordinal"))?.extract()?;
    Ok((ordinal - EPOCH_ORDINAL) as i32)
}

/// A datetime as microseconds since the epoch (of UTC when it is aware, of its own wall
/// clock when naive) and its UTC offset in seconds.
pub fn datetime_parts(v: &Bound<'_, PyAny>) -> PyResult<(i64, Option<i32>)> {
    let py = v.py();
    let get = |name: &Bound<'_, PyString>| -> PyResult<i64> { v.getattr(name)?.extract() };
    let days = days_from_civil(
        get(intern!(py, "year"))?,
        get(intern!(py, "month"))?,
        get(intern!(py, "day"))?,
    );
    let secs = get(intern!(py, "hour"))? * 3600
        + get(intern!(py, "minute"))? * 60
        + get(intern!(py, "second"))?;
    let local = days * MICROS_PER_DAY + secs * 1_000_000 + get(intern!(py, "microsecond"))?;
    let offset = v.call_method0(intern!(py, "utcoffset"))?;
    if offset.is_none() {
        return Ok((local, None));
    }
    let off_days: i64 = offset.getattr(intern!(py, "days"))?.extract()?;
    let off_secs: i64 = offset.getattr(intern!(py, "seconds"))?.extract()?;
    let off_micros: i64 = offset.getattr(intern!(py, "microseconds"))?.extract()?;
    if off_micros != 0 {
        return Err(invalid(
            "datetimes whose UTC offset has a fraction of a second cannot be stored",
        ));
    }
    let off = off_days * 86_400 + off_secs;
    Ok((local - off * 1_000_000, Some(off as i32)))
}

pub fn datetime_to_py<'py>(
    py: Python<'py>,
    micros: i64,
    offset_secs: Option<i32>,
) -> PyResult<Bound<'py, PyAny>> {
    let t = types(py)?;
    let local = micros + i64::from(offset_secs.unwrap_or(0)) * 1_000_000;
    let days = local.div_euclid(MICROS_PER_DAY);
    let rest = local.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (secs, us) = (rest / 1_000_000, rest % 1_000_000);
    let tz = match offset_secs {
        Some(off) => {
            let delta = t.timedelta.bind(py).call1((0, off))?;
            t.timezone.bind(py).call1((delta,))?
        }
        None => py.None().into_bound(py),
    };
    t.datetime
        .bind(py)
        .call1((y, m, d, secs / 3600, (secs / 60) % 60, secs % 60, us, tz))
}

pub fn date_to_py(py: Python<'_>, days: i32) -> PyResult<Bound<'_, PyAny>> {
    types(py)?.date.bind(py).call_method1(
        intern!(py, "fromordinal"),
        (i64::from(days) + EPOCH_ORDINAL,),
    )
}

pub fn uuid_bytes(v: &Bound<'_, PyAny>) -> PyResult<[u8; 16]> {
    let b = v.getattr(intern!(v.py(), "bytes"))?;
    let b = b.cast::<PyBytes>()?.as_bytes();
    b.try_into()
        .map_err(|_| invalid("UUID.bytes is not 16 bytes long"))
}

pub fn uuid_to_py<'py>(py: Python<'py>, bytes: &[u8; 16]) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "bytes"), PyBytes::new(py, bytes))?;
    types(py)?.uuid.bind(py).call((), Some(&kwargs))
}

/// Builds the Python value of a Datum: maps become dicts, lists lists.
pub fn to_py<'py>(py: Python<'py>, d: &Datum) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        Datum::Null => py.None().into_bound(py),
        Datum::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Datum::Int(i) => i.into_bound_py_any(py)?,
        Datum::Float(f) => f.into_bound_py_any(py)?,
        Datum::Str(s) => PyString::new(py, s).into_any(),
        Datum::Bytes(b) => PyBytes::new(py, b).into_any(),
        Datum::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Datum::Map(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
        Datum::DateTime {
            micros,
            offset_secs,
        } => datetime_to_py(py, *micros, *offset_secs)?,
        Datum::Date(days) => date_to_py(py, *days)?,
        Datum::Uuid(u) => uuid_to_py(py, u)?,
    })
}

/// Index bound values: a tuple is a composite (prefix) key, anything else one value.
pub fn key_values(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Datum>> {
    if let Ok(t) = v.cast::<PyTuple>() {
        return t
            .iter()
            .enumerate()
            .map(|(i, item)| to_datum(&item, &format!("{what}[{i}]")))
            .collect();
    }
    Ok(vec![to_datum(v, what)?])
}
