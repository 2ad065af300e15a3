//! `obj._obj.DocType`: the compiled codec of one `@obj.document` class.
//!
//! `python/obj/document.py` reads the dataclass's type hints once and hands over a nested
//! description; this file compiles it into a plan (interned field names, class objects,
//! enum tables) and the engine's [`Schema`]. Encoding reads attributes straight off the
//! instance and writes the Dynamic payload (format in `obj_core::codec::dynamic`). Decoding
//! is the engine's walker (`obj_core::codec::walk`, which reads and checks the bytes) reading
//! by the plan and reporting to [`Build`], which allocates instances with the class's
//! `tp_alloc` (what `object.__new__` does) and sets fields with `PyObject_GenericSetAttr`,
//! so `__init__` and `__post_init__` do not run again on load: a stored document is
//! restored as it was, not rebuilt.

use crate::datum::{self, type_name};
use crate::error::{CorruptionError, InvalidArgumentError};
use obj_core::codec::walk::{self, Kind, Shape, Sink, TypedSink};
use obj_core::codec::wire::{put_bytes, put_datetime, put_f64, put_ivarint, put_uvarint};
use obj_core::codec::{dynamic, Datum, EnumType, Field, FieldType, PathLookup, Schema, StructType};
use obj_core::{IndexKind, IndexSpec};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType,
};
use pyo3::{intern, IntoPyObjectExt};
use std::sync::atomic::{AtomicU64, Ordering};

/// How to encode and decode one value.
#[repr(u8)]
enum Plan {
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    NoneType,
    Optional(Box<Plan>),
    List(Box<Plan>),
    Tuple(Vec<Plan>),
    Map(Box<Plan>),
    Struct(StructPlan),
    DateTime,
    Date,
    Enum(EnumPlan),
    Uuid,
    Any,
}

struct StructPlan {
    cls: Py<PyType>,
    names: Vec<Py<PyString>>,
    plans: Vec<Plan>,
    /// Called with each object loaded, after its fields are set, for model classes whose
    /// objects carry more than their fields (pydantic's bookkeeping); None for most.
    finish: Option<Py<PyAny>>,
}

struct EnumPlan {
    members: Vec<Py<PyAny>>,
    /// member → index in `members`.
    index: Py<PyDict>,
}

/// One step of the path to the value being encoded (rendered only for error messages, so
/// the encoder allocates nothing per field).
enum Seg<'a> {
    Name(&'a Py<PyString>),
    Index(usize),
    Key(String),
}

/// Where an encode error happened, outermost first.
type Path<'a> = Vec<Seg<'a>>;

