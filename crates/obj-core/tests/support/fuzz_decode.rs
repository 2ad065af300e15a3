//! The `decode_payload` fuzz target's logic, shared by `fuzz/fuzz_targets/decode_payload.rs`
//! and `tests/fuzz_replay.rs` (which replays its corpus and regressions under `cargo test`).
//!
//! Input layout (every read past the end gives zeros, so any byte string is an input):
//!
//! - byte 0, flags: bit 0 = build the schema from the input bytes (else parse it with
//!   `Schema::from_bytes` from a `u16`-length-prefixed slice); bit 1 = generate the payloads
//!   from the schema (valid by construction, with the value they must decode to) instead of
//!   taking raw `u16`-length-prefixed slices; bit 2 = database mode (below); bit 3 = build the
//!   indexes before inserting; bits 4-5 = documents - 1 in database mode; bit 6 = build the
//!   indexes inside the documents' transaction (a refused one must leave the transaction as
//!   it was), else each in a transaction of its own, rolled back when refused.
//! - the schema, then the payloads, then (database mode) up to three index specs, then a
//!   filter expression built from what is left.
//!
//! Every payload goes through `codec::dynamic::decode`, `dynamic::decode_fields` (with the
//! fields the filter reads), `Datum::decode` and `Schema::from_bytes`; the filter's `Expr::matches`
//! runs on each result. Checked: nothing panics; errors are `Corruption`; a generated
//! payload decodes to exactly its value; `decode_fields` agrees with `decode`, and the filter
//! gives the same answer on both; re-encoding a decoded `Datum` or `Schema` decodes to the
//! same thing; `query::compare` is antisymmetric and `codec::index_key` orders values the way
//! `compare` does.
//!
//! Database mode stores each decodable payload as a typed document (collection "t") and its
//! value as a Value-codec document (collection "v") in `Db::memory`, with the input's indexes,
//! then runs the filter three ways (a full scan, the planner's index choice with and without
//! a sort field, and the model): all must return the same ids. Then it deletes and replaces
//! documents and checks again, and ends with `integrity_check`.
//!
//! Unbounded allocation and hangs are caught by libFuzzer's limits (`-rss_limit_mb`,
//! `-malloc_limit_mb`, `-timeout`), and in `cargo test` by the replay's address-space limit
//! and watchdog.

#![allow(dead_code)] // Each user needs only part of this module.

use obj_core::codec::wire::{put_bytes, put_f64, put_ivarint, put_uvarint};
use obj_core::codec::{dynamic, Datum, EnumType, Field, FieldType, Schema, StructType};
use obj_core::query::{self, Access, CmpOp, Expr, Plan, QueryScan, SortOrder};
use obj_core::{Db, DocKind, Durability, Error, IndexKind, IndexSpec, Options, Reader};
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// What happened to one input.
#[derive(Debug, Default)]
pub struct Outcome {
    pub schema_parsed: bool,
    pub payloads: usize,
    pub decoded: usize,
    pub db_docs: usize,
    /// Queries the planner ran through an index (how much of the planner the input reached).
    pub index_plans: usize,
    /// Broken promises (a wrong answer or error kind); the target fails on any.
    pub problems: Vec<String>,
}

/// Reads the input front to back; past the end it yields zeros.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// Uniform-ish in `0..n` (n in 1..=256).
    pub fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
}

/// Field and map-key names: short ones that collide on purpose, an empty one and a dotted one.
const NAMES: [&str; 8] = ["a", "b", "c", "id", "tags", "addr", "", "x.y"];
const STRS: [&str; 8] = ["", "a", "ab", "b", "a\0", "é", "😀", "abc"];

fn gen_int(inp: &mut Input) -> i64 {
    const SPECIAL: [i64; 12] = [
        0,
        1,
        -1,
        5,
        7,
        255,
        (1 << 53) + 1,
        -(1 << 53) - 1,
        1 << 53,
        i64::MAX,
        i64::MIN,
        i64::MAX - 1,
    ];
    match inp.below(4) {
        0 | 1 => SPECIAL[inp.below(SPECIAL.len())],
        2 => i64::from(inp.u8() as i8),
        _ => inp.u64() as i64,
    }
}

fn gen_float(inp: &mut Input) -> f64 {
    const SPECIAL: [f64; 10] = [
        0.0,
        -0.0,
        1.5,
        5.0,
        7.0,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        9_007_199_254_740_992.0,
    ];
    match inp.below(3) {
        0 | 1 => SPECIAL[inp.below(SPECIAL.len())],
        _ => f64::from_bits(inp.u64()),
    }
}

fn gen_str(inp: &mut Input) -> String {
    match inp.below(4) {
        0..=2 => STRS[inp.below(STRS.len())].to_string(),
        _ => {
            let n = inp.below(12);
            String::from_utf8_lossy(inp.take(n)).into_owned()
        }
    }
}

