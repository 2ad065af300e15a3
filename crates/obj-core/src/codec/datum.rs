//! The self-describing Value codec and the [`Datum`] tree.
//!
//! Encoding (postcard style): a varint tag, then the content.
//!
//! | tag | variant | content |
//! | --- | --- | --- |
//! | 0 | Null | — |
//! | 1 | Bool | u8 0/1 |
//! | 2 | Int | zigzag varint |
//! | 3 | Float | f64 LE |
//! | 4 | Str | varint length, UTF-8 |
//! | 5 | Bytes | varint length, bytes |
//! | 6 | List | varint count, items |
//! | 7 | Map | varint count, (Str key, item) pairs in insertion order |
//! | 8 | DateTime | zigzag varint microseconds since 1970-01-01T00:00 (UTC when an offset is present), u8 has-offset, zigzag varint offset seconds |
//! | 9 | Date | zigzag varint days since 1970-01-01 |
//! | 10 | Uuid | 16 bytes |
//! | 11 | Set | varint count, items (all str, all bytes, or all numbers; no two equal) |
//! | 12 | Vector | varint count, count f32 LE |

use super::walk::{self, Sink};
use super::wire::WireReader;
use crate::error::{Error, Result};

/// A self-describing value: what a dict-native document holds, and what any payload can be
/// decoded into for tools, filters and indexes.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    /// None.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list (or tuple) of values.
    List(Vec<Datum>),
    /// A map with string keys, in insertion order.
    Map(Vec<(String, Datum)>),
    /// Microseconds since the Unix epoch; with an offset the instant is UTC and the offset
    /// says which local time it was written as.
    DateTime {
        /// Microseconds since the epoch (UTC when `offset_secs` is set).
        micros: i64,
        /// The UTC offset in seconds of an aware datetime; None for a naive one.
        offset_secs: Option<i32>,
    },
    /// Days since 1970-01-01.
    Date(i32),
    /// A UUID's 16 bytes.
    Uuid([u8; 16]),
    /// A set of strings, of byte strings or of numbers (DynamoDB's SS, BS, NS), in stored
    /// order; the encoders refuse mixed kinds and keep one of equal members.
    Set(Vec<Datum>),
    /// A vector of 32-bit floats (an embedding).
    Vector(Vec<f32>),
}