fn render(path: &[Seg<'_>]) -> String {
    Python::attach(|py| {
        path.iter()
            .map(|s| match s {
                Seg::Name(n) => n.bind(py).to_string(),
                Seg::Index(i) => i.to_string(),
                Seg::Key(k) => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn encode_error(path: &[Seg<'_>], msg: String) -> PyErr {
    crate::error::invalid_value(if path.is_empty() {
        msg
    } else {
        format!("field {}: {msg}", render(path))
    })
}

/// Serial numbers tell codecs apart in the binding's caches (a class object's address can
/// be reused once it is gone; a serial cannot).
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// The compiled codec of one document class at one version.
#[pyclass(frozen, module = "obj._obj", name = "DocType")]
pub struct DocType {
    serial: u64,
    collection: String,
    version: u32,
    schema: Schema,
    root: StructPlan,
    indexes: Vec<IndexSpec>,
    /// Codecs of older versions, for lazy migration.
    history: Vec<Py<DocType>>,
    /// `cls.migrate(doc, from_version)`, when the class defines it.
    migrate: Option<Py<PyAny>>,
    /// `migrations={version: fn}`, ascending: functions on dicts that take a document
    /// stored at `version` (a class no longer in the code) to the next listed version, the
    /// last one to this class's shape.
    migrations: Vec<(u32, Py<PyAny>)>,
    /// The class this codec is the `__obj_doctype__` of (set once by `_bind`): only that
    /// class itself is a document class, not a subclass that inherits the attribute.
    owner: std::sync::OnceLock<Py<PyType>>,
}

impl DocType {
    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn index_specs(&self) -> &[IndexSpec] {
        &self.indexes
    }

    pub fn class_name(&self, py: Python<'_>) -> String {
        self.root
            .cls
            .bind(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    }

    /// The codec that decodes records written at `version`: this one, or an entry of its
    /// history (searched recursively).
    pub fn codec_for(&self, version: u32) -> Option<&DocType> {
        if version == self.version {
            return Some(self);
        }
        self.history.iter().find_map(|h| h.get().codec_for(version))
    }

    /// True when records written at `version` reach this class through `migrations`
    /// functions on dicts (no history class decodes them).
    pub fn migrates_by_function(&self, version: u32) -> bool {
        version < self.version
            && self.codec_for(version).is_none()
            && self.migrations.iter().any(|(v, _)| *v == version)
    }

    /// Migrates a document stored at `version`, decoded by name to `doc` (a dict), through
    /// the `migrations` functions from that version on, and builds this class from the
    /// result (encoded with this class's shape and decoded as any record is, so nested
    /// classes, enums and dates come out as declared and a wrong field says which).
    pub fn migrate_dict<'py>(
        &self,
        py: Python<'py>,
        version: u32,
        doc: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut doc = doc;
        let mut from = version;
        for (v, f) in self.migrations.iter().filter(|(v, _)| *v >= version) {
            doc = f.bind(py).call1((doc,))?;
            if !doc.is_instance_of::<PyDict>() {
                return Err(InvalidArgumentError::new_err(format!(
                    "{}: migrations[{v}] must return the document as a dict, got {}",
                    self.class_name(py),
                    type_name(&doc)
                )));
            }
            from = *v;
        }
        let datum = datum::to_datum(&doc, "document")?;
        let payload = dynamic::encode(&self.schema.root, &datum).map_err(|e| {
            InvalidArgumentError::new_err(format!(
                "{}: the dict migrations[{from}] returned does not fit version {}: {}",
                self.class_name(py),
                self.version,
                crate::error::to_py(e).value(py)
            ))
        })?;
        walk::read_payload(&self.root, &payload, &mut Build { py }).map_err(|e| e.0)
    }

    /// The declared type at a dotted field path (through optional nested structs).
    pub fn field_type(&self, path: &str) -> Option<&FieldType> {
        match self.schema.root.lookup(path) {
            PathLookup::Declared(ty) => Some(ty),
            _ => None,
        }
    }

    /// True when `cls` is the class this codec was bound to (not a subclass of it).
    pub fn is_owned_by(&self, cls: &Bound<'_, PyType>) -> bool {
        self.owner.get().is_some_and(|o| o.is(cls))
    }

    /// True for an instance of exactly the document class: an instance of a subclass
    /// would lose whatever the subclass adds.
    pub fn is_instance(&self, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(obj.get_type().is(self.root.cls.bind(obj.py())))
    }

    /// Encodes an instance; anything but an instance of the class is refused.
    pub fn encode_doc(&self, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        let py = obj.py();
        if !self.is_instance(obj)? {
            let subclass = obj.is_instance(self.root.cls.bind(py))?;
            return Err(InvalidArgumentError::new_err(format!(
                "expected a {} document, got {}{}",
                self.class_name(py),
                type_name(obj),
                if subclass {
                    " (a subclass that is not an @obj.document class itself: what it adds \
                     would not be stored; decorate it with @obj.document)"
                } else {
                    ""
                }
            )));
        }
        let mut out = Vec::with_capacity(64);
        let mut path = Vec::new();
        encode_struct(&self.root, obj, &mut out, &mut path, 0)?;
        Ok(out)
    }

    /// Decodes a payload written at `version`, migrating older versions to this class.
    pub fn decode_doc<'py>(
        &self,
        py: Python<'py>,
        version: u32,
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        if version == self.version {
            return walk::read_payload(&self.root, payload, &mut Build { py }).map_err(|e| e.0);
        }
        let Some(older) = self
            .history
            .iter()
            .find(|h| h.get().codec_for(version).is_some())
        else {
            return Err(unknown_version(py, self, version));
        };
        let older = older.get();
        let old = older.decode_doc(py, version, payload)?;
        let Some(migrate) = &self.migrate else {
            return Err(InvalidArgumentError::new_err(format!(
                "{} lists version {version} in history but defines no \
                 migrate(cls, doc, from_version) classmethod",
                self.class_name(py)
            )));
        };
        // The history entry migrates within its own lineage first (v1 → v2), then this
        // class takes the result from the entry's version.
        let doc = migrate.bind(py).call1((old, older.version))?;
        if !self.is_instance(&doc)? {
            return Err(InvalidArgumentError::new_err(format!(
                "{}.migrate() must return a {} instance, got {}",
                self.class_name(py),
                self.class_name(py),
                type_name(&doc)
            )));
        }
        Ok(doc)
    }
}

/// The error for a record whose version `dt` cannot decode.
pub fn unknown_version(py: Python<'_>, dt: &DocType, version: u32) -> PyErr {
    let hint = if version > dt.version {
        "it was written by a newer version of the class; read it with that class"
    } else {
        "add the class of that version to history=[...] (with a migrate classmethod)"
    };
    InvalidArgumentError::new_err(format!(
        "a {:?} document was written at version {version}, but {} (version {}) has no \
         class for that version in its history; {hint}",
        dt.collection,
        dt.class_name(py),
        dt.version
    ))
}

#[pymethods]
impl DocType {
    /// Compiles `description` (see `python/obj/document.py`) for `collection` at `version`.
    #[new]
    #[pyo3(signature = (collection, version, description, indexes, history, migrate, migrations=None))]
    fn new(
        collection: String,
        version: u32,
        description: &Bound<'_, PyAny>,
        indexes: Vec<(String, String, Vec<String>)>,
        history: Vec<Py<DocType>>,
        migrate: Option<Py<PyAny>>,
        migrations: Option<Vec<(u32, Py<PyAny>)>>,
    ) -> PyResult<Self> {
        let mut migrations = migrations.unwrap_or_default();
        migrations.sort_by_key(|(v, _)| *v);
        let (plan, ty) = compile(description, 0)?;
        let (Plan::Struct(root), FieldType::Struct(root_ty)) = (plan, ty) else {
            return Err(InvalidArgumentError::new_err(
                "a document description must be a struct",
            ));
        };
        let indexes = indexes
            .into_iter()
            .map(|(name, kind, paths)| {
                let kind = match kind.as_str() {
                    "standard" => IndexKind::Standard,
                    "unique" => IndexKind::Unique,
                    "each" => IndexKind::Each,
                    "composite" => IndexKind::Composite,
                    other => {
                        return Err(InvalidArgumentError::new_err(format!(
                            "unknown index kind {other:?}"
                        )))
                    }
                };
                Ok(IndexSpec { name, kind, paths })
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(DocType {
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            collection,
            version,
            schema: Schema {
                version,
                root: root_ty,
            },
            root,
            indexes,
            history,
            migrate,
            migrations,
            owner: std::sync::OnceLock::new(),
        })
    }

    /// The payload (of this version) as the dict a read by collection name returns.
    fn _payload_to_value<'py>(
        &self,
        py: Python<'py>,
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = obj_core::codec::dynamic::decode(&self.schema().root, payload)
            .map_err(crate::error::to_py)?;
        crate::datum::to_py(py, &d)
    }

    /// Records `cls` as the class whose `__obj_doctype__` this is (once).
    fn _bind(&self, cls: &Bound<'_, PyType>) -> PyResult<()> {
        let owner = self.owner.get_or_init(|| cls.clone().unbind());
        if !owner.is(cls) {
            return Err(InvalidArgumentError::new_err(format!(
                "this codec already belongs to {}",
                owner.bind(cls.py()).name()?
            )));
        }
        Ok(())
    }

    /// The class this codec belongs to (None before `_bind`).
    #[getter]
    fn owner<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyType>> {
        self.owner.get().map(|o| o.bind(py).clone())
    }

    #[getter(collection)]
    fn py_collection(&self) -> &str {
        &self.collection
    }

    #[getter(version)]
    fn py_version(&self) -> u32 {
        self.version
    }

    /// The document class.
    #[getter]
    fn cls<'py>(&self, py: Python<'py>) -> Bound<'py, PyType> {
        self.root.cls.bind(py).clone()
    }

    /// `(name, kind, paths)` of each declared index.
    #[getter]
    fn indexes(&self) -> Vec<(String, &'static str, Vec<String>)> {
        self.indexes
            .iter()
            .map(|s| (s.name.clone(), s.kind.name(), s.paths.clone()))
            .collect()
    }

    /// The persisted form of the schema: equal bytes mean the same shape.
    #[getter]
    fn schema_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.schema.to_bytes())
    }

    /// A readable rendering of the shape.
    fn describe(&self) -> String {
        FieldType::Struct(self.schema.root.clone()).describe()
    }

    /// Raises `InvalidArgumentError` (its message starting with `what`) unless `path` may
    /// name a field of the class's documents: each name a field of the class, or of the
    /// nested document class before it; past a `dict` or `Any` field anything goes. Used by
    /// `obj.Query` when a query is built.
    fn check_path(&self, py: Python<'_>, path: &str, what: &str) -> PyResult<()> {
        let PathLookup::Unknown { segment, inside } = self.schema.root.lookup(path) else {
            return Ok(());
        };
        let names: Vec<&str> = path.split('.').collect();
        let quote = |s: &str| Datum::Str(s.to_owned()).to_string();
        let listed = |fields: &[Field]| {
            fields
                .iter()
                .map(|f| quote(&f.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let class = self.class_name(py);
        let name = quote(names.get(segment).copied().unwrap_or_default());
        let before = quote(&names[..segment].join("."));
        Err(InvalidArgumentError::new_err(match inside {
            None => format!(
                "{what}: {class} has no field {name} (its fields: {})",
                listed(&self.schema.root.fields)
            ),
            Some(FieldType::Struct(s)) => format!(
                "{what}: field path {} of {class}: {before} has no field {name} (its \
                 fields: {})",
                quote(path),
                listed(&s.fields)
            ),
            Some(ty) => format!(
                "{what}: field path {} of {class}: {before} is a {}, which has no field {name}",
                quote(path),
                ty.describe()
            ),
        }))
    }

    /// The first difference between this shape and `other`'s, or None.
    fn difference(&self, other: &DocType) -> Option<String> {
        self.schema.difference(&other.schema)
    }

    /// Encodes an instance into its payload bytes.
    fn encode<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(obj.py(), &self.encode_doc(obj)?))
    }

    /// Decodes a payload written at `version` (migrating older versions).
    fn decode<'py>(
        &self,
        py: Python<'py>,
        version: u32,
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        self.decode_doc(py, version, payload)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<obj._obj.DocType {} {:?} version {}>",
            self.class_name(py),
            self.collection,
            self.version
        )
    }
}

/// Compiles one type description: returns the plan and the engine type.
fn compile(d: &Bound<'_, PyAny>, depth: usize) -> PyResult<(Plan, FieldType)> {
    if depth > obj_core::codec::MAX_NESTING {
        return Err(InvalidArgumentError::new_err(format!(
            "document types may nest at most {} levels",
            obj_core::codec::MAX_NESTING
        )));
    }
    let t = d
        .cast::<PyTuple>()
        .map_err(|_| InvalidArgumentError::new_err("type description must be a tuple"))?;
    let tag: String = t.get_item(0)?.extract()?;
    let arg = |i: usize| t.get_item(i);
    let inner = |i: usize| -> PyResult<(Box<Plan>, Box<FieldType>)> {
        let (p, f) = compile(&arg(i)?, depth + 1)?;
        Ok((Box::new(p), Box::new(f)))
    };
    Ok(match tag.as_str() {
        "bool" => (Plan::Bool, FieldType::Bool),
        "int" => (Plan::Int, FieldType::Int),
        "float" => (Plan::Float, FieldType::Float),
        "str" => (Plan::Str, FieldType::Str),
        "bytes" => (Plan::Bytes, FieldType::Bytes),
        "none" => (Plan::NoneType, FieldType::NoneType),
        "datetime" => (Plan::DateTime, FieldType::DateTime),
        "date" => (Plan::Date, FieldType::Date),
        "uuid" => (Plan::Uuid, FieldType::Uuid),
        "any" => (Plan::Any, FieldType::Any),
        "optional" => {
            let (p, f) = inner(1)?;
            (Plan::Optional(p), FieldType::Optional(f))
        }
        "list" => {
            let (p, f) = inner(1)?;
            (Plan::List(p), FieldType::List(f))
        }
        "dict" => {
            let (p, f) = inner(1)?;
            (Plan::Map(p), FieldType::Map(f))
        }
        "tuple" => {
            let (mut plans, mut types) = (Vec::new(), Vec::new());
            for item in arg(1)?.try_iter()? {
                let (p, f) = compile(&item?, depth + 1)?;
                plans.push(p);
                types.push(f);
            }
            (Plan::Tuple(plans), FieldType::Tuple(types))
        }
        "struct" => {
            let cls = arg(1)?.cast_into::<PyType>()?.unbind();
            let (mut names, mut plans, mut fields) = (Vec::new(), Vec::new(), Vec::new());
            for item in arg(2)?.try_iter()? {
                let (name, desc): (String, Bound<'_, PyAny>) = item?.extract()?;
                let (p, f) = compile(&desc, depth + 1)?;
                names.push(PyString::intern(d.py(), &name).unbind());
                plans.push(p);
                fields.push(Field { name, ty: f });
            }
            // (Not part of the stored shape: the schema is the fields.)
            let finish = match t.len() > 3 {
                true => Some(arg(3)?).filter(|f| !f.is_none()).map(Bound::unbind),
                false => None,
            };
            (
                Plan::Struct(StructPlan {
                    cls,
                    names,
                    plans,
                    finish,
                }),
                FieldType::Struct(StructType { fields }),
            )
        }
        "enum" => {
            let py = d.py();
            let index = PyDict::new(py);
            let (mut members, mut table) = (Vec::new(), Vec::new());
            for (i, item) in arg(2)?.try_iter()?.enumerate() {
                let (name, member): (String, Bound<'_, PyAny>) = item?.extract()?;
                let value = datum::to_datum(
                    &member.getattr(intern!(py, "value"))?,
                    &format!("enum member {name}"),
                )?;
                index.set_item(&member, i)?;
                members.push(member.unbind());
                table.push((name, value));
            }
            (
                Plan::Enum(EnumPlan {
                    members,
                    index: index.unbind(),
                }),
                FieldType::Enum(EnumType { members: table }),
            )
        }
        other => {
            return Err(InvalidArgumentError::new_err(format!(
                "unknown type tag {other:?}"
            )))
        }
    })
}

fn expected(path: &[Seg<'_>], want: &str, got: &Bound<'_, PyAny>) -> PyErr {
    encode_error(path, format!("expected {want}, got {}", type_name(got)))
}

/// Writes the fields of a struct at nesting `depth` (the fields are one deeper), counted
/// as the engine's walker counts when it reads them back.
fn encode_struct<'a>(
    s: &'a StructPlan,
    obj: &Bound<'_, PyAny>,
    out: &mut Vec<u8>,
    path: &mut Path<'a>,
    depth: usize,
) -> PyResult<()> {
    for (key, plan) in s.names.iter().zip(&s.plans) {
        let name = key.bind(obj.py());
        let value = obj.getattr(name).map_err(|_| {
            encode_error(path, format!("{} has no attribute {name}", type_name(obj)))
        })?;
        path.push(Seg::Name(key));
        encode(plan, &value, out, path, depth + 1)?;
        path.pop();
    }
    Ok(())
}

fn encode<'a>(
    plan: &'a Plan,
    v: &Bound<'_, PyAny>,
    out: &mut Vec<u8>,
    path: &mut Path<'a>,
    depth: usize,
) -> PyResult<()> {
    let py = v.py();
    if depth > obj_core::codec::MAX_NESTING {
        return Err(encode_error(path, "value nested too deeply".into()));
    }
    match plan {
        Plan::Bool => {
            let b = v.cast::<PyBool>().map_err(|_| expected(path, "bool", v))?;
            out.push(u8::from(b.is_true()));
        }
        Plan::Int => {
            if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
                return Err(expected(path, "int", v));
            }
            let i = v.extract::<i64>().map_err(|_| {
                encode_error(
                    path,
                    format!("int {v} is outside the 64-bit range [-2**63, 2**63-1]"),
                )
            })?;
            put_ivarint(out, i);
        }
        Plan::Float => {
            let f = if let Ok(f) = v.cast::<PyFloat>() {
                f.value()
            } else if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() {
                v.extract::<f64>()
                    .map_err(|_| encode_error(path, format!("int {v} is too large for a float")))?
            } else {
                return Err(expected(path, "float", v));
            };
            put_f64(out, f);
        }
        Plan::Str => {
            let s = v.cast::<PyString>().map_err(|_| expected(path, "str", v))?;
            put_bytes(out, text(s, path)?.as_bytes());
        }
        Plan::Bytes => {
            if let Ok(b) = v.cast::<PyBytes>() {
                put_bytes(out, b.as_bytes());
            } else if let Ok(b) = v.cast::<PyByteArray>() {
                put_bytes(out, &b.to_vec());
            } else {
                return Err(expected(path, "bytes", v));
            }
        }
        Plan::NoneType => {
            if !v.is_none() {
                return Err(expected(path, "None", v));
            }
        }
        Plan::Optional(inner) => {
            if v.is_none() {
                out.push(0);
            } else {
                out.push(1);
                encode(inner, v, out, path, depth + 1)?;
            }
        }
        Plan::List(inner) => {
            if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
                return Err(expected(path, "list", v));
            }
            put_uvarint(out, v.len()? as u64);
            for (i, item) in v.try_iter()?.enumerate() {
                path.push(Seg::Index(i));
                encode(inner, &item?, out, path, depth + 1)?;
                path.pop();
            }
        }
        Plan::Tuple(items) => {
            if !(v.is_instance_of::<PyTuple>() || v.is_instance_of::<PyList>()) {
                return Err(expected(path, "tuple", v));
            }
            if v.len()? != items.len() {
                return Err(encode_error(
                    path,
                    format!(
                        "expected a tuple of {} items, got {}",
                        items.len(),
                        v.len()?
                    ),
                ));
            }
            for (i, (p, item)) in items.iter().zip(v.try_iter()?).enumerate() {
                path.push(Seg::Index(i));
                encode(p, &item?, out, path, depth + 1)?;
                path.pop();
            }
        }
        Plan::Map(inner) => {
            let d = v.cast::<PyDict>().map_err(|_| expected(path, "dict", v))?;
            put_uvarint(out, d.len() as u64);
            for (k, item) in d.iter() {
                let k = k.cast::<PyString>().map_err(|_| {
                    encode_error(
                        path,
                        format!("dict keys must be str, got {}", type_name(&k)),
                    )
                })?;
                let key = text(k, path)?;
                put_bytes(out, key.as_bytes());
                path.push(Seg::Key(key.into_owned()));
                encode(inner, &item, out, path, depth + 1)?;
                path.pop();
            }
        }
        Plan::Struct(s) => {
            let cls = s.cls.bind(py);
            if !v.get_type().is(cls) {
                let want = cls.name()?.to_string();
                if v.is_instance(cls)? {
                    return Err(encode_error(
                        path,
                        format!(
                            "expected {want}, got {} (a subclass: what it adds would not be \
                             stored; declare the field with that class)",
                            type_name(v)
                        ),
                    ));
                }
                return Err(expected(path, &want, v));
            }
            encode_struct(s, v, out, path, depth)?;
        }
        Plan::DateTime => {
            if !v.is_instance(datum::types(py)?.datetime.bind(py))? {
                return Err(expected(path, "datetime", v));
            }
            let (micros, offset) = datum::datetime_parts(v)?;
            put_datetime(out, micros, offset);
        }
        Plan::Date => {
            let t = datum::types(py)?;
            if !v.is_instance(t.date.bind(py))? || v.is_instance(t.datetime.bind(py))? {
                return Err(expected(path, "date", v));
            }
            put_ivarint(out, i64::from(datum::date_days(v)?));
        }
        Plan::Enum(e) => {
            let index = e.index.bind(py);
            let i = index
                .get_item(v)
                .ok()
                .flatten()
                .ok_or_else(|| expected(path, "a member of the declared Enum", v))?;
            put_uvarint(out, i.extract::<u64>()?);
        }
        Plan::Uuid => {
            if !v.is_instance(datum::types(py)?.uuid.bind(py))? {
                return Err(expected(path, "UUID", v));
            }
            out.extend_from_slice(&datum::uuid_bytes(v)?);
        }
        Plan::Any => {
            let d = datum::to_datum(v, &field_name(path))?;
            if !dynamic::nests_within(&d, depth) {
                return Err(encode_error(
                    path,
                    format!("nested deeper than {} levels", obj_core::codec::MAX_NESTING),
                ));
            }
            d.encode(out);
        }
    }
    Ok(())
}

fn text<'s>(s: &'s Bound<'_, PyString>, path: &[Seg<'_>]) -> PyResult<std::borrow::Cow<'s, str>> {
    s.to_cow().map_err(|_| {
        encode_error(
            path,
            "str is not valid UTF-8 (it has lone surrogates)".into(),
        )
    })
}

