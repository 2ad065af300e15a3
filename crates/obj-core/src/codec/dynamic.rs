//! Reading typed (positional) payloads by their schema, and writing them from a [`Datum`].
//! Reading is the walker's (`codec::walk`): this file gives it the engine's [`FieldType`] as
//! a shape and [`DatumSink`] as a sink.
//!
//! Payload encoding, per [`FieldType`]: bool = u8; int = zigzag varint; float = f64 LE;
//! str/bytes = varint length + bytes; None = nothing; Optional = u8 0/1 + value; list =
//! varint count + items; tuple = items; dict = varint count + (str key, value) pairs;
//! struct = fields in order; datetime/date/uuid as in the Datum codec (without its tag);
//! enum = varint member index; any = a tagged Datum.

use super::datum::{Datum, DatumSink};
use super::schema::{EnumType, Field, FieldType, StructType};
use super::walk::{self, Kind, Pass, Shape, TypedSink};
use super::wire::{put_bytes, put_datetime, put_f64, put_ivarint, put_uvarint, WireReader};
use super::MAX_NESTING;
use crate::error::{Error, Result};

/// Decodes a typed payload into a map of field name → value.
pub fn decode(root: &StructType, payload: &[u8]) -> Result<Datum> {
    walk::read_payload(root, payload, &mut DatumSink)
}

/// Decodes only the top-level fields named in `heads` (the first component of each path a
/// caller needs), skipping the others without building them; the result is a map of just
/// those fields. It stops after the last wanted field and does not check UTF-8 in the
/// fields it skips (for stored, already valid payloads).
pub fn decode_fields(root: &StructType, payload: &[u8], heads: &[&str]) -> Result<Datum> {
    decode_some(root, payload, heads, &mut Pass::<false>)
}

/// Like [`decode_fields`], but the fields it does not build are still checked as strictly
/// as [`decode`] would (UTF-8, ranges, enum members, trailing bytes): a payload this accepts
/// is one `decode` accepts. For validating a new document while reading only the fields
/// its indexes need.
pub fn decode_fields_strict(root: &StructType, payload: &[u8], heads: &[&str]) -> Result<Datum> {
    decode_some(root, payload, heads, &mut Pass::<true>)
}

/// Builds the wanted root fields and moves past the others with `pass`; a pass that
/// checks walks to the end, one that does not stops after the last wanted field.
fn decode_some<const CHECKS: bool>(
    root: &StructType,
    payload: &[u8],
    heads: &[&str],
    pass: &mut Pass<CHECKS>,
) -> Result<Datum> {
    let mut r = WireReader::new(payload);
    let mut entries = Vec::new();
    let wanted = |name: &str| heads.contains(&name);
    let stop = if CHECKS {
        root.fields.len()
    } else {
        root.fields
            .iter()
            .rposition(|f| wanted(&f.name))
            .map_or(0, |i| i + 1)
    };
    for f in &root.fields[..stop] {
        if wanted(&f.name) {
            entries.push((f.name.clone(), read(&f.ty, &mut r, 1)?));
        } else {
            walk::read_typed(&f.ty, &mut r, 1, pass)?;
        }
    }
    if CHECKS {
        r.finish()?;
    }
    Ok(Datum::Map(entries))
}

/// Reads one value of type `ty` at nesting `depth` into a [`Datum`].
pub fn read(ty: &FieldType, r: &mut WireReader<'_>, depth: usize) -> Result<Datum> {
    walk::read_typed(ty, r, depth, &mut DatumSink)
}

/// The engine's types are a shape the walker reads by.
impl Shape for FieldType {
    type Struct = StructType;
    type Field = Field;
    type Enum = EnumType;
    type Member = (String, Datum);

    fn kind(&self) -> Kind<'_, Self> {
        match self {
            FieldType::Bool => Kind::Bool,
            FieldType::Int => Kind::Int,
            FieldType::Float => Kind::Float,
            FieldType::Str => Kind::Str,
            FieldType::Bytes => Kind::Bytes,
            FieldType::NoneType => Kind::NoneType,
            FieldType::Optional(t) => Kind::Optional(t),
            FieldType::List(t) => Kind::List(t),
            FieldType::Tuple(ts) => Kind::Tuple(ts),
            FieldType::Map(t) => Kind::Map(t),
            FieldType::Struct(s) => Kind::Struct(s),
            FieldType::DateTime => Kind::DateTime,
            FieldType::Date => Kind::Date,
            FieldType::Enum(e) => Kind::Enum(e),
            FieldType::Uuid => Kind::Uuid,
            FieldType::Any => Kind::Any,
        }
    }

    fn fields<'a>(s: &'a StructType) -> impl Iterator<Item = (&'a Field, &'a FieldType)>
    where
        Self: 'a,
    {
        s.fields.iter().map(|f| (f, &f.ty))
    }

    fn member(e: &EnumType, index: usize) -> Option<&(String, Datum)> {
        e.members.get(index)
    }
}

