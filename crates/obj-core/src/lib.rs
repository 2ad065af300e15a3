//! obj-core: the storage engine of obj, an embedded document database.
//!
//! One database is a main file plus a write-ahead log (`<path>-wal`). Documents are byte
//! strings stored per named collection under `u64` ids. Writers are serialised; readers
//! work on snapshots and never block the writer. See `docs/format.md` for the bytes on
//! disk and the invariants that make commits atomic and durable.
//!
//! ```
//! use obj_core::{Db, Options, Reader};
//! let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path().join("app.obj"), Options::default()).unwrap();
//! let mut tx = db.begin_write().unwrap();
//! let id = tx.insert("orders", b"hello").unwrap();
//! tx.commit().unwrap();
//! let rx = db.begin_read().unwrap();
//! assert_eq!(&*rx.get("orders", id).unwrap().unwrap(), b"hello");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod blob;
mod btree;
mod catalog;
mod changelog;
mod cipher;
pub mod clock;
pub mod codec;
pub mod column;
mod compact;
mod coord;
mod db;
mod doc;
mod error;
/// Failing and crashing storage backends for the engine's tests (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub mod fault;
/// The file format's constants and page layout; public only for the engine's own tests
/// and fuzz targets (feature `internals`).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod format;
#[cfg(not(feature = "internals"))]
mod format;
mod freelist;
mod index;
mod integrity;
mod lock;
mod options;
mod pager;
pub mod query;
mod reader;
mod shm;
mod spill;
mod stat;
mod state;
pub mod table;
/// The change log: one record per commit (see `obj_core::Db::set_changes`).
pub mod changes {
    pub use crate::changelog::{
        image, Batch, ChangeReads, Context, Entry, Images, LogInfo, LogSettings, Op, Record,
        Retention,
    };
}
mod replay;
mod view;
mod wal;
mod write;

pub use catalog::{CollectionKind, IndexDef, IndexKind, IndexSpec, MAX_KEY_LEN, MAX_NAME_LEN};
pub use cipher::EncryptionKey;
pub use compact::CompactInfo;
pub use db::{wal_path, Db};
pub use doc::{DocHeader, DocKind};
pub use error::{Error, Result};
pub use index::{Direction, IndexScan};
pub use integrity::{CollectionReport, IntegrityReport};
pub use options::{Durability, Locking, OpenMode, Options};
pub use reader::{Iter, KeyIter, Pk, ReadTxn, Reader, Value};
pub use shm::shm_path;
pub use stat::{CollectionStat, IndexStat, Stat};
pub use state::{CheckpointInfo, ReaderStat};
pub use view::TxnView;
pub use wal::WAL_HEADER_SIZE;
pub use write::WriteTxn;
