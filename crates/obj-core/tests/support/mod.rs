//! Helpers shared by the robustness tests: a seeded RNG, env overrides, full-database dumps,
//! the model type and a CRC32 for re-sealing WAL frames in crafted-damage tests.
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod fuzz_open;

use obj_core::backend::{MemoryBackend, StorageBackend};
use obj_core::{Error, Reader};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// Documents of one collection, by id.
pub type Docs = BTreeMap<u64, Vec<u8>>;
/// Every collection of a database (a collection exists even when it holds no documents).
pub type State = BTreeMap<String, Docs>;

/// xorshift64*, deterministic per seed (same generator as the B-tree unit tests).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Mix the seed so that small seeds (1, 2, 3...) still give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

/// Seeds from a comma-separated env var (decimal or 0x-hex), else `default`.
pub fn seeds_from_env(var: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(var) {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|t| {
                let t = t.trim();
                let parsed = match t.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => t.parse(),
                };
                parsed.unwrap_or_else(|_| panic!("{var}: cannot parse seed {t:?}"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

/// A number from an env var, else `default`.
pub fn env_usize(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}: cannot parse {s:?} as a number")),
        _ => default,
    }
}

/// Reads every collection of a snapshot completely: `iter` must give strictly increasing
/// ids and as many documents as `count` says, otherwise this is a (silent) wrong answer and
/// reported as `Err(String)` with "WRONG:" in front. Engine errors come back as `Ok(Err)`.
pub fn dump<R: Reader>(r: &R) -> Result<Result<State, Error>, String> {
    let names = match r.collections() {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let mut state = State::new();
    for name in names {
        let mut docs = Docs::new();
        let iter = match r.iter(&name) {
            Ok(it) => it,
            Err(e) => return Ok(Err(e)),
        };
        let mut last = 0u64;
        for item in iter {
            let (id, value) = match item {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            if id <= last {
                return Err(format!(
                    "WRONG: iter({name:?}) yielded id {id} after id {last}"
                ));
            }
            last = id;
            docs.insert(id, value.into_vec());
        }
        let count = match r.count(&name) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        if count != docs.len() as u64 {
            return Err(format!(
                "WRONG: count({name:?}) = {count} but iter yielded {} documents",
                docs.len()
            ));
        }
        state.insert(name, docs);
    }
    Ok(Ok(state))
}

/// One-line summary of a state for failure messages.
pub fn describe(state: &State) -> String {
    let parts: Vec<String> = state
        .iter()
        .map(|(n, d)| {
            let bytes: usize = d.values().map(Vec::len).sum();
            format!("{n}: {} docs / {bytes} bytes", d.len())
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// First difference between two states, for failure messages.
pub fn diff(expected: &State, got: &State) -> String {
    for name in expected.keys().chain(got.keys()) {
        match (expected.get(name), got.get(name)) {
            (Some(_), None) => return format!("collection {name:?} missing"),
            (None, Some(_)) => return format!("unexpected collection {name:?}"),
            (Some(a), Some(b)) => {
                for id in a.keys().chain(b.keys()) {
                    match (a.get(id), b.get(id)) {
                        (Some(_), None) => return format!("{name:?}/{id} missing"),
                        (None, Some(v)) => {
                            return format!("unexpected {name:?}/{id} ({} bytes)", v.len())
                        }
                        (Some(x), Some(y)) if x != y => {
                            return format!(
                                "{name:?}/{id}: expected {} bytes, got {} bytes",
                                x.len(),
                                y.len()
                            )
                        }
                        _ => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
    "no difference".into()
}

/// An in-memory store that outlives the `Db` using it, so a test can "reopen" it or look at
/// its bytes.
#[derive(Debug, Clone, Default)]
pub struct SharedMem(pub Arc<MemoryBackend>);

impl SharedMem {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_contents(bytes: Vec<u8>) -> Self {
        SharedMem(Arc::new(MemoryBackend::with_contents(bytes)))
    }
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents()
    }
}

impl StorageBackend for SharedMem {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_at(offset, data)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

pub use fuzz_open::crc32;

/// WAL layout facts the crafted-damage tests need (from `docs/format.md` / `wal.rs`).
pub mod wal_layout {
    pub const HEADER: usize = obj_core::WAL_HEADER_SIZE;
    pub const HEADER_CHECKSUM: usize = HEADER - 4;
    pub const FRAME_HEADER: usize = 32;
    pub const F_PAGE: usize = 0;
    pub const F_COMMIT: usize = 8;
    pub const F_SALT1: usize = 16;
    pub const F_SALT2: usize = 20;
    pub const F_CHECKSUM: usize = 24;
    /// Bytes 28..32 of a frame header: the durability mark, outside the checksum (it only
    /// ever proves damage elsewhere; a damaged mark proves nothing).
    pub const F_PADDING: usize = 28;

    pub fn frame_size(page_size: usize) -> usize {
        FRAME_HEADER + page_size
    }

    /// Recomputes the chained checksum of every whole frame after the header (use after
    /// editing frame contents so the log still validates).
    pub fn rechain(wal: &mut [u8], page_size: usize) {
        if wal.len() < HEADER {
            return;
        }
        let mut chain = super::crc32(0, &wal[..HEADER_CHECKSUM]);
        wal[HEADER_CHECKSUM..HEADER].copy_from_slice(&chain.to_le_bytes());
        let fs = frame_size(page_size);
        let mut off = HEADER;
        while off + fs <= wal.len() {
            let frame = &mut wal[off..off + fs];
            let c = super::crc32(chain, &frame[..F_CHECKSUM]);
            // The page's CRC trailer is hashed before the page body (wal.rs `frame_checksum`).
            let c = super::crc32(c, &frame[fs - 4..]);
            let c = super::crc32(c, &frame[FRAME_HEADER..fs - 4]);
            frame[F_CHECKSUM..F_CHECKSUM + 4].copy_from_slice(&c.to_le_bytes());
            chain = c;
            off += fs;
        }
    }
}
