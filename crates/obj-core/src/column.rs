//! Columns: typed sequences stored densely, read by position.
//!
//! A column `name` is a keyed collection holding a header under the one-byte key
//! [`HEADER_KEY`] (a dict-native document: the dtype, the length, elements per chunk) and
//! chunks keyed by the position of their first element (`u64`, big-endian, so chunks are in
//! order and "the chunk holding element i" is a seek to the greatest key ≤ i).
//!
//! Fixed-width dtypes pack `per_chunk` elements per chunk (all chunks full but the last),
//! sized so a chunk fills one overflow page: an `i64` column costs 8 bytes per element plus
//! about 1.5% (the chunk's page header, its leaf cell and document header). The chunk of
//! element `i` is at `i - i % per_chunk`: one B-tree lookup. Variable-width dtypes write
//! chunks of up to about a page: `count u32`, `count + 1` offsets `u32`, then the elements;
//! an element larger than that is a chunk of its own.
//!
//! Every write goes through the write transaction like any other: a 10^7-element extend is
//! one commit. Inserting or deleting in the middle rewrites the chunks from there on (O(n)
//! from the position).

use crate::btree::PageRead;
use crate::catalog::CollectionKind;
use crate::codec::Datum;
use crate::doc::DocKind;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::write::WriteTxn;
use std::ops::Bound;

/// The key of a column's header (chunk keys are 8 bytes).
pub const HEADER_KEY: &[u8] = b"\x00";

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// Signed 64-bit integers.
    I64,
    /// Signed 32-bit integers.
    I32,
    /// 64-bit floats.
    F64,
    /// 32-bit floats.
    F32,
    /// Booleans.
    Bool,
    /// Byte strings of at most N bytes.
    BytesN(u32),
    /// Strings of at most N bytes of UTF-8.
    StrN(u32),
    /// Byte strings of any length.
    Bytes,
    /// Strings of any length.
    Str,
    /// float32 vectors of exactly N components.
    VecF32(u32),
    /// Any self-describing (dict-native) value.
    Value,
}