fn field_name(path: &[Seg<'_>]) -> String {
    if path.is_empty() {
        "value".into()
    } else {
        format!("field {}", render(path))
    }
}

/// The plans are a shape the engine's walker reads by, carrying what building needs: the
/// class of each struct, its interned field names, the enum members.
impl Shape for Plan {
    type Struct = StructPlan;
    type Field = Py<PyString>;
    type Enum = EnumPlan;
    type Member = Py<PyAny>;

    fn kind(&self) -> Kind<'_, Self> {
        match self {
            Plan::Bool => Kind::Bool,
            Plan::Int => Kind::Int,
            Plan::Float => Kind::Float,
            Plan::Str => Kind::Str,
            Plan::Bytes => Kind::Bytes,
            Plan::NoneType => Kind::NoneType,
            Plan::Optional(p) => Kind::Optional(p),
            Plan::List(p) => Kind::List(p),
            Plan::Tuple(ps) => Kind::Tuple(ps),
            Plan::Map(p) => Kind::Map(p),
            Plan::Struct(s) => Kind::Struct(s),
            Plan::DateTime => Kind::DateTime,
            Plan::Date => Kind::Date,
            Plan::Enum(e) => Kind::Enum(e),
            Plan::Uuid => Kind::Uuid,
            Plan::Any => Kind::Any,
        }
    }

    fn fields<'a>(s: &'a StructPlan) -> impl Iterator<Item = (&'a Py<PyString>, &'a Plan)>
    where
        Self: 'a,
    {
        s.names.iter().zip(&s.plans)
    }

    fn member(e: &EnumPlan, index: usize) -> Option<&Py<PyAny>> {
        e.members.get(index)
    }
}

