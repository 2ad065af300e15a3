//! Declarative filters evaluated inside the engine, a small planner that picks an index,
//! and resumable query scans.
//!
//! Comparison rules: ints and floats compare numerically with each other (bools are not
//! numbers); `<`, `<=`, `>`, `>=` and `==` are false for any other type mismatch, for NaN
//! and for a missing field; `!=` is exactly `Not(==)`, so it is true for all of those;
//! `Not` negates any filter. `Exists` is false and `IsNone` true for a missing field.
//!
//! Sort order: by [`sort_key`], the index key encoding (None < bools < numbers < str <
//! bytes < date < datetime < UUID < list < dict; a missing field sorts as None), ties by
//! id; descending is the exact reverse. An index of the sort field yields that order, so
//! indexed and unindexed plans agree.

use crate::catalog::{CollectionKind, IndexDef, IndexKind};
use crate::codec::datum::Datum;
use crate::codec::dynamic;
use crate::codec::Schema;
use crate::doc::DocKind;
use crate::error::{Error, Result};
use crate::index::{Direction, IndexScan};
use crate::reader::{Pk, Reader, Value};
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

pub use crate::codec::keys::sort_key;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=` (the negation of `==`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// A filter over documents. Paths are dotted field names (`address.city`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// The value at `path` compared with `value` by `op`.
    Cmp {
        /// Dotted field path.
        path: String,
        /// The comparison.
        op: CmpOp,
        /// The value compared with.
        value: Datum,
    },
    /// The value at `path` equals one of `values`.
    In {
        /// Dotted field path.
        path: String,
        /// The candidates.
        values: Vec<Datum>,
    },
    /// The str at `path` starts with `prefix`.
    StartsWith {
        /// Dotted field path.
        path: String,
        /// The prefix.
        prefix: String,
    },
    /// A list field holding an element equal to the value, or a str field holding the str
    /// value as a substring; false for any other field. An `Each` index answers the list
    /// case exactly, so the planner uses one unless a str field could match: for a str
    /// value only when `known_list` says the schema declares the field a list (a hint for
    /// the planner; matching does not read it).
    Contains {
        /// Dotted field path.
        path: String,
        /// The element or substring looked for.
        value: Datum,
        /// The schema declares the field a list.
        known_list: bool,
    },
    /// The document has a value at `path` (None counts).
    Exists {
        /// Dotted field path.
        path: String,
    },
    /// The value at `path` is None or missing.
    IsNone {
        /// Dotted field path.
        path: String,
    },
    /// Every one holds.
    And(Vec<Expr>),
    /// At least one holds.
    Or(Vec<Expr>),
    /// It does not hold.
    Not(Box<Expr>),
}

/// Order of two values when they are comparable (same kind, or both numbers).
pub fn compare(a: &Datum, b: &Datum) -> Option<Ordering> {
    use Datum::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Int(x), Float(y)) => cmp_int_float(*x, *y),
        (Float(x), Int(y)) => cmp_int_float(*y, *x).map(Ordering::reverse),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Bytes(x), Bytes(y)) => Some(x.cmp(y)),
        (Null, Null) => Some(Ordering::Equal),
        (DateTime { micros: x, .. }, DateTime { micros: y, .. }) => Some(x.cmp(y)),
        (Date(x), Date(y)) => Some(x.cmp(y)),
        (Uuid(x), Uuid(y)) => Some(x.cmp(y)),
        (List(x), List(y)) => {
            for (p, q) in x.iter().zip(y) {
                match compare(p, q)? {
                    Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        // Dicts only compare for equality: the same names with equal values, in any order.
        (Map(x), Map(y)) => (x.len() == y.len() && {
            // A stable sort keeps repeated names (only damaged bytes hold them) in order.
            let (mut x, mut y): (Vec<_>, Vec<_>) = (x.iter().collect(), y.iter().collect());
            x.sort_by(|a, b| a.0.cmp(&b.0));
            y.sort_by(|a, b| a.0.cmp(&b.0));
            x.iter()
                .zip(&y)
                .all(|(a, b)| a.0 == b.0 && equal(&a.1, &b.1))
        })
        .then_some(Ordering::Equal),
        // Sets only compare for equality: the same members, in any order.
        (Set(x), Set(y)) => {
            let within = |x: &[Datum], y: &[Datum]| x.iter().all(|m| y.iter().any(|n| equal(m, n)));
            (within(x, y) && within(y, x)).then_some(Ordering::Equal)
        }
        // A vector orders as the list of its floats (with other vectors and with lists).
        (Vector(x), _) => compare(&List(x.iter().map(|f| Float(f64::from(*f))).collect()), b),
        (_, Vector(y)) => compare(a, &List(y.iter().map(|f| Float(f64::from(*f))).collect())),
        _ => None,
    }
}

/// 2^63, the first float above every i64.
const TWO_POW_63: f64 = (1u64 << 63) as f64;

/// Exact comparison of an i64 with an f64 (no rounding of large ints).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)),
        o => Some(o),
    }
}

fn equal(a: &Datum, b: &Datum) -> bool {
    compare(a, b) == Some(Ordering::Equal)
}

impl Expr {
    /// Evaluates the filter against a decoded document.
    pub fn matches(&self, doc: &Datum) -> bool {
        match self {
            Expr::Cmp { path, op, value } => {
                // None: a missing field or values that do not compare.
                let order = doc.path(path).and_then(|field| compare(field, value));
                match op {
                    CmpOp::Eq => order == Some(Ordering::Equal),
                    CmpOp::Ne => order != Some(Ordering::Equal),
                    CmpOp::Lt => order == Some(Ordering::Less),
                    CmpOp::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
                    CmpOp::Gt => order == Some(Ordering::Greater),
                    CmpOp::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
                }
            }
            Expr::In { path, values } => doc
                .path(path)
                .is_some_and(|f| values.iter().any(|v| equal(f, v))),
            Expr::StartsWith { path, prefix } => {
                matches!(doc.path(path), Some(Datum::Str(s)) if s.starts_with(prefix.as_str()))
            }
            Expr::Contains { path, value, .. } => match (doc.path(path), value) {
                (Some(Datum::List(items) | Datum::Set(items)), _) => {
                    items.iter().any(|item| equal(item, value))
                }
                (Some(Datum::Str(s)), Datum::Str(part)) => s.contains(part.as_str()),
                _ => false,
            },
            Expr::Exists { path } => doc.path(path).is_some(),
            Expr::IsNone { path } => matches!(doc.path(path), None | Some(Datum::Null)),
            Expr::And(items) => items.iter().all(|e| e.matches(doc)),
            Expr::Or(items) => items.iter().any(|e| e.matches(doc)),
            Expr::Not(e) => !e.matches(doc),
        }
    }

    /// Every field path the filter reads.
    pub fn paths<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Cmp { path, .. }
            | Expr::In { path, .. }
            | Expr::StartsWith { path, .. }
            | Expr::Contains { path, .. }
            | Expr::Exists { path }
            | Expr::IsNone { path } => {
                if !out.contains(&path.as_str()) {
                    out.push(path)
                }
            }
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.paths(out)),
            Expr::Not(e) => e.paths(out),
        }
    }
}

/// How a query reads the collection.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// Every document in id order.
    Scan,
    /// Documents listed by an index between inclusive bounds, in key order.
    Index {
        /// The index name.
        name: String,
        /// Lower bound (a tuple prefix), None for unbounded.
        lo: Option<Vec<Datum>>,
        /// Upper bound (a tuple prefix), None for unbounded.
        hi: Option<Vec<Datum>>,
    },
}

/// A requested result order: by the [`sort_key`] of the value at `path`, ties by id;
/// `descending` is the exact reverse (keys and ids descending).
#[derive(Clone, Debug, PartialEq)]
pub struct SortOrder {
    /// Dotted field path.
    pub path: String,
    /// Reverse order.
    pub descending: bool,
}

/// The chosen way to run a query.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// How candidates are found.
    pub access: Access,
    /// What candidates must satisfy (None: all).
    pub filter: Option<Expr>,
    /// The requested order, if any.
    pub sort: Option<SortOrder>,
    /// True when the access order already is the requested sort order (the index is read
    /// backwards for a descending one); otherwise the scan hands out sort keys.
    pub sorted_by_index: bool,
}

impl Plan {
    /// A plan with no requested order.
    pub fn unsorted(access: Access, filter: Option<Expr>) -> Plan {
        Plan {
            access,
            filter,
            sort: None,
            sorted_by_index: false,
        }
    }

    /// A one-line description: `index region ['us' .. 'us'] + filter`, `scan + filter`,
    /// with `(sorted by index)` or `(sorted by index, descending)` when the index yields
    /// the requested order. Values are written as Python writes them.
    pub fn explain(&self) -> String {
        let mut s = match &self.access {
            Access::Scan => "scan".to_string(),
            Access::Index { name, lo, hi } => {
                let show = |b: &Option<Vec<Datum>>| match b {
                    None => "*".to_string(),
                    Some(v) => v
                        .iter()
                        .map(Datum::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                format!("index {name} [{} .. {}]", show(lo), show(hi))
            }
        };
        if self.filter.is_some() {
            s.push_str(" + filter");
        }
        if self.sorted_by_index {
            s.push_str(match self.direction() {
                Direction::Forward => " (sorted by index)",
                Direction::Backward => " (sorted by index, descending)",
            });
        }
        s
    }

    /// The way an index access walks: backwards when it yields a descending order.
    pub fn direction(&self) -> Direction {
        match &self.sort {
            Some(o) if self.sorted_by_index && o.descending => Direction::Backward,
            _ => Direction::Forward,
        }
    }

    /// The path whose sort keys the scan hands out: the requested order's, unless the
    /// index already yields it.
    pub fn sort_path(&self) -> Option<&str> {
        match &self.sort {
            Some(o) if !self.sorted_by_index => Some(&o.path),
            _ => None,
        }
    }
}

/// Bounds one conjunct puts on a path: (lo, hi), inclusive, None = open.
fn bounds_of(e: &Expr, path: &str) -> Option<(Option<Datum>, Option<Datum>)> {
    match e {
        Expr::Cmp { path: p, op, value } if p == path && indexable(value) => match op {
            CmpOp::Eq => Some((Some(value.clone()), Some(value.clone()))),
            CmpOp::Gt | CmpOp::Ge => Some((Some(value.clone()), None)),
            CmpOp::Lt | CmpOp::Le => Some((None, Some(value.clone()))),
            CmpOp::Ne => None,
        },
        _ => None,
    }
}

fn indexable(d: &Datum) -> bool {
    !matches!(
        d,
        Datum::List(_) | Datum::Map(_) | Datum::Set(_) | Datum::Vector(_) | Datum::Null
    ) && !matches!(d, Datum::Float(f) if f.is_nan())
}

fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::And(items) => items.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// True when `def` lists documents in the order of `path`'s sort keys (ties by id).
pub fn yields_order_of(def: &IndexDef, path: &str) -> bool {
    def.spec.kind == IndexKind::Standard && def.spec.paths[0] == path
}

/// Picks an index for `filter` (an equality or range on an indexed field, or an equality
/// prefix of a composite), or one that yields the `sort` order (either way round); else a
/// scan. The filter always stays in the plan, so an index only narrows the candidates.
pub fn plan(indexes: &[IndexDef], filter: Option<Expr>, sort: Option<SortOrder>) -> Plan {
    let sort_field = sort.as_ref().map(|o| o.path.as_str());
    let usable = |d: &&IndexDef| d.ready;
    if let Some(f) = &filter {
        let parts = conjuncts(f);
        // Composite: the longest run of equalities on a prefix of its paths.
        let mut best: Option<(usize, Access)> = None;
        for def in indexes.iter().filter(usable) {
            let (lo, hi, score) = match def.spec.kind {
                IndexKind::Standard | IndexKind::Unique => {
                    let path = &def.spec.paths[0];
                    let (mut lo, mut hi) = (None, None);
                    for c in &parts {
                        if let Some((l, h)) = bounds_of(c, path) {
                            lo = lo.or(l);
                            hi = hi.or(h);
                        }
                    }
                    let score = match (&lo, &hi) {
                        (Some(l), Some(h)) if l == h => 30,
                        (None, None) => 0,
                        _ => 10,
                    };
                    (lo.map(|v| vec![v]), hi.map(|v| vec![v]), score)
                }
                IndexKind::Composite => {
                    let mut values = Vec::new();
                    for path in &def.spec.paths {
                        let eq = parts.iter().find_map(|c| match bounds_of(c, path) {
                            Some((Some(l), Some(h))) if l == h => Some(l),
                            _ => None,
                        });
                        match eq {
                            Some(v) => values.push(v),
                            None => break,
                        }
                    }
                    // One matched field scores below a single-field index on it (the
                    // narrower index keeps id order for ties); two or more score above.
                    let score = if values.is_empty() {
                        0
                    } else {
                        15 + 10 * values.len()
                    };
                    (Some(values.clone()), Some(values), score)
                }
                IndexKind::Each => {
                    let path = &def.spec.paths[0];
                    // A str value may match a str field by substring, which no index holds.
                    let v = parts.iter().find_map(|c| match c {
                        Expr::Contains {
                            path: p,
                            value,
                            known_list,
                        } if p == path
                            && indexable(value)
                            && (*known_list || !matches!(value, Datum::Str(_))) =>
                        {
                            Some(value.clone())
                        }
                        _ => None,
                    });
                    let score = if v.is_some() { 20 } else { 0 };
                    (v.clone().map(|v| vec![v]), v.map(|v| vec![v]), score)
                }
                // Expiry times answer no filter.
                IndexKind::Expiry => continue,
            };
            // Unique scans skip documents without a value; only equalities may use them.
            if score == 0 || (def.spec.kind == IndexKind::Unique && score != 30) {
                continue;
            }
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((
                    score,
                    Access::Index {
                        name: def.spec.name.clone(),
                        lo,
                        hi,
                    },
                ));
            }
        }
        if let Some((_, access)) = best {
            let sorted_by_index = matches!(&access, Access::Index { name, .. }
                if sort_field.is_some_and(|s| indexes.iter().any(|d| &d.spec.name == name
                    && yields_order_of(d, s))));
            return Plan {
                access,
                filter,
                sort,
                sorted_by_index,
            };
        }
    }
    if let Some(field) = sort_field {
        if let Some(def) = indexes
            .iter()
            .filter(usable)
            .find(|d| yields_order_of(d, field))
        {
            let access = Access::Index {
                name: def.spec.name.clone(),
                lo: None,
                hi: None,
            };
            return Plan {
                access,
                filter,
                sort,
                sorted_by_index: true,
            };
        }
    }
    Plan {
        access: Access::Scan,
        filter,
        sort,
        sorted_by_index: false,
    }
}

/// A resumable query: yields matching documents a batch at a time.
pub struct QueryScan {
    collection: String,
    filter: Option<Expr>,
    /// The path whose sort key each match carries (an order the access does not yield).
    sort_path: Option<String>,
    source: Source,
    /// Top-level fields the filter and the sort read (typed payloads decode only these).
    heads: Vec<String>,
    /// Schemas met so far, by type version.
    schemas: Vec<(u32, Arc<Schema>)>,
}

enum Source {
    /// The id tree of an id collection, from id `next`.
    Primary {
        next: Option<u64>,
    },
    /// The key tree of a keyed collection, past key `after` (None: from the start);
    /// `done` once a short batch came back.
    Keys {
        after: Option<Vec<u8>>,
        done: bool,
    },
    Index(IndexScan),
}

/// One matching document.
pub struct Found {
    /// Where it sits: its id, or its key in a keyed collection.
    pub pk: Pk,
    /// The stored document.
    pub value: Value,
    /// The [`sort_key`] of the plan's sort field, when the caller must sort.
    pub sort_key: Option<Vec<u8>>,
}

impl QueryScan {
    /// A scan of `collection` by `plan` in the snapshot `r`.
    pub fn new<R: Reader>(r: &R, collection: &str, plan: &Plan) -> Result<QueryScan> {
        let keyed = r.kind(collection)? == Some(CollectionKind::Keyed);
        let source = match &plan.access {
            Access::Scan if keyed => Source::Keys {
                after: None,
                done: false,
            },
            Access::Scan => Source::Primary { next: Some(1) },
            Access::Index { name, lo, hi } => Source::Index(r.index_walk(
                collection,
                name,
                lo.as_deref(),
                hi.as_deref(),
                plan.direction(),
            )?),
        };
        let mut paths = Vec::new();
        if let Some(f) = &plan.filter {
            f.paths(&mut paths);
        }
        let sort_path = plan.sort_path();
        paths.extend(sort_path);
        let mut heads: Vec<String> = Vec::new();
        for head in paths.iter().filter_map(|p| p.split('.').next()) {
            if !heads.iter().any(|h| h == head) {
                heads.push(head.to_string());
            }
        }
        Ok(QueryScan {
            collection: collection.to_string(),
            filter: plan.filter.clone(),
            sort_path: sort_path.map(String::from),
            source,
            heads,
            schemas: Vec::new(),
        })
    }

    /// The part of a stored document the filter and sort need: the whole document for
    /// Value-coded payloads, only the fields on their paths for typed ones.
    fn decode<R: Reader>(&mut self, r: &R, doc: &Value) -> Result<Option<Datum>> {
        let h = doc.header();
        if h.kind != DocKind::Typed {
            return r.decode_stored(&self.collection, doc);
        }
        let schema = match self.schemas.iter().find(|(v, _)| *v == h.type_version) {
            Some((_, s)) => s.clone(),
            None => {
                let s = r.schema(&self.collection, h.type_version)?.ok_or_else(|| {
                    Error::corrupt(format!(
                        "no schema stored for {:?} version {}",
                        self.collection, h.type_version
                    ))
                })?;
                self.schemas.push((h.type_version, s.clone()));
                s
            }
        };
        let heads: Vec<&str> = self.heads.iter().map(String::as_str).collect();
        Ok(Some(dynamic::decode_fields(&schema.root, doc, &heads)?))
    }

    /// Up to `limit` matching documents (fewer only at the end), each with the sort key
    /// of the plan's sort field when the caller has to sort.
    pub fn next_batch<R: Reader>(&mut self, r: &R, limit: usize) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        while out.len() < limit {
            let candidates: Vec<(Pk, Value)> = match &mut self.source {
                Source::Primary { next } => {
                    let Some(from) = *next else { break };
                    let batch = r.scan(&self.collection, from, 256)?;
                    *next = batch
                        .last()
                        .map(|(id, _)| id + 1)
                        .filter(|_| batch.len() == 256);
                    batch.into_iter().map(|(id, v)| (Pk::Id(id), v)).collect()
                }
                Source::Keys { after, done } => {
                    if *done {
                        break;
                    }
                    let lo = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                    let batch = r.scan_keys(&self.collection, lo, Bound::Unbounded, false, 256)?;
                    *done = batch.len() < 256;
                    if let Some((last, _)) = batch.last() {
                        *after = Some(last.clone());
                    }
                    batch.into_iter().map(|(k, v)| (Pk::Key(k), v)).collect()
                }
                Source::Index(scan) if scan.is_keyed() => {
                    let keys = scan.next_keys(r, 256)?;
                    if keys.is_empty() {
                        break;
                    }
                    let mut docs = Vec::with_capacity(keys.len());
                    for key in keys {
                        if let Some(v) = r.get_key(&self.collection, &key)? {
                            docs.push((Pk::Key(key), v));
                        }
                    }
                    docs
                }
                Source::Index(scan) => {
                    let ids = scan.next_batch(r, 256)?;
                    if ids.is_empty() {
                        break;
                    }
                    let mut docs = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some(v) = r.get(&self.collection, id)? {
                            docs.push((Pk::Id(id), v));
                        }
                    }
                    docs
                }
            };
            if candidates.is_empty() {
                break;
            }
            for (pk, value) in candidates {
                if self.filter.is_none() && self.sort_path.is_none() {
                    out.push(Found {
                        pk,
                        value,
                        sort_key: None,
                    });
                    continue;
                }
                let doc = self.decode(r, &value)?;
                let keep = match (&self.filter, &doc) {
                    (None, _) => true,
                    (Some(f), Some(doc)) => f.matches(doc),
                    // Raw records match no field filter.
                    (Some(_), None) => false,
                };
                if keep {
                    let sort_key = self
                        .sort_path
                        .as_deref()
                        .map(|p| sort_key(doc.as_ref().and_then(|d| d.path(p))));
                    out.push(Found {
                        pk,
                        value,
                        sort_key,
                    });
                }
            }
        }
        // A batch can overshoot `limit` by the rest of one candidate batch; callers take what
        // they need and keep the rest.
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Datum {
        Datum::Map(vec![
            ("total".into(), Datum::Float(150.0)),
            ("n".into(), Datum::Int(7)),
            ("status".into(), Datum::Str("shipped".into())),
            ("tags".into(), Datum::List(vec![Datum::Str("vip".into())])),
            (
                "addr".into(),
                Datum::Map(vec![("city".into(), Datum::Str("Oslo".into()))]),
            ),
            ("gone".into(), Datum::Null),
        ])
    }

    fn cmp(path: &str, op: CmpOp, value: Datum) -> Expr {
        Expr::Cmp {
            path: path.into(),
            op,
            value,
        }
    }

    #[test]
    fn comparison_rules() {
        let d = doc();
        assert!(cmp("total", CmpOp::Gt, Datum::Int(100)).matches(&d));
        assert!(cmp("n", CmpOp::Lt, Datum::Float(7.5)).matches(&d));
        assert!(cmp("n", CmpOp::Eq, Datum::Float(7.0)).matches(&d));
        // Type mismatch: false for every ordering and for `==`; `!=` is its negation.
        assert!(cmp("status", CmpOp::Ne, Datum::Int(1)).matches(&d));
        assert!(!cmp("status", CmpOp::Eq, Datum::Int(1)).matches(&d));
        assert!(!cmp("status", CmpOp::Gt, Datum::Int(1)).matches(&d));
        assert!(Expr::Not(Box::new(cmp("status", CmpOp::Gt, Datum::Int(1)))).matches(&d));
        // NaN equals nothing, so `!=` NaN holds for every value.
        assert!(cmp("total", CmpOp::Ne, Datum::Float(f64::NAN)).matches(&d));
        assert!(!cmp("total", CmpOp::Eq, Datum::Float(f64::NAN)).matches(&d));
        // Missing fields: false but for `!=`.
        assert!(cmp("nope", CmpOp::Ne, Datum::Int(1)).matches(&d));
        assert!(!cmp("nope", CmpOp::Eq, Datum::Int(1)).matches(&d));
        assert!(!cmp("nope", CmpOp::Le, Datum::Int(1)).matches(&d));
        assert!(!Expr::Exists {
            path: "nope".into()
        }
        .matches(&d));
        assert!(Expr::IsNone {
            path: "nope".into()
        }
        .matches(&d));
        assert!(Expr::IsNone {
            path: "gone".into()
        }
        .matches(&d));
        assert!(Expr::Exists {
            path: "gone".into()
        }
        .matches(&d));
        assert!(cmp("addr.city", CmpOp::Eq, Datum::Str("Oslo".into())).matches(&d));
        let contains = |path: &str, value: Datum| Expr::Contains {
            path: path.into(),
            value,
            known_list: false,
        };
        assert!(contains("tags", Datum::Str("vip".into())).matches(&d));
        // A str holds a str as a substring; nothing else holds anything.
        assert!(contains("status", Datum::Str("hipp".into())).matches(&d));
        assert!(contains("status", Datum::Str(String::new())).matches(&d));
        assert!(!contains("status", Datum::Str("x".into())).matches(&d));
        assert!(!contains("n", Datum::Int(7)).matches(&d));
        assert!(!contains("nope", Datum::Str("".into())).matches(&d));
        assert!(Expr::StartsWith {
            path: "status".into(),
            prefix: "ship".into()
        }
        .matches(&d));
        assert!(Expr::In {
            path: "n".into(),
            values: vec![Datum::Str("7".into()), Datum::Float(7.0)]
        }
        .matches(&d));
        // Dicts are equal with the same entries in any order.
        let m = |e: Vec<(&str, Datum)>| {
            Datum::Map(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        assert!(cmp(
            "addr",
            CmpOp::Eq,
            m(vec![("city", Datum::Str("Oslo".into()))])
        )
        .matches(&d));
        let two = Datum::Map(vec![(
            "m".into(),
            m(vec![("a", Datum::Int(1)), ("b", Datum::Float(2.0))]),
        )]);
        assert!(cmp(
            "m",
            CmpOp::Eq,
            m(vec![("b", Datum::Int(2)), ("a", Datum::Int(1))])
        )
        .matches(&two));
        assert!(cmp("m", CmpOp::Ne, m(vec![("a", Datum::Int(1))])).matches(&two));
        assert_eq!(cmp_int_float(i64::MAX, TWO_POW_63), Some(Ordering::Less));
        assert_eq!(cmp_int_float(3, 2.5), Some(Ordering::Greater));
        assert_eq!(cmp_int_float(-3, -2.5), Some(Ordering::Less));
    }

    /// Ne is the exact negation of Eq for every pair of values and for a missing field.
    #[test]
    fn not_equal_is_the_negation_of_equal() {
        let values = [
            Datum::Null,
            Datum::Bool(true),
            Datum::Bool(false),
            Datum::Int(1),
            Datum::Int(0),
            Datum::Float(1.0),
            Datum::Float(-0.0),
            Datum::Float(0.0),
            Datum::Float(f64::NAN),
            Datum::Float(f64::INFINITY),
            Datum::Str("1".into()),
            Datum::Bytes(b"1".to_vec()),
            Datum::List(vec![Datum::Int(1)]),
            Datum::List(vec![Datum::Float(f64::NAN)]),
            Datum::Map(vec![("a".into(), Datum::Int(1))]),
            Datum::Date(1),
            Datum::Uuid([1; 16]),
        ];
        for field in &values {
            let doc = Datum::Map(vec![("v".into(), field.clone())]);
            for value in &values {
                for path in ["v", "missing", "v.deeper"] {
                    let eq = cmp(path, CmpOp::Eq, value.clone()).matches(&doc);
                    let ne = cmp(path, CmpOp::Ne, value.clone()).matches(&doc);
                    assert_eq!(ne, !eq, "{path}: {field:?} vs {value:?}");
                }
            }
        }
    }

    #[test]
    fn explain_writes_values_as_python_does() {
        let plan = Plan::unsorted(
            Access::Index {
                name: "k".into(),
                lo: Some(vec![Datum::Uuid([0; 16]), Datum::Bytes(b"k".to_vec())]),
                hi: Some(vec![
                    Datum::Date(19_723),
                    Datum::DateTime {
                        micros: 0,
                        offset_secs: None,
                    },
                    Datum::Str("s".into()),
                    Datum::Float(1.5),
                    Datum::Null,
                    Datum::Bool(true),
                ]),
            },
            None,
        );
        assert_eq!(
            plan.explain(),
            "index k [UUID('00000000-0000-0000-0000-000000000000'), b'k' .. \
             datetime.date(2024, 1, 1), datetime.datetime(1970, 1, 1, 0, 0), 's', 1.5, None, True]"
        );
    }
}
