//! Compaction: moves every live page that lies above the live size into a free page below
//! it, inside one ordinary write transaction, so the file can be truncated at the next full
//! checkpoint. Readers keep their snapshots throughout (moved pages are new versions, like
//! any write).
//!
//! The freelist is taken apart first: free pages below the target size become the holes
//! that allocation hands out (lowest first), free pages above it simply vanish when the
//! page count drops. Every tree is then walked from its root; a page above the target is
//! copied into a hole and the pointer to it (in the header, a catalog record, a branch, a
//! leaf cell or an overflow page) is rewritten.

use crate::btree::node::{self, LeafValue};
use crate::btree::{PageRead, PageWrite, MAX_DEPTH};
use crate::catalog;
use crate::changelog;
use crate::error::{Error, Result};
use crate::format::{get_u64, put_u64, PageKind};
use crate::freelist::{self, Allocator};
use crate::reader::{Reader, Source};
use crate::write::WriteTxn;
use std::sync::Arc;

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactInfo {
    /// Pages in the file before.
    pub pages_before: u64,
    /// Pages in use after.
    pub pages_after: u64,
    /// Pages copied to a lower position.
    pub pages_moved: u64,
    /// True when the file was truncated to `pages_after` pages.
    pub truncated: bool,
}

/// Moves live pages down so the database occupies as few pages as it needs.
pub(crate) fn compact(tx: &mut WriteTxn) -> Result<CompactInfo> {
    tx.check_usable()?;
    let before = tx.meta.page_count;
    let free = take_freelist(tx)?;
    let target = before - free.len() as u64;
    let mut holes: Vec<u64> = free.into_iter().filter(|&p| p < target).collect();
    holes.sort_unstable();
    tx.alloc = Allocator::compacting(holes);
    let mut moved = 0u64;
    let result = relocate_all(tx, target, &mut moved);
    let holes = tx.alloc.finish_compacting();
    result?;
    // Whatever was allocated above the target (a catalog record that grew) stays; the
    // page count ends just after the highest page in use, and unused holes go back to
    // the freelist.
    let highest = highest_live_page(tx)?;
    tx.meta.page_count = highest + 1;
    for hole in holes {
        if hole < tx.meta.page_count {
            tx.free_page(hole)?;
        }
    }
    Ok(CompactInfo {
        pages_before: before,
        pages_after: tx.meta.page_count,
        pages_moved: moved,
        truncated: false,
    })
}

/// Empties the freelist and returns every free page (trunks included).
fn take_freelist(tx: &mut WriteTxn) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut trunk = tx.meta.free_head;
    while trunk != 0 {
        if out.len() as u64 > tx.meta.page_count {
            return Err(Error::corrupt("freelist trunk chain loops"));
        }
        let page = tx.page(trunk)?;
        if page[0] != PageKind::FreeTrunk as u8 {
            return Err(Error::corrupt_page(trunk, "expected a freelist trunk"));
        }
        out.push(trunk);
        out.extend((0..freelist::count(&page)).map(|i| freelist::entry(&page, i)));
        trunk = freelist::next(&page);
    }
    for &p in &out {
        tx.forget_page(p);
    }
    tx.meta.free_head = 0;
    tx.meta.free_count = 0;
    Ok(out)
}

fn relocate_all(tx: &mut WriteTxn, target: u64, moved: &mut u64) -> Result<()> {
    tx.meta.catalog_root = relocate_tree(tx, tx.meta.catalog_root, target, moved)?;
    let root = tx.meta.catalog_root;
    for (name, rec) in catalog::list(tx, root)? {
        let new_root = relocate_tree(tx, rec.root, target, moved)?;
        let defs = tx.indexes(&name)?;
        let mut new_defs = Vec::with_capacity(defs.len());
        let mut defs_moved = false;
        for def in defs.iter() {
            let mut def = def.clone();
            let r = relocate_tree(tx, def.root, target, moved)?;
            if r != def.root {
                def.root = r;
                defs_moved = true;
                let catalog_root = tx.meta.catalog_root;
                catalog::store_index(tx, catalog_root, &name, &def)?;
            }
            new_defs.push(def);
        }
        // Load the collection into the transaction so commit publishes moved roots.
        let st = tx.writable_state(&name)?;
        if new_root != rec.root {
            st.rec.root = new_root;
            st.dirty = true;
            st.publish_root = true;
        }
        if defs_moved {
            st.indexes = Some(Arc::new(new_defs));
            st.indexes_changed = true;
        }
    }
    let catalog_root = tx.meta.catalog_root;
    if let Some(mut state) = changelog::load(tx, catalog_root)? {
        let r = relocate_tree(tx, state.root, target, moved)?;
        if r != state.root {
            state.root = r;
            changelog::store(tx, catalog_root, &state)?;
            // The record this commit appends goes to the moved tree.
            if let Some(log) = &mut tx.log {
                log.state.root = r;
            }
        }
    }
    Ok(())
}

