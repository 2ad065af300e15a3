//! The shape of a typed document, persisted in the catalog so a file describes itself.
//!
//! Two schemas are the same shape when their field names, order and types agree; class
//! names are not part of the shape.
//!
//! Encoding: a varint tag per type, followed by its parameters.
//!
//! | tag | type | parameters |
//! | --- | --- | --- |
//! | 0 | bool | |
//! | 1 | int (i64) | |
//! | 2 | float (f64) | |
//! | 3 | str | |
//! | 4 | bytes | |
//! | 5 | None | |
//! | 6 | Optional | inner type |
//! | 7 | list | item type |
//! | 8 | tuple | varint count, item types |
//! | 9 | dict[str, V] | value type |
//! | 10 | struct | varint count, (name str, type) per field |
//! | 11 | datetime | |
//! | 12 | date | |
//! | 13 | enum | varint count, (name str, value Datum) per member |
//! | 14 | uuid | |
//! | 15 | any (self-describing Datum) | |
//!
//! A schema record is `version varint` followed by the root struct type.
//!
//! [`Schema::to_datum`] gives the same shape as a self-describing value (for tools and for
//! export as JSON): `{"version": V, "fields": FIELDS}`, where FIELDS is a list of
//! `{"name": NAME, "type": TYPE}` and TYPE is one of the names `"bool"`, `"int"`,
//! `"float"`, `"str"`, `"bytes"`, `"None"`, `"datetime"`, `"date"`, `"uuid"`, `"any"`, or a
//! one-entry map: `{"Optional": TYPE}`, `{"list": TYPE}`, `{"tuple": [TYPE, ...]}`,
//! `{"dict": TYPE}` (str keys), `{"struct": FIELDS}`, `{"enum": [{"name": NAME, "value":
//! VALUE}, ...]}`. [`Schema::from_datum`] reads it back.

use super::datum::Datum;
use super::wire::{put_bytes, put_uvarint, WireReader};
use super::MAX_NESTING;
use crate::error::{Error, Result};

/// The declared type of a field of a typed document.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    /// `bool`.
    Bool,
    /// `int` (i64).
    Int,
    /// `float` (f64).
    Float,
    /// `str`.
    Str,
    /// `bytes`.
    Bytes,
    /// `None` (the only value of `type(None)`).
    NoneType,
    /// `T | None`.
    Optional(Box<FieldType>),
    /// `list[T]`.
    List(Box<FieldType>),
    /// A fixed-length `tuple[A, B, ...]`.
    Tuple(Vec<FieldType>),
    /// `dict[str, T]`.
    Map(Box<FieldType>),
    /// A nested dataclass.
    Struct(StructType),
    /// `datetime`.
    DateTime,
    /// `date`.
    Date,
    /// An `enum.Enum` subclass.
    Enum(EnumType),
    /// `uuid.UUID`.
    Uuid,
    /// Any dict-native value, stored self-describing.
    Any,
}

/// A named field of a struct.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field name.
    pub name: String,
    /// Its declared type.
    pub ty: FieldType,
}

/// A dataclass: its fields in declaration order (the order they are encoded in).
#[derive(Clone, Debug, PartialEq)]
pub struct StructType {
    /// The fields, in encoding order.
    pub fields: Vec<Field>,
}

/// An enum's members in declaration order; stored documents hold the member's index.
#[derive(Clone, Debug, PartialEq)]
pub struct EnumType {
    /// Member names and values, in declaration order (the index is the wire tag).
    pub members: Vec<(String, Datum)>,
}

/// The shape of one `(collection, version)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// The document class version this shape belongs to.
    pub version: u32,
    /// The top-level struct.
    pub root: StructType,
}

