//! Order-preserving ("memcomparable") encoding of index keys: comparing the bytes gives the
//! same order as comparing the values. Layout in `docs/format.md` ("Index keys").
//!
//! Each value is a type tag followed by its body; a tuple is the concatenation of its
//! elements, so a shorter tuple's encoding is a byte prefix of every longer tuple that
//! starts with it. Ints and floats share one tag and order numerically together.
//!
//! The same bytes are the one sort order of queries ([`sort_key`]): sorting by a field
//! with or without an index orders by these keys, so both plans agree. Sort keys also
//! order lists and dicts (tags that never reach an index); a missing field sorts as None.

use crate::codec::Datum;
use crate::error::{Error, Result};

const TAG_NULL: u8 = 0x05;
const TAG_FALSE: u8 = 0x10;
const TAG_TRUE: u8 = 0x11;
const TAG_NUMBER: u8 = 0x20;
const TAG_STR: u8 = 0x30;
const TAG_BYTES: u8 = 0x40;
const TAG_DATE: u8 = 0x50;
const TAG_DATETIME: u8 = 0x51;
const TAG_UUID: u8 = 0x60;
/// Sort keys only: a list is its elements' keys then `END`, a dict its entries (`ENTRY`,
/// escaped name, value key) in name order then `END`. `END` sorts below every tag and
/// `ENTRY`, so a shorter list or dict sorts first.
const TAG_LIST: u8 = 0x70;
const TAG_MAP: u8 = 0x80;
const ENTRY: u8 = 0x01;
const END: u8 = 0x00;

/// What one part of a table key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartType {
    /// A signed 64-bit integer.
    Int,
    /// A string.
    Str,
    /// A byte string.
    Bytes,
}

impl PartType {
    /// The type of a key part, or None for a value that cannot be one.
    pub fn of(d: &Datum) -> Option<PartType> {
        match d {
            Datum::Int(_) => Some(PartType::Int),
            Datum::Str(_) => Some(PartType::Str),
            Datum::Bytes(_) => Some(PartType::Bytes),
            _ => None,
        }
    }

    /// The Python name of the type, for messages.
    pub fn name(self) -> &'static str {
        match self {
            PartType::Int => "int",
            PartType::Str => "str",
            PartType::Bytes => "bytes",
        }
    }
}

/// The key types of a table: fixed by its first item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTypes {
    /// The partition key's type.
    pub pk: PartType,
    /// The sort key's type; None for a table without sort keys.
    pub sk: Option<PartType>,
}

impl KeyTypes {
    /// The types as messages name them.
    pub fn describe(self) -> String {
        match self.sk {
            Some(sk) => format!(
                "{} partition keys and {} sort keys",
                self.pk.name(),
                sk.name()
            ),
            None => format!("{} partition keys and no sort keys", self.pk.name()),
        }
    }
}

/// Appends the encoding of one indexable value.
pub fn encode_value(out: &mut Vec<u8>, d: &Datum) -> Result<()> {
    if matches!(
        d,
        Datum::List(_) | Datum::Map(_) | Datum::Set(_) | Datum::Vector(_)
    ) {
        return Err(Error::invalid(format!(
            "a {} cannot be an index key (use an Each index for the members of a list or set)",
            d.type_name()
        )));
    }
    encode_any(out, d);
    Ok(())
}

/// The key a query sorts a value by (`None` = a missing field, which sorts as None): the
/// index key for every indexable value, and an order for lists and dicts as well. Ties
/// between equal keys are broken by document id.
pub fn sort_key(d: Option<&Datum>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_any(&mut out, d.unwrap_or(&Datum::Null));
    out
}

