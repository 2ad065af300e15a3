//! Reading typed (positional) payloads by their schema.
//!
//! Payload encoding, per [`FieldType`]: bool = u8; int = zigzag varint; float = f64 LE;
//! str/bytes = varint length + bytes; None = nothing; Optional = u8 0/1 + value; list =
//! varint count + items; tuple = items; dict = varint count + (str key, value) pairs;
//! struct = fields in order; datetime/date/uuid as in the Datum codec (without its tag);
//! enum = varint member index; any = a tagged Datum.

use super::datum::Datum;
use super::schema::{FieldType, StructType};
use super::wire::WireReader;
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
    use crate::codec::schema::Field;
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
}