/// Copies page `no` into the lowest hole if it lies at or above `target`.
fn relocate_page(tx: &mut WriteTxn, no: u64, target: u64, moved: &mut u64) -> Result<u64> {
    if no < target {
        return Ok(no);
    }
    let Some(hole) = tx.alloc.next_hole() else {
        return Ok(no);
    };
    let content = tx.page(no)?;
    tx.page_new(hole)?.copy_from_slice(&content);
    tx.forget_page(no);
    *moved += 1;
    Ok(hole)
}

/// Relocates a whole tree (nodes and overflow chains); returns the root's new number.
fn relocate_tree(tx: &mut WriteTxn, root: u64, target: u64, moved: &mut u64) -> Result<u64> {
    let root = relocate_page(tx, root, target, moved)?;
    let mut stack = vec![(root, 0usize)];
    while let Some((no, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt_page(no, "tree deeper than the depth limit"));
        }
        let page = tx.page(no)?;
        if node::is_leaf(&page) {
            for i in 0..node::count(&page) {
                if let LeafValue::Overflow { first, len } = node::leaf_value(&page, i) {
                    let new_first = relocate_chain(tx, first, len, target, moved)?;
                    if new_first != first {
                        node::set_overflow_first(tx.page_mut(no)?, i, new_first);
                    }
                }
            }
        } else {
            for i in 0..=node::count(&page) {
                let child = node::child(&page, i);
                let new_child = relocate_page(tx, child, target, moved)?;
                if new_child != child {
                    node::set_child(tx.page_mut(no)?, i, new_child);
                }
                stack.push((new_child, depth + 1));
            }
        }
    }
    Ok(root)
}

fn relocate_chain(
    tx: &mut WriteTxn,
    first: u64,
    len: u64,
    target: u64,
    moved: &mut u64,
) -> Result<u64> {
    let pages = crate::btree::overflow::chain(tx, first, len)?;
    let mut new_pages = Vec::with_capacity(pages.len());
    for &p in &pages {
        new_pages.push(relocate_page(tx, p, target, moved)?);
    }
    for (i, &p) in new_pages.iter().enumerate() {
        let next = new_pages.get(i + 1).copied().unwrap_or(0);
        if get_u64(&tx.page(p)?, 8) != next {
            put_u64(tx.page_mut(p)?, 8, next);
        }
    }
    Ok(new_pages[0])
}

/// The highest page number any tree, chain or catalog record uses.
fn highest_live_page(tx: &mut WriteTxn) -> Result<u64> {
    let root = tx.meta.catalog_root;
    let mut roots = vec![root];
    for (name, _) in catalog::list(tx, root)? {
        roots.push(tx.writable_state(&name)?.rec.root);
        roots.extend(tx.indexes(&name)?.iter().map(|d| d.root));
    }
    roots.extend(changelog::root(tx, root)?);
    let mut highest = 1u64;
    for r in roots {
        let crate::btree::TreeLayout { nodes, chains } = crate::btree::tree_layout(tx, r)?;
        highest = nodes.into_iter().fold(highest, u64::max);
        for (first, len) in chains {
            highest = crate::btree::overflow::chain(tx, first, len)?
                .into_iter()
                .fold(highest, u64::max);
        }
    }
    Ok(highest)
}
