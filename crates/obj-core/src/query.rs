//! Declarative filters evaluated inside the engine, a small planner that picks an index,
//! and resumable query scans.
//!
//! Comparison rules: ints and floats compare numerically with each other; any other type
//! mismatch makes a comparison false (`!=` included), and `Not` negates the result; a
//! missing field compares false, except for `Exists` (false) and `IsNone` (true).

use crate::catalog::{IndexDef, IndexKind};
use crate::codec::datum::Datum;
use crate::codec::dynamic;
use crate::codec::Schema;
use crate::doc::DocKind;
use crate::error::{Error, Result};
use crate::index::IndexScan;
use crate::txn::{Reader, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A filter over documents. Paths are dotted field names (`address.city`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Cmp {
        path: String,
        op: CmpOp,
        value: Datum,
    },
    In {
        path: String,
        values: Vec<Datum>,
    },
    StartsWith {
        path: String,
        prefix: String,
    },
    /// A list field holding an element equal to the value (false for any other field, so an
    /// `Each` index answers it exactly).
    Contains {
        path: String,
        value: Datum,
    },
    Exists {
        path: String,
    },
    IsNone {
        path: String,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
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
        (Map(x), Map(y)) => (x == y).then_some(Ordering::Equal),
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
                let Some(field) = doc.path(path) else {
                    return false;
                };
                match compare(field, value) {
                    None => false,
                    Some(o) => match op {
                        CmpOp::Eq => o == Ordering::Equal,
                        CmpOp::Ne => o != Ordering::Equal,
                        CmpOp::Lt => o == Ordering::Less,
                        CmpOp::Le => o != Ordering::Greater,
                        CmpOp::Gt => o == Ordering::Greater,
                        CmpOp::Ge => o != Ordering::Less,
                    },
                }
            }
            Expr::In { path, values } => doc
                .path(path)
                .is_some_and(|f| values.iter().any(|v| equal(f, v))),
            Expr::StartsWith { path, prefix } => {
                matches!(doc.path(path), Some(Datum::Str(s)) if s.starts_with(prefix.as_str()))
            }
            Expr::Contains { path, value } => match doc.path(path) {
                Some(Datum::List(items)) => items.iter().any(|item| equal(item, value)),
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
        name: String,
        lo: Option<Vec<Datum>>,
        hi: Option<Vec<Datum>>,
    },
}

/// The chosen way to run a query.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub access: Access,
    pub filter: Option<Expr>,
    /// True when the access order already is the requested sort order.
    pub sorted_by_index: bool,
}

impl Plan {
    /// A one-line description: `index region [us..us] + filter` or `scan + filter`.
    pub fn explain(&self) -> String {
        let mut s = match &self.access {
            Access::Scan => "scan".to_string(),
            Access::Index { name, lo, hi } => {
                let show = |b: &Option<Vec<Datum>>| match b {
                    None => "*".to_string(),
                    Some(v) => v
                        .iter()
                        .map(crate::index::describe)
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
            s.push_str(" (sorted by index)");
        }
        s
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
    !matches!(d, Datum::List(_) | Datum::Map(_) | Datum::Null)
        && !matches!(d, Datum::Float(f) if f.is_nan())
}

fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::And(items) => items.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// Picks an index for `filter` (an equality or range on an indexed field, or an equality
/// prefix of a composite), or one that yields `sort_field` order; else a scan. The filter
/// always stays in the plan, so an index only narrows the candidates.
pub fn plan(indexes: &[IndexDef], filter: Option<Expr>, sort_field: Option<&str>) -> Plan {
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
                    let v = parts.iter().find_map(|c| match c {
                        Expr::Contains { path: p, value } if p == path && indexable(value) => {
                            Some(value.clone())
                        }
                        _ => None,
                    });
                    let score = if v.is_some() { 20 } else { 0 };
                    (v.clone().map(|v| vec![v]), v.map(|v| vec![v]), score)
                }
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
                    && d.spec.kind == IndexKind::Standard && d.spec.paths[0] == s)));
            return Plan {
                access,
                filter,
                sorted_by_index,
            };
        }
    }
    if let Some(field) = sort_field {
        if let Some(def) = indexes
            .iter()
            .filter(usable)
            .find(|d| d.spec.kind == IndexKind::Standard && d.spec.paths[0] == field)
        {
            let access = Access::Index {
                name: def.spec.name.clone(),
                lo: None,
                hi: None,
            };
            return Plan {
                access,
                filter,
                sorted_by_index: true,
            };
        }
    }
    Plan {
        access: Access::Scan,
        filter,
        sorted_by_index: false,
    }
}

