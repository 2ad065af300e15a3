//! Where a read reads from: the one source of a snapshot behind every read of `Db`,
//! `ReadTransaction` and `WriteTransaction`.
//!
//! An [`Origin`] is what a Python object reads through: the database itself (each read on
//! a fresh snapshot of the latest commit), a read transaction (its snapshot), or a write
//! transaction (the transaction itself, its own writes included). [`resolve`] sends a
//! target in an attached namespace (`"archive.orders"`, or a class declared for it) to
//! the attached database, the same way for all three: a `Db`-level read takes a fresh
//! snapshot of the attached file, a transaction the one it pinned there (see `state.rs`).
//!
//! A [`Source`] is what an iterator or a query cursor keeps reading from: a snapshot it
//! owns (from a `Db`-level call), a read transaction, a frozen view of the write
//! transaction taken when it started (its own writes up to then included, later ones not:
//! iterating while writing neither loops nor skips nor repeats), or a transaction's
//! snapshot of an attached database.

use crate::args::{self, Target};
use crate::error::to_py;
use crate::shared::{prepare, Checks, Local, Shared};
use crate::state::{ReadState, WriteState};
use obj_core::{ReadTxn, TxnView, WriteTxn};
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::sync::Arc;

/// A reader borrowed for one step of a read.
pub(crate) enum Snap<'a> {
    Read(&'a ReadTxn),
    Write(&'a WriteTxn),
    View(&'a TxnView),
}

/// Runs `$body` with `$r` bound to the reader of `$snap` (a [`Snap`]), whatever its type.
macro_rules! on_snap {
    ($snap:expr, |$r:ident| $body:expr) => {
        match $snap {
            $crate::source::Snap::Read($r) => $body,
            $crate::source::Snap::Write($r) => $body,
            $crate::source::Snap::View($r) => $body,
        }
    };
}

pub(crate) use on_snap;

/// Which database a resolved target is read from.
#[derive(Clone)]
pub(crate) enum Place {
    /// The database of the origin.
    Here,
    /// A database attached to it.
    Attached(Arc<Shared>),
}

/// Where a read of `target` goes, with the target as that database names it: a name in an
/// attached namespace loses its prefix there, and a class declared for one reads through
/// its codec compiled for the bare collection. A namespace that is not attached is
/// NotFoundError.
pub(crate) fn resolve<'py>(shared: &Shared, target: Target<'py>) -> PyResult<(Place, Target<'py>)> {
    let full = target.collection();
    let Some((namespace, collection)) = full.split_once('.') else {
        return Ok((Place::Here, target));
    };
    let Some(attachment) = shared.attachment(namespace) else {
        return Err(args::unattached(full, namespace));
    };
    // An attached database has no attachments of its own.
    args::check_name(collection)?;
    let resolved = match &target {
        Target::Name(_) => Target::Name(collection.to_owned()),
        Target::Typed(dt) => Target::Typed(attachment.rebased(dt, collection)?),
    };
    Ok((Place::Attached(attachment.shared.clone()), resolved))
}

/// What a Python object reads through.
#[derive(Clone)]
pub(crate) enum Origin {
    /// The database: every read on a snapshot of the latest commit, taken for it.
    Db(Arc<Shared>),
    Read(Arc<ReadState>),
    Write(Arc<WriteState>),
}

impl Origin {
    /// The database read through.
    pub(crate) fn shared(&self) -> &Shared {
        match self {
            Origin::Db(shared) => shared,
            Origin::Read(state) => &state.shared,
            Origin::Write(state) => &state.shared,
        }
    }

    /// See [`resolve`].
    pub(crate) fn resolve<'py>(&self, target: Target<'py>) -> PyResult<(Place, Target<'py>)> {
        resolve(self.shared(), target)
    }

    /// A transaction's snapshot of an attached database (a fresh one for the database).
    fn attached_snapshot(&self, py: Python<'_>, attached: &Arc<Shared>) -> PyResult<ReadTxn> {
        match self {
            Origin::Db(_) => attached.db.begin_read().map_err(to_py),
            Origin::Read(state) => state.pin(py, attached),
            Origin::Write(state) => state.pin(py, attached),
        }
    }

    /// Runs `f` with a reader of `place` and the schema checks that go with it. No Python
    /// code may run in `f`: a transaction's lock is held.
    pub(crate) fn with<R>(
        &self,
        py: Python<'_>,
        place: &Place,
        f: impl FnOnce(Snap<'_>, &mut Checks<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        if let Place::Attached(attached) = place {
            let snap = self.attached_snapshot(py, attached)?;
            return f(Snap::Read(&snap), &mut Checks::committed(attached));
        }
        match self {
            Origin::Db(shared) => {
                let snap = shared.db.begin_read().map_err(to_py)?;
                f(Snap::Read(&snap), &mut Checks::committed(shared))
            }
            Origin::Read(state) => state.with(py, |snap| {
                f(Snap::Read(snap), &mut Checks::committed(&state.shared))
            }),
            Origin::Write(state) => state.with(py, |live| {
                let mut checks = Checks {
                    shared: &state.shared,
                    local: Some(&mut live.local),
                };
                f(Snap::Write(&live.txn), &mut checks)
            }),
        }
    }

    /// Gets a document class ready for a read that uses its indexes: the database builds
    /// what is missing in a write of its own, a write transaction in itself; a read
    /// transaction reads what its snapshot holds, and so does an attached (read-only)
    /// database.
    pub(crate) fn prepare(
        &self,
        py: Python<'_>,
        place: &Place,
        target: &Target<'_>,
    ) -> PyResult<()> {
        let Target::Typed(dt) = target else {
            return Ok(());
        };
        let dt = dt.get();
        match (place, self) {
            (Place::Attached(attached), _) => attached.ensure_ready(py, dt),
            (Place::Here, Origin::Db(shared)) => shared.ensure_ready(py, dt),
            (Place::Here, Origin::Read(_)) => Ok(()),
            (Place::Here, Origin::Write(state)) => {
                let shared = &*state.shared;
                state
                    .with(py, |live| {
                        prepare(py, &mut live.txn, &mut live.local, shared, dt)
                    })
                    .map(|_| ())
            }
        }
    }

    /// A source for an iterator or cursor over `place`, starting now.
    pub(crate) fn source(&self, py: Python<'_>, place: &Place) -> PyResult<Source> {
        match (place, self) {
            (Place::Attached(attached), Origin::Db(_)) => Source::snapshot(attached),
            (Place::Attached(attached), txn) => {
                // Pinned now: the iterator reads the file as of its start at the latest.
                self.attached_snapshot(py, attached)?;
                Ok(Source::Pinned {
                    origin: txn.clone(),
                    attached: attached.clone(),
                })
            }
            (Place::Here, Origin::Db(shared)) => Source::snapshot(shared),
            (Place::Here, Origin::Read(state)) => {
                state.check_active(py)?;
                Ok(Source::Read(state.clone()))
            }
            (Place::Here, Origin::Write(state)) => {
                let (view, local) = state.freeze(py)?;
                Ok(Source::View {
                    state: state.clone(),
                    view,
                    local: Mutex::new(local),
                })
            }
        }
    }

    /// Raises ObjError once the transaction (or database) has ended.
    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        match self {
            Origin::Db(shared) => shared.check_open(),
            Origin::Read(state) => state.check_active(py),
            Origin::Write(state) => state.check_active(py),
        }
    }
}