fn gen_bytes(inp: &mut Input) -> Vec<u8> {
    let n = inp.below(6);
    let mut b = inp.take(n).to_vec();
    b.resize(n, 0);
    b
}

fn gen_uuid(inp: &mut Input) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&inp.u64().to_le_bytes());
    u[15] = inp.u8();
    u
}

/// A value of any kind (`depth` levels of lists and maps at most).
pub fn gen_datum(inp: &mut Input, depth: usize) -> Datum {
    let kinds = if depth == 0 { 8 } else { 11 };
    match inp.below(kinds) {
        0 => Datum::Null,
        1 => Datum::Bool(inp.u8() & 1 == 1),
        2 => Datum::Int(gen_int(inp)),
        3 => Datum::Float(gen_float(inp)),
        4 => Datum::Str(gen_str(inp)),
        5 => Datum::Bytes(gen_bytes(inp)),
        6 => Datum::Date(gen_int(inp) as i32),
        7 => match inp.below(3) {
            0 => Datum::Uuid(gen_uuid(inp)),
            _ => Datum::DateTime {
                micros: gen_int(inp),
                offset_secs: (inp.u8() & 1 == 1).then(|| gen_int(inp) as i32),
            },
        },
        8 => Datum::List(
            (0..inp.below(4))
                .map(|_| gen_datum(inp, depth - 1))
                .collect(),
        ),
        9 => Datum::Map(
            (0..inp.below(4))
                .map(|_| {
                    (
                        NAMES[inp.below(NAMES.len())].to_string(),
                        gen_datum(inp, depth - 1),
                    )
                })
                .collect(),
        ),
        10 => match inp.below(4) {
            0 => Datum::Vector(
                (0..inp.below(5))
                    .map(|_| gen_int(inp) as f32 / 8.0)
                    .collect(),
            ),
            1 => Datum::Set(
                (0..inp.below(4))
                    .map(|_| Datum::Str(gen_str(inp)))
                    .collect(),
            ),
            2 => Datum::Set(
                (0..inp.below(4))
                    .map(|_| Datum::Bytes(gen_bytes(inp)))
                    .collect(),
            ),
            _ => Datum::Set(
                (0..inp.below(4))
                    .map(|_| Datum::Int(gen_int(inp)))
                    .collect(),
            ),
        },
        _ => Datum::Int(gen_int(inp)),
    }
}

/// A field type (`depth` levels of containers at most).
pub fn gen_type(inp: &mut Input, depth: usize) -> FieldType {
    let kinds = if depth == 0 { 9 } else { 16 };
    match inp.below(kinds) {
        0 => FieldType::Bool,
        1 => FieldType::Int,
        2 => FieldType::Float,
        3 => FieldType::Str,
        4 => FieldType::Bytes,
        5 => FieldType::NoneType,
        6 => FieldType::DateTime,
        7 => FieldType::Date,
        8 => match inp.below(2) {
            0 => FieldType::Uuid,
            _ => FieldType::Any,
        },
        9 => FieldType::Optional(Box::new(gen_type(inp, depth - 1))),
        10 => FieldType::List(Box::new(gen_type(inp, depth - 1))),
        11 => FieldType::Tuple(
            (0..inp.below(4))
                .map(|_| gen_type(inp, depth - 1))
                .collect(),
        ),
        12 => FieldType::Map(Box::new(gen_type(inp, depth - 1))),
        13 => FieldType::Struct(gen_struct(inp, depth - 1)),
        14 => FieldType::Enum(EnumType {
            members: (0..inp.below(4))
                .map(|_| (gen_str(inp), gen_datum(inp, 1)))
                .collect(),
        }),
        _ => FieldType::Any,
    }
}

pub fn gen_struct(inp: &mut Input, depth: usize) -> StructType {
    StructType {
        fields: (0..inp.below(6))
            .map(|_| Field {
                name: NAMES[inp.below(NAMES.len())].to_string(),
                ty: gen_type(inp, depth),
            })
            .collect(),
    }
}