/// One element, as the caller gives it or a read returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum Elem<'a> {
    /// For i64 and i32.
    Int(i64),
    /// For f64 and f32.
    Float(f64),
    /// For bool.
    Bool(bool),
    /// For bytes and bytes:N.
    Bytes(&'a [u8]),
    /// For str and str:N.
    Str(&'a str),
    /// For vec:f32:N (little-endian float32 components).
    Vector(&'a [u8]),
    /// For value: the Value codec's bytes.
    Value(&'a [u8]),
}

const MAX_FIXED: u32 = 1 << 16;

impl Dtype {
    /// Parses a dtype name: `i64`, `i32`, `f64`, `f32`, `bool`, `bytes:N`, `str:N`,
    /// `bytes`, `str`, `vec:f32:N`, `value`.
    pub fn parse(name: &str) -> Result<Dtype> {
        let n = |s: &str| -> Result<u32> {
            s.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_FIXED).contains(n))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "dtype {name:?}: N must be an integer from 1 to {MAX_FIXED}"
                    ))
                })
        };
        Ok(match name {
            "i64" => Dtype::I64,
            "i32" => Dtype::I32,
            "f64" => Dtype::F64,
            "f32" => Dtype::F32,
            "bool" => Dtype::Bool,
            "bytes" => Dtype::Bytes,
            "str" => Dtype::Str,
            "value" => Dtype::Value,
            _ => {
                if let Some(rest) = name.strip_prefix("bytes:") {
                    Dtype::BytesN(n(rest)?)
                } else if let Some(rest) = name.strip_prefix("str:") {
                    Dtype::StrN(n(rest)?)
                } else if let Some(rest) = name.strip_prefix("vec:f32:") {
                    Dtype::VecF32(n(rest)?)
                } else {
                    return Err(Error::invalid(format!(
                        "unknown dtype {name:?}: use i64, i32, f64, f32, bool, bytes:N, str:N, \
                         bytes, str, vec:f32:N or value"
                    )));
                }
            }
        })
    }

    /// The dtype's name, as [`Dtype::parse`] reads it.
    pub fn name(&self) -> String {
        match self {
            Dtype::I64 => "i64".into(),
            Dtype::I32 => "i32".into(),
            Dtype::F64 => "f64".into(),
            Dtype::F32 => "f32".into(),
            Dtype::Bool => "bool".into(),
            Dtype::BytesN(n) => format!("bytes:{n}"),
            Dtype::StrN(n) => format!("str:{n}"),
            Dtype::Bytes => "bytes".into(),
            Dtype::Str => "str".into(),
            Dtype::VecF32(n) => format!("vec:f32:{n}"),
            Dtype::Value => "value".into(),
        }
    }

    /// Stored bytes per element, for fixed-width dtypes (None: variable).
    pub fn width(&self) -> Option<usize> {
        match self {
            Dtype::I64 | Dtype::F64 => Some(8),
            Dtype::I32 | Dtype::F32 => Some(4),
            Dtype::Bool => Some(1),
            Dtype::BytesN(n) | Dtype::StrN(n) => Some(*n as usize + len_prefix(*n)),
            Dtype::VecF32(n) => Some(*n as usize * 4),
            Dtype::Bytes | Dtype::Str | Dtype::Value => None,
        }
    }

    /// Appends the stored encoding of `e` to `out`; a value that does not fit the dtype
    /// (wrong kind, out of range, too long) is `InvalidArgument` naming `at`.
    pub fn encode(&self, e: &Elem<'_>, at: u64, out: &mut Vec<u8>) -> Result<()> {
        let bad = |what: String| Error::invalid(format!("element {at}: {what}"));
        match (self, e) {
            (Dtype::I64, Elem::Int(v)) => out.extend_from_slice(&v.to_le_bytes()),
            (Dtype::I32, Elem::Int(v)) => {
                let v =
                    i32::try_from(*v).map_err(|_| bad(format!("{v} is out of range for i32")))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            (Dtype::F64, Elem::Float(v)) => out.extend_from_slice(&v.to_le_bytes()),
            (Dtype::F64, Elem::Int(v)) => out.extend_from_slice(&(*v as f64).to_le_bytes()),
            (Dtype::F32, Elem::Float(v)) => out.extend_from_slice(&(*v as f32).to_le_bytes()),
            (Dtype::F32, Elem::Int(v)) => out.extend_from_slice(&(*v as f32).to_le_bytes()),
            (Dtype::Bool, Elem::Bool(v)) => out.push(u8::from(*v)),
            (Dtype::BytesN(n), Elem::Bytes(b)) => fixed(out, b, *n).map_err(bad)?,
            (Dtype::StrN(n), Elem::Str(s)) => fixed(out, s.as_bytes(), *n).map_err(bad)?,
            (Dtype::Bytes, Elem::Bytes(b)) => out.extend_from_slice(b),
            (Dtype::Str, Elem::Str(s)) => out.extend_from_slice(s.as_bytes()),
            (Dtype::VecF32(n), Elem::Vector(b)) => {
                if b.len() != *n as usize * 4 {
                    return Err(bad(format!(
                        "a vector of {} components where the column holds {n}",
                        b.len() / 4
                    )));
                }
                out.extend_from_slice(b);
            }
            (Dtype::Value, Elem::Value(b)) => {
                Datum::decode(b).map_err(|e| bad(format!("not a value: {e}")))?;
                out.extend_from_slice(b);
            }
            (d, e) => {
                return Err(bad(format!(
                    "{} does not fit a {} column",
                    elem_kind(e),
                    d.name()
                )))
            }
        }
        Ok(())
    }

    /// The element stored as `b`.
    pub fn decode<'a>(&self, b: &'a [u8]) -> Result<Elem<'a>> {
        let bad = || Error::corrupt(format!("a {} column element is damaged", self.name()));
        Ok(match self {
            Dtype::I64 => Elem::Int(i64::from_le_bytes(b.try_into().map_err(|_| bad())?)),
            Dtype::I32 => Elem::Int(i64::from(i32::from_le_bytes(
                b.try_into().map_err(|_| bad())?,
            ))),
            Dtype::F64 => Elem::Float(f64::from_le_bytes(b.try_into().map_err(|_| bad())?)),
            Dtype::F32 => Elem::Float(f64::from(f32::from_le_bytes(
                b.try_into().map_err(|_| bad())?,
            ))),
            Dtype::Bool => match b {
                [0] => Elem::Bool(false),
                [1] => Elem::Bool(true),
                _ => return Err(bad()),
            },
            Dtype::BytesN(n) => Elem::Bytes(unfixed(b, *n).ok_or_else(bad)?),
            Dtype::StrN(n) => {
                Elem::Str(std::str::from_utf8(unfixed(b, *n).ok_or_else(bad)?).map_err(|_| bad())?)
            }
            Dtype::Bytes => Elem::Bytes(b),
            Dtype::Str => Elem::Str(std::str::from_utf8(b).map_err(|_| bad())?),
            Dtype::VecF32(_) => Elem::Vector(b),
            Dtype::Value => Elem::Value(b),
        })
    }
}