/// Where a dotted field path leads in a shape ([`StructType::lookup`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PathLookup<'a> {
    /// The declared type at the end of the path (`Optional`s around it removed).
    Declared(&'a FieldType),
    /// A `dict` or `Any` field on the way: any name may follow it.
    Open,
    /// Segment number `segment` (from 0) names no field: of the root when `inside` is None,
    /// else of a value of type `inside`, which the segments before it reach.
    Unknown {
        /// The segment's position in the path.
        segment: usize,
        /// The type the earlier segments reach (None: the root).
        inside: Option<&'a FieldType>,
    },
}

impl StructType {
    /// The position of field `name`, if the struct has one.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Follows a dotted path through nested structs, the way filters and sorts read
    /// fields: a `dict[str, V]` takes any key and goes on in `V`, `Any` takes anything.
    pub fn lookup(&self, path: &str) -> PathLookup<'_> {
        // None: the root struct.
        let mut at: Option<&FieldType> = None;
        for (segment, name) in path.split('.').enumerate() {
            let found = match at {
                None => self.fields.iter().find(|f| f.name == name).map(|f| &f.ty),
                Some(FieldType::Struct(s)) => {
                    s.fields.iter().find(|f| f.name == name).map(|f| &f.ty)
                }
                Some(FieldType::Map(v)) => Some(&**v),
                Some(FieldType::Any) => return PathLookup::Open,
                Some(_) => None,
            };
            let Some(mut ty) = found else {
                return PathLookup::Unknown {
                    segment,
                    inside: at,
                };
            };
            while let FieldType::Optional(inner) = ty {
                ty = inner;
            }
            at = Some(ty);
        }
        match at {
            Some(ty) => PathLookup::Declared(ty),
            None => PathLookup::Open,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.fields.len() as u64);
        for f in &self.fields {
            put_bytes(out, f.name.as_bytes());
            f.ty.encode(out);
        }
    }

    fn read(r: &mut WireReader<'_>, depth: usize) -> Result<StructType> {
        let n = r.len(2)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.str()?.to_string();
            fields.push(Field {
                name,
                ty: FieldType::read(r, depth + 1)?,
            });
        }
        Ok(StructType { fields })
    }
}

