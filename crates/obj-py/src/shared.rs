//! What one open database shares between its handle, transactions, iterators and cursors:
//! the engine handle and two caches of facts about document classes (by codec serial).
//!
//! - *schema checked*: the schema a codec decodes with equals the one the file stores for
//!   its `(collection, version)`. Stored schemas never change, so once true it stays true.
//! - *prepared*: the codec's schema and every index it declares are committed in the file,
//!   so a typed write needs no catalog work first.
//!
//! A write transaction keeps its own sets (its catalog changes are private until commit)
//! and merges them here when it commits.

use crate::codec::DocType;
use crate::error::{to_py, BusyError, InvalidArgumentError};
use obj_core::{Db as CoreDb, Reader, WriteTxn};
use parking_lot::{Mutex, RwLock};
use pyo3::prelude::*;
use std::collections::HashSet;
use std::thread::ThreadId;

pub(crate) struct Shared {
    pub(crate) db: CoreDb,
    schema_checked: RwLock<HashSet<u64>>,
    prepared: RwLock<HashSet<u64>>,
    /// The thread whose `WriteTransaction` holds the writer, if any: a `Db`-level write
    /// from that same thread could only wait for itself.
    writer: Mutex<Option<ThreadId>>,
}

impl Shared {
    pub(crate) fn new(db: CoreDb) -> Self {
        Shared {
            db,
            schema_checked: RwLock::new(HashSet::new()),
            prepared: RwLock::new(HashSet::new()),
            writer: Mutex::new(None),
        }
    }

    pub(crate) fn set_writer(&self, owner: Option<ThreadId>) {
        *self.writer.lock() = owner;
    }

    /// True when this thread's own write transaction holds the writer.
    pub(crate) fn writer_is_this_thread(&self) -> bool {
        *self.writer.lock() == Some(std::thread::current().id())
    }

    /// Refuses at once work that needs the writer (`what`) when this thread's own write
    /// transaction holds it: waiting would only time out.
    pub(crate) fn refuse_if_writer_here(&self, what: &str) -> PyResult<()> {
        if self.writer_is_this_thread() {
            return Err(BusyError::new_err(format!(
                "this thread has a write transaction open on this database, and {what} \
                 needs the writer, which only one transaction holds at a time; use the \
                 transaction's methods (tx.insert(...), tx.get(...), ...) inside it, or \
                 commit or roll it back first"
            )));
        }
        Ok(())
    }

    /// Starts a write transaction for a `Db`-level call; refuses at once when this thread
    /// already has one open (waiting would only time out).
    pub(crate) fn begin_write(&self, py: Python<'_>) -> PyResult<WriteTxn> {
        self.refuse_if_writer_here("a Db-level write")?;
        py.detach(|| self.db.begin_write()).map_err(to_py)
    }

    pub(crate) fn is_prepared(&self, serial: u64) -> bool {
        self.prepared.read().contains(&serial)
    }

    pub(crate) fn mark_prepared(&self, serials: impl IntoIterator<Item = u64>) {
        self.prepared.write().extend(serials);
    }

    pub(crate) fn mark_checked(&self, serials: impl IntoIterator<Item = u64>) {
        self.schema_checked.write().extend(serials);
    }
}

/// The facts a write transaction established itself (not yet committed).
#[derive(Clone, Default)]
pub(crate) struct Local {
    pub(crate) prepared: HashSet<u64>,
    pub(crate) checked: HashSet<u64>,
}

/// Where schema checks are looked up and recorded: the database's sets for a committed
/// snapshot, plus a write transaction's own.
pub(crate) struct Checks<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) local: Option<&'a mut Local>,
}

impl Checks<'_> {
    /// Makes sure the record written at `version` decodes with the codec `dt` picks for it:
    /// the schema stored in the file for that version must be the codec's shape.
    pub(crate) fn check_schema<R: Reader>(
        &mut self,
        py: Python<'_>,
        r: &R,
        dt: &DocType,
        version: u32,
    ) -> PyResult<()> {
        let Some(codec) = dt.codec_for(version) else {
            return Err(crate::codec::unknown_version(py, dt, version));
        };
        let serial = codec.serial();
        if self.shared.schema_checked.read().contains(&serial)
            || self
                .local
                .as_ref()
                .is_some_and(|l| l.checked.contains(&serial))
        {
            return Ok(());
        }
        let stored = r.schema(codec.collection(), version).map_err(to_py)?;
        let Some(stored) = stored else {
            return Err(InvalidArgumentError::new_err(format!(
                "the file stores no schema for {:?} version {version}, so its typed records \
                 cannot be decoded",
                codec.collection()
            )));
        };
        if let Some(diff) = codec.schema().difference(&stored) {
            return Err(InvalidArgumentError::new_err(format!(
                "{} does not match the shape this file stores for {:?} version {version}: \
                 {diff}; use another collection name or bump version=",
                codec.class_name(py),
                codec.collection()
            )));
        }
        match &mut self.local {
            Some(local) => {
                local.checked.insert(serial);
            }
            None => self.shared.mark_checked([serial]),
        }
        Ok(())
    }
}

/// Stores the codec's schema (or checks it against the stored one) and creates, or
/// backfills, every index it declares. Runs once per class and write transaction.
pub(crate) fn prepare(
    py: Python<'_>,
    txn: &mut WriteTxn,
    local: &mut Local,
    shared: &Shared,
    dt: &DocType,
) -> PyResult<()> {
    let serial = dt.serial();
    if local.prepared.contains(&serial) || shared.is_prepared(serial) {
        return Ok(());
    }
    let collection = dt.collection();
    txn.register_schema(collection, dt.schema())
        .map_err(|e| match e {
            obj_core::Error::InvalidArgument(m) => {
                InvalidArgumentError::new_err(format!("{}: {m}", dt.class_name(py)))
            }
            other => to_py(other),
        })?;
    // Building an index over existing documents can take a while.
    py.detach(|| {
        for spec in dt.index_specs() {
            txn.ensure_index(collection, spec)?;
        }
        Ok(())
    })
    .map_err(to_py)?;
    local.prepared.insert(serial);
    local.checked.insert(serial);
    Ok(())
}