fn elem_kind(e: &Elem<'_>) -> &'static str {
    match e {
        Elem::Int(_) => "an int",
        Elem::Float(_) => "a float",
        Elem::Bool(_) => "a bool",
        Elem::Bytes(_) => "bytes",
        Elem::Str(_) => "a str",
        Elem::Vector(_) => "a vector",
        Elem::Value(_) => "a value",
    }
}

fn len_prefix(n: u32) -> usize {
    if n < 256 {
        1
    } else {
        2
    }
}

/// `b` as a fixed slot of `n` bytes: its length, then its bytes, zero-padded.
fn fixed(out: &mut Vec<u8>, b: &[u8], n: u32) -> std::result::Result<(), String> {
    if b.len() > n as usize {
        return Err(format!("{} bytes is longer than the column's {n}", b.len()));
    }
    if len_prefix(n) == 1 {
        out.push(b.len() as u8);
    } else {
        out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(b);
    out.resize(out.len() + (n as usize - b.len()), 0);
    Ok(())
}

fn unfixed(b: &[u8], n: u32) -> Option<&[u8]> {
    let p = len_prefix(n);
    let len = if p == 1 {
        usize::from(*b.first()?)
    } else {
        usize::from(u16::from_le_bytes(b.get(..2)?.try_into().ok()?))
    };
    (len <= n as usize).then_some(())?;
    b.get(p..p + len)
}

/// What a column's header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    /// What it holds.
    pub dtype: Dtype,
    /// Elements.
    pub len: u64,
    /// Elements per chunk (fixed width) or the chunk byte target (variable width).
    pub per_chunk: u32,
}

impl ColumnInfo {
    fn to_datum(&self) -> Datum {
        Datum::Map(vec![
            ("column".into(), Datum::Str(self.dtype.name())),
            ("len".into(), Datum::Int(self.len as i64)),
            ("per_chunk".into(), Datum::Int(i64::from(self.per_chunk))),
        ])
    }

    fn from_datum(d: &Datum, name: &str) -> Result<ColumnInfo> {
        let bad = || Error::corrupt(format!("the header of column {name:?} is damaged"));
        let Datum::Map(fields) = d else {
            return Err(bad());
        };
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let dtype = match get("column") {
            Some(Datum::Str(s)) => Dtype::parse(s).map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let len = match get("len") {
            Some(Datum::Int(n)) if *n >= 0 => *n as u64,
            _ => return Err(bad()),
        };
        let per_chunk = match get("per_chunk") {
            Some(Datum::Int(n)) if *n > 0 && *n <= i64::from(u32::MAX) => *n as u32,
            _ => return Err(bad()),
        };
        Ok(ColumnInfo {
            dtype,
            len,
            per_chunk,
        })
    }

    /// Stored bytes per element (fixed width only).
    fn width(&self) -> Option<usize> {
        self.dtype.width()
    }
}

fn chunk_key(first: u64) -> [u8; 8] {
    first.to_be_bytes()
}

fn first_of(key: &[u8], name: &str) -> Result<u64> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| Error::corrupt(format!("a chunk key of column {name:?} is not 8 bytes")))
}

