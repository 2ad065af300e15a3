//! Reading typed (positional) payloads by their schema, and writing them from a [`Datum`].
//!
//! Payload encoding, per [`FieldType`]: bool = u8; int = zigzag varint; float = f64 LE;
//! str/bytes = varint length + bytes; None = nothing; Optional = u8 0/1 + value; list =
//! varint count + items; tuple = items; dict = varint count + (str key, value) pairs;
//! struct = fields in order; datetime/date/uuid as in the Datum codec (without its tag);
//! enum = varint member index; any = a tagged Datum.

use super::datum::Datum;
use super::schema::{FieldType, StructType};
use super::wire::{put_bytes, put_datetime, put_f64, put_ivarint, put_uvarint, WireReader};
use super::MAX_NESTING;
use crate::error::{Error, Result};

/// Decodes a typed payload into a map of field name → value.
pub fn decode(root: &StructType, payload: &[u8]) -> Result<Datum> {
    let mut r = WireReader::new(payload);
    let d = read_struct(root, &mut r, 0)?;
    r.finish()?;
    Ok(d)
}

/// Decodes only the top-level fields named in `heads` (the first component of each path a
/// caller needs), skipping the others without building them; the result is a map of just
/// those fields. It stops after the last wanted field (for stored, already valid payloads).
pub fn decode_fields(root: &StructType, payload: &[u8], heads: &[&str]) -> Result<Datum> {
    decode_some(root, payload, heads, Pass::Skip)
}

/// Like [`decode_fields`], but the fields it does not build are still checked as strictly
/// as [`decode`] would (UTF-8, ranges, enum members, trailing bytes): a payload this accepts
/// is one `decode` accepts. For validating a new document while reading only the fields
/// its indexes need.
pub fn decode_fields_strict(root: &StructType, payload: &[u8], heads: &[&str]) -> Result<Datum> {
    decode_some(root, payload, heads, Pass::Check)
}

/// How [`pass`] moves over a value it does not build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Bounds only: lengths and counts must fit the payload.
    Skip,
    /// Everything [`read`] checks (UTF-8, ranges, enum members); the rare kinds are read
    /// and dropped.
    Check,
}

fn decode_some(root: &StructType, payload: &[u8], heads: &[&str], how: Pass) -> Result<Datum> {
    let mut r = WireReader::new(payload);
    let mut entries = Vec::new();
    let wanted = |name: &str| heads.contains(&name);
    // Skipping stops after the last wanted field; checking walks to the end.
    let stop = match how {
        Pass::Skip => root
            .fields
            .iter()
            .rposition(|f| wanted(&f.name))
            .map_or(0, |i| i + 1),
        Pass::Check => root.fields.len(),
    };
    for f in &root.fields[..stop] {
        if wanted(&f.name) {
            entries.push((f.name.clone(), read(&f.ty, &mut r, 1)?));
        } else {
            pass(&f.ty, &mut r, 1, how)?;
        }
    }
    if how == Pass::Check {
        r.finish()?;
    }
    Ok(Datum::Map(entries))
}

/// Moves past one value without building it (the common kinds, at least).
fn pass(ty: &FieldType, r: &mut WireReader<'_>, depth: usize, how: Pass) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(Error::corrupt(format!(
            "document nested deeper than {MAX_NESTING} levels"
        )));
    }
    let strict = how == Pass::Check;
    match ty {
        FieldType::Bool => {
            r.bool()?;
        }
        FieldType::Int if strict => {
            r.ivarint()?;
        }
        FieldType::Int => {
            r.uvarint()?;
        }
        FieldType::Float => {
            r.take(8)?;
        }
        FieldType::Str if strict => {
            r.str()?;
        }
        FieldType::Str | FieldType::Bytes => {
            r.bytes()?;
        }
        FieldType::NoneType => {}
        FieldType::Optional(t) => {
            if r.bool()? {
                pass(t, r, depth + 1, how)?;
            }
        }
        FieldType::List(t) => {
            for _ in 0..r.len(min_size(t))? {
                pass(t, r, depth + 1, how)?;
            }
        }
        FieldType::Tuple(ts) => {
            for t in ts {
                pass(t, r, depth + 1, how)?;
            }
        }
        FieldType::Map(t) => {
            for _ in 0..r.len(1 + min_size(t))? {
                if strict {
                    r.str()?;
                } else {
                    r.bytes()?;
                }
                pass(t, r, depth + 1, how)?;
            }
        }
        FieldType::Struct(s) => {
            for f in &s.fields {
                pass(&f.ty, r, depth + 1, how)?;
            }
        }
        FieldType::Uuid => {
            r.take(16)?;
        }
        FieldType::DateTime | FieldType::Date | FieldType::Enum(_) if strict => {
            read(ty, r, depth)?;
        }
        FieldType::Date | FieldType::Enum(_) => {
            r.uvarint()?;
        }
        FieldType::DateTime => {
            r.uvarint()?;
            if r.bool()? {
                r.uvarint()?;
            }
        }
        FieldType::Any => {
            Datum::read(r, depth + 1)?;
        }
    }
    Ok(())
}