impl Datum {
    /// Appends the self-describing encoding of this value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Datum::Null => emit::null(out),
            Datum::Bool(b) => emit::bool(out, *b),
            Datum::Int(i) => emit::int(out, *i),
            Datum::Float(f) => emit::float(out, *f),
            Datum::Str(s) => emit::str(out, s),
            Datum::Bytes(b) => emit::bytes(out, b),
            Datum::List(items) => {
                emit::list(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Datum::Map(entries) => {
                emit::map(out, entries.len());
                for (k, v) in entries {
                    emit::map_key(out, k);
                    v.encode(out);
                }
            }
            Datum::DateTime {
                micros,
                offset_secs,
            } => emit::datetime(out, *micros, *offset_secs),
            Datum::Date(days) => emit::date(out, *days),
            Datum::Uuid(u) => emit::uuid(out, u),
            Datum::Set(items) => {
                emit::set(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Datum::Vector(v) => emit::vector(out, v),
        }
    }

    /// The self-describing encoding of this value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a whole payload; trailing bytes are damage.
    pub fn decode(bytes: &[u8]) -> Result<Datum> {
        walk::read_whole_value(bytes, &mut DatumSink)
    }

    /// Reads one value at nesting `depth`.
    pub fn read(r: &mut WireReader<'_>, depth: usize) -> Result<Datum> {
        walk::read_value(r, depth, &mut DatumSink)
    }

    /// The entry `name` of a map.
    pub fn get(&self, name: &str) -> Option<&Datum> {
        match self {
            Datum::Map(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The Python name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
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
            Datum::Uuid(_) => "UUID",
            Datum::Set(_) => "set",
            Datum::Vector(_) => "obj.Vector",
        }
    }

    /// Follows a dotted path through nested maps.
    pub fn path(&self, path: &str) -> Option<&Datum> {
        path.split('.').try_fold(self, |d, part| d.get(part))
    }
}

/// Writers of the self-describing encoding, one per kind of value: [`Datum::encode`] and
/// encoders that walk other value trees (the Python binding's, straight from a dict) call
/// them, so the tags of the table above are written in this one place.
pub mod emit {
    use crate::codec::wire::{put_bytes, put_datetime, put_f64, put_ivarint, put_uvarint};

    /// None.
    pub fn null(out: &mut Vec<u8>) {
        put_uvarint(out, 0);
    }
    /// A boolean.
    pub fn bool(out: &mut Vec<u8>, v: bool) {
        put_uvarint(out, 1);
        out.push(u8::from(v));
    }
    /// An integer.
    pub fn int(out: &mut Vec<u8>, v: i64) {
        put_uvarint(out, 2);
        put_ivarint(out, v);
    }
    /// A float.
    pub fn float(out: &mut Vec<u8>, v: f64) {
        put_uvarint(out, 3);
        put_f64(out, v);
    }
    /// A string.
    pub fn str(out: &mut Vec<u8>, v: &str) {
        put_uvarint(out, 4);
        put_bytes(out, v.as_bytes());
    }
    /// A byte string.
    pub fn bytes(out: &mut Vec<u8>, v: &[u8]) {
        put_uvarint(out, 5);
        put_bytes(out, v);
    }
    /// The head of a list of `len` items; the items follow.
    pub fn list(out: &mut Vec<u8>, len: usize) {
        put_uvarint(out, 6);
        put_uvarint(out, len as u64);
    }
    /// The head of a map of `len` entries; each follows as [`map_key`] then its value.
    pub fn map(out: &mut Vec<u8>, len: usize) {
        put_uvarint(out, 7);
        put_uvarint(out, len as u64);
    }
    /// The key of a map entry (its value follows).
    pub fn map_key(out: &mut Vec<u8>, key: &str) {
        put_bytes(out, key.as_bytes());
    }
    /// A datetime: microseconds since the epoch, UTC offset of an aware one.
    pub fn datetime(out: &mut Vec<u8>, micros: i64, offset_secs: Option<i32>) {
        put_uvarint(out, 8);
        put_datetime(out, micros, offset_secs);
    }
    /// A date: days since 1970-01-01.
    pub fn date(out: &mut Vec<u8>, days: i32) {
        put_uvarint(out, 9);
        put_ivarint(out, i64::from(days));
    }
    /// A UUID.
    pub fn uuid(out: &mut Vec<u8>, v: &[u8; 16]) {
        put_uvarint(out, 10);
        out.extend_from_slice(v);
    }
    /// The head of a set of `len` members; the members follow (see [`SetKind`]).
    pub fn set(out: &mut Vec<u8>, len: usize) {
        put_uvarint(out, 11);
        put_uvarint(out, len as u64);
    }
    /// A vector of 32-bit floats.
    pub fn vector(out: &mut Vec<u8>, v: &[f32]) {
        vector_head(out, v.len());
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    /// The head of a vector of `len` floats; `len` f32 LE follow (an encoder that holds
    /// the floats as bytes already appends them as they are).
    pub fn vector_head(out: &mut Vec<u8>, len: usize) {
        put_uvarint(out, 12);
        put_uvarint(out, len as u64);
    }

    /// What the members of a set are: the one rule every encoder applies to them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SetKind {
        /// Strings.
        Str,
        /// Byte strings.
        Bytes,
        /// Integers and floats.
        Number,
    }
}

/// The floats of a stored vector's bytes (4 per float, little-endian: what
/// [`emit::vector`] writes, and what the walker hands a sink).
pub fn floats_from_le(le: &[u8]) -> Vec<f32> {
    le.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The walker's sink that builds [`Datum`] trees (typed payloads too: `codec::dynamic`).
pub struct DatumSink;

impl Sink for DatumSink {
    type Value = Datum;
    type Error = Error;
    type List = Vec<Datum>;
    type Map = Vec<(String, Datum)>;

    fn none(&mut self) -> Result<Datum> {
        Ok(Datum::Null)
    }
    fn bool(&mut self, v: bool) -> Result<Datum> {
        Ok(Datum::Bool(v))
    }
    fn int(&mut self, v: i64) -> Result<Datum> {
        Ok(Datum::Int(v))
    }
    fn float(&mut self, v: f64) -> Result<Datum> {
        Ok(Datum::Float(v))
    }
    fn str(&mut self, v: &str) -> Result<Datum> {
        Ok(Datum::Str(v.to_owned()))
    }
    fn bytes(&mut self, v: &[u8]) -> Result<Datum> {
        Ok(Datum::Bytes(v.to_vec()))
    }
    fn datetime(&mut self, micros: i64, offset_secs: Option<i32>) -> Result<Datum> {
        Ok(Datum::DateTime {
            micros,
            offset_secs,
        })
    }
    fn date(&mut self, days: i32) -> Result<Datum> {
        Ok(Datum::Date(days))
    }
    fn uuid(&mut self, v: [u8; 16]) -> Result<Datum> {
        Ok(Datum::Uuid(v))
    }
    fn list_begin(&mut self, len: usize) -> Result<Vec<Datum>> {
        Ok(Vec::with_capacity(len))
    }
    fn list_item(&mut self, list: &mut Vec<Datum>, item: Datum) -> Result<()> {
        list.push(item);
        Ok(())
    }
    fn set_end(&mut self, members: Vec<Datum>) -> Result<Datum> {
        Ok(Datum::Set(members))
    }
    fn vector(&mut self, le: &[u8]) -> Result<Datum> {
        Ok(Datum::Vector(floats_from_le(le)))
    }
    fn list_end(&mut self, list: Vec<Datum>) -> Result<Datum> {
        Ok(Datum::List(list))
    }
    fn map_begin(&mut self, len: usize) -> Result<Vec<(String, Datum)>> {
        Ok(Vec::with_capacity(len))
    }
    fn map_entry(&mut self, map: &mut Vec<(String, Datum)>, key: &str, value: Datum) -> Result<()> {
        map.push((key.to_owned(), value));
        Ok(())
    }
    fn map_end(&mut self, map: Vec<(String, Datum)>) -> Result<Datum> {
        Ok(Datum::Map(map))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sets_and_vectors_round_trip_and_damage_is_corruption() {
        use super::super::walk::{self, Pass};
        let d = Datum::Map(vec![
            (
                "s".into(),
                Datum::Set(vec![Datum::Str("a".into()), Datum::Str("b".into())]),
            ),
            (
                "n".into(),
                Datum::Set(vec![Datum::Int(1), Datum::Float(2.5)]),
            ),
            ("e".into(), Datum::Set(vec![])),
            ("v".into(), Datum::Vector(vec![0.5, -1.25, f32::MAX])),
            ("w".into(), Datum::Vector(vec![])),
        ]);
        let bytes = d.to_bytes();
        assert_eq!(Datum::decode(&bytes).unwrap(), d);
        walk::read_whole_value(&bytes, &mut Pass::<true>).unwrap();
        // A set mixing kinds, or holding a list, is damage.
        for bad in [
            Datum::Set(vec![Datum::Int(1), Datum::Str("a".into())]),
            Datum::Set(vec![Datum::List(vec![])]),
        ] {
            assert!(matches!(
                Datum::decode(&bad.to_bytes()),
                Err(Error::Corruption(_))
            ));
        }
        // A vector longer than its bytes is damage, at every cut.
        let v = Datum::Vector(vec![1.0; 4]).to_bytes();
        for cut in 0..v.len() {
            assert!(Datum::decode(&v[..cut]).is_err(), "cut {cut}");
        }
        assert_eq!(
            d.get("v").unwrap().to_string(),
            "obj.Vector([0.5, -1.25, 3.4028235e38])"
        );
        assert_eq!(Datum::Set(vec![]).to_string(), "set()");
    }

    use super::*;

    #[test]
    fn round_trips_every_variant() {
        let d = Datum::Map(vec![
            ("n".into(), Datum::Null),
            ("b".into(), Datum::Bool(true)),
            ("i".into(), Datum::Int(i64::MIN)),
            ("f".into(), Datum::Float(-0.0)),
            ("s".into(), Datum::Str("日本".into())),
            ("y".into(), Datum::Bytes(vec![0, 255])),
            (
                "l".into(),
                Datum::List(vec![Datum::Int(1), Datum::List(vec![])]),
            ),
            ("m".into(), Datum::Map(vec![])),
            (
                "t".into(),
                Datum::DateTime {
                    micros: -5,
                    offset_secs: Some(-3600),
                },
            ),
            (
                "u".into(),
                Datum::DateTime {
                    micros: 5,
                    offset_secs: None,
                },
            ),
            ("d".into(), Datum::Date(-1)),
            ("q".into(), Datum::Uuid([7; 16])),
        ]);
        let bytes = d.to_bytes();
        assert_eq!(Datum::decode(&bytes).unwrap(), d);
        assert_eq!(
            d.path("l"),
            Some(&Datum::List(vec![Datum::Int(1), Datum::List(vec![])]))
        );
        // Every truncation is an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(Datum::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = [6u8, 1].repeat(10_000);
        bytes.push(0);
        assert!(matches!(Datum::decode(&bytes), Err(Error::Corruption(_))));
    }
}
