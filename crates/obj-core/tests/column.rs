//! Columns against a `Vec` model: random extends, sets, inserts, deletes and truncations
//! of fixed- and variable-width dtypes, across commits, rollbacks and reopens; and the
//! space an i64 column takes.

use obj_core::column::{self, ColumnReads, Dtype, Elem};
use obj_core::{Db, Options, Reader};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A random element of `dtype`, in its stored encoding.
fn element(dtype: Dtype, rng: &mut Rng, at: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let text: String = (0..rng.below(40))
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let bytes: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
    let e = match dtype {
        Dtype::I64 => Elem::Int(rng.next() as i64),
        Dtype::I32 => Elem::Int(rng.next() as i32 as i64),
        Dtype::F64 => Elem::Float(rng.next() as f64 / 3.0),
        Dtype::Bool => Elem::Bool(rng.next().is_multiple_of(2)),
        Dtype::StrN(_) => Elem::Str(&text[..text.len().min(16)]),
        Dtype::Str => Elem::Str(&text),
        Dtype::Bytes => Elem::Bytes(&bytes),
        _ => unreachable!(),
    };
    dtype.encode(&e, at, &mut out).unwrap();
    out
}

fn check(r: &impl Reader, name: &str, model: &[Vec<u8>], what: &str) {
    let info = r.column_info(name).unwrap().expect("the column exists");
    assert_eq!(info.len, model.len() as u64, "{what}: length");
    let got = r.column_elements(name, &info, 0, info.len).unwrap();
    assert!(got == model, "{what}: elements differ");
    if info.dtype.width().is_some() && !model.is_empty() {
        let packed = r
            .column_packed(name, &info, 1.min(info.len), info.len)
            .unwrap();
        assert!(
            packed == model[1.min(model.len())..].concat(),
            "{what}: packed"
        );
    }
}

fn model_run(dtype: Dtype, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.obj");
    let name = "col";
    let mut rng = Rng(seed);
    let mut model: Vec<Vec<u8>> = Vec::new();
    let mut db = Db::open(&path, Options::default()).unwrap();
    for round in 0..40 {
        let mut tx = db.begin_write().unwrap();
        let mut info = column::ensure(&mut tx, name, dtype).unwrap();
        let mut next = model.clone();
        for _ in 0..1 + rng.below(4) {
            let len = next.len() as u64;
            match rng.below(7) {
                0 | 1 => {
                    let big = rng.below(4) == 0;
                    let n = rng.below(if big { 3000 } else { 40 });
                    let elems: Vec<Vec<u8>> =
                        (0..n).map(|k| element(dtype, &mut rng, len + k)).collect();
                    column::extend_elements(&mut tx, name, &mut info, &elems).unwrap();
                    next.extend(elems);
                }
                2 if len > 0 => {
                    let a = rng.below(len);
                    let n = 1 + rng.below((len - a).min(50));
                    let elems: Vec<Vec<u8>> =
                        (0..n).map(|k| element(dtype, &mut rng, a + k)).collect();
                    column::set_elements(&mut tx, name, &info, a, &elems).unwrap();
                    next.splice(a as usize..(a + n) as usize, elems);
                }
                3 => {
                    let at = rng.below(len + 1);
                    let elems: Vec<Vec<u8>> = (0..1 + rng.below(5))
                        .map(|k| element(dtype, &mut rng, at + k))
                        .collect();
                    column::insert_elements(&mut tx, name, &mut info, at, &elems).unwrap();
                    next.splice(at as usize..at as usize, elems);
                }
                4 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + 1 + rng.below(20)).min(len);
                    column::delete_range(&mut tx, name, &mut info, a, b).unwrap();
                    next.drain(a as usize..b as usize);
                }
                5 => {
                    let to = rng.below(len + 1).max(len.saturating_sub(30));
                    column::truncate(&mut tx, name, &mut info, to).unwrap();
                    next.truncate(to as usize);
                }
                _ => {}
            }
        }
        check(&tx, name, &next, "inside the transaction");
        if round % 7 == 3 {
            tx.rollback();
        } else {
            tx.commit().unwrap();
            model = next;
        }
        check(
            &db.begin_read().unwrap(),
            name,
            &model,
            &format!("round {round}"),
        );
        if round % 10 == 9 {
            drop(db);
            db = Db::open(&path, Options::default()).unwrap();
            check(&db.begin_read().unwrap(), name, &model, "after reopening");
        }
    }
    db.integrity_check().unwrap();
}

#[test]
fn fixed_width_columns_follow_the_model() {
    for (i, d) in [
        Dtype::I64,
        Dtype::I32,
        Dtype::F64,
        Dtype::Bool,
        Dtype::StrN(16),
    ]
    .into_iter()
    .enumerate()
    {
        model_run(d, 17 + i as u64);
    }
}

#[test]
fn variable_width_columns_follow_the_model() {
    model_run(Dtype::Str, 99);
    model_run(Dtype::Bytes, 1234);
}

#[test]
fn an_i64_column_is_within_five_percent_of_its_raw_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("s.obj"), Options::default()).unwrap();
    let n: u64 = 1_000_000;
    let packed: Vec<u8> = (0..n as i64).flat_map(|v| v.to_le_bytes()).collect();
    let mut tx = db.begin_write().unwrap();
    let mut info = column::ensure(&mut tx, "v", Dtype::I64).unwrap();
    column::extend_packed(&mut tx, "v", &mut info, &packed).unwrap();
    tx.commit().unwrap();
    let stat = db.stat().unwrap();
    let c = stat.collections.iter().find(|c| c.name == "v").unwrap();
    let ratio = c.file_size_bytes as f64 / (n * 8) as f64;
    assert!(ratio < 1.05, "an i64 column takes {ratio:.3}x its raw size");
    let r = db.begin_read().unwrap();
    let info = r.column_info("v").unwrap().unwrap();
    assert_eq!(
        r.column_packed("v", &info, 123_456, 123_459).unwrap(),
        packed[123_456 * 8..123_459 * 8]
    );
}

#[test]
fn wrong_values_and_dtypes_are_refused() {
    let mut out = Vec::new();
    assert!(Dtype::I32
        .encode(&Elem::Int(1 << 40), 7, &mut out)
        .unwrap_err()
        .to_string()
        .contains("element 7"));
    assert!(Dtype::StrN(3)
        .encode(&Elem::Str("abcd"), 0, &mut out)
        .is_err());
    assert!(Dtype::I64.encode(&Elem::Str("1"), 0, &mut out).is_err());
    assert!(Dtype::parse("f16").is_err());
    assert_eq!(Dtype::parse("vec:f32:8").unwrap(), Dtype::VecF32(8));
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("w.obj"), Options::default()).unwrap();
    let mut tx = db.begin_write().unwrap();
    column::ensure(&mut tx, "c", Dtype::I64).unwrap();
    assert!(column::ensure(&mut tx, "c", Dtype::F64).is_err());
    tx.put_key("kv", b"k", b"v").unwrap();
    assert!(column::ensure(&mut tx, "kv", Dtype::I64).is_err());
    tx.insert("ids", b"x").unwrap();
    assert!(column::ensure(&mut tx, "ids", Dtype::I64).is_err());
}
