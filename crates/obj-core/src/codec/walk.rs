//! The one reader of typed (positional) payloads and of the self-describing values inside
//! them (`Any` fields) and beside them (dict-native documents).
//!
//! As serde splits a Deserializer from its Visitor, the walker reads and checks the bytes
//! by a [`Shape`] and reports what it found to a sink; the sink decides what to build. The
//! engine's [`Datum`](super::Datum) tree, the binding's Python objects and the passes over
//! fields nobody asked for ([`Pass`]) are sinks. Everything is generic (static dispatch), so
//! each shape/sink pairing compiles to its own loop with nothing allocated by the walker.
//!
//! What the walker checks, whatever the sink: lengths and counts against the bytes left
//! (and zero-sized items against the payload's budget), varints, bool bytes, date and
//! offset ranges, enum member indexes, the value tags of `Any`, nesting, and (in
//! [`read_payload`]) trailing bytes; UTF-8 too unless the sink says it does not need it
//! ([`Sink::CHECKS`]). Every failure is [`Error::Corruption`].
//!
//! Nesting: the root struct is depth 0 and every value inside a container one deeper; an
//! `Any` value sits at the depth of its field (its tag is not a level), as a dict-native
//! document's fields sit at depth 1. Deeper than [`MAX_NESTING`] is refused.
//! `dynamic::encode` and the binding's encoder refuse exactly what this refuses.

use super::wire::WireReader;
use super::MAX_NESTING;
use crate::error::{Error, Result};