fn read_struct(s: &StructType, r: &mut WireReader<'_>, depth: usize) -> Result<Datum> {
    let mut entries = Vec::with_capacity(s.fields.len());
    for f in &s.fields {
        entries.push((f.name.clone(), read(&f.ty, r, depth + 1)?));
    }
    Ok(Datum::Map(entries))
}

/// Reads one value of type `ty` (nesting limited by [`crate::codec::MAX_NESTING`]).
pub fn read(ty: &FieldType, r: &mut WireReader<'_>, depth: usize) -> Result<Datum> {
    if depth > MAX_NESTING {
        return Err(Error::corrupt(format!(
            "document nested deeper than {MAX_NESTING} levels"
        )));
    }
    Ok(match ty {
        FieldType::Bool => Datum::Bool(r.bool()?),
        FieldType::Int => Datum::Int(r.ivarint()?),
        FieldType::Float => Datum::Float(r.f64()?),
        FieldType::Str => Datum::Str(r.str()?.to_string()),
        FieldType::Bytes => Datum::Bytes(r.bytes()?.to_vec()),
        FieldType::NoneType => Datum::Null,
        FieldType::Optional(t) => {
            if r.bool()? {
                read(t, r, depth + 1)?
            } else {
                Datum::Null
            }
        }
        FieldType::List(t) => {
            let n = r.len(min_size(t))?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read(t, r, depth + 1)?);
            }
            Datum::List(items)
        }
        FieldType::Tuple(ts) => {
            let mut items = Vec::with_capacity(ts.len());
            for t in ts {
                items.push(read(t, r, depth + 1)?);
            }
            Datum::List(items)
        }
        FieldType::Map(t) => {
            let n = r.len(1 + min_size(t))?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.str()?.to_string();
                entries.push((k, read(t, r, depth + 1)?));
            }
            Datum::Map(entries)
        }
        FieldType::Struct(s) => read_struct(s, r, depth)?,
        FieldType::DateTime => {
            let micros = r.ivarint()?;
            let offset_secs = if r.bool()? {
                Some(
                    i32::try_from(r.ivarint()?)
                        .map_err(|_| Error::corrupt("offset out of range"))?,
                )
            } else {
                None
            };
            Datum::DateTime {
                micros,
                offset_secs,
            }
        }
        FieldType::Date => Datum::Date(
            i32::try_from(r.ivarint()?).map_err(|_| Error::corrupt("date out of range"))?,
        ),
        FieldType::Enum(e) => {
            let i = r.uvarint()?;
            let (_, value) = usize::try_from(i)
                .ok()
                .and_then(|i| e.members.get(i))
                .ok_or_else(|| Error::corrupt(format!("enum member index {i} out of range")))?;
            value.clone()
        }
        FieldType::Uuid => {
            let mut u = [0u8; 16];
            u.copy_from_slice(r.take(16)?);
            Datum::Uuid(u)
        }
        FieldType::Any => Datum::read(r, depth + 1)?,
    })
}

/// Encodes a map of field name → value into the typed payload of `root`: the inverse of
/// [`decode`]. Every field must be present (in any order) and no other key; each value must
/// be of its field's type (an int is accepted for a float field, as the Python codec does).
/// A value that does not fit is `InvalidArgument` naming the field path.
pub fn encode(root: &StructType, doc: &Datum) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    let mut path = Vec::new();
    write_struct(root, doc, &mut out, &mut path, 0)?;
    Ok(out)
}

