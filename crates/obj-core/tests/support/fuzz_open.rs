//! The `open_db` fuzz target's logic, shared by `fuzz/fuzz_targets/open_db.rs` and
//! `tests/fuzz_replay.rs` (which replays the committed corpus under `cargo test`).
//!
//! Input layout: 4 bytes little-endian `split`, then the bytes of the store; the first
//! `min(split & 0x7fff_ffff, rest)` bytes are the main file, the remainder is the WAL. When
//! bit 31 of `split` is set, every page checksum, the WAL header checksum and the WAL frame
//! chain are recomputed (and frame salts copied from the WAL header) before opening, so the
//! fuzzer gets past the checksums and exercises the structural checks behind them. The
//! database is opened read-only over in-memory backends and read completely; whatever the
//! bytes are, the engine must answer with data or an error, never a panic or a hang.

#![allow(dead_code)] // Each user needs only part of this module.

use obj_core::backend::MemoryBackend;
use obj_core::{Db, Error, Options, Reader};

/// What happened to one input (for the replay test's expectations on valid seeds).
#[derive(Debug, Default)]
pub struct Outcome {
    /// The error `Db::open_with_backends` returned, if it refused the input.
    pub open_error: Option<String>,
    /// Collections listed, documents read through `iter`, and read errors met.
    pub collections: usize,
    pub documents: u64,
    pub read_errors: usize,
    /// `Some(true)` when `integrity_check` passed, `Some(false)` when it reported damage.
    pub integrity_ok: Option<bool>,
    /// Failures of the engine: an error kind that damage must never produce, or reads that
    /// contradict each other (ids out of order, count != iter length, get != iter) while
    /// integrity_check says the database is fine.
    pub inconsistencies: Vec<String>,
    /// Contradicting reads that integrity_check did report as damage (acceptable: pages
    /// forged with valid checksums can say anything, and only the full check can tell).
    pub explained_contradictions: Vec<String>,
}

/// Bit 31 of the split word: recompute all checksums before opening.
pub const RESEAL: u32 = 1 << 31;

/// Splits a fuzz input into (main file, WAL, reseal flag).
pub fn split_input(data: &[u8]) -> (&[u8], &[u8], bool) {
    if data.len() < 4 {
        return (data, &[], false);
    }
    let word = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let rest = &data[4..];
    let (main, wal) = rest.split_at(((word & !RESEAL) as usize).min(rest.len()));
    (main, wal, word & RESEAL != 0)
}

/// Builds a fuzz input from a main file and a WAL.
pub fn join_input(main: &[u8], wal: &[u8], reseal: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + main.len() + wal.len());
    let word = main.len() as u32 | if reseal { RESEAL } else { 0 };
    out.extend_from_slice(&word.to_le_bytes());
    out.extend_from_slice(main);
    out.extend_from_slice(wal);
    out
}