/// What a value of a type is, as the walker needs to know it: the payload format per kind
/// is in `codec::dynamic`.
pub enum Kind<'a, N: Shape> {
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `float`.
    Float,
    /// `str`.
    Str,
    /// `bytes`.
    Bytes,
    /// `None`.
    NoneType,
    /// `T | None`.
    Optional(&'a N),
    /// `list[T]`.
    List(&'a N),
    /// A fixed-length tuple.
    Tuple(&'a [N]),
    /// `dict[str, T]`.
    Map(&'a N),
    /// A nested struct.
    Struct(&'a N::Struct),
    /// `datetime`.
    DateTime,
    /// `date`.
    Date,
    /// An enum.
    Enum(&'a N::Enum),
    /// `uuid.UUID`.
    Uuid,
    /// A self-describing value.
    Any,
}

/// A tree of types the walker can read by: the engine's [`FieldType`](super::FieldType),
/// or a sink's own compiled copy of it that carries what the sink needs at each node (the
/// binding's classes and interned field names).
pub trait Shape: Sized {
    /// A struct's fields.
    type Struct;
    /// What a sink is told about a field besides its value (its name).
    type Field;
    /// An enum's members.
    type Enum;
    /// One member of an enum.
    type Member;

    /// What this node is.
    fn kind(&self) -> Kind<'_, Self>;
    /// The fields of a struct, in payload order.
    fn fields<'a>(s: &'a Self::Struct) -> impl Iterator<Item = (&'a Self::Field, &'a Self)>
    where
        Self: 'a;
    /// The member at `index`, if there is one.
    fn member(e: &Self::Enum, index: usize) -> Option<&Self::Member>;
}

/// Receives the values of the self-describing encoding; [`TypedSink`] adds what only typed
/// payloads have. Containers are built in three steps (`*_begin`, one call per item,
/// `*_end`), so a sink keeps no stack of its own.
pub trait Sink {
    /// What the sink builds for one value.
    type Value;
    /// The walker's errors become this through `From`.
    type Error: From<Error>;
    /// A list being built.
    type List;
    /// A map being built.
    type Map;

    /// False for a sink that only moves past values: strings and keys are then not checked
    /// for UTF-8 and the sink is handed `""` for them.
    const CHECKS: bool = true;

    /// None.
    fn none(&mut self) -> Result<Self::Value, Self::Error>;
    /// A bool.
    fn bool(&mut self, v: bool) -> Result<Self::Value, Self::Error>;
    /// An int.
    fn int(&mut self, v: i64) -> Result<Self::Value, Self::Error>;
    /// A float.
    fn float(&mut self, v: f64) -> Result<Self::Value, Self::Error>;
    /// A str.
    fn str(&mut self, v: &str) -> Result<Self::Value, Self::Error>;
    /// A byte string.
    fn bytes(&mut self, v: &[u8]) -> Result<Self::Value, Self::Error>;
    /// Microseconds since the epoch (of UTC when there is an offset) and the offset.
    fn datetime(
        &mut self,
        micros: i64,
        offset_secs: Option<i32>,
    ) -> Result<Self::Value, Self::Error>;
    /// Days since 1970-01-01.
    fn date(&mut self, days: i32) -> Result<Self::Value, Self::Error>;
    /// A UUID's bytes.
    fn uuid(&mut self, v: [u8; 16]) -> Result<Self::Value, Self::Error>;

    /// A list (or tuple) of `len` items; `len` is plausible for the bytes left.
    fn list_begin(&mut self, len: usize) -> Result<Self::List, Self::Error>;
    /// One more item of `list`.
    fn list_item(&mut self, list: &mut Self::List, item: Self::Value) -> Result<(), Self::Error>;
    /// The finished list.
    fn list_end(&mut self, list: Self::List) -> Result<Self::Value, Self::Error>;
    /// A finished set, its members gathered as a list's items are (`list_begin`,
    /// `list_item`).
    fn set_end(&mut self, members: Self::List) -> Result<Self::Value, Self::Error>;
    /// A vector of 32-bit floats, as its `4 * len` little-endian bytes.
    fn vector(&mut self, le: &[u8]) -> Result<Self::Value, Self::Error>;

    /// A map of `len` entries with str keys, in stored order.
    fn map_begin(&mut self, len: usize) -> Result<Self::Map, Self::Error>;
    /// One more entry of `map`.
    fn map_entry(
        &mut self,
        map: &mut Self::Map,
        key: &str,
        value: Self::Value,
    ) -> Result<(), Self::Error>;
    /// The finished map.
    fn map_end(&mut self, map: Self::Map) -> Result<Self::Value, Self::Error>;
}

/// Receives a typed payload read by shape `N`.
pub trait TypedSink<N: Shape>: Sink {
    /// A struct being built.
    type Struct;

    /// A struct starts.
    fn struct_begin(&mut self, s: &N::Struct) -> Result<Self::Struct, Self::Error>;
    /// One more field of `st`.
    fn struct_field(
        &mut self,
        st: &mut Self::Struct,
        field: &N::Field,
        value: Self::Value,
    ) -> Result<(), Self::Error>;
    /// The finished struct.
    fn struct_end(&mut self, st: Self::Struct) -> Result<Self::Value, Self::Error>;
    /// A tuple, its items gathered as a list's are.
    fn tuple_end(&mut self, items: Self::List) -> Result<Self::Value, Self::Error>;
    /// The member an enum value names.
    fn enum_member(&mut self, member: &N::Member) -> Result<Self::Value, Self::Error>;
}

/// Reads a whole typed payload of the root struct `root`; trailing bytes are damage.
pub fn read_payload<N: Shape, S: TypedSink<N>>(
    root: &N::Struct,
    payload: &[u8],
    sink: &mut S,
) -> Result<S::Value, S::Error> {
    let mut r = WireReader::new(payload);
    let v = read_struct(root, &mut r, 0, sink)?;
    r.finish()?;
    Ok(v)
}

/// Reads the fields of a struct at `depth` (the fields are one deeper).
pub fn read_struct<N: Shape, S: TypedSink<N>>(
    s: &N::Struct,
    r: &mut WireReader<'_>,
    depth: usize,
    sink: &mut S,
) -> Result<S::Value, S::Error> {
    let mut st = sink.struct_begin(s)?;
    for (field, ty) in N::fields(s) {
        let v = read_typed(ty, r, depth + 1, sink)?;
        sink.struct_field(&mut st, field, v)?;
    }
    sink.struct_end(st)
}

/// Reads one value of type `ty` at nesting `depth`.
pub fn read_typed<N: Shape, S: TypedSink<N>>(
    ty: &N,
    r: &mut WireReader<'_>,
    depth: usize,
    sink: &mut S,
) -> Result<S::Value, S::Error> {
    if depth > MAX_NESTING {
        return Err(
            Error::corrupt(format!("document nested deeper than {MAX_NESTING} levels")).into(),
        );
    }
    match ty.kind() {
        Kind::Bool => sink.bool(r.bool()?),
        Kind::Int => sink.int(r.ivarint()?),
        Kind::Float => sink.float(r.f64()?),
        Kind::Str => sink.str(text::<S>(r)?),
        Kind::Bytes => sink.bytes(r.bytes()?),
        Kind::NoneType => sink.none(),
        Kind::Optional(t) => {
            if r.bool()? {
                read_typed(t, r, depth + 1, sink)
            } else {
                sink.none()
            }
        }
        Kind::List(t) => {
            let n = r.len(min_size(t))?;
            let mut list = sink.list_begin(n)?;
            for _ in 0..n {
                let v = read_typed(t, r, depth + 1, sink)?;
                sink.list_item(&mut list, v)?;
            }
            sink.list_end(list)
        }
        Kind::Tuple(ts) => {
            let mut list = sink.list_begin(ts.len())?;
            for t in ts {
                let v = read_typed(t, r, depth + 1, sink)?;
                sink.list_item(&mut list, v)?;
            }
            sink.tuple_end(list)
        }
        Kind::Map(t) => {
            let n = r.len(1 + min_size(t))?;
            let mut map = sink.map_begin(n)?;
            for _ in 0..n {
                let key = text::<S>(r)?;
                let v = read_typed(t, r, depth + 1, sink)?;
                sink.map_entry(&mut map, key, v)?;
            }
            sink.map_end(map)
        }
        Kind::Struct(s) => read_struct(s, r, depth, sink),
        Kind::DateTime => {
            let (micros, offset_secs) = r.datetime()?;
            sink.datetime(micros, offset_secs)
        }
        Kind::Date => sink.date(r.date()?),
        Kind::Enum(e) => {
            let i = r.uvarint()?;
            let member = usize::try_from(i)
                .ok()
                .and_then(|i| N::member(e, i))
                .ok_or_else(|| Error::corrupt(format!("enum member index {i} out of range")))?;
            sink.enum_member(member)
        }
        Kind::Uuid => sink.uuid(r.uuid()?),
        Kind::Any => read_value(r, depth, sink),
    }
}

/// Reads a whole payload that is one self-describing value (a dict-native document);
/// trailing bytes are damage.
pub fn read_whole_value<S: Sink>(bytes: &[u8], sink: &mut S) -> Result<S::Value, S::Error> {
    let mut r = WireReader::new(bytes);
    let v = read_value(&mut r, 0, sink)?;
    r.finish()?;
    Ok(v)
}

/// Reads one self-describing value (format in `codec::datum`) at nesting `depth`.
pub fn read_value<S: Sink>(
    r: &mut WireReader<'_>,
    depth: usize,
    sink: &mut S,
) -> Result<S::Value, S::Error> {
    if depth > MAX_NESTING {
        return Err(
            Error::corrupt(format!("value nested deeper than {MAX_NESTING} levels")).into(),
        );
    }
    match r.uvarint()? {
        0 => sink.none(),
        1 => sink.bool(r.bool()?),
        2 => sink.int(r.ivarint()?),
        3 => sink.float(r.f64()?),
        4 => sink.str(text::<S>(r)?),
        5 => sink.bytes(r.bytes()?),
        6 => {
            let n = r.len(1)?;
            let mut list = sink.list_begin(n)?;
            for _ in 0..n {
                let v = read_value(r, depth + 1, sink)?;
                sink.list_item(&mut list, v)?;
            }
            sink.list_end(list)
        }
        7 => {
            let n = r.len(2)?;
            let mut map = sink.map_begin(n)?;
            for _ in 0..n {
                let key = text::<S>(r)?;
                let v = read_value(r, depth + 1, sink)?;
                sink.map_entry(&mut map, key, v)?;
            }
            sink.map_end(map)
        }
        8 => {
            let (micros, offset_secs) = r.datetime()?;
            sink.datetime(micros, offset_secs)
        }
        9 => sink.date(r.date()?),
        10 => sink.uuid(r.uuid()?),
        11 => {
            let n = r.len(1)?;
            let mut members = sink.list_begin(n)?;
            // Members are all numbers (tags 2, 3), all str (4) or all bytes (5).
            let class = |tag: Option<u8>| match tag {
                Some(2 | 3) => Some(0),
                Some(t @ (4 | 5)) => Some(t),
                _ => None,
            };
            let mut first = None;
            for _ in 0..n {
                let c = class(r.peek());
                if c.is_none() || (first.is_some() && c != first) {
                    return Err(Error::corrupt(
                        "a set member that is not a str, bytes or number like the others",
                    )
                    .into());
                }
                first = c;
                let v = read_value(r, depth + 1, sink)?;
                sink.list_item(&mut members, v)?;
            }
            sink.set_end(members)
        }
        12 => {
            let n = r.len(4)?;
            sink.vector(r.take(4 * n)?)
        }
        tag => Err(Error::corrupt(format!("unknown value tag {tag}")).into()),
    }
}

/// A string or key: checked UTF-8, or (for a sink that does not check) only its bounds.
fn text<'a, S: Sink>(r: &mut WireReader<'a>) -> Result<&'a str> {
    if S::CHECKS {
        r.str()
    } else {
        r.bytes().map(|_| "")
    }
}

/// The fewest bytes a value of this type can take (for plausibility checks on counts).
pub fn min_size<N: Shape>(ty: &N) -> usize {
    match ty.kind() {
        Kind::NoneType => 0,
        Kind::Tuple(ts) => ts.iter().map(min_size).sum(),
        Kind::Struct(s) => N::fields(s).map(|(_, t)| min_size(t)).sum(),
        Kind::Float => 8,
        Kind::Uuid => 16,
        _ => 1,
    }
}

/// A sink that builds nothing: it moves past values the caller does not want. With
/// `CHECKS` it still accepts only what a building sink would (UTF-8 included); without, it
/// leaves out the UTF-8 check, for stored payloads that were checked when written.
pub struct Pass<const CHECKS: bool>;

impl<const C: bool> Sink for Pass<C> {
    type Value = ();
    type Error = Error;
    type List = ();
    type Map = ();

    const CHECKS: bool = C;

    fn none(&mut self) -> Result<()> {
        Ok(())
    }
    fn bool(&mut self, _: bool) -> Result<()> {
        Ok(())
    }
    fn int(&mut self, _: i64) -> Result<()> {
        Ok(())
    }
    fn float(&mut self, _: f64) -> Result<()> {
        Ok(())
    }
    fn str(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
    fn bytes(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn datetime(&mut self, _: i64, _: Option<i32>) -> Result<()> {
        Ok(())
    }
    fn date(&mut self, _: i32) -> Result<()> {
        Ok(())
    }
    fn uuid(&mut self, _: [u8; 16]) -> Result<()> {
        Ok(())
    }
    fn list_begin(&mut self, _: usize) -> Result<()> {
        Ok(())
    }
    fn list_item(&mut self, _: &mut (), _: ()) -> Result<()> {
        Ok(())
    }
    fn list_end(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
    fn set_end(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
    fn vector(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn map_begin(&mut self, _: usize) -> Result<()> {
        Ok(())
    }
    fn map_entry(&mut self, _: &mut (), _: &str, _: ()) -> Result<()> {
        Ok(())
    }
    fn map_end(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
}

impl<N: Shape, const C: bool> TypedSink<N> for Pass<C> {
    type Struct = ();

    fn struct_begin(&mut self, _: &N::Struct) -> Result<()> {
        Ok(())
    }
    fn struct_field(&mut self, _: &mut (), _: &N::Field, _: ()) -> Result<()> {
        Ok(())
    }
    fn struct_end(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
    fn tuple_end(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
    fn enum_member(&mut self, _: &N::Member) -> Result<()> {
        Ok(())
    }
}
