//! What an iterator or query cursor reads from: a snapshot it owns (from a `Db`-level
//! call), a read transaction, or the write transaction (seeing its own writes).

use crate::read_txn::ReadTransaction;
use crate::shared::Shared;
use crate::write_txn::WriteTransaction;
use obj_core::ReadTxn;
use pyo3::prelude::*;
use std::sync::Arc;

pub(crate) enum Source {
    /// A snapshot owned by the iterator; released when the iterator is exhausted or dropped.
    Snapshot(Arc<Shared>, ReadTxn),
    Read(Py<ReadTransaction>),
    Write(Py<WriteTransaction>),
}

impl Source {
    /// Raises ObjError once the transaction behind the source has ended.
    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        match self {
            Source::Snapshot(..) => Ok(()),
            Source::Read(txn) => txn.get().check_active(py),
            Source::Write(txn) => txn.get().check_active(py),
        }
    }

    /// The write transaction's change counter (0 for other sources).
    pub(crate) fn changes(&self) -> u64 {
        match self {
            Source::Write(txn) => txn.get().changes(),
            _ => 0,
        }
    }
}

/// Runs `$body` with `$r` bound to the source's reader (`&ReadTxn` or `&mut WriteTxn`) and
/// `$checks` to its schema-check sets. For the write transaction its lock is held while the
/// body runs, so the body must not call back into Python code that could use it.
macro_rules! with_reader {
    ($source:expr, $py:expr, |$r:ident, $checks:ident| $body:expr) => {
        match $source {
            $crate::source::Source::Snapshot(shared, snap) => {
                let $r = &*snap;
                let mut checks = $crate::shared::Checks {
                    shared: &**shared,
                    local: None,
                };
                let $checks = &mut checks;
                $body
            }
            $crate::source::Source::Read(txn) => {
                let txn = txn.get();
                let snap = txn.snapshot($py)?;
                let $r = &snap;
                let mut checks = $crate::shared::Checks {
                    shared: txn.shared(),
                    local: None,
                };
                let $checks = &mut checks;
                $body
            }
            $crate::source::Source::Write(txn) => {
                let txn = txn.get();
                let mut guard = txn.lock($py);
                let live = guard.as_mut().ok_or_else($crate::write_txn::write_ended)?;
                let (writer, local) = live.parts();
                let $r = &*writer;
                let mut checks = $crate::shared::Checks {
                    shared: txn.shared(),
                    local: Some(local),
                };
                let $checks = &mut checks;
                $body
            }
        }
    };
}

pub(crate) use with_reader;