/// A resumable query: yields matching documents a batch at a time.
pub struct QueryScan {
    collection: String,
    filter: Option<Expr>,
    source: Source,
    /// Top-level fields the filter reads (typed payloads decode only these).
    heads: Vec<String>,
    /// Schemas met so far, by type version.
    schemas: Vec<(u32, Arc<Schema>)>,
}

enum Source {
    Primary { next: Option<u64> },
    Index(IndexScan),
}

impl QueryScan {
    pub fn new<R: Reader>(r: &R, collection: &str, plan: &Plan) -> Result<QueryScan> {
        let source = match &plan.access {
            Access::Scan => Source::Primary { next: Some(1) },
            Access::Index { name, lo, hi } => {
                Source::Index(r.index_scan(collection, name, lo.as_deref(), hi.as_deref())?)
            }
        };
        let mut paths = Vec::new();
        if let Some(f) = &plan.filter {
            f.paths(&mut paths);
        }
        let mut heads: Vec<String> = paths
            .iter()
            .filter_map(|p| p.split('.').next())
            .map(String::from)
            .collect();
        heads.dedup();
        Ok(QueryScan {
            collection: collection.to_string(),
            filter: plan.filter.clone(),
            source,
            heads,
            schemas: Vec::new(),
        })
    }

    /// The part of a stored document the filter needs: the whole document for Value-coded
    /// payloads, only the fields on the filter's paths for typed ones.
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

    /// Up to `limit` matching documents (fewer only at the end). `decode` controls whether
    /// values are returned (ids only otherwise).
    pub fn next_batch<R: Reader>(
        &mut self,
        r: &R,
        limit: usize,
    ) -> Result<Vec<(u64, Option<Value>)>> {
        let mut out = Vec::new();
        while out.len() < limit {
            let candidates: Vec<(u64, Value)> = match &mut self.source {
                Source::Primary { next } => {
                    let Some(from) = *next else { break };
                    let batch = r.scan(&self.collection, from, 256)?;
                    *next = batch
                        .last()
                        .map(|(id, _)| id + 1)
                        .filter(|_| batch.len() == 256);
                    batch
                }
                Source::Index(scan) => {
                    let ids = scan.next_batch(r, 256)?;
                    let mut docs = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some(v) = r.get(&self.collection, id)? {
                            docs.push((id, v));
                        }
                    }
                    if docs.is_empty() {
                        break;
                    }
                    docs
                }
            };
            if candidates.is_empty() {
                break;
            }
            for (id, v) in candidates {
                let keep = match self.filter.is_some() {
                    false => true,
                    true => match self.decode(r, &v)? {
                        Some(doc) => self.filter.as_ref().is_some_and(|f| f.matches(&doc)),
                        None => false,
                    },
                };
                if keep {
                    out.push((id, Some(v)));
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
        // Type mismatch: false for every operator, `!=` included; Not flips it.
        assert!(!cmp("status", CmpOp::Ne, Datum::Int(1)).matches(&d));
        assert!(!cmp("status", CmpOp::Gt, Datum::Int(1)).matches(&d));
        assert!(Expr::Not(Box::new(cmp("status", CmpOp::Gt, Datum::Int(1)))).matches(&d));
        // Missing fields.
        assert!(!cmp("nope", CmpOp::Ne, Datum::Int(1)).matches(&d));
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
        assert!(Expr::Contains {
            path: "tags".into(),
            value: Datum::Str("vip".into())
        }
        .matches(&d));
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
        assert_eq!(cmp_int_float(i64::MAX, TWO_POW_63), Some(Ordering::Less));
        assert_eq!(cmp_int_float(3, 2.5), Some(Ordering::Greater));
        assert_eq!(cmp_int_float(-3, -2.5), Some(Ordering::Less));
    }
}