/// The name of a value's kind, for error messages.
fn kind_of(d: &Datum) -> &'static str {
    match d {
        Datum::Null => "None",
        Datum::Bool(_) => "bool",
        Datum::Int(_) => "int",
        Datum::Float(_) => "float",
        Datum::Str(_) => "str",
        Datum::Bytes(_) => "bytes",
        Datum::List(_) => "list",
        Datum::Map(_) => "dict",
        Datum::DateTime { .. } => "datetime",
        Datum::Date(_) => "date",
        Datum::Uuid(_) => "uuid",
    }
}

fn unfit(path: &[String], msg: String) -> Error {
    if path.is_empty() {
        Error::invalid(msg)
    } else {
        Error::invalid(format!("field {}: {msg}", path.join(".")))
    }
}

fn expected(path: &[String], want: &str, got: &Datum) -> Error {
    unfit(path, format!("expected {want}, got {}", kind_of(got)))
}

fn write_struct(
    s: &StructType,
    d: &Datum,
    out: &mut Vec<u8>,
    path: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    let Datum::Map(entries) = d else {
        return Err(expected(path, "a dict of fields", d));
    };
    if let Some((extra, _)) = entries.iter().find(|(k, _)| s.field_index(k).is_none()) {
        return Err(unfit(
            path,
            format!(
                "{extra:?} is not a field of the schema ({})",
                field_names(s)
            ),
        ));
    }
    for f in &s.fields {
        let Some((_, value)) = entries.iter().find(|(k, _)| *k == f.name) else {
            return Err(unfit(path, format!("field {:?} is missing", f.name)));
        };
        path.push(f.name.clone());
        write(&f.ty, value, out, path, depth + 1)?;
        path.pop();
    }
    Ok(())
}

fn field_names(s: &StructType) -> String {
    let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
    format!("fields: {}", names.join(", "))
}

/// Writes one value at nesting `depth`, counted and bounded as [`read`] counts it.
fn write(
    ty: &FieldType,
    d: &Datum,
    out: &mut Vec<u8>,
    path: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(unfit(
            path,
            format!("nested deeper than {MAX_NESTING} levels"),
        ));
    }
    match (ty, d) {
        (FieldType::Bool, Datum::Bool(b)) => out.push(u8::from(*b)),
        (FieldType::Int, Datum::Int(i)) => put_ivarint(out, *i),
        (FieldType::Float, Datum::Float(f)) => put_f64(out, *f),
        // As the Python codec does: float(int), rounded to the nearest float.
        (FieldType::Float, Datum::Int(i)) => put_f64(out, *i as f64),
        (FieldType::Str, Datum::Str(s)) => put_bytes(out, s.as_bytes()),
        (FieldType::Bytes, Datum::Bytes(b)) => put_bytes(out, b),
        (FieldType::NoneType, Datum::Null) => {}
        (FieldType::Optional(_), Datum::Null) => out.push(0),
        (FieldType::Optional(t), _) => {
            out.push(1);
            write(t, d, out, path, depth + 1)?;
        }
        (FieldType::List(t), Datum::List(items)) => {
            put_uvarint(out, items.len() as u64);
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                write(t, item, out, path, depth + 1)?;
                path.pop();
            }
        }
        (FieldType::Tuple(ts), Datum::List(items)) => {
            if items.len() != ts.len() {
                return Err(unfit(
                    path,
                    format!(
                        "expected a tuple of {} items, got {}",
                        ts.len(),
                        items.len()
                    ),
                ));
            }
            for (i, (t, item)) in ts.iter().zip(items).enumerate() {
                path.push(i.to_string());
                write(t, item, out, path, depth + 1)?;
                path.pop();
            }
        }
        (FieldType::Map(t), Datum::Map(entries)) => {
            put_uvarint(out, entries.len() as u64);
            for (k, item) in entries {
                put_bytes(out, k.as_bytes());
                path.push(k.clone());
                write(t, item, out, path, depth + 1)?;
                path.pop();
            }
        }
        (FieldType::Struct(s), Datum::Map(_)) => write_struct(s, d, out, path, depth)?,
        (
            FieldType::DateTime,
            Datum::DateTime {
                micros,
                offset_secs,
            },
        ) => put_datetime(out, *micros, *offset_secs),
        (FieldType::Date, Datum::Date(days)) => put_ivarint(out, i64::from(*days)),
        (FieldType::Enum(e), _) => {
            let i = e.members.iter().position(|(_, v)| v == d).ok_or_else(|| {
                let names: Vec<&str> = e.members.iter().map(|(n, _)| n.as_str()).collect();
                unfit(
                    path,
                    format!(
                        "{} value {d:?} is not the value of a member of the enum ({})",
                        kind_of(d),
                        names.join(", ")
                    ),
                )
            })?;
            put_uvarint(out, i as u64);
        }
        (FieldType::Uuid, Datum::Uuid(u)) => out.extend_from_slice(u),
        (FieldType::Any, _) => {
            // Read back by `Datum::read` one level down: the same depth bound applies.
            check_depth(d, depth + 1, path)?;
            d.encode(out);
        }
        (_, _) => return Err(expected(path, &ty.describe(), d)),
    }
    Ok(())
}