/// Appends a valid encoding of a value of type `ty` (choices from the input) and returns the
/// value it must decode to; None when the type has no values (an enum without members).
pub fn gen_payload(ty: &FieldType, inp: &mut Input, out: &mut Vec<u8>) -> Option<Datum> {
    Some(match ty {
        FieldType::Bool => {
            let b = inp.u8() & 1 == 1;
            out.push(u8::from(b));
            Datum::Bool(b)
        }
        FieldType::Int => {
            let i = gen_int(inp);
            put_ivarint(out, i);
            Datum::Int(i)
        }
        FieldType::Float => {
            let f = gen_float(inp);
            put_f64(out, f);
            Datum::Float(f)
        }
        FieldType::Str => {
            let s = gen_str(inp);
            put_bytes(out, s.as_bytes());
            Datum::Str(s)
        }
        FieldType::Bytes => {
            let b = gen_bytes(inp);
            put_bytes(out, &b);
            Datum::Bytes(b)
        }
        FieldType::NoneType => Datum::Null,
        FieldType::Optional(t) => {
            if inp.u8() & 1 == 1 {
                out.push(1);
                gen_payload(t, inp, out)?
            } else {
                out.push(0);
                Datum::Null
            }
        }
        FieldType::List(t) => {
            let n = inp.below(4);
            put_uvarint(out, n as u64);
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(gen_payload(t, inp, out)?);
            }
            Datum::List(items)
        }
        FieldType::Tuple(ts) => {
            let mut items = Vec::with_capacity(ts.len());
            for t in ts {
                items.push(gen_payload(t, inp, out)?);
            }
            Datum::List(items)
        }
        FieldType::Map(t) => {
            let n = inp.below(3);
            put_uvarint(out, n as u64);
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let k = NAMES[inp.below(NAMES.len())].to_string();
                put_bytes(out, k.as_bytes());
                entries.push((k, gen_payload(t, inp, out)?));
            }
            Datum::Map(entries)
        }
        FieldType::Struct(s) => gen_struct_payload(s, inp, out)?,
        FieldType::DateTime => {
            let micros = gen_int(inp);
            put_ivarint(out, micros);
            let offset_secs = if inp.u8() & 1 == 1 {
                let o = gen_int(inp) as i32;
                out.push(1);
                put_ivarint(out, i64::from(o));
                Some(o)
            } else {
                out.push(0);
                None
            };
            Datum::DateTime {
                micros,
                offset_secs,
            }
        }
        FieldType::Date => {
            let d = gen_int(inp) as i32;
            put_ivarint(out, i64::from(d));
            Datum::Date(d)
        }
        FieldType::Enum(e) => {
            if e.members.is_empty() {
                return None;
            }
            let i = inp.below(e.members.len());
            put_uvarint(out, i as u64);
            e.members[i].1.clone()
        }
        FieldType::Uuid => {
            let u = gen_uuid(inp);
            out.extend_from_slice(&u);
            Datum::Uuid(u)
        }
        FieldType::Any => {
            let d = gen_datum(inp, 2);
            d.encode(out);
            d
        }
    })
}

fn gen_struct_payload(s: &StructType, inp: &mut Input, out: &mut Vec<u8>) -> Option<Datum> {
    let mut entries = Vec::with_capacity(s.fields.len());
    for f in &s.fields {
        entries.push((f.name.clone(), gen_payload(&f.ty, inp, out)?));
    }
    Some(Datum::Map(entries))
}

/// Dotted paths worth filtering and indexing on: top-level fields, one level into structs
/// and maps, and a path that exists nowhere.
fn candidate_paths(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for f in &schema.root.fields {
        out.push(f.name.clone());
        let inner = match &f.ty {
            FieldType::Optional(t) => t.as_ref(),
            t => t,
        };
        match inner {
            FieldType::Struct(s) => {
                for g in s.fields.iter().take(3) {
                    out.push(format!("{}.{}", f.name, g.name));
                }
            }
            FieldType::Map(_) | FieldType::Any => {
                out.push(format!("{}.a", f.name));
                out.push(format!("{}.b", f.name));
            }
            _ => {}
        }
    }
    out.push("missing".into());
    out.dedup();
    out
}

/// A filter over `paths`, with values from the input or from `pool` (values that occur in
/// the documents, so that equalities hit).
pub fn gen_expr(inp: &mut Input, paths: &[String], pool: &[Datum], depth: usize) -> Expr {
    let path = |inp: &mut Input| paths[inp.below(paths.len().min(256))].clone();
    let value = |inp: &mut Input| match (pool.is_empty(), inp.below(4)) {
        (false, 0 | 1) => pool[inp.below(pool.len().min(256))].clone(),
        (false, 2) => match &pool[inp.below(pool.len().min(256))] {
            // A piece of a string that occurs (substring and prefix matches).
            Datum::Str(s) => {
                let chars: Vec<char> = s.chars().collect();
                let a = inp.below(chars.len() + 1);
                let b = a + inp.below(chars.len() - a + 1);
                Datum::Str(chars[a..b].iter().collect())
            }
            other => other.clone(),
        },
        _ => gen_datum(inp, 1),
    };
    let kinds = if depth == 0 { 6 } else { 9 };
    match inp.below(kinds) {
        0 | 1 => Expr::Cmp {
            path: path(inp),
            op: [
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
            ][inp.below(6)],
            value: value(inp),
        },
        2 => Expr::In {
            path: path(inp),
            values: (0..inp.below(4)).map(|_| value(inp)).collect(),
        },
        3 => {
            let p = path(inp);
            match inp.below(3) {
                0 => Expr::StartsWith {
                    path: p,
                    prefix: gen_str(inp),
                },
                1 => Expr::Exists { path: p },
                _ => Expr::IsNone { path: p },
            }
        }
        4 | 5 => Expr::Contains {
            path: path(inp),
            value: value(inp),
            known_list: false,
        },
        6 => Expr::And(
            (0..1 + inp.below(3))
                .map(|_| gen_expr(inp, paths, pool, depth - 1))
                .collect(),
        ),
        7 => Expr::Or(
            (0..1 + inp.below(3))
                .map(|_| gen_expr(inp, paths, pool, depth - 1))
                .collect(),
        ),
        _ => Expr::Not(Box::new(gen_expr(inp, paths, pool, depth - 1))),
    }
}