fn encode_any(out: &mut Vec<u8>, d: &Datum) {
    match d {
        Datum::Null => out.push(TAG_NULL),
        Datum::Bool(false) => out.push(TAG_FALSE),
        Datum::Bool(true) => out.push(TAG_TRUE),
        Datum::Int(i) => encode_number(out, *i as f64, (*i as i128 - (*i as f64) as i128) as i64),
        Datum::Float(f) => encode_number(out, *f, 0),
        Datum::Str(s) => {
            out.push(TAG_STR);
            escape(out, s.as_bytes());
        }
        Datum::Bytes(b) => {
            out.push(TAG_BYTES);
            escape(out, b);
        }
        Datum::Date(days) => {
            out.push(TAG_DATE);
            out.extend_from_slice(&((*days as u32) ^ 0x8000_0000).to_be_bytes());
        }
        Datum::DateTime { micros, .. } => {
            out.push(TAG_DATETIME);
            out.extend_from_slice(&((*micros as u64) ^ (1 << 63)).to_be_bytes());
        }
        Datum::Uuid(u) => {
            out.push(TAG_UUID);
            out.extend_from_slice(u);
        }
        Datum::List(items) | Datum::Set(items) => {
            out.push(TAG_LIST);
            for item in items {
                encode_any(out, item);
            }
            out.push(END);
        }
        Datum::Vector(v) => {
            out.push(TAG_LIST);
            for x in v {
                encode_number(out, f64::from(*x), 0);
            }
            out.push(END);
        }
        Datum::Map(entries) => {
            out.push(TAG_MAP);
            let mut sorted: Vec<&(String, Datum)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, value) in sorted {
                out.push(ENTRY);
                escape(out, name.as_bytes());
                encode_any(out, value);
            }
            out.push(END);
        }
    }
}

/// Encodes a tuple of values (a single value is a tuple of one).
pub fn encode(values: &[Datum]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * values.len());
    for v in values {
        encode_value(&mut out, v)?;
    }
    Ok(out)
}

/// Numbers: the sign-adjusted IEEE bits of the value as f64, then a big-endian 16-bit
/// correction for integers that f64 cannot hold exactly (|i| > 2^53), so ints and floats
/// interleave by numeric value. -0.0 is stored as 0.0; NaN sorts after +inf.
fn encode_number(out: &mut Vec<u8>, f: f64, int_remainder: i64) {
    let f = if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    };
    let bits = f.to_bits();
    let sortable = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    out.push(TAG_NUMBER);
    out.extend_from_slice(&sortable.to_be_bytes());
    out.extend_from_slice(&((int_remainder as i16 as u16) ^ 0x8000).to_be_bytes());
}