impl FieldType {
    /// Appends this type's catalog encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let tag = match self {
            FieldType::Bool => 0,
            FieldType::Int => 1,
            FieldType::Float => 2,
            FieldType::Str => 3,
            FieldType::Bytes => 4,
            FieldType::NoneType => 5,
            FieldType::Optional(_) => 6,
            FieldType::List(_) => 7,
            FieldType::Tuple(_) => 8,
            FieldType::Map(_) => 9,
            FieldType::Struct(_) => 10,
            FieldType::DateTime => 11,
            FieldType::Date => 12,
            FieldType::Enum(_) => 13,
            FieldType::Uuid => 14,
            FieldType::Any => 15,
        };
        put_uvarint(out, tag);
        match self {
            FieldType::Optional(t) | FieldType::List(t) | FieldType::Map(t) => t.encode(out),
            FieldType::Tuple(items) => {
                put_uvarint(out, items.len() as u64);
                for t in items {
                    t.encode(out);
                }
            }
            FieldType::Struct(s) => s.encode(out),
            FieldType::Enum(e) => {
                put_uvarint(out, e.members.len() as u64);
                for (name, value) in &e.members {
                    put_bytes(out, name.as_bytes());
                    value.encode(out);
                }
            }
            _ => {}
        }
    }

    /// Reads a type written by [`FieldType::encode`], refusing nesting deeper than [`crate::codec::MAX_NESTING`].
    pub fn read(r: &mut WireReader<'_>, depth: usize) -> Result<FieldType> {
        if depth > MAX_NESTING {
            return Err(Error::corrupt(format!(
                "schema nested deeper than {MAX_NESTING} levels"
            )));
        }
        Ok(match r.uvarint()? {
            0 => FieldType::Bool,
            1 => FieldType::Int,
            2 => FieldType::Float,
            3 => FieldType::Str,
            4 => FieldType::Bytes,
            5 => FieldType::NoneType,
            6 => FieldType::Optional(Box::new(Self::read(r, depth + 1)?)),
            7 => FieldType::List(Box::new(Self::read(r, depth + 1)?)),
            8 => {
                let n = r.len(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(Self::read(r, depth + 1)?);
                }
                FieldType::Tuple(items)
            }
            9 => FieldType::Map(Box::new(Self::read(r, depth + 1)?)),
            10 => FieldType::Struct(StructType::read(r, depth)?),
            11 => FieldType::DateTime,
            12 => FieldType::Date,
            13 => {
                let n = r.len(2)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.str()?.to_string();
                    members.push((name, Datum::read(r, depth + 1)?));
                }
                FieldType::Enum(EnumType { members })
            }
            14 => FieldType::Uuid,
            15 => FieldType::Any,
            tag => return Err(Error::corrupt(format!("unknown schema type tag {tag}"))),
        })
    }

    /// A short human-readable name (`list[int]`, `Optional[str]`, ...).
    pub fn describe(&self) -> String {
        match self {
            FieldType::Bool => "bool".into(),
            FieldType::Int => "int".into(),
            FieldType::Float => "float".into(),
            FieldType::Str => "str".into(),
            FieldType::Bytes => "bytes".into(),
            FieldType::NoneType => "None".into(),
            FieldType::Optional(t) => format!("Optional[{}]", t.describe()),
            FieldType::List(t) => format!("list[{}]", t.describe()),
            FieldType::Tuple(items) => {
                format!(
                    "tuple[{}]",
                    items
                        .iter()
                        .map(|t| t.describe())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            FieldType::Map(t) => format!("dict[str, {}]", t.describe()),
            FieldType::Struct(s) => format!(
                "{{{}}}",
                s.fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.ty.describe()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FieldType::DateTime => "datetime".into(),
            FieldType::Date => "date".into(),
            FieldType::Enum(e) => {
                format!(
                    "enum[{}]",
                    e.members
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            FieldType::Uuid => "uuid".into(),
            FieldType::Any => "any".into(),
        }
    }
}

impl Schema {
    /// The catalog encoding of this schema.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvarint(&mut out, u64::from(self.version));
        self.root.encode(&mut out);
        out
    }

    /// Reads a schema written by [`Schema::to_bytes`]; damage is `Error::Corruption`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Schema> {
        let mut r = WireReader::new(bytes);
        let version = u32::try_from(r.uvarint()?)
            .map_err(|_| Error::corrupt("schema version out of range"))?;
        let root = StructType::read(&mut r, 0)?;
        r.finish()?;
        Ok(Schema { version, root })
    }

    /// Describes the first difference from `other`, for error messages.
    pub fn difference(&self, other: &Schema) -> Option<String> {
        if self == other {
            return None;
        }
        let (a, b) = (&self.root.fields, &other.root.fields);
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => continue,
                (Some(x), Some(y)) => {
                    return Some(format!(
                        "field {} is `{}: {}` here but `{}: {}` in the stored schema",
                        i,
                        x.name,
                        x.ty.describe(),
                        y.name,
                        y.ty.describe()
                    ))
                }
                (Some(x), None) => {
                    return Some(format!("field `{}` is not in the stored schema", x.name))
                }
                (None, Some(y)) => {
                    return Some(format!("the stored schema has an extra field `{}`", y.name))
                }
                (None, None) => break,
            }
        }
        Some("the schemas differ".into())
    }
}

/// The types without parameters; their self-describing form is their [`FieldType::describe`]
/// name.
const SIMPLE_TYPES: [FieldType; 10] = [
    FieldType::Bool,
    FieldType::Int,
    FieldType::Float,
    FieldType::Str,
    FieldType::Bytes,
    FieldType::NoneType,
    FieldType::DateTime,
    FieldType::Date,
    FieldType::Uuid,
    FieldType::Any,
];

fn entry(key: &str, value: Datum) -> Datum {
    Datum::Map(vec![(key.to_string(), value)])
}

fn bad_form(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("schema {path}: {msg}"))
}

