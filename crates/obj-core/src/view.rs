//! [`TxnView`]: a write transaction frozen as it was at one moment.
//!
//! Iterators and queries inside a write transaction read a view taken when they start, so
//! the transaction's later writes neither show up in them nor make them skip or repeat
//! documents. A view shares the transaction's changed pages (`Arc`s, copied on the
//! transaction's next write to each one) and pins the commit the transaction began from,
//! so a checkpoint after the transaction commits cannot take the pages it reads.

use crate::btree::PageRead;
use crate::catalog::{CollectionRecord, IndexDef, NameMap, Root};
use crate::codec::Schema;
use crate::error::{Error, Result};
use crate::format::Meta;
use crate::pager::{PageBuf, PageMap};
use crate::reader::{ReadTxn, Reader, Source};
use crate::spill::SpillView;
use std::sync::Arc;

/// What a view keeps of one collection the transaction touched.
#[derive(Clone)]
pub(crate) struct CollView {
    pub(crate) rec: CollectionRecord,
    pub(crate) indexes: Option<Arc<Vec<IndexDef>>>,
}

/// A read-only snapshot of a write transaction's state, including its uncommitted writes.
/// Cheap to clone; it stays valid after the transaction ends.
#[derive(Clone)]
pub struct TxnView {
    inner: Arc<ViewState>,
}

struct ViewState {
    /// Pins the commit the transaction began from.
    base: ReadTxn,
    meta: Meta,
    dirty: PageMap<PageBuf>,
    /// The transaction's spilled pages at the moment (the spill file is append-only).
    spill: Option<SpillView>,
    colls: NameMap<CollView>,
    new_schemas: Vec<(String, Arc<Schema>)>,
}

impl TxnView {
    pub(crate) fn new(
        base: ReadTxn,
        meta: Meta,
        dirty: PageMap<PageBuf>,
        spill: Option<SpillView>,
        colls: NameMap<CollView>,
        new_schemas: Vec<(String, Arc<Schema>)>,
    ) -> Self {
        TxnView {
            inner: Arc::new(ViewState {
                base,
                meta,
                dirty,
                spill,
                colls,
                new_schemas,
            }),
        }
    }
}

impl PageRead for TxnView {
    fn page(&self, no: u64) -> Result<PageBuf> {
        let s = &self.inner;
        if let Some(page) = s.dirty.get(&no) {
            return Ok(page.clone());
        }
        if let Some(spill) = &s.spill {
            if let Some(page) = spill.get(s.base.pager(), no)? {
                return Ok(Arc::new(page));
            }
        }
        if no >= s.meta.page_count {
            return Err(Error::corrupt_page(
                no,
                "page number beyond the database size",
            ));
        }
        // A page the transaction did not change is as the base commit has it (a page it
        // allocated beyond the base size is always among its changed pages).
        s.base.page(no)
    }

    fn page_size(&self) -> usize {
        self.inner.base.page_size()
    }
}

// A collection the transaction did not touch has the same catalog record, root and index
// definitions as in the base commit, so those reads go to the base snapshot (and its
// caches); the catalog itself (collection list, schemas) is read through the view.
impl Source for TxnView {
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>> {
        match self.inner.colls.get(collection) {
            Some(c) => Ok(Some(c.rec.clone())),
            None => self.inner.base.record(collection),
        }
    }

    fn collection_root(&self, collection: &str) -> Result<Option<Root>> {
        match self.inner.colls.get(collection) {
            Some(c) => Ok(Some(c.rec.primary())),
            None => self.inner.base.collection_root(collection),
        }
    }

    fn catalog_root(&self) -> u64 {
        self.inner.meta.catalog_root
    }

    fn check_usable(&self) -> Result<()> {
        self.inner.base.check_usable()
    }

    fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>> {
        if let Some((_, s)) = self
            .inner
            .new_schemas
            .iter()
            .find(|(c, s)| c == collection && s.version == version)
        {
            return Some(s.clone());
        }
        self.inner.base.cached_schema(collection, version)
    }

    fn remember_schema(&self, _collection: &str, _schema: Arc<Schema>) {
        // What this view loads from its catalog may be the transaction's own (uncommitted)
        // schema, so nothing is offered to the shared cache.
    }

    fn index_defs(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
        match self
            .inner
            .colls
            .get(collection)
            .and_then(|c| c.indexes.clone())
        {
            Some(defs) => {
                self.check_usable()?;
                Ok(defs)
            }
            None => self.inner.base.indexes(collection),
        }
    }
}

impl Reader for TxnView {}
