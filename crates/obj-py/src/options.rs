//! The options of `obj.Db`: their defaults are the engine's (`Options::default()`, given to
//! Python by [`defaults`]), and this is the one place they are checked. Every bad value is
//! an `InvalidArgumentError` naming the option.

use crate::args;
use crate::datum::type_name;
use crate::error::InvalidArgumentError;
use obj_core::{Durability, Locking, OpenMode, Options};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use std::time::Duration;

const DURABILITIES: [(&str, Durability); 3] = [
    ("immediate", Durability::Immediate),
    ("eventual", Durability::Eventual),
    ("none", Durability::None),
];

/// The SQLite-style names `sync=` takes, and the durability each stands for.
const SYNC_MODES: [(&str, &str); 3] = [
    ("full", "immediate"),
    ("normal", "eventual"),
    ("off", "none"),
];

fn durability_name(durability: Durability) -> &'static str {
    DURABILITIES
        .iter()
        .find(|(_, d)| *d == durability)
        .map_or("immediate", |(name, _)| name)
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The defaults of the options, as `obj.Db`'s signature shows them.
#[pyfunction]
pub(crate) fn _defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = Options::default();
    let out = PyDict::new(py);
    out.set_item("read_only", d.read_only)?;
    out.set_item("busy_timeout", d.busy_timeout.as_secs_f64())?;
    out.set_item("durability", durability_name(d.durability))?;
    out.set_item("page_size", d.page_size)?;
    out.set_item("cache_size", d.cache_size)?;
    out.set_item("checkpoint_frames", d.checkpoint_frames)?;
    out.set_item("locking", d.locking.name())?;
    Ok(out)
}

/// An int option from `min` to `max`.
fn int_option(name: &str, value: &Bound<'_, PyAny>, min: u64, max: u64) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(InvalidArgumentError::new_err(format!(
            "{name} must be an int, got {}",
            type_name(value)
        )));
    }
    match value.extract::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(InvalidArgumentError::new_err(format!(
            "{name} must be from {min} to {max}, got {}",
            repr(value)
        ))),
    }
}

fn seconds(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
    {
        return Err(InvalidArgumentError::new_err(format!(
            "{name} must be a number of seconds, got {}",
            type_name(value)
        )));
    }
    value
        .extract::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            InvalidArgumentError::new_err(format!(
                "{name} must be a finite number of seconds >= 0, got {}",
                repr(value)
            ))
        })
}

/// The durability `durability=` or `sync=` (its SQLite-style synonym) asks for; giving
/// both is fine only when they agree.
fn durability(durability: &Bound<'_, PyAny>, sync: &Bound<'_, PyAny>) -> PyResult<Durability> {
    let default = Options::default().durability.name();
    let text = |obj: &Bound<'_, PyAny>| {
        obj.cast::<PyString>()
            .ok()
            .and_then(|s| s.to_cow().ok().map(|s| s.into_owned()))
    };
    let given = text(durability);
    let given = given.as_deref();
    let name = if sync.is_none() {
        given
    } else {
        let mapped = text(sync)
            .and_then(|s| SYNC_MODES.iter().find(|(mode, _)| *mode == s))
            .map(|(_, d)| *d)
            .ok_or_else(|| {
                InvalidArgumentError::new_err(format!(
                    "sync must be 'full', 'normal' or 'off', got {}",
                    repr(sync)
                ))
            })?;
        if given != Some(default) && given != Some(mapped) {
            return Err(InvalidArgumentError::new_err(format!(
                "sync={} and durability={} disagree; pass only one",
                repr(sync),
                repr(durability)
            )));
        }
        Some(mapped)
    };
    name.and_then(|n| DURABILITIES.iter().find(|(d, _)| *d == n))
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            InvalidArgumentError::new_err(format!(
                "durability must be one of 'immediate', 'eventual', 'none', got {}",
                repr(durability)
            ))
        })
}

/// The open mode `obj.Db` passes: "open_or_create" (`Db(path)`), "create" (`Db.create`) or
/// "open" (`Db.open`).
pub(crate) fn open_mode(mode: &str) -> PyResult<OpenMode> {
    match mode {
        "open_or_create" => Ok(OpenMode::OpenOrCreate),
        "create" => Ok(OpenMode::Create),
        "open" => Ok(OpenMode::Open),
        _ => Err(InvalidArgumentError::new_err(format!(
            "mode must be 'open_or_create', 'create' or 'open', got {mode:?}"
        ))),
    }
}

/// The options `obj.Db(...)` was given, checked.
pub(crate) struct Given<'a, 'py> {
    pub(crate) read_only: &'a Bound<'py, PyAny>,
    pub(crate) busy_timeout: &'a Bound<'py, PyAny>,
    pub(crate) durability: &'a Bound<'py, PyAny>,
    pub(crate) page_size: &'a Bound<'py, PyAny>,
    pub(crate) cache_size: &'a Bound<'py, PyAny>,
    pub(crate) checkpoint_frames: &'a Bound<'py, PyAny>,
    pub(crate) sync: &'a Bound<'py, PyAny>,
    pub(crate) compression: &'a Bound<'py, PyAny>,
    pub(crate) encryption_key: &'a Bound<'py, PyAny>,
    pub(crate) locking: &'a Bound<'py, PyAny>,
}

impl Given<'_, '_> {
    pub(crate) fn options(&self) -> PyResult<Options> {
        let durability = durability(self.durability, self.sync)?;
        let compression = if self.compression.is_none() {
            false
        } else if self
            .compression
            .cast::<PyString>()
            .is_ok_and(|s| s.to_cow().is_ok_and(|s| s == "lz4"))
        {
            true
        } else {
            return Err(InvalidArgumentError::new_err(format!(
                "compression must be 'lz4' or None, got {}",
                repr(self.compression)
            )));
        };
        let Ok(read_only) = self.read_only.cast::<PyBool>() else {
            return Err(InvalidArgumentError::new_err(format!(
                "read_only must be a bool, got {}",
                type_name(self.read_only)
            )));
        };
        let locking = self
            .locking
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.to_cow().ok().and_then(|s| Locking::from_name(&s)))
            .ok_or_else(|| {
                InvalidArgumentError::new_err(format!(
                    "locking must be 'shared' or 'exclusive', got {}",
                    repr(self.locking)
                ))
            })?;
        Ok(Options::default()
            .read_only(read_only.is_true())
            .locking(locking)
            .busy_timeout(seconds("busy_timeout", self.busy_timeout)?)
            .durability(durability)
            .compression(compression)
            .page_size(int_option("page_size", self.page_size, 1, u32::MAX.into())? as u32)
            .cache_size(int_option("cache_size", self.cache_size, 0, usize::MAX as u64)? as usize)
            .checkpoint_frames(int_option(
                "checkpoint_frames",
                self.checkpoint_frames,
                1,
                u64::MAX,
            )?)
            .encryption_key(if self.encryption_key.is_none() {
                None
            } else {
                Some(args::encryption_key(self.encryption_key)?)
            }))
    }
}
