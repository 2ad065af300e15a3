//! What a stored record becomes in Python.
//!
//! Reads by collection name return what was written: raw records as `bytes`, dict-native
//! records as dicts, and typed records as dicts decoded by the schema stored in the file.
//! Reads by document class return instances of the class (older versions migrated through
//! its history) and refuse records the class did not write. Tools that copy records (the
//! command line's export) read them by name along with how they are stored.
//!
//! Work that needs the engine (schema look-ups) happens in [`Decode::ready`], while the
//! caller may hold a transaction's lock; building Python objects happens in
//! [`Decode::build`], after the lock is released.

use crate::args::Target;
use crate::at::At;
use crate::codec::DocType;
use crate::datum;
use crate::error::{to_py, InvalidArgumentError};
use crate::shared::Checks;
use obj_core::codec::Datum;
use obj_core::{DocHeader, DocKind, Reader, Value};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::IntoPyObjectExt;

/// How records become Python values.
pub(crate) enum Decode {
    /// What was written: bytes, a dict, or a dict built from the stored schema.
    ByName,
    /// As [`Decode::ByName`], with how the record is stored: `(kind, type_version, value)`,
    /// the kind `"raw"`, `"value"` or `"typed"`.
    Stored,
    /// Instances of a document class.
    Typed(Py<DocType>),
    /// Nothing: callers that want ids only get None for each document.
    Ids,
}

/// A record checked and looked up, ready to become a Python value.
pub(crate) enum Ready {
    Bytes(Value),
    Dict(Value),
    Datum(Datum),
    Typed(Value),
    /// A typed record of a version only `migrations` functions reach: its version and its
    /// fields decoded by the schema the file stores for it.
    Migrated(u32, Datum),
    /// A record read by name, with the header it is stored under.
    Stored(DocHeader, Box<Ready>),
    Nothing,
}

fn kind_name(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Raw => "raw bytes",
        DocKind::Value => "a dict-native document",
        DocKind::Typed => "a typed document",
    }
}

/// What a record read by name needs: its bytes, its dict, or its decoded typed fields.
fn by_name<R: Reader>(r: &R, collection: &str, value: Value) -> PyResult<Ready> {
    Ok(match value.header().kind {
        DocKind::Raw => Ready::Bytes(value),
        DocKind::Value => Ready::Dict(value),
        DocKind::Typed => match r.decode_stored(collection, &value).map_err(to_py)? {
            Some(d) => Ready::Datum(d),
            None => Ready::Bytes(value),
        },
    })
}

impl Decode {
    pub(crate) fn of(target: &Target<'_>) -> Decode {
        match target {
            Target::Name(_) => Decode::ByName,
            Target::Typed(dt) => Decode::Typed(dt.clone().unbind()),
        }
    }

    /// Checks the record (kind, schema) and looks up what decoding it needs.
    pub(crate) fn ready<R: Reader>(
        &self,
        py: Python<'_>,
        r: &R,
        checks: &mut Checks<'_>,
        collection: &str,
        at: At<'_>,
        value: Value,
    ) -> PyResult<Ready> {
        let header = value.header();
        match self {
            Decode::Ids => Ok(Ready::Nothing),
            Decode::ByName => by_name(r, collection, value),
            Decode::Stored => Ok(Ready::Stored(
                header,
                Box::new(by_name(r, collection, value)?),
            )),
            Decode::Typed(dt) => {
                let dt = dt.get();
                if header.kind != DocKind::Typed {
                    let (what, by_name) = at.describe(collection);
                    return Err(InvalidArgumentError::new_err(format!(
                        "{what} of {collection:?} holds {}, not a {} document; read it by \
                         collection name instead, e.g. {by_name}",
                        kind_name(header.kind),
                        dt.class_name(py)
                    )));
                }
                if dt.migrates_by_function(header.type_version) {
                    return Ok(Ready::Migrated(
                        header.type_version,
                        crate::codec::decode_old(r, collection, &value)?,
                    ));
                }
                checks.check_schema(py, r, dt, header.type_version)?;
                Ok(Ready::Typed(value))
            }
        }
    }

    /// Builds the Python value of a record that [`Decode::ready`] accepted.
    pub(crate) fn build<'py>(&self, py: Python<'py>, ready: Ready) -> PyResult<Bound<'py, PyAny>> {
        match ready {
            Ready::Nothing => Ok(py.None().into_bound(py)),
            Ready::Bytes(v) => Ok(PyBytes::new(py, &v).into_any()),
            Ready::Dict(v) => crate::codec::value_to_py(py, &v),
            Ready::Datum(d) => datum::to_py(py, &d),
            Ready::Stored(header, ready) => {
                let value = self.build(py, *ready)?;
                (header.kind.name(), header.type_version, value).into_bound_py_any(py)
            }
            Ready::Migrated(version, d) => match self {
                Decode::Typed(dt) => dt.get().migrate_dict(py, version, datum::to_py(py, &d)?),
                _ => datum::to_py(py, &d),
            },
            Ready::Typed(v) => match self {
                Decode::Typed(dt) => dt.get().decode_doc(py, v.header().type_version, &v),
                _ => Ok(PyBytes::new(py, &v).into_any()),
            },
        }
    }
}
