//! Engine micro-benchmarks: cost per operation at growing N.
//!
//! Run: `cargo bench -p obj-core --bench engine` (optionally `-- 10000 100000 1000000`).
//! Prints ns/op for batched insert (one transaction), random point get, full scan and
//! batched delete, so flat cost as N grows is visible at a glance.

use obj_core::{Db, Options, Reader};
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn doc(i: u64) -> Vec<u8> {
    // ~100 bytes, shaped like a small encoded document.
    format!("{{customer_id:{i},total:{}.5,status:new,region:us-east,email:user{i}@example.com,tags:[a,b]}}", i % 997)
        .into_bytes()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if args.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        args
    };
    println!("| N | insert ns/op | get ns/op | scan ns/op | delete ns/op | file bytes/doc |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bench.obj");
        let db = Db::open(&path, Options::default()).expect("open");

        let t = Instant::now();
        let mut tx = db.begin_write().expect("begin");
        for i in 0..n {
            tx.insert("docs", &doc(i)).expect("insert");
        }
        tx.commit().expect("commit");
        let insert = t.elapsed().as_nanos() as f64 / n as f64;
        db.checkpoint().expect("checkpoint");
        let file = std::fs::metadata(&path).expect("stat").len() as f64 / n as f64;

        let rx = db.begin_read().expect("read");
        let mut rng = Rng(42);
        let gets = 200_000u64;
        let t = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..gets {
            let id = rng.next() % n + 1;
            bytes += rx.get("docs", id).expect("get").expect("present").len();
        }
        let get = t.elapsed().as_nanos() as f64 / gets as f64;
        assert!(bytes > 0);

        let t = Instant::now();
        let mut seen = 0u64;
        for item in rx.iter("docs").expect("iter") {
            let (_, v) = item.expect("scan");
            seen += v.len() as u64 & 1;
        }
        let scan = t.elapsed().as_nanos() as f64 / n as f64;
        assert!(seen <= n);
        drop(rx);

        let t = Instant::now();
        let mut tx = db.begin_write().expect("begin");
        for id in 1..=n {
            tx.delete("docs", id).expect("delete");
        }
        tx.commit().expect("commit");
        let delete = t.elapsed().as_nanos() as f64 / n as f64;
        println!("| {n} | {insert:.0} | {get:.0} | {scan:.0} | {delete:.0} | {file:.0} |");
    }
}
