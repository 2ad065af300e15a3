//! Storage backends for fault injection (the `fault-injection` feature): a store that loses
//! power, and a store whose Nth operation fails.
//!
//! [`SimDisk`] keeps what a real disk would hold after a crash apart from what the OS still
//! buffers: writes since the last `sync` are pending. [`SimDisk::crash`] returns the bytes
//! that "reached the disk": every synced write, plus a random subset of pending writes,
//! some of them torn (only a prefix of a 512-byte-aligned range lands), applied in random
//! order. [`FaultPlan`] fails chosen operations, once or from then on, on any backend.

use crate::backend::StorageBackend;
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A byte store that can lose power. Clone it to share one disk between handles.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    inner: Arc<Mutex<SimState>>,
}

#[derive(Debug, Default)]
struct SimState {
    /// What survives a crash for sure.
    durable: Vec<u8>,
    /// What the OS shows to readers now.
    current: Vec<u8>,
    /// Writes (and truncations) since the last sync, oldest first.
    pending: Vec<Pending>,
}

#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// A tiny deterministic generator so crash images are reproducible from a seed.
#[derive(Clone, Debug)]
pub struct CrashRng(u64);

impl CrashRng {
    pub fn new(seed: u64) -> Self {
        CrashRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

fn apply(buf: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            if buf.len() < start + data.len() {
                buf.resize(start + data.len(), 0);
            }
            buf[start..start + data.len()].copy_from_slice(data);
        }
        Pending::SetLen(len) => buf.resize(*len as usize, 0),
    }
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_contents(bytes: Vec<u8>) -> Self {
        let state = SimState {
            durable: bytes.clone(),
            current: bytes,
            pending: Vec::new(),
        };
        SimDisk {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// What readers see now (as if the OS never crashed).
    pub fn contents(&self) -> Vec<u8> {
        self.inner.lock().current.clone()
    }

    /// Writes not yet made durable by a sync.
    pub fn pending_writes(&self) -> usize {
        self.inner.lock().pending.len()
    }

    /// The bytes a power loss right now would leave: synced data plus a random part of the
    /// pending writes, split into 512-byte sectors that each land whole, torn, or not at all,
    /// in random order.
    pub fn crash(&self, rng: &mut CrashRng) -> Vec<u8> {
        let state = self.inner.lock();
        let mut image = state.durable.clone();
        let mut pieces: Vec<Pending> = Vec::new();
        for op in &state.pending {
            match op {
                Pending::SetLen(len) => {
                    // Truncation is a metadata update: it lands or not as a whole.
                    if rng.below(2) == 0 {
                        pieces.push(Pending::SetLen(*len));
                    }
                }
                Pending::Write { offset, data } => {
                    let mut at = 0usize;
                    while at < data.len() {
                        let sector_end =
                            ((*offset as usize + at) / 512 + 1) * 512 - *offset as usize;
                        let end = sector_end.min(data.len());
                        match rng.below(4) {
                            0 => {} // lost
                            1 => {
                                // torn: only a prefix of the sector
                                let cut = at + rng.below((end - at) as u64) as usize;
                                pieces.push(Pending::Write {
                                    offset: *offset + at as u64,
                                    data: data[at..cut].to_vec(),
                                });
                            }
                            _ => pieces.push(Pending::Write {
                                offset: *offset + at as u64,
                                data: data[at..end].to_vec(),
                            }),
                        }
                        at = end;
                    }
                }
            }
        }
        // Reorder a little: neighbours may land in either order.
        for i in (1..pieces.len()).rev() {
            if rng.below(3) == 0 {
                pieces.swap(i, i - 1);
            }
        }
        for p in &pieces {
            apply(&mut image, p);
        }
        image
    }
}

impl StorageBackend for SimDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let state = self.inner.lock();
        let start = offset as usize;
        let end = start
            .checked_add(buf.len())
            .filter(|e| *e <= state.current.len());
        match end {
            Some(end) => {
                buf.copy_from_slice(&state.current[start..end]);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end",
            )),
        }
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.inner.lock();
        let op = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut state.current, &op);
        state.pending.push(op);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.inner.lock().current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.inner.lock();
        let op = Pending::SetLen(len);
        apply(&mut state.current, &op);
        state.pending.push(op);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.inner.lock();
        state.durable = state.current.clone();
        state.pending.clear();
        Ok(())
    }
}

/// Which operations to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
    Sync,
    SetLen,
    /// Any operation.
    Any,
}

/// Fails the `nth` matching operation (1-based), and with `sticky` every one after it.
/// Share one plan between the main-file and WAL backends to count across both.
#[derive(Debug)]
pub struct FaultPlan {
    kind: OpKind,
    nth: u64,
    sticky: bool,
    seen: AtomicU64,
    failed: AtomicU64,
    /// The OS error the failures carry (`ENOSPC`, ...); `None`: a plain "injected" error.
    errno: Option<i32>,
}

impl FaultPlan {
    pub fn new(kind: OpKind, nth: u64, sticky: bool) -> Arc<Self> {
        Self::build(kind, nth, sticky, None)
    }

    /// Like [`FaultPlan::new`], the failures being the OS error `errno` (for example
    /// `libc::ENOSPC`, 28 on Linux: a full disk).
    pub fn with_os_error(kind: OpKind, nth: u64, sticky: bool, errno: i32) -> Arc<Self> {
        Self::build(kind, nth, sticky, Some(errno))
    }

    fn build(kind: OpKind, nth: u64, sticky: bool, errno: Option<i32>) -> Arc<Self> {
        Arc::new(FaultPlan {
            kind,
            nth,
            sticky,
            seen: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            errno,
        })
    }

    /// How many operations failed so far.
    pub fn failures(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// How many matching operations were seen.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    fn check(&self, kind: OpKind) -> io::Result<()> {
        if self.kind != OpKind::Any && self.kind != kind {
            return Ok(());
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.nth || (self.sticky && n > self.nth) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return Err(match self.errno {
                Some(errno) => io::Error::from_raw_os_error(errno),
                None => io::Error::other(format!("injected {kind:?} failure (operation {n})")),
            });
        }
        Ok(())
    }
}

/// A backend that consults a [`FaultPlan`] before each operation.
#[derive(Debug)]
pub struct Faulty<B> {
    inner: B,
    plan: Arc<FaultPlan>,
}

impl<B: StorageBackend> Faulty<B> {
    pub fn new(inner: B, plan: Arc<FaultPlan>) -> Self {
        Faulty { inner, plan }
    }
}

impl<B: StorageBackend> StorageBackend for Faulty<B> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.plan.check(OpKind::Read)?;
        self.inner.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.plan.check(OpKind::Write)?;
        self.inner.write_at(offset, data)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.plan.check(OpKind::SetLen)?;
        self.inner.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.plan.check(OpKind::Sync)?;
        self.inner.sync()
    }
}

impl SimDisk {
    /// A readable log of the pending operations (for debugging crash cases).
    pub fn describe_pending(&self) -> Vec<String> {
        self.inner
            .lock()
            .pending
            .iter()
            .map(|p| match p {
                Pending::Write { offset, data } => format!("write {}+{}", offset, data.len()),
                Pending::SetLen(l) => format!("set_len {l}"),
            })
            .collect()
    }
}