/// What an iterator or query cursor reads from, step after step.
pub(crate) enum Source {
    /// A snapshot owned by the iterator; released when the iterator is exhausted or dropped.
    Snapshot(Arc<Shared>, ReadTxn),
    /// The snapshot of a read transaction, looked up at each step: closing the transaction
    /// releases it, and the iterator stops there.
    Read(Arc<ReadState>),
    /// The write transaction as it was when the iterator started, with the schema checks
    /// it had established by then.
    View {
        state: Arc<WriteState>,
        view: TxnView,
        local: Mutex<Local>,
    },
    /// The snapshot a transaction pinned of an attached database.
    Pinned {
        origin: Origin,
        attached: Arc<Shared>,
    },
}

impl Source {
    /// Raises ObjError once the transaction (or database) behind the source has ended.
    /// A snapshot of the latest commit of `shared`, owned by the source.
    pub(crate) fn snapshot(shared: &Arc<Shared>) -> PyResult<Source> {
        let snap = shared.db.begin_read().map_err(to_py)?;
        Ok(Source::Snapshot(shared.clone(), snap))
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        match self {
            Source::Snapshot(shared, _) => shared.check_open(),
            Source::Read(state) => state.check_active(py),
            Source::View { state, .. } => state.check_active(py),
            Source::Pinned { origin, attached } => {
                origin.check_active(py)?;
                attached.check_open()
            }
        }
    }

    /// Runs `f` with the source's reader and its schema checks.
    pub(crate) fn with<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(Snap<'_>, &mut Checks<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        match self {
            Source::Snapshot(shared, snap) => f(Snap::Read(snap), &mut Checks::committed(shared)),
            Source::Read(state) => state.with(py, |snap| {
                f(Snap::Read(snap), &mut Checks::committed(&state.shared))
            }),
            Source::View { state, view, local } => {
                let mut local = local.lock();
                let mut checks = Checks {
                    shared: &state.shared,
                    local: Some(&mut *local),
                };
                f(Snap::View(view), &mut checks)
            }
            Source::Pinned { origin, attached } => {
                let snap = origin.attached_snapshot(py, attached)?;
                f(Snap::Read(&snap), &mut Checks::committed(attached))
            }
        }
    }
}