/// Typed payloads become maps of field name → value; enum fields their member's value.
impl TypedSink<FieldType> for DatumSink {
    type Struct = Vec<(String, Datum)>;

    fn struct_begin(&mut self, s: &StructType) -> Result<Vec<(String, Datum)>> {
        Ok(Vec::with_capacity(s.fields.len()))
    }
    fn struct_field(
        &mut self,
        st: &mut Vec<(String, Datum)>,
        field: &Field,
        value: Datum,
    ) -> Result<()> {
        st.push((field.name.clone(), value));
        Ok(())
    }
    fn struct_end(&mut self, st: Vec<(String, Datum)>) -> Result<Datum> {
        Ok(Datum::Map(st))
    }
    fn tuple_end(&mut self, items: Vec<Datum>) -> Result<Datum> {
        Ok(Datum::List(items))
    }
    fn enum_member(&mut self, member: &(String, Datum)) -> Result<Datum> {
        Ok(member.1.clone())
    }
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
    d.type_name()
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
            if !nests_within(d, depth) {
                return Err(unfit(
                    path,
                    format!("nested deeper than {MAX_NESTING} levels"),
                ));
            }
            d.encode(out);
        }
        (_, _) => return Err(expected(path, &ty.describe(), d)),
    }
    Ok(())
}

