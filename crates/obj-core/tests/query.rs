//! Filters evaluated in the engine agree with evaluating them on fully decoded documents,
//! whichever plan (scan or index) runs them, for Value-coded and typed payloads.

use obj_core::codec::wire::{put_bytes, put_f64, put_ivarint, put_uvarint};
use obj_core::codec::{Datum, Field, FieldType, Schema, StructType};
use obj_core::query::{self, sort_key, Access, CmpOp, Expr, Plan, QueryScan, SortOrder};
use obj_core::{Db, DocKind, Durability, IndexKind, IndexSpec, Options, Reader};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn schema() -> Schema {
    let f = |name: &str, ty| Field {
        name: name.into(),
        ty,
    };
    Schema {
        version: 1,
        root: StructType {
            fields: vec![
                f("customer_id", FieldType::Int),
                f("total", FieldType::Float),
                f("status", FieldType::Str),
                f("region", FieldType::Str),
                f("tags", FieldType::List(Box::new(FieldType::Str))),
                f("note", FieldType::Optional(Box::new(FieldType::Str))),
            ],
        },
    }
}

/// (typed payload, the same document as a Datum)
fn order(r: &mut Rng, i: u64) -> (Vec<u8>, Datum) {
    let status = ["new", "paid", "shipped"][r.below(3) as usize];
    let region = ["us", "eu", "apac"][r.below(3) as usize];
    let total = r.below(20_000) as f64 / 100.0;
    let tags: Vec<&str> = (0..r.below(3))
        .map(|_| ["vip", "gift", "bulk"][r.below(3) as usize])
        .collect();
    let note = (r.below(3) == 0).then(|| format!("n{}", r.below(5)));
    let mut p = Vec::new();
    put_ivarint(&mut p, i as i64);
    put_f64(&mut p, total);
    put_bytes(&mut p, status.as_bytes());
    put_bytes(&mut p, region.as_bytes());
    put_uvarint(&mut p, tags.len() as u64);
    for t in &tags {
        put_bytes(&mut p, t.as_bytes());
    }
    match &note {
        Some(n) => {
            p.push(1);
            put_bytes(&mut p, n.as_bytes());
        }
        None => p.push(0),
    }
    let d = Datum::Map(vec![
        ("customer_id".into(), Datum::Int(i as i64)),
        ("total".into(), Datum::Float(total)),
        ("status".into(), Datum::Str(status.into())),
        ("region".into(), Datum::Str(region.into())),
        (
            "tags".into(),
            Datum::List(tags.iter().map(|t| Datum::Str(t.to_string())).collect()),
        ),
        ("note".into(), note.map_or(Datum::Null, Datum::Str)),
    ]);
    (p, d)
}

fn exprs() -> Vec<Expr> {
    let c = |path: &str, op, value| Expr::Cmp {
        path: path.into(),
        op,
        value,
    };
    vec![
        c("region", CmpOp::Eq, Datum::Str("us".into())),
        c("total", CmpOp::Gt, Datum::Int(100)),
        Expr::And(vec![
            c("region", CmpOp::Eq, Datum::Str("eu".into())),
            c("status", CmpOp::Eq, Datum::Str("paid".into())),
        ]),
        Expr::Or(vec![
            c("total", CmpOp::Lt, Datum::Float(5.5)),
            Expr::Contains {
                path: "tags".into(),
                value: Datum::Str("vip".into()),
                known_list: true,
            },
        ]),
        Expr::Not(Box::new(c("status", CmpOp::Ne, Datum::Str("new".into())))),
        Expr::And(vec![
            c("customer_id", CmpOp::Ge, Datum::Int(100)),
            c("customer_id", CmpOp::Le, Datum::Int(140)),
        ]),
        Expr::In {
            path: "status".into(),
            values: vec![Datum::Str("new".into()), Datum::Int(3)],
        },
        Expr::StartsWith {
            path: "note".into(),
            prefix: "n1".into(),
        },
        Expr::IsNone {
            path: "note".into(),
        },
        c("status", CmpOp::Gt, Datum::Int(3)),
        Expr::Contains {
            path: "tags".into(),
            value: Datum::Str("gift".into()),
            known_list: true,
        },
        // A substring of a str field, which no index can answer.
        Expr::Contains {
            path: "status".into(),
            value: Datum::Str("ipp".into()),
            known_list: false,
        },
        Expr::Cmp {
            path: "note".into(),
            op: CmpOp::Ne,
            value: Datum::Str("n1".into()),
        },
    ]
}