/// The Python value of a dict-native payload (dicts, lists and scalars), built as the walker
/// reads it, without a `Datum` tree in between.
pub(crate) fn value_to_py<'py>(py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    walk::read_whole_value(payload, &mut Build { py }).map_err(|e| e.0)
}

/// Why building a document stopped: damage the walker found (a `CorruptionError`), or an
/// error Python raised while building.
struct Failed(PyErr);

impl From<obj_core::Error> for Failed {
    fn from(e: obj_core::Error) -> Self {
        Failed(CorruptionError::new_err(format!(
            "stored document does not decode: {e}"
        )))
    }
}

impl From<PyErr> for Failed {
    fn from(e: PyErr) -> Self {
        Failed(e)
    }
}

/// The walker's sink that builds Python objects: instances of the document classes, enum
/// members, lists, tuples, dicts and the standard-library scalars.
struct Build<'py> {
    py: Python<'py>,
}

type Built<'py> = Result<Bound<'py, PyAny>, Failed>;

impl<'py> Sink for Build<'py> {
    type Value = Bound<'py, PyAny>;
    type Error = Failed;
    type List = Bound<'py, PyList>;
    type Map = Bound<'py, PyDict>;

    fn none(&mut self) -> Built<'py> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn bool(&mut self, v: bool) -> Built<'py> {
        Ok(PyBool::new(self.py, v).to_owned().into_any())
    }
    fn int(&mut self, v: i64) -> Built<'py> {
        Ok(v.into_bound_py_any(self.py)?)
    }
    fn float(&mut self, v: f64) -> Built<'py> {
        Ok(v.into_bound_py_any(self.py)?)
    }
    fn str(&mut self, v: &str) -> Built<'py> {
        Ok(PyString::new(self.py, v).into_any())
    }
    fn bytes(&mut self, v: &[u8]) -> Built<'py> {
        Ok(PyBytes::new(self.py, v).into_any())
    }
    fn datetime(&mut self, micros: i64, offset_secs: Option<i32>) -> Built<'py> {
        Ok(datum::datetime_to_py(self.py, micros, offset_secs)?)
    }
    fn date(&mut self, days: i32) -> Built<'py> {
        Ok(datum::date_to_py(self.py, days)?)
    }
    fn uuid(&mut self, v: [u8; 16]) -> Built<'py> {
        Ok(datum::uuid_to_py(self.py, &v)?)
    }
    fn list_begin(&mut self, _len: usize) -> Result<Bound<'py, PyList>, Failed> {
        Ok(PyList::empty(self.py))
    }
    fn list_item(
        &mut self,
        list: &mut Bound<'py, PyList>,
        item: Bound<'py, PyAny>,
    ) -> Result<(), Failed> {
        Ok(list.append(item)?)
    }
    fn list_end(&mut self, list: Bound<'py, PyList>) -> Built<'py> {
        Ok(list.into_any())
    }
    fn set_end(&mut self, members: Bound<'py, PyList>) -> Built<'py> {
        Ok(pyo3::types::PySet::new(self.py, members.iter())?.into_any())
    }
    fn vector(&mut self, le: &[u8]) -> Built<'py> {
        Ok(crate::vector::Vector::from_le(le).into_bound_py_any(self.py)?)
    }
    fn map_begin(&mut self, _len: usize) -> Result<Bound<'py, PyDict>, Failed> {
        Ok(PyDict::new(self.py))
    }
    fn map_entry(
        &mut self,
        map: &mut Bound<'py, PyDict>,
        key: &str,
        value: Bound<'py, PyAny>,
    ) -> Result<(), Failed> {
        Ok(map.set_item(key, value)?)
    }
    fn map_end(&mut self, map: Bound<'py, PyDict>) -> Built<'py> {
        Ok(map.into_any())
    }
}