impl StructType {
    fn to_datum(&self) -> Datum {
        Datum::List(
            self.fields
                .iter()
                .map(|f| {
                    Datum::Map(vec![
                        ("name".into(), Datum::Str(f.name.clone())),
                        ("type".into(), f.ty.to_datum()),
                    ])
                })
                .collect(),
        )
    }

    fn from_datum(d: &Datum, path: &str, depth: usize) -> Result<StructType> {
        let Datum::List(items) = d else {
            return Err(bad_form(
                path,
                "fields must be a list of {\"name\", \"type\"} maps",
            ));
        };
        let mut fields: Vec<Field> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (name, ty) = match item {
                Datum::Map(entries) if entries.len() == 2 => (item.get("name"), item.get("type")),
                _ => (None, None),
            };
            let (Some(Datum::Str(name)), Some(ty)) = (name, ty) else {
                return Err(bad_form(
                    &at,
                    "a field must be {\"name\": str, \"type\": type}",
                ));
            };
            if fields.iter().any(|f| f.name == *name) {
                return Err(bad_form(&at, format!("field {name:?} appears twice")));
            }
            let ty = FieldType::from_datum(ty, &format!("{path}.{name}"), depth + 1)?;
            fields.push(Field {
                name: name.clone(),
                ty,
            });
        }
        Ok(StructType { fields })
    }
}

impl FieldType {
    /// The self-describing form of this type (see the module documentation).
    pub fn to_datum(&self) -> Datum {
        match self {
            FieldType::Optional(t) => entry("Optional", t.to_datum()),
            FieldType::List(t) => entry("list", t.to_datum()),
            FieldType::Tuple(ts) => entry(
                "tuple",
                Datum::List(ts.iter().map(Self::to_datum).collect()),
            ),
            FieldType::Map(t) => entry("dict", t.to_datum()),
            FieldType::Struct(s) => entry("struct", s.to_datum()),
            FieldType::Enum(e) => entry(
                "enum",
                Datum::List(
                    e.members
                        .iter()
                        .map(|(name, value)| {
                            Datum::Map(vec![
                                ("name".into(), Datum::Str(name.clone())),
                                ("value".into(), value.clone()),
                            ])
                        })
                        .collect(),
                ),
            ),
            simple => Datum::Str(simple.describe()),
        }
    }

    fn from_datum(d: &Datum, path: &str, depth: usize) -> Result<FieldType> {
        if depth > MAX_NESTING {
            return Err(bad_form(
                path,
                format!("nested deeper than {MAX_NESTING} levels"),
            ));
        }
        let expected = "a type must be a name (\"int\", \"str\", ...) or a one-entry map such as {\"list\": \"int\"}";
        let entries = match d {
            Datum::Str(name) => {
                return SIMPLE_TYPES
                    .iter()
                    .find(|t| t.describe() == *name)
                    .cloned()
                    .ok_or_else(|| bad_form(path, format!("unknown type {name:?}; {expected}")));
            }
            Datum::Map(entries) if entries.len() == 1 => entries,
            _ => return Err(bad_form(path, expected)),
        };
        let (key, arg) = (&entries[0].0, &entries[0].1);
        let inner = || Self::from_datum(arg, path, depth + 1).map(Box::new);
        Ok(match key.as_str() {
            "Optional" => FieldType::Optional(inner()?),
            "list" => FieldType::List(inner()?),
            "dict" => FieldType::Map(inner()?),
            "tuple" => {
                let Datum::List(items) = arg else {
                    return Err(bad_form(path, "a tuple's item types must be a list"));
                };
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Self::from_datum(t, &format!("{path}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                FieldType::Tuple(items)
            }
            "struct" => FieldType::Struct(StructType::from_datum(arg, path, depth)?),
            "enum" => {
                let Datum::List(items) = arg else {
                    return Err(bad_form(path, "an enum's members must be a list"));
                };
                let mut members: Vec<(String, Datum)> = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let (name, value) = match item {
                        Datum::Map(entries) if entries.len() == 2 => {
                            (item.get("name"), item.get("value"))
                        }
                        _ => (None, None),
                    };
                    let (Some(Datum::Str(name)), Some(value)) = (name, value) else {
                        return Err(bad_form(
                            &format!("{path}[{i}]"),
                            "an enum member must be {\"name\": str, \"value\": value}",
                        ));
                    };
                    members.push((name.clone(), value.clone()));
                }
                FieldType::Enum(EnumType { members })
            }
            other => {
                return Err(bad_form(
                    path,
                    format!("unknown type {other:?}; {expected}"),
                ))
            }
        })
    }
}

impl Schema {
    /// The self-describing form of this schema (see the module documentation).
    pub fn to_datum(&self) -> Datum {
        Datum::Map(vec![
            ("version".into(), Datum::Int(i64::from(self.version))),
            ("fields".into(), self.root.to_datum()),
        ])
    }