fn run<R: Reader>(r: &R, coll: &str, plan: &query::Plan) -> Vec<u64> {
    let mut scan = QueryScan::new(r, coll, plan).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = scan.next_batch(r, 50).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.into_iter().map(|found| found.pk.id().unwrap()));
    }
}

#[test]
fn engine_filters_agree_with_full_decoding_for_every_plan() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path().join("q.obj"),
        Options::default().durability(Durability::None),
    )
    .unwrap();
    let mut r = Rng(3);
    let mut model = Vec::new();
    let mut tx = db.begin_write().unwrap();
    tx.register_schema("typed", &schema()).unwrap();
    let one = |name: &str, kind| IndexSpec {
        name: name.into(),
        kind,
        paths: vec![name.into()],
    };
    for coll in ["typed", "dicts"] {
        tx.ensure_index(coll, &one("region", IndexKind::Standard))
            .unwrap();
        tx.ensure_index(coll, &one("total", IndexKind::Standard))
            .unwrap();
        tx.ensure_index(coll, &one("customer_id", IndexKind::Unique))
            .unwrap();
        tx.ensure_index(coll, &one("tags", IndexKind::Each))
            .unwrap();
        tx.ensure_index(
            coll,
            &IndexSpec {
                name: "rs".into(),
                kind: IndexKind::Composite,
                paths: vec!["region".into(), "status".into()],
            },
        )
        .unwrap();
    }
    for i in 0..1500 {
        let (payload, d) = order(&mut r, i);
        let a = tx.insert_doc("typed", DocKind::Typed, 1, &payload).unwrap();
        let b = tx
            .insert_doc("dicts", DocKind::Value, 0, &d.to_bytes())
            .unwrap();
        assert_eq!(a, b);
        model.push((a, d));
    }
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    for coll in ["typed", "dicts"] {
        let indexes = rx.indexes(coll).unwrap();
        for e in exprs() {
            let mut want: Vec<u64> = model
                .iter()
                .filter(|(_, d)| e.matches(d))
                .map(|(id, _)| *id)
                .collect();
            assert!(
                !want.is_empty() || matches!(e, Expr::Cmp { op: CmpOp::Gt, .. }),
                "{e:?} selects nothing"
            );
            let scan = Plan::unsorted(Access::Scan, Some(e.clone()));
            assert_eq!(run(&rx, coll, &scan), want, "{coll} scan {e:?}");
            let chosen = query::plan(&indexes, Some(e.clone()), None);
            let mut got = run(&rx, coll, &chosen);
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{coll} {} {e:?}", chosen.explain());
        }
        // Plan choice.
        let p = |e: Expr| query::plan(&indexes, Some(e), None).explain();
        assert!(
            p(exprs()[0].clone()).starts_with("index region"),
            "{}",
            p(exprs()[0].clone())
        );
        assert!(
            p(exprs()[2].clone()).starts_with("index rs"),
            "{}",
            p(exprs()[2].clone())
        );
        assert!(p(exprs()[7].clone()).starts_with("scan"));
        assert!(p(exprs()[10].clone()).starts_with("index tags"));
        assert!(p(exprs()[11].clone()).starts_with("scan"));
        // Unless the schema says the field is a list, a str might match a str field by
        // substring, which the Each index cannot answer; other values it answers exactly.
        let contains = |value, known_list| Expr::Contains {
            path: "tags".into(),
            value,
            known_list,
        };
        assert!(p(contains(Datum::Str("vip".into()), false)).starts_with("scan"));
        assert!(p(contains(Datum::Int(3), false)).starts_with("index tags"));
        let by = |path: &str, descending| SortOrder {
            path: path.into(),
            descending,
        };
        let sorted = query::plan(&indexes, None, Some(by("total", false)));
        assert!(sorted.sorted_by_index);
        let ids = run(&rx, coll, &sorted);
        let totals: Vec<f64> = ids
            .iter()
            .map(|id| match model[*id as usize - 1].1.get("total") {
                Some(Datum::Float(f)) => *f,
                _ => unreachable!(),
            })
            .collect();
        assert!(totals.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(ids.len(), model.len());
    }
}

/// The ids a plan yields, with the sort keys the scan hands out.
fn run_keyed<R: Reader>(r: &R, coll: &str, plan: &Plan) -> Vec<(u64, Option<Vec<u8>>)> {
    let mut scan = QueryScan::new(r, coll, plan).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = scan.next_batch(r, 7).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.into_iter().map(|f| (f.pk.id().unwrap(), f.sort_key)));
    }
}