/// Refuses a self-describing value that [`Datum::read`] would find nested too deeply when
/// it starts at `depth`.
fn check_depth(d: &Datum, depth: usize, path: &[String]) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(unfit(
            path,
            format!("nested deeper than {MAX_NESTING} levels"),
        ));
    }
    match d {
        Datum::List(items) => items
            .iter()
            .try_for_each(|i| check_depth(i, depth + 1, path)),
        Datum::Map(entries) => entries
            .iter()
            .try_for_each(|(_, v)| check_depth(v, depth + 1, path)),
        _ => Ok(()),
    }
}

/// The fewest bytes a value of this type can take (for plausibility checks on counts).
fn min_size(ty: &FieldType) -> usize {
    match ty {
        FieldType::NoneType => 0,
        FieldType::Tuple(ts) => ts.iter().map(min_size).sum(),
        FieldType::Struct(s) => s.fields.iter().map(|f| min_size(&f.ty)).sum(),
        FieldType::Float => 8,
        FieldType::Uuid => 16,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::schema::{EnumType, Field};
    use crate::codec::wire::{put_bytes, put_f64, put_ivarint, put_uvarint};

    #[test]
    fn decodes_positional_payload() {
        let s = StructType {
            fields: vec![
                Field {
                    name: "a".into(),
                    ty: FieldType::Int,
                },
                Field {
                    name: "b".into(),
                    ty: FieldType::Optional(Box::new(FieldType::Str)),
                },
                Field {
                    name: "c".into(),
                    ty: FieldType::List(Box::new(FieldType::Float)),
                },
            ],
        };
        let mut p = Vec::new();
        put_ivarint(&mut p, -7);
        p.push(1);
        put_bytes(&mut p, b"hi");
        put_uvarint(&mut p, 2);
        put_f64(&mut p, 1.5);
        put_f64(&mut p, f64::NAN);
        let d = decode(&s, &p).unwrap();
        assert_eq!(d.get("a"), Some(&Datum::Int(-7)));
        assert_eq!(d.get("b"), Some(&Datum::Str("hi".into())));
        assert!(matches!(d.get("c"), Some(Datum::List(v)) if v.len() == 2));
        for cut in 0..p.len() {
            assert!(decode(&s, &p[..cut]).is_err());
        }
        // A list of None claims a huge count: bounded by MAX_NESTING-free plausibility, it
        // must not allocate without limit.
        let s = StructType {
            fields: vec![Field {
                name: "n".into(),
                ty: FieldType::List(Box::new(FieldType::NoneType)),
            }],
        };
        let mut p = Vec::new();
        put_uvarint(&mut p, 3);
        assert_eq!(
            decode(&s, &p).unwrap().get("n"),
            Some(&Datum::List(vec![Datum::Null; 3]))
        );
    }

    #[test]
    fn strict_field_decode_accepts_exactly_what_decode_accepts() {
        let field = |name: &str, ty: FieldType| Field {
            name: name.into(),
            ty,
        };
        let s = StructType {
            fields: vec![
                field("id", FieldType::Int),
                field("name", FieldType::Str),
                field("tags", FieldType::List(Box::new(FieldType::Str))),
                field(
                    "extra",
                    FieldType::Map(Box::new(FieldType::Optional(Box::new(FieldType::Float)))),
                ),
            ],
        };
        let mut p = Vec::new();
        put_ivarint(&mut p, 5);
        put_bytes(&mut p, b"five");
        put_uvarint(&mut p, 2);
        put_bytes(&mut p, b"a");
        put_bytes(&mut p, b"b");
        put_uvarint(&mut p, 1);
        put_bytes(&mut p, b"k");
        p.push(1);
        put_f64(&mut p, 2.5);
        let d = decode_fields_strict(&s, &p, &["id"]).unwrap();
        assert_eq!(d, Datum::Map(vec![("id".into(), Datum::Int(5))]));
        // Every way to spoil the payload that `decode` refuses, the strict form refuses too,
        // though it builds only "id": every cut, every byte replaced by 0xff.
        let mut variants: Vec<Vec<u8>> = (0..p.len()).map(|cut| p[..cut].to_vec()).collect();
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] = 0xff;
            variants.push(q);
        }
        let mut trailing = p.clone();
        trailing.push(0);
        variants.push(trailing);
        for q in &variants {
            assert_eq!(
                decode(&s, q).is_ok(),
                decode_fields_strict(&s, q, &["id"]).is_ok(),
                "{q:?}"
            );
        }
        assert!(variants.iter().any(|q| decode(&s, q).is_err()));
    }

    fn every_type() -> (StructType, Datum) {
        let field = |name: &str, ty: FieldType| Field {
            name: name.into(),
            ty,
        };
        let s = StructType {
            fields: vec![
                field("b", FieldType::Bool),
                field("i", FieldType::Int),
                field("f", FieldType::Float),
                field("s", FieldType::Str),
                field("y", FieldType::Bytes),
                field("n", FieldType::NoneType),
                field("o", FieldType::Optional(Box::new(FieldType::Str))),
                field("p", FieldType::Optional(Box::new(FieldType::Str))),
                field("l", FieldType::List(Box::new(FieldType::Int))),
                field(
                    "t",
                    FieldType::Tuple(vec![FieldType::Float, FieldType::Bytes]),
                ),
                field(
                    "m",
                    FieldType::Map(Box::new(FieldType::Optional(Box::new(FieldType::Float)))),
                ),
                field(
                    "st",
                    FieldType::Struct(StructType {
                        fields: vec![field("city", FieldType::Str)],
                    }),
                ),
                field("dt", FieldType::DateTime),
                field("dn", FieldType::DateTime),
                field("d", FieldType::Date),
                field(
                    "e",
                    FieldType::Enum(EnumType {
                        members: vec![
                            ("RED".into(), Datum::Int(1)),
                            ("BLUE".into(), Datum::Str("b".into())),
                        ],
                    }),
                ),
                field("u", FieldType::Uuid),
                field("a", FieldType::Any),
            ],
        };
        let doc = Datum::Map(vec![
            ("b".into(), Datum::Bool(true)),
            ("i".into(), Datum::Int(i64::MIN)),
            ("f".into(), Datum::Float(f64::NEG_INFINITY)),
            ("s".into(), Datum::Str("日本".into())),
            ("y".into(), Datum::Bytes(vec![0, 255])),
            ("n".into(), Datum::Null),
            ("o".into(), Datum::Null),
            ("p".into(), Datum::Str("x".into())),
            ("l".into(), Datum::List(vec![Datum::Int(1), Datum::Int(-2)])),
            (
                "t".into(),
                Datum::List(vec![Datum::Float(0.5), Datum::Bytes(vec![])]),
            ),
            (
                "m".into(),
                Datum::Map(vec![
                    ("k".into(), Datum::Float(-0.0)),
                    ("z".into(), Datum::Null),
                ]),
            ),
            (
                "st".into(),
                Datum::Map(vec![("city".into(), Datum::Str("Oslo".into()))]),
            ),
            (
                "dt".into(),
                Datum::DateTime {
                    micros: -5,
                    offset_secs: Some(3600),
                },
            ),
            (
                "dn".into(),
                Datum::DateTime {
                    micros: 7,
                    offset_secs: None,
                },
            ),
            ("d".into(), Datum::Date(-1)),
            ("e".into(), Datum::Str("b".into())),
            ("u".into(), Datum::Uuid([9; 16])),
            (
                "a".into(),
                Datum::Map(vec![("deep".into(), Datum::List(vec![Datum::Null]))]),
            ),
        ]);
        (s, doc)
    }

    #[test]
    fn encode_is_the_inverse_of_decode() {
        let (s, doc) = every_type();
        let p = encode(&s, &doc).unwrap();
        assert_eq!(decode(&s, &p).unwrap(), doc);
        // The order of the fields given does not matter; the schema's order is written.
        let Datum::Map(mut entries) = doc.clone() else {
            unreachable!()
        };
        entries.reverse();
        assert_eq!(encode(&s, &Datum::Map(entries)).unwrap(), p);
        // An int is accepted for a float field.
        let mut ints = doc.clone();
        if let Datum::Map(entries) = &mut ints {
            entries[2].1 = Datum::Int(3);
        }
        let q = encode(&s, &ints).unwrap();
        assert_eq!(decode(&s, &q).unwrap().get("f"), Some(&Datum::Float(3.0)));
    }

    #[test]
    fn encode_gives_back_the_bytes_decode_read() {
        let (s, doc) = every_type();
        let p = encode(&s, &doc).unwrap();
        // Hand-written payloads (the one of the strict test) come back byte for byte too.
        let field = |name: &str, ty: FieldType| Field {
            name: name.into(),
            ty,
        };
        let t = StructType {
            fields: vec![
                field("id", FieldType::Int),
                field("name", FieldType::Str),
                field("tags", FieldType::List(Box::new(FieldType::Str))),
            ],
        };
        let mut q = Vec::new();
        put_ivarint(&mut q, 5);
        put_bytes(&mut q, b"five");
        put_uvarint(&mut q, 2);
        put_bytes(&mut q, b"a");
        put_bytes(&mut q, b"b");
        for (schema, payload) in [(&s, &p), (&t, &q)] {
            let decoded = decode(schema, payload).unwrap();
            assert_eq!(&encode(schema, &decoded).unwrap(), payload);
        }
    }

    #[test]
    fn encode_refuses_what_does_not_fit() {
        let (s, doc) = every_type();
        let with = |name: &str, value: Option<Datum>| {
            let Datum::Map(mut entries) = doc.clone() else {
                unreachable!()
            };
            match value {
                Some(v) => match entries.iter_mut().find(|(k, _)| k == name) {
                    Some(entry) => entry.1 = v,
                    None => entries.push((name.into(), v)),
                },
                None => entries.retain(|(k, _)| k != name),
            }
            Datum::Map(entries)
        };
        let refused = |d: Datum, needle: &str| match encode(&s, &d) {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("{other:?}"),
        };
        refused(with("i", None), "field \"i\" is missing");
        refused(with("extra", Some(Datum::Null)), "\"extra\" is not a field");
        refused(
            with("i", Some(Datum::Str("1".into()))),
            "field i: expected int, got str",
        );
        refused(
            with("b", Some(Datum::Int(1))),
            "field b: expected bool, got int",
        );
        refused(with("i", Some(Datum::Bool(true))), "expected int, got bool");
        refused(
            with("l", Some(Datum::List(vec![Datum::Int(1), Datum::Null]))),
            "field l.1: expected int, got None",
        );
        refused(
            with("t", Some(Datum::List(vec![Datum::Float(1.0)]))),
            "field t: expected a tuple of 2 items, got 1",
        );
        refused(
            with("st", Some(Datum::Map(vec![]))),
            "field st: field \"city\" is missing",
        );
        refused(with("e", Some(Datum::Int(2))), "field e: int value");
        refused(
            with("d", Some(Datum::Str("2020-01-01".into()))),
            "expected date",
        );
        refused(with("n", Some(Datum::Int(0))), "expected None");
        refused(with("u", Some(Datum::Bytes(vec![0; 16]))), "expected uuid");
        refused(Datum::List(vec![]), "expected a dict of fields, got list");
    }

    #[test]
    fn encode_accepts_exactly_the_nesting_decode_reads() {
        let s = StructType {
            fields: vec![Field {
                name: "a".into(),
                ty: FieldType::Optional(Box::new(FieldType::List(Box::new(FieldType::Any)))),
            }],
        };
        for levels in 55..70 {
            let mut value = Datum::Null;
            for _ in 0..levels {
                value = Datum::List(vec![value]);
            }
            let doc = Datum::Map(vec![("a".into(), Datum::List(vec![value.clone()]))]);
            // The payload written without any check.
            let mut p = vec![1];
            put_uvarint(&mut p, 1);
            value.encode(&mut p);
            let readable = decode(&s, &p).is_ok();
            match encode(&s, &doc) {
                Ok(q) => {
                    assert!(readable, "{levels}");
                    assert_eq!(q, p);
                }
                Err(e) => {
                    assert!(!readable, "{levels}");
                    assert!(matches!(e, Error::InvalidArgument(_)));
                }
            }
        }
    }
}