    /// Reads the form [`Schema::to_datum`] gives; anything else is `InvalidArgument` naming
    /// where it differs.
    pub fn from_datum(d: &Datum) -> Result<Schema> {
        let (version, fields) = match d {
            Datum::Map(entries) if entries.len() == 2 => (d.get("version"), d.get("fields")),
            _ => (None, None),
        };
        let (Some(Datum::Int(version)), Some(fields)) = (version, fields) else {
            return Err(Error::invalid(
                "a schema must be {\"version\": int, \"fields\": [...]}",
            ));
        };
        let version = u32::try_from(*version).map_err(|_| {
            Error::invalid(format!("schema version {version} is outside 0..=2**32-1"))
        })?;
        let root = StructType::from_datum(fields, "fields", 0)?;
        Ok(Schema { version, root })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Schema {
        Schema {
            version: 3,
            root: StructType {
                fields: vec![
                    Field {
                        name: "id".into(),
                        ty: FieldType::Int,
                    },
                    Field {
                        name: "tags".into(),
                        ty: FieldType::List(Box::new(FieldType::Str)),
                    },
                    Field {
                        name: "addr".into(),
                        ty: FieldType::Optional(Box::new(FieldType::Struct(StructType {
                            fields: vec![Field {
                                name: "city".into(),
                                ty: FieldType::Str,
                            }],
                        }))),
                    },
                    Field {
                        name: "color".into(),
                        ty: FieldType::Enum(EnumType {
                            members: vec![
                                ("RED".into(), Datum::Int(1)),
                                ("BLUE".into(), Datum::Str("b".into())),
                            ],
                        }),
                    },
                    Field {
                        name: "pair".into(),
                        ty: FieldType::Tuple(vec![FieldType::Float, FieldType::Bytes]),
                    },
                    Field {
                        name: "m".into(),
                        ty: FieldType::Map(Box::new(FieldType::Any)),
                    },
                ],
            },
        }
    }

    #[test]
    fn schema_round_trip_and_difference() {
        let s = sample();
        let bytes = s.to_bytes();
        assert_eq!(Schema::from_bytes(&bytes).unwrap(), s);
        for cut in 0..bytes.len() {
            assert!(Schema::from_bytes(&bytes[..cut]).is_err());
        }
        let mut other = s.clone();
        other.root.fields[1].ty = FieldType::List(Box::new(FieldType::Int));
        let msg = s.difference(&other).unwrap();
        assert!(
            msg.contains("tags") && msg.contains("list[str]") && msg.contains("list[int]"),
            "{msg}"
        );
        assert_eq!(s.difference(&s), None);
    }

    #[test]
    fn self_describing_form_round_trips() {
        let s = sample();
        assert_eq!(Schema::from_datum(&s.to_datum()).unwrap(), s);
        let simple = StructType {
            fields: SIMPLE_TYPES
                .iter()
                .enumerate()
                .map(|(i, t)| Field {
                    name: format!("f{i}"),
                    ty: t.clone(),
                })
                .collect(),
        };
        let s = Schema {
            version: u32::MAX,
            root: simple,
        };
        let d = s.to_datum();
        assert_eq!(Schema::from_datum(&d).unwrap(), s);
        // Readable names: the ones error messages use.
        let types: Vec<Datum> = SIMPLE_TYPES.iter().map(FieldType::to_datum).collect();
        assert_eq!(types[5], Datum::Str("None".into()));
        assert_eq!(
            FieldType::List(Box::new(FieldType::Int)).to_datum(),
            Datum::Map(vec![("list".into(), Datum::Str("int".into()))])
        );
    }

    #[test]
    fn malformed_forms_are_refused_naming_where() {
        let good = sample().to_datum();
        let refused = |d: Datum, needle: &str| match Schema::from_datum(&d) {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("{other:?}"),
        };
        let with_fields = |fields: Datum| {
            Datum::Map(vec![
                ("version".into(), Datum::Int(1)),
                ("fields".into(), fields),
            ])
        };
        let one = |name: &str, ty: Datum| {
            with_fields(Datum::List(vec![Datum::Map(vec![
                ("name".into(), Datum::Str(name.into())),
                ("type".into(), ty),
            ])]))
        };
        refused(Datum::Null, "a schema must be");
        refused(
            Datum::Map(vec![("version".into(), Datum::Int(1))]),
            "a schema must be",
        );
        refused(
            Datum::Map(vec![
                ("version".into(), Datum::Int(-1)),
                ("fields".into(), Datum::List(vec![])),
            ]),
            "version -1",
        );
        refused(with_fields(Datum::Str("x".into())), "schema fields:");
        refused(with_fields(Datum::List(vec![Datum::Int(1)])), "fields[0]");
        refused(
            one("a", Datum::Str("integer".into())),
            "fields.a: unknown type \"integer\"",
        );
        refused(
            one("a", entry("list", Datum::Str("nope".into()))),
            "unknown type \"nope\"",
        );
        refused(
            one("a", entry("set", Datum::Str("int".into()))),
            "unknown type \"set\"",
        );
        refused(
            one("a", entry("tuple", Datum::Str("int".into()))),
            "must be a list",
        );
        refused(
            one("a", entry("enum", Datum::List(vec![Datum::Int(1)]))),
            "enum member",
        );
        let twice = Datum::Map(vec![
            ("name".into(), Datum::Str("a".into())),
            ("type".into(), Datum::Str("int".into())),
        ]);
        refused(
            with_fields(Datum::List(vec![twice.clone(), twice])),
            "appears twice",
        );
        let mut deep = Datum::Str("int".into());
        for _ in 0..100 {
            deep = entry("list", deep);
        }
        refused(one("a", deep), "nested deeper");
        assert!(Schema::from_datum(&good).is_ok());
    }

    #[test]
    fn paths_resolve_through_nested_structs_and_dicts() {
        let s = sample();
        let root = &s.root;
        assert_eq!(root.lookup("id"), PathLookup::Declared(&FieldType::Int));
        assert_eq!(
            root.lookup("addr.city"),
            PathLookup::Declared(&FieldType::Str)
        );
        assert!(matches!(
            root.lookup("addr"),
            PathLookup::Declared(FieldType::Struct(_))
        ));
        assert_eq!(
            root.lookup("nope"),
            PathLookup::Unknown {
                segment: 0,
                inside: None
            }
        );
        assert!(matches!(
            root.lookup("addr.zip"),
            PathLookup::Unknown {
                segment: 1,
                inside: Some(FieldType::Struct(_))
            }
        ));
        // A name of the root is not a name of a nested value.
        assert_eq!(
            root.lookup("id.tags"),
            PathLookup::Unknown {
                segment: 1,
                inside: Some(&FieldType::Int)
            }
        );
        assert_eq!(root.lookup("m.anything.deeper"), PathLookup::Open);
    }
}