/// Sorting by a field gives one order whichever way the query runs: streamed from an index
/// forwards or backwards, or sorted by the sort keys an unindexed scan hands out; mixed
/// types included (None < bool < numbers < str < bytes, a missing field as None), ties by id
/// and descending as the exact reverse.
#[test]
fn sorted_plans_agree_with_and_without_an_index_both_ways() {
    let db = Db::memory(Options::default().durability(Durability::None)).unwrap();
    let values = [
        Datum::Float(0.5),
        Datum::Bool(true),
        Datum::Bytes(vec![]),
        Datum::Int(0),
        Datum::Null,
        Datum::Str("a".into()),
        Datum::Float(-0.0),
        Datum::Int(1),
        Datum::Float(1.0),
        Datum::Bool(false),
        Datum::Float(f64::NAN),
        Datum::Str(String::new()),
        Datum::Date(3),
        Datum::Float(f64::NEG_INFINITY),
    ];
    let mut r = Rng(9);
    let mut docs = Vec::new();
    let mut tx = db.begin_write().unwrap();
    let spec = IndexSpec {
        name: "v".into(),
        kind: IndexKind::Standard,
        paths: vec!["v".into()],
    };
    tx.ensure_index("indexed", &spec).unwrap();
    // More documents than one index batch (256), and than one leaf page.
    for i in 0..1200u64 {
        let v = (r.below(8) != 0).then(|| values[r.below(values.len() as u64) as usize].clone());
        let mut fields = vec![("i".to_string(), Datum::Int(i as i64))];
        fields.extend(v.clone().map(|v| ("v".to_string(), v)));
        let bytes = Datum::Map(fields).to_bytes();
        let a = tx.insert_doc("plain", DocKind::Value, 0, &bytes).unwrap();
        let b = tx.insert_doc("indexed", DocKind::Value, 0, &bytes).unwrap();
        assert_eq!(a, b);
        docs.push((a, v));
    }
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    let mut want: Vec<(Vec<u8>, u64)> = docs
        .iter()
        .map(|(id, v)| (sort_key(v.as_ref()), *id))
        .collect();
    want.sort();
    let by = |descending| SortOrder {
        path: "v".into(),
        descending,
    };
    for descending in [false, true] {
        let mut expected: Vec<u64> = want.iter().map(|(_, id)| *id).collect();
        if descending {
            expected.reverse();
        }
        let indexes = rx.indexes("indexed").unwrap();
        let streamed = query::plan(&indexes, None, Some(by(descending)));
        assert!(streamed.sorted_by_index);
        assert_eq!(
            streamed.explain(),
            if descending {
                "index v [* .. *] (sorted by index, descending)"
            } else {
                "index v [* .. *] (sorted by index)"
            }
        );
        let got = run_keyed(&rx, "indexed", &streamed);
        assert!(got.iter().all(|(_, k)| k.is_none()));
        assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), expected);
        // Unindexed: the scan yields id order and a sort key per match.
        let plain = query::plan(&rx.indexes("plain").unwrap(), None, Some(by(descending)));
        assert!(!plain.sorted_by_index);
        let mut keyed: Vec<(Vec<u8>, u64)> = run_keyed(&rx, "plain", &plain)
            .into_iter()
            .map(|(id, k)| (k.unwrap(), id))
            .collect();
        keyed.sort();
        if descending {
            keyed.reverse();
        }
        assert_eq!(
            keyed.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            expected
        );
        // A range read backwards stops at both bounds.
        let (lo, hi) = (Datum::Int(0), Datum::Str("a".into()));
        let ranged = Plan {
            access: Access::Index {
                name: "v".into(),
                lo: Some(vec![lo.clone()]),
                hi: Some(vec![hi.clone()]),
            },
            filter: None,
            sort: Some(by(descending)),
            sorted_by_index: true,
        };
        let (klo, khi) = (sort_key(Some(&lo)), sort_key(Some(&hi)));
        let in_range: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|id| {
                let k = sort_key(docs[*id as usize - 1].1.as_ref());
                k >= klo && k <= khi
            })
            .collect();
        assert!(in_range.len() > 100);
        let got: Vec<u64> = run_keyed(&rx, "indexed", &ranged)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(got, in_range, "descending {descending}");
    }
}
