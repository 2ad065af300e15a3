//! What an iterator or query cursor reads from: a snapshot it owns (from a `Db`-level
//! call), a read transaction, or a frozen view of the write transaction taken when the
//! iterator started (its own writes up to then included, later ones not: iterating while
//! writing neither loops nor skips nor repeats).

use crate::read_txn::ReadTransaction;
use crate::shared::{Local, Shared};
use crate::write_txn::WriteTransaction;
use obj_core::{ReadTxn, TxnView};
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::sync::Arc;

pub(crate) enum Source {
    /// A snapshot owned by the iterator; released when the iterator is exhausted or dropped.
    Snapshot(Arc<Shared>, ReadTxn),
    Read(Py<ReadTransaction>),
    /// The write transaction as it was when the iterator started, with the schema checks
    /// it had established by then.
    View {
        txn: Py<WriteTransaction>,
        view: TxnView,
        local: Mutex<Local>,
    },
}

impl Source {
    /// A source over `view`, frozen from the write transaction `txn` with its checks
    /// `local` (both from `WriteTransaction::freeze`).
    pub(crate) fn view(txn: &Bound<'_, WriteTransaction>, view: TxnView, local: Local) -> Source {
        Source::View {
            txn: txn.clone().unbind(),
            view,
            local: Mutex::new(local),
        }
    }

    /// Raises ObjError once the transaction (or database) behind the source has ended.
    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        match self {
            Source::Snapshot(shared, _) => shared.check_open(),
            Source::Read(txn) => txn.get().check_active(py),
            Source::View { txn, .. } => txn.get().check_active(py),
        }
    }
}

/// Runs `$body` with `$r` bound to the source's reader (`&ReadTxn` or `&mut WriteTxn`) and
/// `$checks` to its schema-check sets.
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
            $crate::source::Source::View { txn, view, local } => {
                let mut local = local.lock();
                let $r = view;
                let mut checks = $crate::shared::Checks {
                    shared: txn.get().shared(),
                    local: Some(&mut *local),
                };
                let $checks = &mut checks;
                $body
            }
        }
    };
}

pub(crate) use with_reader;