/// Value equality that also holds for NaN and tells -0.0 from 0.0: same encoding.
pub fn same(a: &Datum, b: &Datum) -> bool {
    a.to_bytes() == b.to_bytes()
}

fn has_nan(d: &Datum) -> bool {
    match d {
        Datum::Float(f) => f.is_nan(),
        Datum::List(items) => items.iter().any(has_nan),
        Datum::Map(entries) => entries.iter().any(|(_, v)| has_nan(v)),
        _ => false,
    }
}

fn short(d: &Datum) -> String {
    let mut s = format!("{d:?}");
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Collects values for the pairwise checks and the filter's value pool: every node of the
/// tree, up to `limit`.
fn collect_values(d: &Datum, out: &mut Vec<Datum>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    out.push(d.clone());
    match d {
        Datum::List(items) => items.iter().for_each(|x| collect_values(x, out, limit)),
        Datum::Map(entries) => entries
            .iter()
            .for_each(|(_, x)| collect_values(x, out, limit)),
        _ => {}
    }
}

/// What `decode_fields(heads)` must return given the full decode.
fn fields_subset(full: &Datum, heads: &[&str]) -> Datum {
    match full {
        Datum::Map(entries) => Datum::Map(
            entries
                .iter()
                .filter(|(k, _)| heads.contains(&k.as_str()))
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

fn kind_ok(e: &Error) -> bool {
    matches!(e, Error::Corruption(_))
}

/// Runs one input. Never panics by itself; engine panics propagate.
pub fn decode_payload(data: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let (build_schema, gen_payloads, db_mode, index_first) = (
        flags & 1 != 0,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 8 != 0,
    );
    let in_txn = flags & 64 != 0;
    let docs = if db_mode {
        1 + ((flags >> 4) & 3) as usize
    } else {
        1
    };

    // The schema.
    let schema = if build_schema {
        let schema = Schema {
            version: u32::from(inp.u8()),
            root: gen_struct(&mut inp, 3),
        };
        let bytes = schema.to_bytes();
        match Schema::from_bytes(&bytes) {
            Ok(back) if back.to_bytes() == bytes => {}
            Ok(back) => out.problems.push(format!(
                "schema round trip changed it: {schema:?} came back as {back:?}"
            )),
            Err(e) => out
                .problems
                .push(format!("a valid schema does not parse: {e} ({schema:?})")),
        }
        schema
    } else {
        let n = inp.u16() as usize;
        let bytes = inp.take(n);
        check_schema_bytes(bytes, &mut out);
        match Schema::from_bytes(bytes) {
            Ok(s) => {
                out.schema_parsed = true;
                s
            }
            Err(_) => Schema {
                version: 1,
                root: StructType {
                    fields: vec![Field {
                        name: "a".into(),
                        ty: FieldType::Any,
                    }],
                },
            },
        }
    };

    if skip_known_bugs() && schema.root.fields.iter().any(|f| has_zero_size_list(&f.ty)) {
        return out;
    }

    // The payloads, with the value each must decode to when generated.
    let mut payloads: Vec<(Vec<u8>, Option<Datum>)> = Vec::new();
    for _ in 0..docs {
        if gen_payloads {
            let mut bytes = Vec::new();
            let expected = gen_struct_payload(&schema.root, &mut inp, &mut bytes);
            payloads.push((bytes, expected));
        } else {
            let n = inp.u16() as usize;
            payloads.push((inp.take(n).to_vec(), None));
        }
    }
    out.payloads = payloads.len();

    // Index specs (database mode).
    let paths = candidate_paths(&schema);
    let mut specs = Vec::new();
    if db_mode {
        for _ in 0..inp.below(4) {
            // Few names: a later spec under the same name rebuilds the index.
            let name = format!("ix{}", inp.below(3));
            let kind = [
                IndexKind::Standard,
                IndexKind::Unique,
                IndexKind::Each,
                IndexKind::Composite,
            ][inp.below(4)];
            let n = if kind == IndexKind::Composite {
                2 + inp.below(2)
            } else {
                1
            };
            specs.push(IndexSpec {
                name,
                kind,
                paths: (0..n)
                    .map(|_| paths[inp.below(paths.len())].clone())
                    .collect(),
            });
        }
    }

    // Decode every payload every way.
    let mut decoded: Vec<Option<Datum>> = Vec::new();
    let mut pool = Vec::new();
    for (i, (bytes, expected)) in payloads.iter().enumerate() {
        let full = match dynamic::decode(&schema.root, bytes) {
            Ok(d) => Some(d),
            Err(e) => {
                if !kind_ok(&e) {
                    out.problems
                        .push(format!("payload {i}: decode failed with {e:?}"));
                }
                None
            }
        };
        if let Some(exp) = expected {
            match &full {
                Some(d) if same(d, exp) => {}
                Some(d) => out.problems.push(format!(
                    "payload {i}: decodes to {} but was encoded from {} (schema {:?}, bytes {bytes:?})",
                    short(d),
                    short(exp),
                    schema.root
                )),
                None => out.problems.push(format!(
                    "payload {i}: a valid encoding of {} does not decode: {:?} (schema {:?}, bytes {bytes:?})",
                    short(exp),
                    dynamic::decode(&schema.root, bytes).err(),
                    schema.root
                )),
            }
        }
        match Datum::decode(bytes) {
            Ok(d) => match Datum::decode(&d.to_bytes()) {
                Ok(back) if same(&back, &d) => collect_values(&d, &mut pool, 64),
                other => out.problems.push(format!(
                    "payload {i}: Datum {} re-encoded decodes to {other:?}",
                    short(&d)
                )),
            },
            Err(e) => {
                if !kind_ok(&e) {
                    out.problems
                        .push(format!("payload {i}: Datum::decode failed with {e:?}"));
                }
            }
        }
        check_schema_bytes(bytes, &mut out);
        if let Some(d) = &full {
            out.decoded += 1;
            collect_values(d, &mut pool, 64);
        }
        decoded.push(full);
    }

    // The filter, evaluated on every decode; mostly on indexed paths, so the planner uses
    // the indexes.
    let mut expr_choices: Vec<String> = Vec::new();
    for spec in &specs {
        for p in &spec.paths {
            expr_choices.extend([p.clone(), p.clone()]);
        }
    }
    expr_choices.extend(paths.iter().cloned());
    let expr = gen_expr(&mut inp, &expr_choices, &pool, 3);
    let mut expr_paths = Vec::new();
    expr.paths(&mut expr_paths);
    // `decode_fields` takes the top-level field names the paths start with.
    let mut heads: Vec<&str> = Vec::new();
    for p in &expr_paths {
        let head = p.split('.').next().unwrap_or(p);
        if !heads.contains(&head) {
            heads.push(head);
        }
    }
    for (i, (bytes, _)) in payloads.iter().enumerate() {
        let fields = match dynamic::decode_fields(&schema.root, bytes, &heads) {
            Ok(d) => Some(d),
            Err(e) => {
                if !kind_ok(&e) {
                    out.problems
                        .push(format!("payload {i}: decode_fields failed with {e:?}"));
                }
                None
            }
        };
        if let Some(full) = &decoded[i] {
            let want = fields_subset(full, &heads);
            match &fields {
                Some(f) if same(f, &want) => {
                    if expr.matches(full) != expr.matches(f) {
                        out.problems.push(format!(
                            "payload {i}: filter {expr:?} is {} on the full decode but {} on decode_fields",
                            expr.matches(full),
                            expr.matches(f)
                        ));
                    }
                }
                Some(f) => out.problems.push(format!(
                    "payload {i}: decode_fields({heads:?}) = {} but the full decode has {}",
                    short(f),
                    short(&want)
                )),
                None => out.problems.push(format!(
                    "payload {i}: decode_fields({heads:?}) fails where decode succeeds"
                )),
            }
        }
    }
    // Datum-decoded payloads too (no panic is all that is asked).
    for (bytes, _) in &payloads {
        if let Ok(d) = Datum::decode(bytes) {
            let _ = expr.matches(&d);
        }
    }

    // Pairwise: compare is antisymmetric and index keys order like compare.
    let mut values = Vec::new();
    for v in pool.iter().take(20) {
        values.push(v.clone());
    }
    collect_expr_values(&expr, &mut values);
    check_order(&values, &mut out);

    if db_mode && out.problems.is_empty() {
        check_db(
            &schema,
            &payloads,
            &decoded,
            &specs,
            index_first,
            in_txn,
            &expr,
            &paths,
            &mut out,
        );
    }
    // One broken promise is reported many times over (every plan, both collections).
    out.problems.truncate(4);
    out
}

fn check_schema_bytes(bytes: &[u8], out: &mut Outcome) {
    match Schema::from_bytes(bytes) {
        Ok(s) => {
            let again = s.to_bytes();
            match Schema::from_bytes(&again) {
                Ok(t) if t.to_bytes() == again => {}
                other => out
                    .problems
                    .push(format!("schema {s:?} re-encoded parses as {other:?}")),
            }
            let _ = s.difference(&s);
            for f in &s.root.fields {
                let _ = f.ty.describe();
            }
        }
        Err(e) => {
            if !kind_ok(&e) {
                out.problems
                    .push(format!("Schema::from_bytes failed with {e:?}"));
            }
        }
    }
}

fn collect_expr_values(e: &Expr, out: &mut Vec<Datum>) {
    match e {
        Expr::Cmp { value, .. } | Expr::Contains { value, .. } => out.push(value.clone()),
        Expr::In { values, .. } => out.extend(values.iter().cloned()),
        Expr::And(items) | Expr::Or(items) => {
            items.iter().for_each(|x| collect_expr_values(x, out))
        }
        Expr::Not(x) => collect_expr_values(x, out),
        _ => {}
    }
}

fn indexable(d: &Datum) -> bool {
    !matches!(
        d,
        Datum::List(_) | Datum::Map(_) | Datum::Set(_) | Datum::Vector(_)
    ) && !has_nan(d)
}

fn check_order(values: &[Datum], out: &mut Outcome) {
    for a in values.iter().take(24) {
        if !has_nan(a) && query::compare(a, a) != Some(Ordering::Equal) {
            out.problems.push(format!(
                "compare({}, itself) = {:?}",
                short(a),
                query::compare(a, a)
            ));
        }
        for b in values.iter().take(24) {
            let ab = query::compare(a, b);
            let ba = query::compare(b, a);
            if ab != ba.map(Ordering::reverse) {
                out.problems.push(format!(
                    "compare is not antisymmetric: compare({}, {}) = {ab:?}, reversed {ba:?}",
                    short(a),
                    short(b)
                ));
            }
            if let (Some(o), true, true) = (ab, indexable(a), indexable(b)) {
                match (
                    obj_core::codec::index_key(std::slice::from_ref(a)),
                    obj_core::codec::index_key(std::slice::from_ref(b)),
                ) {
                    (Ok(ka), Ok(kb)) => {
                        if ka.cmp(&kb) != o {
                            out.problems.push(format!(
                                "index keys order {} and {} as {:?}, compare says {o:?}",
                                short(a),
                                short(b),
                                ka.cmp(&kb)
                            ));
                        }
                        // A tuple's key starts with the key of its first element.
                        if let Ok(kab) = obj_core::codec::index_key(&[a.clone(), b.clone()]) {
                            if !kab.starts_with(&ka) {
                                out.problems.push(format!(
                                    "index key of ({}, {}) does not start with the key of its first value",
                                    short(a),
                                    short(b)
                                ));
                            }
                        }
                    }
                    (x, y) => out.problems.push(format!(
                        "index_key refuses an indexable value: {:?} / {:?}",
                        x.err(),
                        y.err()
                    )),
                }
            }
        }
    }
}

/// Runs a plan to the end and returns the ids it yields.
fn run_plan<R: Reader>(rx: &R, collection: &str, plan: &Plan) -> Result<BTreeSet<u64>, Error> {
    let mut scan = QueryScan::new(rx, collection, plan)?;
    let mut ids = BTreeSet::new();
    // Every document can come out at most once per batch; the bound only stops a runaway.
    for _ in 0..64 {
        let batch = scan.next_batch(rx, 3)?;
        if batch.is_empty() {
            return Ok(ids);
        }
        for found in batch {
            ids.insert(found.pk.id().unwrap_or(0));
        }
    }
    Ok(ids)
}

/// The model: the ids whose value matches.
fn model_ids(docs: &[(u64, Datum)], expr: &Expr) -> BTreeSet<u64> {
    docs.iter()
        .filter(|(_, d)| expr.matches(d))
        .map(|(id, _)| *id)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn check_db(
    schema: &Schema,
    payloads: &[(Vec<u8>, Option<Datum>)],
    decoded: &[Option<Datum>],
    specs: &[IndexSpec],
    index_first: bool,
    in_txn: bool,
    expr: &Expr,
    paths: &[String],
    out: &mut Outcome,
) {
    let problems = &mut out.problems;
    let db = match Db::memory(
        Options::default()
            .durability(Durability::None)
            .cache_size(1 << 20),
    ) {
        Ok(db) => db,
        Err(e) => return problems.push(format!("Db::memory failed: {e:?}")),
    };
    let Ok(mut tx) = db.begin_write() else {
        return problems.push("begin_write failed on a fresh database".into());
    };
    if let Err(e) = tx.register_schema("t", schema) {
        return problems.push(format!("register_schema failed: {e:?}"));
    }
    // Indexes are built inside the documents' transaction (a refused one must leave the
    // transaction as it was), or each in a transaction of its own that a refusal rolls back.
    let mut built = 0;
    if index_first {
        if in_txn {
            built = ensure_indexes(&mut tx, specs, problems);
        } else {
            if let Err(e) = tx.commit() {
                return problems.push(format!("commit failed: {e:?}"));
            }
            built = ensure_each_index(&db, specs, problems);
            tx = match db.begin_write() {
                Ok(tx) => tx,
                Err(e) => return problems.push(format!("begin_write failed: {e:?}")),
            };
        }
    }
    // Typed documents in "t", the same values as Value documents in "v": same ids.
    let mut model: Vec<(u64, Datum)> = Vec::new();
    for (i, (bytes, _)) in payloads.iter().enumerate() {
        let Some(value) = &decoded[i] else {
            if built > 0 {
                // With an index, the payload is decoded on write: refused, not stored.
                match tx.insert_doc("t", DocKind::Typed, schema.version, bytes) {
                    Err(Error::InvalidArgument(_)) => {}
                    other => problems.push(format!(
                        "payload {i} does not decode, yet inserting it with an index gave {other:?}"
                    )),
                }
            }
            continue;
        };
        let t = tx.insert_doc("t", DocKind::Typed, schema.version, bytes);
        let v = tx.insert_doc("v", DocKind::Value, 0, &value.to_bytes());
        match (t, v) {
            (Ok(a), Ok(b)) if a == b => model.push((a, value.clone())),
            (Err(Error::InvalidArgument(_)), Err(Error::InvalidArgument(_))) => {}
            (t, v) => {
                return problems.push(format!(
                    "payload {i}: insert as typed gives {t:?}, as Value {v:?}"
                ))
            }
        }
    }
    if !index_first && in_txn {
        ensure_indexes(&mut tx, specs, problems);
    }
    if let Err(e) = tx.commit() {
        return problems.push(format!("commit failed: {e:?}"));
    }
    if !index_first && !in_txn {
        ensure_each_index(&db, specs, problems);
    }
    out.db_docs = model.len();
    out.index_plans += check_queries(&db, &model, expr, paths, "after insert", problems);

    // Delete the first document and give the second the third's value, then check again.
    if model.len() >= 2 {
        let Ok(mut tx) = db.begin_write() else {
            return problems.push("begin_write failed".into());
        };
        let first = model[0].0;
        for c in ["t", "v"] {
            match tx.delete(c, first) {
                Ok(true) => {}
                other => return problems.push(format!("delete({c}, {first}) gave {other:?}")),
            }
        }
        model.remove(0);
        let (target, source) = (model[0].0, model.len() - 1);
        let value = model[source].1.clone();
        let bytes = payloads
            .iter()
            .zip(decoded)
            .find(|(_, d)| d.as_ref().is_some_and(|d| same(d, &value)))
            .map(|((b, _), _)| b.clone());
        if let Some(bytes) = bytes {
            let t = tx.put_doc("t", target, DocKind::Typed, schema.version, &bytes);
            let v = tx.put_doc("v", target, DocKind::Value, 0, &value.to_bytes());
            match (t, v) {
                (Ok(true), Ok(true)) => model[0].1 = value,
                // A unique index may refuse the copy (source != target shares the value).
                (Err(Error::InvalidArgument(_)), Err(Error::InvalidArgument(_))) => {}
                (t, v) => {
                    return problems.push(format!(
                        "put_doc of document {target}: typed {t:?}, Value {v:?}"
                    ))
                }
            }
        }
        if let Err(e) = tx.commit() {
            return problems.push(format!("commit failed: {e:?}"));
        }
        out.index_plans +=
            check_queries(&db, &model, expr, paths, "after delete and put", problems);
    }
    match db.integrity_check() {
        Ok(_) => {}
        Err(e) => problems.push(format!("integrity_check: {e}")),
    }
}

/// Builds each index in a transaction of its own, rolled back when the index is refused.
/// Returns how many were built.
fn ensure_each_index(db: &Db, specs: &[IndexSpec], problems: &mut Vec<String>) -> usize {
    let mut built = 0;
    for spec in specs {
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                problems.push(format!("begin_write failed: {e:?}"));
                return built;
            }
        };
        if ensure_indexes(&mut tx, std::slice::from_ref(spec), problems) == 1 {
            if let Err(e) = tx.commit() {
                problems.push(format!("commit of index {spec:?} failed: {e:?}"));
                return built;
            }
            built += 1;
        } else {
            tx.rollback();
        }
    }
    built
}

/// Set (to anything) while fuzzing for new bugs: steers around engine bugs already reported
/// (kept in `fuzz/regressions/decode_payload`) instead of finding them again and again.
/// Today: lists of zero-sized items (`list[None]`, `list[tuple[()]]`) nested in a sequence,
/// whose decoding allocates 32 MiB (and 2^20 steps) per inner list.
pub fn skip_known_bugs() -> bool {
    std::env::var_os("OBJ_FUZZ_SKIP_KNOWN_BUGS").is_some()
}

/// True when the type holds a list whose items can take no bytes.
fn has_zero_size_list(ty: &FieldType) -> bool {
    fn min_size(ty: &FieldType) -> usize {
        match ty {
            FieldType::NoneType => 0,
            FieldType::Tuple(ts) => ts.iter().map(min_size).sum(),
            FieldType::Struct(s) => s.fields.iter().map(|f| min_size(&f.ty)).sum(),
            _ => 1,
        }
    }
    match ty {
        FieldType::List(t) => min_size(t) == 0 || has_zero_size_list(t),
        FieldType::Optional(t) | FieldType::Map(t) => has_zero_size_list(t),
        FieldType::Tuple(ts) => ts.iter().any(has_zero_size_list),
        FieldType::Struct(s) => s.fields.iter().any(|f| has_zero_size_list(&f.ty)),
        _ => false,
    }
}

/// Creates every index on both collections; they must succeed or fail together. Returns how
/// many were built.
fn ensure_indexes(
    tx: &mut obj_core::WriteTxn,
    specs: &[IndexSpec],
    problems: &mut Vec<String>,
) -> usize {
    let mut built = 0;
    for spec in specs {
        let t = tx.ensure_index("t", spec);
        let v = tx.ensure_index("v", spec);
        match (&t, &v) {
            (Ok(_), Ok(_)) => built += 1,
            (Err(Error::InvalidArgument(_)), Err(Error::InvalidArgument(_))) => {}
            _ => problems.push(format!(
                "ensure_index({spec:?}) answers {t:?} for typed documents but {v:?} for the same values as Value documents"
            )),
        }
    }
    built
}

fn check_queries(
    db: &Db,
    model: &[(u64, Datum)],
    expr: &Expr,
    paths: &[String],
    when: &str,
    problems: &mut Vec<String>,
) -> usize {
    let mut index_plans = 0;
    let Ok(rx) = db.begin_read() else {
        problems.push("begin_read failed".into());
        return 0;
    };
    let want = model_ids(model, expr);
    for (id, value) in model {
        for c in ["t", "v"] {
            match rx.get(c, *id).and_then(|v| match v {
                Some(v) => rx.decode_stored(c, &v),
                None => Ok(None),
            }) {
                Ok(Some(d)) if same(&d, value) => {}
                other => problems.push(format!(
                    "{when}: {c}/{id} reads back as {other:?}, stored {}",
                    short(value)
                )),
            }
        }
    }
    for c in ["t", "v"] {
        let indexes = match rx.indexes(c) {
            Ok(ix) => ix,
            Err(e) => {
                problems.push(format!("indexes({c}): {e:?}"));
                return index_plans;
            }
        };
        let scan = Plan::unsorted(Access::Scan, Some(expr.clone()));
        let mut plans = vec![scan, query::plan(&indexes, Some(expr.clone()), None)];
        if let Some(p) = paths.first() {
            for descending in [false, true] {
                let order = SortOrder {
                    path: p.clone(),
                    descending,
                };
                plans.push(query::plan(&indexes, Some(expr.clone()), Some(order)));
            }
        }
        for plan in &plans {
            if matches!(plan.access, Access::Index { .. }) {
                index_plans += 1;
            }
            match run_plan(&rx, c, plan) {
                Ok(got) if got == want => {}
                Ok(got) => problems.push(format!(
                    "{when}: query {expr:?} on {c:?} with plan `{}` returns ids {got:?}, expected {want:?} (indexes {:?}; documents {})",
                    plan.explain(),
                    indexes.iter().map(|d| &d.spec).collect::<Vec<_>>(),
                    model
                        .iter()
                        .map(|(id, d)| format!("{id}: {}", short(d)))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                Err(e) => problems.push(format!(
                    "{when}: query {expr:?} on {c:?} with plan `{}` failed: {e:?}",
                    plan.explain()
                )),
            }
        }
    }
    index_plans
}