/// CRC-32 (IEEE), continuing from a previous finalized value like
/// `crc32fast::Hasher::new_with_initial(prev)`; `crc32(0, data)` is the plain CRC.
pub fn crc32(prev: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut c = !prev;
    for &b in data {
        c = table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// WAL layout (`docs/format.md`, "WAL"): 64-byte header with its CRC in the last 4 bytes and
/// the salts at 24 and 28; 32-byte frame headers (page u64, commit u64, salts, chained CRC at
/// 24, 4 unused bytes) each followed by a page image. The chain hashes the frame header's
/// first 24 bytes, then the page's CRC trailer, then the rest of the page.
pub const WAL_HEADER: usize = 64;
pub const FRAME_HEADER: usize = 32;

/// Makes every checksum of the store valid again: page trailers in the main file and in WAL
/// frames, the WAL header CRC and the frame chain. Frame salts are set to the header's.
pub fn reseal(main: &mut [u8], wal: &mut [u8]) {
    let ps = if main.len() >= 16 {
        let p = u32::from_le_bytes([main[12], main[13], main[14], main[15]]) as usize;
        if p.is_power_of_two() && (4096..=65536).contains(&p) {
            p
        } else {
            4096
        }
    } else {
        4096
    };
    for (no, page) in main.chunks_exact_mut(ps).enumerate() {
        obj_core::format::seal_page(no as u64, page);
    }
    if wal.len() < WAL_HEADER {
        return;
    }
    let mut chain = crc32(0, &wal[..WAL_HEADER - 4]);
    wal[WAL_HEADER - 4..WAL_HEADER].copy_from_slice(&chain.to_le_bytes());
    let salts: [u8; 8] = wal[24..32].try_into().unwrap_or([0; 8]);
    for frame in wal[WAL_HEADER..].chunks_exact_mut(FRAME_HEADER + ps) {
        let no = u64::from_le_bytes(frame[..8].try_into().unwrap_or([0; 8]));
        obj_core::format::seal_page(no, &mut frame[FRAME_HEADER..]);
        frame[16..24].copy_from_slice(&salts);
        let c = crc32(chain, &frame[..24]);
        // The page's own trailer is hashed before its body (see `frame_checksum` in wal.rs).
        let c = crc32(c, &frame[frame.len() - 4..]);
        let c = crc32(c, &frame[FRAME_HEADER..frame.len() - 4]);
        frame[24..28].copy_from_slice(&c.to_le_bytes());
        chain = c;
    }
}

/// Error kinds a damaged or foreign input may produce: damage, or a header that asks for a
/// feature this build lacks or for an encryption key (the input can claim anything).
fn acceptable(e: &Error) -> bool {
    matches!(
        e,
        Error::Corruption(_)
            | Error::Integrity(_)
            | Error::FeatureUnsupported(_)
            | Error::Encryption(_)
    )
}

/// Opens the input read-only and reads everything. Never panics by itself: every engine
/// answer is recorded in the returned [`Outcome`].
pub fn open_db(data: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let (main, wal, resealed) = split_input(data);
    let (mut main, mut wal) = (main.to_vec(), wal.to_vec());
    if resealed {
        reseal(&mut main, &mut wal);
    }
    // A small cache so eviction paths run too.
    let opts = Options::default().read_only(true).cache_size(64 << 10);
    let db = match Db::open_with_backends(
        Box::new(MemoryBackend::with_contents(main)),
        Box::new(MemoryBackend::with_contents(wal)),
        opts,
    ) {
        Ok(db) => db,
        Err(e) => {
            if !acceptable(&e) {
                out.inconsistencies.push(format!("open failed with {e:?}"));
            }
            out.open_error = Some(e.to_string());
            return out;
        }
    };
    let mut contradictions = Vec::new();
    let mut note_err = |out: &mut Outcome, what: &str, e: Error| {
        out.read_errors += 1;
        if !acceptable(&e) {
            out.inconsistencies
                .push(format!("{what} failed with {e:?}"));
        }
    };
    match db.begin_read() {
        Ok(rx) => match rx.collections() {
            Ok(names) => {
                out.collections = names.len();
                for name in &names {
                    read_collection(&rx, name, &mut out, &mut contradictions, &mut note_err);
                }
            }
            Err(e) => note_err(&mut out, "collections", e),
        },
        Err(e) => note_err(&mut out, "begin_read", e),
    }
    match db.integrity_check() {
        Ok(_) => out.integrity_ok = Some(true),
        Err(e) => {
            if !acceptable(&e) {
                out.inconsistencies
                    .push(format!("integrity_check failed with {e:?}"));
            }
            out.integrity_ok = Some(false);
        }
    }
    if out.integrity_ok == Some(false) {
        out.explained_contradictions = contradictions;
    } else {
        for c in contradictions {
            out.inconsistencies
                .push(format!("{c} (and integrity_check passed)"));
        }
    }
    out
}

fn read_collection<R: Reader>(
    rx: &R,
    name: &str,
    out: &mut Outcome,
    contradictions: &mut Vec<String>,
    note_err: &mut dyn FnMut(&mut Outcome, &str, Error),
) {
    // A name the API itself would refuse (empty, too long) can only come from a forged
    // catalog: the engine must not list it without integrity_check objecting.
    if name.is_empty() || name.len() > obj_core::MAX_NAME_LEN {
        contradictions.push(format!(
            "collections() lists {name:?}, a name the API refuses"
        ));
        return;
    }
    let count = match rx.count(name) {
        Ok(c) => Some(c),
        Err(e) => {
            note_err(out, "count", e);
            None
        }
    };
    let iter = match rx.iter(name) {
        Ok(it) => it,
        Err(e) => return note_err(out, "iter", e),
    };
    let mut seen = 0u64;
    let mut last = 0u64;
    let mut sample: Vec<(u64, usize)> = Vec::new();
    let mut complete = true;
    for item in iter {
        match item {
            Ok((id, value)) => {
                if id <= last && seen > 0 {
                    contradictions.push(format!("iter({name:?}) gave id {id} after {last}"));
                    complete = false;
                    break;
                }
                if id == 0 {
                    contradictions.push(format!("iter({name:?}) gave id 0 (ids start at 1)"));
                }
                last = id;
                seen += 1;
                out.documents += 1;
                if id != 0 && sample.len() < 16 {
                    sample.push((id, value.len()));
                }
            }
            Err(e) => {
                note_err(out, "iter", e);
                complete = false;
                break;
            }
        }
    }
    if complete {
        if let Some(c) = count {
            if c != seen {
                contradictions.push(format!(
                    "count({name:?}) = {c} but iter gave {seen} documents"
                ));
            }
        }
    }
    // Point reads of what iter saw, plus the ids around them, and a bounded range.
    for &(id, len) in &sample {
        match rx.get(name, id) {
            Ok(Some(v)) if v.len() == len => {}
            Ok(Some(v)) => contradictions.push(format!(
                "get({name:?}, {id}) gave {} bytes, iter gave {len}",
                v.len()
            )),
            Ok(None) => contradictions.push(format!("get({name:?}, {id}) found nothing, iter did")),
            Err(e) => note_err(out, "get", e),
        }
        if let Some(next) = id.checked_add(1) {
            if let Err(e) = rx.get(name, next) {
                note_err(out, "get", e);
            }
        }
    }
    if let Some(&(first, _)) = sample.first() {
        match rx.scan(name, first, 8) {
            Ok(v) if v.first().map(|(id, _)| *id) == Some(first) => {}
            Ok(_) => {
                contradictions.push(format!("scan({name:?}, {first}) does not start at {first}"))
            }
            Err(e) => note_err(out, "scan", e),
        }
    }
}