impl<'py> TypedSink<Plan> for Build<'py> {
    /// The object being loaded, and what to call once its fields are set.
    type Struct = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

    fn struct_begin(&mut self, s: &StructPlan) -> Result<Self::Struct, Failed> {
        let obj = new_instance(self.py, s.cls.bind(self.py))?;
        Ok((obj, s.finish.as_ref().map(|f| f.bind(self.py).clone())))
    }
    fn struct_field(
        &mut self,
        st: &mut Self::Struct,
        name: &Py<PyString>,
        value: Bound<'py, PyAny>,
    ) -> Result<(), Failed> {
        Ok(set_field(&st.0, name.bind(self.py), value)?)
    }
    fn struct_end(&mut self, (obj, finish): Self::Struct) -> Built<'py> {
        if let Some(finish) = finish {
            finish.call1((&obj,))?;
        }
        Ok(obj)
    }
    fn tuple_end(&mut self, items: Bound<'py, PyList>) -> Built<'py> {
        Ok(items.to_tuple().into_any())
    }
    fn enum_member(&mut self, member: &Py<PyAny>) -> Built<'py> {
        Ok(member.bind(self.py).clone())
    }
}

/// A new instance of `cls` without running `__new__` overrides or `__init__`: the type's
/// own allocator, which is what `object.__new__(cls)` calls.
fn new_instance<'py>(py: Python<'py>, cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
    // Safety: `cls` is a live type object; PyType_GenericAlloc returns a new reference or
    // NULL with an exception set, which from_owned_ptr_or_err turns into an error.
    unsafe {
        let obj = pyo3::ffi::PyType_GenericAlloc(cls.as_ptr().cast(), 0);
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

fn set_field(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    value: Bound<'_, PyAny>,
) -> PyResult<()> {
    // Safety: all three pointers are live Python objects owned by the caller for the call.
    // GenericSetAttr bypasses a frozen dataclass's __setattr__, as the dataclass's own
    // __init__ does through object.__setattr__, and finds __slots__ descriptors.
    let rc =
        unsafe { pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if rc != 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    Ok(())
}

/// The fields of a typed record of an older version, decoded by the schema the file stores
/// for it (its class is gone from the code; `migrations` functions take it from here).
pub(crate) fn decode_old<R: obj_core::Reader>(
    r: &R,
    collection: &str,
    value: &obj_core::Value,
) -> PyResult<Datum> {
    r.decode_stored(collection, value)
        .map_err(crate::error::to_py)?
        .ok_or_else(|| {
            CorruptionError::new_err(format!(
                "a typed record of {collection:?} decodes to nothing by its stored schema"
            ))
        })
}
