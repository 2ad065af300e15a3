//! The batched fetching both lazy iterators share (`DocumentIterator` over ids,
//! `KeyIterator` over keys): items come from the engine in batches that start small (a
//! caller may want only the first few) and grow, bounded by a count and by about
//! `BATCH_BYTES` of payload (a single larger document is still fetched whole), so memory
//! stays bounded by one batch whatever the collection size. The iterator is done, and its
//! source (and any snapshot it owns) released, at the first empty fetch.

use crate::source::Source;
use crate::stored::Ready;
use pyo3::prelude::*;
use std::collections::VecDeque;

const FIRST_BATCH: usize = 16;
const MAX_BATCH: usize = 1024;
/// Rough upper bound on the payload bytes held by one batch.
const BATCH_BYTES: usize = 256 << 10;

/// One fetch: the items (position, prepared value) and the payload bytes they hold.
pub(crate) struct Fetched<P> {
    pub(crate) items: VecDeque<(P, Ready)>,
    pub(crate) bytes: usize,
}

/// The batch held and the size of the next fetch.
pub(crate) struct Batches<P> {
    /// None once exhausted.
    source: Option<Source>,
    items: VecDeque<(P, Ready)>,
    limit: usize,
    /// False once a fetch came back short: the range has nothing more.
    more: bool,
}

impl<P> Batches<P> {
    pub(crate) fn new(source: Source) -> Self {
        Batches {
            source: Some(source),
            items: VecDeque::new(),
            limit: FIRST_BATCH,
            more: true,
        }
    }

    /// The next item: from the batch held, else from the batch `fetch` loads (given the
    /// source and how many items to load; it resumes after the last item it returned).
    /// None once exhausted. A closed source is an error at every step.
    pub(crate) fn next(
        &mut self,
        py: Python<'_>,
        fetch: impl FnOnce(&Source, usize) -> PyResult<Fetched<P>>,
    ) -> PyResult<Option<(P, Ready)>> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        source.check_active(py)?;
        if self.items.is_empty() && self.more {
            let limit = self.limit;
            let fetched = fetch(source, limit)?;
            let count = fetched.items.len();
            self.more = count == limit;
            if let Some(per_item) = fetched.bytes.checked_div(count) {
                self.limit = (BATCH_BYTES / per_item.max(1)).clamp(1, (limit * 4).min(MAX_BATCH));
            }
            self.items = fetched.items;
        }
        let item = self.items.pop_front();
        if item.is_none() {
            self.source = None;
        }
        Ok(item)
    }
}