/// The elements of a variable-width chunk.
fn split_chunk<'a>(chunk: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>> {
    let bad = || Error::corrupt(format!("a chunk of column {name:?} is damaged"));
    let n = u32::from_le_bytes(
        chunk
            .get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as usize;
    let offs_end = 4 + (n + 1) * 4;
    let offs = chunk.get(4..offs_end).ok_or_else(bad)?;
    let data = &chunk[offs_end..];
    let off = |i: usize| -> usize {
        u32::from_le_bytes([
            offs[i * 4],
            offs[i * 4 + 1],
            offs[i * 4 + 2],
            offs[i * 4 + 3],
        ]) as usize
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (off(i), off(i + 1));
        out.push(data.get(a..b).filter(|_| a <= b).ok_or_else(bad)?);
    }
    Ok(out)
}

fn join_chunk(elems: &[&[u8]]) -> Vec<u8> {
    let total: usize = elems.iter().map(|e| e.len()).sum();
    let mut out = Vec::with_capacity(4 + (elems.len() + 1) * 4 + total);
    out.extend_from_slice(&(elems.len() as u32).to_le_bytes());
    let mut at = 0u32;
    out.extend_from_slice(&at.to_le_bytes());
    for e in elems {
        at += e.len() as u32;
        out.extend_from_slice(&at.to_le_bytes());
    }
    for e in elems {
        out.extend_from_slice(e);
    }
    out
}

/// Column reads, for every kind of snapshot.
pub trait ColumnReads: Reader {
    /// The header of column `name`, or None when there is no such column. A collection
    /// that is not a column is `InvalidArgument`.
    fn column_info(&self, name: &str) -> Result<Option<ColumnInfo>> {
        match self.kind(name)? {
            None => return Ok(None),
            Some(CollectionKind::Keyed) => {}
            Some(_) => return Err(not_a_column(name)),
        }
        let Some(v) = self.get_key(name, HEADER_KEY)? else {
            if self.count(name)? == 0 {
                return Ok(None);
            }
            return Err(not_a_column(name));
        };
        if v.header().kind != DocKind::Value {
            return Err(not_a_column(name));
        }
        ColumnInfo::from_datum(&Datum::decode(&v)?, name).map(Some)
    }

    /// The stored bytes of elements `a..b` (clamped to the length): `(first, chunk)` for
    /// each chunk that holds some, in order; the caller slices.
    fn column_chunks(
        &self,
        name: &str,
        info: &ColumnInfo,
        a: u64,
        b: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let b = b.min(info.len);
        if a >= b {
            return Ok(Vec::new());
        }
        let start = match info.width() {
            Some(_) => a - a % u64::from(info.per_chunk),
            None => self.chunk_start(name, a)?,
        };
        let mut out = Vec::new();
        let lo = chunk_key(start);
        for entry in self.key_range(name, Bound::Included(&lo), Bound::Unbounded, false)? {
            let (key, v) = entry?;
            let first = first_of(&key, name)?;
            if first >= b {
                break;
            }
            out.push((first, v.into_vec()));
        }
        Ok(out)
    }

    /// Where the chunk holding element `i` (of a variable-width column) starts.
    #[doc(hidden)]
    fn chunk_start(&self, name: &str, i: u64) -> Result<u64> {
        let hi = chunk_key(i);
        let first = self
            .key_range(
                name,
                Bound::Excluded(HEADER_KEY),
                Bound::Included(&hi),
                true,
            )?
            .next()
            .transpose()?
            .ok_or_else(|| {
                Error::corrupt(format!("column {name:?} has no chunk for element {i}"))
            })?;
        first_of(&first.0, name)
    }

