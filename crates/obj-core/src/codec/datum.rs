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

use super::wire::{put_bytes, put_datetime, put_f64, put_ivarint, put_uvarint, WireReader};
use super::MAX_NESTING;
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
}

impl Datum {
    /// Appends the self-describing encoding of this value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Datum::Null => put_uvarint(out, 0),
            Datum::Bool(b) => {
                put_uvarint(out, 1);
                out.push(u8::from(*b));
            }
            Datum::Int(i) => {
                put_uvarint(out, 2);
                put_ivarint(out, *i);
            }
            Datum::Float(f) => {
                put_uvarint(out, 3);
                put_f64(out, *f);
            }
            Datum::Str(s) => {
                put_uvarint(out, 4);
                put_bytes(out, s.as_bytes());
            }
            Datum::Bytes(b) => {
                put_uvarint(out, 5);
                put_bytes(out, b);
            }
            Datum::List(items) => {
                put_uvarint(out, 6);
                put_uvarint(out, items.len() as u64);
                for item in items {
                    item.encode(out);
                }
            }
            Datum::Map(entries) => {
                put_uvarint(out, 7);
                put_uvarint(out, entries.len() as u64);
                for (k, v) in entries {
                    put_bytes(out, k.as_bytes());
                    v.encode(out);
                }
            }
            Datum::DateTime {
                micros,
                offset_secs,
            } => {
                put_uvarint(out, 8);
                put_datetime(out, *micros, *offset_secs);
            }
            Datum::Date(days) => {
                put_uvarint(out, 9);
                put_ivarint(out, i64::from(*days));
            }
            Datum::Uuid(u) => {
                put_uvarint(out, 10);
                out.extend_from_slice(u);
            }
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
        let mut r = WireReader::new(bytes);
        let d = Self::read(&mut r, 0)?;
        r.finish()?;
        Ok(d)
    }

    /// Reads one value, refusing nesting deeper than [`crate::codec::MAX_NESTING`].
    pub fn read(r: &mut WireReader<'_>, depth: usize) -> Result<Datum> {
        if depth > MAX_NESTING {
            return Err(Error::corrupt(format!(
                "value nested deeper than {MAX_NESTING} levels"
            )));
        }
        Ok(match r.uvarint()? {
            0 => Datum::Null,
            1 => Datum::Bool(r.bool()?),
            2 => Datum::Int(r.ivarint()?),
            3 => Datum::Float(r.f64()?),
            4 => Datum::Str(r.str()?.to_string()),
            5 => Datum::Bytes(r.bytes()?.to_vec()),
            6 => {
                let n = r.len(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(Self::read(r, depth + 1)?);
                }
                Datum::List(items)
            }
            7 => {
                let n = r.len(2)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = r.str()?.to_string();
                    entries.push((k, Self::read(r, depth + 1)?));
                }
                Datum::Map(entries)
            }
            8 => {
                let micros = r.ivarint()?;
                let offset_secs = if r.bool()? {
                    Some(small_int(r.ivarint()?)?)
                } else {
                    None
                };
                Datum::DateTime {
                    micros,
                    offset_secs,
                }
            }
            9 => Datum::Date(small_int(r.ivarint()?)?),
            10 => {
                let mut u = [0u8; 16];
                u.copy_from_slice(r.take(16)?);
                Datum::Uuid(u)
            }
            tag => return Err(Error::corrupt(format!("unknown value tag {tag}"))),
        })
    }

    /// The entry `name` of a map.
    pub fn get(&self, name: &str) -> Option<&Datum> {
        match self {
            Datum::Map(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a dotted path through nested maps.
    pub fn path(&self, path: &str) -> Option<&Datum> {
        path.split('.').try_fold(self, |d, part| d.get(part))
    }
}

fn small_int(v: i64) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::corrupt("date or offset out of range"))
}

#[cfg(test)]
mod tests {
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
