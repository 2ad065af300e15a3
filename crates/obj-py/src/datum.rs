//! Conversion between Python values and [`Datum`], the engine's self-describing value:
//! dict-native documents, `Any` fields, index bounds, and typed records read as dicts.

use obj_core::codec::calendar::{civil_from_days, days_from_civil, MICROS_PER_DAY};
use obj_core::codec::datum::emit;
use obj_core::codec::Datum;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple, PyType,
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
    crate::error::invalid_value(msg.into())
}

/// Where a value sits inside the one being converted (`document["tags"][2]`): built as the
/// walk descends and rendered only for an error message, so a valid value costs no text.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(what) => f.write_str(what),
            Path::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Converts a Python value to a Datum; `what` names it in error messages. (Through the
/// bytes [`encode`] writes, so the two cannot disagree on what a value is.)
pub fn to_datum(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Datum> {
    let mut out = Vec::new();
    encode_at(v, Path::Root(what), 0, &mut out)?;
    Datum::decode(&out).map_err(crate::error::to_py)
}

/// The self-describing encoding of a Python value (what a dict-native document or store
/// value is stored as), written straight from the Python objects; `what` names the value
/// in error messages.
pub fn encode(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode_at(v, Path::Root(what), 0, &mut out)?;
    Ok(out)
}

fn encode_at(
    v: &Bound<'_, PyAny>,
    what: Path<'_>,
    depth: usize,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    let py = v.py();
    if depth > obj_core::codec::MAX_NESTING {
        return Err(invalid(format!(
            "{what}: nested deeper than {} levels",
            obj_core::codec::MAX_NESTING
        )));
    }
    if v.is_none() {
        emit::null(out);
    } else if let Ok(b) = v.cast::<PyBool>() {
        emit::bool(out, b.is_true());
    } else if v.is_instance_of::<PyInt>() {
        emit::int(out, int_value(v, what)?);
    } else if let Ok(f) = v.cast::<PyFloat>() {
        emit::float(out, f.value());
    } else if let Ok(s) = v.cast::<PyString>() {
        emit::str(out, &utf8(s, what)?);
    } else if let Ok(b) = v.cast::<PyBytes>() {
        emit::bytes(out, b.as_bytes());
    } else if let Ok(b) = v.cast::<PyByteArray>() {
        emit::bytes(out, &b.to_vec());
    } else if let Ok(d) = v.cast::<PyDict>() {
        // (PyO3's dict iterator itself refuses a dict that changes size meanwhile.)
        emit::map(out, d.len());
        for (k, item) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                invalid(format!(
                    "{what}: dict keys must be str, got {}",
                    type_name(&k)
                ))
            })?;
            let key = utf8(key, what)?;
            emit::map_key(out, &key);
            encode_at(&item, Path::Key(&what, &key), depth + 1, out)?;
        }
    } else if let Ok(l) = v.cast::<PyList>() {
        emit::list(out, l.len());
        let mut written = 0;
        for (i, item) in l.iter().enumerate() {
            encode_at(&item, Path::Index(&what, i), depth + 1, out)?;
            written += 1;
        }
        if written != l.len() {
            return Err(invalid(format!(
                "{what}: the list changed size while it was stored"
            )));
        }
    } else if let Ok(t) = v.cast::<PyTuple>() {
        emit::list(out, t.len());
        for (i, item) in t.iter().enumerate() {
            encode_at(&item, Path::Index(&what, i), depth + 1, out)?;
        }
    } else if v.is_instance_of::<PySet>() || v.is_instance_of::<PyFrozenSet>() {
        encode_set(v, &what, out)?;
    } else if let Some(floats) = crate::vector::floats_of(v, &what)? {
        emit::vector(out, &floats);
    } else {
        let t = types(py)?;
        if v.is_instance(t.datetime.bind(py))? {
            let (micros, offset_secs) = datetime_parts(v)?;
            emit::datetime(out, micros, offset_secs);
        } else if v.is_instance(t.date.bind(py))? {
            emit::date(out, date_days(v)?);
        } else if v.is_instance(t.uuid.bind(py))? {
            emit::uuid(out, &uuid_bytes(v)?);
        } else if v.is_instance(t.enum_base.bind(py))? {
            encode_at(&v.getattr(intern!(py, "value"))?, what, depth + 1, out)?;
        } else if let Ok(m) = v.cast::<pyo3::types::PyMemoryView>() {
            let b: Vec<u8> = m.call_method0(intern!(py, "tobytes"))?.extract()?;
            emit::bytes(out, &b);
        } else {
            return Err(invalid(format!(
                "{what}: cannot store a value of type {} (supported: None, bool, int, float, str, bytes, list, tuple, dict with str keys, set of str/bytes/numbers, datetime, date, UUID, Enum, float32 vector: obj.Vector, array.array('f'), numpy float32)",
                type_name(v)
            )));
        }
    }
    Ok(())
}

/// A set: members all str, all bytes or all numbers (the one rule, `emit::SetKind`).
fn encode_set(v: &Bound<'_, PyAny>, what: &Path<'_>, out: &mut Vec<u8>) -> PyResult<()> {
    use emit::SetKind;
    let members: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
    let kind_of = |m: &Bound<'_, PyAny>| {
        if m.is_instance_of::<PyString>() {
            Some(SetKind::Str)
        } else if m.is_instance_of::<PyBytes>() {
            Some(SetKind::Bytes)
        } else if (m.is_instance_of::<PyInt>() && !m.is_instance_of::<PyBool>())
            || m.is_instance_of::<PyFloat>()
        {
            Some(SetKind::Number)
        } else {
            None
        }
    };
    let mut kind = None;
    for m in &members {
        let Some(k) = kind_of(m) else {
            return Err(invalid(format!(
                "{what}: a set holds str, bytes or numbers (all of one kind); this one holds a {}",
                type_name(m)
            )));
        };
        if kind.is_some_and(|have| have != k) {
            return Err(invalid(format!(
                "{what}: a set holds members of one kind (all str, all bytes or all numbers); \
                 this one mixes them"
            )));
        }
        kind = Some(k);
    }
    emit::set(out, members.len());
    for (i, m) in members.iter().enumerate() {
        encode_at(m, Path::Index(what, i), 1, out)?;
    }
    Ok(())
}

/// The UTF-8 text of a str (a str with lone surrogates cannot be stored).
pub fn utf8<'a>(
    s: &'a Bound<'_, PyString>,
    what: impl std::fmt::Display,
) -> PyResult<Cow<'a, str>> {
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
pub fn int_value(v: &Bound<'_, PyAny>, what: impl std::fmt::Display) -> PyResult<i64> {
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
        Datum::Set(members) => {
            let items = members
                .iter()
                .map(|m| to_py(py, m))
                .collect::<PyResult<Vec<_>>>()?;
            PySet::new(py, items)?.into_any()
        }
        Datum::Vector(v) => crate::vector::Vector::new(v.clone()).into_bound_py_any(py)?,
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