    /// The stored bytes of each element of `a..b`.
    fn column_elements(
        &self,
        name: &str,
        info: &ColumnInfo,
        a: u64,
        b: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let b = b.min(info.len);
        let mut out = Vec::with_capacity(b.saturating_sub(a) as usize);
        for (first, chunk) in self.column_chunks(name, info, a, b)? {
            match info.width() {
                Some(w) => {
                    let n = (chunk.len() / w) as u64;
                    let lo = a.max(first) - first;
                    let hi = b.min(first + n) - first;
                    for k in lo..hi {
                        let at = k as usize * w;
                        out.push(chunk[at..at + w].to_vec());
                    }
                }
                None => {
                    let elems = split_chunk(&chunk, name)?;
                    let n = elems.len() as u64;
                    let lo = a.max(first) - first;
                    let hi = b.min(first + n) - first;
                    for e in &elems[lo as usize..hi as usize] {
                        out.push(e.to_vec());
                    }
                }
            }
        }
        if out.len() as u64 != b.saturating_sub(a) {
            return Err(Error::corrupt(format!(
                "column {name:?} has {} of elements {a}..{b}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Elements `a..b` of a fixed-width column, packed (the stored bytes, concatenated).
    fn column_packed(&self, name: &str, info: &ColumnInfo, a: u64, b: u64) -> Result<Vec<u8>> {
        let w = info
            .width()
            .ok_or_else(|| Error::invalid("a variable-width column has no packed form"))?;
        let b = b.min(info.len);
        let mut out = Vec::with_capacity(b.saturating_sub(a) as usize * w);
        for (first, chunk) in self.column_chunks(name, info, a, b)? {
            let n = (chunk.len() / w) as u64;
            let lo = a.max(first) - first;
            let hi = b.min(first + n) - first;
            if hi < lo || chunk.len() < hi as usize * w {
                return Err(Error::corrupt(format!(
                    "a chunk of column {name:?} is short"
                )));
            }
            out.extend_from_slice(&chunk[lo as usize * w..hi as usize * w]);
        }
        if out.len() != b.saturating_sub(a) as usize * w {
            return Err(Error::corrupt(format!(
                "column {name:?} lacks chunks of elements {a}..{b}"
            )));
        }
        Ok(out)
    }
}

impl<R: Reader> ColumnReads for R {}

fn not_a_column(name: &str) -> Error {
    Error::invalid(format!(
        "collection {name:?} is not a column (it holds other records); use another name"
    ))
}

/// Opens column `name`, creating it with `dtype` if it does not exist; a column of another
/// dtype is `InvalidArgument`.
pub fn ensure(txn: &mut WriteTxn, name: &str, dtype: Dtype) -> Result<ColumnInfo> {
    if let Some(info) = txn.column_info(name)? {
        if info.dtype != dtype {
            return Err(Error::invalid(format!(
                "column {name:?} holds {}, not {}; open it with dtype {:?}",
                info.dtype.name(),
                dtype.name(),
                info.dtype.name()
            )));
        }
        return Ok(info);
    }
    let target = txn.page_size() - 64;
    let per_chunk = match dtype.width() {
        Some(w) => (target / w).max(1) as u32,
        None => target as u32,
    };
    let info = ColumnInfo {
        dtype,
        len: 0,
        per_chunk,
    };
    txn.create_collection(name, CollectionKind::Keyed)?;
    store_info(txn, name, &info)?;
    Ok(info)
}

fn store_info(txn: &mut WriteTxn, name: &str, info: &ColumnInfo) -> Result<()> {
    txn.put_key_doc(
        name,
        HEADER_KEY,
        DocKind::Value,
        0,
        &info.to_datum().to_bytes(),
    )?;
    Ok(())
}

fn put_chunk(txn: &mut WriteTxn, name: &str, first: u64, chunk: &[u8]) -> Result<()> {
    txn.put_key_doc(name, &chunk_key(first), DocKind::Raw, 0, chunk)?;
    Ok(())
}

/// Appends elements given in their stored encoding: `packed` holds whole elements of a
/// fixed-width column back to back (use [`extend_elements`] for variable width).
pub fn extend_packed(
    txn: &mut WriteTxn,
    name: &str,
    info: &mut ColumnInfo,
    packed: &[u8],
) -> Result<()> {
    let w = info
        .width()
        .ok_or_else(|| Error::invalid("extend_packed needs a fixed-width column"))?;
    if !packed.len().is_multiple_of(w) {
        return Err(Error::invalid(format!(
            "{} bytes is not a whole number of {w}-byte elements",
            packed.len()
        )));
    }
    let per = u64::from(info.per_chunk);
    let mut data = packed;
    while !data.is_empty() {
        let first = info.len - info.len % per;
        let have = (info.len - first) as usize;
        let room = (per as usize - have).min(data.len() / w);
        let (take, rest) = data.split_at(room * w);
        if have == 0 {
            put_chunk(txn, name, first, take)?;
        } else {
            let mut chunk = txn
                .get_key(name, &chunk_key(first))?
                .ok_or_else(|| Error::corrupt(format!("column {name:?} lost its last chunk")))?
                .into_vec();
            chunk.truncate(have * w);
            chunk.extend_from_slice(take);
            put_chunk(txn, name, first, &chunk)?;
        }
        info.len += room as u64;
        data = rest;
    }
    store_info(txn, name, info)
}

/// Appends elements given in their stored encoding (any dtype).
pub fn extend_elements<E: AsRef<[u8]>>(
    txn: &mut WriteTxn,
    name: &str,
    info: &mut ColumnInfo,
    elems: &[E],
) -> Result<()> {
    if let Some(w) = info.width() {
        let mut packed = Vec::with_capacity(elems.len() * w);
        for e in elems {
            if e.as_ref().len() != w {
                return Err(Error::invalid("an element of the wrong width"));
            }
            packed.extend_from_slice(e.as_ref());
        }
        return extend_packed(txn, name, info, &packed);
    }
    if elems.is_empty() {
        return Ok(());
    }
    let target = info.per_chunk as usize;
    // Continue the last chunk while it has room.
    let (mut first, mut current): (u64, Vec<Vec<u8>>) = if info.len == 0 {
        (0, Vec::new())
    } else {
        let start = txn.chunk_start(name, info.len - 1)?;
        let chunk = txn
            .get_key(name, &chunk_key(start))?
            .ok_or_else(|| Error::corrupt(format!("column {name:?} lost its last chunk")))?
            .into_vec();
        let parts = split_chunk(&chunk, name)?
            .iter()
            .map(|e| e.to_vec())
            .collect();
        (start, parts)
    };
    let mut size: usize = current.iter().map(|e| e.len() + 4).sum();
    for e in elems {
        let e = e.as_ref();
        if !current.is_empty() && size + e.len() + 4 > target {
            let refs: Vec<&[u8]> = current.iter().map(Vec::as_slice).collect();
            put_chunk(txn, name, first, &join_chunk(&refs))?;
            first += current.len() as u64;
            current.clear();
            size = 0;
        }
        size += e.len() + 4;
        current.push(e.to_vec());
    }
    let refs: Vec<&[u8]> = current.iter().map(Vec::as_slice).collect();
    put_chunk(txn, name, first, &join_chunk(&refs))?;
    info.len += elems.len() as u64;
    store_info(txn, name, info)
}

/// Replaces elements `a..a + elems.len()` (which must exist) with `elems` (stored
/// encodings).
pub fn set_elements<E: AsRef<[u8]>>(
    txn: &mut WriteTxn,
    name: &str,
    info: &ColumnInfo,
    a: u64,
    elems: &[E],
) -> Result<()> {
    let b = a + elems.len() as u64;
    if b > info.len {
        return Err(Error::invalid(format!(
            "elements {a}..{b} are past the end of a column of {}",
            info.len
        )));
    }
    for (first, chunk) in txn.column_chunks(name, info, a, b)? {
        let new = match info.width() {
            Some(w) => {
                let mut chunk = chunk;
                let n = (chunk.len() / w) as u64;
                for i in a.max(first)..b.min(first + n) {
                    let e = elems[(i - a) as usize].as_ref();
                    if e.len() != w {
                        return Err(Error::invalid("an element of the wrong width"));
                    }
                    let at = (i - first) as usize * w;
                    chunk[at..at + w].copy_from_slice(e);
                }
                chunk
            }
            None => {
                let mut parts: Vec<&[u8]> = split_chunk(&chunk, name)?;
                let n = parts.len() as u64;
                for i in a.max(first)..b.min(first + n) {
                    parts[(i - first) as usize] = elems[(i - a) as usize].as_ref();
                }
                join_chunk(&parts)
            }
        };
        put_chunk(txn, name, first, &new)?;
    }
    Ok(())
}

/// Shortens the column to `len` elements (pop, clear).
pub fn truncate(txn: &mut WriteTxn, name: &str, info: &mut ColumnInfo, len: u64) -> Result<()> {
    if len >= info.len {
        return Ok(());
    }
    let keep_from = if len == 0 {
        0
    } else {
        match info.width() {
            Some(_) => len - len % u64::from(info.per_chunk),
            None => txn.chunk_start(name, len)?,
        }
    };
    // The chunk holding the new end keeps its first part; every later chunk goes.
    let mut doomed = Vec::new();
    let lo = chunk_key(keep_from);
    for entry in txn.key_range(name, Bound::Included(&lo), Bound::Unbounded, false)? {
        let (key, v) = entry?;
        doomed.push((first_of(&key, name)?, v.into_vec()));
    }
    for (first, _) in &doomed {
        txn.delete_key(name, &chunk_key(*first))?;
    }
    if let Some((first, chunk)) = doomed.into_iter().next() {
        if first < len {
            let kept = (len - first) as usize;
            let part = match info.width() {
                Some(w) => chunk[..kept * w].to_vec(),
                None => join_chunk(&split_chunk(&chunk, name)?[..kept]),
            };
            put_chunk(txn, name, first, &part)?;
        }
    }
    info.len = len;
    store_info(txn, name, info)
}

/// Inserts `elems` (stored encodings) before element `at` (`at == len` appends): the
/// elements from `at` on are rewritten (O(n) from `at`).
pub fn insert_elements<E: AsRef<[u8]>>(
    txn: &mut WriteTxn,
    name: &str,
    info: &mut ColumnInfo,
    at: u64,
    elems: &[E],
) -> Result<()> {
    if at > info.len {
        return Err(Error::invalid(format!(
            "position {at} is past the end of a column of {}",
            info.len
        )));
    }
    let tail = txn.column_elements(name, info, at, info.len)?;
    truncate(txn, name, info, at)?;
    let mut all: Vec<&[u8]> = elems.iter().map(AsRef::as_ref).collect();
    all.extend(tail.iter().map(Vec::as_slice));
    extend_elements(txn, name, info, &all)
}

/// Deletes elements `a..b`: the elements after them are rewritten (O(n) from `a`).
pub fn delete_range(
    txn: &mut WriteTxn,
    name: &str,
    info: &mut ColumnInfo,
    a: u64,
    b: u64,
) -> Result<()> {
    let b = b.min(info.len);
    if a >= b {
        return Ok(());
    }
    let tail = txn.column_elements(name, info, b, info.len)?;
    truncate(txn, name, info, a)?;
    extend_elements(txn, name, info, &tail)
}