/// True when a self-describing value stored as an `Any` field at `depth` is read back
/// within [`MAX_NESTING`] (the walker's rule: the value sits at its field's depth): what
/// the encoders accept.
pub fn nests_within(d: &Datum, depth: usize) -> bool {
    depth <= MAX_NESTING
        && match d {
            Datum::List(items) => items.iter().all(|i| nests_within(i, depth + 1)),
            Datum::Map(entries) => entries.iter().all(|(_, v)| nests_within(v, depth + 1)),
            _ => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn field(name: &str, ty: FieldType) -> Field {
        Field {
            name: name.into(),
            ty,
        }
    }

    /// The three ways of reading a payload: the full decode, the skipping partial decode
    /// and the strict one, both wanting only the last field (so the walker passes over
    /// every other field).
    fn every_read(s: &StructType, p: &[u8]) -> [Result<Datum>; 3] {
        let last = s.fields.last().map(|f| f.name.as_str()).unwrap_or_default();
        [
            decode(s, p),
            decode_fields(s, p, &[last]),
            decode_fields_strict(s, p, &[last]),
        ]
    }

    fn is_corruption(r: &Result<Datum>) -> bool {
        matches!(r, Err(Error::Corruption(_)))
    }

    #[test]
    fn every_cut_and_every_damaged_byte_is_corruption_never_a_panic() {
        let (s, doc) = every_type();
        let p = encode(&s, &doc).unwrap();
        for cut in 0..p.len() {
            for (how, got) in every_read(&s, &p[..cut]).iter().enumerate() {
                assert!(is_corruption(got), "cut {cut}, read {how}: {got:?}");
            }
        }
        let mut damaged = 0;
        for i in 0..p.len() {
            for b in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff] {
                let mut q = p.clone();
                q[i] = b;
                let [full, skip, strict] = every_read(&s, &q);
                for got in [&full, &skip, &strict] {
                    assert!(
                        got.is_ok() || is_corruption(got),
                        "byte {i} = {b:#x}: {got:?}"
                    );
                }
                // The strict pass refuses exactly what the full decode refuses; where the
                // full decode reads the payload, the skipping pass lands on the same field.
                assert_eq!(full.is_ok(), strict.is_ok(), "byte {i} = {b:#x}");
                if let Ok(d) = &full {
                    assert_eq!(skip.as_ref().ok().and_then(|f| f.get("a")), d.get("a"));
                } else {
                    damaged += 1;
                }
            }
        }
        assert!(damaged > p.len(), "{damaged}");
    }

    #[test]
    fn damage_is_corruption_saying_what_is_wrong() {
        let refused = |ty: FieldType, p: &[u8], needle: &str| {
            let s = StructType {
                fields: vec![field("x", ty)],
            };
            for got in every_read(&s, p) {
                match got {
                    Err(Error::Corruption(msg)) => assert!(msg.contains(needle), "{msg}"),
                    other => panic!("{p:?}: {other:?}"),
                }
            }
        };
        let mut big = Vec::new();
        put_ivarint(&mut big, i64::from(i32::MAX) + 1);
        refused(FieldType::Int, &[0x80], "bad varint");
        refused(FieldType::Int, &[0xff; 11], "bad varint");
        refused(FieldType::Bool, &[2], "bad bool");
        refused(
            FieldType::Optional(Box::new(FieldType::Int)),
            &[7],
            "bad bool",
        );
        refused(FieldType::Str, &[2, b'a'], "truncated");
        refused(FieldType::Float, &[0; 7], "truncated");
        refused(FieldType::Uuid, &[0; 15], "truncated");
        refused(FieldType::Str, &[2, 0xff, 0xfe], "string is not UTF-8");
        refused(
            FieldType::Map(Box::new(FieldType::Int)),
            &[1, 1, 0xff, 0],
            "string is not UTF-8",
        );
        refused(
            FieldType::List(Box::new(FieldType::Int)),
            &[5, 1],
            "sequence longer than the payload",
        );
        let e = FieldType::Enum(EnumType {
            members: vec![("A".into(), Datum::Int(1)), ("B".into(), Datum::Int(2))],
        });
        refused(e, &[2], "enum member index 2 out of range");
        refused(FieldType::Any, &[13], "unknown value tag 13");
        refused(FieldType::Date, &big, "date out of range");
        refused(
            FieldType::DateTime,
            &[&[0, 1][..], &big].concat(),
            "offset out of range",
        );
        refused(
            FieldType::Any,
            &[&[9][..], &big].concat(),
            "date out of range",
        );
        // Trailing bytes: only the reads that walk to the end see them.
        let s = StructType {
            fields: vec![field("x", FieldType::Int)],
        };
        assert!(
            matches!(decode(&s, &[2, 0]), Err(Error::Corruption(m)) if m.contains("trailing bytes"))
        );
        assert!(is_corruption(&decode_fields_strict(&s, &[2, 0], &[])));
        assert!(decode_fields(&s, &[2, 0], &["x"]).is_ok());
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_corruption_in_every_read() {
        // Typed values: the root's fields are depth 1, each Optional one deeper.
        for levels in [MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING] {
            let mut ty = FieldType::Int;
            for _ in 0..levels {
                ty = FieldType::Optional(Box::new(ty));
            }
            let s = StructType {
                fields: vec![field("x", ty), field("end", FieldType::Bool)],
            };
            let mut p = vec![1; levels];
            p.extend([0, 1]);
            let readable = levels < MAX_NESTING; // the innermost value is at depth 1 + levels
            for got in every_read(&s, &p) {
                assert_eq!(got.is_ok(), readable, "{levels}: {got:?}");
                if let Err(Error::Corruption(msg)) = got {
                    assert!(msg.contains("nested deeper than 64 levels"), "{msg}");
                }
            }
        }
        // An `Any` value sits at its field's depth, as a dict-native document's fields do;
        // both encoders refuse what the walker would.
        let s = StructType {
            fields: vec![field("x", FieldType::Any), field("end", FieldType::Bool)],
        };
        for levels in [MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING] {
            let mut value = Datum::Null;
            for _ in 0..levels {
                value = Datum::List(vec![value]);
            }
            let mut p = value.to_bytes();
            p.push(1);
            let readable = levels < MAX_NESTING; // the innermost value is at depth 1 + levels
            for got in every_read(&s, &p) {
                assert_eq!(got.is_ok(), readable, "{levels}: {got:?}");
                assert!(got.is_ok() || is_corruption(&got));
            }
            let doc = Datum::Map(vec![("x".into(), value), ("end".into(), Datum::Bool(true))]);
            assert_eq!(Datum::decode(&doc.to_bytes()).is_ok(), readable);
            assert_eq!(encode(&s, &doc).ok(), readable.then_some(p));
        }
    }

    #[test]
    fn the_skipping_pass_leaves_out_only_the_utf8_check() {
        let s = StructType {
            fields: vec![field("name", FieldType::Str), field("id", FieldType::Int)],
        };
        let p = [2, 0xff, 0xfe, 10];
        assert!(is_corruption(&decode(&s, &p)));
        assert!(is_corruption(&decode_fields_strict(&s, &p, &["id"])));
        assert_eq!(
            decode_fields(&s, &p, &["id"]).unwrap(),
            Datum::Map(vec![("id".into(), Datum::Int(5))])
        );
        // Enum members and ranges it still checks.
        let s = StructType {
            fields: vec![
                field(
                    "e",
                    FieldType::Enum(EnumType {
                        members: vec![("A".into(), Datum::Null)],
                    }),
                ),
                field("id", FieldType::Int),
            ],
        };
        assert!(is_corruption(&decode_fields(&s, &[1, 10], &["id"])));
        assert!(decode_fields(&s, &[0, 10], &["id"]).is_ok());
    }
}