/// Byte strings: 0x00 becomes 0x00 0xFF; the string ends with 0x00 0x00.
fn escape(out: &mut Vec<u8>, b: &[u8]) {
    for &c in b {
        out.push(c);
        if c == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The length in bytes of the first `n` encoded values of `key` (an index key of `n`
/// values followed by other bytes); None when `key` does not start with `n` whole values.
pub fn tuple_len(key: &[u8], n: usize) -> Option<usize> {
    let mut at = 0;
    for _ in 0..n {
        let body = match *key.get(at)? {
            TAG_NULL | TAG_FALSE | TAG_TRUE => 0,
            TAG_NUMBER => 10,
            TAG_DATE => 4,
            TAG_DATETIME => 8,
            TAG_UUID => 16,
            TAG_STR | TAG_BYTES => {
                // Escaped: a 0x00 is followed by 0xFF inside, by 0x00 at the end.
                let mut i = at + 1;
                loop {
                    match (*key.get(i)?, key.get(i + 1)) {
                        (0, Some(0)) => break i + 2 - (at + 1),
                        (0, Some(0xFF)) => i += 2,
                        (0, _) => return None,
                        _ => i += 1,
                    }
                }
            }
            _ => return None,
        };
        at += 1 + body;
        if at > key.len() {
            return None;
        }
    }
    Some(at)
}

/// Decodes the value at the start of `key` that is an integer, a string or bytes (the key
/// parts of a table) and returns it with the bytes it took; None when `key` does not start
/// with one (another tag, or a damaged encoding). A number decodes as an integer: tables
/// only store integer numbers.
pub fn decode_part(key: &[u8]) -> Option<(Datum, usize)> {
    let len = tuple_len(key, 1)?;
    let body = &key[1..len];
    let value = match key[0] {
        TAG_NUMBER => {
            let sortable = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
            let bits = if sortable >> 63 == 1 {
                sortable & !(1 << 63)
            } else {
                !sortable
            };
            let f = f64::from_bits(bits);
            if f.fract() != 0.0 || !f.is_finite() || f.abs() > 2f64.powi(63) {
                return None;
            }
            let rest =
                i128::from((u16::from_be_bytes(body.get(8..10)?.try_into().ok()?) ^ 0x8000) as i16);
            Datum::Int(i64::try_from(f as i128 + rest).ok()?)
        }
        TAG_STR => Datum::Str(String::from_utf8(unescape(body)?).ok()?),
        TAG_BYTES => Datum::Bytes(unescape(body)?),
        _ => return None,
    };
    Some((value, len))
}

/// The bytes of an escaped string body (with its 0x00 0x00 terminator).
fn unescape(body: &[u8]) -> Option<Vec<u8>> {
    let inner = body.strip_suffix(&[0, 0])?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        out.push(inner[i]);
        if inner[i] == 0 {
            if inner.get(i + 1) != Some(&0xFF) {
                return None;
            }
            i += 1;
        }
        i += 1;
    }
    Some(out)
}

/// The prefix of every encoded string or bytes value that starts with `prefix` (its tag
/// and escaped bytes, without the terminator): the range of a `begins_with` condition.
pub fn string_prefix(d: &Datum) -> Option<Vec<u8>> {
    let (tag, bytes) = match d {
        Datum::Str(s) => (TAG_STR, s.as_bytes()),
        Datum::Bytes(b) => (TAG_BYTES, b.as_slice()),
        _ => return None,
    };
    let mut out = vec![tag];
    escape(&mut out, bytes);
    out.truncate(out.len() - 2);
    Some(out)
}

/// True when `key` sorts after every key that starts with `prefix` (the end of a range whose
/// upper bound is `prefix`, inclusive).
pub fn past_prefix(key: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len().min(key.len());
    key[..n] > prefix[..n]
}

/// The smallest byte string above every string that starts with `prefix` (the exclusive
/// end of a range whose upper bound is `prefix`, inclusive); None when there is none (the
/// prefix is all 0xFF, so every string at or above it starts with it).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_part_inverts_encode_for_table_key_parts() {
        let ints = [
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN + 1,
            (1 << 53) + 1,
            -(1 << 53) - 3,
            (1 << 62) + 12345,
        ];
        let mut values: Vec<Datum> = ints.iter().map(|&i| Datum::Int(i)).collect();
        values.extend([
            Datum::Str(String::new()),
            Datum::Str("a\0b\u{10FFFF}".into()),
            Datum::Bytes(vec![]),
            Datum::Bytes(vec![0, 0xFF, 0, 0]),
        ]);
        for v in &values {
            let mut key = encode(std::slice::from_ref(v)).unwrap();
            let len = key.len();
            key.extend_from_slice(&[TAG_STR, 0, 0]);
            assert_eq!(decode_part(&key), Some((v.clone(), len)), "{v:?}");
            for cut in 0..len {
                assert_eq!(decode_part(&key[..cut]), None, "{v:?} cut at {cut}");
            }
        }
        assert_eq!(decode_part(&encode(&[Datum::Float(0.5)]).unwrap()), None);
        assert_eq!(decode_part(&encode(&[Datum::Null]).unwrap()), None);
        // A prefix of a string's encoding bounds every string that starts with it.
        let p = string_prefix(&Datum::Str("ab".into())).unwrap();
        let k = encode(&[Datum::Str("abc".into())]).unwrap();
        assert!(k.starts_with(&p));
        let k = encode(&[Datum::Str("a".into())]).unwrap();
        assert!(!k.starts_with(&p));
    }

    #[test]
    fn tuple_len_finds_the_end_of_each_encoded_tuple() {
        let values = [
            Datum::Null,
            Datum::Bool(true),
            Datum::Int(-7),
            Datum::Float(2.5),
            Datum::Str("a\0b".into()),
            Datum::Bytes(vec![0, 0, 0xFF, 0]),
            Datum::Date(-3),
            Datum::DateTime {
                micros: 9,
                offset_secs: None,
            },
            Datum::Uuid([7; 16]),
            Datum::Str(String::new()),
        ];
        for n in 0..=values.len() {
            let key = encode(&values[..n]).unwrap();
            let mut with_pk = key.clone();
            with_pk.extend_from_slice(b"\0\0pk");
            assert_eq!(tuple_len(&with_pk, n), Some(key.len()), "{n} values");
        }
        let key = encode(&values).unwrap();
        for cut in 0..key.len() {
            assert!(
                tuple_len(&key[..cut], values.len()).is_none(),
                "cut at {cut}"
            );
        }
        assert_eq!(tuple_len(&[0x99], 1), None);
    }
    use std::cmp::Ordering;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// The value order the encoding must reproduce.
    fn cmp(a: &Datum, b: &Datum) -> Ordering {
        fn rank(d: &Datum) -> u8 {
            match d {
                Datum::Null => 0,
                Datum::Bool(_) => 1,
                Datum::Int(_) | Datum::Float(_) => 2,
                Datum::Str(_) => 3,
                Datum::Bytes(_) => 4,
                Datum::Date(_) => 5,
                Datum::DateTime { .. } => 6,
                _ => 7,
            }
        }
        fn num(d: &Datum) -> (f64, i128) {
            match d {
                Datum::Int(i) => (*i as f64, *i as i128),
                Datum::Float(f) => (*f, 0),
                _ => unreachable!(),
            }
        }
        match (a, b) {
            (Datum::Bool(x), Datum::Bool(y)) => x.cmp(y),
            (Datum::Int(x), Datum::Int(y)) => x.cmp(y),
            (Datum::Int(_) | Datum::Float(_), Datum::Int(_) | Datum::Float(_)) => {
                let ((fa, ia), (fb, ib)) = (num(a), num(b));
                match (fa.is_nan(), fb.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => fa.partial_cmp(&fb).unwrap().then_with(|| {
                        // Same f64: compare exact integer parts (floats count as exact).
                        let ea = if matches!(a, Datum::Int(_)) {
                            ia
                        } else {
                            fa as i128
                        };
                        let eb = if matches!(b, Datum::Int(_)) {
                            ib
                        } else {
                            fb as i128
                        };
                        ea.cmp(&eb)
                    }),
                }
            }
            (Datum::Str(x), Datum::Str(y)) => x.cmp(y),
            (Datum::Bytes(x), Datum::Bytes(y)) => x.cmp(y),
            (Datum::Date(x), Datum::Date(y)) => x.cmp(y),
            (Datum::DateTime { micros: x, .. }, Datum::DateTime { micros: y, .. }) => x.cmp(y),
            _ => rank(a).cmp(&rank(b)),
        }
    }

    fn gen(r: &mut Rng) -> Datum {
        let specials = [
            i64::MIN,
            i64::MAX,
            0,
            -1,
            1,
            (1 << 53) + 1,
            -(1 << 53) - 1,
            1 << 62,
        ];
        match r.next() % 9 {
            0 => Datum::Null,
            1 => Datum::Bool(r.next().is_multiple_of(2)),
            2 => Datum::Int(specials[(r.next() % 8) as usize]),
            3 => Datum::Int((r.next() as i64) >> (r.next() % 64)),
            4 => Datum::Float(match r.next() % 6 {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                2 => -0.0,
                _ => ((r.next() as i64) >> (r.next() % 64)) as f64 / 7.0,
            }),
            5 => Datum::Str(
                (0..r.next() % 4)
                    .map(|_| ['a', '\0', 'é', '😀', 'b'][(r.next() % 5) as usize])
                    .collect(),
            ),
            6 => Datum::Bytes(
                (0..r.next() % 4)
                    .map(|_| [0u8, 1, 255][(r.next() % 3) as usize])
                    .collect(),
            ),
            7 => Datum::Date((r.next() as i32) >> 8),
            _ => Datum::DateTime {
                micros: (r.next() as i64) >> 3,
                offset_secs: None,
            },
        }
    }

    #[test]
    fn byte_order_equals_value_order() {
        let mut r = Rng(7);
        for _ in 0..50_000 {
            let (a, b) = (gen(&mut r), gen(&mut r));
            let (ka, kb) = (
                encode(std::slice::from_ref(&a)).unwrap(),
                encode(std::slice::from_ref(&b)).unwrap(),
            );
            assert_eq!(ka.cmp(&kb), cmp(&a, &b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn tuples_order_lexicographically_and_prefixes_are_byte_prefixes() {
        let mut r = Rng(11);
        for _ in 0..20_000 {
            let a: Vec<Datum> = (0..1 + r.next() % 3).map(|_| gen(&mut r)).collect();
            let b: Vec<Datum> = (0..1 + r.next() % 3).map(|_| gen(&mut r)).collect();
            let want = a
                .iter()
                .zip(&b)
                .map(|(x, y)| cmp(x, y))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(a.len().cmp(&b.len()));
            assert_eq!(
                encode(&a).unwrap().cmp(&encode(&b).unwrap()),
                want,
                "{a:?} vs {b:?}"
            );
            let full = encode(&a).unwrap();
            let first = encode(&a[..1]).unwrap();
            assert!(full.starts_with(&first));
            assert!(!past_prefix(&full, &first));
            // A backward walk starts below the successor exactly where a forward one stops.
            let other = encode(&b).unwrap();
            assert_eq!(
                past_prefix(&other, &first),
                prefix_successor(&first).is_some_and(|s| other >= s),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn sort_keys_are_index_keys_and_order_lists_elementwise() {
        let mut r = Rng(13);
        let list_cmp = |a: &[Datum], b: &[Datum]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| cmp(x, y))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(a.len().cmp(&b.len()))
        };
        for _ in 0..20_000 {
            let a = gen(&mut r);
            assert_eq!(
                sort_key(Some(&a)),
                encode(std::slice::from_ref(&a)).unwrap()
            );
            let la: Vec<Datum> = (0..r.next() % 3).map(|_| gen(&mut r)).collect();
            let lb: Vec<Datum> = (0..r.next() % 3).map(|_| gen(&mut r)).collect();
            let (ka, kb) = (
                sort_key(Some(&Datum::List(la.clone()))),
                sort_key(Some(&Datum::List(lb.clone()))),
            );
            assert_eq!(ka.cmp(&kb), list_cmp(&la, &lb), "{la:?} vs {lb:?}");
            // Every list sorts after every scalar, every dict after every list.
            assert!(sort_key(Some(&a)) < ka);
            assert!(ka < sort_key(Some(&Datum::Map(vec![]))));
        }
        assert_eq!(sort_key(None), sort_key(Some(&Datum::Null)));
        // Dicts compare by their entries in name order, whatever the insertion order.
        let m = |e: &[(&str, i64)]| {
            sort_key(Some(&Datum::Map(
                e.iter()
                    .map(|(k, v)| (k.to_string(), Datum::Int(*v)))
                    .collect(),
            )))
        };
        assert_eq!(m(&[("a", 1), ("b", 2)]), m(&[("b", 2), ("a", 1)]));
        assert!(m(&[("a", 1)]) < m(&[("a", 1), ("b", 0)]));
        assert!(m(&[("a", 1), ("b", 0)]) < m(&[("a", 2)]));
        assert!(m(&[]) < m(&[("", 0)]));
    }

    #[test]
    fn ints_and_floats_interleave() {
        let k = |d: Datum| encode(&[d]).unwrap();
        assert!(k(Datum::Int(-3)) < k(Datum::Float(-2.5)));
        assert!(k(Datum::Float(2.5)) < k(Datum::Int(3)));
        assert_eq!(k(Datum::Int(5)), k(Datum::Float(5.0)));
        assert_eq!(k(Datum::Float(-0.0)), k(Datum::Float(0.0)));
        assert!(k(Datum::Float(f64::INFINITY)) < k(Datum::Float(f64::NAN)));
        assert!(k(Datum::Int(i64::MAX - 1)) < k(Datum::Int(i64::MAX)));
        assert!(encode(&[Datum::List(vec![])]).is_err());
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }
}
