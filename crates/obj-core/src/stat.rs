//! `Db::stat`: sizes and counts per collection and for the whole database.

use crate::btree::{overflow, PageRead};
use crate::catalog::{self, CollectionKind, IndexKind};
use crate::error::Result;
use crate::reader::{ReadTxn, Reader};

/// Database-wide figures and one entry per collection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// Bytes per page on disk.
    pub page_size: u64,
    /// Pages in the file.
    pub page_count: u64,
    /// Pages on the freelist.
    pub free_pages: u64,
    /// Committed frames in the WAL.
    pub wal_frames: u64,
    /// One entry per collection, by name.
    pub collections: Vec<CollectionStat>,
    /// The change log, if the database keeps one, and the bytes of its pages.
    pub change_log: Option<(crate::changes::LogInfo, u64)>,
}

/// Counts and sizes of one collection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionStat {
    /// The collection name.
    pub name: String,
    /// Its catalog id (stored in each document header).
    pub id: u64,
    /// What its documents are keyed by.
    pub kind: CollectionKind,
    /// Documents stored.
    pub doc_count: u64,
    /// Bytes of the pages owned by the collection: its tree, overflow chains and indexes.
    pub file_size_bytes: u64,
    /// Its indexes, by name.
    pub indexes: Vec<IndexStat>,
    /// Documents of a table that have expired but still take space (until later writes or
    /// a compaction reclaim them); not counted by the table's reads.
    pub expired: u64,
}

/// One index of a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexStat {
    /// The index name.
    pub name: String,
    /// Its kind.
    pub kind: IndexKind,
    /// The field paths it reads.
    pub key_paths: Vec<String>,
    /// "ready", or "building" while an index has not been filled yet.
    pub status: &'static str,
    /// Bytes of the pages of the index tree.
    pub file_size_bytes: u64,
}

/// Pages of a tree, its overflow chains included (chain lengths follow from the value
/// sizes, so the chains themselves are not read).
fn tree_pages<R: PageRead>(r: &R, root: u64) -> Result<u64> {
    let crate::btree::TreeLayout { nodes, chains } = crate::btree::tree_layout(r, root)?;
    let overflow: u64 = chains
        .iter()
        .map(|(_, len)| overflow::pages_for(r.page_size(), *len))
        .sum();
    Ok(nodes.len() as u64 + overflow)
}

pub(crate) fn stat(snap: &ReadTxn, physical_page: u64, wal_frames: u64) -> Result<Stat> {
    let meta = snap.meta().clone();
    let mut collections = Vec::new();
    for (name, rec) in catalog::list(snap, meta.catalog_root)? {
        let mut bytes = tree_pages(snap, rec.root)? * physical_page;
        let mut indexes = Vec::new();
        for def in snap.indexes(&name)?.iter() {
            let size = tree_pages(snap, def.root)? * physical_page;
            bytes += size;
            indexes.push(IndexStat {
                name: def.spec.name.clone(),
                kind: def.spec.kind,
                key_paths: def.spec.paths.clone(),
                status: if def.ready { "ready" } else { "building" },
                file_size_bytes: size,
            });
        }
        let expired = crate::table::expired(snap, &name)?;
        collections.push(CollectionStat {
            name,
            id: rec.id,
            kind: rec.kind,
            doc_count: rec.count,
            file_size_bytes: bytes,
            indexes,
            expired,
        });
    }
    let change_log = match crate::changelog::load(snap, meta.catalog_root)? {
        Some(state) => Some((state.info(), tree_pages(snap, state.root)? * physical_page)),
        None => None,
    };
    Ok(Stat {
        change_log,
        page_size: physical_page,
        page_count: meta.page_count,
        free_pages: meta.free_count,
        wal_frames,
        collections,
    })
}
